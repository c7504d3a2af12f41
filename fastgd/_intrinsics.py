"""Low-level operations Numba lacks on the CPU, emitted as LLVM instructions via ``@intrinsic``.

* Atomics on int64 arrays, so the epoch kernel can run one parallel region per epoch instead of one per batch
  (see ``fastgd._kernels._epoch_team``). All are sequentially consistent or acquire/release: writes made
  before a release are visible after the matching acquire.
* A spin-wait hint, ``sched_yield`` and a futex wait/wake (Linux) for the waits of that protocol: spin briefly,
  then sleep, so that a thread does not burn the core a descheduled thread needs.
* A software prefetch, which lets the gradient loop stream X from memory at close to the read-only rate.
* A huge-page hint (Linux ``madvise``) for a large scratch array read at random (the lazy epoch's records).
* Views of arrays that hold no reference (``borrowed``) for the hot loops, where Numba's reference counting
  costs an atomic instruction per array each time one is passed to a function or assigned.
"""

import platform
import sys

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


def _item_pointer(context, builder, sig, args):
    aryty = sig.args[0]
    ary = context.make_array(aryty)(context, builder, args[0])
    idx = context.cast(builder, args[1], sig.args[1], types.intp)
    return cgutils.get_item_pointer(context, builder, aryty, ary, [idx])


def _fetch_op(op, name, doc):
    """An intrinsic ``old = arr[idx]; arr[idx] = op(old, val); return old``, atomic (seq_cst), on int64 arrays."""

    def typer(typingctx, arr, idx, val):
        if not (isinstance(arr, types.Array) and arr.dtype == types.int64):
            return None

        def codegen(context, builder, sig, args):
            ptr = _item_pointer(context, builder, sig, args)
            v = context.cast(builder, args[2], sig.args[2], types.int64)
            return builder.atomic_rmw(op, ptr, v, "seq_cst")

        return types.int64(arr, idx, val), codegen

    typer.__name__ = typer.__qualname__ = name  # Numba names the intrinsic after the function
    typer.__doc__ = doc
    return intrinsic(typer)


fetch_add = _fetch_op("add", "fetch_add", "``old = arr[idx]; arr[idx] += val; return old``, atomically (seq_cst).")
fetch_max = _fetch_op("max", "fetch_max", "``old = arr[idx]; arr[idx] = max(old, val); return old``, atomically "
                      "(seq_cst).")


@intrinsic
def load_acquire(typingctx, arr, idx):
    """``arr[idx]`` read with acquire ordering."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64):
        return None

    def codegen(context, builder, sig, args):
        return builder.load_atomic(_item_pointer(context, builder, sig, args), "acquire", 8)

    return types.int64(arr, idx), codegen


@intrinsic
def store_release(typingctx, arr, idx, val):
    """``arr[idx] = val`` with release ordering."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64):
        return None

    def codegen(context, builder, sig, args):
        v = context.cast(builder, args[2], sig.args[2], types.int64)
        builder.store_atomic(v, _item_pointer(context, builder, sig, args), "release", 8)
        return context.get_dummy_value()

    return types.none(arr, idx, val), codegen


_ARCH = platform.machine().lower()


@intrinsic
def spin_pause(typingctx):
    """A CPU hint for busy-wait loops (x86 ``pause``, ARM ``yield``; nothing elsewhere), as LLVM intrinsics."""

    def codegen(context, builder, sig, args):
        if _ARCH in ("x86_64", "amd64"):
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), []),
                                                "llvm.x86.sse2.pause")
            builder.call(fn, [])
        elif _ARCH in ("aarch64", "arm64"):
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [ir.IntType(32)]),
                                                "llvm.aarch64.hint")
            builder.call(fn, [ir.Constant(ir.IntType(32), 1)])
        return context.get_dummy_value()

    return types.none(), codegen


@intrinsic
def yield_thread(typingctx):
    """``sched_yield()``: give the core away while waiting (matters when cores are oversubscribed)."""

    def codegen(context, builder, sig, args):
        fnty = ir.FunctionType(ir.IntType(32), [])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "sched_yield")
        builder.call(fn, [])
        return context.get_dummy_value()

    return types.none(), codegen


_SYS_FUTEX = {"x86_64": 202, "amd64": 202, "aarch64": 98, "arm64": 98}.get(_ARCH) if sys.platform.startswith(
    "linux") else None
_FUTEX_WAIT_PRIVATE, _FUTEX_WAKE_PRIVATE = 128, 129
_SYS_MADVISE = {"x86_64": 28, "amd64": 28, "aarch64": 233, "arm64": 233}.get(_ARCH) if sys.platform.startswith(
    "linux") else None
_MADV_HUGEPAGE, _HUGE_PAGE = 14, 2 << 20


def _syscall(builder, args):
    i64 = ir.IntType(64)
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(i64, [i64], var_arg=True), "syscall")
    return builder.call(fn, args)


