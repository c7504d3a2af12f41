"""The documentation builds without warnings, with the example figures drawn by fastgd.examples."""

import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_docs_build(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_parser")
    out = subprocess.run([sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", str(DOCS), str(tmp_path)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    for page in ("index", "user-guide", "examples", "benchmarks", "api"):
        assert (tmp_path / f"{page}.html").exists()
    html = (tmp_path / "user-guide.html").read_text()
    assert "Adamax" in html and "momentum_decay=0.004" in html  # the table generated from the registry
    assert len(list((tmp_path / "_images").glob("*.png"))) >= 5
