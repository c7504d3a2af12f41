"""Fits that fail or fall short, and edges that are not failures: divergence and shortfalls are detected and
reported with their cause and advice true for the fit, the model is left as it was before the failed fit; a
start at the optimum, extreme sample weights and huge features are handled or rejected with the cause."""

import re
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from fastgd import LinearRegressor
from fastgd.datasets import make_regression
from fastgd.optimizers import Adam, RMSprop
from fastgd.schedules import Cosine

from _helpers import linear_data as _data


@pytest.fixture(scope="module")
def data():
    X, y, _, _ = make_regression(3000, 8, noise=0.3, random_state=1)
    return X, y


def test_a_start_at_the_optimum_is_not_divergence():
    """The divergence scale is the data's (var(y)), not the starting loss, which is ~1e-30 at the optimum."""
    X, y, w = _data()
    m = LinearRegressor(random_state=0).fit(X, y, coef_init=w, intercept_init=3.0)
    assert m.score(X, y) > 1 - 1e-9


def _fitted_attributes(m):
    return {k: v for k, v in vars(m).items() if k.endswith("_") and not k.startswith("__")}


@pytest.mark.parametrize("how", ["fit", "warm_start", "partial_fit"])
def test_a_failed_fit_leaves_every_fitted_attribute(how):
    """Every fitted attribute, the optimizer state (partial_fit and warm_start reuse it; a refit must not resume
    from NaN) and the predictions are those from before the diverging fit."""
    pd = pytest.importorskip("pandas")
    X, y, _ = _data()
    old = pd.DataFrame(X, columns=list("abcd"))
    # a stream keeps its standardize (a call that changes it raises before training): unscaled from its start
    m = LinearRegressor(optimizer="sgd", random_state=0, max_iter=3, tol=None, warm_start=how == "warm_start",
                        standardize=how != "partial_fit")
    m.fit(old, y) if how != "partial_fit" else m.partial_fit(old, y)
    before = {k: np.copy(v) if isinstance(v, np.ndarray) else v for k, v in _fitted_attributes(m).items()}
    state = m._ts.snapshot()
    wide = pd.DataFrame(np.hstack([X, X]) * 1e3, columns=list("pqrstuvw"))
    same_columns = wide.iloc[:, :4].set_axis(list("abcd"), axis=1)
    m.set_params(learning_rate=1e3, standardize=False)
    with pytest.raises(ValueError, match="diverged"):
        {"fit": lambda: m.fit(wide, y), "warm_start": lambda: m.fit(same_columns, y),
         "partial_fit": lambda: m.partial_fit(same_columns, y)}[how]()
    after = _fitted_attributes(m)
    assert after.keys() == before.keys()
    for key, value in before.items():
        np.testing.assert_array_equal(after[key], value, err_msg=key)
    for a, b in zip(state, m._ts.snapshot()):
        np.testing.assert_array_equal(a, b)
    assert np.all(np.isfinite(m.predict(old)))
    assert len(m.loss_curve_) == m.n_iter_


def test_a_first_fit_that_fails_leaves_the_estimator_unfitted():
    X, y, _ = _data()
    m = LinearRegressor(optimizer="sgd", learning_rate=1e3, standardize=False)
    with pytest.raises(ValueError, match="diverged"):
        m.fit(X * 1e3, y)
    assert not _fitted_attributes(m)


def test_sample_weights_are_normalized_exactly():
    X, y, _ = _data(400, noise=0.3)
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(y))
    warnings.simplefilter("error", RuntimeWarning)  # an overflowing sum is handled, never a warning to the user
    one = LinearRegressor(random_state=0).fit(X, y, sample_weight=w)
    big = LinearRegressor(random_state=0).fit(X, y, sample_weight=w * 2.0 ** 1015)  # their sum overflowed
    np.testing.assert_array_equal(big.coef_, one.coef_)  # a power of two scales every sum exactly
    huge = LinearRegressor(random_state=0).fit(X, y, sample_weight=np.full(len(y), 1e306))
    np.testing.assert_allclose(huge.coef_, LinearRegressor(random_state=0).fit(X, y).coef_, rtol=1e-9)


def test_one_overwhelming_sample_weight_is_a_fit_not_divergence():
    X, y, _ = _data(300)
    w = np.ones(len(y))
    w[7] = 1e308
    with warnings.catch_warnings(record=True) as seen:  # a shortfall warning, if any, must name the weights
        warnings.simplefilter("always", ConvergenceWarning)
        m = LinearRegressor(random_state=0).fit(X, y, sample_weight=w)
    assert all("sample weights" in str(w.message) for w in seen if issubclass(w.category, ConvergenceWarning))
    assert abs(m.predict(X[7:8])[0] - y[7]) < 1e-6 * np.abs(y).max()


@pytest.mark.parametrize("params, advised, not_advised", [
    (dict(learning_rate=1e4), ["lower the learning rate"], ["'adam'", "standardize=True"]),
    (dict(optimizer="sgd", standardize=False), ["standardize=True", "'adam'"], ["lower the learning rate"]),
    (dict(optimizer="sgd", learning_rate=1e3), ["lower the learning rate", "'adam'"], ["standardize=True"]),
])
def test_divergence_advises_only_settings_the_user_chose(params, advised, not_advised):
    X, y, _ = _data(500)
    with pytest.raises(ValueError, match="diverged.*restored to its starting point") as info:
        LinearRegressor(max_iter=50, random_state=0, **params).fit(X * 1e3, y)
    message = str(info.value).lower()
    assert all(a.lower() in message for a in advised), message
    assert not any(a.lower() in message for a in not_advised), message


def test_one_convergence_warning_per_fit():
    """Max_iter reached and a measured shortfall are one cause: one warning, the one naming it."""
    from sklearn.datasets import load_diabetes
    from sklearn.preprocessing import PolynomialFeatures

    X, y = load_diabetes(return_X_y=True)
    X = PolynomialFeatures(3).fit_transform(X[:, :6])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        LinearRegressor(fit_intercept=False, max_iter=20, random_state=0).fit(X, y)
    assert len([w for w in caught if issubclass(w.category, ConvergenceWarning)]) == 1


def _shortfall_message(**params):
    X, y, _ = _data(60, 4, noise=0.1)
    with pytest.warns(ConvergenceWarning, match="above the least-squares optimum") as record:
        LinearRegressor(random_state=0, **params).fit(X, y)
    return " ".join(str(w.message) for w in record if "above the" in str(w.message))


@pytest.mark.parametrize("params, named", [
    (dict(learning_rate=1e-30), "learning_rate=1e-30"),
    (dict(learning_rate=Cosine(T_max=1)), "learning_rate=Cosine("),
    (dict(optimizer=Adam(lr=1e-12)), "optimizer=Adam(lr=1e-12)"),
])
def test_shortfall_with_tiny_steps_names_the_setting_that_made_them(params, named):
    """A chosen rate (or schedule, or optimizer) that made the steps vanish is named with its default."""
    message = _shortfall_message(**params)
    assert named in message and "the default" in message


@pytest.mark.parametrize("params", [dict(loss="quantile", gtol=10.0), dict(optimizer="sgd", learning_rate=0.01,
                                                                            gtol=1000.0)])
