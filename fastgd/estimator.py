"""LinearRegressor: a scikit-learn estimator trained like torch.optim, by fastgd's compiled kernels."""

import numbers
import time
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import _check_sample_weight, check_array, check_is_fitted, validate_data

from . import _engine
from .optimizers import get_optimizer
from .schedules import Constant, Schedule

PENALTIES = {None: 0.0, "l2": 0.0, "l1": 1.0, "elasticnet": None}  # l1 share of alpha (None: l1_ratio)
MIN_ADAPTIVE_LR = 1e-6  # "adaptive": training stops once the rate has been divided below this


class LinearRegressor(RegressorMixin, BaseEstimator):
    """Linear regression trained by mini-batch gradient descent with torch.optim's optimizers.

    Objective, minimized over weights ``W`` (k × d) and intercepts ``b`` (k), with sample weights ``s``
    (ones by default)::

        Σ_i s_i ‖W x_i + b − y_i‖² / Σ_i s_i  +  alpha · (l1_ratio · ‖W‖₁ + (1 − l1_ratio) / 2 · ‖W‖²)

    that is the (weighted) mean squared error, summed over outputs, plus the penalty, which never touches
    the intercept: ``penalty="l2"`` is ``l1_ratio = 0`` (matches ``Ridge(alpha=n·alpha/2)`` on unweighted
    data), ``"l1"`` is ``l1_ratio = 1`` (matches ``Lasso(alpha=alpha/2)``), ``"elasticnet"`` uses
    ``l1_ratio``. Each mini-batch step uses the gradient of the batch's own weighted mean. The l1 part is
    applied by a proximal step (soft-thresholding) after each update, scaled by each coordinate's effective
    step size for the chosen optimizer, so exact zeros appear and the fixed point satisfies the lasso
    optimality conditions. An optimizer's own ``weight_decay`` behaves as in torch (on every parameter, the
    intercept included); prefer ``penalty``.

    Precision: mini-batch steps reach the optimum up to their gradient noise; the "adaptive" rate shrinks
    it, yet fits typically end within 1e-6 of the optimal R² but only about 1e-3 (relative) from the exact
    coefficients under strong penalties. For many exact digits use ``batch_size=None`` (full-batch gradient
    descent, which converges to the closed-form ridge and lasso solutions to 1e-6) or a larger batch.

    Parameters
    ----------
    optimizer : str or fastgd.optimizers.Optimizer, default="adam"
        ``"sgd"``, ``"momentum"``, ``"nesterov"``, ``"adagrad"``, ``"rmsprop"``, ``"adam"``, ``"adamw"``,
        ``"adamax"``, ``"nadam"``: torch.optim's hyperparameter defaults, starting from the registry's
        ``start_lr`` for standardized data (e.g. 0.01 for Adam and SGD) rather than torch's ``lr``; or an
        optimizer object carrying every hyperparameter, ``lr`` included, e.g. ``Adam(lr=0.01, amsgrad=True)``
        (reachable as ``optimizer__lr`` in ``set_params``/GridSearchCV).
    learning_rate : "adaptive", float or fastgd.schedules.Schedule, default="adaptive"
        ``"adaptive"``: start from the optimizer's ``lr``; each time ``n_iter_no_change`` epochs in a row fail
        to improve by ``tol``, divide the rate by 5, and stop once it is below 1e-6 (scikit-learn's
        "adaptive"). A float: that constant rate (overrides the optimizer's ``lr``). A schedule: evaluated
        at every update inside the kernel (its ``lr``, or else the optimizer's, is the base rate).
    batch_size : int or None, default=32
        Rows per update; 1 is plain stochastic gradient descent, None is full-batch gradient descent. Larger
        than the number of rows: clipped.
    max_iter : int, default=1000
        Maximum number of epochs (passes over the data).
    tol : float or None, default=1e-4
        Improvement (of the training loss, or of the validation R² with ``early_stopping``) that counts as
        progress. None: train exactly ``max_iter`` epochs (unless ``gtol`` stops earlier).
    n_iter_no_change : int, default=5
        Epochs without progress before the rate is divided ("adaptive") or training stops.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the batches (chosen at random; rows are never copied), judge
        progress by their R², and keep the weights of the best epoch.
    validation_fraction : float, default=0.1
    shuffle : bool, default=True
        Visit the batches in a new random order each epoch (the rows themselves stay in place).
    random_state : int, RandomState or None, default=None
    fit_intercept : bool, default=True
    penalty : {None, "l2", "l1", "elasticnet"}, default=None
    alpha : float, default=1e-4
        Penalty strength (see the objective above).
    l1_ratio : float, default=0.15
        l1 share of the elastic-net penalty.
    gtol : float or None, default=None
        Also stop when the norm of the full training gradient (of the smooth part of the objective) falls
        below ``gtol`` (the ‖∇f‖ < ε rule). Costs one extra pass over the data per epoch.
    warm_start : bool, default=False
        Start ``fit`` from the previous solution and optimizer state (moments, step count).
    n_jobs : int or None, default=None
        Threads for the parallel kernel, during the fit only (None or -1: all). Results do not depend on it.
    verbose : int, default=0
        Print one line per epoch (loss, rate, elapsed time).
    backend : {"auto", "numba", "native"}, default="auto"
        The kernels: Numba (compiled on first use, cached on disk) or the ahead-of-time compiled Cython twin
        built at install time. "auto" uses the native kernels when they are built (they measured as fast or
        faster in every case tried and need no JIT warm-up; see ``fastgd._engine.kernels``), else Numba.
        Both give the same results to about 1e-15 (summation order within a chunk may differ).

    Defaults: Adam (starting at lr = 0.01) is robust to feature scales and needs no tuning on standardized
    data; batches of 32 make many updates per epoch on small data yet keep the parallel kernel busy on
    large data; the "adaptive" rate, tol = 1e-4 and n_iter_no_change = 5 (scikit-learn's values) let every
    optimizer settle on the least-squares solution instead of hovering at the noise level of a constant
    step; no penalty, so the target is ordinary least squares.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_outputs, n_features)
    intercept_ : float or ndarray of shape (n_outputs,)
    n_iter_ : int, epochs run.
    t_ : int, optimizer updates performed (the optimizer's step count).
    loss_curve_ : list of float, training objective per epoch (mean loss seen during the epoch + penalty).
    validation_scores_ : list of float, validation R² per epoch (with ``early_stopping``).
    best_validation_score_ : float (with ``early_stopping``).
    n_features_in_, feature_names_in_ : as in scikit-learn.
    """

    def __init__(self, optimizer="adam", learning_rate="adaptive", batch_size=32, max_iter=1000, tol=1e-4,
                 n_iter_no_change=5, early_stopping=False, validation_fraction=0.1, shuffle=True,
                 random_state=None, fit_intercept=True, penalty=None, alpha=1e-4, l1_ratio=0.15, gtol=None,
                 warm_start=False, n_jobs=None, verbose=0, backend="auto"):
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.shuffle = shuffle
        self.random_state = random_state
        self.fit_intercept = fit_intercept
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.gtol = gtol
        self.warm_start = warm_start
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.backend = backend

    # ------------------------------------------------------------------------------------------------------
    # validation
    def _check_params(self):
        opt = get_optimizer(self.optimizer)
        if isinstance(self.optimizer, str):  # a name: the registry's starting rate for standardized data
            opt.set_params(lr=type(opt).start_lr)
        lr = self.learning_rate
        if isinstance(lr, Schedule):
            lr.validate()
        elif not (lr == "adaptive" if isinstance(lr, str) else _is_real(lr) and np.isfinite(lr) and lr > 0):
            raise ValueError(
                f"learning_rate must be 'adaptive', a positive float or a schedule from fastgd.schedules, got {lr!r}")
        if self.batch_size is not None and not (_is_int(self.batch_size) and self.batch_size > 0):
            raise ValueError(f"batch_size must be a positive int or None, got {self.batch_size!r}")
        _positive_int("max_iter", self.max_iter)
        _positive_int("n_iter_no_change", self.n_iter_no_change)
        if self.tol is not None:
            _real("tol", self.tol, low=0.0)
        if self.gtol is not None:
            _real("gtol", self.gtol, low=0.0, low_open=True)
        for name in ("early_stopping", "shuffle", "fit_intercept", "warm_start"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        _real("validation_fraction", self.validation_fraction, low=0.0, high=1.0, low_open=True, high_open=True)
        if self.penalty not in PENALTIES:
            raise ValueError(f"penalty must be None, 'l2', 'l1' or 'elasticnet', got {self.penalty!r}")
        _real("alpha", self.alpha, low=0.0)
        _real("l1_ratio", self.l1_ratio, low=0.0, high=1.0)
        if self.n_jobs is not None and not (_is_int(self.n_jobs) and self.n_jobs != 0):
            raise ValueError(f"n_jobs must be None or a non-zero int (-1: all cores), got {self.n_jobs!r}")
        if not (_is_int(self.verbose) and self.verbose >= 0):
            raise ValueError(f"verbose must be a non-negative int, got {self.verbose!r}")
        if not (isinstance(self.backend, str) and self.backend in _engine.BACKENDS):
            raise ValueError(f"backend must be one of {_engine.BACKENDS}, got {self.backend!r}")
        _engine.kernels(self.backend)  # a missing native extension is reported here, naming the fix
        return opt

    def _validate_X(self, X, reset):
        X = _named("X", validate_data, self, X=X, reset=reset, accept_sparse="csr",
                   dtype=[np.float64, np.float32], order="C")
        if sp.issparse(X):
            X = X.tocsr()
            return X, (X.data, X.indices, X.indptr, X.shape[1])
        return X, X

    def _validate(self, X, y, sample_weight, reset):
        X, Xk = self._validate_X(X, reset)
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        y = _named("y", check_array, y, ensure_2d=False, dtype="numeric", input_name="y")
        if y.ndim not in (1, 2):
            raise ValueError(f"y must be 1-D (n_samples,) or 2-D (n_samples, n_outputs), got shape {y.shape}")
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"X and y have different numbers of rows: {X.shape[0]} and {y.shape[0]}")
        if y.ndim == 2 and y.shape[1] == 0:
            raise ValueError("y has 0 outputs (shape (n_samples, 0)); it needs at least one column")
        sw = None
        if sample_weight is not None:
            sw = _named("sample_weight", _check_sample_weight, sample_weight, X, dtype=np.float64,
                        ensure_non_negative=True)
        return X, Xk, y, sw

    # ------------------------------------------------------------------------------------------------------
    # fitting
    def fit(self, X, y, coef_init=None, intercept_init=None, sample_weight=None):
        """Train from zero (or ``coef_init``/``intercept_init``, or the previous fit with ``warm_start``)."""
        opt = self._check_params()
        warm = self.warm_start and hasattr(self, "_ts")
        X, Xk, y, sw = self._validate(X, y, sample_weight, reset=not warm)
        Y = _engine.targets_2d(y)
        if warm and self._ts.theta.shape[0] != Y.shape[1]:
            raise ValueError(f"y has {Y.shape[1]} outputs but the warm-started model has {self._ts.theta.shape[0]}")
        ts = self._ts if warm else _engine.TrainingState.fresh(opt, Y.shape[1], X.shape[1])
        self._init_params(ts, coef_init, intercept_init, Y.shape[1], X.shape[1])
        self._rng = check_random_state(self.random_state)
        self.loss_curve_, self.n_iter_ = [], 0
        if self.early_stopping:
            self.validation_scores_, self.best_validation_score_ = [], -np.inf
        self._y_ndim = y.ndim
        self._train(Xk, Y, sw, ts, opt, epochs=self.max_iter, stopping=True)
        return self

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), keeping the optimizer state between calls (like SGDRegressor)."""
        opt = self._check_params()
        first = not hasattr(self, "_ts")
        X, Xk, y, sw = self._validate(X, y, sample_weight, reset=first)
        Y = _engine.targets_2d(y)
        if first:
            self._ts = _engine.TrainingState.fresh(opt, Y.shape[1], X.shape[1])
            self._rng = check_random_state(self.random_state)
            self.loss_curve_, self.n_iter_, self._y_ndim = [], 0, y.ndim
        elif self._ts.theta.shape[0] != Y.shape[1]:
            raise ValueError(f"y has {Y.shape[1]} outputs but the model was fitted with {self._ts.theta.shape[0]}")
        self._train(Xk, Y, sw, self._ts, opt, epochs=1, stopping=False)
        return self

    def _init_params(self, ts, coef_init, intercept_init, k, d):
        if coef_init is not None:
            coef = np.asarray(coef_init, dtype=np.float64)
            if coef.size != k * d or not np.all(np.isfinite(coef)):
                raise ValueError(f"coef_init must hold {k * d} finite values (shape ({k}, {d}) or ({d},)), "
                                 f"got shape {coef.shape}")
            ts.theta[:, :d] = coef.reshape(k, d)
        if intercept_init is not None:
            b = np.asarray(intercept_init, dtype=np.float64)
            if b.size != k or not np.all(np.isfinite(b)):
                raise ValueError(f"intercept_init must hold {k} finite value(s), got shape {b.shape}")
            ts.theta[:, d] = b.reshape(k)

    def _penalty(self):
        share = PENALTIES[self.penalty]
        if self.penalty is None:
            return 0.0, 0.0
        share = self.l1_ratio if share is None else share
        return self.alpha * share, self.alpha * (1.0 - share)

    def _train(self, Xk, Y, sw, ts, opt, epochs, stopping):
        n = Y.shape[0]
        d = ts.theta.shape[1] - 1
        bs = n if self.batch_size is None else min(self.batch_size, n)
        n_batches = _engine.n_batches(n, bs)
        train_ids = np.arange(n_batches, dtype=np.int64)
        val_ids = None
        if stopping and self.early_stopping:
            n_val = int(round(self.validation_fraction * n_batches))
            if n_val < 1 or n_val >= n_batches:
                raise ValueError(
                    f"early_stopping holds out whole batches: validation_fraction={self.validation_fraction} of "
                    f"{n_batches} batch(es) leaves no validation or no training batch; use a smaller batch_size "
                    f"or a different validation_fraction")
            perm = self._rng.permutation(n_batches)
            val_ids, train_ids = np.sort(perm[:n_val]).astype(np.int64), np.sort(perm[n_val:]).astype(np.int64)
            Yv = np.concatenate([Y[b * bs: (b + 1) * bs] for b in val_ids])
            swv = None if sw is None else np.concatenate([sw[b * bs: (b + 1) * bs] for b in val_ids])
            val_sst = _weighted_sst(Yv, swv)
        l1, l2 = self._penalty()
        hp = opt.pack()
        adaptive = isinstance(self.learning_rate, str)
        if isinstance(self.learning_rate, Schedule):
            lr, sched = self.learning_rate.pack(opt.lr)
        else:
            lr, sched = Constant().pack(opt.lr if adaptive else float(self.learning_rate))
        threads = _engine.resolve_n_threads(self.n_jobs)
        kern = _engine.kernels(self.backend)
        sw_k = np.empty(0) if sw is None else sw
        best_loss, best_score, best_theta, no_change, converged = np.inf, -np.inf, None, 0, False
        t_start = time.perf_counter()
        for epoch in range(epochs):
            order = train_ids.copy()
            if self.shuffle:
                self._rng.shuffle(order)
            saved = (ts.theta.copy(), ts.state.copy(), ts.scalars.copy())
            hp[0] = lr
            try:
                loss, finite = _engine.run_epoch(Xk, Y, ts, opt.code, hp, bs, order, sw=sw_k, sched=sched, l1=l1,
                                                 l2=l2, fit_intercept=self.fit_intercept, n_threads=threads,
                                                 backend=self.backend)
            except KeyboardInterrupt:
                ts.theta[...], ts.state[...], ts.scalars[...] = saved
                warnings.warn(f"Training interrupted: keeping the model of the last completed epoch "
                              f"({self.n_iter_} epoch(s)).", UserWarning, stacklevel=3)
                break
            self.n_iter_ += 1
            if not finite:
                self._store(ts, d)
                raise ValueError(
                    f"Training diverged in epoch {self.n_iter_}: the weights are no longer finite "
                    f"(optimizer={opt!r}, learning rate {lr:g}). Standardize X (e.g. "
                    f"sklearn.preprocessing.StandardScaler), lower learning_rate, or use an adaptive optimizer "
                    f"such as 'adam'.")
            w = ts.theta[:, :d]
            with np.errstate(over="ignore", invalid="ignore"):  # huge but finite weights: the loss says inf
                loss += l1 * np.abs(w).sum() + 0.5 * l2 * np.square(w).sum()
            self.loss_curve_.append(float(loss))
            if self.verbose:
                print(f"-- Epoch {self.n_iter_}: loss {loss:.6g}, lr {lr:.3g}, step {ts.step}, "
                      f"{time.perf_counter() - t_start:.3f} s")
            if not stopping:
                continue
            if self.gtol is not None and self._grad_norm(kern, Xk, Y, sw_k, ts, bs, train_ids, l2, d) < self.gtol:
                converged = True
                break
            if val_ids is not None:
                _, sse, _ = kern.batches_stats(Xk, Y, sw_k, ts.theta, bs, val_ids)
                score = 1.0 - sse / val_sst if val_sst > 0 else 0.0
                self.validation_scores_.append(float(score))
                improved = self.tol is None or score > best_score + self.tol
                if score > best_score:
                    best_score, best_theta = score, ts.theta.copy()
            else:
                improved = self.tol is None or loss < best_loss - self.tol
                best_loss = min(best_loss, loss)
            if self.tol is None:
                continue
            no_change = 0 if improved else no_change + 1
            if no_change >= self.n_iter_no_change:
                if adaptive and lr / 5.0 >= MIN_ADAPTIVE_LR:
                    lr /= 5.0
                    no_change = 0
                    if self.verbose:
                        print(f"-- no improvement in {self.n_iter_no_change} epochs: learning rate now {lr:.3g}")
                else:
                    converged = True
                    break
        if val_ids is not None and best_theta is not None:
            ts.theta[...] = best_theta
            self.best_validation_score_ = best_score
        if stopping and not converged and (self.tol is not None or self.gtol is not None) \
                and self.n_iter_ >= self.max_iter:
            warnings.warn(f"Maximum number of epochs ({self.max_iter}) reached before the stopping criterion was "
                          f"met; increase max_iter or tol, or standardize X.", ConvergenceWarning, stacklevel=3)
        self._store(ts, d)

    def _grad_norm(self, kern, Xk, Y, sw, ts, bs, train_ids, l2, d):
        G, _, W = kern.batches_stats(Xk, Y, sw, ts.theta, bs, train_ids)
        grad = (2.0 / W) * G.reshape(ts.theta.shape)
        grad[:, :d] += l2 * ts.theta[:, :d]
        if not self.fit_intercept:
            grad[:, d] = 0.0
        return float(np.linalg.norm(grad))

    def _store(self, ts, d):
        self._ts = ts
        self.t_ = ts.step
        single = self._y_ndim == 1
        self.coef_ = ts.theta[0, :d].copy() if single else ts.theta[:, :d].copy()
        self.intercept_ = float(ts.theta[0, d]) if single else ts.theta[:, d].copy()

    # ------------------------------------------------------------------------------------------------------
    # prediction
    def predict(self, X):
        check_is_fitted(self, "coef_")
        _, Xk = self._validate_X(X, reset=False)
        out = _engine.kernels(self.backend).predict(Xk, self._ts.theta)
        return out[:, 0] if self._y_ndim == 1 else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.multi_output = True
        return tags


# ----------------------------------------------------------------------------------------------------------
def _is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def _is_real(v):
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


def _positive_int(name, v):
    if not (_is_int(v) and v > 0):
        raise ValueError(f"{name} must be a positive int, got {v!r}")


def _real(name, v, low=None, high=None, low_open=False, high_open=False):
    ok = _is_real(v) and np.isfinite(v)
    ok = ok and (low is None or (v > low if low_open else v >= low))
    ok = ok and (high is None or (v < high if high_open else v <= high))
    if not ok:
        lo = "" if low is None else ("(" if low_open else "[") + f"{low}, "
        hi = "" if high is None else f"{high}" + (")" if high_open else "]")
        where = f"in {lo}{hi}" if low is not None and high is not None else (
            f"{'>' if low_open else '>='} {low}" if low is not None else f"{'<' if high_open else '<='} {high}")
        raise ValueError(f"{name} must be a finite number {where}, got {v!r}")


def _named(name, fn, *args, **kwargs):
    """Call a scikit-learn validator; make sure its error names the argument."""
    try:
        return fn(*args, **kwargs)
    except (ValueError, TypeError) as exc:
        message = str(exc)
        if name in message:
            raise
        raise type(exc)(f"{name}: {message}") from exc


def _weighted_sst(Y, sw):
    if sw is None:
        return float(np.square(Y - Y.mean(axis=0)).sum())
    mean = np.average(Y, axis=0, weights=sw)
    return float((sw[:, None] * np.square(Y - mean)).sum())
