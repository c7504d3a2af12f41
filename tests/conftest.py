"""Fixtures only; shared test helpers live in tests/_helpers.py (imported as ``from _helpers import ...``)."""

import pytest

from fastgd.optimizers import OPTIMIZERS

@pytest.fixture(params=sorted(OPTIMIZERS))
def optimizer_name(request):
    return request.param
