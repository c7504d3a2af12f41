"""Kernels vs their NumPy references (see bench_data.py for how to run for real)."""

import numpy as np
import pytest

from fastgd import _engine
from fastgd import _kernels as K
from fastgd import reference
from fastgd.optimizers import OPTIMIZERS

from bench_data import DS, MAX_REFERENCE_BATCHES, data, shapes

DTYPES = [np.float64, np.float32]


def _shape_id(n, d, b):
    return f"n={n},d={d},B={b}"


@pytest.mark.parametrize("n, d, b", shapes(), ids=[_shape_id(*s) for s in shapes()])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("impl", ["fastgd-sequential", "fastgd-parallel", "numpy"])
def test_gradient(benchmark, impl, dtype, n, d, b):
    X, Y = data(n, d, dtype)
    theta = np.full((1, d + 1), 0.01)
    benchmark.group = f"gradient|{_shape_id(n, d, b)},{np.dtype(dtype).name}"
    if impl == "numpy":
        G, _ = benchmark(reference.batch_gradient, X[:b], Y[:b], theta)
    else:
        G, _ = benchmark(K.batch_gradient, X, Y, np.empty(0), theta, 0, b, impl.endswith("parallel"))
    assert np.all(np.isfinite(G))


@pytest.mark.parametrize("d", DS, ids=[f"d={d}" for d in DS])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("impl", ["fastgd", "numpy"])
def test_update(benchmark, impl, name, d):
    opt = OPTIMIZERS[name]()
    P = d + 1
    rng = np.random.default_rng(0)
    th, G = rng.standard_normal(P), rng.standard_normal(P)
    state, scalars = opt.init_state(P)
    scalars[0] = 10.0
    benchmark.group = f"update-{name}|d={d}"
    if impl == "fastgd":
        hp = opt.pack()
        benchmark(K.update, opt.code, th, G, state, scalars, hp, opt.lr, np.empty(0))
    else:
        st = opt.state_dict(state, scalars)
        benchmark(opt.reference_step(), th, G, st)
    assert np.all(np.isfinite(th))


@pytest.mark.parametrize("n, d, b", shapes(), ids=[_shape_id(*s) for s in shapes()])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("impl", ["fastgd-sequential", "fastgd-parallel", "native-sequential", "native-parallel",
                                  "numpy"])
def test_epoch(benchmark, impl, name, dtype, n, d, b):
    X, Y = data(n, d, dtype)
    opt = OPTIMIZERS[name]()
    benchmark.group = f"epoch-{name}|{_shape_id(n, d, b)},{np.dtype(dtype).name}"
    order = np.arange(_engine.n_batches(n, b), dtype=np.int64)
    if impl == "numpy":
        if len(order) > MAX_REFERENCE_BATCHES:
            pytest.skip(f"{len(order)} batches: a plain-NumPy epoch takes too long to benchmark")
        theta = np.zeros((1, d + 1))
        state = opt.state_dict(*opt.init_state(d + 1))
        benchmark(reference.epoch, X, Y, theta, state, opt.reference_step(), b, order)
        assert np.all(np.isfinite(theta))
        return
    ts = _engine.TrainingState.fresh(opt, 1, d)
    path = K.PATH_PARALLEL if impl.endswith("parallel") else K.PATH_SEQUENTIAL
    backend = "native" if impl.startswith("native") else "numba"
    benchmark(_engine.run_epoch, X, Y, ts, opt.code, opt.pack(), b, order, n_threads=2, path=path, backend=backend)
    assert np.all(np.isfinite(ts.theta))


@pytest.mark.parametrize("n, d, b", shapes(), ids=[_shape_id(*s) for s in shapes()])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("impl", ["floor-numba", "floor-native"])
def test_floor(benchmark, impl, dtype, n, d, b):
    """The memory floor (a read-only pass over X on 2 threads) in each Adam epoch group, beside the epochs
    it bounds: the group's table shows epoch / floor (benchmarks/full_bench.py --ratios prints the ratios)."""
    X, _ = data(n, d, dtype)
    benchmark.group = f"epoch-adam|{_shape_id(n, d, b)},{np.dtype(dtype).name}"
    if impl == "floor-native":
        if not _engine.native_available():
            pytest.skip("the native extension is not built")
        from fastgd._native import read_floor
        total = benchmark(read_floor, X, 2)
    else:
        total = benchmark(K.read_floor, X)
    assert np.isfinite(total)


LOSSES = [("squared_error", 0.0), ("huber", 0.5), ("epsilon_insensitive", 0.1),
          ("squared_epsilon_insensitive", 0.1), ("quantile", 0.7)]


@pytest.mark.parametrize("n, d, b", shapes(), ids=[_shape_id(*s) for s in shapes()])
@pytest.mark.parametrize("loss, param", LOSSES, ids=[name for name, _ in LOSSES])
@pytest.mark.parametrize("impl", ["fastgd-parallel", "native-parallel", "floor-numba"])
def test_epoch_loss(benchmark, impl, loss, param, n, d, b):
    """An Adam epoch (float64) per loss, beside the floor: epoch / floor per loss against the squared error's."""
    X, Y = data(n, d, np.float64)
    benchmark.group = f"loss-{loss}|{_shape_id(n, d, b)},float64"
    if impl == "floor-numba":
        assert np.isfinite(benchmark(K.read_floor, X))
        return
    opt = OPTIMIZERS["adam"]()
    ts = _engine.TrainingState.fresh(opt, 1, d)
    order = np.arange(_engine.n_batches(n, b), dtype=np.int64)
    code = None if loss == "squared_error" else (reference.LOSSES.index(loss), param)
    benchmark(_engine.run_epoch, X, Y, ts, opt.code, opt.pack(), b, order, n_threads=2, path=K.PATH_PARALLEL,
              backend="native" if impl.startswith("native") else "numba", loss=code)
    assert np.all(np.isfinite(ts.theta))
