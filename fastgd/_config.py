"""The one place Numba flags and threading settings come from.

Every compiled function in fastgd is decorated with :func:`jit` (a test checks this), so the flags below
hold everywhere:

* ``cache=True``: compiled machine code is written next to the module and reused by later processes.
  Kernels never read global mutable state (such as the thread count) so the cache stays valid.
* ``fastmath={"reassoc", "contract"}``: lets LLVM vectorize reductions and fuse multiply-adds. Full
  fastmath is *not* used: it assumes no NaN/inf ("nnan", "ninf") and would break the finiteness checks
  that detect a diverging run. The exception, ``STRICT_FLAGS`` (no fastmath): the functions the epochs call
  out of line that hold the optimizer rules (``fastgd._rules.finish_batch``, the lazy CSR epoch), whose
  compiled copies must all round alike.
* ``error_model="numpy"``: division by zero gives inf/NaN (then reported as divergence) instead of raising,
  and removes a branch from every division.
* ``nogil=True``: fits in several Python threads run concurrently.

Threading layer: unless the user chose one (``NUMBA_THREADING_LAYER``), fastgd asks Numba for a
*thread-safe* layer ("threadsafe": TBB if installed, else OpenMP), so several fits may run at once in Python
threads.

Thread count (:func:`effective_n_threads`): scikit-learn's rule for OpenMP code
(``sklearn.utils._openmp_helpers._openmp_effective_n_threads``): ``n_jobs=None`` means as many threads as
the OpenMP runtime allows (``OMP_NUM_THREADS``, ``threadpoolctl.threadpool_limits``, hence joblib's limits
inside its workers), capped by the CPUs this process may use (affinity and cgroup CPU quota, via
``joblib.cpu_count``) unless ``OMP_NUM_THREADS`` says otherwise, and by Numba's pool size.

Fork: GNU OpenMP (used by the native kernels and by Numba's "omp" layer) is not fork-safe: a child forked
after a thread team ran hangs in its first parallel region (native) or is terminated by Numba. An after-fork
handler (:func:`sequential_only`) therefore makes every kernel in such a child run on its calling thread,
through code paths that never open a parallel region; results are bit-identical to the parallel ones.
Numba's compiler lock (and llvmlite's lock around LLVM calls) would be inherited held by a child forked while
another thread compiles, and every compile in the child would wait forever: the before-fork handler takes
both locks (so fork waits for a compile in progress to finish) and both processes release them after.
"""

import os
import signal
import threading

import numba

FASTMATH = {"reassoc", "contract"}

NUMBA_FLAGS = {
    "cache": True,
    "nogil": True,
    "fastmath": set(FASTMATH),
    "error_model": "numpy",
    "boundscheck": False,
}

# The flags of a function that the compiled epochs call out of line and that holds the optimizer rules
# (fastgd._rules.finish_batch: the update rules, the penalties and the averaging; the lazy CSR epoch): no
# fastmath. Numba links a copy of such a callee into each caller and optimizes it again there, so the
# process that compiles runs one machine code (the callee compiled on its own: the dynamic linker binds the
# caller's weak copy to it) and a process that loads the caller from the cache runs another (the caller's
# own copy). With "contract" or "reassoc" the two copies may round differently (a multiply sunk into
# another block is no longer fused into the subtraction that uses it); with plain IEEE arithmetic every copy
# gives the same bits. (docs/design.md, "Compiler flags".)
STRICT_FLAGS = {**NUMBA_FLAGS, "fastmath": False}

if "NUMBA_THREADING_LAYER" not in os.environ:  # respect an explicit user choice
    numba.config.THREADING_LAYER = "threadsafe"


def jit(parallel=False, strict=False, inline=False):
    """Decorator: ``numba.njit`` with fastgd's flags (see the module docstring; ``strict``: ``STRICT_FLAGS``;
    ``inline``: inlined into its callers, Numba IR), compiled without Ctrl-C (:func:`compiles_uninterrupted`)."""

    def decorate(fn):
        return compiles_uninterrupted(numba.njit(parallel=parallel, inline="always" if inline else "never",
                                                 **(STRICT_FLAGS if strict else NUMBA_FLAGS))(fn))

    return decorate


def compiles_uninterrupted(dispatcher):
    """Make a Numba dispatcher's compiles (and loads from its cache) finish before a Ctrl-C is acted on.

    A compile runs Python code (Numba's pipeline, llvmlite), and a KeyboardInterrupt raised at any of its
    lines can leave LLVM's JIT half-updated: a later compile or call then crashes the process (seen as a
    segmentation fault in Numba's ``set_env`` and as a SIGABRT from the C heap). The first fit of a process
    compiles for seconds, just when a user may press Ctrl-C. So a SIGINT that arrives during a compile on the
    main thread is held and delivered again, to the handler that was in place, as soon as the compile
    returns: the KeyboardInterrupt then comes from a consistent Numba. (Python runs signal handlers on the main
    thread only, so a compile on another thread is never interrupted and is left alone.)"""
    compile_for_args = getattr(dispatcher, "_compile_for_args", None)  # called when no compiled version fits
    if compile_for_args is None:  # NUMBA_DISABLE_JIT: the plain Python function, nothing compiles
        return dispatcher

    def compile_held(*args, **kws):
        if threading.current_thread() is not threading.main_thread():
            return compile_for_args(*args, **kws)
        held = []
        previous = signal.getsignal(signal.SIGINT)
        if previous is None:  # a handler installed outside Python, which Python could not put back
            return compile_for_args(*args, **kws)
        try:
            signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
        except (ValueError, OSError):  # not the main interpreter: nothing to hold
            return compile_for_args(*args, **kws)
        try:
            return compile_for_args(*args, **kws)
        finally:
            signal.signal(signal.SIGINT, previous)
            if held:
                signal.raise_signal(signal.SIGINT)  # now handled as if it had just arrived

    dispatcher._compile_for_args = compile_held
    return dispatcher

