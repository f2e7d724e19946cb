"""The problem: validated data and model parameters (math.md, "Model and loss").

``Problem`` is the first stage of flowkit's one-way data flow
(X, y -> Problem -> flow -> Trajectory).  Everything that can be wrong with the
input is detected here, before any integration starts.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linprog, nnls

from ._memo import ArrayMemo
from .exceptions import DataError, NotSeparableError, NumericalRangeError, ParameterError

__all__ = ["Problem", "data_scale", "validate_data", "validate_arrays", "separable_tilde", "positive_float",
           "check_kind", "separability_margin", "l2_max_margin_direction"]

# Data count as separable when the LP margin (X scaled to max |x| = 1) exceeds this: below
# it the flow's margins grow too slowly to be told from rounding
SEPARABLE_MIN = 1e-9

# Data scales max |x| on which the models that run their data unscaled (the linearised
# model, the GD baselines) are validated: the network flow's coordinates key on alpha^D
# while its dynamics depend on alpha^D max |x|, so unscaled it lost digits below 1e-6
# (w_hat against the covariant run on X/c with alpha c^(1/D): 2e-11 at 1e-6, 4e-9 at
# 1e-8, 1e-2 at 1e-20) and failed past ~1e110.  The network flow scales (Problem.scale).
DATA_SCALE_RANGE = (1e-6, 1e40)

# Largest |log(alpha^D)| handled: the flow starts at gamma~ = 1e-14, where
# R = gamma~/alpha^D must stay a normal float64 (e^-632 > 1e-275).
_MAX_LOG_ALPHA_D = 600.0


def validate_data(X, y):
    """Return (X, y) as float64 arrays after checking shapes, finiteness and labels."""
    X, y = validate_arrays(X, y)
    if not np.all(np.isin(y, (-1.0, 1.0))):
        bad = [float(v) for v in np.unique(y) if v not in (-1.0, 1.0)]
        raise DataError(f"labels must be -1 or +1; found {bad[:5]}")
    return X, y


def validate_arrays(X, y):
    """Return (X, y) as float64 arrays after checking shapes and finiteness: X is N x d,
    y has N entries (labels or regression targets)."""
    for name, arr in (("X", X), ("y", y)):
        try:
            dtype = np.asarray(arr).dtype
        except ValueError as exc:  # ragged nested lists: numpy cannot make an array of them
            raise DataError(f"{name} is not a rectangular array (rows of different lengths?): "
                            f"{str(exc).split('. ')[0]}") from None
        if dtype.kind not in "biuf" and not (dtype.kind == "O" and _numeric_objects(arr)):
            raise DataError(f"{name} must be a real numeric array; got dtype {dtype}")
    try:
        X = np.array(X, dtype=np.float64)
        y = np.array(y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"X and y must be numeric arrays: {exc}") from None
    if X.ndim != 2:
        raise DataError(f"X must be a 2-d array (N samples x d features); got shape {X.shape}")
    if y.ndim != 1:
        raise DataError(f"y must be a 1-d array of N labels; got shape {y.shape}")
    n, d = X.shape
    if n == 0:
        raise DataError("X has no samples (N = 0)")
    if d == 0:
        raise DataError("X has no features (d = 0)")
    if y.shape[0] != n:
        raise DataError(f"shape mismatch: X has {n} samples but y has {y.shape[0]} labels")
    if not np.all(np.isfinite(X)):
        bad = np.argwhere(~np.isfinite(X))[0]
        raise DataError(f"X contains NaN or inf (first at row {bad[0]}, column {bad[1]})")
    if not np.all(np.isfinite(y)):
        raise DataError(f"y contains NaN or inf (first at index {int(np.argmax(~np.isfinite(y)))})")
    return X, y


# Per-dataset facts of ``Problem.build`` (flowkit._memo)
_FACTS = ArrayMemo()


def _dataset_facts(X, y):
    """(Xt, gamma2) for validated (X, y): ``separable_tilde`` and the ℓ2 margin, cached."""
    Xt = np.ascontiguousarray(y[:, None] * X)
    return Xt, _FACTS.get(Xt, lambda _: l2_max_margin_direction(separable_tilde(X, y))[1])


def separable_tilde(X, y):
    """Rows x̃_n = y_n x_n of validated (X, y) (math.md, "Model and loss"), after checking
    that the data are linearly separable (``NotSeparableError`` otherwise)."""
    X, y = validate_data(X, y)
    Xt = np.ascontiguousarray(y[:, None] * X)
    t = _separability_certificate(Xt)
    if t is None:
        t = separability_margin(Xt) if np.any(Xt) else 0.0
    if not t > SEPARABLE_MIN:
        raise NotSeparableError(
            "data are not linearly separable: no w with y_n x_n·w > 0 for all n by more than "
            f"the threshold (the LP max-margin under |w|_inf <= 1, for X scaled to max |x| = 1, "
            f"is {t + 0.0:.3g}, not above {SEPARABLE_MIN:g}); the exp-loss cannot reach 0")
    return Xt


def _numeric_objects(arr):
    try:
        return all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
                   for v in np.asarray(arr, dtype=object).ravel())
    except TypeError:
        return False


def _separability_certificate(Xt):
    """For N <= d: a lower bound on ``separability_margin`` from the least-norm solution of
    Xt w = 1 (QR of Xtᵀ, O(N² d)), when it is above the separability threshold; else None.

    Why: the LP has d + 1 variables and N d nonzeros (9.7 s for N = 200, d = 10,000), while
    with N <= d and Xt of full row rank Xt w = 1 is solvable and any w is a certificate:
    the LP's t >= min(Xt w) / (max|Xt| |w|_inf) for Xt scaled as there."""
    n, d = Xt.shape
    if n > d or n < 2:
        return None
    Q, R = np.linalg.qr(Xt.T)                       # Xtᵀ = Q R, R N x N
    diag = np.abs(np.diag(R))
    if not diag.min() > 1e-10 * diag.max():
        return None
    from scipy.linalg import solve_triangular
    w = Q @ solve_triangular(R, np.ones(n), trans="T")  # least-norm solution of Xt w = 1
    lower = float(np.min(Xt @ w)) / (float(np.max(np.abs(Xt))) * float(np.max(np.abs(w))))
    return lower if lower > SEPARABLE_MIN else None


