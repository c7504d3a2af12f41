# cython: language_level=3, cdivision=True, cpow=True, infer_types=True
"""The optimizer update rules, the learning-rate schedule, the epoch's layout (chunks, thread rules and their
constants), the step after a batch's gradient and the column statistics, written once for both compiled
backends (each backend writes only its hot row loops and its thread protocol).

This file is the one copy of each rule in compiled code (the readable, independent specification is
:mod:`fastgd.reference`; tests compare them). It is ordinary Python in Cython's pure-Python mode:

* Numba: ``fastgd._kernels`` jits every function here with ``fastgd._config.jit`` (in place, so that the
  calls between them resolve to the jitted versions).
* Cython: ``fastgd/_native.pyx`` includes this file's source (``include "_rules.py"``), so the rules are C
  functions without the GIL in the same translation unit as the loops that call them (the decorators and
  annotations below are their C declarations), which lets the C compiler inline them.

Arrays are flat float64 vectors of P coordinates (``k * (d + 1)``: theta's flattened layout): ``th`` the
parameters, ``G`` the gradient (penalty included), ``eta`` (written when ``want_eta``) each coordinate's
effective step size, which the l1 proximal step uses. ``S`` is the optimizer state, slot i of coordinate q at
``S[i * P + q]`` in the order of the registry entry's ``slots`` (torch's state names). ``scalars[0]`` is the
step count t, already incremented for this update; ``scalars[1]`` NAdam's running product of momentum
coefficients. ``hp`` holds the hyperparameters in the order of the rule's ``*_HP`` names (always
``HP_COMMON`` first); ``fastgd.optimizers.Optimizer.pack`` builds it from those names, so each position is
named here and nowhere else.

Adding an optimizer: its code, its ``*_HP`` names and its ``*_step`` function here, one branch in
``update``; its step in ``fastgd.reference``; its registry entry (a class in ``fastgd.optimizers``). Tests,
benchmarks and docs pick it up from the registry. Changing the chunk-size or a thread rule: its function in
the layout section below; a layout constant: its value there (``LAYOUT`` names them, the native module's
``CODES`` lists its compiled values under those names and a test compares the three). (Numba's cache checks
only a function's own file; ``fastgd._kernels`` adds this file's stamp to its own, so its cached epochs are
recompiled after an edit here.)
"""

try:
    import cython
except ImportError:  # Cython is needed to build fastgd, not to run it
    from . import _cython_shim as cython
else:
    if not cython.compiled:  # run as Python or jitted by Numba: the same inert stand-ins whatever Cython is
        from . import _cython_shim as cython  # installed (Cython 3.1's Shadow fails on const[int] values)
try:
    from cython.cimports.libc import math  # compiled: C's libm
except ImportError:
    import math  # Python's (Numba compiles it to the same libm calls)

Vec = cython.typedef(cython.pointer[cython.double])
CVec = cython.typedef(cython.pointer[cython.const[cython.double]])
Index = cython.typedef(cython.Py_ssize_t)
LVec = cython.typedef(cython.pointer[cython.longlong])
CLVec = cython.typedef(cython.pointer[cython.const[cython.longlong]])
NAN = cython.declare(cython.double, float("nan"))

# Every optimizer's hp starts with these; the compiled epoch reads the base rate as hp[0].
HP_COMMON = ("lr", "weight_decay")
# Lengths of the small vectors every epoch takes, written here once: both backends check them, and
# fastgd.optimizers and fastgd.schedules build them. scalars = [step count, NAdam's momentum product];
# hp = HP_COMMON then the rule's own names (at most HP_LEN); sched = [code, warm-up steps, parameters...].
N_SCALARS = 2
HP_LEN = 8
SCHED_LEN = 6


# ----------------------------------------------------------------------------------------------------------
# shared pieces


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def _decayed(th: Vec, G: CVec, q: Index, wd: cython.double, shrink: cython.double,
             decoupled: cython.bint) -> cython.double:
    """Coordinate q's gradient after torch's weight decay: coupled, g + λθ; or decoupled, θ ← θ(1 − γλ)."""
    if decoupled:
        th[q] *= shrink
        return G[q]
    return G[q] + wd * th[q]


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def _moments(S: Vec, P: Index, q: Index, g: cython.double, b1: cython.double, b2: cython.double) -> cython.void:
    """Adam-style moving averages of g (slot 0, exp_avg) and g² (slot 1, exp_avg_sq) for coordinate q."""
    S[q] = b1 * S[q] + (1.0 - b1) * g
    S[P + q] = b2 * S[P + q] + (1.0 - b2) * g * g


# ----------------------------------------------------------------------------------------------------------
# one step function per optimizer: (th, G, S, P, scalars, hp, lr, eta, want_eta), lr = this step's rate


SGD = cython.declare(cython.int, 0)
SGD_HP = HP_COMMON


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def sgd_step(th: Vec, G: CVec, S: Vec, P: Index, scalars: Vec, hp: CVec, lr: cython.double, eta: Vec,
             want_eta: cython.bint) -> cython.void:
    """θ ← θ − γ(g + λθ)."""
    wd = hp[1]
    for q in range(P):
        th[q] -= lr * (G[q] + wd * th[q])
        if want_eta:
            eta[q] = lr


@cython.cfunc
@cython.inline
@cython.nogil
@cython.exceptval(check=False)
def fmadd(a: cython.double, b: cython.double, c: cython.double) -> cython.double:
    """a·b + c rounded once: C's fma (native), ``llvm.fma`` (Numba: fastgd._kernels puts
    fastgd._intrinsics.fma in its place). For a sum of two products, which the fastmath flags ("contract",
    -ffp-contract=fast) let the compiler fuse either way: the one it picks depends on the code around it, so
    the same kernel gave other bits when compiled in the process than when loaded from Numba's cache."""
    if cython.compiled:
        return math.fma(a, b, c)
    return a * b + c  # plain Python (fastgd._kernels replaces this function before anything runs it)


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def _heavy_ball(th: Vec, G: CVec, S: Vec, P: Index, t: cython.double, lr: cython.double, wd: cython.double,
                mu: cython.double, damp: cython.double, nesterov: cython.bint, eta: Vec,
                want_eta: cython.bint) -> cython.void:
    """b ← g on the first step, then μb + (1 − τ)g (slot 0, momentum_buffer); θ ← θ − γb, or γ(g + μb)."""
    steady = (1.0 - damp) / (1.0 - mu)
    e = lr * (1.0 + mu * steady) if nesterov else lr * steady
    for q in range(P):
        g = G[q] + wd * th[q]
        # the decayed buffer and the new gradient rounded once, as fma(μ, b, (1 − τ)g) in both backends (a
        # plain μb + (1 − τ)g may be fused either way: see fmadd)
        b = g if t == 1.0 else fmadd(mu, S[q], (1.0 - damp) * g)
        S[q] = b
        th[q] -= lr * (g + mu * b if nesterov else b)
        if want_eta:
            eta[q] = e


MOMENTUM = cython.declare(cython.int, 1)
MOMENTUM_HP = HP_COMMON + ("momentum", "dampening")


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def momentum_step(th: Vec, G: CVec, S: Vec, P: Index, scalars: Vec, hp: CVec, lr: cython.double, eta: Vec,
                  want_eta: cython.bint) -> cython.void:
    _heavy_ball(th, G, S, P, scalars[0], lr, hp[1], hp[2], hp[3], False, eta, want_eta)


NESTEROV = cython.declare(cython.int, 2)
NESTEROV_HP = HP_COMMON + ("momentum",)


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def nesterov_step(th: Vec, G: CVec, S: Vec, P: Index, scalars: Vec, hp: CVec, lr: cython.double, eta: Vec,
                  want_eta: cython.bint) -> cython.void:
    _heavy_ball(th, G, S, P, scalars[0], lr, hp[1], hp[2], 0.0, True, eta, want_eta)  # torch: dampening 0


ADAGRAD = cython.declare(cython.int, 3)
ADAGRAD_HP = HP_COMMON + ("lr_decay", "eps")


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def adagrad_step(th: Vec, G: CVec, S: Vec, P: Index, scalars: Vec, hp: CVec, lr: cython.double, eta: Vec,
                 want_eta: cython.bint) -> cython.void:
    """sum ← sum + g² (slot 0); θ ← θ − γ/(1 + (t − 1)η) · g/(√sum + ε)."""
    wd = hp[1]
    clr = lr / (1.0 + (scalars[0] - 1.0) * hp[2])
    eps = hp[3]
    for q in range(P):
        g = G[q] + wd * th[q]
        S[q] += g * g
        den = math.sqrt(S[q]) + eps
        th[q] -= clr * g / den
        if want_eta:
            eta[q] = clr / den


