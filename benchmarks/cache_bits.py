"""Do the Numba kernels give the same bits compiled in the process and loaded from Numba's cache?

Runs itself twice with one new, empty ``NUMBA_CACHE_DIR``: the first process compiles every kernel (and writes the
cache), the second loads them from it. Each runs two epochs of every optimizer (its defaults and its ``variant``)
on fixed data, dense float64, dense float32 and CSR, with and without standardization, l2, l1 with sample
weights, the huber loss with a fixed batch weight, a schedule, averaging and the parallel path (2 threads), (on CSR)
the lazy epochs, and saves theta, the state and the average; the arrays must be equal bit for bit. Exit status 1
if any differs.

    python benchmarks/cache_bits.py            # about a minute (the first process compiles everything)

(Not in the test suite: a cold compile of every kernel takes longer than a test may. The in-process check is
tests/test_config_and_registry.py::test_out_of_line_rules_are_compiled_without_fastmath; see docs/design.md,
"Compiler flags".)
"""

import os
import subprocess
import sys
import tempfile

import numpy as np
import scipy.sparse as sp


def _data():
    rng = np.random.default_rng(5)
    n, d = 1200, 200
    p = 1.0 / np.arange(1, d + 1) ** 1.1  # Zipf-like column popularity: many rare columns
    cols = rng.choice(d, size=(n, 6), p=p / p.sum())
    X = sp.csr_matrix((np.ones(n * 6), cols.ravel(), np.arange(0, n * 6 + 1, 6)), shape=(n, d))
    X.sum_duplicates()
    X.data = rng.uniform(0.5, 2.0, X.nnz)
    y = X @ rng.standard_normal(d) + 2.0 + 0.3 * rng.standard_normal(n)
    return X, y, rng.uniform(0.2, 2.0, n)


def run(path):
    from fastgd import _engine, _scaling, optimizers, schedules
    from fastgd import _kernels as K

    X, y, sw = _data()
    Y = _engine.targets_2d(y)
    kern = _engine.kernels("numba")
    n, d = X.shape
    batch = 16
    out = {}
    for kind in ("csr", "dense", "dense32"):
        Xk = ((X.data, X.indices, X.indptr, d) if kind == "csr"
              else X.toarray().astype(np.float32 if kind == "dense32" else np.float64))
        stdz = _scaling.Scaling.from_data(kern, Xk, Y, None, True).pack()
        cases = {"plain": {}, "std": dict(stdz=stdz), "std_l2": dict(stdz=stdz, l2=1e-3),
                 "std_touch_l2": dict(stdz=stdz, l2=1e-3, touch_l2=True), "l1_sw": dict(l1=1e-3, sw=sw),
                 "huber": dict(loss=(1, 0.5), stdz=stdz, batch_weight=float(batch)),
                 "sched": dict(sched=schedules.InverseScaling().pack(0.002)[1], l2=1e-3),
                 "parallel": dict(n_threads=2, path=K.PATH_PARALLEL, stdz=stdz, l2=1e-3)}
        for name, cls in optimizers.OPTIMIZERS.items():
            for setting, kw in (("default", {}), ("variant", cls.variant or {})):
                opt = cls(**kw)
                hp = opt.pack()
                hp[0] = min(hp[0], 0.002)
                for case, args in cases.items():
                    ts = _engine.TrainingState.fresh(opt, 1, d)
                    avg = np.zeros(ts.theta.size + 1)
                    order = np.random.default_rng(0).permutation(-(-n // batch)).astype(np.int64)
                    for _ in range(2):
                        _engine.run_epoch(Xk, Y, ts, opt.code, hp, batch, order, backend="numba", avg=avg, **args)
                    key = f"{kind}/{name}/{setting}/{case}"
                    out[key + "/theta"], out[key + "/state"], out[key + "/avg"] = ts.theta, ts.state, avg
    np.savez(path, **out)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, NUMBA_CACHE_DIR=os.path.join(tmp, "numba-cache"))
        files = [os.path.join(tmp, f"{which}.npz") for which in ("compiled", "cached")]
        for f in files:
            subprocess.run([sys.executable, __file__, "--worker", f], env=env, check=True)
        a, b = (np.load(f) for f in files)
        differ = [k for k in a.files if not np.array_equal(a[k], b[k])]
        for k in differ:
            rel = np.max(np.abs(a[k] - b[k]) / np.maximum(np.abs(a[k]), 1e-300))
            print(f"differs: {k} (largest relative difference {rel:.1e})")
        print(f"{len(a.files)} arrays compared, {len(differ)} differ between compiled and cached kernels")
        return 1 if differ else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        run(sys.argv[2])
    else:
        sys.exit(main())
