"""A child forked while another thread compiles with Numba must be able to compile (and so fit) itself.

Numba's compiler lock is a process-wide lock; a child forked while another thread held it inherited it held,
by a thread that does not exist in the child, and its first compile (any numba fit, any fastgd.minimize)
waited forever. The scenario runs in a subprocess with a timeout, so a hang fails the test.
"""

import subprocess
import sys
import textwrap

import pytest

TIMEOUT = 240  # seconds for the whole scenario; the child alone gets most of it

SCRIPT = textwrap.dedent(
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
        # hold ends after 3 s either way).
        def on_start(self, ev):
            if os.getpid() == parent and threading.current_thread() is not threading.main_thread():
                in_compile.set()
                forked.wait(3.0)

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


def test_fork_while_another_thread_compiles(tmp_path):
    script = SCRIPT.replace("{child_timeout}", str(TIMEOUT - 60))
    try:  # cwd: not the checkout, whose fastgd/ would shadow the installed one
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=TIMEOUT,
                             cwd=tmp_path)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the scenario hung: {exc.stdout!r} {exc.stderr!r}")
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.splitlines() == ["child exit 0"], (out.stdout, out.stderr[-3000:])
