"""fit/predict on dask collections with a real distributed.LocalCluster (2 worker processes)."""

import numpy as np
import pytest

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
dd = pytest.importorskip("dask.dataframe")

import fastgd  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from fastgd import _training  # noqa: E402
from _helpers import interrupt_first_evaluation  # noqa: E402

CHUNK = 2048


@pytest.fixture(scope="module")
def client():
    # no work stealing: fastgd's tasks prefer the worker holding their block (loose restrictions, so a lost
    # worker's blocks still get computed), but a stolen task copies its block to the thief, and "parallel"
    # mode's grouping (by holder) may then differ in the next fit of a test
    with dask.config.set({"distributed.scheduler.work-stealing": False}):
        cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None,
                                           memory_limit="1GiB")
        c = distributed.Client(cluster)
        yield c
        c.close()
        cluster.close()


def _data(n=20000, d=5, k=None, seed=0, noise=0.5):
    rng = np.random.default_rng(seed)
    X = (rng.normal(size=(n, d)) * 3 + 1).astype(np.float32)
    W = rng.normal(size=(d,) if k is None else (d, k))
    y = X @ W + noise * rng.normal(size=(n,) if k is None else (n, k)) + 7
    return X, y


def _same_blocks(monkeypatch, d, itemsize, rows=CHUNK):
    """Local blocks = the dask chunks (the exact mode's promise: equality with the local fit of the same data
    with the same blocks; locally, blocks are used for a memmapped file)."""
    monkeypatch.setattr(_training, "BLOCK_BYTES", rows * d * itemsize)


def _local(tmp_path, X):
    np.save(tmp_path / "X.npy", X)
    return np.load(tmp_path / "X.npy", mmap_mode="r")


def test_exact_equals_local_fit(client, monkeypatch, tmp_path):
    """Data whose local fit ends on its epochs' own stopping rule (low noise): with noise 0.5 the local fit hands
    its epochs over to the exact finish at the averaged steps' noise floor (8 epochs), which a dask fit, with no
    finish, does not (30 epochs to its tol rule; both within tol of least squares)."""
    X, y = _data(8192, noise=0.05)
    _same_blocks(monkeypatch, 5, 4)
    Xd, yd = da.from_array(X, chunks=(CHUNK, 5)), da.from_array(y, chunks=CHUNK)
    ref = fastgd.LinearRegressor(batch_size=256, random_state=0).fit(_local(tmp_path, X), y)
    est = fastgd.LinearRegressor(batch_size=256, random_state=0).fit(Xd, yd)
    assert est.n_iter_ == ref.n_iter_ and est.t_ == ref.t_
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=0, atol=1e-12)
    assert abs(est.intercept_ - ref.intercept_) < 1e-12
    pred = est.predict(Xd)
    assert isinstance(pred, da.Array)  # lazy
    ref_pred = ref.predict(X)  # a prediction near zero: compare on the scale of the predictions
    np.testing.assert_allclose(pred.compute(), ref_pred, rtol=1e-12, atol=1e-12 * np.abs(ref_pred).max())


def test_default_fit_ends_with_the_in_memory_finish(client, monkeypatch, tmp_path):
    """Larger data (n·d > the exact check's 250,000 values) whose in-memory fit hands its epochs over to the
    conjugate-gradient finish (noise 1: the averaged steps' noise floor above tol): the dask fit runs the same
    finish, its passes on the workers with the blocks' own y scaled as in memory, so it equals the in-memory fit
    to rounding, the finish included (without it: the epochs' model, 1e-3 off)."""
    X, y = _data(51200, noise=1.0, seed=6)
    _same_blocks(monkeypatch, 5, 4)
    Xd, yd = da.from_array(X, chunks=(CHUNK, 5)), da.from_array(y, chunks=CHUNK)
    ref = fastgd.LinearRegressor(batch_size=256, random_state=0).fit(_local(tmp_path, X), y)
    assert "conjugate gradient" in ref.stop_reason_
    est = fastgd.LinearRegressor(batch_size=256, random_state=0).fit(Xd, yd)
    assert est.stop_reason_ == ref.stop_reason_ and est.n_iter_ == ref.n_iter_
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=0, atol=1e-12)
    assert abs(est.intercept_ - ref.intercept_) < 1e-11
    A = np.hstack([X.astype(np.float64), np.ones((len(X), 1))])
    np.testing.assert_allclose(est.coef_, np.linalg.lstsq(A, y, rcond=None)[0][:5], rtol=0, atol=1e-6)


