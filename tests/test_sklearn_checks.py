"""scikit-learn's own estimator checks."""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastgd import LinearRegressor

# Each check skipped here has its reason written next to it.
EXPECTED_FAILED_CHECKS = {}


# check_regressors_train sets alpha=0.01 on every estimator that has an alpha; with penalty=None fastgd rightly
# warns that alpha then does nothing
@pytest.mark.filterwarnings("ignore:alpha=0.01 has no effect with penalty=None:UserWarning")
@parametrize_with_checks([LinearRegressor(random_state=0)],
                         expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS)
def test_sklearn_compatible(estimator, check):
    check(estimator)