def separability_margin(Xt):
    """Largest t with Xt w >= t, |w|_inf <= 1 (an LP, HiGHS), for Xt scaled to max |Xt| = 1
    (HiGHS tolerances are absolute).  t > 0 iff separable."""
    Xt = Xt / np.max(np.abs(Xt))
    n, d = Xt.shape
    # variables (w_1..w_d, t); maximise t
    c = np.zeros(d + 1)
    c[-1] = -1.0
    A_ub = np.hstack([-Xt, np.ones((n, 1))])
    bounds = [(-1.0, 1.0)] * d + [(None, None)]
    res = linprog(c, A_ub=A_ub, b_ub=np.zeros(n), bounds=bounds, method="highs")
    if res.status != 0:  # pragma: no cover - the LP is always feasible and bounded
        raise DataError(f"separability LP failed: {res.message}")
    return -res.fun


def l2_max_margin_direction(Xt):
    """ℓ2 max-margin predictor (min ||w||_2 s.t. Xt w >= 1) by least-distance programming.

    Lawson & Hanson's LDP reduction to NNLS: with E = [Xtᵀ; 1ᵀ] and f = e_{d+1},
    the NNLS residual r = E u - f gives w = -r[:d] / r[d].
    Returns (w, gamma2) where gamma2 = 1/||w|| is the data's ℓ2 margin (math.md, Lemma 3).
    """
    scale = np.max(np.abs(Xt))  # NNLS tolerances are absolute: solve for Xt/scale
    Xt = Xt / scale
    n, d = Xt.shape
    if d >= 4 * (n + 1) and d + n >= 200:
        dual = _l2_dual(Xt)
        if dual is not None:
            return dual / scale, scale / np.linalg.norm(dual)
    E = np.vstack([Xt.T, np.ones((1, n))])
    f = np.zeros(d + 1)
    f[-1] = 1.0
    u, _ = nnls(E, f, maxiter=50 * (n + d))
    r = E @ u - f
    w = -r[:d] / r[d]
    return w / scale, scale / np.linalg.norm(w)


def _l2_dual(Xt):
    """ℓ2 max-margin predictor from its N-dimensional dual, for d >> N (the primal NNLS
    above is (d+1) x N): max_{nu >= 0} 1ᵀnu - |Xtᵀ nu|²/2, w = Xtᵀ nu.  With Xtᵀ = Q R,
    |Xtᵀ nu|² = |R nu|², and the dual is the N x N NNLS  min |R nu - R^{-T} 1|  (nu >= 0).
    None when R is (nearly) singular or the result misses the constraints Xt w >= 1
    (the caller then uses the primal)."""
    from scipy.linalg import solve_triangular
    n = Xt.shape[0]
    R = np.linalg.qr(Xt.T, mode="r")
    diag = np.abs(np.diag(R))
    if not diag.min() > 1e-8 * diag.max():
        return None
    nu, _ = nnls(R, solve_triangular(R, np.ones(n), trans="T"), maxiter=50 * n)
    w = Xt.T @ nu
    if not np.min(Xt @ w) >= 1.0 - 1e-9:
        return None
    return w


def data_scale(Xt):
    """1 for max |x̃| in [2^-16, 2^16] (results as without scaling, bit for bit), else the
    power of two nearest below max |x̃|."""
    e = math.frexp(float(np.max(np.abs(Xt))))[1] - 1
    return 1.0 if abs(e) <= 16 else math.ldexp(1.0, e)


def _check_scale(Xt):
    """NumericalRangeError for data whose scale max |x| lies outside DATA_SCALE_RANGE."""
    top = float(np.max(np.abs(Xt)))
    lo, hi = DATA_SCALE_RANGE
    if not lo <= top <= hi:
        raise NumericalRangeError(
            f"max |x| = {top:.3g} is outside [{lo:g}, {hi:g}], the data scales on which this model, "
            "which runs its data as given, is validated (the network flow, run so, lost digits below "
            "1e-6: 4e-9 at 1e-8; flowkit.integrate's network flow scales its data itself). "
            "The flow is scale-covariant: integrate X/c with alpha*c**(1/depth) instead (c = max |x|); "
            "that run's gamma~ and margin are this one's, its w, w_hat are c times this one's")


