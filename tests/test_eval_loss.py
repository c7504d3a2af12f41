"""The loss-only evaluation (batches_loss): the loss and weight of batches_stats (Numba: bit for bit) on both
backends, without the gradient sums; the training loop's evaluations use it."""

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from fastgd import LinearRegressor, _engine, _kernels, _training, reference

native = pytest.mark.skipif(not _engine.native_available(), reason="fastgd._native is not built")
BACKENDS = ["numba", pytest.param("native", marks=native)]
LOSSES = [None] + [(reference.LOSSES.index(name), a) for name, a in
                   [("huber", 0.4), ("epsilon_insensitive", 0.3), ("squared_epsilon_insensitive", 0.3),
                    ("quantile", 0.7)]]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    n, d, k = 3000, 9, 2
    X = rng.standard_normal((n, d))
    X[rng.random((n, d)) < 0.6] = 0.0
    Y = X @ rng.standard_normal((d, k)) + rng.standard_normal((n, k))
    sw = rng.uniform(0.0, 2.0, n)
    theta = 0.3 * rng.standard_normal((k, d + 1))
    return X, Y, sw, theta


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["dense", "csr"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("weighted", [False, True])
def test_the_loss_only_pass_gives_batches_stats_loss(data, backend, kind, dtype, loss, weighted):
    X, Y, sw, theta = data
    kern = _engine.kernels(backend)
    A = X.astype(dtype)
    if kind == "csr":
        S = sp.csr_matrix(A)
        A = (S.data, S.indices, S.indptr, X.shape[1])
    s = sw if weighted else _engine.EMPTY
    rng = np.random.default_rng(0)
    # batch sizes: single rows, many groups of batches (429 batches > the kernels' group count), several
    # chunks per batch, one batch of all rows; ids in a random order with the short last batch
    for bs in (1, 7, 256, 3000):
        nb = _engine.n_batches(len(Y), bs)
        ids = rng.permutation(nb)[: max(1, 3 * nb // 4)].astype(np.int64)
        _, want, w_want = kern.batches_stats(A, Y, s, theta, bs, ids, 1, loss=loss)
        got, w_got = kern.batches_loss(A, Y, s, theta, bs, ids, 1, loss=loss)
        assert kern.batches_loss(A, Y, s, theta, bs, ids, 2, loss=loss) == (got, w_got)  # any thread count
        assert w_got == w_want
        if backend == "numba":
            assert got == want, bs  # the same adds in the same order
        else:  # the C build's -fassociative-math may order a row loop's adds its own way in each loop
            assert got == pytest.approx(want, rel=1e-14, abs=0.0), bs


@pytest.mark.parametrize("d", [17, 100])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numba_loss_only_pass_matches_bit_for_bit_where_the_dot_loop_vectorizes(d, dtype):
    """Wide enough rows that the dot products run in the vectorized loop body, not only its remainder: the
    loss-only pass must run the gradient kernel's dot loop (rows in pairs, two chains) to give its bits."""
    rng = np.random.default_rng(2)
    n = 1001
    X = rng.standard_normal((n, d)).astype(dtype)
    Y = rng.standard_normal((n, 2))
    theta = 0.3 * rng.standard_normal((2, d + 1))
    for bs in (7, 256, n):
        ids = np.arange(_engine.n_batches(n, bs), dtype=np.int64)
        for loss in (None, LOSSES[1]):
            _, want, _ = _kernels.batches_stats(X, Y, _engine.EMPTY, theta, bs, ids, 1, loss=loss)
            got, _ = _kernels.batches_loss(X, Y, _engine.EMPTY, theta, bs, ids, 1, loss=loss)
            assert got == want, (bs, loss)


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_empty_list_of_batches_has_no_loss_and_no_weight(data, backend):
    X, Y, _, theta = data
    got = _engine.kernels(backend).batches_loss(X, Y, _engine.EMPTY, theta, 16, np.empty(0, np.int64), 1)
    assert tuple(got) == (0.0, 0.0)


@native
def test_the_csr_loss_pass_allocates_nothing_that_grows_with_d():
    """batches_stats sums k·(d + 1) gradient values per group of batches (8 MB each at d = 2**20); the
    evaluation needs the loss only, so its memory must not grow with d."""
    from fastgd import _native
    rng = np.random.default_rng(1)
    n, d = 400, 1 << 20
    indices = np.sort(rng.integers(0, d, (n, 5)), axis=1).ravel().astype(np.int32)
    X = (rng.standard_normal(5 * n), indices, np.arange(0, 5 * n + 1, 5, dtype=np.int32), d)
    Y = rng.standard_normal((n, 1))
    theta = np.zeros((1, d + 1))
    ids = np.arange(n // 4, dtype=np.int64)
    tracemalloc.start()
    try:
        _native.batches_loss(X, Y, _engine.EMPTY, theta, 4, ids, 1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024


def _wide_csr(rng, n, d, nnz, ptr_type):
    """CSR parts of n rows with nnz values each over d columns (int64 indices), and 2 outputs' Y and theta."""
    indices = np.sort(rng.choice(d, (n, nnz)), axis=1).ravel()
    data = rng.standard_normal(n * nnz)
    indptr = np.arange(0, n * nnz + 1, nnz, dtype=ptr_type)
    return data, indices, indptr, rng.standard_normal((n, 2)), rng.standard_normal((2, d + 1))


@native
def test_the_csr_loss_pass_hints_at_large_d_change_no_result():
    """At large d the native CSR loss pass hints the parameters ahead (LOSS_HINT_MIN_BYTES; switched with
    _tune(lazy_hints=...)): the same bits with and without, for any batches, order, outputs and types."""
    from fastgd import _native, _rules
    rng = np.random.default_rng(3)
    n, d = 400, 1 << 18
    assert (d + 1) * 8 >= _rules.LOSS_HINT_MIN_BYTES
    data, indices, indptr, Y, theta = _wide_csr(rng, n, d, 6, np.int32)
    before = _native._tune()
    try:
        for X in ((data, indices.astype(np.int32), indptr, d), (data.astype(np.float32), indices, indptr, d)):
            for bs in (1, 7, n):
                ids = rng.permutation(_engine.n_batches(n, bs)).astype(np.int64)
                got = []
                for hints in (True, False):
                    _native._tune(lazy_hints=hints)
                    got.append([_native.batches_loss(X, Y[:, :k].copy(), _engine.EMPTY, theta[:k].copy(), bs, ids, 1)
                                for k in (1, 2)])
                assert got[0] == got[1], bs
    finally:
        _native._tune(**before)


@native
def test_the_csr_gradient_sums_hints_at_large_d_change_no_result():
    """At large d the native CSR gradient sums (batches_stats, on one thread and split across threads, and the
    epoch's CSR chunks) hint the parameters and sums ahead (SUMS_HINT_MIN_BYTES; switched with
    _tune(lazy_hints=...)): the same bits with and without."""
    from fastgd import _native, _rules
    from fastgd.optimizers import get_optimizer
    rng = np.random.default_rng(4)
    n, d = 3000, 1 << 19
    assert (d + 1) * 8 >= _rules.SUMS_HINT_MIN_BYTES
    data, indices, indptr, Y, theta = _wide_csr(rng, n, d, 8, np.int64)
    sw = rng.uniform(0.0, 2.0, n)
    opt = get_optimizer("adagrad")
    before = _native._tune()
    try:
        for X in ((data, indices.astype(np.int32), indptr, d), (data.astype(np.float32), indices, indptr, d)):
            got = []
            for hints in (True, False):
                _native._tune(lazy_hints=hints)
                sums = [_native.batches_stats(X, Y[:, :k].copy(), sw, theta[:k].copy(), bs, ids, t)
                        for k in (1, 2) for t in (1, 2)
                        for bs, ids in ((n, np.zeros(1, np.int64)), (500, np.array([4, 1], np.int64)))]
                ts = _engine.TrainingState.fresh(opt, 1, d)
                _engine.run_epoch(X, Y[:, :1].copy(), ts, opt.code, opt.pack(), 256,
                                  np.arange(_engine.n_batches(n, 256), dtype=np.int64), backend="native", l1=1e-3)
                got.append(([np.concatenate([G, [f, w]]) for G, f, w in sums], ts.theta.copy()))
            assert all(np.array_equal(a, b) for a, b in zip(got[0][0], got[1][0]))
            assert np.array_equal(got[0][1], got[1][1])
    finally:
        _native._tune(**before)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_csr_loss_pass_at_large_d_adds_max_chunks_groups_of_batches_stats_sums(backend):
    """At large d batches_stats' memory budget allows few groups; the loss-only pass holds no k·(d + 1) buffer
    per group, so it splits the batches into up to MAX_CHUNKS groups (threads): each group the batches'
    batches_stats losses added in order, the groups added in order; the same bits for any thread count.
    Numba's pass also hints the parameters ahead at this d (LOSS_HINT_MIN_BYTES)."""
    kern = _engine.kernels(backend)
    rng = np.random.default_rng(4)
    n, d, nnz = 600, 1 << 18, 6
    assert (d + 1) * 8 >= _kernels._rules.LOSS_HINT_MIN_BYTES
    assert _kernels.max_chunks(2 * (d + 1)) < _kernels.MAX_CHUNKS  # the budget binds batches_stats here
    X = (rng.standard_normal(n * nnz), np.sort(rng.choice(d, (n, nnz)), axis=1).ravel().astype(np.int32),
         np.arange(0, n * nnz + 1, nnz, dtype=np.int32), d)
    Y = rng.standard_normal((n, 2))
    theta = rng.standard_normal((2, d + 1))
    for bs in (1, 7, n):
        ids = rng.permutation(_engine.n_batches(n, bs)).astype(np.int64)
        per = -(-len(ids) // _kernels.MAX_CHUNKS)
        want = w_want = 0.0
        for g in range(0, len(ids), per):
            acc = w_acc = 0.0
            for i in ids[g:g + per]:
                _, f, w = kern.batches_stats(X, Y, _engine.EMPTY, theta, bs, np.array([i]), 1)
                acc += f
                w_acc += w
            want += acc
            w_want += w_acc
        for threads in (1, 2):
            assert tuple(kern.batches_loss(X, Y, _engine.EMPTY, theta, bs, ids, threads)) == (want, w_want), bs


@pytest.mark.parametrize("backend", BACKENDS)
def test_evaluations_during_training_skip_the_gradient_sums(monkeypatch, backend):
    """The stopping rules read the loss only: no evaluation sums a gradient (batches_stats) unless a rule
    needs it (gtol)."""
    mod = _kernels if backend == "numba" else pytest.importorskip("fastgd._native")
    calls = []
    real = mod.batches_stats
    monkeypatch.setattr(mod, "batches_stats", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    rng = np.random.default_rng(3)
    X = rng.standard_normal((500, 4))
    y = X @ rng.standard_normal(4) + 0.1 * rng.standard_normal(500)
    S = sp.csr_matrix(np.where(np.abs(X) > 0.5, X, 0.0))
    for A in (X, S):  # (no penalty: on sparse X "auto" would choose its strength, whose solves sum gradients)
        est = LinearRegressor(backend=backend, max_iter=4, tol=None, warm_start=True, penalty=None).fit(A, y)
        est.fit(A, y)  # a start with weights: evaluated on X too
        assert len(est.eval_loss_curve_) >= 1
    assert calls == []


def test_the_evaluation_cost_benchmark_runs(capsys, monkeypatch):
    """benchmarks/eval_cost.py on tiny sizes (the real runs are by hand), so it cannot rot."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import eval_cost

    eval_cost.main(["--n", "600", "--dims", "8", "--nnz", "5", "--dense-n", "500", "--dense-d", "4",
                    "--rounds", "1"])
    out = capsys.readouterr().out
    assert "d=2^8" in out and "SGDRegressor" in out and "dense 500x4" in out
    assert _training.FitData.objective is eval_cost.NEW  # the old evaluation swapped back


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("batch_size", [1, 3, 7, 64, 3000])
@pytest.mark.parametrize("weighted", [False, True])
def test_the_constant_starts_evaluation_adds_the_batches_sums_in_their_order(data, loss, batch_size, weighted,
                                                                          monkeypatch):
    """The start's evaluation (all-zero weights: X is not read) takes whole batches in blocks: the same sums,
    added in the same order, as one batch at a time (the listed order, the short last batch among them)."""
    _, Y, sw, _ = data
    n = Y.shape[0]
    nb = -(-n // batch_size)
    ids = np.random.default_rng(batch_size).permutation(nb)[: max(1, nb - 2)]
    ids = np.concatenate([ids, [nb - 1]]) if nb - 1 not in ids else ids  # the short last batch listed
    fit = _training.FitData.__new__(_training.FitData)
    fit.Y, fit.sw, fit.batch_size, fit.loss = Y, sw if weighted else None, batch_size, loss
    b = np.array([0.3, -1.2])
    code, param = (0, 0.0) if loss is None else loss
    sse = W = 0.0
    for i in ids:  # one batch at a time
        lo, hi = int(i) * batch_size, min((int(i) + 1) * batch_size, n)
        v = reference.loss_value(b - Y[lo:hi], reference.LOSSES[int(code)], param).sum(axis=1)
        s = None if not weighted else sw[lo:hi]
        sse += float(v.sum()) if s is None else reference.vdot(s, v)
        W += float(hi - lo if s is None else s.sum())
    monkeypatch.setattr(_training, "EVAL_ROWS", 100)  # several blocks
    assert fit._constant_sums(b, ids) == (sse, W)


@pytest.mark.parametrize("batch_size", [1, 3, 64, 3000])
def test_batch_rows_are_the_listed_batches_rows_in_their_order(data, batch_size):
    """``FitData.batch_rows`` (target_variance's rows, with no Python step per batch): each listed batch's rows in
    the listed order, the short last batch among them."""
    _, Y, sw, _ = data
    n = Y.shape[0]
    nb = -(-n // batch_size)
    ids = np.random.default_rng(batch_size).permutation(nb)[: max(1, nb - 2)]
    ids = np.concatenate([ids, [nb - 1]]) if nb - 1 not in ids else ids
    fit = _training.FitData.__new__(_training.FitData)
    fit.Y, fit.sw, fit.batch_size, fit.loss = Y, sw, batch_size, None
    expected = np.concatenate([np.arange(int(i) * batch_size, min((int(i) + 1) * batch_size, n)) for i in ids])
    np.testing.assert_array_equal(fit.batch_rows(ids), expected)
    assert fit.target_variance(ids) == _training.constant_loss(Y[expected], sw[expected], None)