@intrinsic
def futex_wait(typingctx, arr, idx, expected):
    """Sleep until woken by :func:`futex_wake` on ``arr[idx]`` (or for at most 1 ms), unless the low 32 bits of
    ``arr[idx]`` differ from ``expected`` (Linux futex; ``sched_yield()`` elsewhere). May return spuriously:
    callers re-check their condition."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64):
        return None

    def codegen(context, builder, sig, args):
        i64 = ir.IntType(64)
        if _SYS_FUTEX is None:
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(32), []), "sched_yield")
            builder.call(fn, [])
            return context.get_dummy_value()
        ptr = builder.ptrtoint(_item_pointer(context, builder, sig, args), i64)  # low half: little-endian
        val = builder.and_(context.cast(builder, args[2], sig.args[2], types.int64), ir.Constant(i64, 0xFFFFFFFF))
        ts = cgutils.alloca_once(builder, ir.ArrayType(i64, 2))  # struct timespec {0 s, 1 ms}
        builder.store(ir.Constant(ir.ArrayType(i64, 2), [0, 1_000_000]), ts)
        _syscall(builder, [ir.Constant(i64, _SYS_FUTEX), ptr, ir.Constant(i64, _FUTEX_WAIT_PRIVATE), val,
                           builder.ptrtoint(ts, i64), ir.Constant(i64, 0), ir.Constant(i64, 0)])
        return context.get_dummy_value()

    return types.none(arr, idx, expected), codegen


@intrinsic
def futex_wake(typingctx, arr, idx):
    """Wake every thread sleeping in :func:`futex_wait` on ``arr[idx]`` (nothing without futexes)."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64):
        return None

    def codegen(context, builder, sig, args):
        if _SYS_FUTEX is not None:
            i64 = ir.IntType(64)
            ptr = builder.ptrtoint(_item_pointer(context, builder, sig, args), i64)
            _syscall(builder, [ir.Constant(i64, _SYS_FUTEX), ptr, ir.Constant(i64, _FUTEX_WAKE_PRIVATE),
                               ir.Constant(i64, 2**31 - 1), ir.Constant(i64, 0), ir.Constant(i64, 0),
                               ir.Constant(i64, 0)])
        return context.get_dummy_value()

    return types.none(arr, idx), codegen


@intrinsic
def advise_huge(typingctx, arr):
    """Advise the kernel to back the whole 2 MiB pages inside 1-D array ``arr`` with huge pages (Linux
    ``madvise(MADV_HUGEPAGE)``, as NumPy does for its large arrays and Numba does not): random reads of a large
    array then miss the TLB far less. Call it before the array is first written. A hint: no result depends on
    it (nothing elsewhere)."""
    if not (isinstance(arr, types.Array) and arr.ndim == 1):
        return None

    def codegen(context, builder, sig, args):
        if _SYS_MADVISE is not None:
            i64 = ir.IntType(64)
            ary = context.make_array(sig.args[0])(context, builder, args[0])
            lo = builder.ptrtoint(ary.data, i64)
            nbytes = builder.mul(ary.nitems, ir.Constant(i64, context.get_abi_sizeof(
                context.get_data_type(sig.args[0].dtype))))
            mask = ir.Constant(i64, ~(_HUGE_PAGE - 1))
            start = builder.and_(builder.add(lo, ir.Constant(i64, _HUGE_PAGE - 1)), mask)  # first whole page
            stop = builder.and_(builder.add(lo, nbytes), mask)  # end of the last whole page
            with builder.if_then(builder.icmp_unsigned(">", stop, start)):
                _syscall(builder, [ir.Constant(i64, _SYS_MADVISE), start, builder.sub(stop, start),
                                   ir.Constant(i64, _MADV_HUGEPAGE)])
        return context.get_dummy_value()

    return types.none(arr), codegen


@intrinsic
def borrowed(typingctx, arr):
    """A view of array ``arr`` that holds no reference to its memory (its meminfo and parent NULL).

    Numba counts an array's references with atomic instructions (``lock inc``/``lock dec``, tens of cycles
    each, and a barrier to the memory accesses around them) wherever it passes the array to a function or
    binds it to a variable that its reference pruning cannot see through: in the lazy CSR epoch that was
    six per touched coordinate (the inlined catch-up's arrays) and twenty per batch (the hints' call), most of
    the difference between its time and the native twin's. A borrowed view's counts are tests of a NULL
    pointer. The view is valid only while ``arr``'s owner is alive: a function's arguments are for the whole
    call; a local array must be used after its view's last use (``keep``), since Numba releases a variable
    at its last use. Never return a borrowed view or store it where it outlives the call."""
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        out = context.make_array(sig.return_type)(context, builder)
        for name in ("nitems", "itemsize", "data", "shape", "strides"):
            setattr(out, name, getattr(ary, name))
        out.meminfo = cgutils.get_null_value(out.meminfo.type)
        out.parent = cgutils.get_null_value(out.parent.type)
        return out._getvalue()

    return arr(arr), codegen


