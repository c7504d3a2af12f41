"""scikit-learn's own estimator checks, and its conventions: predict reads the public coef_ and intercept_, a
grid search reaches the optimizer's parameters."""

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import GridSearchCV
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastgd import LinearRegressor
from fastgd.datasets import make_regression


@pytest.fixture(scope="module")
def data():
    X, y, _, _ = make_regression(3000, 8, noise=0.3, random_state=1)
    return X, y


# Each check skipped here has its reason written next to it.
EXPECTED_FAILED_CHECKS = {
    # penalty="auto" on sparse X chooses its strength on held-out rows, or with too few rows to hold out (here) by
    # leave-one-out: a row repeated w times is not one row of weight w there (leaving one copy out leaves the
    # others in training), so the two fits choose different strengths; with a fixed penalty it passes.
    "check_sample_weight_equivalence_on_sparse_data":
        "penalty='auto' chooses its strength by leaving rows out, where repeated rows are not weights",
}


def _as_list(mark):
    """The same parametrize mark with its values in a list: scikit-learn 1.6 passes a generator, which pytest
    deprecates."""
    names, values, *rest = mark.args
    return pytest.mark.parametrize(names, list(values), *rest, **mark.kwargs)


# check_regressors_train sets alpha=0.01 on every estimator that has an alpha; with the default penalty="auto"
# fastgd rightly warns that alpha then does nothing
@pytest.mark.filterwarnings("ignore:alpha=0.01 has no effect with penalty='auto':UserWarning")
@_as_list(parametrize_with_checks([LinearRegressor(random_state=0)],
                                  expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS))
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_predict_uses_the_public_coefficients(data):
    """predict reads coef_ and intercept_ (not a private copy): setting them changes the predictions."""
    X, y = data
    m = LinearRegressor(random_state=0).fit(X, y)
    m.coef_ = np.zeros_like(m.coef_)
    m.intercept_ = 3.5
    np.testing.assert_array_equal(m.predict(X), np.full(len(X), 3.5))
    exact = LinearRegression().fit(X, y)
    m.coef_, m.intercept_ = exact.coef_, exact.intercept_
    np.testing.assert_allclose(m.predict(X), exact.predict(X), rtol=1e-12)


def test_grid_search_over_lr_with_a_named_optimizer(data):
    """GridSearchCV reaches optimizer__lr with the default optimizer='adam' (a string, not an object)."""
    X, y = data
    gs = GridSearchCV(LinearRegressor(max_iter=5, tol=None, random_state=0),
                      {"optimizer__lr": [1e-3, 1e-2]}, cv=2).fit(X[:600], y[:600])
    assert gs.best_params_["optimizer__lr"] in (1e-3, 1e-2)
    assert gs.best_estimator_.optimizer.lr == gs.best_params_["optimizer__lr"]
