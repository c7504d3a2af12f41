"""Threads: results bit-identical for any thread count, task split and path; the thread-count rules (n_jobs,
OpenMP limits, when a parallel region opens); concurrent fits in Python threads; more threads than cores."""

import math
import sys
import threading

import numba
import numpy as np
import pytest
import scipy.sparse as sp

from fastgd import LinearRegressor, _config, _engine, _training
from fastgd import _kernels as K
from fastgd.optimizers import OPTIMIZERS, SGD

from _helpers import problem

# 2900 rows in batches of 1000: 16 chunks of 64 rows per full batch and a last partial batch of 900 rows.
N, D = 2900, 20


BACKENDS = ["numba", "native"] if _engine.native_available() else ["numba"]


def fit(path, n_threads, dtype=np.float64, opt="adam", backend="numba"):
    X, y = problem(n=N, d=D, dtype=dtype, seed=11)
    ts, _ = _training.train_epochs(X, y, OPTIMIZERS[opt](lr=0.01), batch_size=1000, epochs=3, n_threads=n_threads,
                          path=path, backend=backend)
    return ts.theta


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bit_identical_for_any_thread_count_task_split_and_path(dtype, backend):
    """The sequential path on one thread against the sequential path on 2, the parallel path with 1 and 2
    workers, with 3, 5 and 7 (runs of unequal lengths over the 16-chunk batches, not aligned with the sum
    tree), and with 8 (more threads than this machine's cores for native: waits must give the core away; Numba
    runs at most NUMBA_NUM_THREADS threads and the running ones claim the other workers' tasks)."""
    assert numba.config.NUMBA_NUM_THREADS >= 2, "this test needs at least 2 Numba threads"
    rule = _engine.kernels(backend).epoch_threads
    want = fit(K.PATH_SEQUENTIAL, 1, dtype, backend=backend)
    for path, threads in ((K.PATH_SEQUENTIAL, 2), (K.PATH_PARALLEL, 1), (K.PATH_PARALLEL, 2), (K.PATH_PARALLEL, 3),
                          (K.PATH_PARALLEL, 5), (K.PATH_PARALLEL, 7), (K.PATH_PARALLEL, 8)):
        # each parallel case really splits the batches (1000 and 900 rows) among that many workers
        assert path == K.PATH_SEQUENTIAL or rule(900, D, 1, threads, path) == threads
        assert np.array_equal(fit(path, threads, dtype, backend=backend), want), (path, threads)


def test_thread_count_is_restored():
    before = numba.get_num_threads()
    fit(K.PATH_PARALLEL, 1)
    assert numba.get_num_threads() == before


def test_concurrent_fits_in_python_threads_match_serial_fits():
    """Four fits at once (as joblib's threading backend or a web server would run them)."""
    opts = ["adam", "sgd", "rmsprop", "nadam"]
    serial = [fit(K.PATH_PARALLEL, 2, opt=o) for o in opts]
    results = [None] * 4
    errors = []

    def work(i):
        try:
            results[i] = fit(K.PATH_PARALLEL, 2, opt=opts[i])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for got, want in zip(results, serial):
        assert np.array_equal(got, want)


