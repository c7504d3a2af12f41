"""The compiled kernels check the shapes they are handed (both backends): a wrong shape is a ValueError naming
the argument, never an out-of-bounds read or write. Before these checks, a too-small ``state`` (e.g. an SGD
state handed to Adam after ``set_params(optimizer="adam")`` under warm_start) made the native kernel segfault
and the Numba kernel write past the end of the array."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse as sp

from fastgd import _engine, _training
from fastgd import _kernels as K
from fastgd._rules import STATE_ROWS
from fastgd.optimizers import OPTIMIZERS

N, D = 200, 5

BACKENDS = ["numba", "native"]


def kern(backend):
    if backend == "native" and not _engine.native_available():
        pytest.skip("native extension not built")
    return _engine.kernels(backend)


def epoch_args(opt="adam", **change):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N, D))
    o = OPTIMIZERS[opt](lr=0.01)
    state, scalars = o.init_state(D + 1)
    args = dict(X=X, Y=rng.standard_normal((N, 1)), sw=np.empty(0), theta=np.zeros((1, D + 1)), state=state,
                scalars=scalars, code=o.code, hp=o.pack(), sched=_engine.no_schedule(), pen=np.zeros(2),
                fit_intercept=True, batch_size=32, order=np.arange(7, dtype=np.int64), n_threads=2,
                path=K.PATH_AUTO, stdz=np.empty(0), avg=np.empty(0), work=np.empty(0))
    args.update(change)
    return args


# (change, opt, message): every shape the kernels rely on
BAD_EPOCH = [
    (dict(theta=np.zeros((1, D))), "adam", r"theta must have shape \(n_outputs, n_features \+ 1\) = \(1, 6\)"),
    (dict(theta=np.zeros((2, D + 1))), "adam", r"theta must have shape"),
    (dict(state=np.zeros((0, D + 1))), "adam", r"state must have shape \(3, 6\)"),  # an SGD state given to Adam
    (dict(state=np.zeros((1, D + 1))), "rmsprop", r"state must have shape \(3, 6\)"),
    (dict(state=np.zeros((1, D + 1))), "adamax", r"state must have shape \(2, 6\)"),
    (dict(state=np.zeros((1, D + 1))), "nadam", r"state must have shape \(2, 6\)"),
    (dict(state=np.zeros((0, D + 1))), "momentum", r"state must have shape \(1, 6\)"),
    (dict(state=np.zeros((0, D + 1))), "adagrad", r"state must have shape \(1, 6\)"),
    (dict(state=np.zeros((3, D))), "adam", r"state must have shape \(3, 6\).*got \(3, 5\)"),
    (dict(scalars=np.zeros(1)), "adam", "scalars must hold 2 values"),
    (dict(hp=np.zeros(7)), "adam", "hp must hold 8 hyperparameters"),
    (dict(sched=np.zeros(5)), "adam", "sched must hold 6 values"),
    (dict(pen=np.zeros(1)), "adam", r"pen must hold 2, 3, 5 or 6 values \(\[l1, l2, batch weight, loss code, loss"),
    (dict(pen=np.array([0.0, 0.0, 0.0, 4.0])), "adam", "pen must hold 2, 3, 5 or 6 values .*got 4"),  # no loss param
    (dict(pen=np.zeros(7)), "adam", "pen must hold 2, 3, 5 or 6 values .*got 7"),
    (dict(Y=np.zeros((N - 1, 1))), "adam", "Y must have one row per sample of X: got 199 rows for 200"),
    (dict(sw=np.ones(N + 1)), "adam", r"sw \(sample weights\) must be empty or hold one weight per sample"),
    (dict(order=np.array([0, 7], dtype=np.int64)), "adam", r"order holds batch index 7, outside \[0, n_batches = 7\)"),
    (dict(order=np.array([-1], dtype=np.int64)), "adam", "order holds batch index -1"),
    (dict(batch_size=0), "adam", "batch_size must be a positive int, got 0"),
    (dict(code=len(STATE_ROWS)), "adam",
     rf"optimizer code must be in \[0, {len(STATE_ROWS)}\), got {len(STATE_ROWS)}"),
    (dict(code=-1), "adam", "optimizer code must be in"),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("path", [K.PATH_SEQUENTIAL, K.PATH_PARALLEL])
@pytest.mark.parametrize("change, opt, message", BAD_EPOCH)
def test_epoch_rejects_bad_shapes(backend, path, change, opt, message):
    args = epoch_args(opt, path=path, **change)
    theta_before = args["theta"].copy()
    with pytest.raises(ValueError, match=message):
        kern(backend).epoch(*args.values())
    assert np.array_equal(args["theta"], theta_before)  # nothing was updated


@pytest.mark.parametrize("backend", BACKENDS)
def test_valid_arguments_still_train(backend):
    args = epoch_args("sgd")  # SGD's state has no rows: (0, k * (d + 1)) is valid
    loss, weight, finite = kern(backend).epoch(*args.values())
    assert finite and weight == N and loss > 0 and np.any(args["theta"] != 0)


def csr(dtype=np.int32):
    rng = np.random.default_rng(1)
    S = sp.random(N, D, density=0.4, format="csr", random_state=rng)
    return S.data, S.indices.astype(dtype), S.indptr.astype(dtype), D


def broken_csr(kind):
    data, indices, indptr, d = csr()
    if kind == "short indptr":  # n + 1 entries expected by Y's rows
        return (data, indices, indptr[:-1], d), r"Y must have one row per sample"
    if kind == "indptr start":
        indptr = indptr.copy()
        indptr[0] = 1
        return (data, indices, indptr, d), r"indptr\[0\] must be 0"
    if kind == "decreasing":
        indptr = indptr.copy()
        indptr[5] = indptr[6] + 1
        return (data, indices, indptr, d), "indptr must be nondecreasing"
    if kind == "past the end":
        indptr = indptr.copy()
        indptr[-1] += 3
        return (data, indices, indptr, d), r"indptr\[-1\] = \d+ exceeds len\(indices\)"
    if kind == "data length":
        return (data[:-1], indices, indptr, d), "data and indices must have the same length"
    if kind == "index too large":
        indices = indices.copy()
        indices[3] = d
        return (data, indices, indptr, d), r"column index 5 out of range \[0, n_features = 5\)"
    if kind == "negative index":
        indices = indices.copy()
        indices[3] = -2
        return (data, indices, indptr, d), r"column index -2 out of range"
    raise AssertionError(kind)


CSR_DEFECTS = ["short indptr", "indptr start", "decreasing", "past the end", "data length", "index too large",
               "negative index"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", CSR_DEFECTS)
def test_inconsistent_csr_is_rejected_by_every_entry_point(backend, kind):
    k = kern(backend)
    X, message = broken_csr(kind)
    args = epoch_args(X=X)
    with pytest.raises(ValueError, match=message):
        k.epoch(*args.values())
    with pytest.raises(ValueError, match=message):
        k.batches_stats(X, args["Y"], args["sw"], args["theta"], 32, np.arange(3, dtype=np.int64))
    if kind != "short indptr":  # predict has no Y: a short indptr is just fewer rows
        with pytest.raises(ValueError, match=message):
            k.predict(X, args["theta"])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n_threads", [1, 2])
def test_predict_and_stats_reject_bad_shapes(backend, n_threads):
    k = kern(backend)
    a = epoch_args()
    X, Y, sw = a["X"], a["Y"], a["sw"]
    with pytest.raises(ValueError, match="theta must have n_features \\+ 1 = 6 columns, got 5"):
        k.predict(X, np.zeros((1, D)), n_threads)
    stats = lambda **c: k.batches_stats(*{**dict(X=X, Y=Y, sw=sw, theta=a["theta"], batch_size=32,
                                                 batch_ids=np.arange(7, dtype=np.int64)), **c}.values(),
                                       n_threads)
    with pytest.raises(ValueError, match="batch_ids holds batch index 7"):
        stats(batch_ids=np.array([7], dtype=np.int64))
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        stats(batch_size=-3)
    with pytest.raises(ValueError, match="theta must have shape"):
        stats(theta=np.zeros((2, D + 1)))
    with pytest.raises(ValueError, match="Y must have one row per sample"):
        stats(Y=Y[:10])
    with pytest.raises(ValueError, match="sw \\(sample weights\\)"):
        stats(sw=np.ones(3))


@pytest.mark.parametrize("indices_dtype, indptr_dtype", [(np.int32, np.int64), (np.int64, np.int32)])
def test_native_accepts_csr_with_different_index_dtypes(indices_dtype, indptr_dtype):
    """scipy can produce int32 indices with an int64 indptr; Numba accepts it, the native backend rejected it.
    (Compared with Numba on same-dtype arrays, so no new Numba specialization is compiled here.)"""
    if not _engine.native_available():
        pytest.skip("native extension not built")
    data, indices, indptr, d = csr()
    mixed = (data, indices.astype(indices_dtype), indptr.astype(indptr_dtype), d)
    y = np.random.default_rng(2).standard_normal(N)
    opt = OPTIMIZERS["adam"](lr=0.01)
    got = _training.train_epochs(mixed, y, opt, batch_size=16, epochs=2, backend="native")[0].theta
    want = _training.train_epochs(csr(), y, opt, batch_size=16, epochs=2, backend="numba")[0].theta
    assert np.allclose(got, want, rtol=1e-12, atol=0)
    assert np.allclose(_engine.kernels("native").predict(mixed, got), K.predict(csr(), got), rtol=1e-12, atol=1e-14)


def test_native_rejects_csr_index_arrays_of_another_type():
    if not _engine.native_available():
        pytest.skip("native extension not built")
    data, indices, indptr, d = csr()
    with pytest.raises(ValueError, match="CSR X: indices must hold int32 or int64 values, got int16"):
        _engine.kernels("native").predict((data, indices.astype(np.int16), indptr, d), np.ones((1, D + 1)))
    with pytest.raises(ValueError, match="CSR X: indptr must be a 1-D C-contiguous NumPy array"):
        _engine.kernels("native").predict((data, indices, indptr[::2], d), np.ones((1, D + 1)))


def test_numba_backend_runs_with_jit_disabled():
    """NUMBA_DISABLE_JIT=1 (used to debug Numba code) once gave 'cannot unpack NoneType'; it now works,
    slowly, and gives the compiled kernels' results."""
    code = textwrap.dedent("""
        import numpy as np, scipy.sparse as sp, fastgd
        rng = np.random.default_rng(0)
        X = rng.standard_normal((120, 3)); y = X @ np.array([1.0, -2.0, 0.5]) + 0.3
        out = []
        for Xi, bs, nj in ((X, 16, 1), (X, 120, 2), (sp.csr_matrix(X), 40, 2)):
            m = fastgd.LinearRegressor(backend="numba", batch_size=bs, max_iter=2, tol=None, n_jobs=nj,
                                       random_state=0, standardize=False).fit(Xi, y)
            out.append(np.r_[m.coef_.ravel(), m.intercept_, m.predict(Xi)[:3]])
        np.save("jit_off.npy", np.array(out))
    """)
    import tempfile

    from fastgd import LinearRegressor

    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, NUMBA_DISABLE_JIT="1")
        res = subprocess.run([sys.executable, "-c", code], cwd=tmp, env=env, capture_output=True, text=True,
                             timeout=300)
        assert res.returncode == 0, res.stderr
        got = np.load(os.path.join(tmp, "jit_off.npy"))
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.3
    for row, (Xi, bs, nj) in zip(got, ((X, 16, 1), (X, 120, 2), (sp.csr_matrix(X), 40, 2))):
        # standardize=False: the kernels themselves (Adam's sign-like first step would turn the rounding
        # difference between interpreted and reassociated column statistics into a full step)
        m = LinearRegressor(backend="numba", batch_size=bs, max_iter=2, tol=None, n_jobs=nj,
                            random_state=0, standardize=False).fit(Xi, y)
        np.testing.assert_allclose(row, np.r_[m.coef_.ravel(), m.intercept_, m.predict(Xi)[:3]], rtol=1e-10)


