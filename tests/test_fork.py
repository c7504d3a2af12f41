"""Fork safety and thread counts.

GNU OpenMP (the native kernels, Numba's "omp" layer) is not fork-safe: before the fix, a child forked after
``fit(...).predict(...)`` hung in its first OpenMP region (native) or was terminated by Numba ("fork() called
from a process already using GNU OpenMP"). Each scenario runs in a subprocess with a timeout, so a hang fails
the test instead of blocking CI. Entering any Numba parallel region in such a child kills it, and entering an
OpenMP region with the native backend hangs it, so a child that finishes has run only sequential code.
"""

import os
import subprocess
import tempfile
import sys
import textwrap

import numpy as np
import pytest

from fastgd import _config, _engine, _training
from fastgd.optimizers import SGD

TIMEOUT = 120  # seconds; a child that hangs is killed and the test fails

CHILD_SCRIPT = textwrap.dedent("""
    import multiprocessing as mp
    import os
    import sys

    import numpy as np

    import fastgd
    from fastgd import _config

    rng = np.random.default_rng(0)
    X = rng.standard_normal((6000, 24))
    y = X @ rng.standard_normal(24) + 0.1 * rng.standard_normal(6000)

    def fit_predict(backend, n_jobs):
        m = fastgd.LinearRegressor(backend=backend, n_jobs=n_jobs, batch_size=1024, max_iter=3, tol=None,
                                   random_state=0).fit(X, y)
        return m.coef_.copy(), m.predict(X)

    # the parent runs parallel code first, with both backends (2-thread teams exist from here on)
    want = {backend: fit_predict(backend, 2) for backend in sys.argv[1:]}
    assert not _config.sequential_only()

    def child_check(args):
        backend, n_jobs = args
        assert _config.sequential_only(), "the after-fork handler did not run"
        c, p = fit_predict(backend, n_jobs)
        # results do not depend on the thread count or the path: the child must reproduce them exactly
        return bool(np.array_equal(c, want[backend][0]) and np.array_equal(p, want[backend][1]))

    tasks = [(backend, n_jobs) for backend in sys.argv[1:] for n_jobs in (1, 2)]
    for task in tasks:
        pid = os.fork()
        if pid == 0:
            ok = False
            try:
                ok = child_check(task)
            finally:
                os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        print(f"os.fork {task[0]} n_jobs={task[1]} status={os.waitstatus_to_exitcode(status)}", flush=True)

    with mp.get_context("fork").Pool(2) as pool:
        print(f"pool {pool.map(child_check, tasks)}", flush=True)
""")


def test_fit_and_predict_in_forked_children(tmp_path):
    backends = ["numba"] + (["native"] if _engine.native_available() else [])
    script = tmp_path / "fork_child.py"
    script.write_text(CHILD_SCRIPT)
    try:
        out = subprocess.run([sys.executable, str(script), *backends], capture_output=True, text=True,
                             timeout=TIMEOUT, cwd=tmp_path)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"a forked child hung: {exc.stdout!r} {exc.stderr!r}")
    assert out.returncode == 0, out.stderr
    want = [f"os.fork {b} n_jobs={j} status=0" for b in backends for j in (1, 2)]
    want.append(f"pool {[True] * 2 * len(backends)}")
    assert out.stdout.splitlines() == want, (out.stdout, out.stderr)


# ------------------------------------------------------------------------------------------------------------
# n_jobs -> thread count, scikit-learn's rule


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


@pytest.mark.parametrize("backend", ["native", "numba"])
def test_more_threads_than_cores_same_result(backend):
    """8 threads on this machine's cores (oversubscribed: waits must give the core away, not spin forever):
    the parallel epoch still finishes and gives the sequential result bit for bit."""
    if backend == "native" and not _engine.native_available():
        pytest.skip("native extension not built")
    from _helpers import problem
    from fastgd import _kernels as K
    from fastgd.optimizers import OPTIMIZERS

    X, y = problem(n=2900, d=20, seed=11)
    out = []
    for path, threads in ((K.PATH_SEQUENTIAL, 1), (K.PATH_PARALLEL, 8), (K.PATH_PARALLEL, 3)):
        threads = min(threads, _config.numba.config.NUMBA_NUM_THREADS) if backend == "numba" else threads
        ts, _ = _training.train_epochs(X, y, OPTIMIZERS["adam"](lr=0.01), batch_size=1000, epochs=3, n_threads=threads,
                              path=path, backend=backend)
        out.append(ts.theta)
    assert all(np.array_equal(t, out[0]) for t in out)


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


ENV_SCRIPT = textwrap.dedent("""
    import os
    import numpy as np
    from fastgd import _config, _engine, _training
    from fastgd import _kernels as K
    from fastgd.optimizers import OPTIMIZERS

    # 1. a process that never started a thread runtime forks children that may run in parallel
    pid = os.fork()
    if pid == 0:
        os._exit(10 + _config.sequential_only())
    print("fork child exit", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))

    # 2. OMP_NUM_THREADS=1 limits n_jobs=None and -1; the CPU count is joblib's (affinity, cgroup quota)
    print("threads", _engine.resolve_n_threads(None), _engine.resolve_n_threads(-1))
    print("cpus ok", _config.cpu_count() <= len(os.sched_getaffinity(0)))

    # 3. OMP_THREAD_LIMIT=1: the native epoch planned 4 tasks per batch for 4 threads, OpenMP runs one thread,
    # which does them all (no deadlock), with the sequential result
    if _engine.native_available():
        rng = np.random.default_rng(0)
        X = rng.standard_normal((2900, 20)); y = X @ rng.standard_normal(20)
        out = [_training.train_epochs(X, y, OPTIMIZERS["adam"](lr=0.01), batch_size=1000, epochs=2, n_threads=t, path=p,
                             backend="native")[0].theta for p, t in ((K.PATH_SEQUENTIAL, 1), (K.PATH_PARALLEL, 4))]
        print("thread limit same", np.array_equal(out[0], out[1]))
    else:
        print("thread limit same", True)
""")


def test_fork_without_threads_omp_num_threads_and_thread_limit():
    """Sequential only where needed; OMP_NUM_THREADS and OMP_THREAD_LIMIT respected (one subprocess)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_THREAD_LIMIT="1", NUMBA_NUM_THREADS="2")
    out = subprocess.run([sys.executable, "-c", ENV_SCRIPT], capture_output=True, text=True, timeout=TIMEOUT,
                         env=env, cwd=tempfile.gettempdir())  # a neutral directory: the installed fastgd
    assert out.stdout.splitlines() == ["fork child exit 10", "threads 1 1", "cpus ok True",
                                       "thread limit same True"], (out.stdout, out.stderr)
