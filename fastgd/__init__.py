"""fastgd: linear regression trained by gradient descent on multicore CPUs, as fast as the memory bus allows.

    >>> import fastgd
    >>> model = fastgd.LinearRegressor(optimizer="adam").fit(X, y)       # doctest: +SKIP

``fastgd.minimize`` runs the same optimizers on any differentiable function; ``fastgd.examples`` holds the
worked examples of gradient descent. ``fastgd.optimizers`` and ``fastgd.schedules`` hold the optimizer and
learning-rate schedule objects; ``fastgd.EpochInfo`` is what a ``callbacks`` function receives;
``fastgd.datasets`` makes synthetic data; ``fastgd.reference`` is the plain-NumPy specification of the
compiled kernels.
"""

from . import datasets, optimizers, reference, schedules
from ._training import EpochInfo
from .estimator import LinearRegressor
from .minimize import minimize
from .optimizers import OPTIMIZERS

__version__ = "0.1.0"

__all__ = ["EpochInfo", "LinearRegressor", "OPTIMIZERS", "datasets", "minimize", "optimizers", "reference", "schedules",
           "__version__"]