# Options for the small type-dispatching functions declared with numba.extending.overload (they are compiled
# into their callers, which carry cache=True).
OVERLOAD_FLAGS = {k: v for k, v in NUMBA_FLAGS.items() if k in ("fastmath", "error_model", "boundscheck", "nogil")}


# ----------------------------------------------------------------------------------------------------------
# fork safety

_FORKED_AFTER_THREADS = False  # True in a process forked from one whose thread runtimes had started
_parent_had_threads = False
_team_started = False  # set by the native kernels before their first OpenMP region


def note_team_started():
    """Called by the native kernels before they open an OpenMP region (a forked child must then not)."""
    global _team_started
    _team_started = True


def _runtime_started():
    """Whether this process may hold a thread team that a forked child would inherit broken: the native
    kernels opened an OpenMP region, or Numba launched its thread layer (its omp layer terminates any child
    that opens a parallel region). Other threads (e.g. OpenBLAS's, started at import) are harmless."""
    if _team_started:
        return True
    try:
        from numba.np.ufunc import parallel as _npar

        return bool(_npar._is_initialized)
    except (ImportError, AttributeError):  # pragma: no cover - other Numba versions: assume the worst
        return True


def _compile_locks():
    """The re-entrant locks a compile holds, outermost first: Numba's compiler lock, llvmlite's LLVM lock."""
    locks = []
    try:
        from numba.core.compiler_lock import global_compiler_lock

        locks.append(global_compiler_lock._lock)
    except (ImportError, AttributeError):  # pragma: no cover - other Numba versions
        pass
    try:
        from llvmlite.binding import ffi

        locks.append(ffi.lib._lock._lock)
    except (ImportError, AttributeError):  # pragma: no cover - other llvmlite versions
        pass
    return locks


_held_for_fork = []  # the locks _before_fork took, released after the fork in parent and child


def _before_fork():
    global _parent_had_threads
    _parent_had_threads = _FORKED_AFTER_THREADS or _runtime_started()
    # Re-entrant: a fork from inside a compile on this thread takes them at once. Taken in the order a
    # compile takes them, so no compiling thread can hold the second while waiting for the first.
    for lock in _compile_locks():
        lock.acquire()
        _held_for_fork.append(lock)


def _release_fork_locks():
    while _held_for_fork:
        _held_for_fork.pop().release()


def _after_fork_in_child():
    global _FORKED_AFTER_THREADS
    _FORKED_AFTER_THREADS = _parent_had_threads
    _release_fork_locks()  # the forking thread is the child's main thread and owns them there too


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_release_fork_locks,
                        after_in_child=_after_fork_in_child)


def sequential_only():
    """True in a forked child whose parent had started thread runtimes: every kernel must run sequentially."""
    return _FORKED_AFTER_THREADS


# ----------------------------------------------------------------------------------------------------------
# thread counts


_omp_get_max_threads = None  # without the native extension: the loaded OpenMP runtime's, found once


def _openmp_max_threads():
    """``omp_get_max_threads()`` of the OpenMP runtime the kernels use, or None when there is none."""
    global _omp_get_max_threads
    try:
        from . import _native
    except ImportError:
        _native = None
    if _native is not None and _native.OPENMP:
        return _native.omp_max_threads()
    if _omp_get_max_threads is None:  # Numba's omp layer: the runtime threadpoolctl limits (looked up once)
        try:
            import ctypes

            import threadpoolctl

            libs = [i["filepath"] for i in threadpoolctl.threadpool_info() if i.get("user_api") == "openmp"]
            if not libs:
                return None
            _omp_get_max_threads = ctypes.CDLL(libs[0]).omp_get_max_threads
        except (ImportError, OSError, AttributeError):  # pragma: no cover - no threadpoolctl or no symbol
            return None
    return int(_omp_get_max_threads())


_cpu_count = (None, 1)  # (pid, count): the count is read once per process (joblib reads files: ~25 us)


def cpu_count():
    """CPUs this process may use: affinity mask and cgroup CPU quota (joblib's count, as scikit-learn)."""
    global _cpu_count
    pid = os.getpid()
    if _cpu_count[0] != pid:
        try:
            from joblib import cpu_count as joblib_cpu_count

            n = joblib_cpu_count()
        except ImportError:  # pragma: no cover - joblib comes with scikit-learn
            n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        _cpu_count = (pid, max(1, n))
    return _cpu_count[1]


def max_n_threads():
    """The thread count ``n_jobs=None`` means (see the module docstring); 1 in a child forked after threads."""
    if sequential_only():
        return 1
    omp = _openmp_max_threads()
    if os.environ.get("OMP_NUM_THREADS") and omp is not None:
        n = omp  # the user's explicit setting may exceed the CPU count (as in scikit-learn)
    else:
        n = cpu_count() if omp is None else min(omp, cpu_count())
    return max(1, min(n, numba.config.NUMBA_NUM_THREADS))


def effective_n_threads(n_jobs):
    """scikit-learn's ``n_jobs`` convention (None: the limit above; -1: all of it; -2: all but one; k > 0: k,
    at most Numba's pool size) as a thread count; always 1 in a child forked after threads had run."""
    if sequential_only():
        return 1
    if n_jobs is None:
        return max_n_threads()
    if n_jobs < 0:
        return max(1, max_n_threads() + 1 + n_jobs)
    return max(1, min(int(n_jobs), numba.config.NUMBA_NUM_THREADS))