def test_a_shortfall_that_gtol_caused_names_gtol_and_lowering_it_helps(params):
    """gtol is in the data's units: a value that stops these fits after one epoch is the cause to name (not a
    rate or the features), and following the advice (no gtol) reaches the optimum's neighbourhood."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    X, y = X[:120], y[:120]
    with pytest.warns(ConvergenceWarning, match=r"gtol=\S+ ended the epochs .*Lower gtol \(or leave it None"):
        stopped = LinearRegressor(random_state=0, **params).fit(X, y)
    params.pop("gtol")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        followed = LinearRegressor(random_state=0, **params).fit(X, y)
    assert followed.score(X, y) > stopped.score(X, y) + 0.1


def test_a_kept_start_after_gtol_ended_the_epochs_names_gtol_not_the_rate():
    """A warm start whose epochs the user's gtol ended before any improved on the start: the advice names gtol,
    not the learning rate or max_iter, which the user did not set."""
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    X = sp.random(3000, 500, density=0.02, format="csr", random_state=0)
    y = X @ rng.standard_normal(500) + 0.1 * rng.standard_normal(3000)
    m = LinearRegressor(random_state=0).fit(X, y)
    m.set_params(warm_start=True, gtol=10.0)
    with pytest.warns(ConvergenceWarning, match="did not improve on the starting point") as caught:
        m.fit(X, y)
    said = " ".join(str(w.message) for w in caught)
    assert "lower gtol" in said and "learning rate" not in said and "max_iter" not in said


def test_a_kept_start_advises_more_epochs_not_the_rate_the_user_left_to_the_library():
    """max_iter=1 on sparse data: the strength path's solution is the start and its one epoch did not improve on
    it. The advice was "Lower the learning rate or raise max_iter", but the rate is the library's adaptive one,
    which lowers itself where a round does not improve by tol, and never with tol=None (following "raise max_iter"
    alone then changed nothing on 20,000 rows in batches of 1). The advice names the user's tol and max_iter,
    and following it works."""
    from _helpers import hashed_zipf_rows

    rng = np.random.default_rng(0)
    n, d = 500, 256
    X = hashed_zipf_rows(rng, n, d)
    y = X @ (rng.standard_normal(d) * (rng.random(d) < 0.1)) + 0.5 * rng.standard_normal(n)
    with pytest.warns(ConvergenceWarning, match="did not improve on the starting point") as caught:
        kept = LinearRegressor(max_iter=1, tol=None, random_state=12).fit(X, y)
    said = " ".join(str(w.message) for w in caught)
    assert "Set tol (the default is 1e-06; with tol=None the adaptive learning rate never lowers itself) and set " \
           "max_iter above 1." in said and "lower the learning rate" not in said.lower(), said
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        followed = LinearRegressor(max_iter=2, random_state=12).fit(X, y)
    assert not any("did not improve" in str(w.message) for w in caught)  # (2 epochs may still stop short)
    assert followed.score(X, y) > kept.score(X, y)
    with pytest.warns(ConvergenceWarning, match=r"Raise max_iter \(it is 1\)") as caught:
        LinearRegressor(max_iter=1, random_state=12).fit(X, y)  # with tol set, the epochs alone
    said = " ".join(str(w.message) for w in caught)
    assert "learning rate" not in said and "tol=" not in said, said


def test_a_measured_kept_start_after_gtol_ended_the_epochs_names_gtol_and_lowering_it_helps():
    """Small data, so the kept start is measured against the optimum: when the user's gtol ended the epochs after
    one that did not improve on the start, the advice names gtol (not max_iter, which ended nothing), and
    following it (no gtol) reaches the optimum's neighbourhood without a warning."""
    X, y, _ = _data(600, noise=1.0)
    opt = LinearRegressor(optimizer="lbfgs").fit(X, y)
    start = dict(coef_init=opt.coef_ * 1.05, intercept_init=opt.intercept_)
    with pytest.warns(ConvergenceWarning, match="above the optimum") as caught:
        m = LinearRegressor(learning_rate=1.0, gtol=1e6, random_state=0).fit(X, y, **start)
    said = " ".join(str(w.message) for w in caught)
    assert "gtol=1e+06 ended the epochs" in said and "Lower gtol" in said and "max_iter" not in said, said
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        followed = LinearRegressor(learning_rate=1.0, random_state=0).fit(X, y, **start)
    assert followed.score(X, y) > m.score(X, y) + 1e-3


