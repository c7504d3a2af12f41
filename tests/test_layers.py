"""The layers from fit to the compiled kernels: one backend lookup and one packed epoch per fit, few hops."""

import inspect
import re
from pathlib import Path

import numpy as np

import fastgd
from fastgd import _engine, _kernels

from _helpers import wide_csr


def _data(n=1500, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return X, X @ rng.normal(size=d) + 0.1 * rng.normal(size=n)


def _count_calls(monkeypatch, owner, name):
    calls = []
    real = getattr(owner, name)

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counting)
    return calls


def test_a_fit_looks_up_its_backend_once_and_packs_its_epoch_once(monkeypatch):
    X, y = _data()
    lookups = _count_calls(monkeypatch, _engine, "kernels")
    packs = _count_calls(monkeypatch, _engine.Epochs, "__init__")
    est = fastgd.LinearRegressor(backend="numba", max_iter=6, tol=None, random_state=0).fit(X, y)
    assert est.n_iter_ == 6 and len(lookups) == 1 and len(packs) == 1
    lookups.clear()
    packs.clear()
    est.partial_fit(X, y)
    assert len(lookups) == 1 and len(packs) == 1
    lookups.clear()
    est.predict(X)
    assert len(lookups) == 1


def test_lazy_csr_fit_looks_up_its_kernels_once(monkeypatch):
    """backend="auto" with lazy CSR epochs (both backends have them): one lookup, of "auto", used by every
    step."""
    rng = np.random.default_rng(0)
    X = wide_csr(3000, 2**14, 10)
    y = rng.normal(size=3000)
    asked = []
    real = _engine.kernels
    monkeypatch.setattr(_engine, "kernels", lambda backend="numba": asked.append(backend) or real(backend))
    fastgd.LinearRegressor(max_iter=2, tol=None, random_state=0).fit(X, y)
    assert asked == ["auto", "native" if _engine.native_available() else "numba"]  # "auto" resolves once


def test_fit_reaches_the_compiled_epoch_in_four_python_calls(monkeypatch):
    X, y = _data()
    stacks = []
    real = _kernels.epoch

    def spy(*args):
        stacks.append([frame.function for frame in inspect.stack()[1:]])
        return real(*args)

    monkeypatch.setattr(_kernels, "epoch", spy)
    fastgd.LinearRegressor(backend="numba", max_iter=2, tol=None, random_state=0).fit(X, y)
    assert len(stacks) == 2
    path = stacks[0][:stacks[0].index("fit") + 1][::-1]
    assert path == ["fit", "_train_and_store", "train", "run"]


def test_dask_module_uses_no_private_member_of_the_estimator():
    source = Path(fastgd.__file__).with_name("_dask.py").read_text()
    assert re.findall(r"\best\._\w+", source) == []
