"""LinearRegressor: a scikit-learn estimator trained like torch.optim, by fastgd's compiled kernels."""

import functools
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import _check_sample_weight, check_array, check_is_fitted, validate_data

from . import _dask, _engine, _training
from ._rules import LOSSES
from ._validation import Boolean, InstanceOf, Interval, Options, Predicate, check_all
from .optimizers import get_optimizer
from .schedules import Constant, Schedule

PENALTIES = {None: 0.0, "l2": 0.0, "l1": 1.0, "elasticnet": None}  # l1 share of alpha (None: l1_ratio)
# batch_size="auto": about this many updates per epoch, in [AUTO_MIN_BATCH, AUTO_MAX_BATCH] rows
AUTO_UPDATES = 256
AUTO_MIN_BATCH = 32
AUTO_MAX_BATCH = 4096
# max_iter="auto": at least 1000 epochs, more on small data (epochs that visit this many rows in all) ...
AUTO_ROW_VISITS = 2_000_000
AUTO_MAX_EPOCHS = 100_000  # ... up to this many
# after a fit on data this small (n·d·k values), the shortfall from the exact least-squares optimum is
# measured (an O(n·d²) solve that costs milliseconds) and reported if the gradient descent fell short
CHECK_EXACT_MAX_VALUES = 250_000  # values: the solve makes a standardized copy (at most 2 MB)
SHORTFALL_WARN = 1e-3
NONSMOOTH_MIN_BATCH = 4096  # "auto" batch size with a loss other than the squared error: at least this (or n)


def _atomic(method):
    """A fit that raises (or is stopped by a second Ctrl-C) leaves every fitted attribute as it was, the
    optimizer state and the random generator included: the previous model stays usable."""
    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        params = set(self._get_param_names())
        saved = {key: value for key, value in self.__dict__.items() if key not in params}
        ts, rng = saved.get("_ts"), saved.get("_rng")
        ts_snap = ts.snapshot() if ts is not None else None
        rng_state = rng.get_state() if isinstance(rng, np.random.RandomState) else None
        try:
            return method(self, *args, **kwargs)
        except BaseException:
            for key in [key for key in self.__dict__ if key not in params]:
                del self.__dict__[key]
            self.__dict__.update(saved)
            if ts_snap is not None:
                ts.restore(ts_snap)
            if rng_state is not None:
                rng.set_state(rng_state)
            raise
    return guarded