def test_threads_training_one_estimator_take_turns():
    """Two threads calling partial_fit on one estimator (native, CSR, n_jobs=2): the calls shared the lazy
    epoch's workspace, 4 of 10 raised a false "Training diverged" and n_iter_ ended at 2 (a red team's case).
    They take turns now (fastgd.estimator._call_lock): every call counts, and the model is what the same chunks
    give one after another in the order the calls took (that order is the threads'; so is any model's)."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(3)
    X = sp.random(20000, 300, density=0.03, format="csr", random_state=1)
    y = X @ rng.normal(size=300) + 0.1 * rng.normal(size=20000)
    chunks = [(X[i:i + 2000], y[i:i + 2000]) for i in range(0, 20000, 2000)]
    for backend in ("native", "numba"):
        model = LinearRegressor(random_state=0, backend=backend, n_jobs=2)
        with ThreadPoolExecutor(2) as pool:
            calls = [pool.submit(model.partial_fit, *chunk) for chunk in chunks]
        for call in calls:
            call.result()  # none raised
        assert model.n_iter_ == len(chunks) and model.score(X, y) > 0.98, (backend, model.n_iter_)


def test_sparse_fits_in_python_threads_match_the_main_threads():
    """The default sparse fit (epochs, strength path, conjugate-gradient finish) in a worker thread, and two at
    once, equal the main thread's bit for bit: the finish's dot products over 2^14 coordinates are long enough
    for OpenBLAS to split over its threads, and a limit set on them from a worker thread did not hold (one
    coefficient was off by 1e-15). The finish is the estimator's, the same for both backends."""
    import scipy.sparse as sp

    from fastgd import LinearRegressor

    rng = np.random.default_rng(0)
    n, d = 1000, 2 ** 14
    X = sp.random(n, d, density=20 / d, format="csr", random_state=1, data_rvs=lambda s: np.ones(s))
    y = X @ rng.standard_normal(d) + 0.5 * rng.standard_normal(n)

    def one():
        return LinearRegressor(backend=BACKENDS[-1], random_state=0).fit(X, y).coef_

    want = one()
    results = [None] * 3
    errors = []

    def work(i):
        try:
            results[i] = one()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    alone = threading.Thread(target=work, args=(0,))
    alone.start()
    alone.join()
    pair = [threading.Thread(target=work, args=(i,)) for i in (1, 2)]
    for t in pair:
        t.start()
    for t in pair:
        t.join()
    assert not errors
    for got in results:
        assert np.array_equal(got, want)


@pytest.mark.parametrize("backend", BACKENDS)
def test_epoch_thread_rule(backend):
    """Threads of the parallel epoch (0: sequential): never more than the batch's chunks nor one per
    PAR_WORK_PER_THREAD multiply-adds, a forced path obeyed, and the same rule in both backends."""
    rule = _engine.kernels(backend).epoch_threads
    auto, seq, par = K.PATH_AUTO, K.PATH_SEQUENTIAL, K.PATH_PARALLEL
    assert rule(64, 1000, 1, 16, auto) == 0  # one chunk
    assert rule(64, 1000, 1, 16, par) == 0
    assert rule(256, 100, 1, 16, auto) == 4  # 4 chunks of 64 rows: 4 threads, not 16
    assert rule(256, 100, 1, 3, auto) == 3
    assert rule(4096, 100, 1, 16, auto) == 16
    assert rule(256, 10, 1, 16, auto) == 0  # 2560 multiply-adds: less than two threads' worth
    assert rule(1024, 10, 1, 16, auto) == 1024 * 10 // K.PAR_WORK_PER_THREAD
    assert rule(1024, 10, 3, 16, auto) == 12  # outputs multiply the work
    assert rule(4096, 100, 1, 1, auto) == 0  # one thread asked for
    assert rule(4096, 100, 1, 16, seq) == 0
    assert rule(4096, 100, 1, 1, par) == 1  # forced: one worker runs the protocol alone
    assert rule(256, 100, 1, 16, par) == 4


@pytest.mark.parametrize("backend", BACKENDS)
def test_small_work_opens_no_parallel_region(backend, monkeypatch):
    """Every entry point decides from its work: one chunk (or too little work) runs on the calling thread."""
    mod = _engine.kernels(backend)
    opened = []
    if backend == "native":
        monkeypatch.setattr(_config, "note_team_started", lambda: opened.append(1))
    else:
        real = K._in_team
        monkeypatch.setattr(K, "_in_team", lambda fn, n, *a: opened.append(n) or real(fn, n, *a))
    X, y = problem(n=N, d=D, seed=11)
    Y = _engine.targets_2d(y)
    theta = np.zeros((1, D + 1))
    ids = np.arange(3, dtype=np.int64)
    mod.column_stats(X, np.empty(0), 2)  # 2900 rows: one chunk of statistics
    mod.predict(X[:1000], theta, 2)  # one chunk of predictions
    mod.batches_stats(X, Y, np.empty(0), theta, 8, ids, 2)  # 24 rows x 20 features
    assert opened == []
    assert K.region_threads(2, 1, 10**9) == 1 and K.region_threads(2, 8, 10) == 1
    assert K.region_threads(16, 8, 10**9) == 8 and K.region_threads(16, 100, 3 * K.REGION_MIN_WORK) == 3
    if backend == "native":  # the epoch's rule seen from outside: one-chunk batches open no region
        _training.train_epochs(X, y, OPTIMIZERS["adam"](lr=0.01), batch_size=64, epochs=1, n_threads=2,
                               backend="native")
        assert opened == []
    mod.column_stats(np.tile(X, (8, 1)), np.empty(0), 2)  # 6 chunks, enough work: 2 threads
    assert opened == ([1] if backend == "native" else [2])


