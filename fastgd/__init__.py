"""fastgd: linear regression trained by gradient descent on multicore CPUs, as fast as the memory bus allows."""

from . import optimizers, reference
from .optimizers import OPTIMIZERS

__version__ = "0.1.0"

__all__ = ["OPTIMIZERS", "optimizers", "reference", "__version__"]
