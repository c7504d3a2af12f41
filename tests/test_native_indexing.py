"""Indexing in fastgd/_native.pyx: no negative index where Cython's wraparound is off.

With ``wraparound=False`` Cython passes a negative index on a Python object unadjusted to the type's
``sq_item`` slot whenever the type declares itself a sequence (Py_TPFLAGS_SEQUENCE); NumPy's ``sq_item``
rejects it ("index -202 is out of bounds for axis 0 with size 201"). NumPy releases whose ndarray carries
that flag broke every CSR entry point that way. The first test sets the flag on ndarray in a child process
and runs the CSR entry points; the second compiles the module and rejects Cython's warning about a negative
index in a wraparound=False section, wherever it is.
"""

import ctypes
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Run in a child: ndarray's type flags are process-wide.
_AS_SEQUENCE = textwrap.dedent(
    """
    import ctypes
    import numpy as np
    import scipy.sparse as sp

    SEQUENCE = 1 << 5  # Py_TPFLAGS_SEQUENCE
    flags = np.ndarray.__flags__
    base = id(np.ndarray)
    words = [ctypes.c_ulong.from_address(base + 8 * i) for i in range(64)]
    hits = [w for w in words[3:] if w.value == flags]  # tp_flags (after refcount, type, size)
    assert len(hits) == 1, "cannot locate ndarray's tp_flags"
    hits[0].value = flags | SEQUENCE
    assert np.ndarray.__flags__ & SEQUENCE

    from fastgd import _native, LinearRegressor

    rng = np.random.default_rng(0)
    X = sp.random(200, 5, density=0.4, format="csr", random_state=1)
    y = X @ np.arange(1.0, 6.0) + 0.01 * rng.standard_normal(200)
    tup = (X.data, X.indices, X.indptr, 5)
    _native.column_stats(tup, np.empty(0))
    _native.predict(tup, np.zeros((1, 6)))
    model = LinearRegressor(backend="native", max_iter=3, random_state=0).fit(X, y)
    assert np.isfinite(model.coef_).all()
    print("ok")
    """
)


def test_csr_entry_points_when_ndarray_is_a_sequence_type(tmp_path):
    if ctypes.sizeof(ctypes.c_void_p) != 8 or sys.implementation.name != "cpython":
        pytest.skip("the flag is set through CPython's 64-bit type layout")
    # cwd: not the checkout, whose fastgd/ (without the built extension) would shadow the installed one
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", _AS_SEQUENCE], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]


def test_no_negative_index_where_wraparound_is_off(tmp_path):
    cython = pytest.importorskip("Cython")  # a build requirement, and in the test extra
    src = ROOT / "fastgd" / "_native.pyx"
    out = subprocess.run([sys.executable, "-m", "cython", "-3", "-I", str(ROOT), "--module-name", "fastgd._native",
                          str(src), "-o", str(tmp_path / "_native.c")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "negative indices" not in out.stderr, (
        f"Cython {cython.__version__}: a negative index where wraparound is off:\n{out.stderr}")
