"""The worked examples (fastgd.examples): each figure's caption in docs/examples.md says what the reader
should see; these tests check the numbers behind every such claim, and that every figure is drawn at a size
the documentation shows without shrinking it."""

import numpy as np
import pytest

from fastgd import examples
from fastgd.__main__ import main


@pytest.mark.parametrize("path, expected", [
    ([8.0, 4.0, 2.0, 1.0], ("converges monotonically", 0.5)),
    ([8.0, -4.0, 2.0, -1.0], ("oscillates and converges", -0.5)),
    ([1.0, 2.0, 4.0], ("diverges", 2.0)),
    ([1.0, -2.0, 4.0], ("oscillates and diverges", -2.0)),
    ([1.0, -1.0, 1.0], ("neither converges nor diverges", -1.0)),
])
def test_behaviour_is_read_off_the_path(path, expected):
    assert examples.behaviour_1d(np.array(path)) == expected


def test_step_sizes_1d():
    """Caption: 0.01 too small (factor 0.98), 0.2 monotone (0.6), 0.9 oscillates and converges (−0.8), 1.05
    oscillates and diverges (−1.1); the legend's words come from the path, not from minimize's message."""
    res = examples.step_sizes_1d()
    assert list(res) == [0.01, 0.2, 0.9, 1.05]
    expected = {0.01: "converges monotonically", 0.2: "converges monotonically", 0.9: "oscillates and converges",
                1.05: "oscillates and diverges"}
    for rate, r in res.items():
        assert r["behaviour"] == expected[rate], rate
        assert r["factor"] == pytest.approx(1 - 2 * rate, rel=1e-12)  # x ← (1 − 2α)x, measured on the path
        x = r["result"].path[:, 0]
        np.testing.assert_allclose(np.abs(x), 8.7 * abs(1 - 2 * rate) ** np.arange(len(x)), rtol=1e-12)
    slow, right = res[0.01]["result"].path[-1, 0], res[0.2]["result"].path[-1, 0]
    assert slow > 0.5 * 8.7 and right < 1e-5  # after 30 steps the small rate has not even halved x
    assert np.log(0.1) / np.log(0.98) == pytest.approx(114, abs=0.5)  # "114 steps per digit"


def test_step_sizes_2d_and_zigzag():
    res = examples.step_sizes_2d()
    lam = np.linalg.eigvalsh(examples.ELONGATED_HESSIAN)
    np.testing.assert_allclose(lam, [0.70, 4.30], atol=0.005)
    np.testing.assert_allclose(examples.contraction_factors(examples.ELONGATED_HESSIAN, 0.2), [0.86, 0.14],
                               atol=0.005)
    np.testing.assert_allclose(examples.contraction_factors(examples.ELONGATED_HESSIAN, 0.45), [0.69, -0.94],
                               atol=0.005)
    np.testing.assert_allclose(examples.hessian(examples.elongated_grad, [0.3, -0.2]), examples.ELONGATED_HESSIAN,
                               atol=1e-8)
    assert np.allclose(res["bowl, step 0.1"].path[1], 0.8 * np.array([8.7, -7.9]))
    assert np.allclose(res["bowl, step 0.9"].path[1], -0.8 * np.array([8.7, -7.9]))  # overshoots every step
    assert res["bowl, step 0.9"].nit == res["bowl, step 0.1"].nit  # ...and converges just as fast (|−0.8| = 0.8)
    bent = res["elongated, step 0.2"]
    errors = np.linalg.norm(bent.path, axis=1)
    assert bent.fun < 1e-10
    # after the steep direction is gone, the error shrinks by 1 - 0.2 * 0.697 = 0.861 per step
    assert errors[40] / errors[39] == pytest.approx(1 - 0.2 * lam[0], rel=1e-6)
    zig = np.diff(res["elongated, step 0.45"].path, axis=0)
    steep = np.linalg.eigh(examples.ELONGATED_HESSIAN)[1][:, 1]  # eigenvector of the large eigenvalue (4.30)
    along = zig[:20] @ steep
    assert np.all(np.sign(along[1:]) == -np.sign(along[:-1]))  # it crosses the valley back and forth