def test_huber_fit_ends_with_the_in_memory_lbfgs_finish(client, monkeypatch, tmp_path):
    """Another smooth loss on larger data: the in-memory fit's full-batch L-BFGS finish follows on the blocks too
    (the targets per output and the constant mean's loss, the unit of tol, computed on the workers), so the
    dask fit equals the in-memory one to rounding (before: the epochs' model, 4e-4 off)."""
    X, y = _data(14336, 20, seed=10, noise=1.0)  # 286,720 values: past the exact check's 250,000
    _same_blocks(monkeypatch, 20, 4)
    Xd, yd = da.from_array(X, chunks=(CHUNK, 20)), da.from_array(y, chunks=CHUNK)
    ref = fastgd.LinearRegressor(loss="huber", batch_size=256, random_state=0).fit(_local(tmp_path, X), y)
    assert "L-BFGS" in ref.stop_reason_
    est = fastgd.LinearRegressor(loss="huber", batch_size=256, random_state=0).fit(Xd, yd)
    assert est.stop_reason_ == ref.stop_reason_ and est.n_iter_ == ref.n_iter_
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=0, atol=1e-11)


def _near_duplicate(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 5))
    X[:, 1] = X[:, 0] + 1e-2 * rng.standard_normal(n)  # a near-duplicate pair: curvature spread about 1e4
    y = X @ rng.standard_normal(5) + 0.01 * rng.standard_normal(n)
    return X, y


def test_near_duplicate_columns_are_finished_or_warned(client, monkeypatch):
    """R² within tol of least squares but coefficients far off (0.3 before: the epochs stopped on their tol rule):
    the rows sampled from the blocks (``DaskFitData.sample_rows``, weighted) measure the columns ill-conditioned,
    so the finish follows, in both modes; where it stops short (its iterations capped here) it warns, naming
    the condition number and an exact solver."""
    from fastgd import estimator

    X, y = _near_duplicate(10000, 7)
    sw = np.random.default_rng(8).uniform(0.5, 1.5, size=len(X))
    A = np.hstack([X * np.sqrt(sw)[:, None], np.sqrt(sw)[:, None]])
    best = np.linalg.lstsq(A, y * np.sqrt(sw), rcond=None)[0][:5]
    Xd, yd, wd = da.from_array(X, chunks=(2560, 5)), da.from_array(y, chunks=2560), da.from_array(sw, chunks=2560)
    for mode in ("exact", "parallel"):
        est = fastgd.LinearRegressor(random_state=0, distributed=mode).fit(Xd, yd, sample_weight=wd)
        assert "conjugate gradient" in est.stop_reason_
        np.testing.assert_allclose(est.coef_, best, rtol=0, atol=1e-8)
    monkeypatch.setattr(estimator, "FINISH_CG_ITER", 1)
    with pytest.warns(ConvergenceWarning, match="conjugate-gradient finish of this fit stopped"):
        fastgd.LinearRegressor(random_state=0).fit(Xd, yd)


def test_ctrl_c_in_the_finish_keeps_the_epochs_model(client, monkeypatch):
    X, y = _near_duplicate(8192, 9)
    Xd, yd = da.from_array(X, chunks=(CHUNK, 5)), da.from_array(y, chunks=CHUNK)

    def interrupted(problem, ts, *args, **kwargs):
        ts.theta += 1.0  # a half-done step, which must not be kept
        raise KeyboardInterrupt

    monkeypatch.setattr(_training, "train_pcg", interrupted)
    with pytest.warns(UserWarning, match="interrupted during the exact finish"):
        est = fastgd.LinearRegressor(random_state=0).fit(Xd, yd)
    assert "interrupted" in est.stop_reason_
    np.testing.assert_allclose(est._ts.theta, est._scaling.to_std(est._raw_params(1, 5)), rtol=0, atol=0)
    assert est.score(X, y) > 0.99  # the epochs' model