@intrinsic
def keep(typingctx, arr):
    """Nothing; a use of array ``arr``, which keeps it alive until this point (see ``borrowed``)."""
    if not isinstance(arr, types.Array):
        return None
    return types.none(arr), lambda context, builder, sig, args: context.get_dummy_value()


def _prefetch_codegen(context, builder, sig, args):
    """``llvm.prefetch`` of the element of array ``args[0]`` at the indices ``args[1:]``: read (0), locality 1
    (into L2, not L1), data cache (1)."""
    aryty = sig.args[0]
    ary = context.make_array(aryty)(context, builder, args[0])
    idx = [context.cast(builder, a, t, types.intp) for a, t in zip(args[1:], sig.args[1:])]
    ptr = cgutils.get_item_pointer(context, builder, aryty, ary, idx)
    i8p = ir.IntType(8).as_pointer()
    i32 = ir.IntType(32)
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                                        "llvm.prefetch.p0")
    builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 1), ir.Constant(i32, 1)])
    return context.get_dummy_value()


@intrinsic
def prefetch_row(typingctx, arr, i, j):
    """Hint the CPU to fetch ``arr[i, j]``'s cache line into L2 for reading (``llvm.prefetch`` with locality 1,
    x86 ``prefetcht2``; never faults). Into L2 rather than L1: an L1 prefetch holds one of the core's few fill
    buffers until the line arrives, and streaming float64 rows 2-5 KB ahead into L1 was slower than not
    prefetching at all (see fastgd._native._tune for the figures)."""
    if not (isinstance(arr, types.Array) and arr.ndim == 2):
        return None
    return types.none(arr, i, j), _prefetch_codegen


@intrinsic
def prefetch_at(typingctx, arr, i):
    """As prefetch_row, for ``arr[i]`` of a 1-D array (the lazy CSR epoch's hints: fastgd._kernels._lazy_ahead)."""
    if not (isinstance(arr, types.Array) and arr.ndim == 1):
        return None
    return types.none(arr, i), _prefetch_codegen


@intrinsic
def fma(typingctx, a, b, c):
    """``a * b + c`` rounded once (``llvm.fma.f64``, an FMA instruction where the CPU has one), float64.

    The kernels' fastmath flag "contract" lets LLVM fuse any multiply into the add that uses it, so
    ``x * y + z * w`` may come out as fma(x, y, z·w) or fma(z, w, x·y): which one depends on the code around
    it, and differed between a kernel compiled in the process and the same kernel loaded from Numba's cache
    (the heavy-ball update: fastgd._rules.fmadd). An explicit fma leaves the compiler no choice."""
    if not all(isinstance(t, types.Float) for t in (a, b, c)):
        return None

    def codegen(context, builder, sig, args):
        f64 = ir.DoubleType()
        vals = [context.cast(builder, v, t, types.float64) for v, t in zip(args, sig.args)]
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(f64, [f64, f64, f64]), "llvm.fma.f64")
        return builder.call(fn, vals)

    return types.float64(a, b, c), codegen


# With NUMBA_DISABLE_JIT=1 every kernel runs as plain Python (slowly, one thread: prange is range), and
# @intrinsic functions cannot be called from Python: give them plain equivalents.
from numba.core import config as _numba_config  # noqa: E402

if _numba_config.DISABLE_JIT:
    import os as _os

    def fetch_add(arr, idx, val):  # noqa: F811
        old = int(arr[idx])
        arr[idx] = old + val
        return old

    def fetch_max(arr, idx, val):  # noqa: F811
        old = int(arr[idx])
        arr[idx] = max(old, val)
        return old

    def load_acquire(arr, idx):  # noqa: F811
        return int(arr[idx])

    def store_release(arr, idx, val):  # noqa: F811
        arr[idx] = val

    def spin_pause():  # noqa: F811
        pass

    def yield_thread():  # noqa: F811
        _os.sched_yield()

    def futex_wait(arr, idx, expected):  # noqa: F811
        _os.sched_yield()

    def futex_wake(arr, idx):  # noqa: F811
        pass

    def prefetch_row(arr, i, j):  # noqa: F811
        pass

    def prefetch_at(arr, i):  # noqa: F811
        pass

    def advise_huge(arr):  # noqa: F811
        pass

    def borrowed(arr):  # noqa: F811
        return arr

    def keep(arr):  # noqa: F811
        pass

    def fma(a, b, c):  # noqa: F811
        """a * b + c rounded once (exactly, through fractions; plain a * b + c where a value is not finite)."""
        import fractions
        import math as _math

        if not all(_math.isfinite(v) for v in (a, b, c)):
            return a * b + c
        return float(fractions.Fraction(a) * fractions.Fraction(b) + fractions.Fraction(c))
