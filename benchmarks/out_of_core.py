"""Out-of-core benchmark: training from a float32 .npy memmap larger than the page cache.

The page cache is made smaller than the file with a memory cgroup: the measuring process runs in a child
cgroup (cgroup v1 ``memory.limit_in_bytes`` or cgroup v2 ``memory.max``) created under this process's own
cgroup, so the file's pages it reads are charged to it and evicted once the limit is reached (its private
memory stays far below the limit). The file's cached pages are dropped (``posix_fadvise(DONTNEED)``) before
every measurement. Equivalent by hand with systemd::

    systemd-run --user --scope -p MemoryMax=1G python benchmarks/out_of_core.py --child ...

Measured, per epoch (median of ``--epochs`` epochs after the first):

* a sequential NumPy read of the file (``X[i:i + rows].sum()`` over the memmap, 64 MB slices): the floor;
* ``LinearRegressor()`` (the default shuffle = shuffled blocks of ~32 MB), epoch times from a callback;
* ``shuffle=False``; and, with ``--random``, the former order (every batch its own block, the order before blocks);
* peak anonymous (private, not file-backed) memory of the process during the fit, for two sizes of n.

    python benchmarks/out_of_core.py                       # 3 GB file, 1 GiB cgroup (writes /tmp/fastgd_ooc.npy)
    python benchmarks/out_of_core.py --rows 2000000 --limit-mb 256 --random
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

SLICE_BYTES = 64 << 20


# ----------------------------------------------------------------------------------------------------------
# the measuring process (inside the cgroup)


def _drop_cache(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def _anon_kb():
    """Anonymous (private, not file-backed) memory of this process, in kB."""
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith("Anonymous:"):
                return int(line.split()[1])
    return 0


class PeakAnon:
    """Sample the anonymous memory every 20 ms while the block runs; the peak above the start."""

    def __enter__(self):
        self.start = _anon_kb()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _anon_kb())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _anon_kb())
        self.growth_mb = (self.peak - self.start) / 1024


def _sequential_read(X):
    rows = max(1, SLICE_BYTES // (X.shape[1] * X.itemsize))
    t = time.perf_counter()
    s = 0.0
    for i in range(0, X.shape[0], rows):
        s += float(X[i:i + rows].sum(dtype=np.float64))
    return time.perf_counter() - t


def _epoch_times(path, y, n_epochs, **params):
    import fastgd

    X = np.load(path, mmap_mode="r")
    stamps = []
    est = fastgd.LinearRegressor(max_iter=n_epochs, tol=None, random_state=0, callbacks=lambda i: stamps.append(
        i.elapsed), **params)
    _drop_cache(path)
    t = time.perf_counter()
    with PeakAnon() as mem:
        est.fit(X, y)
    total = time.perf_counter() - t
    epochs = np.diff([0.0] + stamps)
    return dict(epochs=[round(float(e), 3) for e in epochs], fit=round(total, 3), peak_private_mb=round(
        mem.growth_mb, 1), r2=None, batch_size=est.batch_size_)


def child(args):
    from fastgd import _pagecache, _training

    X = np.load(args.path, mmap_mode="r")
    n = X.shape[0]
    y = np.load(args.path + ".y.npy")
    out = dict(n=n, d=X.shape[1], file_gb=round(X.nbytes / 1e9, 2), limit_mb=args.limit_mb)
    seq = []
    for _ in range(max(2, args.epochs)):
        _drop_cache(args.path)
        seq.append(_sequential_read(X))
    out["sequential_read"] = [round(s, 3) for s in seq]
    out["default"] = _epoch_times(args.path, y, args.epochs)
    out["default"]["block_batches"] = _training.block_batches(X, out["default"]["batch_size"])
    out["no_shuffle"] = _epoch_times(args.path, y, args.epochs, shuffle=False)
    # peak private memory does not grow with n: the same fit on a quarter of the rows
    out["default_quarter_n"] = _epoch_times(args.path + ".quarter.npy", y[:n // 4], 2)
    if args.random:
        _training.BLOCK_BYTES = 0  # every batch its own block: the former fully random order ...
        _pagecache.file_range = lambda Xk: None  # ... read as before (no prefetching)
        out["random_order"] = _epoch_times(args.path, y, 1)
    print("RESULT " + json.dumps(out), flush=True)


# ----------------------------------------------------------------------------------------------------------
# the driver: data file, cgroup, report


def _make_file(path, n, d, seed=0):
    if Path(path).exists() and np.load(path, mmap_mode="r").shape == (n, d):
        return
    rng = np.random.default_rng(seed)
    w = rng.normal(size=d)
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
    y = np.empty(n)
    step = 1 << 18
    for i in range(0, n, step):
        block = rng.standard_normal((min(step, n - i), d), dtype=np.float32)
        X[i:i + step] = block
        y[i:i + step] = block @ w + 0.5 * rng.standard_normal(len(block))
    X.flush()
    q = np.lib.format.open_memmap(path + ".quarter.npy", mode="w+", dtype=np.float32, shape=(n // 4, d))
    q[:] = X[:n // 4]
    q.flush()
    del X, q
    np.save(path + ".y.npy", y)


def _own_cgroup():
    """(version, directory of this process's memory cgroup)."""
    lines = Path("/proc/self/cgroup").read_text().splitlines()
    for line in lines:
        _, controllers, rel = line.split(":", 2)
        if "memory" in controllers.split(","):
            return 1, Path("/sys/fs/cgroup/memory") / rel.lstrip("/")
    for line in lines:
        if line.startswith("0::"):
            return 2, Path("/sys/fs/cgroup") / line[3:].lstrip("/")
    raise RuntimeError("no memory cgroup found; run the child by hand under systemd-run -p MemoryMax=...")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=7_500_000)
    ap.add_argument("--cols", type=int, default=100)
    ap.add_argument("--limit-mb", type=int, default=1024)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--path", default="/tmp/fastgd_ooc.npy")
    ap.add_argument("--random", action="store_true", help="also one epoch in the former fully random order")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--keep", action="store_true", help="keep the data file")
    args = ap.parse_args(argv)
    if args.child:
        return child(args)
    _make_file(args.path, args.rows, args.cols)
    version, own = _own_cgroup()
    cg = own / f"fastgd_ooc_{os.getpid()}"
    cg.mkdir()
    try:
        if version == 1:
            (cg / "memory.limit_in_bytes").write_text(str(args.limit_mb << 20))
        else:
            (cg / "memory.max").write_text(str(args.limit_mb << 20))
        cmd = [sys.executable, __file__, "--child", "--path", args.path, "--epochs", str(args.epochs),
               "--limit-mb", str(args.limit_mb)] + (["--random"] if args.random else [])
        enter = f'echo $$ > {cg / "cgroup.procs"} && exec "$@"'
        proc = subprocess.run(["sh", "-c", enter, "sh"] + cmd, capture_output=True, text=True)
    finally:
        cg.rmdir()
        if not args.keep:
            for p in (args.path, args.path + ".y.npy", args.path + ".quarter.npy"):
                Path(p).unlink(missing_ok=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        sys.stderr.write(f"measuring process exited with {proc.returncode} (-9: killed, e.g. the cgroup limit is below "
                         f"its own private memory)\n" + proc.stdout[-3000:] + proc.stderr[-3000:])
        return 1
    res = json.loads(lines[-1][7:])
    seq = float(np.median(res["sequential_read"]))
    print(f"{res['n']:,} x {res['d']} float32 = {res['file_gb']} GB .npy memmap, memory cgroup {res['limit_mb']} MiB "
          f"(page cache < file)")
    print(f"{'':44s} {'epoch s':>9s} {'x read':>7s} {'peak private MB':>16s}")
    print(f"{'sequential NumPy read (64 MB slices)':44s} {seq:9.2f} {1.0:7.2f} {'':>16s}")
    rows = [("LinearRegressor() default shuffle", res["default"]),
            ("  same, n/4 rows", res["default_quarter_n"]),
            ("shuffle=False", res["no_shuffle"])]
    if "random_order" in res:
        rows.append(("former order (every batch shuffled)", res["random_order"]))
    for name, r in rows:
        e = float(np.median(r["epochs"][1:] if len(r["epochs"]) > 1 else r["epochs"]))
        print(f"{name:44s} {e:9.2f} {e / seq:7.2f} {r['peak_private_mb']:16.1f}")
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
