"""Bad input gets a clear exception that names the argument, never a crash; the user's arrays are untouched."""

import warnings

import numpy as np
import scipy.sparse as sp
import pytest
from sklearn.exceptions import NotFittedError

from fastgd import LinearRegressor
from fastgd.optimizers import Adam
from fastgd.schedules import Cosine

rng = np.random.default_rng(0)
X = rng.standard_normal((50, 3))
y = X @ np.array([1.0, -1.0, 0.5])


def fit(model=None, X=X, y=y, **kw):
    return (model or LinearRegressor(max_iter=2, tol=None)).fit(X, y, **kw)


def with_value(a, index, value):
    a = np.array(a, dtype=float)
    a[index] = value
    return a


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_X(value):
    with pytest.raises(ValueError, match="X.*(NaN|infinity)"):
        fit(X=with_value(X, (3, 1), value))


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_y(value):
    with pytest.raises(ValueError, match="y.*(NaN|infinity)"):
        fit(y=with_value(y, 7, value))


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_sample_weight(value):
    with pytest.raises(ValueError, match="sample_weight.*(NaN|infinity)"):
        fit(sample_weight=with_value(np.ones(50), 2, value))


@pytest.mark.parametrize("text", [X.astype(str), X.astype(str).tolist(), X.astype(bytes)], ids=["str", "list", "bytes"])
def test_numbers_as_text_are_refused(text):
    """Numbers written as strings or bytes are refused, as scikit-learn's LinearRegression (check_array with
    dtype="numeric") refuses them, naming X and the conversion, in fit, partial_fit and predict; the advice,
    followed, fits."""
    match = r"X holds (strings|bytes) \(dtype .*\), not numbers: convert it to a numeric dtype first, e.g. " \
            r"np.asarray\(X, dtype=np.float64\)"
    with pytest.raises(ValueError, match=match):
        fit(X=text)
    with pytest.raises(ValueError, match=match):
        LinearRegressor().partial_fit(text, y)
    with pytest.raises(ValueError, match=match):
        fit().predict(text)
    seeded = dict(max_iter=2, tol=None, random_state=0)
    np.testing.assert_array_equal(fit(LinearRegressor(**seeded), X=np.asarray(text, dtype=np.float64)).coef_,
                                  fit(LinearRegressor(**seeded), X=np.asarray(X.astype(str), dtype=np.float64)).coef_)


def test_empty_X():
    with pytest.raises(ValueError, match="X.*0 sample"):
        fit(X=np.empty((0, 3)), y=np.empty(0))


def test_zero_features():
    with pytest.raises(ValueError, match="X.*0 feature"):
        fit(X=np.empty((50, 0)))


def test_one_dimensional_X():
    with pytest.raises(ValueError, match="X.*2-dimensional|X.*2D"):
        fit(X=X[:, 0])


def test_three_dimensional_X():
    with pytest.raises(ValueError, match="X.*dim 3"):
        fit(X=X.reshape(50, 3, 1))


@pytest.mark.parametrize("bad", [np.full((50, 3), "a"), np.full((50, 3), None), X.astype(complex)])
def test_non_numeric_X(bad):
    with warnings.catch_warnings(), pytest.raises((ValueError, TypeError), match="X"):
        warnings.simplefilter("error", RuntimeWarning)  # the error, not a NumPy warning on the way to it
        fit(X=bad)


@pytest.mark.parametrize("bad", [y.astype(str), y.astype(complex)])
def test_non_numeric_y(bad):
    with pytest.raises((ValueError, TypeError), match="y"):
        fit(y=bad)


def test_length_mismatch_X_y():
    with pytest.raises(ValueError, match="X and y have different numbers of rows: 50 and 49"):
        fit(y=y[:49])


def test_length_mismatch_sample_weight():
    with pytest.raises(ValueError, match="sample_weight"):
        fit(sample_weight=np.ones(49))


def test_negative_sample_weight():
    with pytest.raises(ValueError, match="sample_weight"):
        fit(sample_weight=with_value(np.ones(50), 0, -1.0))


def test_all_zero_sample_weight():
    """Refused, as scikit-learn's fit does, naming sample_weight and the fix."""
    with pytest.raises(ValueError, match=r"sample_weight is zero on every row.*give at least one row a positive "
                                         r"weight\.$"):
        fit(sample_weight=np.zeros(50))


def test_y_none():
    with pytest.raises(ValueError, match="requires y"):
        LinearRegressor().fit(X, None)


