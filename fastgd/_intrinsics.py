"""Low-level operations Numba lacks on the CPU, emitted as LLVM instructions via ``@intrinsic``.

* Atomics on int64 arrays, so the epoch kernel can run one parallel region per epoch instead of one per batch
  (see ``fastgd._kernels._epoch_team``). All are sequentially consistent or acquire/release: writes made
  before a release are visible after the matching acquire.
* A spin-wait hint and ``sched_yield`` for the waits of that protocol.
* A software prefetch, which lets the gradient loop stream X from memory at close to the read-only rate.
"""

import platform

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


def _item_pointer(context, builder, sig, args):
    aryty = sig.args[0]
    ary = context.make_array(aryty)(context, builder, args[0])
    idx = context.cast(builder, args[1], sig.args[1], types.intp)
    return cgutils.get_item_pointer(context, builder, aryty, ary, [idx])


@intrinsic
def fetch_add(typingctx, arr, idx, val):
    """``old = arr[idx]; arr[idx] += val; return old``, atomically (seq_cst)."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64):
        return None

    def codegen(context, builder, sig, args):
        ptr = _item_pointer(context, builder, sig, args)
        v = context.cast(builder, args[2], sig.args[2], types.int64)
        return builder.atomic_rmw("add", ptr, v, "seq_cst")

    return types.int64(arr, idx, val), codegen


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


@intrinsic
def prefetch_row(typingctx, arr, i, j):
    """Hint the CPU to fetch ``arr[i, j]``'s cache line for reading (``llvm.prefetch``; never faults)."""
    if not (isinstance(arr, types.Array) and arr.ndim == 2):
        return None

    def codegen(context, builder, sig, args):
        aryty = sig.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        idx = [context.cast(builder, a, t, types.intp) for a, t in zip(args[1:], sig.args[1:])]
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, idx)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                                            "llvm.prefetch.p0")
        # read (0), keep in all cache levels (3), data cache (1)
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.none(arr, i, j), codegen


# With NUMBA_DISABLE_JIT=1 every kernel runs as plain Python (slowly, one thread: prange is range), and
# @intrinsic functions cannot be called from Python: give them plain equivalents.
from numba.core import config as _numba_config  # noqa: E402

if _numba_config.DISABLE_JIT:
    import os as _os

    def fetch_add(arr, idx, val):  # noqa: F811
        old = int(arr[idx])
        arr[idx] = old + val
        return old

    def load_acquire(arr, idx):  # noqa: F811
        return int(arr[idx])

    def store_release(arr, idx, val):  # noqa: F811
        arr[idx] = val

    def spin_pause():  # noqa: F811
        pass

    def yield_thread():  # noqa: F811
        _os.sched_yield()

    def prefetch_row(arr, i, j):  # noqa: F811
        pass