RMSPROP = cython.declare(cython.int, 4)
RMSPROP_HP = HP_COMMON + ("alpha", "eps", "momentum", "centered")


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def rmsprop_step(th: Vec, G: CVec, S: Vec, P: Index, scalars: Vec, hp: CVec, lr: cython.double, eta: Vec,
                 want_eta: cython.bint) -> cython.void:
    """v ← αv + (1 − α)g²; centered: ḡ ← αḡ + (1 − α)g, v − ḡ²; b ← μb + g/(√v + ε); θ ← θ − γb."""
    wd = hp[1]
    alpha = hp[2]
    eps = hp[3]
    mom = hp[4]
    centered = hp[5]  # a flag: 0.0 or 1.0
    buf = P  # slot offsets: square_avg 0, momentum_buffer P, grad_avg 2P
    gavg = 2 * P
    for q in range(P):
        g = G[q] + wd * th[q]
        S[q] = alpha * S[q] + (1.0 - alpha) * g * g
        if centered:
            S[gavg + q] = alpha * S[gavg + q] + (1.0 - alpha) * g
            avg = math.sqrt(S[q] - S[gavg + q] * S[gavg + q]) + eps
        else:
            avg = math.sqrt(S[q]) + eps
        if mom > 0.0:
            S[buf + q] = mom * S[buf + q] + g / avg
            th[q] -= lr * S[buf + q]
        else:
            th[q] -= lr * g / avg
        if want_eta:
            eta[q] = lr / (avg * (1.0 - mom))


ADAM = cython.declare(cython.int, 5)
ADAMW = cython.declare(cython.int, 6)
ADAM_HP = ADAMW_HP = HP_COMMON + ("beta1", "beta2", "eps", "amsgrad", "bias_correction")


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def _adam(th: Vec, G: CVec, S: Vec, P: Index, t: cython.double, hp: CVec, lr: cython.double, eta: Vec,
          want_eta: cython.bint, decoupled: cython.bint) -> cython.void:
    """Bias-corrected moments (slots exp_avg, exp_avg_sq, max_exp_avg_sq); θ ← θ − γ m̂/(√v̂ + ε)."""
    wd = hp[1]
    b1 = hp[2]
    b2 = hp[3]
    eps = hp[4]
    amsgrad = hp[5]  # a flag: 0.0 or 1.0
    if hp[6]:  # bias correction (torch always corrects; switching it off is a fastgd extension)
        step = lr / (1.0 - b1**t)
        sbc2 = math.sqrt(1.0 - b2**t)
    else:
        step = lr
        sbc2 = 1.0
    shrink = 1.0 - lr * wd
    vmax = 2 * P  # slot offset of max_exp_avg_sq
    for q in range(P):
        g = _decayed(th, G, q, wd, shrink, decoupled)
        _moments(S, P, q, g, b1, b2)
        if amsgrad:
            S[vmax + q] = max(S[vmax + q], S[P + q])
            den = math.sqrt(S[vmax + q]) / sbc2 + eps
        else:
            den = math.sqrt(S[P + q]) / sbc2 + eps
        th[q] -= step * S[q] / den
        if want_eta:
            eta[q] = step / den


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def adam_step(th: Vec, G: CVec, S: Vec, P: Index, scalars: Vec, hp: CVec, lr: cython.double, eta: Vec,
              want_eta: cython.bint) -> cython.void:
    _adam(th, G, S, P, scalars[0], hp, lr, eta, want_eta, False)


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def adamw_step(th: Vec, G: CVec, S: Vec, P: Index, scalars: Vec, hp: CVec, lr: cython.double, eta: Vec,
               want_eta: cython.bint) -> cython.void:
    _adam(th, G, S, P, scalars[0], hp, lr, eta, want_eta, True)


ADAMAX = cython.declare(cython.int, 7)
ADAMAX_HP = HP_COMMON + ("beta1", "beta2", "eps")


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def adamax_step(th: Vec, G: CVec, S: Vec, P: Index, scalars: Vec, hp: CVec, lr: cython.double, eta: Vec,
                want_eta: cython.bint) -> cython.void:
    """m ← β₁m + (1 − β₁)g (slot 0); u ← max(β₂u, abs(g) + ε) (slot 1); θ ← θ − γ m/((1 − β₁ᵗ)u)."""
    wd = hp[1]
    b1 = hp[2]
    b2 = hp[3]
    eps = hp[4]
    clr = lr / (1.0 - b1 ** scalars[0])
    for q in range(P):
        g = G[q] + wd * th[q]
        S[q] = b1 * S[q] + (1.0 - b1) * g
        S[P + q] = max(b2 * S[P + q], abs(g) + eps)
        th[q] -= clr * S[q] / S[P + q]
        if want_eta:
            eta[q] = clr / S[P + q]


NADAM = cython.declare(cython.int, 8)
NADAM_HP = HP_COMMON + ("beta1", "beta2", "eps", "momentum_decay", "decoupled_weight_decay")


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def nadam_step(th: Vec, G: CVec, S: Vec, P: Index, scalars: Vec, hp: CVec, lr: cython.double, eta: Vec,
               want_eta: cython.bint) -> cython.void:
    """Adam with Nesterov momentum and momentum decay ψ (μₜ = β₁(1 − ½·0.96^(tψ)), product in scalars[1])."""
    t = scalars[0]
    wd = hp[1]
    b1 = hp[2]
    b2 = hp[3]
    eps = hp[4]
    psi = hp[5]
    bc2 = 1.0 - b2**t
    mu = b1 * (1.0 - 0.5 * 0.96 ** (t * psi))
    mu_next = b1 * (1.0 - 0.5 * 0.96 ** ((t + 1.0) * psi))
    scalars[1] *= mu
    mu_prod = scalars[1]
    c1 = lr * (1.0 - mu) / (1.0 - mu_prod)
    c2 = lr * mu_next / (1.0 - mu_prod * mu_next)
    shrink = 1.0 - lr * wd
    for q in range(P):
        g = _decayed(th, G, q, wd, shrink, hp[6] != 0.0)  # hp[6]: decoupled weight decay
        _moments(S, P, q, g, b1, b2)
        den = math.sqrt(S[P + q] / bc2) + eps
        th[q] -= c1 * g / den
        th[q] -= c2 * S[q] / den
        if want_eta:
            eta[q] = (c1 + c2) / den


ADADELTA = cython.declare(cython.int, 9)
ADADELTA_HP = HP_COMMON + ("rho", "eps")


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def adadelta_step(th: Vec, G: CVec, S: Vec, P: Index, scalars: Vec, hp: CVec, lr: cython.double, eta: Vec,
                  want_eta: cython.bint) -> cython.void:
    """v ← ρv + (1 − ρ)g² (slot 0); Δ = √(u + ε)/√(v + ε)·g; u ← ρu + (1 − ρ)Δ² (slot 1); θ ← θ − γΔ."""
    wd = hp[1]
    rho = hp[2]
    eps = hp[3]
    for q in range(P):
        g = G[q] + wd * th[q]
        S[q] = rho * S[q] + (1.0 - rho) * g * g
        scale = math.sqrt(S[P + q] + eps) / math.sqrt(S[q] + eps)
        delta = scale * g
        S[P + q] = rho * S[P + q] + (1.0 - rho) * delta * delta
        th[q] -= lr * delta
        if want_eta:
            eta[q] = lr * scale


# ----------------------------------------------------------------------------------------------------------
# dispatch, schedule and standardization (what the compiled epochs call once per batch)


# State rows (slots) each optimizer code needs, in code order: the kernels check the state they are handed
# against it (fastgd.optimizers' ``slots`` name them; a test checks the two agree).
STATE_ROWS = (0, 1, 1, 1, 3, 3, 3, 2, 2, 2)


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def update(code: cython.int, th: Vec, G: CVec, S: Vec, P: Index, scalars: Vec, hp: CVec, lr: cython.double,
           eta: Vec, want_eta: cython.bint) -> cython.void:
    """One step of optimizer ``code`` on every coordinate; an unknown code sets th to NaN (reported as divergence)."""
    if code == SGD:
        sgd_step(th, G, S, P, scalars, hp, lr, eta, want_eta)
    elif code == MOMENTUM:
        momentum_step(th, G, S, P, scalars, hp, lr, eta, want_eta)
    elif code == NESTEROV:
        nesterov_step(th, G, S, P, scalars, hp, lr, eta, want_eta)
    elif code == ADAGRAD:
        adagrad_step(th, G, S, P, scalars, hp, lr, eta, want_eta)
    elif code == RMSPROP:
        rmsprop_step(th, G, S, P, scalars, hp, lr, eta, want_eta)
    elif code == ADAM:
        adam_step(th, G, S, P, scalars, hp, lr, eta, want_eta)
    elif code == ADAMW:
        adamw_step(th, G, S, P, scalars, hp, lr, eta, want_eta)
    elif code == ADAMAX:
        adamax_step(th, G, S, P, scalars, hp, lr, eta, want_eta)
    elif code == NADAM:
        nadam_step(th, G, S, P, scalars, hp, lr, eta, want_eta)
    elif code == ADADELTA:
        adadelta_step(th, G, S, P, scalars, hp, lr, eta, want_eta)
    else:
        for q in range(P):
            th[q] = NAN


