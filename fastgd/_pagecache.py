"""The page cache for a memmapped X: read the next blocks ahead, release the finished ones.

Hints only (``posix_fadvise``, ``madvise``, one byte read per page): the kernels read the pages anyway, and
nothing here copies X.
"""

import os
from dataclasses import dataclass, field

import numpy as np

PREFETCH_BLOCKS = 2  # a memmapped X: blocks read ahead into the page cache while one is trained on


@dataclass
class MappedFile:
    """Where a memmapped X lives: its file (path, byte offset of row 0) and its mapping (mmap object, position
    of row 0 in it); ``shared``: changes go to the file (modes "r", "r+"), so dropping pages loses nothing."""

    path: str
    offset: int
    mm: object
    pos: int
    row_bytes: int
    shared: bool
    X: np.ndarray = field(default=None, repr=False)


def file_range(Xk):
    """A ``MappedFile`` when X is a C-contiguous view of a file-backed ``np.memmap`` (``np.load(...,
    mmap_mode="r")``, ``np.memmap``), else None."""
    import mmap

    if isinstance(Xk, tuple) or not isinstance(Xk, np.ndarray) or not Xk.flags.c_contiguous:
        return None
    base = Xk
    while base is not None and not (isinstance(base, np.memmap) and getattr(base, "filename", None)):
        base = getattr(base, "base", None)
    if base is None or not isinstance(base.base, mmap.mmap):
        return None
    delta = Xk.__array_interface__["data"][0] - base.__array_interface__["data"][0]
    return MappedFile(base.filename, base.offset + delta, base.base,
                       base.offset % mmap.ALLOCATIONGRANULARITY + delta, Xk.shape[1] * Xk.itemsize,
                       getattr(base, "mode", "c") in ("r", "r+"), Xk)


_PREFETCHER = {}  # process id -> one background thread, created on first use (a forked child makes its own)


def prefetch_async(mf, rows):
    """Read rows [start, stop) of a memmapped X into memory in the background (``_prefetch``); a future."""
    pid = os.getpid()
    if pid not in _PREFETCHER:
        from concurrent.futures import ThreadPoolExecutor

        _PREFETCHER.clear()  # an executor inherited through fork has no thread: never submit to it
        _PREFETCHER[pid] = ThreadPoolExecutor(1, thread_name_prefix="fastgd-prefetch")
    return _PREFETCHER[pid].submit(_prefetch, mf, rows)


def _prefetch(mf, rows):
    """Bring rows [start, stop) of a memmapped X into the page cache and map them, in one sequential stream
    (``posix_fadvise(WILLNEED)``, then one byte of every page read in order, which NumPy does without the
    GIL), so the batches of a block, visited in random order, find their pages there instead of faulting
    them in one small random read at a time. No copy: private memory stays O(1)."""
    import mmap

    if mf.X is not None and rows[1] > rows[0]:
        _fadvise(mf, rows)
        flat = mf.X[rows[0]:rows[1]].reshape(-1).view(np.uint8)
        int(flat[::mmap.PAGESIZE].sum(dtype=np.uint64))


def _fadvise(mf, rows):
    try:
        fd = os.open(mf.path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.posix_fadvise(fd, mf.offset + rows[0] * mf.row_bytes, (rows[1] - rows[0]) * mf.row_bytes,
                         os.POSIX_FADV_WILLNEED)
    except (OSError, AttributeError):
        pass
    finally:
        os.close(fd)


MADV_COLD = 20  # Linux >= 5.4: reclaim these pages first (no data loss for any mapping)


def release(mf, rows):
    """Tell the kernel a block of a memmapped X is done for this epoch, so that under memory pressure its pages
    are reclaimed before the blocks prefetched for what comes next (without this, the pages already mapped
    look recently used and the prefetched ones are evicted first, to be read twice)."""
    import mmap

    page = mmap.PAGESIZE
    a = -(-(mf.pos + rows[0] * mf.row_bytes) // page) * page
    b = (mf.pos + rows[1] * mf.row_bytes) // page * page
    if b <= a:
        return
    try:  # a shared mapping: unmap (the pages stay in the page cache, clean); else only mark them cold
        mf.mm.madvise(mmap.MADV_DONTNEED if mf.shared else MADV_COLD, a, b - a)
    except (OSError, ValueError, AttributeError):
        pass
