# cython: language_level=3, cdivision=True, cpow=True, infer_types=True
"""The optimizer update rules and the learning-rate schedule, written once for both compiled backends.

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
benchmarks and docs pick it up from the registry. (Numba's cache checks only a function's own file;
``fastgd._kernels`` adds this file's stamp to its own, so its cached epochs are recompiled after an edit here.)
"""

try:
    import cython
except ImportError:  # Cython is needed to build fastgd, not to run it
    from . import _cython_shim as cython
try:
    from cython.cimports.libc import math  # compiled: C's libm
except ImportError:
    import math  # Python's (Numba compiles it to the same libm calls)

Vec = cython.typedef(cython.pointer[cython.double])
CVec = cython.typedef(cython.pointer[cython.const[cython.double]])
Index = cython.typedef(cython.Py_ssize_t)
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
        b = g if t == 1.0 else mu * S[q] + (1.0 - damp) * g
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
def dense_moments(X: cython.pointer[cython.const[cython.floating]], sw: cython.pointer[cython.const[cython.double]],
                  weighted: cython.bint, start: cython.Py_ssize_t, stop: cython.Py_ssize_t, d: cython.Py_ssize_t,
                  mean: cython.pointer[cython.double], m2: cython.pointer[cython.double]) -> cython.double:
    # (spelled out, not Vec/Index: a fused function's cimported signature is checked by its C type names)
    """Weighted mean and centred sum of squares of the columns of rows [start, stop) of a C-contiguous X
    (``X[i * d + j]``), into ``mean`` and ``m2`` (zeros on entry); returns the rows' total weight."""
    w: cython.double = 0.0
    for i in range(start, stop):
        s = sw[i] if weighted else 1.0
        w += s
        for j in range(d):
            mean[j] += s * X[i * d + j]
    if w <= 0.0:
        return w
    for j in range(d):
        mean[j] /= w
    for i in range(start, stop):
        s = sw[i] if weighted else 1.0
        for j in range(d):
            r = X[i * d + j] - mean[j]
            m2[j] += s * r * r
    return w


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
# left as they are; decoupled weight decay still shrinks it, exactly), used only in fastgd's standardized
# mode and without l2 or coupled weight decay, never with standardize=False. The rest (l1, l2 or weight decay with an adaptive rule or momentum) update densely.
# A coordinate's parameter and state are addressed as th[ith] and S[islot + s * sstride] (slot s), so the
# same rules serve the flat layout (sstride = P) and interleaved records (sstride = 1).

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
              constant_lr: cython.bint) -> cython.int:
    """Whether optimizer ``code`` may update a CSR batch lazily: LAZY_EXACT, LAZY_APPROX or LAZY_NONE.
    ``constant_lr``: the schedule's rate is the same for every update (``constant_rate``)."""
    decay: cython.bint = l2 != 0.0 or hp[1] != 0.0  # the l2 penalty and weight decay move every coordinate
    if l1 != 0.0:
        return LAZY_NONE
    if code == SGD:
        return LAZY_EXACT if constant_lr or not decay else LAZY_NONE
    if standardized and l2 == 0.0 and hp[1] != 0.0 and (code == ADAMW or (code == NADAM and hp[6] != 0.0)):
        return LAZY_APPROX if constant_lr else LAZY_NONE  # decoupled weight decay: caught up exactly
    if decay:
        return LAZY_NONE
    if code == MOMENTUM or code == NESTEROV:
        return LAZY_EXACT if constant_lr else LAZY_NONE
    if code == RMSPROP:
        return LAZY_EXACT if constant_lr or hp[4] == 0.0 else LAZY_NONE
    if code == ADAGRAD or code == ADADELTA:
        return LAZY_EXACT
    if standardized and (code == ADAM or code == ADAMW or code == ADAMAX or code == NADAM):
        return LAZY_APPROX
    return LAZY_NONE


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
def _geometric(a: cython.double, m: cython.double) -> cython.double:
    """a + a² + ... + aᵐ."""
    if a == 1.0:
        return m
    return a * (1.0 - a**m) / (1.0 - a)


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def _geometric_sums(a: cython.double, m: cython.double) -> cython.double:
    """Σ_{i=1..m} (a + ... + aⁱ)."""
    if a == 1.0:
        return m * (m + 1.0) / 2.0
    return a / (1.0 - a) * (m - _geometric(a, m))


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
        th_[ith] = th * a**steps
        return th * _geometric(a, steps)
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
        th_[ith] = th - lr * c * b * _geometric(mu, steps)
        R[ib] = b * mu**steps
        return steps * th - lr * c * b * _geometric_sums(mu, steps)
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
@cython.nogil
@cython.exceptval(check=False)
def lazy_approx_catch_up(code: cython.int, th: Vec, ith: Index, steps: cython.double, hp: CVec,
                         lr: cython.double) -> cython.double:
    """LazyAdam (LAZY_APPROX rules): the moments of a coordinate the skipped updates did not touch stay as
    they are, and so does the parameter, except for decoupled weight decay (AdamW's, NAdam's with
    decoupled_weight_decay), which shrinks it by (1 − γλ) per update, caught up exactly at a constant rate.
    Returns the sum of the parameter's values after those updates (as lazy_catch_up)."""
    v: cython.double = th[ith]
    if not steps > 0.0:
        return 0.0
    if hp[1] != 0.0 and (code == ADAMW or (code == NADAM and hp[6] != 0.0)):
        a = 1.0 - lr * hp[1]
        th[ith] = v * a**steps
        return v * _geometric(a, steps)
    return steps * v


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def average_catch_up(avg: Vec, q: Index, total: cython.double, c0: cython.double, c1: cython.double) -> cython.void:
    """Running mean avg[q] of a coordinate's iterates from update count c0 to c1, given the sum ``total`` of
    its values after those c1 - c0 updates (lazy_catch_up's return value)."""
    if c1 > c0:
        avg[q] += (total - (c1 - c0) * avg[q]) / c1