# Learning-rate schedule codes (fastgd.schedules packs sched = [code, warm-up steps, params...]).
CONSTANT = cython.declare(cython.int, 0)
INVSCALING = cython.declare(cython.int, 1)
EXPONENTIAL = cython.declare(cython.int, 2)
STEP = cython.declare(cython.int, 3)
COSINE = cython.declare(cython.int, 4)


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def lr_at(lr: cython.double, sched: CVec, t: cython.double) -> cython.double:
    """Learning rate of update number ``t`` (t = 1 for the first update); see fastgd.schedules."""
    warm = sched[1]
    if warm > 0 and t <= warm:
        return lr * t / warm
    u = t - warm  # updates since the end of warm-up, >= 1
    code = sched[0]
    if code == CONSTANT:
        return lr
    if code == INVSCALING:  # lr / u**power_t
        return lr / u ** sched[2]
    if code == EXPONENTIAL:  # lr * gamma**(u - 1)
        return lr * sched[2] ** (u - 1.0)
    if code == STEP:  # lr * gamma**floor((u - 1) / step_size)
        return lr * sched[2] ** math.floor((u - 1.0) / sched[3])
    if code == COSINE:  # cosine annealing from lr to eta_min over T_max updates, then eta_min
        T = sched[2]
        eta_min = sched[3]
        v = min(u - 1.0, T)
        return eta_min + (lr - eta_min) * (1.0 + math.cos(math.pi * v / T)) / 2.0
    return NAN  # unknown code: poisons the weights so the caller reports it


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def raw_theta(th: CVec, stdz: CVec, k: Index, d: Index, raw: Vec) -> cython.void:
    """Parameters in the data's units from the standardized ones: raw = what X and Y meet (flat, as th).

    ``stdz = [x_mean (d), x_scale (d), y_mean (k), y_scale (k)]``. Per output j, with w = th[j, :d] and
    b = th[j, d]: raw weights y_scale·w / x_scale, raw intercept y_scale·(b − Σ w·x_mean / x_scale) + y_mean.
    O(k·d): this is how standardization costs nothing per row.
    """
    p = d + 1
    for j in range(k):
        o = j * p
        ys = stdz[2 * d + k + j]
        shift = 0.0
        for c in range(d):
            v = th[o + c] / stdz[d + c]
            shift += v * stdz[c]
            raw[o + c] = ys * v
        raw[o + d] = ys * (th[o + d] - shift) + stdz[2 * d + j]


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def chan_merge(cmean: CVec, cm2: CVec, cw: CVec, nch: Index, d: Index, mean: Vec, m2: Vec) -> cython.double:
    """Merge per-chunk column statistics (row-major (nch, d) means and centred sums of squares, and the
    chunks' weights) into ``mean`` and ``m2`` (zeros on entry), in chunk order (Chan et al.): the column
    statistics of standardization. Returns the total weight."""
    total: cython.double = 0.0
    for c in range(nch):
        wc = cw[c]
        if wc <= 0.0:
            continue
        new = total + wc
        for j in range(d):
            delta = cmean[c * d + j] - mean[j]
            mean[j] += delta * (wc / new)
            m2[j] += cm2[c * d + j] + delta * delta * (total * wc / new)
        total = new
    return total


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def column_moments(x: cython.pointer[cython.const[cython.floating]], sw: cython.pointer[cython.const[cython.double]],
                   weighted: cython.bint, start: cython.Py_ssize_t, stop: cython.Py_ssize_t,
                   mean: cython.pointer[cython.double], m2: cython.pointer[cython.double]) -> cython.double:
    """The column statistics of one column (y, usually): weighted mean and centred sum of squares into ``mean``
    and ``m2`` (zeros on entry), returning the total weight. Looping over the columns of each row, a single column's sums
    would be one chain of dependent adds (about 40x slower); here row i adds into partial sum i mod 4, which
    compilers keep in one vector register. The chunks of rows, not the threads, fix the order: the same bits
    for any thread count."""
    a0: cython.double = 0.0
    a1: cython.double = 0.0
    a2: cython.double = 0.0
    a3: cython.double = 0.0
    w0: cython.double = 0.0
    w1: cython.double = 0.0
    w2: cython.double = 0.0
    w3: cython.double = 0.0
    if stop <= start:
        return 0.0
    # the sums of x - x0 (x0 the first value of positive weight: the mean of values that are all one value is that
    # value, bit for bit; of 3.7 ten times the plain sum over 10 was 3.7000000000000006, and its rounding, a
    # constant residual, was the gradient the adaptive optimizers of a partial_fit stream amplified to steps of
    # their full rate)
    x0: cython.double = x[start]
    if weighted:  # the first value of positive weight (a row of weight 0 is not in the data, whatever its value)
        for i in range(start, stop):
            if sw[i] > 0.0:
                x0 = x[i]
                break
    full = start + (stop - start) // 4 * 4
    for i in range(start, full, 4):
        if weighted:
            a0 += sw[i] * (x[i] - x0)
            a1 += sw[i + 1] * (x[i + 1] - x0)
            a2 += sw[i + 2] * (x[i + 2] - x0)
            a3 += sw[i + 3] * (x[i + 3] - x0)
            w0 += sw[i]
            w1 += sw[i + 1]
            w2 += sw[i + 2]
            w3 += sw[i + 3]
        else:
            a0 += x[i] - x0
            a1 += x[i + 1] - x0
            a2 += x[i + 2] - x0
            a3 += x[i + 3] - x0
    w: cython.double = (w0 + w1) + (w2 + w3) if weighted else 1.0 * (full - start)
    total: cython.double = (a0 + a1) + (a2 + a3)
    for i in range(full, stop):
        s = sw[i] if weighted else 1.0
        total += s * (x[i] - x0)
        w += s
    if w <= 0.0:
        return w
    mu: cython.double = x0 + total / w
    a0 = a1 = a2 = a3 = 0.0
    for i in range(start, full, 4):
        r0 = x[i] - mu
        r1 = x[i + 1] - mu
        r2 = x[i + 2] - mu
        r3 = x[i + 3] - mu
        if weighted:
            a0 += sw[i] * r0 * r0
            a1 += sw[i + 1] * r1 * r1
            a2 += sw[i + 2] * r2 * r2
            a3 += sw[i + 3] * r3 * r3
        else:
            a0 += r0 * r0
            a1 += r1 * r1
            a2 += r2 * r2
            a3 += r3 * r3
    q: cython.double = (a0 + a1) + (a2 + a3)
    for i in range(full, stop):
        s = sw[i] if weighted else 1.0
        r = x[i] - mu
        q += s * r * r
    mean[0] = mu
    m2[0] = q
    return w


# ----------------------------------------------------------------------------------------------------------
# the epoch's layout and the step after a batch's gradient, for both backends (only the hot row loops and the
# thread protocol are written per backend)