def test_the_lazy_epochs_passes_over_every_coordinate_open_a_region_only_for_many_coordinates(monkeypatch):
    """The native lazy epoch's passes over all k·(d + 1) coordinates (into its records, the end's catch-up)
    take about 10 ns a coordinate; a region's join waits a time slice for a thread the OS has not run, so with
    another busy process a stream of 100-row chunks at d = 2^15 took 13.3 ms a call with n_jobs=2 against
    3.7 with 1 (three regions a call). Below LAZY_REGION_COORDS coordinates per thread they run on the calling
    thread, with the same bits."""
    from fastgd import _rules

    opened = []
    monkeypatch.setattr(_config, "note_team_started", lambda: opened.append(1))
    rng = np.random.default_rng(0)
    for d, regions in ((2**15, False), (2 * _rules.LAZY_REGION_COORDS, True)):
        cols = np.sort(rng.choice(d, size=(300, 30)), axis=1)  # 30 values a row (sp.random: 19 s at 2^20)
        X = sp.csr_matrix((np.ones(9000), cols.ravel(), np.arange(0, 9001, 30)), shape=(300, d))
        X.sum_duplicates()
        y = rng.standard_normal(300)
        fits = []
        for n_jobs in (1, 2):
            opened.clear()
            model = LinearRegressor(backend="native", n_jobs=n_jobs, random_state=0)
            model.partial_fit(X[:150], y[:150]).partial_fit(X[150:], y[150:])
            fits.append(np.append(model.coef_, model.intercept_))
            assert bool(opened) == (regions and n_jobs == 2), (d, n_jobs, opened)
        assert np.array_equal(fits[0], fits[1])


def test_parallel_epoch_cannot_deadlock_with_fewer_threads_than_workers():
    """Four workers asked for while Numba runs one thread: the first worker does every task alone."""
    X, y = problem(n=N, d=D, seed=11)
    want = fit(K.PATH_SEQUENTIAL, 1)
    opt = OPTIMIZERS["adam"](lr=0.01)
    ts = _engine.TrainingState.fresh(opt, 1, D)
    rng = np.random.default_rng(0)
    Y = _engine.targets_2d(y)
    sched, pen = _engine.no_schedule(), np.zeros(2)
    with _engine.numba_threads(1):
        for _ in range(3):
            order = _engine.batch_order(N, 1000, True, rng)
            K.epoch(X, Y, np.empty(0), ts.theta, ts.state, ts.scalars, opt.code, opt.pack(), sched, pen, True,
                    1000, order, 4, K.PATH_PARALLEL, np.empty(0), np.empty(0), np.empty(0))
    assert np.array_equal(ts.theta, want)