# ----------------------------------------------------------------------------------------------------------
# losses: a per-row function of the residual r = prediction − target, dispatched by an integer code (packed
# after [l1, l2, batch_weight] in the kernels' ``pen``: [..., code, param]); param is epsilon or the quantile.
# The kernels accumulate s·slope(r) per row and scale the sums by 2 / (batch weight), so ``loss_slope`` is
# half the derivative: the squared error's slope is r itself, its arithmetic unchanged.

SQUARED_ERROR = cython.declare(cython.int, 0)
HUBER = cython.declare(cython.int, 1)
EPSILON_INSENSITIVE = cython.declare(cython.int, 2)
SQUARED_EPSILON_INSENSITIVE = cython.declare(cython.int, 3)
QUANTILE = cython.declare(cython.int, 4)
# in code order: scikit-learn's names
LOSSES = ("squared_error", "huber", "epsilon_insensitive", "squared_epsilon_insensitive", "quantile")


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def loss_value(code: cython.int, r: cython.double, a: cython.double) -> cython.double:
    """The loss of one residual r (scikit-learn's definitions; torch.nn.HuberLoss(delta=a) for huber)."""
    if code == SQUARED_ERROR:
        return r * r
    u = abs(r)
    if code == HUBER:  # ½r² for |r| <= a, a|r| − ½a² beyond
        return 0.5 * r * r if u <= a else a * u - 0.5 * a * a
    if code == EPSILON_INSENSITIVE:  # max(0, |r| − a)
        return u - a if u > a else 0.0
    if code == SQUARED_EPSILON_INSENSITIVE:  # max(0, |r| − a)²
        return (u - a) * (u - a) if u > a else 0.0
    if code == QUANTILE:  # pinball loss of y − prediction = −r at quantile a
        return (1.0 - a) * r if r > 0.0 else -a * r
    return NAN  # unknown code: poisons the loss so the caller reports it


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def loss_slope(code: cython.int, r: cython.double, a: cython.double) -> cython.double:
    """Half the derivative of ``loss_value`` with respect to r (at a kink: 0, or the one-sided value)."""
    if code == SQUARED_ERROR:
        return r
    if code == HUBER:
        return 0.5 * r if abs(r) <= a else (0.5 * a if r > 0.0 else -0.5 * a)
    if code == EPSILON_INSENSITIVE:
        return 0.0 if abs(r) <= a else (0.5 if r > 0.0 else -0.5)
    if code == SQUARED_EPSILON_INSENSITIVE:
        return 0.0 if abs(r) <= a else (r - a if r > 0.0 else r + a)
    if code == QUANTILE:
        return 0.5 * (1.0 - a) if r > 0.0 else (-0.5 * a if r < 0.0 else 0.0)
    return NAN


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def loss_y_power(code: cython.int) -> cython.double:
    """How the loss scales with the targets' unit (r and epsilon both scaled by c: the loss by c to this
    power): 2 for the squared losses and huber, 1 for the absolute ones. Standardization divides the
    objective by y_scale to this power, so a step means the same on targets in any unit."""
    if code == EPSILON_INSENSITIVE or code == QUANTILE:
        return 1.0
    return 2.0


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def loss_terms(code: cython.int, r: cython.double, a: cython.double, s: cython.double,
               value: Vec) -> cython.double:
    """s·loss_slope(r), adding s·loss_value(r) to value[0]: both in one call (the native kernels call across
    extension modules, where each call is an indirect one that the C compiler cannot inline)."""
    value[0] += s * loss_value(code, r, a)
    return s * loss_slope(code, r, a)
