"""Out-of-core order (shuffled blocks of batches), memmaps, progress bars and callbacks."""

import sys
import warnings

import numpy as np
import pytest

import fastgd
from fastgd import _engine, _pagecache, _training


def _data(n=6000, d=4, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = (rng.normal(size=(n, d)) * 2 + 1).astype(dtype)
    y = X @ rng.normal(size=d) + 0.3 * rng.normal(size=n) + 5
    return X, y


def test_block_shuffled_order_one_block_is_the_old_shuffle():
    ids = np.arange(50, dtype=np.int64)
    a = _training.block_shuffled_order(ids, 50, np.random.default_rng(3))
    b = ids.copy()
    np.random.default_rng(3).shuffle(b)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("ids", [np.arange(103), np.array([0, 1, 5, 6, 7, 20, 21, 50, 99, 100])])
def test_block_shuffled_order_blocks_are_contiguous_and_shuffled(ids):
    ids = ids.astype(np.int64)
    rng = np.random.default_rng(0)
    firsts = set()
    for _ in range(30):
        order = _training.block_shuffled_order(ids, 10, rng)
        assert np.array_equal(np.sort(order), np.sort(ids))  # a permutation of the training batches
        blocks = order // 10
        changes = np.count_nonzero(blocks[1:] != blocks[:-1])
        assert changes == len(np.unique(blocks)) - 1  # each block's batches are consecutive
        firsts.add(int(blocks[0]))
    assert len(firsts) > 3  # the blocks come in a random order


def test_block_shuffled_order_shuffles_inside_blocks():
    rng = np.random.default_rng(1)
    sorted_runs = 0
    for _ in range(20):
        order = _training.block_shuffled_order(np.arange(40, dtype=np.int64), 20, rng)
        sorted_runs += bool(np.all(np.diff(order[:20]) > 0))
    assert sorted_runs == 0


def test_block_batches_is_a_function_of_shape_and_dtype():
    X64 = np.empty((10, 100))
    X32 = np.empty((10, 100), dtype=np.float32)
    assert _training.block_batches(X32, 256) == 2 * _training.block_batches(X64, 256) or \
        abs(_training.block_batches(X32, 256) - 2 * _training.block_batches(X64, 256)) <= 1
    assert _training.block_batches(X64, 256) == round(_training.BLOCK_BYTES / 800 / 256)
    assert _training.block_batches(np.empty((10, 10**7)), 4096) == 1  # at least one batch


def _memmap(tmp_path, X):
    np.save(tmp_path / "X.npy", X)
    return np.load(tmp_path / "X.npy", mmap_mode="r")


def test_fit_visits_blocks_sequentially(monkeypatch, tmp_path):
    """On a memmap the default shuffled order reads one block of batches after another (what makes an epoch
    sequential on disk); in memory it is the full shuffle."""
    X, y = _data(8192, 4)
    Xm = _memmap(tmp_path, X)
    monkeypatch.setattr(_training, "BLOCK_BYTES", 8 * 4 * 64 * 4)  # blocks of 4 batches of 64 rows
    orders = []
    real = _engine.Epochs.run

    def spy(kernel, ts, order):
        orders.append(order.copy())
        return real(kernel, ts, order)

    monkeypatch.setattr(_engine.Epochs, "run", spy)
    a = fastgd.LinearRegressor(batch_size=64, max_iter=3, tol=None, random_state=0).fit(Xm, y)
    assert len(orders) == 3 * 32  # block by block
    for e in range(3):
        order = np.concatenate(orders[32 * e:32 * e + 32])
        blocks = order // 4
        assert np.count_nonzero(blocks[1:] != blocks[:-1]) == 128 // 4 - 1
        assert not np.array_equal(blocks, np.sort(blocks))  # and the blocks are shuffled
    orders.clear()
    b = fastgd.LinearRegressor(batch_size=64, max_iter=3, tol=None, random_state=0).fit(X, y)
    assert len(orders) == 3
    assert any(np.count_nonzero((o // 4)[1:] != (o // 4)[:-1]) > 40 for o in orders)
    assert not np.array_equal(a.coef_, b.coef_)


def test_memmap_fits_in_place_like_an_array(tmp_path):
    X, y = _data(5000, 3, dtype=np.float32)
    path = tmp_path / "X.npy"
    np.save(path, X)
    Xm = np.load(path, mmap_mode="r")
    a = fastgd.LinearRegressor(random_state=0).fit(Xm, y)
    b = fastgd.LinearRegressor(random_state=0).fit(X, y)
    assert np.array_equal(a.coef_, b.coef_)
    assert a.score(Xm, y) > 0.95


def test_callbacks_see_every_epoch_and_can_stop():
    X, y = _data(3000, 3)
    seen = []

    def cb(info):
        seen.append(info)
        return info.epoch >= 3

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = fastgd.LinearRegressor(random_state=0, tol=None, max_iter=50, callbacks=[cb]).fit(X, y)
    assert est.n_iter_ == 3 and [i.epoch for i in seen] == [1, 2, 3]
    assert seen[-1].coef.shape == (1, 3) and np.isfinite(seen[-1].loss) and seen[-1].step == est.t_
    assert [i.loss for i in seen] == est.loss_curve_


def test_callback_error_propagates_and_bad_callbacks_are_named():
    X, y = _data(500, 2)

    def boom(info):
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        fastgd.LinearRegressor(callbacks=boom).fit(X, y)
    with pytest.raises(ValueError, match="callbacks"):
        fastgd.LinearRegressor(callbacks=3).fit(X, y)


@pytest.mark.parametrize("memmap", [True, False])
def test_progress_bar_inside_epochs(monkeypatch, capsys, tmp_path, memmap):
    pytest.importorskip("tqdm")
    X, y = _data(8192, 4)
    X = _memmap(tmp_path, X) if memmap else X
    monkeypatch.setattr(_training, "BLOCK_BYTES", 8 * 4 * 64 * 8)
    quiet = fastgd.LinearRegressor(batch_size=64, max_iter=2, tol=None, random_state=0).fit(X, y)
    capsys.readouterr()
    loud = fastgd.LinearRegressor(batch_size=64, max_iter=2, tol=None, random_state=0, verbose=1).fit(X, y)
    out = capsys.readouterr()
    assert "rows" in out.err and "epoch 1" in out.err  # tqdm's bar: rate and ETA over rows
    assert out.out.count("-- Epoch") == 2
    assert np.array_equal(quiet.coef_, loud.coef_)  # the bar runs the same updates, block by block
    np.testing.assert_allclose(quiet.loss_curve_, loud.loss_curve_, rtol=1e-12)


def test_no_tqdm_prints_the_epoch_lines(monkeypatch, capsys, tmp_path):
    X, y = _data(8192, 4)
    X = _memmap(tmp_path, X)
    monkeypatch.setattr(_training, "BLOCK_BYTES", 8 * 4 * 64 * 8)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # import fails
    fastgd.LinearRegressor(batch_size=64, max_iter=2, tol=None, random_state=0, verbose=1).fit(X, y)
    out = capsys.readouterr()
    assert out.out.count("-- Epoch") == 2 and "rows" not in out.err


def test_prefetch_thread_works_in_a_forked_child(tmp_path):
    """The prefetch thread belongs to the process that made it: a forked child makes its own instead of
    waiting forever on the parent's (which does not exist in the child)."""
    import multiprocessing as mp

    X, _ = _data(4096, 4)
    mf = _pagecache.file_range(np.asarray(_memmap(tmp_path, X)))
    assert mf is not None and mf.row_bytes == 32
    _pagecache.prefetch_async(mf, (0, 1024)).result(timeout=30)  # the parent's thread exists
    with mp.get_context("fork").Pool(1) as pool:
        assert pool.apply_async(_prefetch_in_child, (str(tmp_path / "X.npy"),)).get(timeout=30)


def _prefetch_in_child(path):
    mf = _pagecache.file_range(np.asarray(np.load(path, mmap_mode="r")))
    _pagecache.prefetch_async(mf, (1024, 4096)).result(timeout=10)
    return True
