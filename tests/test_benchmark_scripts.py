"""The development benchmarks under benchmarks/ run on tiny sizes, so they cannot rot (the real runs are by
hand; see README); no timings are judged (the machine is shared and noisy)."""

import json
import math
import os
import re
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import pytest

from fastgd import _engine
from fastgd.optimizers import OPTIMIZERS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "oversubscription.py"

TOP_KEYS = {"schema", "machine", "config", "rows", "ratios", "goals", "time_to_accuracy", "curves", "cold_start",
            "scaling", "notes"}


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    import full_bench

    out = tmp_path_factory.mktemp("bench")
    argv = ["--n", "3000", "--d", "6", "--batch", "64", "--repeat", "1", "--scaling-n", "1000", "2000",
            "--scaling-d", "4", "8", "--json", str(out / "b.json"), "--markdown", str(out / "b.md"),
            "--plots", str(out / "plots"), "--no-cold-start"]
    assert full_bench.main(argv) == 0
    return full_bench, out, json.loads((out / "b.json").read_text())


def test_full_bench_schema_is_stable(full):
    full_bench, _, res = full
    assert set(res) == TOP_KEYS and res["schema"] == full_bench.SCHEMA_VERSION
    assert {"cpu", "cores", "numba_threads", "threading_layer", "versions"} <= set(res["machine"])
    assert set(res["ratios"]) >= {g[0] for g in full_bench.GOALS}
    assert {"fastgd sgd", "fastgd adam, lr halved each epoch", "fastgd LinearRegressor() defaults, whole fit",
            "SGDRegressor"} == set(res["time_to_accuracy"])
    assert {"by_n", "by_d"} == set(res["scaling"])
    assert [r["dtype"] for r in res["scaling"]["by_n"]] == ["float64", "float32"]
    assert res["config"]["backend"] == ("native" if _engine.native_available() else "numba")
    assert res["cold_start"] is None  # --no-cold-start


def test_full_bench_every_row_is_present_and_finite(full):
    _, _, res = full
    names = {r["name"] for r in res["rows"]}
    threads = res["config"]["threads"]
    for name in OPTIMIZERS:
        for dtype in ("float32", "float64"):
            assert f"fastgd {name} {dtype}, {threads} threads" in names
            assert f"fastgd {name} {dtype}, 1 thread" in names
    for peer in ("floor: read X once (all cores)", "numpy reference epoch (Adam, float64)",
                 "scikit-learn SGDRegressor, 1 epoch", "numpy.linalg.lstsq", "Ridge(solver='cholesky')"):
        assert peer in names
    assert sum("time to 1 % of optimum" in name for name in names) == 4  # sgd, adam halved, LinearRegressor() defaults, SGDRegressor
    torch_row = "torch nn.Linear + Adam, 1 epoch" in names
    try:
        import torch  # noqa: F401
        assert torch_row
    except ImportError:
        assert not torch_row and res["notes"]
    for row in res["rows"]:
        assert math.isfinite(row["seconds"]) and row["seconds"] > 0
    for key, value in res["ratios"].items():
        if key == "torch_over_epoch" and value is None:
            continue
        assert math.isfinite(value), key
    if res["config"]["backend"] == "native":
        for dtype in ("float32", "float64"):
            assert f"fastgd adam {dtype}, {threads} threads (numba)" in names


def test_full_bench_markdown_and_plots_written(full):
    _, out, res = full
    md = (out / "b.md").read_text()
    assert "| method | time | ÷ floor |" in md and "| goal | measured | target | met |" in md
    assert f"backend {res['config']['backend']}" in md
    for name in ("bench_times.png", "bench_loss_vs_time.png"):
        assert (out / "plots" / name).stat().st_size > 1000


def test_full_bench_cold_start_subprocess():
    import full_bench

    label = "native" if _engine.native_available() else "numba"
    cold = full_bench.cold_start(labels=(label,))
    assert set(cold) == {label} and cold[label]["first_fit_s"] > 0 and cold[label]["import_s"] > 0


