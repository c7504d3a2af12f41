"""Smoke run of benchmarks/oversubscription.py at a tiny size (no timing assertions: the machine is shared)."""

import pathlib
import re
import subprocess
import tempfile
import sys

from fastgd import _engine

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "oversubscription.py"


def test_oversubscription_benchmark_runs():
    backend = "native" if _engine.native_available() else "numba"
    out = subprocess.run([sys.executable, str(SCRIPT), "--rows", "1024", "--features", "8", "--batch", "128",
                          "--epochs", "2", "--backends", backend, "--timeout", "120", "--quick"],
                         capture_output=True, text=True, timeout=300,
                         cwd=tempfile.gettempdir())  # a neutral directory: the installed fastgd, not ./fastgd
    assert out.returncode == 0, out.stderr
    line = out.stdout.splitlines()[-1]
    assert line.startswith(backend), out.stdout
    alone1, two2, ratio = (float(re.search(pat, line).group(1)) for pat in (
        r"alone 1t (\S+)", r"2 procs x 2t (\S+)", r"2x2t / alone 1t = (\S+) \(goal <= 2.4\)"))
    assert alone1 > 0 and two2 > 0 and abs(ratio - two2 / alone1) < 0.01 + 0.01 * ratio