@pytest.mark.parametrize("backend", BACKENDS)
def test_column_stats_chunks_fit_in_cache_and_stay_accurate(backend):
    """Dense column statistics: chunks of about STATS_CHUNK_BYTES, at most STATS_BUDGET_BYTES of per-chunk sums,
    the sums shifted by each chunk's first row and Chan's merge accurate for a column with a large mean, and
    the same result for any thread count."""
    assert K.stats_rows(10**6, 100) * 100 * 8 <= K.STATS_CHUNK_BYTES
    for n, d in ((10**9, 100), (10**7, 10**4)):
        nch = -(-n // K.stats_rows(n, d))
        assert nch <= max(K.MAX_CHUNKS, K.STATS_BUDGET_BYTES // (16 * d))
    rng = np.random.default_rng(5)
    X = rng.standard_normal((20_000, 7)) * np.arange(1, 8) + np.array([1e6, 0, 0, 0, 0, 0, -3e3])
    sw = rng.uniform(0.5, 2.0, 20_000)
    assert -(-20_000 // K.stats_rows(20_000, 7)) > 1
    kern = _engine.kernels(backend)
    mean, var, total = kern.column_stats(X, sw, 1)
    want_mean = np.average(X, axis=0, weights=sw)
    want_var = np.average((X - want_mean) ** 2, axis=0, weights=sw)
    # the mean to 1e-13 of itself or of the column's spread (columns 1-5 have a mean near 0)
    np.testing.assert_allclose(mean, want_mean, rtol=1e-13, atol=1e-13 * np.sqrt(want_var).min())
    np.testing.assert_allclose(var, want_var, rtol=1e-9)  # column 0: x ~ 1e6 holds ~1e-10 absolute
    assert total == pytest.approx(sw.sum(), rel=1e-14)
    for got, want in zip(kern.column_stats(X, sw, 2), (mean, var, total)):
        assert np.array_equal(got, want)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_column_stats_one_pass_is_accurate_whatever_each_chunks_first_row(backend, dtype):
    """The dense column statistics shift each chunk's sums by its first row and add four rows at a time: a
    first row far out in the tail (here every chunk's, 1e4 spreads from the mean), a first row of weight 0,
    chunks whose rows are not a multiple of four, a large offset, and float32 X keep the mean and variance
    to float64 accuracy, the same for any thread count."""
    rng = np.random.default_rng(11)
    d = 5
    rows = K.stats_rows(10**5, d)
    n = 3 * rows + 3  # a last chunk of three rows, and every chunk's tail past its groups of four
    X = (rng.standard_normal((n, d)) * np.array([1.0, 2.0, 0.5, 3.0, 1.0])
         + np.array([1e4, 0.0, -50.0, 0.0, 7.0])).astype(dtype)
    X[::rows] += np.asarray(1e4 * np.array([1.0, -2.0, 0.5, 3.0, 1.0]), dtype=dtype)  # each chunk's first row
    sw = rng.uniform(0.5, 2.0, n)
    sw[rows] = 0.0
    kern = _engine.kernels(backend)
    X64 = X.astype(np.float64)
    for w in (np.empty(0), sw):
        mean, var, total = kern.column_stats(X, w, 1)
        ww = np.ones(n) if w.size == 0 else w
        want_mean = np.average(X64, axis=0, weights=ww)
        want_var = np.average((X64 - want_mean) ** 2, axis=0, weights=ww)
        # the mean to 1e-12 of each column's spread (a shift 1e4 spreads away costs 1e4 roundings of the mean)
        assert np.all(np.abs(mean - want_mean) <= 1e-12 * np.sqrt(want_var)), (mean, want_mean)
        np.testing.assert_allclose(var, want_var, rtol=1e-9)  # as the two-pass statistics were held to
        assert total == pytest.approx(ww.sum(), rel=1e-14)
        assert all(np.array_equal(a, b) for a, b in zip(kern.column_stats(X, w, 2), (mean, var, total)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_column_stats_ignore_the_values_of_rows_of_weight_zero(backend):
    """Rows of weight 0 count for nothing, whatever they hold: each chunk's sums are shifted by its first row
    of positive weight (shifted by its first row, weight 0 and 1e8 from the others, whole columns' variances
    came out 0 and a fit's coefficients moved by 0.06)."""
    rng = np.random.default_rng(1)
    n, d = 20_000, 10
    X = rng.standard_normal((n, d))
    starts = np.arange(0, n, K.stats_rows(n, d))
    sw = np.ones(n)
    sw[starts] = 0.0
    sw[starts[1:3] + 1] = 0.0  # two chunks whose first two rows weigh nothing
    kern = _engine.kernels(backend)
    kept = np.ones(n, bool)
    kept[sw == 0.0] = False
    want_mean, want_var = X[kept].mean(axis=0), X[kept].var(axis=0)
    results = []
    for far in (0.0, 1e8, -1e12):
        Z = X.copy()
        Z[sw == 0.0] = far
        for threads in (1, 2):
            results.append(kern.column_stats(Z, sw, threads))
    np.testing.assert_allclose(results[0][0], want_mean, rtol=0, atol=1e-14)
    np.testing.assert_allclose(results[0][1], want_var, rtol=1e-12)
    for got in results[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(got, results[0]))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("weighted", [False, True])
def test_one_column_statistics_use_partial_sums_and_stay_accurate(backend, weighted):
    """The statistics of one column (y) take their own loop (partial sums over rows): accurate for a large
    mean, rows not a multiple of the partial sums, zero weights, float32, and the same for any thread count."""
    rng = np.random.default_rng(6)
    n = 3 * K.stats_rows(10**6, 1) + 7
    kern = _engine.kernels(backend)
    for dtype in (np.float64, np.float32):
        y = (rng.standard_normal((n, 1)) * 2.0 + 1e4).astype(dtype)
        sw = rng.uniform(0.0, 2.0, n) * (rng.random(n) > 0.1) if weighted else np.ones(n)
        mean, var, total = kern.column_stats(y, sw if weighted else np.empty(0), 1)
        want_mean = np.average(y.astype(np.float64), axis=0, weights=sw)
        want_var = np.average((y - want_mean) ** 2, axis=0, weights=sw)
        np.testing.assert_allclose(mean, want_mean, rtol=1e-14)
        np.testing.assert_allclose(var, want_var, rtol=1e-9)
        assert total == pytest.approx(sw.sum(), rel=1e-14)
        for got, want in zip(kern.column_stats(y, sw if weighted else np.empty(0), 2), (mean, var, total)):
            assert np.array_equal(got, want)


def test_sum_tree_is_the_same_for_every_split_into_tasks():
    """The dense epoch's chunk sum: nodes inside each task's run, then the ones across runs, give buffer 0 the
    same bits as the whole tree done as one run, for every number of tasks (uneven runs included)."""
    rng = np.random.default_rng(2)
    for nch in (1, 2, 3, 5, 8, 13, 16, 37, 64):
        part0 = rng.standard_normal((nch, 9)) * 10.0 ** rng.integers(-8, 8, (nch, 1))
        whole = part0.copy()
        K._tree_within(whole, 0, nch, nch, 7)
        assert np.array_equal(whole[0, 8:], part0[0, 8:])  # only the m + 1 = 8 sums are touched
        for ntb in range(1, nch + 1):
            part = part0.copy()
            for j in range(ntb):
                K._tree_within(part, nch * j // ntb, nch * (j + 1) // ntb, nch, 7)
            K._tree_across(part, nch, ntb, 7)
            assert np.array_equal(part[0], whole[0]), (nch, ntb)
        assert math.fsum(part0[:, 0]) == pytest.approx(whole[0, 0], rel=1e-12, abs=1e-20)


def test_fit_checks_x_for_non_finite_values_with_all_threads(monkeypatch):
    """scikit-learn's finiteness check of X sums it on one thread (on 16 cores about 8 all-core reads of X, half
    of a default fit): fastgd checks with its own parallel read and calls scikit-learn's check only to word the
    error for an X that is not finite."""
    import sklearn.utils.validation as skv

    from fastgd import LinearRegressor, estimator

    calls = []
    real = skv._assert_all_finite
    spy = lambda X, *a, **kw: calls.append(getattr(X, "shape", None)) or real(X, *a, **kw)  # noqa: E731
    monkeypatch.setattr(skv, "_assert_all_finite", spy)
    monkeypatch.setattr(estimator, "_assert_all_finite", spy)
    X, y = problem(n=500, d=4, seed=1)
    LinearRegressor(max_iter=2, tol=None, n_jobs=2).fit(X, y).predict(X)
    assert (500, 4) not in calls
    X[7, 2] = np.nan
    with pytest.raises(ValueError, match="X.*NaN"):
        LinearRegressor(max_iter=2, n_jobs=2).fit(X, y)
    assert not K.all_finite(X, 2) and K.all_finite(np.ones((5, 3), np.float32), 1)
    assert not K.all_finite(np.full((9000, 2), np.inf), 2)


def test_n_jobs_none_respects_threadpoolctl_limits():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not _engine.native_available():
        pytest.skip("the OpenMP limit is read from the native extension's runtime")
    assert _engine.resolve_n_threads(None) == min(_config.cpu_count(), _config._openmp_max_threads(),
                                                  _config.numba.config.NUMBA_NUM_THREADS)
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert _engine.resolve_n_threads(None) == 1
        assert _engine.resolve_n_threads(-1) == 1
        assert _engine.resolve_n_threads(2) == min(2, _config.numba.config.NUMBA_NUM_THREADS)  # explicit wins


def test_explicit_and_negative_n_jobs():
    top = _config.max_n_threads()
    assert _engine.resolve_n_threads(1) == 1
    assert _engine.resolve_n_threads(-1) == top
    assert _engine.resolve_n_threads(-100) == 1
    assert _engine.resolve_n_threads(10_000) == _config.numba.config.NUMBA_NUM_THREADS


@pytest.mark.parametrize("backend", ["native", "numba"])
def test_predict_and_stats_same_for_any_thread_count(backend):
    if backend == "native" and not _engine.native_available():
        pytest.skip("native extension not built")
    kern = _engine.kernels(backend)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3000, 9))
    Y = rng.standard_normal((3000, 2))
    theta = rng.standard_normal((2, 10))
    ids = np.arange(47, dtype=np.int64)[::-1].copy()
    p1, p2 = kern.predict(X, theta, 1), kern.predict(X, theta, 2)
    assert np.array_equal(p1, p2) and np.array_equal(p1, kern.predict(X, theta))
    s1 = kern.batches_stats(X, Y, np.empty(0), theta, 64, ids, 1)
    s2 = kern.batches_stats(X, Y, np.empty(0), theta, 64, ids, 2)
    assert all(np.array_equal(a, b) for a, b in zip(s1, s2))


def _csr_one_group(n, d, per_row, k, dtype, wide_index, seed=0):
    """A CSR tuple of n rows with ``per_row`` values each (Zipf-like columns: sums shared by many rows), and
    targets for k outputs."""
    rng = np.random.default_rng(seed)
    cols = np.sort((rng.pareto(1.0, (n, per_row)) * d / 50).astype(np.int64) % d, axis=1)
    itype = np.int64 if wide_index else np.int32
    X = (rng.standard_normal(n * per_row).astype(dtype), cols.ravel().astype(itype),
         np.arange(0, n * per_row + 1, per_row, dtype=itype), d)
    return X, rng.standard_normal((n, k)), rng.standard_normal((k, d + 1))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", ["one batch", "two batches, huge d", "weighted huber, float32, int64, k=2"])
def test_csr_sums_in_one_group_are_split_across_threads_with_the_same_bits(backend, case, monkeypatch):
    """A full-batch pass over CSR X at large d is one group of batches_stats (one buffer of k·(d + 1) sums): with
    more threads its rows' residuals are computed in parallel beside the sums, which add in row order on one
    thread, in blocks (here several). The sums are the one-thread pass's, bit for bit, for any thread count."""
    kern = _engine.kernels(backend)
    if case == "two batches, huge d":  # the budget allows one group of k·(d + 1) sums for all the batches
        X, Y, theta = _csr_one_group(3000, 4_200_000, 40, 1, np.float64, False)
        bs, ids, sw, loss = 1000, np.array([2, 0], dtype=np.int64), np.empty(0), None
        assert K.max_chunks(X[3] + 1) == 1
    else:
        k, dtype, wide = (2, np.float32, True) if case.startswith("weighted") else (1, np.float64, False)
        X, Y, theta = _csr_one_group(10000, 3000, 40, k, dtype, wide)
        bs, ids = 10000, np.zeros(1, dtype=np.int64)
        sw, loss = ((np.random.default_rng(1).uniform(0.0, 2.0, 10000), (1, 0.5)) if case.startswith("weighted")
                    else (np.empty(0), None))
        assert K.split_block_rows(len(X[0]), len(X[2]) - 1, Y.shape[1]) * 3 < bs  # its rows in several blocks
    if backend == "numba":
        calls = []
        real = K._csr_split_parallel
        monkeypatch.setattr(K, "_csr_split_parallel", lambda *a: calls.append(a[-1]) or real(*a))
    one = kern.batches_stats(X, Y, sw, theta, bs, ids, 1, loss=loss)
    for t in (2, 3):
        many = kern.batches_stats(X, Y, sw, theta, bs, ids, t, loss=loss)
        assert np.array_equal(one[0], many[0]) and one[1] == many[1] and one[2] == many[2]
    if backend == "numba":
        assert calls == [2, min(3, numba.config.NUMBA_NUM_THREADS)]  # split with more threads, not with one
    rows = np.concatenate([np.arange(b * bs, min(b * bs + bs, len(X[2]) - 1)) for b in ids])
    A = sp.csr_matrix((X[0], X[1], X[2]), shape=(len(X[2]) - 1, X[3]))[rows].astype(np.float64)
    r = A @ theta[:, :-1].T + theta[:, -1] - Y[rows]
    if loss is None:
        np.testing.assert_allclose(one[0].reshape(len(theta), -1)[:, :-1], (A.T @ r).T, rtol=1e-9, atol=1e-9)
        assert math.isclose(one[1], float((r * r).sum()), rel_tol=1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_split_pass_ends_with_the_same_bits_whatever_number_of_threads_runs(backend):
    """The split pass runs in one parallel region whose workers claim their work (a block's sums once its
    residuals are all in, else a residual share of that block or of the next) and wait by spinning briefly,
    then sleeping (one region per block, whose OpenMP barriers spin, made a default sparse fit 4-19x slower
    than one thread on a busy 2-core host). Any worker does any of the work, so one worker alone does all of it
    (Numba: four workers on one thread), and more threads than cores (8)
    end with the one-thread pass's bits. The blocks are the batches' rows in pass order, in runs of at most
    split_block_rows rows from each batch's start."""
    X, Y, theta = _csr_one_group(20000, 4_200_000, 40, 1, np.float64, False)
    bs, ids, sw = 8192, np.array([2, 0, 1], dtype=np.int64), np.empty(0)
    assert K.max_chunks(X[3] + 1) == 1  # one group of sums for all the batches: the pass splits
    kern = _engine.kernels(backend)
    one = kern.batches_stats(X, Y, sw, theta, bs, ids, 1)
    many = kern.batches_stats(X, Y, sw, theta, bs, ids, 8)
    assert all(np.array_equal(a, b) for a, b in zip(one, many))
    n, rows = len(X[2]) - 1, K.split_block_rows(len(X[0]), len(X[2]) - 1, 1)
    blocks = np.full((K.split_block_count(len(ids), bs, rows), 4), -1, dtype=np.int64)
    nblocks = K.split_blocks(ids, len(ids), bs, n, rows, blocks.reshape(blocks.size))
    table = blocks[:nblocks]
    assert nblocks == 8 and np.all(table[:, 1] - table[:, 0] <= rows) and np.all(table[:, 0] < table[:, 1])
    passed = np.concatenate([np.arange(lo, hi) for lo, hi in table[:, :2]])
    wanted = np.concatenate([np.arange(b * bs, min(b * bs + bs, n)) for b in ids])
    assert np.array_equal(passed, wanted)
    assert np.all((table[:, 2] <= table[:, 0]) & (table[:, 1] <= table[:, 3]))
    if backend == "numba":  # four workers on one thread: the first does all the work, the others find none
        alone = K._in_team(K._csr_split_parallel, 1, X, Y, sw, theta, bs, ids, K.SQUARED, 4)
        assert all(np.array_equal(a, b) for a, b in zip(one, alone))


@pytest.mark.skipif(not _engine.native_available(), reason="native extension not built")
def test_the_split_csr_sums_buffer_a_block_of_residuals_whatever_the_outputs():
    """The split pass buffers two blocks of k residuals per row: with many outputs and few values per row its
    blocks hold fewer rows (about SPLIT_NNZ values times outputs), so the buffer stays small (native: its
    buffers are NumPy's, which tracemalloc sees)."""
    import tracemalloc
    kern = _engine.kernels("native")
    X, Y, theta = _csr_one_group(20000, 1000, 2, 64, np.float64, False)
    ids = np.zeros(1, dtype=np.int64)
    want = kern.batches_stats(X, Y, np.empty(0), theta, 20000, ids, 1)
    assert K._stats_layout(X, Y, 20000, 1)[2] == 1  # one group: split with two threads
    tracemalloc.start()
    try:
        got = kern.batches_stats(X, Y, np.empty(0), theta, 20000, ids, 2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert all(np.array_equal(a, b) for a, b in zip(want, got))
    assert peak < 2 * 64 * 1001 * 8 + (4 << 20)  # twice the sums, and a few MB (the old blocks: 67 MB)


def test_threadpoolctl_limits_without_the_native_extension(monkeypatch):
    """Numba-only installs read the limit from the OpenMP runtime Numba's omp layer loaded."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import fastgd

    _training.train_epochs(np.ones((8, 2)), np.ones(8), SGD(), batch_size=4, epochs=1, n_threads=2,
                  backend="numba")  # Numba's thread layer is loaded
    monkeypatch.setitem(sys.modules, "fastgd._native", None)
    monkeypatch.delattr(fastgd, "_native", raising=False)
    monkeypatch.setattr(_config, "_omp_get_max_threads", None)
    if _config._openmp_max_threads() is None:
        pytest.skip("Numba's threading layer is not OpenMP here")
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert _engine.resolve_n_threads(None) == 1
    assert _engine.resolve_n_threads(None) == min(_config.cpu_count(), _config.numba.config.NUMBA_NUM_THREADS,
                                                  _config._openmp_max_threads())