def test_exact_multioutput_weights_and_rechunk(client, monkeypatch, tmp_path):
    """Chunks that are not whole batches are rechunked on the cluster; sample weights and k = 2 outputs."""
    X, Y = _data(5000, 4, k=2, seed=1, noise=0.05)  # no handover to a finish locally (test_exact_equals_local_fit)
    sw = np.random.default_rng(2).uniform(0, 2, size=len(X))
    _same_blocks(monkeypatch, 4, 4, rows=1536)
    Xd = da.from_array(X, chunks=(1500, 4))  # chunks of 1500 rows -> blocks of 1536 rows (6 whole batches of 256)
    ref = fastgd.LinearRegressor(batch_size=256, random_state=3, penalty="l2", alpha=1e-3).fit(
        _local(tmp_path, X), Y, sample_weight=sw)
    est = fastgd.LinearRegressor(batch_size=256, random_state=3, penalty="l2", alpha=1e-3).fit(
        Xd, da.from_array(Y, chunks=(1500, 2)), sample_weight=da.from_array(sw, chunks=1500))
    assert est.n_iter_ == ref.n_iter_
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(est.intercept_, ref.intercept_, rtol=0, atol=1e-10)
    assert est.predict(Xd).compute().shape == (5000, 2)


def test_dataframe_and_parallel_mode(client):
    X, y = _data(16384, 5, seed=4)
    cols = [f"f{i}" for i in range(5)]
    import pandas as pd

    ddf = dd.from_pandas(pd.DataFrame(X, columns=cols), npartitions=4)
    ys = dd.from_pandas(pd.Series(y), npartitions=4)
    est = fastgd.LinearRegressor(random_state=0, distributed="parallel").fit(ddf, ys)
    assert list(est.feature_names_in_) == cols
    A = np.hstack([X.astype(np.float64), np.ones((len(X), 1))])
    best = np.linalg.lstsq(A, y, rcond=None)[0]
    r2_best = 1 - np.square(A @ best - y).sum() / np.square(y - y.mean()).sum()
    pred = est.predict(ddf).compute()
    r2 = 1 - np.square(pred - y).sum() / np.square(y - y.mean()).sum()
    assert r2 > r2_best - 1e-4  # averaged local SGD lands next to the least-squares optimum


def test_fit_never_gathers_X_to_the_client(client, monkeypatch):
    X, y = _data(8192, 3, seed=5)
    Xd, yd = da.from_array(X, chunks=(CHUNK, 3)), da.from_array(y, chunks=CHUNK)

    def refuse(self, *args, **kwargs):
        raise AssertionError("a dask array was converted to NumPy in the client")

    monkeypatch.setattr(da.Array, "__array__", refuse)
    monkeypatch.setattr(da.Array, "compute", refuse)
    est = fastgd.LinearRegressor(random_state=0, max_iter=5, tol=None).fit(Xd, yd)
    assert est.n_iter_ == 5 and np.all(np.isfinite(est.coef_))


def test_errors_name_the_fix(client):
    X, y = _data(1000, 2)
    Xd = da.from_array(X, chunks=(512, 2))
    with pytest.raises(TypeError, match="partial_fit"):
        fastgd.LinearRegressor().partial_fit(Xd, y)
    with pytest.raises(ValueError, match="distributed"):
        fastgd.LinearRegressor(distributed="fast").fit(Xd, da.from_array(y, chunks=512))
    Xbad = X.copy()
    Xbad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fastgd.LinearRegressor().fit(da.from_array(Xbad, chunks=(512, 2)), da.from_array(y, chunks=512))