@pytest.mark.parametrize("params, message", [
    (dict(optimizer="adamm"), "optimizer must be one of"),
    (dict(optimizer=Adam(lr=-1.0)), "Adam: lr must be a finite number > 0.0"),
    (dict(alpha=10**400), "alpha must be a finite number >= 0.0, got 1000"),
    (dict(penalty=[1]), r"penalty must be 'auto', None, 'l2', 'l1' or 'elasticnet', got \[1\]"),
    (dict(optimizer=Adam(betas=(0.9, 1.5))), r"Adam: betas must be a pair.*got \(0.9, 1.5\)"),
    (dict(learning_rate=0.0), "learning_rate must be 'adaptive', a positive float"),
    (dict(learning_rate="constant"), "learning_rate must be"),
    (dict(batch_size=-3), r"batch_size must be 'auto', a positive int or None, got -3"),
    (dict(batch_size=2.5), "batch_size must be 'auto', a positive int or None"),
    (dict(max_iter=0), "max_iter must be .auto. or a positive int, got 0"),
    (dict(tol=-1.0), "tol must be a finite number >= 0"),
    (dict(n_iter_no_change=0), "n_iter_no_change must be a positive int"),
    (dict(early_stopping="yes"), "early_stopping must be True or False"),
    (dict(shuffle=1), "shuffle must be True or False"),
    (dict(fit_intercept=None), "fit_intercept must be True or False"),
    (dict(warm_start=2), "warm_start must be True or False"),
    (dict(validation_fraction=1.0), r"validation_fraction must be a finite number in \(0.0, 1.0\)"),
    (dict(penalty="l3"), "penalty must be 'auto', None, 'l2', 'l1' or 'elasticnet'"),
    (dict(alpha=-0.1), "alpha must be a finite number >= 0"),
    (dict(l1_ratio=1.5), r"l1_ratio must be a finite number in \[0.0, 1.0\]"),
    (dict(gtol=0.0), "gtol must be a finite number > 0"),
    (dict(n_jobs=0), "n_jobs must be None or a non-zero int"),
    (dict(verbose=-1), "verbose must be a non-negative int"),
])
def test_out_of_range_hyperparameter(params, message):
    with pytest.raises(ValueError, match=message):
        fit(LinearRegressor(**params))


def test_bad_initial_values():
    with pytest.raises(ValueError, match=r"coef_init must have shape \(1, 3\) or \(3,\)"):
        fit(coef_init=np.ones(4))
    Y = np.column_stack([y, -y])
    with pytest.raises(ValueError, match=r"coef_init must have shape \(2, 3\).*got shape \(3, 2\)"):
        fit(y=Y, coef_init=np.ones((3, 2)))  # (d, k) is not silently reshaped
    with pytest.raises(ValueError, match="intercept_init must be finite"):
        fit(intercept_init=[np.nan])
    with pytest.raises(ValueError, match="intercept_init must hold 1 value"):
        fit(intercept_init=[1.0, 2.0])


def test_a_nan_in_coef_init_is_named_as_such_not_as_a_shape():
    with pytest.raises(ValueError, match=r"coef_init must be finite: it holds 1 NaN"):
        fit(coef_init=np.array([1.0, np.nan, 0.0]))


def test_partial_fit_with_a_different_number_of_features():
    model = LinearRegressor().partial_fit(X, y)
    with pytest.raises(ValueError, match="X has 2 features, but LinearRegressor is expecting 3"):
        model.partial_fit(X[:, :2], y)


def test_predict_before_fit():
    with pytest.raises(NotFittedError, match="not fitted yet"):
        LinearRegressor().predict(X)


def test_predict_with_a_different_number_of_features():
    with pytest.raises(ValueError, match="X has 4 features"):
        fit().predict(np.ones((2, 4)))


def test_user_arrays_are_never_modified():
    Xc, yc, sw = X.copy(), y.copy(), np.ones(50)
    LinearRegressor(max_iter=3, tol=None, penalty="l1").fit(Xc, yc, sample_weight=sw)
    assert np.array_equal(Xc, X) and np.array_equal(yc, y) and np.all(sw == 1.0)


def test_an_error_about_y_names_y():
    """y's name is found as a word, not as a letter of "array": a 3-D y's message says it is about y."""
    with pytest.raises(ValueError, match=r"^y: .*dim 3"):
        fit(y=y.reshape(50, 1, 1))


