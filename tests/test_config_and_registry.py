import inspect
import os
import subprocess
import sys

import numba
import numpy as np
import pytest

import fastgd
from fastgd import _config, _kernels, _rules, reference
from fastgd import optimizers as O
from fastgd.optimizers import OPTIMIZERS


def _dispatchers():
    for module in (_kernels, _rules):  # _kernels jits the shared rules in place
        for name, obj in vars(module).items():
            if isinstance(obj, numba.core.registry.CPUDispatcher):
                yield f"{module.__name__}.{name}", obj


def test_every_njit_function_takes_flags_from_config():
    found = list(_dispatchers())
    assert len(found) >= 8
    for name, disp in found:
        opts = disp.targetoptions
        strict = name.rsplit(".", 1)[1] in _kernels._STRICT
        assert opts["fastmath"] == (_config.STRICT_FLAGS["fastmath"] if strict else _config.FASTMATH), name
        assert opts["nogil"] and opts["error_model"] == "numpy", name
        assert type(disp._cache).__name__ != "NullCache", f"{name} is not cached"


def test_out_of_line_rules_are_compiled_without_fastmath():
    """finish_batch (the update rules) is called out of line by the epochs, so Numba links a copy of it into each
    epoch and optimizes it again there: a process that compiled the epochs runs the finish_batch compiled on its
    own, one that loaded them from the cache runs the epoch's copy. With "contract" the two copies rounded
    differently (RMSprop with momentum: lr·b sunk into another block, no longer fused into θ − lr·b; AdamW), so
    the first run after a build fitted other bits than the later ones. Without fastmath flags every copy rounds
    as the source says; this checks the optimized IR every copy is made from has no fast-math flag."""
    assert _kernels._OUT_OF_LINE == ("finish_batch",)  # a new out-of-line rule: call it here too
    # k = 1, d = 3: P = 4 coordinates, G holds P + 1 sums; the epochs' types: float64 vectors, int64, bool
    v, e = np.ones(5), np.empty(0)
    _rules.finish_batch(v, 1.0, v.copy(), v.copy(), np.zeros(12), np.array([0.0, 1.0]), _rules.RMSPROP,
                        O.RMSprop(momentum=0.5, centered=True).pack(), np.zeros(6), 0.0, 0.0, 0.0, 0, 0.0, True, e,
                        1, 3, np.zeros(2), e, False, e, False)
    for name in _kernels._OUT_OF_LINE:
        disp = getattr(_rules, name)
        assert disp.overloads, name
        for cres in disp.overloads.values():
            ir = str(cres.library._get_module_for_linking())
            fp_ops = [ln for ln in ir.splitlines() if any(f" {op} " in ln for op in ("fadd", "fsub", "fmul", "fdiv"))]
            assert fp_ops, name
            flagged = [ln for ln in fp_ops if any(f in ln for f in (" reassoc ", " contract ", " fast ", " arcp "))]
            assert not flagged, (name, flagged[:3])


def test_fastmath_never_assumes_finite_values():
    assert not ({"nnan", "ninf", "fast"} & _config.FASTMATH)


def test_registry_is_consistent():
    codes = [cls.code for cls in OPTIMIZERS.values()]
    assert len(set(codes)) == len(codes)
    for name, cls in OPTIMIZERS.items():
        assert cls.name == name
        opt = cls()
        assert opt.pack().shape == (_kernels.HP_LEN,)
        assert opt.reference is getattr(reference, name)
        # the reference step accepts exactly the optimizer's hyperparameters, with the same defaults
        ref_defaults = {k: p.default for k, p in inspect.signature(opt.reference).parameters.items()
                        if p.default is not inspect.Parameter.empty}
        for key, value in opt.get_params().items():
            assert key in ref_defaults, (name, key)
            assert ref_defaults[key] == value, (name, key)
        state, scalars = opt.init_state(7)
        assert state.shape == (len(cls.slots), 7) and scalars.shape == (_kernels.N_SCALARS,)
        # its rule is one grep away (``<name>_step`` in fastgd._rules), its packed names start with the common
        # ones (the epoch reads hp[0] as the base rate), and it declares the variant the tests run
        assert hasattr(_rules, f"{name}_step"), f"fastgd._rules has no {name}_step"
        assert cls.hp_names[: len(_rules.HP_COMMON)] == _rules.HP_COMMON, name
        assert cls.__dict__.get("variant"), f"{cls.__name__} declares no variant"


def test_torch_defaults():
    assert O.SGD().lr == 1e-3 and O.Adam().lr == 1e-3 and O.Adam().betas == (0.9, 0.999)
    assert O.Adam().eps == 1e-8 and O.AdamW().weight_decay == 1e-2 and O.Adamax().lr == 2e-3
    assert O.NAdam().momentum_decay == 4e-3 and O.Adagrad().eps == 1e-10 and O.RMSprop().alpha == 0.99