def test_optimizers_compared():
    """Caption: every optimizer at its best grid setting; tuned momentum and Adagrad need about half the steps
    of gradient descent, whose best rate 2/(λmin + λmax) = 0.4 shrinks the error by (κ − 1)/(κ + 1) = 0.72
    per step; torch's β = 0.9 rings (error × √0.9 per step); Adam rings too (its β₁ = 0.9), RMSprop does
    not ring but creeps; both take several times as many steps as gradient descent."""
    res = examples.optimizers_compared()
    lam = np.linalg.eigvalsh(examples.ELONGATED_HESSIAN)
    kappa = lam[1] / lam[0]
    # each run is the best of its grid: no other setting gets below 1e-8 for good sooner
    gd = res["gradient descent"]
    assert gd["lr"] == pytest.approx(2 / (lam[0] + lam[1]), abs=1e-12)
    err = np.linalg.norm(gd["result"].path, axis=1)
    assert err[21] / err[20] == pytest.approx((kappa - 1) / (kappa + 1), rel=1e-4)
    # the grid's winner is the rate theory picks: the smallest worst-direction factor max |1 − αλ|
    assert gd["lr"] == min(examples.RATES, key=lambda a: np.abs(
        examples.contraction_factors(examples.ELONGATED_HESSIAN, a)).max())
    mom, nest, ada = res["momentum"], res["Nesterov"], res["Adagrad"]
    for r in res.values():  # every best rate lies inside the grid, not at its edge
        assert examples.RATES[0] < r["lr"] < examples.RATES[-1]
    assert mom["settle"] <= 0.6 * gd["settle"] and ada["settle"] <= 0.6 * gd["settle"]
    assert nest["settle"] < gd["settle"]
    ring = res["momentum, torch's β = 0.9"]
    assert ring["momentum"] == 0.9 and ring["lr"] == mom["lr"] and ring["settle"] is None
    norm = np.linalg.norm(ring["result"].path, axis=1)
    envelope = norm[100:120].max() / norm[0:20].max()
    assert envelope == pytest.approx(0.9 ** 50, rel=0.5)  # |error| × √β per step: 100 steps, × 0.9^50

    def peaks(f):
        return int(np.sum((f[1:-1] > f[:-2]) & (f[1:-1] > f[2:])))

    assert peaks(ring["values"]) > 20 and peaks(res["Adam"]["values"]) >= 5
    assert peaks(res["RMSprop"]["values"]) == 0  # no momentum, no ringing...
    for name in ("RMSprop", "Adam", "Adam without bias correction"):  # ...but all three creep
        assert res[name]["settle"] is None or res[name]["settle"] > 3 * gd["settle"], name
    with_bc, without = res["Adam"]["result"], res["Adam without bias correction"]["result"]
    assert not np.allclose(with_bc.path[1], without.path[1])  # bias correction changes the first steps