@pytest.mark.parametrize("k, d", [(1, 1), (1, 100), (3, 17)])
def test_parameters_start_on_a_cache_line(k, d):
    """The row loop reads theta (no standardization) or its raw copy with vector loads: both start on a
    64-byte boundary, so no load straddles two cache lines (NumPy itself aligns to 16 bytes)."""
    ts = _engine.TrainingState.fresh(OPTIMIZERS["adam"](), k, d)
    assert ts.theta.ctypes.data % 64 == 0 and ts.theta.shape == (k, d + 1) and ts.theta.flags.c_contiguous
    assert not ts.theta.any()
    raw = K._line_aligned_empty(k, d + 1)
    assert raw.ctypes.data % 64 == 0 and raw.shape == (k, d + 1) and raw.flags.c_contiguous


def test_borrowed_views_read_and_write_their_owners_memory():
    """The kernels' hot loops run on borrowed views (fastgd._intrinsics.borrowed: no reference counts, so the
    caller keeps the owner alive: an argument is, a local array is used after its views' last use by keep);
    a view reads and writes its owner's memory, a local's and an argument's alike."""
    import numba

    from fastgd import _intrinsics as intr

    @numba.njit(cache=False)
    def doubled_sum(a):
        own = np.zeros(a.shape[0])
        out, src = intr.borrowed(own), intr.borrowed(a)
        for i in range(src.shape[0]):
            out[i] = 2.0 * src[i]
            src[i] = -src[i]
        total = own.sum()  # the owner sees the view's writes
        intr.keep(own)
        return total

    for _ in range(3):
        a = np.arange(5.0)
        assert doubled_sum(a) == 20.0
        np.testing.assert_array_equal(a, -np.arange(5.0))  # the argument's view wrote into it