@pytest.mark.parametrize("make, message", [
    (lambda: O.Adam(lr=-1.0), r"Adam: lr must be a finite number > 0.0, got -1.0"),
    (lambda: O.Adam(betas=(0.9, 1.0)), r"Adam: betas must be a pair \(beta1, beta2\) of numbers in \[0.0, 1.0\), got \(0.9, 1.0\)"),
    (lambda: O.Adam(betas=0.9), "Adam: betas must be a pair"),
    (lambda: O.Adam(amsgrad="yes"), "Adam: amsgrad must be True or False, got 'yes'"),
    (lambda: O.Momentum(momentum=1.5), r"Momentum: momentum must be a finite number in \[0.0, 1.0\), got 1.5"),
    (lambda: O.Nesterov(momentum=0.0), r"Nesterov: momentum must be a finite number in \(0.0, 1.0\), got 0.0"),
    (lambda: O.RMSprop(alpha=2.0), r"RMSprop: alpha must be a finite number in \[0.0, 1.0\)"),
    (lambda: O.RMSprop(alpha=1.0), r"RMSprop: alpha must be a finite number in \[0.0, 1.0\), got 1.0"),
    (lambda: O.Adagrad(eps=float("nan")), "Adagrad: eps must be a finite number >= 0.0, got nan"),
    (lambda: O.SGD(weight_decay=-0.1), "SGD: weight_decay must be a finite number >= 0.0"),
    (lambda: O.SGD(lr=10**400), "SGD: lr must be a finite number > 0.0"),
    (lambda: O.SGD(lr=np.float32(1e-3)).validate() and O.SGD(lr=True), "SGD: lr must be"),
])
def test_bad_hyperparameters_name_the_argument(make, message):
    with pytest.raises(ValueError, match=message):
        make().validate()


def test_get_optimizer():
    assert isinstance(O.get_optimizer("adam"), O.Adam)
    opt = O.Adam(amsgrad=True)
    assert O.get_optimizer(opt) is opt
    with pytest.raises(ValueError, match="optimizer must be one of"):
        O.get_optimizer("adamm")


def test_params_round_trip_and_repr():
    opt = O.Adam(lr=0.1)
    assert opt.get_params()["lr"] == 0.1
    assert opt.set_params(eps=1e-6).eps == 1e-6
    assert repr(opt) == "Adam(lr=0.1, eps=1e-06)"
    with pytest.raises(ValueError, match="has no hyperparameter 'momentum'"):
        opt.set_params(momentum=0.9)
    assert O.Adam() == O.Adam() and O.Adam() != O.AdamW()


def test_lr_schedule_formulas():
    s = np.zeros(_kernels.SCHED_LEN)
    assert _kernels.lr_at(0.1, s, 7.0) == 0.1
    s[0], s[2] = _kernels.INVSCALING, 0.5
    assert _kernels.lr_at(0.1, s, 4.0) == pytest.approx(0.05)
    s[0], s[2], s[3] = _kernels.STEP, 0.5, 10
    assert _kernels.lr_at(0.1, s, 10.0) == pytest.approx(0.1) and _kernels.lr_at(0.1, s, 11.0) == pytest.approx(0.05)
    s[0], s[2], s[3] = _kernels.COSINE, 100, 0.01
    assert _kernels.lr_at(0.1, s, 1.0) == pytest.approx(0.1) and _kernels.lr_at(0.1, s, 500.0) == pytest.approx(0.01)
    s[:] = 0
    s[1] = 10  # linear warm-up over 10 steps
    assert _kernels.lr_at(0.1, s, 5.0) == pytest.approx(0.05) and _kernels.lr_at(0.1, s, 11.0) == 0.1


def test_package_surface():
    assert fastgd.OPTIMIZERS is OPTIMIZERS and fastgd.__version__


def test_rules_run_without_cython():
    """fastgd._rules is Cython pure-Python mode, but Cython is only a build requirement: without it the module
    takes its decorators and types from fastgd._cython_shim and Numba jits it as before."""
    code = """if True:
        import sys
        sys.modules["cython"] = None  # as if Cython were not installed
        import numpy as np
        from fastgd import _kernels as K, _rules as R
        from fastgd.optimizers import Adam
        assert R.cython.__name__ == "fastgd._cython_shim" and R.math.__name__ == "math"
        opt = Adam(lr=0.1, amsgrad=True)
        state, scalars = opt.init_state(3)
        scalars[0] = 1.0
        th, G = np.ones(3), np.array([1.0, -2.0, 0.5])
        K.update(opt.code, th, G, state, scalars, opt.pack(), 0.1, np.empty(0))
        ref = np.ones(3)
        opt.reference_step()(ref, G.copy(), {**opt.state_dict(*opt.init_state(3)), "step": 1})
        assert np.allclose(th, ref, rtol=1e-14, atol=0), (th, ref)
        print("ok")
    """
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_rules_run_as_python_never_use_the_installed_cythons_stand_ins():
    """Run as Python (and jitted by Numba), fastgd._rules takes its inert decorators and types from
    fastgd._cython_shim even where Cython is installed: Cython's own Shadow differs by version (3.1's raised
    ValueError on a const[int] declaration with a value other than 0, so fastgd failed to import)."""
    from fastgd import _rules

    assert _rules.cython.__name__ == "fastgd._cython_shim"
    assert (_rules.SQUARED_ERROR, _rules.HUBER, _rules.QUANTILE) == (0, 1, 4)


def test_kernels_cache_is_invalidated_by_an_edited_rule():
    """_kernels' cached epochs contain the rules of _rules.py: their cache stamp must include that file's."""
    locator = _kernels.epoch._cache._impl._locator
    assert type(locator).__name__ == "_DependentCacheLocator"
    assert any(f.endswith("_rules.py") for f in locator._deps)
    stamp, deps = locator.get_source_stamp()
    assert deps[0] == (os.stat(locator._deps[0]).st_mtime_ns, os.stat(locator._deps[0]).st_size)


def test_state_rows_declared_with_the_rules_match_the_registry():
    """The kernels check a state against fastgd._rules.STATE_ROWS; the registry names the same slots."""
    from fastgd import _rules

    for cls in OPTIMIZERS.values():
        assert _rules.STATE_ROWS[cls.code] == len(cls.slots), cls.name
