"""Where the parallel gradient path starts to pay: sequential vs parallel epoch time by batch size.

    python benchmarks/crossover.py [--n 200000] [--d 10 100 1000] [--backend auto]

Prints, for each d and batch size, parallel time / sequential time with all threads (below 1: parallel wins).
The automatic rule in fastgd._kernels (PAR_MIN_WORK, in rows x features x outputs) comes from this table.
"""

import argparse

import numba

from fastgd import _engine
from fastgd import _kernels as K
from fastgd.bench import fastgd_epoch
from fastgd.datasets import make_regression
from fastgd.optimizers import OPTIMIZERS

from _common import best_of


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=200_000)
    p.add_argument("--d", type=int, nargs="+", default=[10, 100, 1000])
    p.add_argument("--batches", type=int, nargs="+", default=[32, 64, 128, 256, 512, 1024, 4096])
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--backend", default="auto", choices=_engine.BACKENDS,
                   help="kernels to time (default auto: native when built, as LinearRegressor)")
    a = p.parse_args(argv)
    threads = numba.config.NUMBA_NUM_THREADS
    opt = OPTIMIZERS["adam"](lr=1e-3)
    print(f"parallel / sequential epoch time, {threads} threads, n = {a.n:,}, backend {a.backend}; "
          f"PAR_MIN_WORK = {K.PAR_MIN_WORK}")
    for d in a.d:
        n = max(a.n * 100 // d, 20_000)
        X, y, _, _ = make_regression(n, d)
        Y = y[:, None]
        cells = []
        for b in a.batches:
            seq = best_of(fastgd_epoch(X, Y, opt, b, threads, K.PATH_SEQUENTIAL, a.backend), a.repeat)
            par = best_of(fastgd_epoch(X, Y, opt, b, threads, K.PATH_PARALLEL, a.backend), a.repeat)
            cells.append(f"B={b}: {par / seq:.2f}{'*' if b * d >= K.PAR_MIN_WORK else ''}")
        print(f"d={d:5d}  " + "  ".join(cells))
    print("(* = the automatic rule picks the parallel path)")


if __name__ == "__main__":
    main()