def test_crossover_runs(capsys):
    import crossover

    crossover.main(["--n", "3000", "--d", "10", "--batches", "64", "256", "--repeat", "1"])
    assert "B=256" in capsys.readouterr().out


def test_loss_cost_tiny_run_reports_a_ratio_per_loss_backend_dtype_and_batch(capfd):
    import loss_cost

    res = loss_cost.main(["--n", "600", "--d", "4", "--batches", "64", "--threads", "1", "--rounds", "1",
                          "--cpu-time"])
    backends = ["native", "numba"] if _engine.native_available() else ["numba"]
    assert [(r["dtype"], r["backend"]) for r in res] == [(t, b) for t in ("float64", "float32") for b in backends]
    for r in res:
        assert all(math.isfinite(r[loss]) and r[loss] > 0 for loss, _ in loss_cost.LOSSES[1:])
    assert capfd.readouterr().out.count("| 64 |") == len(res)


def test_scaling_tiny_run_reports_every_thread_count_and_backend(tmp_path):
    import scaling

    out = tmp_path / "s.md"
    res = scaling.main(["--n", "5000", "--d", "4", "--rounds", "1", "--cores", "2", "--ov-rows", "3000",
                        "--ov-epochs", "1", "--out", str(out)])
    backends = ["native", "numba"] if _engine.native_available() else ["numba"]
    assert [(r["threads"], r["backend"]) for r in res["rows"]] == [(t, b) for t in (1, 2) for b in backends]
    for r in res["rows"]:
        assert all(math.isfinite(r[k]) and r[k] > 0 for k in ("floor_ms", "one", "B=32", "B=256", "B=4096",
                                                              "fit_s", "fit_reads"))
        assert r["workers B=256"] == 0  # d = 4: too little work for a second thread
        # the float32 row loop: on one thread only
        assert (math.isfinite(r["one32"]) and r["one32"] > 0) if r["threads"] == 1 else r["one32"] is None
    assert [(o["backend"], o["batch"]) for o in res["oversubscription"]] == [(b, 256) for b in backends]
    text = out.read_text()
    assert text == scaling.markdown(res) and text.count("\n| 2 | ") == len(backends)
    assert scaling.thread_counts(16) == [1, 2, 4, 8, 16] and scaling.thread_counts(12) == [1, 2, 4, 8, 12]


