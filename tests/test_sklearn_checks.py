"""scikit-learn's own estimator checks."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from fastgd import LinearRegressor

# Each check skipped here has its reason written next to it.
EXPECTED_FAILED_CHECKS = {}


@parametrize_with_checks([LinearRegressor(random_state=0)],
                         expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS)
def test_sklearn_compatible(estimator, check):
    check(estimator)