def _keys_on_workers(client):
    return {key for keys in client.has_what().values() for key in keys}


def test_a_fit_that_fails_on_bad_values_frees_the_persisted_blocks(client):
    import time

    X, y = _data(4096, 3)
    X[5, 1] = np.nan
    before = _keys_on_workers(client)
    with pytest.raises(ValueError, match="NaN") as info:
        fastgd.LinearRegressor().fit(da.from_array(X, chunks=(1000, 3)), da.from_array(y, chunks=1000))
    deadline = time.monotonic() + 10
    while not _keys_on_workers(client) <= before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _keys_on_workers(client) <= before  # nothing of this fit is left, even while the traceback is held
    del info


def test_unknown_chunk_sizes_of_y_and_sample_weight(client):
    X, y = _data(4096, 3)
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(y))
    keep = X[:, 0] > 0
    Xd, yd, wd = (da.from_array(a, chunks=1024 if a.ndim == 1 else (1024, 3)) for a in (X, y, w))
    mask = Xd[:, 0] > 0
    est = fastgd.LinearRegressor(random_state=0).fit(Xd[mask], yd[mask], sample_weight=wd[mask])
    assert est.score(X[keep], y[keep], sample_weight=w[keep]) > 0.9


def test_all_zero_sample_weight_is_named(client):
    X, y = _data(2048, 2)
    with pytest.raises(ValueError, match="sample_weight sums to zero"):
        fastgd.LinearRegressor().fit(da.from_array(X, chunks=(512, 2)), da.from_array(y, chunks=512),
                                     sample_weight=da.zeros(len(y), chunks=512))


def test_no_intercept_statistics_of_a_zero_block_merge_exactly(client):
    """A column all zero in one block: the blocks' statistics merge into the whole data's scales."""
    X, y = _data(4096, 3)
    X[:CHUNK, 1] = 0.0
    Xd, yd = da.from_array(X, chunks=(CHUNK, 3)), da.from_array(y, chunks=CHUNK)
    est = fastgd.LinearRegressor(fit_intercept=False, max_iter=1, tol=None).fit(Xd, yd)
    ref = fastgd.LinearRegressor(fit_intercept=False, max_iter=1, tol=None).fit(X, y)
    np.testing.assert_allclose(est._scaling.x_scale, ref._scaling.x_scale, rtol=1e-12)
    np.testing.assert_allclose(est._scaling.y_scale, ref._scaling.y_scale, rtol=1e-12)


def test_ctrl_c_in_the_evaluation_pass_keeps_the_epoch_in_parallel_mode(client, monkeypatch):
    X, y = _data(8192, 4)
    # persisted once, so both fits find the blocks on the same workers ("parallel" groups blocks by worker)
    Xd, yd = client.persist([da.from_array(X, chunks=(CHUNK, 4)), da.from_array(y, chunks=CHUNK)])
    restore = interrupt_first_evaluation(monkeypatch)
    with pytest.warns(UserWarning, match="interrupted"):
        est = fastgd.LinearRegressor(distributed="parallel", batch_size=256, random_state=0).fit(Xd, yd)
    restore()
    ref = fastgd.LinearRegressor(distributed="parallel", batch_size=256, random_state=0, max_iter=est.n_iter_,
                                 tol=None).fit(Xd, yd)
    assert est.n_iter_ >= 1 and est.score(X, y) > 0.1  # the epoch's model, not the start (R² 0)
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-12)