def test_real_data_suite_smoke():
    """The real-data suite runs (two sklearn datasets) and the defaults reach LinearRegression's R²."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "benchmarks"))
    try:
        import real_data
    finally:
        sys.path.pop(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows, worst = real_data.main(["--quick", "--only", "diabetes", "linnerud", "longley", "stackloss"])
    assert len(rows) >= 3
    assert worst["default"] <= 2e-3 and worst["pipeline"] <= 2e-3


def test_full_bench_ratios_section_reports_every_goal(tmp_path, capsys):
    import full_bench

    out = tmp_path / "r.json"
    assert full_bench.main(["--ratios", "--n", "6000", "--d", "5", "--rounds", "2", "--threads", "2", "--reference",
                            "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    backends = ["native", "numba"] if _engine.native_available() else ["numba"]
    assert res["config"]["backends"] == backends
    assert res["config"]["default_batch"] not in (256, 4096)  # 6000 rows: the default batch is its own row
    for be in backends:
        for goal in full_bench.RATIO_GOALS:
            vals = res["ratios"][f"{be} {goal}"]
            assert len(vals) == 2 and all(math.isfinite(v) and v > 0 for v in vals)
        assert f"{be} 2t/1t B=256" in res["ratios"] and f"{be} reference/epoch B=256" in res["ratios"]
    assert all(len(v) == 2 and min(v) > 0 for v in res["times_ms"].values())
    lines = capsys.readouterr().out
    assert "load average before" in lines and "reads of X: all cores" in lines
    assert lines.count("<= ") == len(full_bench.RATIO_GOALS) * len(backends)


def test_full_bench_breakdown_section_reports_every_part(tmp_path, capsys):
    import full_bench

    out = tmp_path / "b.json"
    assert full_bench.main(["--breakdown", "--n", "5000", "--d", "5", "--rounds", "1", "--threads", "2",
                            "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["config"]["backend"] == ("native" if _engine.native_available() else "numba")
    assert "one batch, 2 threads" in res["ratios"] and "2 threads, B=256, shuffled" in res["ratios"]
    assert all(math.isfinite(v) and v > 0 for v in res["ratios"].values())
    assert all(math.isfinite(v) for v in res["derived"].values())
    assert "us per stream restart" in capsys.readouterr().out


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


def test_quantile_scale_small_run_prints_both_tables(capfd):
    import quantile_scale

    assert quantile_scale.main(["--small", "--no-long"]) == 0
    out = capfd.readouterr().out
    assert "| fastgd default |" in out and "exact LP on 1,000 random rows" in out
    assert "| QuantileRegressor(solver='highs') rows | seconds | CPU seconds |" in out and "| 500 |" in out
    names = ("| fastgd", "| certified", "| the cert", "| exact optimum")
    losses = {line.split(" | ")[0][2:]: float(line.split(" | ")[1]) for line in out.splitlines()
              if line.startswith("| ") and "random rows" in line or line.startswith(names)}
    bounds = [losses.pop(name) for name in ("certified lower bound (dual of the default fit)",
                                            "exact optimum, from below (the last certificate)")]
    assert len(losses) == 4 and max(bounds) <= min(losses.values())  # no model goes below a certified bound
    assert "Certified relative gaps (pinball loss ÷ lower bound − 1" in out


def test_loss_objectives_small_run_compares_with_the_exact_minimizer(capfd):
    import loss_objectives

    assert loss_objectives.main(["--small"]) == 0
    lines = [line for line in capfd.readouterr().out.splitlines() if line.startswith("| diabetes |")]
    assert len(lines) == 2
    for line in lines:  # the default fit's relative excess over the exact optimum: small, not below rounding
        assert -1e-6 < float(line.split("|")[4]) < 1e-3


def test_sparse_defaults_small_run_prints_a_row_per_data_set(capfd):
    import sparse_defaults

    sparse_defaults.main(["--n", "600", "--rows", "zipf-bin-10", "uniform-tfidf-10", "digits"])
    rows = [line for line in capfd.readouterr().out.splitlines() if "|" in line][1:]
    assert [row.split()[0] for row in rows] == ["zipf-bin-10", "uniform-tfidf-10", "digits"]
    for row in rows:  # fastgd's held-out R² next to SGDRegressor's and Ridge's (also in the pipeline), numbers
        fields = row.split("|")
        assert all(math.isfinite(float(f.split()[0])) for f in fields[1:5])
        assert all(v in ("ok", "SHORT") for v in fields[5].replace(",", " ").split()[:3])


def test_sparse_highdim_prints_the_table_and_the_threads_line(capsys):
    import sparse_highdim

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sparse_highdim.main(["--n", "600", "--dims", "9", "--rss-d", "0", "--rounds", "1", "--epochs", "2",
                             "--chunks", "100", "--stream-rows", "300"])
    out = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in out if line.strip().startswith("2^9")]
    assert [r[1] for r in rows][:3] == ["1", "32", "256"] and rows[3][1].startswith("auto=")
    assert all(len(r) == 8 for r in rows[:4])  # d, B, time, SGD time, ratio, three R²
    assert sum(line.startswith("threads: d = 2^9") for line in out) == 1
    # the stream: d, chunk, both times per call, their ratio, both held-out R²
    assert any(line.startswith("partial_fit, one pass over 300 rows") for line in out)
    assert len(rows) == 5 and rows[4][1] == "100" and len(rows[4]) == 7
    assert all(float(v) > 0 for v in rows[4][2:4])


def test_huber_auto_runs(capsys):
    import huber_auto

    huber_auto.main(["--sets", "diabetes", "--noise", "gauss", "--scales", "1", "--losses", "huber", "--csr"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all("huber" in line and "R2=" in line for line in lines)
    assert "passes over X" in lines[1]  # the CSR fit chose its strength
