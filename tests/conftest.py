"""Fixtures, and the ``slow`` marker; shared test helpers live in tests/_helpers.py (imported as
``from _helpers import ...``)."""

import pytest

from fastgd.optimizers import OPTIMIZERS

# Tests marked ``slow`` (``pytest -m "not slow"`` skips them): docs builds, benchmark scripts, cold
# subprocesses and clusters, which take most of the suite's time once the Numba kernels are cached. Listed here,
# by node id prefix, so that no test file needs editing; every test still runs in the plain ``pytest``.
SLOW = (
    "benchmarks/",
    "tests/test_benchmark_scripts.py",
    "tests/test_bench_command.py",
    "tests/test_dask.py",
    "tests/test_demo.py",
    "tests/test_docs.py",
    "tests/test_fork.py::test_fit_and_predict_in_forked_children",
    "tests/test_fork.py::test_fork_while_another_thread_compiles",
    "tests/test_memory.py::test_sparse_high_dimensional_fit_memory_is_bounded",
    "tests/test_memory.py::test_dense_fit_does_not_copy_x",
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid.startswith(SLOW):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(params=sorted(OPTIMIZERS))
def optimizer_name(request):
    return request.param