def _check_depth(depth):
    if isinstance(depth, bool) or not isinstance(depth, numbers.Integral):
        if isinstance(depth, numbers.Real) and float(depth).is_integer():
            depth = int(depth)
        else:
            raise ParameterError(f"depth must be an integer >= 2; got {depth!r}")
    depth = int(depth)
    if depth < 2:
        raise ParameterError(f"depth must be an integer >= 2; got {depth}")
    return depth


def check_kind(kind, kinds, scale_name, scale, meaning):
    """ParameterError unless ``kind`` is one of ``kinds`` and the Q scale ``scale`` (named
    ``scale_name``, described by ``meaning``) is given for kind "Q" and only for it: the
    solver families flowkit.max_margin and flowkit.min_potential."""
    if kind not in kinds:
        raise ParameterError(f"kind must be one of {', '.join(map(repr, kinds))}; got {kind!r}")
    if kind == "Q" and scale is None:
        raise ParameterError(f"kind='Q' needs {scale_name} ({meaning}, > 0)")
    if kind != "Q" and scale is not None:
        raise ParameterError(f"{scale_name} applies to kind='Q' only; got {scale_name}={scale!r} with kind={kind!r}")


def positive_float(name, value, error=ParameterError):
    """``value`` as a positive finite float, else ``error`` naming ``name``."""
    if isinstance(value, (bool, np.bool_, str, bytes)):
        raise error(f"{name} must be a positive number; got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise error(f"{name} must be a positive number; got {value!r}") from None
    if not math.isfinite(v) or v <= 0.0:
        raise error(f"{name} must be a positive finite number; got {value!r}")
    return v


@dataclass(frozen=True)
class Problem:
    """Validated data and model: Xt = y ⊙ X (rows x̃_n), depth D, scale alpha.

    Attributes follow math.md: ``log_alpha_D = D log alpha`` is carried instead of
    alpha^D so that no power is ever formed where it could overflow.
    """

    X: np.ndarray
    y: np.ndarray
    depth: int
    alpha: float
    Xt: np.ndarray = field(repr=False)
    log_alpha_D: float
    gamma2: float  # ℓ2 margin of the data (Lemma 3)
    # Xt, log_alpha_D and gamma2 describe the data divided by ``scale`` (a power of two, so
    # exactly) and alpha^D multiplied by it: the same flow (math.md's equations are
    # covariant: w -> w/c, t -> t c^(-2/D), same margins and gamma~), integrated where
    # flowkit's coordinates keep their digits.  X, y, alpha are the caller's.
    scale: float = 1.0

    @classmethod
    def build(cls, X, y, depth, alpha, *, scaled=False):
        """The validated problem.  ``scaled``: the network flow's form, its data scaled to
        max |x̃| near 1 when outside [2^-16, 2^16] (Trajectory.from_states maps back);
        otherwise the data as given, within DATA_SCALE_RANGE."""
        X, y = validate_data(X, y)
        depth = _check_depth(depth)
        alpha = positive_float("alpha", alpha)
        log_alpha_D = depth * math.log(alpha)
        if abs(log_alpha_D) > _MAX_LOG_ALPHA_D and not scaled:
            raise NumericalRangeError(
                f"alpha^depth = 10^{log_alpha_D / math.log(10):.0f} is outside the float64 range "
                f"flowkit supports (|D log10 alpha| <= {_MAX_LOG_ALPHA_D / math.log(10):.0f})")
        Xt, gamma2 = _dataset_facts(X, y)
        if not scaled:
            _check_scale(Xt)
            return cls(X=X, y=y, depth=depth, alpha=alpha, Xt=Xt,
                       log_alpha_D=log_alpha_D, gamma2=gamma2)
        s = data_scale(Xt)
        inner = log_alpha_D + math.log(s)
        if abs(inner) > _MAX_LOG_ALPHA_D:
            scale_note = "" if s == 1.0 else f" x max |x| ~ 2^{math.frexp(s)[1] - 1}"
            raise NumericalRangeError(
                f"alpha^depth{scale_note} = 10^{inner / math.log(10):.0f} is outside the float64 range "
                f"flowkit supports (|D log10 alpha| <= {_MAX_LOG_ALPHA_D / math.log(10):.0f}, for data "
                "of scale max |x| ~ 1: the flow depends on alpha^D and the data's scale through "
                "their product)")
        return cls(X=X, y=y, depth=depth, alpha=alpha, Xt=Xt / s if s != 1.0 else Xt,
                   log_alpha_D=inner, gamma2=gamma2 / s, scale=s)

    @property
    def given_log_alpha_D(self):
        """D log alpha of the caller's alpha (stopping rules are stated in it)."""
        return self.depth * math.log(self.alpha)

    @property
    def n_samples(self):
        return self.Xt.shape[0]

    @property
    def n_features(self):
        return self.Xt.shape[1]