def test_fits_never_copy_X_to_another_worker(client):
    """Every task on a block runs on the worker that holds its X (``Blocks.owner``). Before, dask ran a task
    where the larger share of its inputs was, or where a worker was idle, and copied the block there; the
    next fit then found other holders, and "parallel" mode's grouping (by holder), hence its coefficients,
    changed (0.1 apart once in CI). Here every y block (32 float64 outputs: 16 times X's size) is on one worker."""
    X, Y = _data(8192, 4, k=32, seed=3)
    first = sorted(client.scheduler_info()["workers"])[0]
    Xd = client.persist(da.from_array(X, chunks=(CHUNK, 4)))
    Yd = client.persist(da.from_array(Y, chunks=(CHUNK, 32)), workers=[first])
    distributed.wait([Xd, Yd])

    def holders():
        fs = distributed.futures_of(Xd)
        who = client.who_has(fs)
        return [sorted(who[f.key]) for f in fs]

    before = holders()
    assert len({h[0] for h in before}) == 2  # X's blocks on both workers
    fits = [fastgd.LinearRegressor(distributed=mode, batch_size=256, random_state=0, max_iter=2, tol=None).fit(Xd, Yd)
            for mode in ("parallel", "exact", "parallel")]
    assert holders() == before
    np.testing.assert_array_equal(fits[0].coef_, fits[2].coef_)


def test_huge_sample_weights_are_normalized(client):
    X, y = _data(4096, 3)
    Xd, yd = da.from_array(X, chunks=(1024, 3)), da.from_array(y, chunks=1024)
    w = np.random.default_rng(2).uniform(0.5, 2.0, len(y))
    one = fastgd.LinearRegressor(random_state=0).fit(Xd, yd, sample_weight=da.from_array(w, chunks=1024))
    big = fastgd.LinearRegressor(random_state=0).fit(Xd, yd, sample_weight=da.from_array(w * 2.0 ** 1015,
                                                                                          chunks=1024))
    np.testing.assert_array_equal(big.coef_, one.coef_)  # a power of two scales every sum exactly


def test_dataframe_columns_from_parquet_files(client, tmp_path):
    """The user guide's example: a column selection of a dask DataFrame read from several Parquet files (dask
    fuses a single column's partitions when it counts their rows; that once failed with "2 != 3")."""
    pytest.importorskip("pyarrow")
    import pandas as pd

    rng = np.random.default_rng(0)
    for i in range(3):
        X = rng.standard_normal((1000, 3))
        pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "target": X @ [1.0, 2.0, -1.0] + 0.5}).to_parquet(
            tmp_path / f"part{i}.parquet")
    frame = dd.read_parquet(str(tmp_path / "part*.parquet"))
    model = fastgd.LinearRegressor(distributed="exact", random_state=0).fit(frame[["a", "b", "c"]], frame["target"])
    np.testing.assert_allclose(model.coef_, [1.0, 2.0, -1.0], atol=1e-4)


def _blocks(client, parts, block_batches):
    """A ``_dask.Blocks`` on futures scattered by the test (batches of ``block_batches`` per block), no worker
    preferred."""
    from fastgd import _dask

    b = object.__new__(_dask.Blocks)
    b.client, b.parts, b.block_batches, b.owner = client, parts, block_batches, [None] * len(parts)
    return b