@pytest.mark.parametrize("arg", ["coef_init", "intercept_init"])
def test_non_numeric_initial_values_name_the_argument(arg):
    with pytest.raises(ValueError, match=rf"^{arg}: "):
        fit(**{arg: "abc"})


def test_dask_array_of_sparse_blocks_is_refused_naming_X_and_the_fix():
    da = pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")
    sparse = pytest.importorskip("scipy.sparse")
    Xd = da.from_array(X, chunks=25).map_blocks(sparse.csr_matrix)
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None):
        with pytest.raises(TypeError, match="X is a dask array of csr_matrix blocks.*toarray"):
            LinearRegressor().fit(Xd, da.from_array(y, chunks=25))


def test_warm_start_with_another_width_names_the_fix():
    m = LinearRegressor(warm_start=True, max_iter=2, tol=None).fit(X, y)
    with pytest.raises(ValueError, match="X has 2 features but the warm-started model has 3; set warm_start=False"):
        m.fit(X[:, :2], y)
    assert m.n_features_in_ == 3 and m.predict(X).shape == (50,)


@pytest.mark.parametrize("n, params, fix", [
    (5, dict(batch_size=1), r"use validation_fraction >= 0\.2, or early_stopping=False$"),
    (1, dict(batch_size=1), r"use early_stopping=False \(too few rows to hold any out\)$"),
    (5, dict(batch_size=1, validation_fraction=0.99), r"use a smaller validation_fraction, or early_stopping=False$"),
    (10, dict(), r"use validation_fraction >= 0\.2, or early_stopping=False$"),
    (3, dict(), r"use early_stopping=False \(too few rows to hold any out\)$"),
    (50, dict(batch_size=None), r"use batch_size <= 8, or early_stopping=False$"),
    (50, dict(batch_size=25), r"use batch_size <= 8, validation_fraction >= 0\.5, or early_stopping=False$"),
    (3, dict(batch_size=2), r"use validation_fraction >= 0\.5, or early_stopping=False$"),
])
def test_early_stopping_on_tiny_data_advises_only_fixes_that_work(n, params, fix):
    """batch_size=1 cannot get smaller, a batch size the planner chose ("auto", batches of at least two rows)
    is not the user's to change, and no batch size leaves a validation batch of 3 rows: the advice names only
    what can change, and works."""
    with pytest.raises(ValueError, match=fix):
        LinearRegressor(early_stopping=True, **params).fit(X[:n], y[:n])


@pytest.mark.parametrize("params", [dict(batch_size=None), dict(batch_size=25), dict(batch_size=2),
                                    dict(batch_size="auto")])
def test_the_early_stopping_advice_works_when_followed(params):
    """Each fix the message names makes the same fit succeed."""
    n = {2: 3, "auto": 10}.get(params["batch_size"], 50)
    with pytest.raises(ValueError) as info:
        LinearRegressor(early_stopping=True, **params).fit(X[:n], y[:n])
    fixes = str(info.value).split("; use ")[1].replace(", or ", ", ").split(", ")
    for fix in fixes:
        name, value = fix.split(" <= ") if " <= " in fix else fix.split(" >= ") if " >= " in fix else fix.split("=")
        kw = dict(params, early_stopping=True, max_iter=2, tol=None, random_state=0)
        kw[name] = (False if value == "False" else float(value) if "." in value else
                    int(value) if value.isdigit() else value)
        LinearRegressor(**kw).fit(X[:n], y[:n])


@pytest.mark.parametrize("n", [12, 50, 64, 100])
@pytest.mark.parametrize("loss", ["squared_error", "quantile"])
def test_early_stopping_with_the_auto_batch_size_leaves_a_validation_batch(n, loss):
    """batch_size="auto" chose batches too large to hold one out (32 rows: 4 batches at n=100; a loss with a
    kink: one batch), so early_stopping=True failed on every small data set; the planner now picks a size
    that leaves one (of at least two rows: one row has no variance to score on)."""
    m = LinearRegressor(early_stopping=True, loss=loss, max_iter=3, tol=None, random_state=0).fit(X[:n], y[:n])
    assert m.n_iter_ == 3


