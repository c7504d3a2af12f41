"""The one place Numba flags and threading settings come from.

Every compiled function in fastgd is decorated with :func:`jit` (a test checks this), so the flags below
hold everywhere:

* ``cache=True``: compiled machine code is written next to the module and reused by later processes.
  Kernels never read global mutable state (such as the thread count) so the cache stays valid.
* ``fastmath={"reassoc", "contract"}``: lets LLVM vectorize reductions and fuse multiply-adds. Full
  fastmath is *not* used: it assumes no NaN/inf ("nnan", "ninf") and would break the finiteness checks
  that detect a diverging run.
* ``error_model="numpy"``: division by zero gives inf/NaN (then reported as divergence) instead of raising,
  and removes a branch from every division.
* ``nogil=True``: fits in several Python threads run concurrently.

Threading layer: unless the user chose one (``NUMBA_THREADING_LAYER``), fastgd asks Numba for a
*thread-safe* layer ("threadsafe": TBB if installed, else OpenMP), so several fits may run at once in Python
threads. With GNU OpenMP (the usual result on Linux without TBB) a process must not ``fork`` after a parallel
fit has run (use the "spawn" or "forkserver" start method, or install ``tbb``).
"""

import os

import numba

FASTMATH = {"reassoc", "contract"}

NUMBA_FLAGS = {
    "cache": True,
    "nogil": True,
    "fastmath": set(FASTMATH),
    "error_model": "numpy",
    "boundscheck": False,
}

if "NUMBA_THREADING_LAYER" not in os.environ:  # respect an explicit user choice
    numba.config.THREADING_LAYER = "threadsafe"


def jit(parallel=False):
    """Decorator: ``numba.njit`` with fastgd's flags (see the module docstring)."""
    return numba.njit(parallel=parallel, **NUMBA_FLAGS)

# Options for the small type-dispatching functions declared with numba.extending.overload (they are compiled
# into their callers, which carry cache=True).
OVERLOAD_FLAGS = {k: v for k, v in NUMBA_FLAGS.items() if k in ("fastmath", "error_model", "boundscheck", "nogil")}
