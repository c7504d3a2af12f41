"""fastgd: linear regression trained by gradient descent on multicore CPUs, as fast as the memory bus allows.

    >>> import fastgd
    >>> model = fastgd.LinearRegressor(optimizer="adam").fit(X, y)       # doctest: +SKIP

``fastgd.optimizers`` and ``fastgd.schedules`` hold the optimizer and learning-rate schedule objects;
``fastgd.reference`` is the plain-NumPy specification of the compiled kernels.
"""

from . import optimizers, reference, schedules
from .estimator import LinearRegressor
from .optimizers import OPTIMIZERS

__version__ = "0.1.0"

__all__ = ["LinearRegressor", "OPTIMIZERS", "optimizers", "reference", "schedules", "__version__"]
