"""Determinism across thread counts and paths, concurrent fits, and the promise never to copy or modify X."""

import hashlib
import threading
import tracemalloc

import numba
import numpy as np
import pytest

from fastgd import _engine, _training
from fastgd import _kernels as K
from fastgd.optimizers import OPTIMIZERS

from _helpers import problem

# 2900 rows in batches of 1000: 16 chunks of 64 rows per full batch and a last partial batch of 900 rows.
N, D = 2900, 20


def fit(path, n_threads, dtype=np.float64, opt="adam"):
    X, y = problem(n=N, d=D, dtype=dtype, seed=11)
    ts, _ = _training.train_epochs(X, y, OPTIMIZERS[opt](lr=0.01), batch_size=1000, epochs=3, n_threads=n_threads,
                          path=path)
    return ts.theta


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bit_identical_across_threads_and_paths(dtype):
    assert numba.config.NUMBA_NUM_THREADS >= 2, "this test needs at least 2 Numba threads"
    results = {(path, t): fit(path, t, dtype) for path in (K.PATH_SEQUENTIAL, K.PATH_PARALLEL) for t in (1, 2)}
    first = results[(K.PATH_SEQUENTIAL, 1)]
    for key, theta in results.items():
        assert np.array_equal(theta, first), key


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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_x_and_y_not_modified_nor_copied(dtype):
    # tracemalloc sees Python-level copies only; tests/test_memory_rss.py measures the process's peak RSS,
    # which also sees allocations made inside Numba and C code
    X, y = problem(n=20_000, d=50, dtype=dtype, seed=3)
    digest = hashlib.sha256(X.tobytes() + y.tobytes()).hexdigest()
    opt = OPTIMIZERS["adam"](lr=0.01)
    _training.train_epochs(X[:100], y[:100], opt, batch_size=32, epochs=1, n_threads=2)  # compile outside the trace
    tracemalloc.start()
    _training.train_epochs(X, y, opt, batch_size=256, epochs=2, n_threads=2)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # y (float64, 1-D) is viewed as (n, 1) without a copy; any copy of X would show up as >= X.nbytes
    assert peak < X.nbytes / 10, peak
    assert hashlib.sha256(X.tobytes() + y.tobytes()).hexdigest() == digest


def test_targets_view_is_not_a_copy():
    y = np.arange(10.0)
    assert np.shares_memory(_engine.targets_2d(y), y)


def test_auto_path_picks_sequential_for_small_batches():
    """The automatic choice never changes results, only speed; check the rule on both sides of it."""
    X, y = problem(n=N, d=D, seed=11)
    a, _ = _training.train_epochs(X, y, OPTIMIZERS["adam"](lr=0.01), batch_size=8, epochs=2, n_threads=2)
    b, _ = _training.train_epochs(X, y, OPTIMIZERS["adam"](lr=0.01), batch_size=8, epochs=2, n_threads=2,
                         path=K.PATH_SEQUENTIAL)
    assert np.array_equal(a.theta, b.theta)
    assert 8 * D < K.PAR_MIN_WORK <= 1000 * D


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
                    1000, order, 4, K.PATH_PARALLEL, np.empty(0), np.empty(0))
    assert np.array_equal(ts.theta, want)
