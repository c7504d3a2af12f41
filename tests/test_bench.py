"""The `fastgd bench` harness on tiny sizes: it runs, every row is there, ratios are finite, the JSON schema
is stable and the plots are written."""

import json
import math

import pytest

from fastgd import bench
from fastgd.__main__ import main
from fastgd.optimizers import OPTIMIZERS

TOP_KEYS = {"schema", "machine", "config", "rows", "ratios", "goals", "time_to_accuracy", "curves", "cold_start",
            "scaling", "notes"}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    argv = ["bench", "--n", "3000", "--d", "6", "--batch", "64", "--repeat", "1", "--scaling-n", "1000", "2000",
            "--scaling-d", "4", "8", "--json", str(out / "b.json"), "--markdown", str(out / "b.md"),
            "--plots", str(out / "plots")]
    assert main(argv) == 0
    return out, json.loads((out / "b.json").read_text())


def test_schema_is_stable(results):
    _, res = results
    assert set(res) == TOP_KEYS and res["schema"] == bench.SCHEMA_VERSION
    assert {"cpu", "cores", "numba_threads", "threading_layer", "versions"} <= set(res["machine"])
    assert set(res["ratios"]) >= {g[0] for g in bench.GOALS}
    assert {"fastgd sgd", "fastgd adam, lr halved each epoch", "SGDRegressor"} == set(res["time_to_accuracy"])
    assert {"by_n", "by_d"} == set(res["scaling"])
    assert [r["dtype"] for r in res["scaling"]["by_n"]] == ["float64", "float32"]


def test_every_row_is_present_and_finite(results):
    _, res = results
    names = {r["name"] for r in res["rows"]}
    threads = res["config"]["threads"]
    for name in OPTIMIZERS:
        for dtype in ("float32", "float64"):
            assert f"fastgd {name} {dtype}, {threads} threads" in names
            assert f"fastgd {name} {dtype}, 1 thread" in names
    for peer in ("floor: read X once (all cores)", "numpy reference epoch (Adam, float64)",
                 "scikit-learn SGDRegressor, 1 epoch", "numpy.linalg.lstsq", "Ridge(solver='cholesky')",
                 ):
        assert peer in names
    assert sum("time to 1 % of optimum" in name for name in names) == 3
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
    assert {"numba", "numba, no cache", "native"} == set(res["cold_start"])
    assert all(cs["first_fit_s"] > 0 for cs in res["cold_start"].values())
    for dtype in ("float32", "float64"):
        assert f"fastgd native adam {dtype}, {threads} threads" in names


def test_markdown_and_plots_written(results):
    out, res = results
    md = (out / "b.md").read_text()
    assert "| method | time | ÷ floor |" in md and "| goal | measured | target | met |" in md
    for name in ("bench_times.png", "bench_loss_vs_time.png"):
        assert (out / "plots" / name).stat().st_size > 1000