def test_shortfall_on_unscaled_features_names_standardize():
    """standardize=False (the user's choice) on features whose scales span 1e6 times: the cause named is the
    features' scales with standardize=True as the fix (not the standardized design's conditioning)."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    X = X[:60] * np.logspace(-2, 4, X.shape[1])
    with pytest.warns(ConvergenceWarning, match=r"standardize=False with features whose scales span .*e\+0[56] "
                                                r"times.*learning_rate=0\.01 \(the default learning_rate='adaptive' "
                                                r"may reach it\)\. Set standardize=True \(the default\), or use"):
        LinearRegressor(standardize=False, learning_rate=0.01, random_state=0).fit(X, y[:60])


def test_divergence_names_the_rate_it_used_not_the_optimizer_objects():
    """The optimizer's own lr (0.01, its registry start) is not the rate that diverged (10): the message
    gives one rate, the one used."""
    X, y, _ = _data(200)
    with pytest.raises(ValueError, match="diverged") as info:
        LinearRegressor(optimizer="sgd", learning_rate=10.0, random_state=0).fit(X * 1e3, y)
    message = str(info.value)
    assert "optimizer=SGD(lr=10)" in message and "0.01" not in message, message


def test_divergence_from_a_huge_penalty_names_alpha():
    """A rate the user chose that the penalty's curvature makes unstable: alpha is named with a strength at which
    that rate works; the default rate follows the penalty's curvature and does not diverge."""
    import re

    X, y, _ = _data(60, 4)
    with pytest.raises(ValueError, match="lower alpha to") as info:
        LinearRegressor(optimizer="sgd", penalty="l2", alpha=1e4, learning_rate=0.01, random_state=0).fit(X, y)
    assert "please report" not in str(info.value)
    alpha = float(re.search(r"lower alpha to (\S+) or less", str(info.value)).group(1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        LinearRegressor(optimizer="sgd", penalty="l2", alpha=alpha, learning_rate=0.01, random_state=0).fit(X, y)
        LinearRegressor(optimizer="sgd", penalty="l2", alpha=1e4, random_state=0).fit(X, y)


def _unit_scale(n, d, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return X, X @ rng.normal(size=d) * 0.1 + 0.3 * rng.normal(size=n) + 5.0


@pytest.mark.parametrize("optimizer", ["momentum", "nesterov"])
def test_the_default_rate_of_momentum_with_one_row_batches_does_not_diverge(optimizer):
    """Momentum carries a step's noise γ/(1 − μ) far, and one-row batches are as noisy as the rows (their mean
    curvature 2·E‖x‖², here about 300): the fit's own start rate is lowered to keep those steps stable."""
    from sklearn.linear_model import LinearRegression

    X, y = _unit_scale(200, 150)
    m = LinearRegressor(optimizer=optimizer, batch_size=1, random_state=0).fit(X, y)
    assert m.score(X, y) > LinearRegression().fit(X, y).score(X, y) - 0.01


def test_the_default_sgd_rate_follows_a_strong_l2_penalty():
    """penalty='l2', alpha=1 on diabetes is Ridge(alpha=n/2); its curvature in the standardized coordinates
    (alpha over a column's variance, about 442) is past what SGD's start rate can follow: the fit's own rate
    starts below it and reaches Ridge's model."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    X, y = load_diabetes(return_X_y=True)
    m = LinearRegressor(optimizer="sgd", penalty="l2", alpha=1.0, random_state=0).fit(X, y)
    assert m.score(X, y) == pytest.approx(Ridge(alpha=len(y) / 2).fit(X, y).score(X, y), abs=1e-4)


def test_a_divergence_under_the_fits_own_rate_resumes_at_a_lower_rate():
    """Nearly collinear columns (the design's top curvature about 2·d, unknown before training) make SGD's start
    rate diverge: the fit's own rate is lowered as after a rise and the fit goes on from its best model, to the
    least-squares fit; a rate the user chose is not changed: that diverges, naming it."""
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(0)
    z = rng.normal(size=(200, 1))
    X = z + 0.05 * rng.normal(size=(200, 120))
    y = X @ rng.normal(size=120) * 0.1 + z[:, 0] + 0.3 * rng.normal(size=200)
    m = LinearRegressor(optimizer="sgd", random_state=0).fit(X, y)
    assert m._rate_shrinks >= 1 and np.all(np.isfinite(m.loss_curve_))  # the diverged epoch is not recorded
    assert m.score(X, y) == pytest.approx(LinearRegression().fit(X, y).score(X, y), abs=1e-6)
    with pytest.raises(ValueError, match=r"diverged.*Lower the learning rate \(now 0\.01\)"):
        LinearRegressor(optimizer="sgd", learning_rate=0.01, random_state=0).fit(X, y)


@pytest.mark.parametrize("optimizer", ["momentum", "nesterov"])
def test_divergence_of_a_chosen_rate_with_noisy_batches_names_a_rate_and_batch_size_that_work(optimizer):
    """Columns in units from 1e-3 to 1e3, one-row batches at the user's rate: the batches' noise is a cause, so
    the advice is a learning rate (with a value that works) and, where the penalty leaves room, a batch size
    (with one that works); never alpha, which no lower value fixes (without a penalty it diverges too). With
    the default rate the same fits work."""
    import re

    rng = np.random.default_rng(0)
    n, d = 200, 150
    X = rng.normal(size=(n, d)) * 10.0 ** rng.uniform(-3, 3, d)
    y = X @ (rng.normal(size=d) / np.abs(X).max(0)) + 0.3 * rng.normal(size=n) + 5
    for penalty in ("elasticnet", None):
        params = dict(optimizer=optimizer, batch_size=1, penalty=penalty, random_state=0,
                      **({"alpha": 0.01} if penalty else {}))
        with pytest.raises(ValueError, match="diverged") as info:
            LinearRegressor(learning_rate=0.003, **params).fit(X, y)
        message = str(info.value)
        assert "alpha" not in message, message
        rate = float(re.search(r"Lower the learning rate \(now 0\.003\) to (\S+) or less", message).group(1))
        fixes = [dict(learning_rate=rate)]
        batch = re.search(r"raise batch_size \(now 1\) to (\d+) or more", message)
        # the penalty's curvature in the smallest units leaves no room for any batch size; nor, for Nesterov, does
        # the bound on the data's own curvature (the Hessian's trace) that a named value must respect to hold
        assert (batch is not None) == (penalty is None and optimizer == "momentum"), message
        if batch is not None:
            fixes.append(dict(learning_rate=0.003, batch_size=int(batch.group(1))))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for fixed in fixes + [{}]:  # {}: the fit's own rate
                assert LinearRegressor(**{**params, **fixed}).fit(X, y).score(X, y) > 0.8, fixed


def test_divergence_from_the_penalty_at_a_chosen_rate_names_alpha_and_a_rate_that_work():
    """Diabetes, sgd at learning_rate=0.01 with penalty='l2', alpha=1: the penalty's curvature (about 442) is the
    cause; the advice names a lower rate and a lower alpha, with values, and each works; not batch_size (the
    user's default)."""
    import re

    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    X, y = load_diabetes(return_X_y=True)
    params = dict(optimizer="sgd", penalty="l2", alpha=1.0, learning_rate=0.01, random_state=0)
    with pytest.raises(ValueError, match="diverged") as info:
        LinearRegressor(**params).fit(X, y)
    message = str(info.value)
    assert "batch_size" not in message, message
    rate = float(re.search(r"Lower the learning rate \(now 0\.01\) to (\S+) or less", message).group(1))
    alpha = float(re.search(r"lower alpha to (\S+) or less", message).group(1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m = LinearRegressor(**{**params, "learning_rate": rate}).fit(X, y)
        assert m.score(X, y) == pytest.approx(Ridge(alpha=len(y) / 2).fit(X, y).score(X, y), abs=1e-3)
        LinearRegressor(**{**params, "alpha": alpha}).fit(X, y)


def test_divergence_from_an_overflowing_start_names_coef_init():
    X, y, _ = _data(60, 4)
    with pytest.raises(ValueError, match="starting point's loss is not finite.*coef_init"):
        LinearRegressor(random_state=0).fit(X, y, coef_init=np.full(4, 1e300))


@pytest.mark.parametrize("alpha", [1e200])
def test_advice_after_a_huge_l2_penalty_names_alpha_not_the_defaults_in_use(alpha):
    """With the default rate, optimizer and standardization, the only setting to change is alpha: never
    "use learning_rate='adaptive' and standardize=True" (in use) nor "please report"."""
    X, y, _ = _data(60, 4)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        try:
            LinearRegressor(penalty="l2", alpha=alpha, random_state=0).fit(X, y)
            text = " ".join(str(w.message) for w in record)
        except ValueError as exc:
            text = str(exc)
    assert "alpha" in text and "adaptive" not in text and "please report" not in text


def test_no_intercept_with_offset_targets_is_not_told_its_steps_are_too_large():
    """Without an intercept the loss at the optimum can be many times var(y): its last-bit jitter is no rise,
    and the model is the no-intercept least-squares one."""
    from sklearn.linear_model import LinearRegression
    rng = np.random.default_rng(7)
    X = rng.normal(size=(200, 5))
    y = X @ np.ones(5) + 100.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = LinearRegressor(fit_intercept=False, learning_rate=0.01, random_state=0).fit(X, y)
    best = np.mean((LinearRegression(fit_intercept=False).fit(X, y).predict(X) - y) ** 2)
    assert np.mean((m.predict(X) - y) ** 2) <= best * (1 + 1e-6)


def test_shortfall_from_extreme_sample_weights_says_the_weights_make_it_ill_conditioned():
    """The features are well conditioned; one weight 1e300 times the others is what makes the weighted
    problem ill-conditioned, and the warning says so (not that the features are)."""
    rng = np.random.RandomState(0)
    X = rng.randn(60, 4)
    y = X @ np.arange(1.0, 5.0) + 0.1 * rng.randn(60)
    sw = np.ones(60)
    sw[5] = 1e300
    with pytest.warns(ConvergenceWarning, match=r"sample weights span 1e\+300 times"):
        LinearRegressor(random_state=0).fit(X, y, sample_weight=sw)


def test_shortfall_from_the_penalty_on_small_unit_columns_names_the_penalty():
    """Breast cancer's mean area from the other columns (scales 0.0026 to 597), elastic net with optimizer='sgd':
    7.67 above the optimum, said to be from ill-conditioned standardized features (334), which the same fit on
    StandardScaler'd columns crosses in 64 epochs. The l2 part acts on the raw weights, l2 / scale² per
    standardized column (condition number 2.1e4): the warning now names that, and its advice (the default
    optimizer) reaches the optimum."""
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    X, y = np.delete(X, 3, 1)[:398], X[:398, 3]
    kw = dict(penalty="elasticnet", l1_ratio=0.5, alpha=1340.0, random_state=0)
    with pytest.warns(ConvergenceWarning, match=r"l2 part of the penalty is on the weights in the data's units") as w:
        LinearRegressor(optimizer="sgd", **kw).fit(X, y)
    assert "the standardized features alone" in str(w[0].message) and "optimizer='adam'" in str(w[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        LinearRegressor(**kw).fit(X, y)


def test_divergence_from_a_huge_weight_decay_names_weight_decay():
    """torch's weight decay is part of the user's optimizer object: a fit it makes diverge says so."""
    from fastgd.optimizers import SGD

    X, y, _ = _data(500)
    with pytest.raises(ValueError, match="diverged") as info:
        LinearRegressor(optimizer=SGD(lr=0.01, weight_decay=1e6), max_iter=20, random_state=0).fit(X, y)
    assert "weight_decay (now 1e+06)" in str(info.value), str(info.value)


def test_early_stopping_blames_the_rate_only_for_a_rise_in_training_too():
    """A held-out loss rises by its rows' noise, which early stopping exists to catch: no advice to lower a fixed
    rate then (it would not help), only where the training objective rose too, and there following it helps."""
    from sklearn.datasets import make_friedman1
    X, y = make_friedman1(3000, noise=1, random_state=0)
    for lr in (0.1, 0.01):  # the held-out loss rises past the threshold at both; the fit is as good as at 1e-3
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            LinearRegressor(learning_rate=lr, early_stopping=True, random_state=0).fit(X, y)
    high = dict(optimizer="momentum", early_stopping=True, random_state=0)
    with pytest.warns(ConvergenceWarning, match="loss rose.*Lower learning_rate"):
        m = LinearRegressor(learning_rate=0.3, **high).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        lower = LinearRegressor(learning_rate=0.1, **high).fit(X, y)
    assert lower.score(X, y) > m.score(X, y) + 5e-3


def test_huge_features_are_rejected_with_the_cause(data):
    """X * 1e160 would overflow Adam's squared gradients (zero steps, a fit that looks converged): rejected
    with the cause and the fix, or reported as divergence without standardization."""
    X, y = data
    import re

    import scipy.sparse as sp
    want = LinearRegressor(random_state=0).fit(X, y).score(X, y)
    for name, (A, b) in (("X", (X * 1e160, y)), ("y", (X, y * 1e160)), ("X", (sp.csr_matrix(X) * 1e160, y))):
        with pytest.raises(ValueError, match=f"{name} has values too large.*divide {name} by a constant first "
                                             r"\(such as ") as caught:
            LinearRegressor(random_state=0).fit(A, b)
        factor = float(re.search(r"such as ([0-9e+.]+)\)", str(caught.value)).group(1))  # following it works
        A, b = (A / factor, b) if name == "X" else (A, b / factor)
        assert LinearRegressor(random_state=0).fit(A, b).score(A, b) == pytest.approx(
            want if not sp.issparse(A) else LinearRegressor(random_state=0).fit(sp.csr_matrix(X), y).score(X, y),
            abs=1e-6)
    with pytest.raises(ValueError, match="diverged.*no longer finite"):
        LinearRegressor(standardize=False).fit(X * 1e160, y)


@pytest.mark.parametrize("penalty", ["auto", "l1"])
def test_targets_near_float64s_limit_fit_without_a_numpy_warning(penalty):
    """y times 10^152 (its variance about 1e304, below the "too large" check): the divergence threshold, a
    multiple of that variance, passes float64's range; no NumPy overflow warning reaches the user, and the fit
    is the unit-scale fit's."""
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    X = sp.random(400, 30, density=0.1, format="csr", random_state=0)
    y = X @ rng.standard_normal(30) + 0.1 * rng.standard_normal(400)
    # an l1 strength scales with y (the loss with its square): the same objective in y's new units
    params = dict(random_state=0) if penalty == "auto" else dict(penalty=penalty, alpha=1e-4, random_state=0)
    want = LinearRegressor(**params).fit(X, y).score(X, y)
    if penalty != "auto":
        params["alpha"] *= 1e152
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = LinearRegressor(**params).fit(X, y * 1e152)
    assert m.score(X, y * 1e152) == pytest.approx(want, abs=1e-6)


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_tiny_values_are_rejected_with_the_cause_and_a_fix_that_works(optimizer):
    """Values whose squares underflow lose their spread: the column statistics would take them for constants
    (a silent zero model) or the shortfall check would crash. Rejected, naming the factor that works; data
    scaled down but still representable fits as the original does."""
    X, y, _ = _data(200)
    for scale in (1e-155, 1e-170):
        with pytest.raises(ValueError, match="X has values too small.*multiply X by a constant") as info:
            LinearRegressor(optimizer=optimizer, max_iter=50, random_state=0).fit(X * scale, y)
        factor = float(str(info.value).split("such as ")[1].rstrip(")"))
        m = LinearRegressor(optimizer=optimizer, max_iter=50, random_state=0).fit(X * scale * factor, y)
        assert m.score(X * scale * factor, y) > 0.99
    with pytest.raises(ValueError, match="y has values too small.*multiply y by a constant"):
        LinearRegressor(optimizer=optimizer, max_iter=50).fit(X, y * 1e-160)
    Xc = X.copy()
    Xc[:, 2] *= 1e-170  # one column: rescaling all of X would overflow the others
    with pytest.raises(ValueError, match="column 2 of X holds values too small.*multiply those columns"):
        LinearRegressor(optimizer=optimizer, max_iter=50).fit(Xc, y)
    ref = LinearRegressor(optimizer=optimizer, max_iter=50, random_state=0).fit(X, y)
    m = LinearRegressor(optimizer=optimizer, max_iter=50, random_state=0).fit(X * 1e-100, y)
    np.testing.assert_allclose(m.coef_ * 1e-100, ref.coef_, rtol=1e-9)
    assert m.score(X * 1e-100, y) == pytest.approx(ref.score(X, y), abs=1e-12)


def test_sparse_values_just_above_the_underflow_check_fit_as_at_unit_scale():
    """Sparse X scaled to 10^-153.5, just above the underflow check: its weights are about 1e154, whose squares
    overflow where the l2 penalty (about the scale squared) does not. The default fit chooses the unit-scale
    fit's strength (alpha_ over the scale squared) and reaches its R², without a warning."""
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    X = sp.random(500, 40, density=0.1, format="csr", random_state=0)
    y = X @ rng.standard_normal(40) + 0.1 * rng.standard_normal(500)
    ref = LinearRegressor(random_state=0).fit(X, y)
    scale = 10.0 ** -153.5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = LinearRegressor(random_state=0).fit(X * scale, y)
    assert m.alpha_ / scale / scale == pytest.approx(ref.alpha_, rel=1e-9)
    assert m.score(X * scale, y) == pytest.approx(ref.score(X, y), abs=1e-9)


def test_tiny_sparse_values_are_rejected():
    import scipy.sparse as sp

    X, y, _ = _data(200)
    with pytest.raises(ValueError, match="X has values too small.*multiply X by a constant"):
        LinearRegressor(max_iter=5).fit(sp.csr_matrix(X * 1e-200), y)


def test_tiny_values_without_standardization_are_named():
    """standardize=False computes no column statistics: the small-data check names the cause instead of
    reporting an unremarkable fit."""
    X, y, _ = _data(200)
    with pytest.warns(ConvergenceWarning, match="X has values too small.*Multiply X by a constant"):
        LinearRegressor(standardize=False, max_iter=20).fit(X * 1e-200, y)


def test_the_shortfall_check_never_fails_a_fit(monkeypatch):
    """A diagnostic whose own linear algebra fails says nothing rather than crash the fit."""
    from fastgd import _shortfall

    def failing(*args, **kwargs):
        raise np.linalg.LinAlgError("Eigenvalues did not converge")

    monkeypatch.setattr(_shortfall.np.linalg, "eigh", failing)
    X, y, _ = _data(200)
    m = LinearRegressor(optimizer="sgd", learning_rate=1e-4, max_iter=3).fit(X, y)
    assert np.all(np.isfinite(m.coef_))


def test_a_rising_loss_is_reported_and_the_best_model_kept(data):
    """A constant rate slightly too high makes the loss rise: a warning (or divergence), and the model
    returned is never worse than the start."""
    X, y = data
    Xs = X * np.r_[10.0, np.ones(X.shape[1] - 1)]
    with pytest.warns(ConvergenceWarning, match="loss rose|did not improve|diverged"):
        try:
            m = LinearRegressor(optimizer="sgd", learning_rate=0.011, batch_size=None, standardize=False,
                                max_iter=200).fit(Xs, y)
        except ValueError as exc:  # an explosion is reported as divergence, also acceptable
            assert "diverged" in str(exc)
            warnings.warn("diverged", ConvergenceWarning)
            return
    start = np.mean((y - 0.0) ** 2)
    assert np.mean((m.predict(Xs) - y) ** 2) <= start  # never worse than the start


def test_rmsprop_alpha_one_cannot_return_garbage(data):
    """RMSprop(alpha=1.0) never updates its square average, so every step divides by eps: the fit raises
    (divergence, or alpha named) or returns a finite model no worse than predicting the mean."""
    X, y = data
    try:
        m = LinearRegressor(optimizer=RMSprop(alpha=1.0), max_iter=20).fit(X, y)
    except ValueError as exc:
        assert "diverged" in str(exc) or "alpha" in str(exc)
        return
    assert np.all(np.isfinite(m.coef_)) and m.score(X, y) >= 0.0


def test_early_stopping_with_zero_weight_batches(data):
    """Held-out batches whose weights are all zero are scored without dividing by zero; with only one
    weighted batch there is nothing to hold out: an error naming the cause."""
    X, y = data
    w = np.zeros(len(y))
    w[::7] = 1.0
    w[:1000] = 0.0
    m = LinearRegressor(early_stopping=True, batch_size=100, random_state=0).fit(X, y, sample_weight=w)
    assert np.isfinite(m.best_validation_score_) and m.best_validation_score_ > 0.9
    w2 = np.zeros(len(y))
    w2[:50] = 1.0  # a single batch carries weight: nothing to hold out
    with pytest.raises(ValueError, match="positive sample weight"):
        LinearRegressor(early_stopping=True, batch_size=100).fit(X, y, sample_weight=w2)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_early_stopping_that_keeps_the_start_under_a_chosen_rate_warns_and_does_not_crash(optimizer):
    """A rate the user chose, a held-out loss that rose and no epoch better than the (all-zero, so compacted)
    start: the 'loss rose' rule measures the kept start on training rows (it raised IndexError on its compact
    form), and the fit keeps the start with a warning."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, 20))
    y = X @ rng.standard_normal(20) * 0.3 + 3 * rng.standard_normal(2000)
    with pytest.warns(ConvergenceWarning):
        m = LinearRegressor(early_stopping=True, learning_rate=0.3, average=False, optimizer=optimizer,
                            random_state=0).fit(X, y)
    assert np.all(np.isfinite(m.coef_))
    assert m.stop_reason_.endswith("no evaluated model improved on the starting point, which was kept")


def test_early_stopping_holds_out_full_batches_and_says_when_it_kept_the_start():
    """Early stopping holds out full batches when there are enough (the short last batch alone judged the fit
    by its few rows, and kept the starting model, R² 0, silently); when no epoch beats the starting model on
    the held-out rows, the fit says so and names the user's early stopping."""
    from sklearn.datasets import load_diabetes

    from fastgd import _planning

    X, y = load_diabetes(return_X_y=True)
    X, y = X[:200], y[:200]
    for seed in (0, 1, 2):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            m = LinearRegressor(early_stopping=True, random_state=seed).fit(X, y)
        assert m.score(X, y) > 0.4, seed
    est = LinearRegressor(early_stopping=True, batch_size=32)
    problem = type("P", (), {"n": 200, "batch_size": 32, "n_batches": 7,
                             "batch_weights": lambda self: np.array([32.0] * 6 + [8.0])})()
    for seed in range(20):
        train, val = _planning.split_batches(est, problem, np.random.default_rng(seed))
        assert 6 not in val and 6 in train and len(val) == 1
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((400, 5)), rng.standard_normal(400)  # nothing to learn: the start is the best
    with pytest.warns(UserWarning, match="Early stopping kept the starting model.*held-out rows.*early_stopping"
                                         "=False"):
        LinearRegressor(early_stopping=True, batch_size=40, random_state=2).fit(*noise)


def test_early_stoppings_kept_start_counts_the_held_out_rows_of_positive_weight():
    """5 weighted rows of 400 (the others weight 0): the message said "no epoch lowered the loss on the 32
    held-out rows" where one of them had a weight (a red team's find); it counts the rows that judge."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 8))
    y = X @ rng.normal(size=8) + 0.5 * rng.normal(size=400)
    w = np.zeros(400)
    w[np.random.default_rng(2).choice(400, 5, replace=False)] = 1.0
    with pytest.warns(UserWarning, match="no epoch lowered the loss on the 1 held-out row of positive weight"):
        LinearRegressor(early_stopping=True, random_state=2).fit(X, y, sample_weight=w)


@pytest.mark.parametrize("backend", ["numba", "native"])
def test_early_stopping_whose_best_model_is_worse_than_the_held_out_mean_warns(backend):
    """One row of 1e4 in 15 columns: early stopping's start (the training mean, pulled by that row's target) and
    every epoch's model predict the held-out rows far worse than their own mean (validation R² about -31; least
    squares on the same rows 0.91), and the fit ended silently. It now warns with the figures, and the advice it
    gives works (early_stopping=False reaches least squares); data without signal (best R² about -0.01) does
    not get that warning."""
    rng = np.random.default_rng(0)
    n, d = 1200, 80
    X = rng.uniform(0, 1, (n, d)) * (rng.uniform(size=(n, d)) < 0.05)
    X[7, :15] = 1e4
    y = X @ rng.standard_normal(d) + 0.3 * rng.standard_normal(n)
    Xt, Xv, yt, yv = X[:800], X[800:], y[:800], y[800:]
    # on data this small the exact check measures the training rows' optimum on the held-out rows (0.927): its
    # figures replace the hedged warning
    with pytest.warns(ConvergenceWarning, match="short of what training on gives.*validation R² is -[0-9]+.*"
                                                "scores 0.9.*early_stopping=False"):
        bad = LinearRegressor(early_stopping=True, random_state=0, backend=backend).fit(Xt, yt)
    assert bad.best_validation_score_ < -1
    A = np.column_stack([Xt, np.ones(len(yt))])
    w = np.linalg.lstsq(A, yt, rcond=None)[0]
    exact = 1 - np.sum((yv - Xv @ w[:-1] - w[-1]) ** 2) / np.sum((yv - yv.mean()) ** 2)
    assert LinearRegressor(random_state=0, backend=backend).fit(Xt, yt).score(Xv, yv) > exact - 1e-3
    noise = rng.standard_normal((5000, 10)), rng.standard_normal(5000)
    for seed in range(3):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            LinearRegressor(early_stopping=True, random_state=seed, backend=backend).fit(*noise)
        assert not any("their own mean" in str(w.message) for w in caught)  # (it may keep its start and say so)


@pytest.mark.parametrize("backend", ["numba", "native"])
def test_early_stopping_short_of_the_training_optimum_warns(backend):
    """One row of 2,000 with x 1e4 times the others' (its y consistent): the early-stopped fit of random_state=1
    ended at validation R² 0.29 (held-out R² 0.28) silently, above the -0.1 bar of the held-out warning, where
    early_stopping=False gives 0.998. The training rows' exact optimum scores 0.998 on the same held-out rows:
    the fit now warns with both figures, the far row and a fix that works here. One y 1e4 off among held-out
    rows: the advice is a robust loss (huber: 0.995), not early_stopping=False (which trains on it: -6.7). The
    same data without the far row gets no warning."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 5))
    y = X @ np.ones(5) + 0.1 * rng.normal(size=2000)
    for seed in (0, 1):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            LinearRegressor(early_stopping=True, random_state=seed, backend=backend).fit(X, y)
    Xf, yf = X.copy(), y.copy()
    Xf[7] *= 1e4
    yf[7] = Xf[7] @ np.ones(5)
    with pytest.warns(ConvergenceWarning, match=r"short of what training on gives: its validation R² is 0\.2.*"
                                                r"scores 0\.99.*row 7 .*Set early_stopping=False"):
        LinearRegressor(early_stopping=True, random_state=1, backend=backend).fit(Xf, yf)
    assert LinearRegressor(random_state=1, backend=backend).fit(Xf, yf).score(X, y) > 0.99  # the advice works
    r = np.random.default_rng(6)
    X = r.normal(size=(2000, 15))
    y = X @ (r.normal(size=15) * 2) + 3 + 0.5 * r.normal(size=2000)
    y[1109] += 1e4
    with pytest.warns(ConvergenceWarning, match="predicts 1[0-9]+ of the 192 held-out rows better.*row 1109.s: its "
                                                "target.*loss='huber'.*early_stopping=False would train on it"):
        LinearRegressor(early_stopping=True, random_state=6, backend=backend).fit(X, y)


@pytest.mark.parametrize("sparse, settings, followed, named", [
    # the user's looser tol bounds the finish: R² -0.85 silently before
    (False, dict(tol=1e-3), dict(tol=1e-6), "tol=1e-6"),
    (True, dict(standardize=False, penalty="l2", alpha=1e-6), dict(penalty="l2", alpha=1e-6), "standardize=True"),
    (False, dict(penalty="elasticnet", l1_ratio=0.0), None, None),  # no finish for this penalty: a solver instead
    (True, dict(penalty=None), None, None),  # sparse X without an l2 penalty has no finish either
])
def test_early_stopping_advice_works_where_the_users_settings_block_the_finish(sparse, settings, followed, named):
    """The far-row data of the test above: "Set early_stopping=False: the fit then ends with an exact finish" was
    given whatever the user's tol, penalty, sparsity and standardize; followed, it gave R² -0.85 (tol=1e-3: silently;
    elasticnet, sparse without a penalty) and 0.67 (sparse unstandardized) on the clean rows, where the optimum
    scores 0.998. The advice now names the settings that block the finish, or a closed-form solver where none
    would give it without changing the objective."""
    import scipy.sparse as sp
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 5))
    y = X @ np.ones(5) + 0.1 * rng.normal(size=2000)
    Xf, yf = X.copy(), y.copy()
    Xf[7] *= 1e4
    yf[7] = Xf[7] @ np.ones(5)
    Xf = sp.csr_matrix(Xf) if sparse else Xf
    with pytest.warns(ConvergenceWarning, match="short of what training on gives") as caught:
        LinearRegressor(early_stopping=True, random_state=1, **settings).fit(Xf, yf)
    message = " ".join(str(w.message) for w in caught)
    if followed is None:
        assert "Set early_stopping=False" not in message and "Use a closed-form solver" in message
        return
    assert f"Set early_stopping=False and {named} (the default)" in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert LinearRegressor(random_state=1, **followed).fit(Xf, yf).score(X, y) > 0.99  # the advice works


def test_the_finiteness_check_of_the_state_survives_an_overflowing_sum():
    """The state's and the column statistics' finiteness check (one helper, _engine.all_finite): a sum that
    overflows over finite values is neither a verdict nor a warning to the user."""
    from fastgd import _scaling
    from fastgd._engine import all_finite
    warnings.simplefilter("error", RuntimeWarning)  # the overflow the check expects is no warning to the user
    assert all_finite(np.array([1e308, 1e308, 1.0]))  # the sum overflows, every value is finite
    assert not all_finite(np.array([1e308, 1e308, np.nan]))
    assert not all_finite(np.array([1.0, -np.inf]))
    assert all_finite(np.zeros((2, 3)))
    # 300 finite column variances of 1e307 (their sum overflows): statistics, not an error or a warning
    stats = _scaling.Scaling._finish(np.zeros(300), np.full(300, 1e307), np.zeros(1), np.ones(1), 10.0, True)
    np.testing.assert_allclose(stats.x_scale, np.sqrt(1e307))


def test_the_snapshot_tests_the_written_slots_block_by_block_as_it_copies(monkeypatch):
    """The epoch's snapshot copies the state and tests it in the same pass: a NaN or an infinity in any block is
    found (also in a block whose sum overflows), an unwritten slot is neither copied again nor tested."""
    from fastgd import _engine, _training
    monkeypatch.setattr(_training, "SNAPSHOT_BLOCK", 4)
    ts = _engine.TrainingState(np.zeros((1, 10)), np.ones((3, 10)), np.zeros(2))
    ts.state[2] = 5.0  # the unwritten slot: one value
    bufs, finite = _training._checked_snapshot_into(ts, None, 2)
    assert finite
    for row, value, expect in [(1, 1e308, True), (1, np.nan, False), (0, -np.inf, False)]:
        ts.state[:2] = 1.0
        ts.state[row, 5:7] = value  # a later block; 1e308 twice: the block's sum overflows, its values are finite
        ts.state[2, 9] = np.nan  # not written by the rule: neither copied nor tested
        bufs, finite = _training._checked_snapshot_into(ts, bufs, 2)
        assert finite is expect
        np.testing.assert_array_equal(bufs[1][row], ts.state[row])
        assert bufs[1][2].ndim == 0 and bufs[1][2] == 5.0


@pytest.mark.parametrize("params", [dict(optimizer="sgd", learning_rate=10.0),
                                    dict(optimizer="sgd", penalty="l2", alpha=10.0, learning_rate=0.3),
                                    dict(optimizer="nesterov", learning_rate=3.0, batch_size=64),
                                    dict(optimizer="sgd", loss="huber", penalty="l2", learning_rate=0.01, y_times=100)])
def test_every_value_the_divergence_advice_names_works_alone(params):
    """Diabetes at rates the user chose: the advice named rates (1.6 for SGD at 10), batch sizes and alpha values
    from the batches' noise and the penalty's curvature alone, and half of them still diverged (red team); the
    data's own curvature, bounded by the Hessian's trace from the column statistics, now counts too, so each
    value named, applied alone, fits. Huber with epsilon (0.1) far below y's scale (y times 100) has y_scale /
    epsilon times the squared error's l2 strength in the standardized coordinates (the kernels'
    ``_rules.unit_l2``); the bound counted the squared error's, so the message named no rate at 0.01 (and 0.045,
    which diverged again, at 0.1); it names 2.9e-4 now."""
    import re
    from sklearn.datasets import load_diabetes

    params = dict(params)
    X, y = load_diabetes(return_X_y=True)
    y = y * params.pop("y_times", 1)
    with pytest.raises(ValueError, match="diverged") as info:
        LinearRegressor(random_state=0, **params).fit(X, y)
    message = str(info.value)
    named = [("learning_rate", float, r"learning rate \(now [^)]*\) to ([0-9.e+-]+?)\.? or less"),
             ("batch_size", int, r"raise batch_size \(now \d+\) to (\d+)"),
             ("alpha", float, r"lower alpha to ([0-9.e+-]+?)\.? or less")]
    found = [(name, kind(m.group(1))) for name, kind, pattern in named if (m := re.search(pattern, message))]
    assert found, message
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name, value in found:
            # alpha=10 on diabetes' raw units shrinks the optimum itself to about the mean (R² 0.001)
            # and huber's l2 strength at y_scale / epsilon = 7,700 times alpha, to about the mean (R² -0.009)
            floor = -0.05 if "loss" in params else 0.0 if "alpha" in params and name != "alpha" else 0.4
            assert LinearRegressor(random_state=0, **{**params, name: value}).fit(X, y).score(X, y) > floor, name


@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
def test_huber_on_large_targets_keeps_the_default_rate_its_bounded_slope_allows(optimizer):
    """Huber's quadratic zone is y_scale / epsilon times steeper than the squared error's in the standardized
    coordinates (y's spread here about 22,700, epsilon 0.1), but its slope is bounded, so a long step cannot
    diverge: only the penalty's strength is counted at that factor (``_stability.unit_gain``). Counting the data's
    and the batches' curvature at it (a red team's find) lowered the default rate 20-fold: R² 0.608 with a
    ConvergenceWarning in 300 epochs, where 289 epochs reach 0.992 (12,000 rows; 0.985 in 300 here)."""
    from sklearn.datasets import make_regression

    X, y = make_regression(6000, 30, noise=20, random_state=1)
    rng = np.random.default_rng(0)
    X = X * rng.uniform(0.1, 10, 30) + rng.normal(size=30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 300 epochs: near the tol rule's end, either side
        est = LinearRegressor(optimizer=optimizer, loss="huber", penalty=None, max_iter=300, random_state=0)
        assert est.fit(X, y * 100).score(X, y * 100) > 0.98


def test_one_row_of_positive_weight_is_never_a_divergence():
    """Two rows, one of weight 0, two outputs, huber with a tiny epsilon: the one weighted row is fitted exactly,
    and the losses are rounding (9e-28 at the start, 2e-14 after an epoch); that "rise" raised "Training diverged
    ... please report it". Only a non-finite loss diverges on such rows, as on a one-row partial_fit chunk."""
    X = np.array([[502.8934480219149, 27.3789075661789], [16493.318004354798, 904.241553919071]])
    Y = np.array([[990.5659006170633, 991.6935486782638], [-9.638726137555663, -9.636317693618333]])
    m = LinearRegressor(loss="huber", epsilon=6.87e-5, random_state=0).fit(X, Y, sample_weight=np.array([0.0, 1.0]))
    np.testing.assert_allclose(m.predict(X[1:]), Y[1:], rtol=1e-6)


@pytest.mark.parametrize("max_iter", ["auto", 300])
def test_a_fit_worse_than_the_mean_beyond_the_exact_check_warns_with_the_unscaled_columns(max_iter, monkeypatch):
    """standardize=False on columns in units 1e7 apart with an offset of 50 and y near 1e6, on data past the
    exact check's size (forced here): the fit ended with training R² -1.1e9 (max_iter 'auto') or -7.1e9 (300),
    where the advice was to raise max_iter (3,334 epochs: still -1.1e9) or, with max_iter set, nothing at all
    (1,500 x 300 with max_iter=5000 stopped on tol at R² -1.1e4, silently). The constant mean of y is a model
    the optimum is no worse than, so a fit above it is short for certain: the warning gives the figure and the
    cause that more epochs do not mend, and following it reaches the optimum."""
    from fastgd import _planning

    monkeypatch.setattr(_planning, "CHECK_EXACT_MAX_VALUES", 0)
    rng = np.random.default_rng(7)
    n, d = 600, 30
    X = rng.standard_normal((n, 5)) @ rng.standard_normal((5, d)) + 0.3 * rng.standard_normal((n, d))
    X[:, :10] *= 1e4
    X[:, 10:20] *= 1e-3
    X += 50.0
    w = rng.standard_normal(d)
    w[:10] /= 1e4
    w[10:20] /= 1e-3
    y = (X - 50.0) @ w + rng.standard_normal(n) + 1e6
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = LinearRegressor(standardize=False, max_iter=max_iter, random_state=0).fit(X, y)
    notes = [str(c.message) for c in caught if issubclass(c.category, ConvergenceWarning)]
    assert len(notes) == 1 and "times that of predicting the mean of y" in notes[0], notes
    r2 = float(re.search(r"training R² (\S+)\)", notes[0]).group(1))
    assert r2 == pytest.approx(model.score(X, y), rel=1e-2) and r2 < 0
    assert "standardize=False with features whose scales span" in notes[0] and "Raise max_iter" not in notes[0]
    assert "Set standardize=True (the default)" in notes[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        advised = LinearRegressor(random_state=0).fit(X, y)  # standardize=True, max_iter='auto'
    assert advised.score(X, y) > 0.98


def test_a_fit_worse_than_the_mean_under_a_chosen_rate_advises_every_setting_that_caused_it(monkeypatch):
    """standardize=False, learning_rate=1.0 and max_iter=100 on columns 1,000 times apart (past the exact
    check's size, forced here): the advice named standardize=True and max_iter, and following it with the rate
    kept rose and kept the start (R² 0). Every setting of the user's that the cause names now goes back to its
    default, and following the advice as written reaches the optimum."""
    from fastgd import _planning

    monkeypatch.setattr(_planning, "CHECK_EXACT_MAX_VALUES", 0)
    r = np.random.default_rng(0)
    Z = r.standard_normal((600, 30))
    y = Z @ r.standard_normal(30) + 0.5 * r.standard_normal(600) + 1e4
    X = Z * np.logspace(0, 3, 30)
    with pytest.warns(ConvergenceWarning, match="predicting the mean of y") as caught:
        LinearRegressor(random_state=0, standardize=False, learning_rate=1.0, max_iter=100).fit(X, y)
    note = str(caught[0].message)
    for advice in ("Set standardize=True (the default)", "leave learning_rate at its default ('adaptive')",
                   "leave max_iter at 'auto'"):
        assert advice in note, note
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        assert LinearRegressor(random_state=0).fit(X, y).score(X, y) > 0.99


def _zipf_counts(n, d, nnz, seed, units=1.0, offset=0.0):
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, d + 1) ** 1.1
    cols = rng.permutation(d)[rng.choice(d, size=n * nnz, p=p / p.sum())]
    X = sp.csr_matrix((np.ones(n * nnz), cols, np.arange(0, n * nnz + 1, nnz)), shape=(n, d))
    X.sum_duplicates()
    X.data[:] = 1.0 + rng.poisson(1.0, X.data.size)
    w = np.zeros(d)
    hot = rng.choice(d, d // 10, replace=False)
    w[hot] = rng.standard_normal(hot.size)
    y = X @ w
    return X, (y + 3.0 + 0.5 * y.std() * rng.standard_normal(n)) * units + offset


def test_a_stable_rate_too_small_to_move_is_warned_with_the_defaults_that_reach_the_optimum(monkeypatch):
    """Past the exact check's size (forced here) a fit under the user's settings was warned about only when worse
    than the constant mean: CSR with sgd at a stable but tiny rate stopped by tol after 2 epochs at training R²
    0.0000, silently (the divergence message's safe rate can be that small). One exact step from the fitted model
    bounds its excess from below (0.9 of var(y) here); the warning names the rate and optimizer, and the
    defaults it advises reach the optimum."""
    import scipy.sparse as sp

    from fastgd import _planning

    monkeypatch.setattr(_planning, "CHECK_EXACT_MAX_VALUES", 0)
    rng = np.random.default_rng(3)
    X = sp.random(3000, 400, density=0.02, format="csr", random_state=3, data_rvs=rng.standard_normal)
    y = X @ rng.standard_normal(400) + 0.1 * rng.standard_normal(3000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = LinearRegressor(optimizer="sgd", learning_rate=1e-7, penalty=None, random_state=0).fit(X, y)
    notes = [str(c.message) for c in caught if issubclass(c.category, ConvergenceWarning)]
    assert model.score(X, y) < 0.01
    assert len(notes) == 1 and "above the least-squares optimum (one exact step" in notes[0], notes
    share = float(re.search(r"; (\S+) of the variance of y\)", notes[0]).group(1))
    assert 0.5 < share <= 1.0 - model.score(X, y) + 1e-9  # a lower bound: at most the whole excess (R² 1 at best)
    for advice in ("the steps fell short with this fit's learning_rate=1e-07 and optimizer='sgd'",
                   "Leave learning_rate at its default ('adaptive'), and leave optimizer at its default ('adam')"):
        assert advice in notes[0], notes[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        assert LinearRegressor(penalty=None, random_state=0).fit(X, y).score(X, y) > 0.99


def test_csr_with_standardize_false_is_told_to_standardize_not_to_lower_tol_or_add_epochs(monkeypatch):
    """Count columns of one scale with y in units of 1e6 and an offset of 1e4, standardize=False: 'auto''s 1,000
    epochs ended at training R² -3.7 (the same after 100), and the warning advised a lower tol (the columns'
    spread was measured on dense X only, and the "auto" budget counted as no cap); a lower tol changed nothing.
    standardize=False is named whatever the spread, and the advice as written reaches the optimum."""
    from fastgd import _planning

    monkeypatch.setattr(_planning, "CHECK_EXACT_MAX_VALUES", 0)
    X, y = _zipf_counts(2000, 2 ** 11, 10, seed=10, units=1e6, offset=1e4)
    with pytest.warns(ConvergenceWarning, match="predicting the mean of y") as caught:
        LinearRegressor(standardize=False, max_iter=100, random_state=0).fit(X, y)
    note = str(caught[0].message)
    assert "Lower tol" not in note and "raise max_iter" not in note.lower(), note
    for advice in ("standardize=False", "Set standardize=True (the default)", "leave max_iter at 'auto'"):
        assert advice in note, note
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        assert LinearRegressor(random_state=0).fit(X, y).score(X, y) > 0.8


def test_the_step_bound_of_dense_x_reads_all_rows_only_where_a_sample_shows_a_shortfall(monkeypatch):
    """Dense X with many rows per column: the bound is taken on evenly spaced rows first, and its two passes over
    all of X follow only where that sample's gain is near the warning's limit: a fit at its optimum costs the
    sample alone, a stalled one is confirmed on every row and warned about."""
    from fastgd import _planning, _shortfall

    monkeypatch.setattr(_planning, "CHECK_EXACT_MAX_VALUES", 0)
    monkeypatch.setattr(_shortfall, "STEP_SAMPLE_ROWS", 2000)
    monkeypatch.setattr(_shortfall, "GRAM_MAX_PRODUCTS", 0)  # the columns' Gram matrix too costly to measure
    calls = []
    real = _shortfall.step_excess

    def spy(est, X, Yd, w, raw, moments=None, rows=None):  # the rows each bound reads
        calls.append(X.shape[0] if rows is None else len(rows))
        return real(est, X, Yd, w, raw, moments, rows)
    monkeypatch.setattr(_shortfall, "step_excess", spy)
    rng = np.random.default_rng(5)
    X = rng.standard_normal((12000, 8)) * [1, 2, 5, 10, 0.1, 1, 1, 3] + 4.0
    y = X @ rng.standard_normal(8) + 0.3 * rng.standard_normal(12000)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        LinearRegressor(optimizer="sgd", learning_rate=0.01, random_state=0).fit(X, y)
    assert calls == [2000]  # the sample only
    calls.clear()
    with pytest.warns(ConvergenceWarning, match="one exact step from the fitted model"):
        LinearRegressor(optimizer="sgd", learning_rate=1e-7, random_state=0).fit(X, y)
    assert calls == [2000, 12000]  # then every row


def test_ill_conditioned_columns_past_the_exact_check_are_measured_exactly(monkeypatch):
    """Pairs of columns correlated to 1 - 5e-7 (condition number about 2e3), past the exact check's size (forced
    here): sgd at 0.01 ended at R² 0.51 against 0.9995, silently, since one step's bound is a sliver of an excess
    along the weak directions. Dense X whose Gram matrix is cheap is measured exactly in one pass: the warning
    gives the excess and the condition number, and its advice reaches the optimum."""
    from fastgd import _planning

    monkeypatch.setattr(_planning, "CHECK_EXACT_MAX_VALUES", 0)
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((4000, 6))
    X = np.hstack([Z, Z + 1e-3 * rng.standard_normal((4000, 6))])
    y = (X[:, 6:] - X[:, :6]) @ (rng.standard_normal(6) / 1e-3) + Z @ rng.standard_normal(6) \
        + 0.1 * rng.standard_normal(4000)
    A = np.c_[X, np.ones(4000)]
    r2 = 1 - np.mean((A @ np.linalg.lstsq(A, y, rcond=None)[0] - y) ** 2) / y.var()
    with pytest.warns(ConvergenceWarning, match="measured exactly in one pass over X; the standardized features' "
                                                "condition number is") as caught:
        model = LinearRegressor(optimizer="sgd", learning_rate=0.01, random_state=0).fit(X, y)
    note = str(caught[0].message)
    share = float(re.search(r"; (\S+) of the variance of y\)", note).group(1))
    assert share == pytest.approx(r2 - model.score(X, y), rel=1e-2)  # exact: the training R² gap
    assert "Leave learning_rate at its default ('adaptive'), and leave optimizer at its default ('adam')" in note
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        assert LinearRegressor(random_state=0).fit(X, y).score(X, y) == pytest.approx(r2, abs=1e-6)


def test_the_max_iter_warning_names_the_users_rate_that_made_the_steps_too_small():
    """sgd at 1e-6 with early stopping (no exact check then): told to raise max_iter after 20 epochs (R² 0.02)
    and again after 200 (0.2); the rate and optimizer the user chose are named with their defaults, which reach
    the optimum within those 20 epochs."""
    rng = np.random.default_rng(2)
    X = rng.standard_normal((4000, 10))
    y = X @ rng.standard_normal(10) + 0.5 * rng.standard_normal(4000)
    with pytest.warns(ConvergenceWarning, match="leave learning_rate at its default .'adaptive'. and leave "
                                                "optimizer at its default .'adam'. .with this fit's "
                                                "learning_rate=1e-06 and optimizer='sgd'"):
        LinearRegressor(optimizer="sgd", learning_rate=1e-6, early_stopping=True, max_iter=20,
                        random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        assert LinearRegressor(early_stopping=True, max_iter=20, random_state=0).fit(X, y).score(X, y) > 0.95


@pytest.mark.parametrize("gram", [True, False])
def test_the_shortfall_check_of_weights_that_are_zero_on_its_sample_rows(monkeypatch, gram):
    """Sample weights of 0 on exactly the evenly spaced rows the check samples: the shift of the exact measure
    (their mean) was NaN and the check gave up, silently, on a fit 0.85 of var(y) short; the step's bound on
    that sample had no objective (a division by its weight, 0). A sample of weight 0 is skipped: all of X
    serves for the shift, the preconditioner and the bound."""
    from fastgd import _planning, _shortfall

    monkeypatch.setattr(_planning, "CHECK_EXACT_MAX_VALUES", 0)
    monkeypatch.setattr(_shortfall, "STEP_SAMPLE_ROWS", 2000)
    if not gram:
        monkeypatch.setattr(_shortfall, "GRAM_MAX_PRODUCTS", 0)
    rng = np.random.default_rng(0)
    n, d = 12_000, 5
    X = rng.standard_normal((n, d))
    y = X @ rng.standard_normal(d) + 0.1 * rng.standard_normal(n)
    sw = np.ones(n)
    sw[np.linspace(0, n - 1, 2000).astype(np.int64)] = 0.0
    with pytest.warns(ConvergenceWarning, match="above the least-squares optimum"):
        LinearRegressor(optimizer="sgd", learning_rate=1e-7, random_state=0).fit(X, y, sample_weight=sw)


@pytest.mark.parametrize("sparse", [False, True])
def test_the_step_bound_is_never_above_the_true_excess(sparse):
    """``_shortfall.step_excess`` against the exact optimum of the penalized squared error on random problems
    (weights, no intercept, two outputs, l2, a constant column, columns in units 1e-3 to 1e3 with offsets,
    float32): never above the excess, and equal to it with one column (the span then holds the optimum).
    ``gram_excess`` (dense) equals it: a constant column's rounding-level spread in the shifted second moments
    had been taken for a scale, and its penalty's curvature cut every other eigenvalue off as rounding."""
    import types

    import scipy.sparse as sp

    from fastgd import _shortfall

    rng = np.random.default_rng(1 if sparse else 0)
    for trial in range(40):
        n, d, k = int(rng.integers(20, 200)), 1 if trial < 4 else int(rng.integers(2, 30)), int(rng.integers(1, 3))
        X = rng.standard_normal((n, d)) * np.exp(rng.uniform(-3, 3, d)) + rng.uniform(-5, 5, d) * (trial % 2)
        if trial % 3 == 0:
            X[:, 0] = 3.0
        Y = X @ rng.standard_normal((d, k)) + rng.uniform(0.01, 3) * rng.standard_normal((n, k)) + 7.0
        w = rng.uniform(0.0, 1.0, n) if trial % 2 else np.ones(n)
        intercept, l2 = trial % 5 != 0, [0.0, 1e-3, 1.0][trial % 3]
        est = types.SimpleNamespace(fit_intercept=intercept, penalty="l2", alpha=l2, l1_ratio=0.0)
        raw = rng.standard_normal((k, d + 1)) * [0.0, 1e-3, 1.0, 10.0][trial % 4]
        raw[:, d] *= intercept
        Xin = sp.csr_matrix(X) if sparse else X.astype(np.float32) if trial % 7 == 0 else X
        got, gain = _shortfall.step_excess(est, Xin, Y, w, raw)
        if not sparse:  # the exact measure, from a shift near the means
            exact = _shortfall.gram_excess(est, Xin, Y, w, raw, np.asarray(Xin, dtype=np.float64).mean(axis=0) + 0.1)
        Xf = np.asarray(Xin.toarray() if sparse else Xin, dtype=np.float64)
        A = np.column_stack([Xf, np.ones(n)]) if intercept else Xf
        H = (A.T * w) @ A * 2.0 / w.sum()
        H[:d, :d] += l2 * np.eye(d)
        best = np.zeros((k, d + 1))
        best[:, :A.shape[1]] = np.linalg.lstsq(H, (A.T * w) @ Y * 2.0 / w.sum(), rcond=None)[0].T

        def objective(p):
            R = Xf @ p[:, :d].T + p[:, d] - Y
            return float((w @ R ** 2).sum() / w.sum() + 0.5 * l2 * (p[:, :d] ** 2).sum())
        excess = objective(raw) - objective(best)
        assert got == pytest.approx(objective(raw), rel=1e-9)
        assert gain <= excess * (1 + 1e-7) + 1e-12 * objective(raw), (trial, gain, excess)
        if not sparse:
            assert exact[0] == pytest.approx(objective(raw), rel=1e-9)
            assert exact[1] == pytest.approx(excess, rel=1e-6, abs=1e-9 * objective(raw)), (trial, exact, excess)
        if d == 1 and excess > 1e-6 * objective(raw):
            assert gain == pytest.approx(excess, rel=1e-6)


@pytest.mark.parametrize("sparse", [False, True])
def test_the_unscaled_causes_column_scales_count_a_rounding_spread_as_constant(sparse):
    """The column scales behind "standardize=False with features whose scales span N times" (fit's shortfall
    checks and partial_fit's stream warning) gave a constant column of 0.1 a spread of 2.8e-17 (its centred
    squares' rounding) and so a span of 3.9e+16 on columns of one scale; a spread at Scaling's constant-column
    rule is scale 1 now. Sparse X: the same scales in O(nnz)."""
    import scipy.sparse as sp

    from fastgd import _shortfall

    rng = np.random.default_rng(0)
    X = np.column_stack([rng.standard_normal((100, 3)), np.full(100, 0.1), np.full(100, 3.7)])
    dense = _shortfall.column_scales(X, np.ones(100), True)
    got = _shortfall._blocked_column_scales(sp.csr_matrix(X) if sparse else X, None, True)
    np.testing.assert_array_equal(got[3:], [1.0, 1.0])
    np.testing.assert_allclose(got, dense, rtol=1e-14)
    assert _shortfall.scale_cause(LinearRegressor(standardize=False), got) is None
