"""Stand-in for the ``cython`` module when Cython is not installed (it is a build requirement only).

``fastgd._rules`` is written in Cython's pure-Python mode: compiled, the decorators and types below are
C declarations; run as Python or jitted by Numba, they must be no-ops, which is what Cython's own
``Cython.Shadow`` provides when Cython is installed and this module provides when it is not. Only the names
``fastgd._rules`` uses are defined (a test imports it with Cython hidden).
"""

compiled = False


def _same(f):
    return f


cfunc = ccall = nogil = inline = _same


def exceptval(*args, **kwargs):
    return _same


def declare(type_, value):
    return value


def typedef(type_, name=None):
    return type_


class _Type:
    """A C type name: subscriptable (``pointer[const[double]]``) and otherwise inert."""

    def __init__(self, name):
        self.name = name

    def __getitem__(self, item):
        return self

    def __repr__(self):
        return f"cython.{self.name}"


double = _Type("double")
int = _Type("int")  # noqa: A001 (the cython module's name for C int)
bint = _Type("bint")
void = _Type("void")
Py_ssize_t = _Type("Py_ssize_t")
pointer = _Type("pointer")
const = _Type("const")
floating = _Type("floating")
longlong = _Type("longlong")


def fused_type(*types):
    return _Type("fused")