class LinearRegressor(RegressorMixin, BaseEstimator):
    """Linear regression trained by mini-batch gradient descent with torch.optim's optimizers.

    Objective, minimized over weights ``W`` (k × d) and intercepts ``b`` (k), with sample weights ``s``
    (ones by default; only their ratios matter, and they are rescaled exactly, by a power of two, so that no
    sum of them overflows)::

        Σ_i s_i ‖W x_i + b − y_i‖² / Σ_i s_i  +  alpha · (l1_ratio · ‖W‖₁ + (1 − l1_ratio) / 2 · ‖W‖²)

    that is the (weighted) mean squared error, summed over outputs (with another ``loss``: the mean of that
    loss of each residual, see ``loss``), plus the penalty, which never touches
    the intercept: ``penalty="l2"`` is ``l1_ratio = 0`` (matches ``Ridge(alpha=n·alpha/2)`` on unweighted
    data), ``"l1"`` is ``l1_ratio = 1`` (matches ``Lasso(alpha=alpha/2)``), ``"elasticnet"`` uses
    ``l1_ratio``. Each mini-batch step uses the gradient of the batch's own weighted mean. The l1 part is
    applied by a proximal step (soft-thresholding) after each update, scaled by each coordinate's effective
    step size for the chosen optimizer, so exact zeros appear and the fixed point satisfies the lasso
    optimality conditions. An optimizer's own ``weight_decay`` behaves as in torch (on every parameter, the
    intercept included); prefer ``penalty``.

    Standardization (``standardize=True``, the default): the fit works in the coordinates of centred,
    unit-variance columns and targets, so its steps mean the same on data in any units (dollars, counts,
    1e-6 or 1e6). Nothing is copied: the means and scales are computed in one pass and applied inside the
    kernels as O(k·d) corrections per batch. ``coef_``/``intercept_`` and the penalty are in the data's own
    units. ``standardize=False`` trains on the raw values; then every update is exactly torch.optim's.

    Precision: the returned model is the mean of the iterates over the last round of updates (``average``;
    Polyak-Ruppert averaging, which removes the noise of a constant step on least squares), evaluated on a
    fixed set of batches after each round; training stops when that evaluation improves by less than ``tol``
    (in units of the variance of y, i.e. of R²) for ``n_iter_no_change`` rounds. Measured: within 1e-7 of
    the least-squares R² on 1e6 x 100 in 3-4 epochs. Full-batch gradient descent (``batch_size=None``) has
    no noise to average: it shrinks the rate instead ("adaptive").

    Parameters
    ----------
    optimizer : str or fastgd.optimizers.Optimizer, default="adam"
        ``"sgd"``, ``"momentum"``, ``"nesterov"``, ``"adagrad"``, ``"rmsprop"``, ``"adam"``, ``"adamw"``,
        ``"adamax"``, ``"nadam"``: torch.optim's hyperparameter defaults, starting from the registry's
        ``start_lr`` for standardized data (e.g. 0.01 for Adam and SGD) rather than torch's ``lr``; or an
        optimizer object carrying every hyperparameter, ``lr`` included, e.g. ``Adam(lr=0.01, amsgrad=True)``
        (reachable as ``optimizer__lr`` in ``set_params``/GridSearchCV, also when given by name).
    learning_rate : "adaptive", float or fastgd.schedules.Schedule, default="adaptive"
        ``"adaptive"``: start from the optimizer's ``lr``; when progress stalls and averaging cannot remove
        the step noise (fewer than 100 updates per epoch), divide the rate by 5, down to 1e-4 of its start.
        A float: that constant rate (overrides the optimizer's ``lr``). A schedule: evaluated at every update
        inside the kernel (its ``lr``, or else the optimizer's, is the base rate).
    batch_size : "auto", int or None, default="auto"
        Rows per update. "auto": about 256 updates per epoch, a power of two between 32 and 4096 (large data
        then uses the parallel kernel on every core), and at least (d + 1) / (non-zeros per row) on sparse
        data so the update of every coordinate never costs more than the batch's gradient. 1 is plain
        stochastic gradient descent, None full-batch gradient descent. The size used is ``batch_size_``.
    max_iter : int or "auto", default="auto"
        Maximum number of epochs (passes over the data). "auto": 1000, or on small data enough epochs to
        visit 2,000,000 rows (at most 100,000 epochs): ill-conditioned small problems need many cheap epochs.
        The number used is ``max_iter_``.
    tol : float or None, default=1e-6
        Improvement of the evaluated objective (with ``early_stopping``: of the validation R²), relative to
        the variance of y, that counts as progress. None: train exactly ``max_iter`` epochs (unless ``gtol``
        stops earlier) and keep the last model.
    n_iter_no_change : int, default=2
        Rounds without progress before the rate is divided or training stops. The rounds are judged by an
        exact evaluation of the averaged model, not by a noisy running loss, so 2 suffices (scikit-learn's
        SGD uses 5 for its running loss).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the batches (chosen at random among those with positive sample
        weight; rows are never copied), judge progress by their R², and keep the best model.
    validation_fraction : float, default=0.1
    shuffle : bool, default=True
        Visit the batches in a new random order each epoch (the rows themselves stay in place).
    random_state : int, RandomState or None, default=None
    fit_intercept : bool, default=True
    standardize : bool, default=True
        Train on implicitly centred and scaled columns and targets (see above).
    average : bool, default=True
        Return the mean of the iterates over the last round rather than the last iterate.
    penalty : {None, "l2", "l1", "elasticnet"}, default=None
        The penalty on the weights (never on the intercept); see the objective above.
    alpha : float, default=1e-4
        Penalty strength (see the objective above).
    l1_ratio : float, default=0.15
        l1 share of the elastic-net penalty.
    gtol : float or None, default=None
        Also stop when the norm of the full training gradient (of the smooth part of the objective, in the
        data's units) falls below ``gtol`` (the ‖∇f‖ < ε rule). Costs one extra pass over the data per epoch.
    warm_start : bool, default=False
        Start ``fit`` from ``coef_`` and ``intercept_`` and keep the optimizer state (moments, step count)
        when the optimizer and the shapes are unchanged (else the state starts afresh).
    n_jobs : int or None, default=None
        Threads for the parallel kernel, during the fit only (None or -1: all). Results do not depend on it.
    verbose : int, default=0
        Print one line per epoch (loss, evaluation, rate, elapsed time).
    backend : {"auto", "numba", "native"}, default="auto"
        The kernels: Numba (compiled on first use, cached on disk) or the ahead-of-time compiled Cython twin
        built at install time. "auto" uses the native kernels when they are built (they measured as fast or
        faster in every case tried and need no JIT warm-up; see ``fastgd._engine.kernels``), else Numba.
        Both give the same results to about 1e-15 (summation order within a chunk may differ).
    callbacks : callable, list of callables or None, default=None
        Called after every epoch with a ``fastgd._training.EpochInfo`` (epoch, loss, eval_loss,
        learning_rate, step, elapsed, coef, intercept); a callback returning True (the bool, e.g.
        ``info.elapsed > 60``) stops training there (the stopping rules then pick the model as usual); any
        other return value continues (None and False silently, others with a warning). With ``verbose`` and
        tqdm installed, epochs over more than about 32 MB of X also show a progress bar with rate and ETA.
    loss : {"squared_error", "huber", "epsilon_insensitive", "squared_epsilon_insensitive", "quantile"}, \
            default="squared_error"
        The loss of a residual r = prediction − target, with scikit-learn's names and meanings: ``"huber"``
        ½r² up to ``epsilon``, linear beyond (``torch.nn.HuberLoss(delta=epsilon)``; robust to outliers);
        ``"epsilon_insensitive"`` max(0, abs(r) − ε) and ``"squared_epsilon_insensitive"`` its square (as
        SGDRegressor's); ``"quantile"`` the pinball loss of ``quantile`` (``QuantileRegressor``'s objective,
        without its penalty). ``score`` stays R²; ``loss_curve_`` is in the loss's own units. With a loss other
        than the squared error, ``batch_size="auto"`` takes at least 4096 rows (all of them on smaller data)
        and ``learning_rate="adaptive"`` also divides the rate on a plateau when the iterates are averaged:
        a loss with a kink needs the averaged iterate with a decaying rate (a small batch's subgradient noise
        stalls the fit short of the optimum); ``tol`` then counts in units of the loss of the constant mean of
        y, and ``validation_scores_`` are 1 − loss / that loss.
    epsilon : float, default=0.1
        Where ``"huber"`` turns linear, and the width of the insensitive zone of the epsilon-insensitive losses,
        in the units of y (also with ``standardize=True``); >= 0.
    quantile : float, default=0.5
        The quantile ``loss="quantile"`` estimates, in (0, 1).
    distributed : {"exact", "parallel"}, default="exact"
        How ``fit`` trains on a dask array or DataFrame (``pip install "fastgd[dask]"``; a distributed
        Client must be running). "exact": the model state (a few KB) travels to the worker holding each
        block and the compiled epoch runs there, block after block, in the order a local fit with the same
        blocks would use (a memmapped file): the same model as that fit. "parallel": every worker trains on its
        own blocks at the same time and the parameters, optimizer state and averages are averaged after
        every epoch (local SGD). X is never gathered to the client. See the user guide ("Data larger than
        memory").

    A fit never returns a model worse (on its evaluation set) than where it started: it warns and keeps the
    start instead; when the weights stop being finite or the loss explodes it raises ``ValueError`` with the
    cause and leaves the previous model in place. Ctrl-C keeps the best model of the completed epochs.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_outputs, n_features)
    intercept_ : float or ndarray of shape (n_outputs,)
    n_iter_ : int, epochs run.
    batch_size_ : int, the batch size used.
    t_ : int, optimizer updates performed (the optimizer's step count).
    loss_curve_ : list of float, training objective per epoch (mean loss seen during the epoch + penalty), in the
        loss's own units.
    validation_scores_ : list of float, validation R² per epoch (with ``early_stopping``).
    best_validation_score_ : float (with ``early_stopping``).
    n_features_in_, feature_names_in_ : as in scikit-learn.
    """

    def __init__(self, optimizer="adam", learning_rate="adaptive", batch_size="auto", max_iter="auto", tol=1e-6,
                 n_iter_no_change=2, early_stopping=False, validation_fraction=0.1, shuffle=True,
                 random_state=None, fit_intercept=True, standardize=True, average=True, penalty=None, alpha=1e-4,
                 l1_ratio=0.15, gtol=None, warm_start=False, n_jobs=None, verbose=0, backend="auto", callbacks=None,
                 distributed="exact", loss="squared_error", epsilon=0.1, quantile=0.5):
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
        self.standardize = standardize
        self.average = average
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.gtol = gtol
        self.warm_start = warm_start
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.backend = backend
        self.callbacks = callbacks
        self.distributed = distributed
        self.loss = loss
        self.epsilon = epsilon
        self.quantile = quantile

    _parameter_constraints = {
        "max_iter": [Options("auto"), Interval(1, None, integer=True)],
        "tol": [Interval(0, None), Options(None)],
        "n_iter_no_change": [Interval(1, None, integer=True)],
        "early_stopping": [Boolean()],
        "validation_fraction": [Interval(0, 1, closed="neither")],
        "shuffle": [Boolean()],
        "fit_intercept": [Boolean()],
        "standardize": [Boolean()],
        "average": [Boolean()],
        "penalty": [Options(None, "l2", "l1", "elasticnet")],
        "alpha": [Interval(0, None)],
        "l1_ratio": [Interval(0, 1)],
        "gtol": [Interval(0, None, closed="neither"), Options(None)],
        "warm_start": [Boolean()],
        "verbose": [Interval(0, None, integer=True)],
        "backend": [Options(*_engine.BACKENDS)],
        "callbacks": [Options(None), Predicate(lambda v: callable(v) or (
            isinstance(v, (list, tuple)) and all(map(callable, v))), "a callable or a list of callables")],
        "distributed": [Options("exact", "parallel")],
        "loss": [Options(*LOSSES)],
        "epsilon": [Interval(0, None)],
        "quantile": [Interval(0, 1, closed="neither")],
        "learning_rate": [Options("adaptive"), Interval(0, None, closed="neither", label="a positive float"),
                          InstanceOf(Schedule, "a schedule from fastgd.schedules")],
        "batch_size": [Options("auto"), Interval(1, None, integer=True), Options(None)],
        "n_jobs": [Options(None), Predicate(lambda v: Interval(integer=True).accepts(v) and v != 0,
                                            "a non-zero int (-1: all cores)")],
    }

    # ------------------------------------------------------------------------------------------------------
    # parameters
    def set_params(self, **params):
        """As scikit-learn's; ``optimizer__lr=...`` also works when ``optimizer`` is a name: the name becomes
        its registry object (starting from the registry's ``start_lr``) and the value is set on it."""
        if any(key.startswith("optimizer__") for key in params):
            if isinstance(params.get("optimizer"), str):
                params["optimizer"] = _named_optimizer(params["optimizer"])
            elif "optimizer" not in params and isinstance(self.optimizer, str):
                self.optimizer = _named_optimizer(self.optimizer)
        return super().set_params(**params)

    # ------------------------------------------------------------------------------------------------------
    # validation
    def _check_params(self):
        opt = get_optimizer(_named_optimizer(self.optimizer) if isinstance(self.optimizer, str) else self.optimizer)
        check_all(None, self.get_params(deep=False), self._parameter_constraints)
        if isinstance(self.learning_rate, Schedule):
            self.learning_rate.validate()
        _engine.kernels(self.backend)  # a missing native extension is reported here, naming the fix
        return opt

    def _validate_X(self, X, reset):
        mapped = _mapped_file(X)
        given = X
        X = _named("X", validate_data, self, X=X, reset=reset, accept_sparse="csr",
                   dtype=[np.float64, np.float32], order="C")
        if mapped is not None and not np.may_share_memory(X, given):
            _warn_memmap_copied(given, X, mapped)
        if sp.issparse(X):
            X = X.tocsr()
            return X, (X.data, X.indices, X.indptr, X.shape[1])  # the kernels take mixed index dtypes
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
            sw = _normalized_weights(sw)
            if not sw.sum() > 0:
                raise ValueError("sample_weight sums to zero: at least one row needs a positive weight")
        return X, Xk, y, sw

    def _batch_size(self, X, n, k):
        if self.batch_size is None:
            return n
        if self.batch_size == "auto":
            nnz = X.nnz / max(n, 1) if sp.issparse(X) else X.shape[1]
            if self.loss != "squared_error":  # a small batch's subgradient noise stalls the fit short of the optimum
                return max(auto_batch_size(n, X.shape[1], k, nnz), min(n, NONSMOOTH_MIN_BATCH))
            return auto_batch_size(n, X.shape[1], k, nnz)
        return min(self.batch_size, n)

    def _problem(self, X, Xk, Y, sw, scaling):
        l1, l2 = self._penalty()
        kern = _engine.kernels(self.backend)
        n = Y.shape[0]
        bs = self._batch_size(X, n, Y.shape[1])
        # with standardization, fastgd's own mode: each batch counts for its weight (an unbiased gradient of
        # the whole objective, also with a short last batch or sample weights); without, torch's mean per batch
        total = float(n if sw is None else sw.sum())
        batch_weight = total / _engine.n_batches(n, bs) if scaling is not None else 0.0
        return _training.Problem(Xk, Y, sw, bs, kern, self.backend, _engine.resolve_n_threads(self.n_jobs),
                                 self.fit_intercept, l1, l2, scaling, batch_weight, loss=self._loss())

    def _loss(self):
        """(code, param) of the loss for the kernels; None for the squared error (their default)."""
        if self.loss == "squared_error":
            return None
        return LOSSES.index(self.loss), float(self.quantile if self.loss == "quantile" else self.epsilon)

    def _max_iter(self, n):
        if self.max_iter == "auto":
            return int(min(AUTO_MAX_EPOCHS, max(1000, -(-AUTO_ROW_VISITS // max(n, 1)))))
        return self.max_iter

    def _settings(self, opt, average, n):
        if isinstance(self.learning_rate, Schedule):
            lr, sched = self.learning_rate.pack(opt.lr)
        else:
            adaptive = isinstance(self.learning_rate, str)
            lr, sched = Constant().pack(opt.lr if adaptive else float(self.learning_rate))
        return _training.Settings(opt, lr, sched, adaptive=isinstance(self.learning_rate, str), average=average,
                                  max_iter=self._max_iter(n), tol=self.tol, n_iter_no_change=self.n_iter_no_change,
                                  gtol=self.gtol, shuffle=self.shuffle, verbose=self.verbose,
                                  penalized_eval=not self.early_stopping, callbacks=_callbacks(self.callbacks),
                                  user_chose=self._user_chose())

    def _user_chose(self):
        """The training settings the user changed from the defaults (an optimizer object carries its lr)."""
        named = isinstance(self.optimizer, str)
        return frozenset(name for name, chosen in (
            ("learning_rate", self.learning_rate != "adaptive" or not named),
            ("optimizer", not (named and self.optimizer == "adam")),
            ("standardize", not self.standardize)) if chosen)

    # ------------------------------------------------------------------------------------------------------
    # fitting
    @_atomic
    def fit(self, X, y, coef_init=None, intercept_init=None, sample_weight=None):
        """Train from zero (or ``coef_init``/``intercept_init``, or the previous fit with ``warm_start``)."""
        if _dask.is_dask(X) or _dask.is_dask(y) or _dask.is_dask(sample_weight):
            return _dask.fit(self, X, y, coef_init, intercept_init, sample_weight)
        opt = self._check_params()
        warm = self.warm_start and hasattr(self, "coef_")
        X, Xk, y, sw = self._validate(X, y, sample_weight, reset=not warm)
        Y = _engine.targets_2d(y)
        k, d = Y.shape[1], X.shape[1]
        if warm and self._n_outputs != k:
            raise ValueError(f"y has {k} outputs but the warm-started model has {self._n_outputs}; "
                             f"set warm_start=False to fit a new model")
        kern = _engine.kernels(self.backend)
        scaling = _training.Scaling.from_data(kern, Xk, Y, sw, self.fit_intercept,
                                                 _engine.resolve_n_threads(self.n_jobs)) if self.standardize else None
        ts = self._start_state(opt, scaling, warm, coef_init, intercept_init, k, d)
        out = self._train_and_store(self._problem(X, Xk, Y, sw, scaling), ts, opt, y.ndim, warn=False)
        # one warning per fit: a measured shortfall names the cause better than "max_iter reached"
        if out.warning or not self._check_shortfall(X, Y, sw, out):
            self._warn(out)
        return self

    def _check_shortfall(self, X, Y, sw, out):
        """On small data, measure how far the fit stopped from the exact least-squares optimum (a diagnostic
        only: an O(n·d²) solve of milliseconds) and warn, naming the cause, when it is more than
        SHORTFALL_WARN in R² units. Skipped with a penalty, early stopping or an interruption. Returns whether
        it warned."""
        n, d = X.shape
        k = Y.shape[1]
        if self.loss != "squared_error" or self.penalty is not None or self.early_stopping or out.interrupted \
                or self.tol is None \
                or n * d * k > CHECK_EXACT_MAX_VALUES:
            return
        A = X.toarray() if sp.issparse(X) else np.asarray(X, dtype=np.float64)
        cols = A.std(axis=0)
        A = (A - A.mean(axis=0)) / np.where(cols > 0, cols, 1.0) if self.fit_intercept else A
        if self.fit_intercept:
            A = np.hstack([A, np.ones((n, 1))])
        r = np.sqrt(sw)[:, None] if sw is not None else np.ones((n, 1))
        sol, _, _, sv = np.linalg.lstsq(r * A, r * Y, rcond=None)
        total = float(r[:, 0] @ r[:, 0])
        best = float(np.square(r * (A @ sol - Y)).sum()) / total
        pred = self.predict(X).reshape(n, k)
        got = float(np.square(r * (pred - Y)).sum()) / total
        mean = (r[:, 0] ** 2 @ Y) / total
        var = float(np.square(r * (Y - mean)).sum()) / total if self.fit_intercept else float(
            np.square(r * Y).sum()) / total
        if var > 0 and (got - best) / var > SHORTFALL_WARN:
            cond = sv[0] / sv[-1] if sv.size and sv[-1] > 0 else np.inf
            cause = (f"the standardized features are ill-conditioned (condition number {cond:.3g}), so progress "
                     f"along their weakest directions is slow" if cond > 100 else
                     "the progress per round fell below tol before the optimum")
            warnings.warn(
                f"Gradient descent stopped {(got - best) / var:.3g} (in R² units) short of the least-squares "
                f"optimum after {self.n_iter_} epochs: {cause}. Raise max_iter and lower tol, or use a "
                f"closed-form solver (sklearn.linear_model.LinearRegression).", ConvergenceWarning, stacklevel=3)
            return True
        return False

    def _start_state(self, opt, scaling, warm, coef_init, intercept_init, k, d):
        """The training state fit starts from: the previous model (warm start; its optimizer state too when
        it fits), ``coef_init``/``intercept_init``, or the standardized origin (the best constant)."""
        raw = self._raw_params(k, d) if warm else np.zeros((k, d + 1))
        if not warm and scaling is not None and self.fit_intercept:
            raw[:, d] = scaling.y_mean
        raw = self._apply_init(raw, coef_init, intercept_init, k, d)
        ts = self._ts if warm and self._ts.fits(opt, k, d) else _engine.TrainingState.fresh(opt, k, d)
        ts.theta[...] = raw if scaling is None else scaling.to_std(raw)
        return ts

    def _train_and_store(self, problem, ts, opt, y_ndim, warn=True):
        """fit's loop with its stopping rules (in memory or on dask blocks), then the fitted attributes and the
        loop's warning (``warn=False``: the caller gives it). Returns the loop's Outcome."""
        rng = check_random_state(self.random_state)
        train_ids, eval_ids = self._split_batches(problem, rng)
        settings = self._settings(opt, self.average, problem.n)
        self.max_iter_ = settings.max_iter
        try:
            out = _training.train(problem, ts, settings, rng, train_ids=train_ids, eval_ids=eval_ids,
                                  epochs=settings.max_iter, stopping=True,
                                  keep_best=self.tol is not None or self.early_stopping)
        except _training.Diverged as exc:
            raise ValueError(str(exc)) from None
        self._rng = rng
        self._y_ndim = y_ndim
        self.n_iter_ = out.n_iter
        self.loss_curve_ = out.losses
        if self.early_stopping:
            var = problem.target_variance(eval_ids)
            self.validation_scores_ = [1.0 - f / var if var > 0 else 0.0 for f in out.eval_losses]
            self.best_validation_score_ = max(self.validation_scores_, default=-np.inf)
        self._store(ts, problem.scaling, problem)
        if warn:
            self._warn(out)
        return out

    @_atomic
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), keeping the optimizer state between calls (like SGDRegressor).

        With ``standardize=True`` the column statistics are running ones: each call merges the new rows'
        means and variances into them and re-expresses the model in the new coordinates (its predictions
        are unchanged by that). No iterate averaging and no stopping rule apply: the caller decides.
        """
        if _dask.is_dask(X) or _dask.is_dask(y):
            raise TypeError("partial_fit takes in-memory chunks (NumPy arrays, memmaps, SciPy CSR); for a dask "
                            "collection call fit (it trains where the blocks live) or pass its blocks one by one")
        opt = self._check_params()
        first = not hasattr(self, "coef_")
        X, Xk, y, sw = self._validate(X, y, sample_weight, reset=first)
        Y = _engine.targets_2d(y)
        k, d = Y.shape[1], X.shape[1]
        if not first and self._n_outputs != k:
            raise ValueError(f"y has {k} outputs but the model was fitted with {self._n_outputs}")
        kern = _engine.kernels(self.backend)
        scaling = None
        if self.standardize:
            scaling = _training.Scaling.from_data(kern, Xk, Y, sw, self.fit_intercept,
                                                 _engine.resolve_n_threads(self.n_jobs))
            if not first and self._scaling is not None:
                scaling = self._scaling.merged(scaling)
        if first:
            raw = np.zeros((k, d + 1))
            if scaling is not None and self.fit_intercept:
                raw[:, d] = scaling.y_mean
            ts = _engine.TrainingState.fresh(opt, k, d)
            self._rng = check_random_state(self.random_state)
            self.loss_curve_, self.n_iter_, self._y_ndim = [], 0, y.ndim
        else:
            raw = self._raw_params(k, d)
            ts = self._ts if self._ts.fits(opt, k, d) else _engine.TrainingState.fresh(opt, k, d)
        ts.theta[...] = raw if scaling is None else scaling.to_std(raw)
        problem = self._problem(X, Xk, Y, sw, scaling)
        ids = np.arange(problem.n_batches, dtype=np.int64)
        try:
            out = _training.train(problem, ts, self._settings(opt, False, Y.shape[0]), self._rng, train_ids=ids, eval_ids=None,
                                  epochs=1, stopping=False, n_done=self.n_iter_)
        except _training.Diverged as exc:
            raise ValueError(str(exc)) from None
        self.n_iter_ += out.n_iter
        self.loss_curve_ = self.loss_curve_ + out.losses
        self._store(ts, scaling, problem)
        return self

    def _split_batches(self, problem, rng):
        """(training batches, evaluation batches): held-out batches with early stopping, else a fixed subset
        of the training batches (all of them on small data) on which the loop measures progress."""
        nb = problem.n_batches
        all_ids = np.arange(nb, dtype=np.int64)
        if self.early_stopping:
            weights = _batch_weights(problem)
            usable = np.flatnonzero(weights > 0)
            n_val = int(round(self.validation_fraction * nb))
            if n_val < 1 or nb - n_val < 1 or len(usable) < 2:
                raise ValueError(
                    f"early_stopping holds out whole batches: validation_fraction={self.validation_fraction} of "
                    f"{nb} batch(es) ({len(usable)} with positive sample weight) leaves no validation or no "
                    f"training batch; use a smaller batch_size or a different validation_fraction")
            val = np.sort(rng.permutation(usable)[:min(n_val, len(usable) - 1)]).astype(np.int64)
            return np.setdiff1d(all_ids, val).astype(np.int64), val
        if problem.n <= 2 * _training.EVAL_ROWS:
            return all_ids, all_ids
        n_eval = max(1, -(-_training.EVAL_ROWS // problem.batch_size))
        return all_ids, np.sort(rng.permutation(nb)[:n_eval]).astype(np.int64)

    def _apply_init(self, raw, coef_init, intercept_init, k, d):
        if coef_init is not None:
            coef = np.asarray(coef_init, dtype=np.float64)
            shapes = [(k, d)] + ([(d,)] if k == 1 else [])
            if coef.shape not in shapes or not np.all(np.isfinite(coef)):
                raise ValueError(f"coef_init must be finite and of shape {' or '.join(map(str, shapes))} "
                                 f"(n_outputs, n_features), got shape {coef.shape}")
            raw[:, :d] = coef.reshape(k, d)
        if intercept_init is not None:
            b = np.asarray(intercept_init, dtype=np.float64)
            if b.shape not in ([(), (1,)] if k == 1 else [(k,)]) or not np.all(np.isfinite(b)):
                raise ValueError(f"intercept_init must hold {k} finite value(s) (shape ({k},)), got shape {b.shape}")
            raw[:, d] = b.reshape(k)
        return raw

    def _penalty(self):
        share = PENALTIES[self.penalty]
        if self.penalty is None:
            return 0.0, 0.0
        share = self.l1_ratio if share is None else share
        return float(self.alpha * share), float(self.alpha * (1.0 - share))

    def _store(self, ts, scaling, problem):
        self._ts = ts
        self._scaling = scaling
        self._n_outputs = ts.theta.shape[0]
        self.t_ = ts.step
        self.batch_size_ = problem.batch_size
        raw = problem.raw(ts.theta)
        d = raw.shape[1] - 1
        single = self._y_ndim == 1
        self.coef_ = raw[0, :d].copy() if single else raw[:, :d].copy()
        self.intercept_ = float(raw[0, d]) if single else raw[:, d].copy()

    def _raw_params(self, k, d):
        """(k, d + 1) parameters in the data's units from the public ``coef_`` and ``intercept_``."""
        coef = np.asarray(self.coef_, dtype=np.float64)
        b = np.asarray(self.intercept_, dtype=np.float64)
        if coef.size != k * d or b.size != k or not (np.all(np.isfinite(coef)) and np.all(np.isfinite(b))):
            raise ValueError(f"coef_ and intercept_ must be finite with shapes ({k}, {d}) (or ({d},)) and ({k},); "
                             f"got {coef.shape} and {b.shape}")
        raw = np.empty((k, d + 1))
        raw[:, :d] = coef.reshape(k, d)
        raw[:, d] = b.reshape(k)
        return raw

    def _warn(self, out):
        """Give the loop's warning or the max_iter one; return whether a warning was given."""
        if out.warning:
            warnings.warn(out.warning, ConvergenceWarning, stacklevel=3)
            return True
        if not out.converged and not out.interrupted and self.tol is not None and self.n_iter_ >= self.max_iter_:
            warnings.warn(f"Maximum number of epochs ({self.max_iter_}) reached before the objective stopped "
                          f"improving by tol={self.tol:g} (relative to the "
                          f"{'variance' if self.loss == 'squared_error' else 'loss of the constant mean'} of y); "
                          f"raise max_iter.",
                          ConvergenceWarning, stacklevel=3)
            return True
        return False

    # ------------------------------------------------------------------------------------------------------
    # prediction
    def predict(self, X):
        """``X @ coef_.T + intercept_``, from the public attributes (editing them changes the predictions)."""
        check_is_fitted(self, "coef_")
        if _dask.is_dask(X):
            return _dask.predict(self, X)
        _, Xk = self._validate_X(X, reset=False)
        k = self._n_outputs
        theta = self._raw_params(k, self.n_features_in_)
        out = _engine.kernels(self.backend).predict(Xk, theta, _engine.resolve_n_threads(self.n_jobs))
        return out[:, 0] if self._y_ndim == 1 else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.multi_output = True
        return tags


def auto_batch_size(n, d, k, nnz_per_row):
    """``batch_size="auto"``: about ``AUTO_UPDATES`` updates per epoch, between 32 and 4096 rows (a power of
    two), and never so small that the O(k·d) update of every coordinate costs more than the batch's
    gradient (sparse, high-dimensional data)."""
    b = 1 << max(0, int(np.floor(np.log2(max(n // AUTO_UPDATES, 1)))))
    b = min(max(b, AUTO_MIN_BATCH), AUTO_MAX_BATCH)
    b = max(b, int(np.ceil(k * (d + 1) / max(nnz_per_row * k, 1.0))))
    return int(min(b, n))


def _callbacks(callbacks):
    if callbacks is None:
        return ()
    return tuple(callbacks) if isinstance(callbacks, (list, tuple)) else (callbacks,)


def _named_optimizer(name):
    """The registry object for an optimizer name, starting from the registry's ``start_lr``."""
    opt = get_optimizer(name)
    return opt.set_params(lr=type(opt).start_lr)


def _mapped_file(X):
    """The file name when X is a view of a file-backed ``np.memmap`` (``np.load(..., mmap_mode="r")``)."""
    base = X
    while isinstance(base, np.ndarray):
        if isinstance(base, np.memmap) and getattr(base, "filename", None):
            return base.filename
        base = base.base
    return None


def _warn_memmap_copied(given, X, filename):
    """A memmapped X that the kernels cannot read in place was copied into memory: say so, and how to avoid it."""
    why = ([] if given.dtype in (np.float32, np.float64) else [f"its dtype is {given.dtype}"]) + (
        [] if given.flags.c_contiguous else
        ["it is Fortran-ordered" if given.flags.f_contiguous else "it is not C-contiguous (a strided view)"])
    warnings.warn(
        f"X is memory-mapped from {filename!r} but {' and '.join(why) or 'it cannot be read in place'}, so it was "
        f"copied into memory in full ({X.nbytes / 2**20:.3g} MiB as {X.dtype}): the out-of-core path, which reads "
        f"a memmap block by block in place, was not taken. Save X once as a C-ordered float32 or float64 .npy "
        f"(np.save(path, np.ascontiguousarray(X, dtype=np.float32)), in pieces for a file larger than memory) "
        f"and pass np.load(path, mmap_mode='r').", UserWarning, stacklevel=4)


def _normalized_weights(sw):
    """``sample_weight`` scaled by a power of two so that its largest value is in [1, 2): the objective is the
    same (weights count only relative to their sum) and exactly so (a power of two scales every sum exactly),
    but no sum of weights can overflow, whatever their units (all 1e300, or one 1e308 among ones)."""
    top = sw.max(initial=0.0)
    if not top > 0:
        return sw  # all zero: the caller says so
    shift = int(np.frexp(top)[1]) - 1
    return sw if shift == 0 else np.ldexp(sw, -shift)


def _batch_weights(problem):
    bs, n = problem.batch_size, problem.n
    if problem.sw is None:
        return np.array([min(bs, n - b * bs) for b in range(problem.n_batches)], dtype=np.float64)
    return np.add.reduceat(problem.sw, np.arange(0, n, bs))


# ----------------------------------------------------------------------------------------------------------
def _named(name, fn, *args, **kwargs):
    """Call a scikit-learn validator; make sure its error names the argument."""
    try:
        return fn(*args, **kwargs)
    except (ValueError, TypeError) as exc:
        message = str(exc)
        if name in message:
            raise
        raise type(exc)(f"{name}: {message}") from exc