# Gradient path: AUTO picks by batch size; the other two force one (for tests and benchmarks).
PATH_AUTO = cython.declare(cython.int, 0)
PATH_SEQUENTIAL = cython.declare(cython.int, 1)
PATH_PARALLEL = cython.declare(cython.int, 2)
CHUNK_ROWS = cython.declare(cython.Py_ssize_t, 64)  # rows per chunk of a batch's gradient
MAX_CHUNKS = cython.declare(cython.Py_ssize_t, 256)  # above CHUNK_ROWS * MAX_CHUNKS rows, chunks grow instead
# Bytes all chunk buffers of a batch (or all group sums of batches_stats) may take together: with many
# coordinates (CSR with d = 2**20: 8 MB per buffer) fewer, larger chunks are used, so the memory of a fit
# never grows with chunks x d. A function of the shape only, never of the thread count.
CHUNK_BUDGET_BYTES = cython.declare(cython.Py_ssize_t, 32 << 20)
PAD = cython.declare(cython.Py_ssize_t, 8)  # float64 per cache line: buffers are whole lines plus a spare one
# Auto path: the parallel epoch is used when a batch spans more than one chunk and holds at least this many
# multiply-adds (rows x features x outputs; benchmarks/crossover.py measures the crossover) ...
PAR_MIN_WORK = cython.declare(cython.longlong, 5000)
# ... with at most one thread per PAR_WORK_PER_THREAD multiply-adds of a batch and one per chunk: a thread
# without a task of its own only contends for the counters (see epoch_threads).
PAR_WORK_PER_THREAD = cython.declare(cython.longlong, PAR_MIN_WORK // 2)
# The other parallel entry points (predict, column and batch statistics) start a thread only per this many
# multiply-adds: below it, launching the region costs more than the work it shares.
REGION_MIN_WORK = cython.declare(cython.longlong, 32768)
# Dense column statistics: chunks of about STATS_CHUNK_BYTES of float64 rows (each chunk's sums are shifted by
# its first row, so short chunks keep that shift near their mean), at most STATS_BUDGET_BYTES of per-chunk
# statistics.
STATS_CHUNK_BYTES = cython.declare(cython.Py_ssize_t, 512 << 10)
STATS_BUDGET_BYTES = cython.declare(cython.Py_ssize_t, 8 << 20)
# A thread waiting for the next batch spins this many times (a few tens of microseconds), then sleeps on a
# futex: with more threads than cores, spinning burns the core a descheduled thread needs.
SPINS_BEFORE_SLEEP = cython.declare(cython.int, 2000)
PREFETCH_BYTES = cython.declare(cython.int, 8192)  # how far ahead of the current row X is prefetched, into L2
# Rows per piece of work of predict and of the read of X (read_floor, the finiteness check): what region_threads
# counts as tasks
PREDICT_ROWS = cython.declare(cython.Py_ssize_t, 1024)
READ_ROWS = cython.declare(cython.Py_ssize_t, 4096)
# The split pass of CSR batch sums in one group (batches_stats where its buffer budget allows one group: a
# full-batch pass at large d): rows per task of its residuals, and about this many non-zeros (times outputs) per
# block of rows (read twice, by the residuals and by the sums: in cache the second time). Neither changes a bit.
SPLIT_ROWS = cython.declare(cython.Py_ssize_t, 256)
SPLIT_NNZ = cython.declare(cython.Py_ssize_t, 1 << 17)
# The constants above, by name: the native module lists its compiled values under these names (CODES) and a
# test compares them with this module's and the Numba kernels'.
LAYOUT = ("PATH_AUTO", "PATH_SEQUENTIAL", "PATH_PARALLEL", "CHUNK_ROWS", "MAX_CHUNKS", "CHUNK_BUDGET_BYTES", "PAD",
          "PAR_MIN_WORK", "PAR_WORK_PER_THREAD", "REGION_MIN_WORK", "STATS_CHUNK_BYTES", "STATS_BUDGET_BYTES",
          "SPINS_BEFORE_SLEEP", "PREFETCH_BYTES", "PREDICT_ROWS", "READ_ROWS", "SPLIT_ROWS", "SPLIT_NNZ")


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def chunk_stride(m: Index) -> Index:
    """Doubles between two chunk buffers of m + 1 sums (the gradient and the loss): whole cache lines and a
    spare one, so no two threads' buffers share a line."""
    return (m + 1 + PAD - 1) // PAD * PAD + PAD


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def max_chunks(m: Index) -> Index:
    """Most chunk buffers of ``m + 1`` sums a batch may use: MAX_CHUNKS, fewer when they would exceed
    CHUNK_BUDGET_BYTES together (at least one)."""
    return max(1, min(MAX_CHUNKS, CHUNK_BUDGET_BYTES // (chunk_stride(m) * 8)))


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def batches_per_group(nb: Index, m: Index, loss_only: cython.bint) -> Index:
    """Batches per group of the evaluation passes over ``nb`` batches with ``m = k * (d + 1)`` coordinates (a
    function of their number and the shape only, never of the thread count): at most max_chunks(m) groups for
    batches_stats, whose groups hold m + 2 sums each; at most MAX_CHUNKS for batches_loss (``loss_only``),
    whose groups hold two."""
    gmax: Index = MAX_CHUNKS if loss_only else max_chunks(m)
    return max(1, (nb + gmax - 1) // gmax)


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def chunk_rows(batch_size: Index, m: Index) -> Index:
    """Rows per chunk for a batch of ``batch_size`` rows with ``m = k * (d + 1)`` coordinates (a function of
    the batch size and shape only, never of the thread count)."""
    nmax = max_chunks(m)
    if batch_size <= CHUNK_ROWS * nmax:
        return CHUNK_ROWS
    return ((batch_size + nmax - 1) // nmax + 7) // 8 * 8


@cython.ccall
@cython.nogil
@cython.exceptval(check=False)
def epoch_threads(batch_size: cython.longlong, d: cython.longlong, k: cython.longlong, n_threads: cython.longlong,
                  path: cython.int) -> cython.longlong:
    """Threads the parallel epoch runs with for batches of ``batch_size`` rows (``d`` features, ``k``
    outputs), or 0 for the sequential path (a batch of one chunk always takes it).

    PATH_PARALLEL: one per chunk at most. PATH_AUTO: also at most one per PAR_WORK_PER_THREAD multiply-adds,
    and sequential below two. The chunks (and so the results) never depend on the answer: it only decides
    how many threads share them.
    """
    ch: cython.longlong = chunk_rows(batch_size, k * (d + 1))
    nch = (batch_size + ch - 1) // ch
    if nch <= 1 or path == PATH_SEQUENTIAL:
        return 0
    if path == PATH_PARALLEL:
        return min(max(n_threads, 1), nch)
    t = min(n_threads, nch, batch_size * d * k // PAR_WORK_PER_THREAD)
    return t if t >= 2 else 0


# The native lazy CSR epoch's team (_native._lazy_team): threads that share each batch's columns, at most one
# per LAZY_TEAM_VALUES stored values of an average batch, and only where the epoch's records take at least
# LAZY_TEAM_MIN_BYTES (beyond the caches, where a batch waits on a cache miss per touched column: the team's
# members wait on theirs at once). A batch costs two hand-overs, and each member scans all the batch's
# values. 2-core Intel Xeon, 100,000 Zipf rows of 30 values, Adam, ms an epoch one thread / team of two:
# d = 2^20 (32 MiB of records) B = 32 55 / 57, B = 64 59 / 50, B = 256 59 / 44, B = 1024 52 / 43; d = 2^18
# (8 MiB) B = 256 42 / 40, B = 64 47 / 50; d = 2^14 to 2^17 slower at every batch size (docs/design.md).
LAZY_TEAM_VALUES = cython.declare(cython.longlong, 768)
LAZY_TEAM_MIN_BYTES = cython.declare(cython.longlong, 1 << 24)
# The team's scratch (each member's lists sized for the widest batch) takes at most 1 / LAZY_TEAM_SCRATCH_SHARE of
# the records' size (LAZY_TEAM_MIN_BYTES at least): a larger team, or batches too wide, run fewer members or
# none (2^20 columns, Adam: 16 MiB, 24 members at batches of 256 rows of 30 values, 6 at 1024, none past ~3,100)
LAZY_TEAM_SCRATCH_SHARE = cython.declare(cython.longlong, 2)


@cython.ccall
@cython.nogil
@cython.exceptval(check=False)
def lazy_team_threads(batch_values: cython.longlong, record_bytes: cython.longlong, n_threads: cython.longlong,
                      path: cython.int) -> cython.longlong:
    """Threads of the native lazy CSR epoch's team for batches of ``batch_values`` stored values on average and
    records of ``record_bytes`` (1: the sequential loop). PATH_SEQUENTIAL: 1; PATH_PARALLEL: every thread (the
    tests' way to run the team at any size); PATH_AUTO: LAZY_TEAM_VALUES and LAZY_TEAM_MIN_BYTES. The results
    never depend on the answer: each column's sums are added in row order, whichever thread owns it."""
    if path == PATH_SEQUENTIAL:
        return 1
    if path == PATH_PARALLEL:
        return max(n_threads, 1)
    if record_bytes < LAZY_TEAM_MIN_BYTES:
        return 1
    return max(1, min(n_threads, batch_values // LAZY_TEAM_VALUES))


@cython.ccall
@cython.nogil
@cython.exceptval(check=False)
def region_threads(n_threads: cython.longlong, tasks: cython.longlong, work: cython.longlong) -> cython.longlong:
    """Threads a parallel region of ``tasks`` independent pieces holding ``work`` multiply-adds in all is
    worth starting with: at most one per piece and one per REGION_MIN_WORK; 1 means open no region."""
    return max(1, min(n_threads, tasks, work // REGION_MIN_WORK))


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def stats_rows(n: Index, d: Index) -> Index:
    """Rows per chunk of the dense column statistics of n x d data (a function of the shape only)."""
    most = max(MAX_CHUNKS, STATS_BUDGET_BYTES // (16 * max(d, 1)))
    return max(STATS_CHUNK_BYTES // (8 * max(d, 1)), (n + most - 1) // most, 1)


@cython.ccall
@cython.nogil
@cython.exceptval(check=False)
def split_block_rows(nnz: Index, n: Index, k: Index) -> Index:
    """Rows per block of the split CSR pass over data of n rows holding nnz values, for k outputs: about
    SPLIT_NNZ values times outputs in all (a block's k residuals per row are buffered twice, so many outputs
    take fewer rows), in whole tasks of SPLIT_ROWS rows (any block size gives the same sums)."""
    per_row = max(1, nnz // max(n, 1))
    return max(1, SPLIT_NNZ // (per_row * max(k, 1) * SPLIT_ROWS)) * SPLIT_ROWS


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def split_blocks(ids: CLVec, nb: Index, batch_size: Index, n: Index, rows: Index, out: LVec) -> Index:
    """The blocks of the split CSR pass over batches ``ids`` (of ``batch_size`` rows of n): each batch's rows in
    runs of ``rows`` (split_block_rows) from its start, as out[4 g : 4 g + 4] = (lo, hi, batch start, batch
    stop) for block g, in pass order. ``out`` holds 4 · split_block_count values; returns the number of blocks."""
    g: Index = 0
    for bi in range(nb):
        start: Index = ids[bi] * batch_size
        stop: Index = min(start + batch_size, n)
        lo: Index = start
        while lo < stop:
            out[4 * g] = lo
            out[4 * g + 1] = min(lo + rows, stop)
            out[4 * g + 2] = start
            out[4 * g + 3] = stop
            lo += rows
            g += 1
    return g


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def split_block_count(nb: Index, batch_size: Index, rows: Index) -> Index:
    """An upper bound on split_blocks' count for ``nb`` batches."""
    return nb * ((batch_size + rows - 1) // rows)


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def batch_weight(sw: CVec, weighted: cython.bint, start: Index, stop: Index) -> cython.double:
    """The weight of rows [start, stop): the sum of their sample weights, or their number."""
    if not weighted:
        return 1.0 * (stop - start)
    W = 0.0
    for i in range(start, stop):
        W += sw[i]
    return W


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def finish_batch(G: Vec, W: cython.double, th: Vec, raw: Vec, S: Vec, scalars: Vec, code: cython.int, hp: CVec,
                 sched: CVec, l1: cython.double, l2: cython.double, wnorm: cython.double, lcode: cython.int,
                 la: cython.double, fit_intercept: cython.bint, eta: Vec, k: Index, d: Index, acc: Vec,
                 stdz: CVec, std: cython.bint, avg: Vec, averaging: cython.bint) -> cython.void:
    """Everything after a batch's raw sums G = [Σ s r x, Σ s r², ...] (the loss's slope and value with another
    loss) of weight W: scale, penalize, update, the l1 proximal step, average.

    ``acc[0]`` and ``acc[1]`` accumulate the epoch's weighted loss (in the data's units) and weight.
    ``wnorm`` > 0 (pen[2], the mean batch weight): every batch's sums are divided by this fixed weight, so a
    short or light batch counts for what it holds and the fixed point is the full objective's; 0: by the
    batch's own weight (torch's mean loss per batch). ``lcode``, ``la``: the loss and its parameter, whose
    ``loss_unit`` sets the standardized objective's unit. With standardization (``std``; ``stdz`` as in
    raw_theta) the sums, taken at the raw parameters, become the gradient in the standardized coordinates by an O(k·d) correction (centring by
    x_mean, scaling by x_scale and y_scale), the penalties act on the raw weights, and ``raw`` is refreshed
    after the update. ``averaging``: ``avg`` (P values and a count) receives the running mean of the
    parameters. ``eta`` (P values) is written only when l1 > 0.
    """
    if not W > 0.0:  # a batch whose weights are all zero carries no information
        return
    p = d + 1
    P = k * p
    acc[0] += G[P]
    acc[1] += W
    scale = 2.0 / (wnorm if wnorm > 0.0 else W)
    for j in range(k):
        o = j * p
        if std:
            # the standardized objective is the raw one over y_scale·ys (loss_unit): ys is y_scale for the
            # squared losses and 1 for the absolute ones, whose penalties scale by y_scale / ys instead
            ys = loss_unit(lcode, la, stdz[2 * d + k + j])
            l2j = unit_l2(l2, ys, stdz[2 * d + k + j])
            gb = G[o + d]
            for c in range(d):
                xs = stdz[d + c]
                G[o + c] = (G[o + c] - stdz[c] * gb) * (scale / (xs * ys)) + (l2j / (xs * xs)) * th[o + c]
            G[o + d] = gb * (scale / ys) if fit_intercept else 0.0
        else:
            for c in range(d):
                G[o + c] = G[o + c] * scale + l2 * th[o + c]
            G[o + d] = G[o + d] * scale if fit_intercept else 0.0
    scalars[0] += 1.0
    update(code, th, G, S, P, scalars, hp, lr_at(hp[0], sched, scalars[0]), eta, l1 > 0.0)
    if l1 > 0.0:
        for j in range(k):
            o = j * p
            for c in range(d):
                thr = eta[o + c] * l1
                if std:
                    thr = thr / (loss_unit(lcode, la, stdz[2 * d + k + j]) * stdz[d + c])
                v = th[o + c]
                th[o + c] = v - thr if v > thr else (v + thr if v < -thr else 0.0)
    if std:
        raw_theta(th, stdz, k, d, raw)
    if averaging:
        cnt = avg[P] + 1.0
        avg[P] = cnt
        for q in range(P):
            avg[q] += (th[q] - avg[q]) / cnt


# CSR arrays: column indices and row pointers int32 or int64, independently (scipy may give int32 indices with an
# int64 indptr); compiled, one specialization per combination
ColIndex = cython.fused_type(cython.int, cython.longlong)
RowPtr = cython.fused_type(cython.int, cython.longlong)


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def csr_row_sums(data: cython.pointer[cython.const[cython.floating]], indices: cython.pointer[cython.const[ColIndex]],
                 lo: Index, hi: Index, mark: cython.pointer[cython.longlong], i: Index, val: Vec,
                 cols: cython.pointer[cython.longlong]) -> Index:
    """Row i's distinct columns into cols[:count] and their summed values into val[col] (entries [lo, hi) of a
    CSR matrix; duplicate entries mean their sum); ``mark[col] == i`` marks a column seen in this row. Returns
    count."""
    cnt: Index = 0
    for q in range(lo, hi):
        c = indices[q]
        if mark[c] != i:
            mark[c] = i
            val[c] = 0.0
            cols[cnt] = c
            cnt += 1
        val[c] += data[q]
    return cnt


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def csr_moments(data: cython.pointer[cython.const[cython.floating]], indices: cython.pointer[cython.const[ColIndex]],
                indptr: cython.pointer[cython.const[RowPtr]], n: Index, d: Index, sw: CVec, weighted: cython.bint,
                mean: Vec, m2: Vec, maxabs: Vec, stored: Vec, mark: cython.pointer[cython.longlong], val: Vec,
                cols: cython.pointer[cython.longlong]) -> cython.double:
    """Column statistics of the n x d CSR matrix (data, indices, indptr) with row weights ``sw`` (when
    ``weighted``): weighted mean, centred sum of squares (the implicit zeros count), largest absolute value (of
    the rows of positive weight) and the weight of the rows that store the column, into ``mean``, ``m2``,
    ``maxabs`` and ``stored`` (zeros on entry); returns the total weight. Two passes (the mean first, then
    centred squares), so a column with a large offset keeps its small spread. Scratch: ``mark`` (d, all -1 on
    entry), ``val`` (d), ``cols`` (the most stored entries of a row)."""
    total = 0.0
    for i in range(n):  # pass 1: weights, sums, largest values
        s = sw[i] if weighted else 1.0
        total += s
        cnt = csr_row_sums(data, indices, indptr[i], indptr[i + 1], mark, i, val, cols)
        for t in range(cnt):
            c = cols[t]
            mean[c] += s * val[c]
            stored[c] += s
            if s > 0.0:  # a row of zero weight is not in the data: its values set no scale
                maxabs[c] = max(maxabs[c], abs(val[c]))
    if not total > 0.0:
        return total
    for c in range(d):
        mean[c] /= total
        mark[c] = -1
    for i in range(n):  # pass 2: centred squares of the stored values
        s = sw[i] if weighted else 1.0
        cnt = csr_row_sums(data, indices, indptr[i], indptr[i + 1], mark, i, val, cols)
        for t in range(cnt):
            c = cols[t]
            r = val[c] - mean[c]
            m2[c] += s * r * r
    for c in range(d):  # the implicit zeros, each (0 - mean)^2
        m2[c] += max(total - stored[c], 0.0) * mean[c] * mean[c]
    return total


# ----------------------------------------------------------------------------------------------------------
# lazy updates (CSR batches): a batch updates only the coordinates it touches (its rows' columns, the
# centred columns and the intercepts); the others are caught up when next touched (and at the end of an
# epoch), in closed form. A coordinate untouched by a batch has zero data gradient; its update is then:
# * SGD: θ ← (1 − γλ)θ with λ the coordinate's l2 coefficient (the penalty's, plus torch's coupled
#   weight_decay): a power of (1 − γλ) at a constant rate (the scale factor of scikit-learn's SGD);
# * momentum and Nesterov (no l2), RMSprop with momentum: the buffer decays geometrically (b ← μb) and θ
#   moves by γ·b each step: geometric sums;
# * Adagrad: nothing moves; RMSprop and Adadelta: only their averages decay (powers of alpha, rho).
# These are exact (LAZY_EXACT: the dense update's mathematics) where the rate is constant between touches
# (the default "adaptive" rate changes between epochs only). The Adam family, Adamax and NAdam move a
# coordinate with zero gradient with no closed form (eps, bias corrections): their lazy form is the named
# approximation of torch's SparseAdam and TensorFlow's LazyAdam (an untouched coordinate and its state are
# left as they are, decoupled weight decay too, which shrinks it in the updates that touch it, as
# TensorFlow Addons' LazyAdam with decoupled weight decay; an l2 penalty's gradient is part of
# a coordinate's gradient in the batches that touch it, as an l2 term in LazyAdam's loss, and nothing in
# the others), used only in fastgd's standardized mode and without coupled weight decay, never with
# standardize=False. The rest (l1, l2 or weight decay with another adaptive rule or momentum) update densely.
# LazyAdam's l2 alone moves the fixed point: a column that a share p_j of the batches touch gets p_j·l2·w_j
# of penalty gradient per batch in expectation, so a rare column is penalized less (on small hard data its
# fixed point measured 35 % above Ridge's objective). So it is frequency-weighted (the named approximation
# "LazyAdam with a frequency-weighted penalty"): a touched coordinate of column j gets l2·f_j·w_j with
# f_j = nb / nb_j, nb the batches of the epoch and nb_j those of them that store column j (the batch layout
# is fixed for a fit: count_column_batches, once per fit), 1 for a centred column (every batch touches it).
# Over an epoch each coordinate then receives nb penalty gradients' worth, as in the dense update (at its
# values when touched), so the expected penalty per epoch, and the fixed point in expectation, are the
# penalized objective's, at the cost of what a batch touches. The kernels take the factors after pen's
# l2-at-touch flag (fastgd._kernels._touch_l2); the flag alone is LazyAdam's own (unweighted) penalty.
# A coordinate's parameter and state are addressed as th[ith] and S[islot + s * sstride] (slot s), so the
# same rules serve the flat layout (sstride = P) and interleaved records (sstride = 1).


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def count_column_batches(indices: cython.pointer[cython.const[ColIndex]],
                         indptr: cython.pointer[cython.const[RowPtr]], n: Index, batch_size: Index,
                         ids: cython.pointer[cython.const[cython.longlong]], nids: Index,
                         last: cython.pointer[cython.longlong], counts: Vec) -> cython.void:
    """Add to counts[c] the number of the listed batches (ids[:nids], distinct; batch b is rows
    [b·batch_size, (b + 1)·batch_size) of the n-row CSR matrix) that store column c, its nb_j: O(nnz + d),
    X read once and not copied. Scratch: ``last`` (d, all -1 on entry), the last batch seen storing each
    column."""
    for t in range(nids):
        b = ids[t]
        start = b * batch_size
        stop = min(start + batch_size, n)
        for q in range(indptr[start], indptr[stop]):
            c = indices[q]
            if last[c] != b:
                last[c] = b
                counts[c] += 1.0


# Hints (never a change of result) that hide the lazy epoch's cache misses (rows in random order, records,
# parameters and state of columns all over a d-sized array): a batch of at most LAZY_AHEAD_NNZ stored values
# has its rows fetched two batches ahead and its columns' lines one batch ahead; a larger batch has each
# column's record fetched LAZY_AHEAD_VALUES values ahead while it is listed (see docs/design.md).
LAZY_AHEAD_NNZ = cython.declare(cython.Py_ssize_t, 256)
LAZY_AHEAD_VALUES = cython.declare(cython.Py_ssize_t, 64)
# The column hints (a column's record, scale and running mean; the rows' hints stay) only where the epoch's records
# take at least LAZY_HINT_MIN_BYTES: below, they stay in a core's cache and the hints only cost (as the loss
# pass's LOSS_HINT_MIN_BYTES; d = 2^14, Adam's 32-byte records, 512 KiB: B = 1 / 32 / 256 epochs 5-6 / 3-4 / 0-1 %
# faster without them in one process, within the noise between processes; 2^17, 4 MiB: 7-8 % slower without
# every hint; see docs/design.md)
LAZY_HINT_MIN_BYTES = cython.declare(cython.Py_ssize_t, 1 << 20)
# The native lazy epoch's passes over every coordinate (into its records, and the end's catch-up) open a parallel
# region only with at least LAZY_REGION_COORDS coordinates per thread: a region's join waits for a thread the OS
# has not run, a time slice on a busy machine, while these passes take about 10 ns a coordinate (2-core Xeon,
# one other busy process, partial_fit of 100-row Zipf chunks, ms per call with n_jobs=1 / 2: d = 2^15 3.7 / 13.3,
# 2^18 24.5 / 33.4; idle: 3.7 / 3.8 and 25.2 / 24.6; see docs/design.md)
LAZY_REGION_COORDS = cython.declare(cython.Py_ssize_t, 1 << 19)
# The native CSR loss pass hints the parameters of the values LOSS_AHEAD_VALUES ahead in X when they take at
# least LOSS_HINT_MIN_BYTES (at d = 2^14 they stay in a core's cache; see docs/design.md)
LOSS_AHEAD_VALUES = cython.declare(cython.Py_ssize_t, 256)
LOSS_HINT_MIN_BYTES = cython.declare(cython.Py_ssize_t, 1 << 20)
# The CSR gradient sums (batches_stats, the split pass, the epoch's CSR chunks) hint the parameters and sums of
# the values SUMS_AHEAD_VALUES ahead in X, in a loop of their own, when the parameters take at least
# SUMS_HINT_MIN_BYTES (below, the two arrays the pass gathers from and adds into stay in cache and hints cost
# about a third more: see docs/design.md)
SUMS_AHEAD_VALUES = cython.declare(cython.Py_ssize_t, 128)
SUMS_HINT_MIN_BYTES = cython.declare(cython.Py_ssize_t, 4 << 20)

LAZY_NONE = cython.declare(cython.int, 0)
LAZY_EXACT = cython.declare(cython.int, 1)
LAZY_APPROX = cython.declare(cython.int, 2)


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def constant_rate(sched: CVec) -> cython.bint:
    """Whether schedule ``sched`` gives every update the same rate (what the exact catch-ups that move a
    parameter assume)."""
    return sched[0] == CONSTANT and not sched[1] > 0


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def lazy_kind(code: cython.int, hp: CVec, standardized: cython.bint, l1: cython.double, l2: cython.double,
              constant_lr: cython.bint, touch_l2: cython.bint) -> cython.int:
    """Whether optimizer ``code`` may update a CSR batch lazily: LAZY_EXACT, LAZY_APPROX or LAZY_NONE.
    ``constant_lr``: the schedule's rate is the same for every update (``constant_rate``). ``touch_l2``: the
    Adam family may apply an l2 penalty's gradient only with the batches that touch a coordinate: LazyAdam's
    own penalty, which moves the fixed point (a rare column is penalized less), or frequency-weighted, which
    keeps it in expectation (see "lazy updates" above); without it an l2 penalty moves every coordinate."""
    decay: cython.bint = l2 != 0.0 or hp[1] != 0.0  # the l2 penalty and weight decay move every coordinate
    if l1 != 0.0:
        return LAZY_NONE
    if code == SGD:
        return LAZY_EXACT if constant_lr or not decay else LAZY_NONE
    if standardized and hp[1] != 0.0 and (l2 == 0.0 or touch_l2) and (
            code == ADAMW or (code == NADAM and hp[6] != 0.0)):
        return LAZY_APPROX  # decoupled weight decay: in the updates that touch (lazy_approx_catch_up)
    if standardized and hp[1] == 0.0 and (l2 == 0.0 or touch_l2) and (
            code == ADAM or code == ADAMW or code == ADAMAX or code == NADAM):
        return LAZY_APPROX  # an l2 penalty's gradient reaches a coordinate with the batches that touch it
    if decay:
        return LAZY_NONE
    if code == MOMENTUM or code == NESTEROV:
        return LAZY_EXACT if constant_lr else LAZY_NONE
    if code == RMSPROP:
        return LAZY_EXACT if constant_lr or hp[4] == 0.0 else LAZY_NONE
    if code == ADAGRAD or code == ADADELTA:
        return LAZY_EXACT
    return LAZY_NONE


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def lazy_kind_of_loss(kind: cython.int, lcode: cython.int) -> cython.int:
    """lazy_kind's answer for a fit with loss ``lcode``: an exact rule serves every loss (a row's gradient is
    its loss's slope times the row: the dense update's mathematics), LazyAdam the squared error only. With
    huber or a kinked loss its moments, frozen between a rare column's touches, left such columns far short of
    the dense update's (d = 2^16, Zipf, huber, batch 256, penalty="l2": held-out R² 0.750 after 1,000 epochs,
    the dense update 0.830 after 109), where the squared error's default fit ends with its exact finish."""
    return kind if kind == LAZY_EXACT or lcode == SQUARED_ERROR else LAZY_NONE


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def lazy_moves(code: cython.int, hp: CVec, exact: cython.bint, lam: cython.double) -> cython.bint:
    """Whether a lazy catch-up may move a parameter (lazy_catch_up with l2 coefficient ``lam``, or
    lazy_approx_catch_up): where it cannot, what the epoch derives from a parameter need not be recomputed
    after it. Adagrad, RMSprop without momentum, Adadelta and LazyAdam leave it in place."""
    if not exact:
        return False  # LazyAdam: a catch-up leaves the parameter (lazy_approx_catch_up)
    if code == SGD:
        return lam != 0.0
    return code == MOMENTUM or code == NESTEROV or (code == RMSPROP and hp[4] > 0.0)


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def used_slots(code: cython.int, hp: CVec) -> cython.int:
    """How many of optimizer ``code``'s state slots (a prefix of them) its rule reads or writes with these
    hyperparameters: Adam without amsgrad never touches max_exp_avg_sq, RMSprop uses momentum_buffer and
    grad_avg only with momentum and centered (a lazy epoch then gathers only those)."""
    if (code == ADAM or code == ADAMW) and hp[5] == 0.0:
        return 2
    if code == RMSPROP:
        return 3 if hp[5] else (2 if hp[4] > 0.0 else 1)
    if code == SGD:
        return 0
    if code == MOMENTUM or code == NESTEROV or code == ADAGRAD:
        return 1
    if code == ADAMAX or code == NADAM or code == ADADELTA:
        return 2
    return 3  # as STATE_ROWS


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def record_width(ns: Index) -> Index:
    """Doubles per coordinate record of the native lazy epoch: its update count, parameter and ``ns`` state
    slots, rounded up to an even count (two records of Adam's four to a cache line, none straddling one)."""
    return (3 + ns) // 2 * 2


@cython.cfunc
@cython.inline
@cython.nogil
@cython.exceptval(check=False)
def _geometric_q(a: cython.double, q: cython.double, m: cython.double) -> cython.double:
    """a + a² + ... + aᵐ given q = log(a) (the callers need it too, and compute it once), as a·(aᵐ − 1)/(a − 1)
    with both differences from q: written a·(1 − aᵐ)/(1 − a), a decay factor a = 1 − lr·λ within an ulp or two
    of 1 (SGD at a rate of 1e-12 with a small l2) gave sums of 0.4-0.6 m in the native build, where the
    compiler's reassociation may turn 1 − a back into lr·λ (exactly) while aᵐ is of the rounded a (or 1 − 1
    into 0 where a rounded to 1): running means of a lazy epoch then fell to half of the parameters. a <= 0
    (SGD at a rate past 1/λ, diverging) by the plain closed form, which does not cancel there (1 − a >= 1)."""
    if not a > 0.0:
        return a * (1.0 - a**m) / (1.0 - a)
    if q == 0.0:
        return m
    return a * (math.expm1(m * q) / math.expm1(q))


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def _geometric_sums(a: cython.double, q: cython.double, m: cython.double, g: cython.double) -> cython.double:
    """Σ_{i=1..m} (a + ... + aⁱ) (0 <= a < 1: a momentum), given q = log(a) and g = a + ... + aᵐ
    (``_geometric_q``), which the caller has computed for the parameter's catch-up: near a = 1 (|m·q| < 1e-4)
    its series to q², whose next term is below 1e-12 of it, since the closed form a·(m − g)/(1 − a) cancels
    there."""
    if abs(m * q) < 1e-4:
        return m * (m + 1.0) / 2.0 * (1.0 + q * (m + 2.0) / 3.0 + q * q * (m + 1.0) * (m + 2.0) / 12.0)
    return a / -math.expm1(q) * (m - g)


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def lazy_catch_up(code: cython.int, th_: Vec, ith: Index, R: Vec, islot: Index, sstride: Index,
                  steps: cython.double, hp: CVec, lr: cython.double, lam: cython.double) -> cython.double:
    """A coordinate's parameter th_[ith] and state (slot s at R[islot + s * sstride]) after ``steps`` updates
    with zero data gradient that it was not given (LAZY_EXACT rules), at rate ``lr`` (constant: see
    lazy_kind), with l2 coefficient ``lam`` (penalty plus coupled weight decay; SGD only). Returns the sum of
    the parameter's values after each of those updates (what the running mean of the iterates needs)."""
    mu: cython.double
    c: cython.double
    ib: Index
    th: cython.double = th_[ith]
    if not steps > 0.0:
        return 0.0
    if code == SGD:
        if lam == 0.0:
            return steps * th
        a = 1.0 - lr * lam
        if not a > 0.0:  # a rate past 1/λ (diverging): no logarithm
            th_[ith] = th * a**steps
            return th * _geometric_q(a, 0.0, steps)
        q = math.log(a)  # one logarithm for the decay and the sum (_geometric_q): no pow of its own
        th_[ith] = th + th * math.expm1(steps * q)
        return th * _geometric_q(a, q, steps)
    if code == MOMENTUM or code == NESTEROV or (code == RMSPROP and hp[4] > 0.0):
        if code == RMSPROP:  # square_avg (and grad_avg) decay by alpha; momentum_buffer is slot 1
            f = hp[2] ** steps
            R[islot] *= f
            if hp[5]:
                R[islot + 2 * sstride] *= f
            mu = hp[4]
            ib = islot + sstride
            c = 1.0
        else:  # momentum_buffer: slot 0; Nesterov steps by γ(g + μb) = γμb
            mu = hp[2]
            ib = islot
            c = mu if code == NESTEROV else 1.0
        b = R[ib]
        if b == 0.0:
            return steps * th
        q = math.log(mu)  # once for the parameter's sum and the running mean's sums of sums
        g = _geometric_q(mu, q, steps)
        th_[ith] = th - lr * c * b * g
        R[ib] = b * mu**steps
        return steps * th - lr * c * b * _geometric_sums(mu, q, steps, g)
    if code == RMSPROP:
        f = hp[2] ** steps
        R[islot] *= f
        if hp[5]:  # centered: the gradient average decays too
            R[islot + 2 * sstride] *= f
    elif code == ADADELTA:
        f = hp[2] ** steps
        R[islot] *= f
        R[islot + sstride] *= f
    return steps * th


@cython.cfunc
@cython.inline
@cython.nogil
@cython.exceptval(check=False)
def lazy_approx_catch_up(th: Vec, ith: Index, steps: cython.double) -> cython.double:
    """LazyAdam (LAZY_APPROX rules): the moments and the parameter of a coordinate the skipped updates did
    not touch stay as they are, decoupled weight decay included (AdamW's, NAdam's with decoupled_weight_decay
    shrink a coordinate in the updates that touch it, as TensorFlow Addons' LazyAdam with decoupled weight
    decay decays only the rows it updates). Caught up at every skipped update instead, the decay outweighed the
    frozen moments' smaller pushes and shrank rare columns far short: d = 2^11, 12,000 uniform rows of 10
    values, AdamW at batch_size=1, held-out R² 0.55 against the dense update's 0.998. Returns the sum of the
    parameter's values after those updates (as lazy_catch_up)."""
    if not steps > 0.0:
        return 0.0
    return steps * th[ith]


@cython.cfunc
@cython.inline
@cython.nogil
@cython.exceptval(check=False)
def average_catch_up(avg: Vec, q: Index, total: cython.double, c0: cython.double, c1: cython.double) -> cython.void:
    """Running mean avg[q] of a coordinate's iterates from update count c0 to c1, given the sum ``total`` of
    its values after those c1 - c0 updates (lazy_catch_up's return value)."""
    if c1 > c0:
        avg[q] += (total - (c1 - c0) * avg[q]) / c1


# LazyAdam's arithmetic (LAZY_APPROX only, where no torch trajectory is followed): its lazy epochs spend a
# batch's constants in place of per-coordinate divisions (1/count for the running mean, 1/√(1 − β₂ᵗ) for
# Adam's denominator, 1/scale for a standardized column) and skip pow where a bias correction is 1.0
# exactly. Its last bits differ from the dense rule's (docs/design.md, sparse data); the dense path and
# LAZY_EXACT keep _adam's and average_catch_up's arithmetic.


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def lazy_bias_horizon(b: cython.double) -> cython.double:
    """The update count from which 1 − bᵗ is 1.0 in double precision whatever pow's rounding (bᵗ ≤ 2⁻⁶⁴, far
    below half an ulp of 1, 2⁻⁵⁴): a bias correction from there on needs no pow and has the same bits."""
    if not (b > 0.0 and b < 1.0):
        return 1e300  # never: pow every time
    return math.ceil(-64.0 * 0.6931471805599453 / math.log(b))  # −64 / log₂(b) (math.log2: not in older Numba)


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def _lazy_adam(th: Vec, G: CVec, S: Vec, P: Index, t: cython.double, hp: CVec, lr: cython.double,
               h1: cython.double, h2: cython.double, decoupled: cython.bint) -> cython.void:
    """_adam's step with a batch's constants: 1/√(1 − β₂ᵗ) multiplied in, no pow past the horizons ``h1``,
    ``h2`` of β₁ and β₂ (lazy_bias_horizon)."""
    wd = hp[1]
    b1 = hp[2]
    b2 = hp[3]
    eps = hp[4]
    amsgrad = hp[5]
    step = lr
    isb2 = 1.0
    if hp[6]:
        step = lr / (1.0 if t >= h1 else 1.0 - b1**t)
        isb2 = 1.0 / math.sqrt(1.0 if t >= h2 else 1.0 - b2**t)
    shrink = 1.0 - lr * wd
    vmax = 2 * P
    for q in range(P):
        g = _decayed(th, G, q, wd, shrink, decoupled)
        _moments(S, P, q, g, b1, b2)
        # the denominator rounded once (fmadd) in both branches: left to contraction, GCC fused it in the
        # scalar loop and not in the vectorized one (where both branches run, masked), so a coordinate's bits
        # depended on where a batch's list put it, and the lazy team's results on its size
        if amsgrad:
            S[vmax + q] = max(S[vmax + q], S[P + q])
            den = fmadd(math.sqrt(S[vmax + q]), isb2, eps)
        else:
            den = fmadd(math.sqrt(S[P + q]), isb2, eps)
        th[q] -= step * S[q] / den


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def lazy_update(code: cython.int, th: Vec, G: CVec, S: Vec, P: Index, scalars: Vec, hp: CVec, lr: cython.double,
                eta: Vec, exact: cython.bint, h1: cython.double, h2: cython.double) -> cython.void:
    """The step of a lazy batch's gathered coordinates: for LAZY_APPROX (not ``exact``) Adam and AdamW,
    _lazy_adam (LazyAdam's arithmetic, with the horizons ``h1``, ``h2`` of lazy_bias_horizon); every other
    case, ``update``."""
    if not exact and code == ADAM:
        _lazy_adam(th, G, S, P, scalars[0], hp, lr, h1, h2, False)
    elif not exact and code == ADAMW:
        _lazy_adam(th, G, S, P, scalars[0], hp, lr, h1, h2, True)
    else:
        update(code, th, G, S, P, scalars, hp, lr, eta, False)


@cython.cfunc
@cython.inline
@cython.nogil
@cython.exceptval(check=False)
def lazy_average(avg: Vec, q: Index, total: cython.double, steps: cython.double, inv_count: cython.double) -> cython.void:
    """average_catch_up for LAZY_APPROX: the running mean avg[q] over ``steps`` more updates whose values sum
    to ``total``, up to a count whose reciprocal ``inv_count`` the batch computes once (one update of value v:
    total = v, steps = 1). Each multiply-add rounded once (fmadd): left to contraction, the compiler fused them
    in one of its callers and not in another, and the lazy team's bits differed from the sequential epoch's."""
    avg[q] = fmadd(fmadd(-steps, avg[q], total), inv_count, avg[q])


# ----------------------------------------------------------------------------------------------------------
# losses: a per-row function of the residual r = prediction − target, dispatched by an integer code (packed
# after [l1, l2, batch_weight] in the kernels' ``pen``: [..., code, param]); param is epsilon or the quantile.
# The kernels accumulate s·slope(r) per row and scale the sums by 2 / (batch weight), so ``loss_slope`` is
# half the derivative: the squared error's slope is r itself, its arithmetic unchanged.

# constants to the C compiler (not module variables), so the row loops compare the code with immediates
SQUARED_ERROR = cython.declare(cython.const[cython.int], 0)
HUBER = cython.declare(cython.const[cython.int], 1)
EPSILON_INSENSITIVE = cython.declare(cython.const[cython.int], 2)
SQUARED_EPSILON_INSENSITIVE = cython.declare(cython.const[cython.int], 3)
QUANTILE = cython.declare(cython.const[cython.int], 4)
# in code order: scikit-learn's names
LOSSES = ("squared_error", "huber", "epsilon_insensitive", "squared_epsilon_insensitive", "quantile")


@cython.cfunc
@cython.inline
@cython.nogil
@cython.exceptval(check=False)
def loss_terms(code: cython.int, r: cython.double, a: cython.double) -> tuple[cython.double, cython.double]:
    """(slope, value) of one residual r: ``loss_slope`` and ``loss_value`` in one evaluation.

    Branch-free: the residual falls on either side of a loss's kink at random from row to row, so a jump
    on it is mispredicted about every other row, which cost more than the loss itself (docs/design.md,
    Objective). Each loss is written with min, max, comparisons used as numbers (0 or 1) and
    choices between constants, which gcc and LLVM turn into min, max, compare and blend instructions, not
    jumps (benchmarks/loss_cost.py measures it; the spelling matters: gcc made jumps of
    ``(v > 0) * 0.5 - (v < 0) * 0.5`` for the epsilon-insensitive slope, and of ``e > 0`` with
    ``e = max(|r| − a, 0)``, and moved ``h if v != 0 else 0`` through an integer register). Each loss's
    arithmetic counts: the float32 row loop is bound by its floating-point instructions."""
    if code == SQUARED_ERROR:
        return r, r * r
    if code == EPSILON_INSENSITIVE:  # max(0, |r| − a) (NaN first: max keeps it); slope ±½ (r's sign) beyond a,
        e = abs(r)  # where max(0, |r| − a) > 0 exactly; no clip: fewer instructions than the other losses
        return math.copysign(0.5 * (e > a), r), max(e - a, 0.0)
    if code == QUANTILE:  # pinball loss of y − prediction = −r at quantile a; slope 0 at r = 0
        return (r > 0.0) * (0.5 * (1.0 - a)) + (r < 0.0) * (-0.5 * a), max((1.0 - a) * r, -a * r)
    c = min(max(r, -a), a)  # r clipped to [−a, a]
    if code == HUBER:  # ½r² for |r| <= a, a|r| − ½a² beyond: c(r − ½c)
        return 0.5 * c, c * (r - 0.5 * c)
    v = r - c  # r shrunk toward 0 by a: 0 inside [−a, a], r ∓ a beyond (exactly)
    if code == SQUARED_EPSILON_INSENSITIVE:  # max(0, |r| − a)² = v²
        return v, v * v
    return NAN, NAN  # unknown code: poisons the loss so the caller reports it


@cython.cfunc
@cython.inline
@cython.nogil
@cython.exceptval(check=False)
def loss_accumulate(code: cython.int, r: cython.double, a: cython.double, w: cython.double,
                    loss: cython.double) -> tuple[cython.double, cython.double]:
    """(w·slope(r), loss + w·loss(r)): a row of weight w (1.0 without sample weights) in the kernels' sums. The
    squared error is (w·r, loss + (w·r)·r). The loss's add is fmadd (rounded once): left to the fastmath flags,
    LLVM fused it in one Numba row loop and not in another (the one-thread CSR rows and the split pass's sums
    then differed in the loss's last bit, with Numba 0.59 on Zen 3). The kernels' row loops, dense and CSR,
    call this once per row and output."""
    if code == SQUARED_ERROR:
        s = w * r
        return s, fmadd(s, r, loss)
    slope, value = loss_terms(code, r, a)
    return w * slope, fmadd(w, value, loss)


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def loss_value(code: cython.int, r: cython.double, a: cython.double) -> cython.double:
    """The loss of one residual r (scikit-learn's definitions; torch.nn.HuberLoss(delta=a) for huber)."""
    return loss_terms(code, r, a)[1]


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def loss_slope(code: cython.int, r: cython.double, a: cython.double) -> cython.double:
    """Half the derivative of ``loss_value`` with respect to r (at a kink: 0, or the one-sided value)."""
    return loss_terms(code, r, a)[0]


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def loss_unit(code: cython.int, a: cython.double, ys: cython.double) -> cython.double:
    """With standardization the objective is the raw one over y_scale·loss_unit (y_scale ``ys``, the loss's
    parameter ``a`` in the units of y), so a step means the same on targets in any unit: y_scale for the
    squared losses, 1 for the absolute ones (they scale as y_scale), min(y_scale, a) for huber, which is
    ½r² within a and a·abs(r) beyond: its slope in the standardized units stays of order one whatever a is
    (over y_scale² alone, an epsilon far below y_scale left a slope of a / y_scale there, too small for
    Adam's eps and L-BFGS's tolerances to move the fit)."""
    if code == EPSILON_INSENSITIVE or code == QUANTILE:
        return 1.0
    if code == HUBER and a > 0.0:
        return min(ys, a)
    return ys


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def unit_l2(l2: cython.double, ys: cython.double, y_scale: cython.double) -> cython.double:
    """The l2 strength in standardized coordinates for an output whose objective's unit is ``ys``
    (``loss_unit``) and whose target scale is ``y_scale``: the penalty acts on the raw weights, so its
    strength is l2·y_scale / ys (l2 itself for the squared losses, whose unit is y_scale). finish_batch and
    the lazy epochs (``output_units``) use this one rule."""
    return l2 if ys == y_scale else l2 * (y_scale / ys)


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def output_units(lcode: cython.int, la: cython.double, l2: cython.double, stdz: CVec, std: cython.bint, d: Index,
                 k: Index, yu: Vec, l2o: Vec) -> cython.void:
    """Each output j's objective unit into yu[j] and its l2 strength in the standardized coordinates into
    l2o[j], as finish_batch computes them per batch (``loss_unit``, ``unit_l2``; without standardization,
    ``std`` false and ``stdz`` not read: 1 and l2): the lazy epochs of both backends take them once per
    epoch."""
    for j in range(k):
        if std:
            yu[j] = loss_unit(lcode, la, stdz[2 * d + k + j])
            l2o[j] = unit_l2(l2, yu[j], stdz[2 * d + k + j])
        else:
            yu[j] = 1.0
            l2o[j] = l2
