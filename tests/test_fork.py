"""Fork safety: a forked child keeps working.

GNU OpenMP (the native kernels, Numba's "omp" layer) is not fork-safe: a child forked after
``fit(...).predict(...)`` that enters an OpenMP region hangs (native) or is terminated by Numba ("fork() called
from a process already using GNU OpenMP"), so a forked child must run the kernels sequentially. Each scenario runs in a subprocess with a timeout, so a hang fails
the test instead of blocking CI. Entering any Numba parallel region in such a child kills it, and entering an
OpenMP region with the native backend hangs it, so a child that finishes has run only sequential code.
"""

import os
import subprocess
import tempfile
import sys
import textwrap

import pytest

from fastgd import _engine

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

    import scipy.sparse as sp
    from fastgd import _engine
    from fastgd.optimizers import get_optimizer

    Xs = sp.random(400, 300, density=0.05, random_state=0, format="csr")
    Xc = (Xs.data, Xs.indices, Xs.indptr, Xs.shape[1])
    Yc = np.ascontiguousarray((Xs @ np.arange(300.0))[:, None])

    def lazy_epochs(backend, n_jobs):
        # the lazy CSR epoch (native: its team of n_jobs threads, PATH_PARALLEL whatever the size)
        opt = get_optimizer("adam").set_params(lr=0.01)
        ts = _engine.TrainingState.fresh(opt, 1, 300)
        for order in (np.arange(12), np.arange(12)[::-1].copy()):
            _engine.run_epoch(Xc, Yc, ts, opt.code, opt.pack(), 32, order, backend=backend, n_threads=n_jobs,
                              path=_engine.K.PATH_PARALLEL)
        return ts.theta.copy()

    # the parent runs parallel code first, with both backends (2-thread teams exist from here on)
    want = {backend: fit_predict(backend, 2) + (lazy_epochs(backend, 2),) for backend in sys.argv[1:]}
    assert not _config.sequential_only()

    def child_check(args):
        backend, n_jobs = args
        assert _config.sequential_only(), "the after-fork handler did not run"
        c, p = fit_predict(backend, n_jobs)
        lz = lazy_epochs(backend, n_jobs)
        # results do not depend on the thread count or the path: the child must reproduce them exactly
        return bool(np.array_equal(c, want[backend][0]) and np.array_equal(p, want[backend][1])
                    and np.array_equal(lz, want[backend][2]))

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
        # the lazy CSR epoch's team of 4 on the one thread OpenMP runs
        import scipy.sparse as sp
        Xs = sp.random(300, 200, density=0.05, random_state=0, format="csr")
        Xc, Yc = (Xs.data, Xs.indices, Xs.indptr, 200), np.ascontiguousarray((Xs @ np.ones(200))[:, None])
        lazy = []
        for p, t in ((K.PATH_SEQUENTIAL, 1), (K.PATH_PARALLEL, 4)):
            opt = OPTIMIZERS["adam"](lr=0.01)
            ts = _engine.TrainingState.fresh(opt, 1, 200)
            _engine.run_epoch(Xc, Yc, ts, opt.code, opt.pack(), 16, np.arange(19), backend="native", n_threads=t,
                              path=p)
            lazy.append(ts.theta)
        print("thread limit same", np.array_equal(out[0], out[1]) and np.array_equal(lazy[0], lazy[1]))
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


# ------------------------------------------------------------------------------------------------------------
# A child forked while another thread compiles with Numba must be able to compile (and so fit) itself.
#
# Numba's compiler lock is a process-wide lock; a child forked while another thread holds it would inherit it
# held, by a thread that does not exist in the child, and its first compile (any numba fit, any
# fastgd.minimize) would wait forever. The scenario runs in a subprocess with a timeout, so a hang fails.

COMPILE_TIMEOUT = 240  # seconds for the whole scenario; the child alone gets most of it

# the parent's end of a fork scenario: waits at most {child_timeout} s for the child (pid) and prints how it ended
WAIT_FOR_CHILD = textwrap.dedent(
    """
    deadline = time.monotonic() + {child_timeout}
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            print("child exit", os.waitstatus_to_exitcode(status), flush=True)
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        print("child hung", flush=True)
    """
)

COMPILE_SCRIPT = textwrap.dedent(
    """
    import os
    import threading
    import time

    import numba
    import numpy as np
    from numba.core import event

    import fastgd

    parent = os.getpid()
    in_compile = threading.Event()
    forked = threading.Event()


    class HoldCompile(event.Listener):
        # Keeps the compiling thread inside its compile until the main thread has forked: the fork then
        # happens while the compiler lock is held (unless fork waits for the compile to end, the fix; the
        # hold ends after 1 s either way).
        def on_start(self, ev):
            if os.getpid() == parent and threading.current_thread() is not threading.main_thread():
                in_compile.set()
                forked.wait(1.0)

        def on_end(self, ev):
            pass


    event.register("numba:compile", HoldCompile())


    def first_compile():
        numba.njit(lambda a: a + 1)(1)


    worker = threading.Thread(target=first_compile)
    worker.start()
    assert in_compile.wait(120), "the worker never started compiling"
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            res = fastgd.minimize(lambda x: ((x - 3.0) ** 2).sum(), np.zeros(2), max_iter=5)
            assert np.isfinite(res.x).all()
            code = 0
        finally:
            os._exit(code)
    forked.set()
    worker.join()
    """
) + WAIT_FOR_CHILD


def _forked_child_exits(script, timeout, tmp_path):
    """Run a fork scenario (a script ending in WAIT_FOR_CHILD) in a subprocess: its child must exit 0 in time."""
    script = script.replace("{child_timeout}", str(timeout - 60))
    try:  # cwd: not the checkout, whose fastgd/ would shadow the installed one
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout,
                             cwd=tmp_path)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the scenario hung: {exc.stdout!r} {exc.stderr!r}")
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.splitlines() == ["child exit 0"], (out.stdout, out.stderr[-3000:])


def test_fork_while_another_thread_compiles(tmp_path):
    _forked_child_exits(COMPILE_SCRIPT, COMPILE_TIMEOUT, tmp_path)


LOCK_SCRIPT = textwrap.dedent(
    """
    import os, threading, time
    import numpy as np
    import fastgd

    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, 8))
    y = X @ rng.standard_normal(8)
    held, forked = threading.Event(), threading.Event()

    def callback(info):  # the worker's fit holds the estimator's lock while it waits here
        held.set()
        forked.wait(60)

    m = fastgd.LinearRegressor(backend="numba", max_iter=2, tol=None, random_state=0, callbacks=callback)
    worker = threading.Thread(target=m.fit, args=(X, y))
    worker.start()
    held.wait(60)
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            m.set_params(callbacks=None)
            m.fit(X, y)  # the parent's worker holds the lock there; here no thread will release it
            m.partial_fit(X[:100], y[:100])
            code = 0 if np.all(np.isfinite(m.coef_)) else 4
        finally:
            os._exit(code)
    forked.set()
    worker.join()
    """
) + WAIT_FOR_CHILD


def test_fork_while_another_thread_trains_the_same_estimator(tmp_path):
    """Training calls on one estimator take turns under a lock (fastgd.estimator._call_lock); a child forked
    while another thread's fit holds it trains that estimator (its locks are new in the child: the holder does
    not exist there)."""
    _forked_child_exits(LOCK_SCRIPT, TIMEOUT, tmp_path)
