"""benchmarks/floor_ratios.py (issue 12's goal table) runs on tiny sizes and reports every ratio; no timings
are judged here (the machine is shared and noisy)."""

import io
import json
import math
import sys
from pathlib import Path

from fastgd import _engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


def test_floor_ratios_tiny_run_reports_every_goal(tmp_path):
    import floor_ratios

    out = tmp_path / "r.json"
    res = floor_ratios.main(["--n", "6000", "--d", "5", "--rounds", "2", "--json", str(out)])
    backends = ["native", "numba"] if _engine.native_available() else ["numba"]
    assert res["config"]["backends"] == backends
    assert res["config"]["default_batch"] not in (256, 4096)  # 6000 rows: the default batch is its own row
    for be in backends:
        for goal in floor_ratios.GOALS:
            vals = res["ratios"][f"{be} {goal}"]
            assert len(vals) == 2 and all(math.isfinite(v) and v > 0 for v in vals)
        assert f"{be} 2t/1t B=256" in res["ratios"]
    assert all(len(v) == 2 and min(v) > 0 for v in res["times_ms"].values())
    assert json.loads(out.read_text())["ratios"] == res["ratios"]
    text = io.StringIO()
    floor_ratios.report(res, text)
    lines = text.getvalue()
    assert "load average before" in lines and "reads of X: all cores" in lines
    assert lines.count("<= ") == len(floor_ratios.GOALS) * len(backends)


def test_floor_breakdown_tiny_run_reports_every_part():
    import floor_breakdown

    res = floor_breakdown.main(["--n", "5000", "--d", "5", "--rounds", "1"])
    assert res["config"]["backend"] == ("native" if _engine.native_available() else "numba")
    assert "one batch, 2 threads" in res["ratios"] and "2 threads, B=256, shuffled" in res["ratios"]
    assert all(math.isfinite(v) and v > 0 for v in res["ratios"].values())
    assert all(math.isfinite(v) for v in res["derived"].values())
    text = io.StringIO()
    floor_breakdown.report(res, text)
    assert "us per stream restart" in text.getvalue()