@pytest.mark.parametrize("params, fixes", [
    (dict(penalty="l1"), ["penalty='l1' (use penalty=None or 'l2')"]),
    (dict(early_stopping=True, penalty="l2"), ["early_stopping=True (use early_stopping=False)"]),
    (dict(learning_rate=Cosine(T_max=10)),
     ["learning_rate=Cosine(T_max=10, eta_min=0.0, lr=None) (use a constant learning_rate)"]),
    (dict(penalty="elasticnet", early_stopping=True),
     ["penalty='elasticnet' (use penalty=None or 'l2')", "early_stopping=True (use early_stopping=False)"]),
])
def test_lbfgs_refusal_names_only_the_settings_it_does_not_support(params, fixes):
    """Each unsupported setting is named with its own fix; a supported one (penalty='l2', a constant rate,
    early_stopping=False) is never named."""
    with pytest.raises(ValueError, match="optimizer='lbfgs'.*does not support") as info:
        LinearRegressor(optimizer="lbfgs", **params).fit(X, y)
    message = str(info.value)
    assert all(fix in message for fix in fixes), message
    offending = {name for name in params if params[name] != "l2"}
    assert not any(f"{name}=" in message for name in {"penalty", "early_stopping", "learning_rate"} - offending)


@pytest.mark.parametrize("epsilon", [0, 0.0])
def test_huber_with_zero_epsilon_is_refused(epsilon):
    """Huber with epsilon 0 has no quadratic zone and a zero slope beyond it: a fit that learns nothing."""
    with pytest.raises(ValueError, match="epsilon=0 with loss='huber'.*epsilon > 0"):
        LinearRegressor(loss="huber", epsilon=epsilon).fit(X, y)
    LinearRegressor(loss="epsilon_insensitive", epsilon=epsilon, max_iter=2, tol=None).fit(X, y)  # absolute loss


@pytest.mark.parametrize("backend", ["numba", "native"])
@pytest.mark.parametrize("bad_index", [5, 10**9, -1])
@pytest.mark.parametrize("method", ["fit", "partial_fit", "predict"])
def test_csr_column_index_out_of_range_is_refused_before_any_kernel(backend, bad_index, method):
    """A huge index made the Numba column statistics crash the process (a small one wrote outside the buffer)."""
    sparse = pytest.importorskip("scipy.sparse")
    A = sparse.csr_matrix(X)
    A.indices[3] = bad_index
    m = LinearRegressor(backend=backend, max_iter=2, tol=None)
    if method == "predict":
        m.fit(X, y)
    with pytest.raises(ValueError, match=f"column index {bad_index} out of range"):
        m.predict(A) if method == "predict" else getattr(m, method)(A, y)


@pytest.mark.parametrize("backend", ["native", "numba"])
def test_csr_built_from_strided_or_narrow_index_arrays_fits_as_its_contiguous_copy(backend):
    """SciPy keeps the arrays a matrix is built from or assigned: values taken as a column of a 2-D array (a
    strided view), indices or indptr as strided views, uint32 or int16 indices. The native kernels refused them
    in fit, partial_fit and predict ("X must be C-contiguous" for a sparse X; "indices must hold int32 or int64
    values") where Numba took them; now both read a copy of just those arrays, and the user's matrix is left as
    it is."""
    A = sp.random(200, 50, density=0.1, format="csr", random_state=1)
    y = np.random.default_rng(0).normal(size=200)
    ref = LinearRegressor(backend=backend, random_state=0).fit(A, y)
    variants = {}
    for name, (data, indices, indptr) in {
            "strided data": (np.c_[A.data, A.data][:, 0], A.indices, A.indptr),
            "strided indices": (A.data, np.c_[A.indices, A.indices][:, 0], A.indptr),
            "strided indptr": (A.data, A.indices, np.c_[A.indptr, A.indptr][:, 0])}.items():
        variants[name] = sp.csr_matrix((data, indices, indptr), shape=A.shape)
    for dtype in (np.uint32, np.int16):
        X = A.copy()
        X.indices = X.indices.astype(dtype)
        variants[f"{np.dtype(dtype).name} indices"] = X
    for name, X in variants.items():
        before = [getattr(X, a).copy() for a in ("data", "indices", "indptr")]
        model = LinearRegressor(backend=backend, random_state=0).fit(X, y)
        np.testing.assert_array_equal(model.coef_, ref.coef_, err_msg=name)
        np.testing.assert_array_equal(model.predict(X), ref.predict(A), err_msg=name)
        model.partial_fit(X, y)
        for a, b in zip(("data", "indices", "indptr"), before):
            assert getattr(X, a).dtype == b.dtype and np.array_equal(getattr(X, a), b), (name, a)