def test_batch_sizes():
    """Caption: small batches win the first epoch, then stop at a noise floor proportional to the rate; full
    batch converges on; the rate multiplied by 0.7 every epoch goes far below the floor."""
    res = examples.batch_sizes()  # the figure's own numbers (about 1 s)
    full, sgd, mb, mb_half, decay = (res[k] for k in res if k != "optimum")
    assert [r["updates_per_epoch"] for r in (full, sgd, mb)] == [1, 20_000, 625]
    for r in (sgd, mb, mb_half, decay):
        assert r["gap"][0] < full["gap"][0] / 100  # one epoch: hundreds of small steps beat one big one
        assert np.all(np.diff(r["seconds"]) > 0)
    for r in (sgd, mb, mb_half):  # the floor: no progress over the second half
        second = r["gap"][len(r["gap"]) // 2:]
        assert second.min() > r["floor"] / 10 and r["floor"] > 1e-4
    assert 1.6 < mb["floor"] / mb_half["floor"] < 3.2  # halve the rate, halve the floor
    assert full["gap"][-1] < 1e-8 and full["gap"][-1] < mb_half["floor"] / 1e4  # full batch goes on
    assert full["gap"][5] < min(r["floor"] for r in (sgd, mb, mb_half)) < full["gap"][3]  # passes them at epoch 6
    assert decay["gap"][-1] < mb["floor"] / 1000  # a decaying rate removes the floor
    assert decay["gap"][0] == pytest.approx(mb["gap"][0], rel=1e-12)  # ...keeping the head start (same 1st epoch)


def test_stationary_points():
    res = examples.stationary_points()
    on_axis, kind = res["saddle"]["start on the axis"]
    assert on_axis.success and np.allclose(on_axis.x, 0, atol=1e-6) and kind[0] == "saddle"
    np.testing.assert_allclose(kind[1], [-2, 2], atol=1e-6)  # "Hessian eigenvalues 2 and −2"
    off_axis, kind_off = res["saddle"]["start 1e-3 off the axis"]
    assert off_axis.status == 2 and kind_off is None  # escapes (x2 grows without bound along -x2^2)
    ends = res["ends"]
    assert len(ends) == 7 and sum(len(e["runs"]) for e in ends) == len(res["camel"]) == 14
    for e in ends:
        eig = np.linalg.eigvalsh(examples.hessian(examples.six_hump_camel_grad, e["end"]))
        assert e["kind"] == ("minimum" if np.all(eig > 0) else "saddle")
        assert np.linalg.norm(examples.six_hump_camel_grad(e["end"])) < 1e-5  # a stationary point
    minima = [e for e in ends if e["kind"] == "minimum"]
    assert len(minima) == 6  # the six humps' minima, two of them global
    assert sorted(round(e["f"], 4) for e in minima)[:2] == [-1.0316, -1.0316]
    (zero,) = [e for e in ends if e["kind"] == "saddle"]
    assert np.allclose(zero["end"], 0) and {r["optimizer"] for r in zero["runs"]} == {"gradient descent", "Adam"}
    np.testing.assert_allclose(zero["eigenvalues"], [-np.sqrt(65), np.sqrt(65)], rtol=1e-6)  # [[8, 1], [1, -8]]


@pytest.mark.parametrize("name", sorted(examples.EXAMPLES))
def test_every_example_renders_at_docs_size(name, tmp_path, monkeypatch, capsys):
    """`fastgd demo NAME` draws the figure at a size the docs show unscaled, announces the example before the
    seconds it takes, then prints the page's "What to see" paragraph as plain text (no TeX or Markdown)."""
    import matplotlib.image

    from fastgd._what_to_see import WHAT_TO_SEE

    if name == "batch-sizes":  # smaller data for the test; the docs build uses the defaults
        original = examples.batch_sizes
        monkeypatch.setattr(examples, "batch_sizes", lambda: original(n=3000, d=5, epochs=4))
    out = tmp_path / f"{name}.png"
    assert main(["demo", name, "--out", str(out)]) == 0
    width = matplotlib.image.imread(out).shape[1]
    assert 600 <= width <= 900  # shown unscaled in the docs' 960 px column (docs/check_screenshots.py checks)
    assert out.stat().st_size > 5000
    printed = capsys.readouterr().out
    first = printed.splitlines()[0]
    assert first.startswith(f"fastgd demo {name}: {WHAT_TO_SEE[name][0]}") and "drawing" in first
    assert f"wrote {out}" in printed
    text = printed[printed.index("What to see"):]
    assert not any(c in text for c in "$\\*`")
    if name == "step-sizes-1d":
        assert "From x₀ = 8.7" in text and "log|1 − 2α|" in text  # TeX turned into Unicode
    assert set(WHAT_TO_SEE) == set(examples.EXAMPLES)
