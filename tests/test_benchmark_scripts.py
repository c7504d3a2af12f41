"""The benchmark scripts run on tiny sizes, so they cannot rot (the real runs are by hand; see README)."""

import math
import sys
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


def test_bench_epoch_runs_and_reports_finite_ratios(capsys):
    import bench_epoch

    rows, ratios = bench_epoch.main(["--n", "3000", "--d", "8", "--batch", "256", "--repeat", "1"])
    assert all(t > 0 for t in rows.values())
    assert all(math.isfinite(r) and r > 0 for r in ratios.values())
    out = capsys.readouterr().out
    assert "epoch / floor" in out and "reference / epoch" in out


def test_crossover_runs(capsys):
    import crossover

    crossover.main(["--n", "3000", "--d", "10", "--batches", "64", "256", "--repeat", "1"])
    assert "B=256" in capsys.readouterr().out