def test_evaluation_sums_group_batches_as_the_kernels_do(client):
    """With many coordinates the kernels sum fewer, larger groups of batches (max_chunks(m) < MAX_CHUNKS): the
    sums gathered from the blocks must be added in the same groups to be the in-memory numbers bit for bit."""
    from fastgd import _dask, _engine

    rng = np.random.default_rng(0)
    n, d, k, bs = 1840, 1000, 20, 8  # m = k (d + 1) = 20,020 coordinates: groups of ceil(230 / 209) = 2 batches
    X, Y = rng.standard_normal((n, d)), rng.standard_normal((n, k))
    theta = 0.01 * rng.standard_normal((k, d + 1))
    ids = np.arange(n // bs, dtype=np.int64)
    assert _engine.K.max_chunks(theta.size) < _engine.K.MAX_CHUNKS
    blocks = _blocks(client, [(client.scatter(X), client.scatter(Y), None)], len(ids))
    got = _dask._DaskKernels(blocks, "numba").batches_stats(None, None, None, theta, bs, ids)
    want = _engine.kernels("numba").batches_stats(X, Y, _engine.EMPTY, theta, bs, ids, 1)
    np.testing.assert_array_equal(got[0], want[0])
    assert got[1] == want[1] and got[2] == want[2]
    # the loss-only pass has no per-group buffer, so MAX_CHUNKS groups: the blocks' sums added in those
    ids = np.arange(n // 2, dtype=np.int64)  # batches of 2 rows: groups of 4 batches, batches_stats' of 5
    blocks.block_batches = len(ids)
    loss = _dask._DaskKernels(blocks, "numba").batches_loss(None, None, None, theta, 2, ids)
    assert tuple(loss) == tuple(_engine.kernels("numba").batches_loss(X, Y, _engine.EMPTY, theta, 2, ids, 1))


def test_targets_marker_gives_the_in_memory_sums(client):
    """The finish's targets on dask blocks (``DaskFitData.targets``): each block divides its own y by the outputs'
    scales, or takes zeros, and the sums are the in-memory kernels' on ``FitData.targets``' arrays, bit for bit."""
    from fastgd import _dask, _engine

    rng = np.random.default_rng(1)
    n, d, k, bs = 1024, 6, 2, 64
    X, Y = rng.standard_normal((n, d)), rng.standard_normal((n, k)) * [3.0, 0.1]
    theta = 0.1 * rng.standard_normal((k, d + 1))
    ids = np.arange(n // bs, dtype=np.int64)
    blocks = _blocks(client, [(client.scatter(X[:512]), client.scatter(Y[:512]), None),
                              (client.scatter(X[512:]), client.scatter(Y[512:]), None)], 8)
    scale = np.array([3.0, 0.1])
    local = _training.FitData(X, Y, None, bs, None, "numba", 1, True, 0.0, 0.0)
    for marker, Yk in ((_dask.Targets(scale), local.targets(scale)), (_dask.Targets(None), local.targets(None))):
        got = _dask._DaskKernels(blocks, "numba").batches_stats(None, marker, None, theta, bs, ids)
        want = _engine.kernels("numba").batches_stats(X, Yk, _engine.EMPTY, theta, bs, ids, 1)
        np.testing.assert_array_equal(got[0], want[0])
        assert got[1] == want[1] and got[2] == want[2]


def test_prediction_of_a_dataframe_checks_its_column_names_and_scores_it(client):
    """A model fitted on a dask DataFrame predicted one with its columns reordered or renamed silently, in the
    wrong places (R² 0.437 for 1.0), where a pandas frame raises; ``score`` on a dask DataFrame failed ("Cannot
    call len() on object with unknown chunk size": its predictions had partitions of unknown length); and dask
    blocks of SciPy CSR failed inside a worker ("setting an array element with a sequence"). Now a frame's names
    are checked as scikit-learn checks a pandas frame's, its partitions counted as fit counts them, and sparse
    blocks refused with the fix, as fit refuses them."""
    import pandas as pd
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    pdf = pd.DataFrame(rng.normal(size=(2000, 3)), columns=["a", "b", "c"])
    pdf["t"] = pdf.a + 2 * pdf.b + 3 * pdf.c
    ddf = dd.from_pandas(pdf, npartitions=4)
    est = fastgd.LinearRegressor(random_state=0).fit(ddf[["a", "b", "c"]], ddf["t"])
    for bad in (ddf[["c", "b", "a"]], ddf.rename(columns={"c": "z"})[["a", "b", "z"]]):
        with pytest.raises(ValueError, match="feature names should match"):
            est.predict(bad)
    assert est.score(ddf[["a", "b", "c"]], ddf["t"]) == pytest.approx(est.score(pdf[["a", "b", "c"]], pdf["t"]))
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        est.predict(ddf[["a", "b", "c"]].to_dask_array(lengths=True))
    blocks = da.from_array(pdf[["a", "b", "c"]].to_numpy(), chunks=(500, 3)).map_blocks(sp.csr_matrix)
    with pytest.raises(TypeError, match="densify them"), pytest.warns(UserWarning, match="valid feature names"):
        est.predict(blocks)
