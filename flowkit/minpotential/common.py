"""What every minimum-potential interpolator returns, and the reduction they share.

All three problems are  min f(w)  s.t.  X w = ŷ  (``__init__``'s docstring), with ŷ = y
(interpolation) or ŷ = P y, the projection of y onto range(X) (least squares: the
solutions of min ‖Xw − y‖ are exactly the interpolators of P y).  A point (w, ν) is
certified by its KKT residual, the larger of

* stationarity  ‖∂f(w) − Xᵀν‖∞, relative (each solver defines ∂f: see its module);
* feasibility   ‖X w − ŷ‖∞ / max(‖ŷ‖∞, ‖X‖∞ ‖w‖∞ ε-scale), relative.

``reduce`` turns X w = ŷ into A w = b with A = Σ_r V_rᵀ (r = rank X, full row rank)
from the SVD X = U Σ Vᵀ: the same affine set, without the redundant or
nearly-dependent rows that make the KKT systems singular.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..exceptions import DataError

__all__ = ["Interpolator", "NoInterpolatorError", "reduce", "feasibility", "RANK_RTOL",
           "INTERPOLATION_RTOL"]

# Singular values below this times the largest count as zero (numpy's matrix_rank rule
# with a fixed, documented threshold instead of one that moves with the shape).
RANK_RTOL = 1e-12
# y is in range(X) when its component outside is at most this, relative to ‖y‖₂.
INTERPOLATION_RTOL = 1e-9


class NoInterpolatorError(DataError):
    """X w = y has no solution (y is not in the range of X) and an interpolation limit
    was asked; ``least_squares=True`` asks for the least-squares limit instead."""


@dataclass(frozen=True)
class Interpolator:
    """A minimum-potential interpolator with its certificate.

    ``w`` solves X w = ŷ (ŷ = y, or its projection onto range(X) with ``least_squares``);
    ``dual`` is ν with ∂f(w) = Xᵀν (kind "Q": h_D^{-1}(w_i/α_i^D) = (α_i/ᾱ)^{D−2} (Xᵀν)_i,
    ᾱ the geometric mean of the scales; one scale: h_D^{-1}(w/α^D) = Xᵀν); ``alpha`` the
    scale or the array of per-feature scales; ``objective`` f(w) in the problem's own units
    (Q^D_α(w) = α^D Σ q_D(w_i/α^D), ‖w‖₁, ‖w‖₂); ``residual`` = ‖X w − y‖₂ (0 up to
    rounding for an interpolator); ``unique`` whether the minimiser is unique (always
    for "Q" and "l2", strictly convex; decided for "l1").
    """

    kind: str
    w: np.ndarray
    dual: np.ndarray
    kkt_residual: float
    objective: float
    residual: float
    least_squares: bool
    depth: int | None = None
    alpha: float | np.ndarray | None = None
    unique: bool | None = None
    info: dict = field(default_factory=dict, repr=False)

    def as_dict(self):
        """JSON-ready summary (lists and floats only)."""
        return dict(kind=self.kind, w=self.w.tolist(), dual=self.dual.tolist(),
                    kkt_residual=self.kkt_residual, objective=self.objective,
                    residual=self.residual, least_squares=self.least_squares, depth=self.depth,
                    alpha=np.asarray(self.alpha).tolist() if self.alpha is not None else None,
                    unique=self.unique,
                    info={k: v for k, v in self.info.items() if isinstance(v, (int, float, str, bool))})


@dataclass(frozen=True)
class Reduced:
    """X w = ŷ as A w = b (A = Σ_r V_rᵀ, b = U_rᵀ y), with ν = U_r λ mapping A's
    multipliers λ to X's."""

    A: np.ndarray
    b: np.ndarray
    U: np.ndarray
    y_hat: np.ndarray
    outside: float  # ‖y − P y‖₂ / ‖y‖₂

    def dual(self, lam):
        return self.U @ lam


def reduce(X, y, least_squares):
    """Reduced of (X, y); NoInterpolatorError if y is outside range(X) (relative
    distance > INTERPOLATION_RTOL) and not ``least_squares``."""
    U, sv, Vt = np.linalg.svd(X, full_matrices=False)
    r = int(np.sum(sv > RANK_RTOL * sv[0])) if sv.size and sv[0] > 0 else 0
    if r == 0:
        raise DataError("X is zero: no feature carries any signal")
    U, sv, Vt = U[:, :r], sv[:r], Vt[:r]
    b = U.T @ y
    y_hat = U @ b
    norm = float(np.linalg.norm(y))
    outside = float(np.linalg.norm(y - y_hat)) / norm if norm > 0 else 0.0
    if outside > INTERPOLATION_RTOL and not least_squares:
        N, d = X.shape
        raise NoInterpolatorError(
            f"X w = y has no solution: y lies {outside:.3g} (relative) outside the range of X "
            f"(rank {r} with N = {N} samples, d = {d} features); pass least_squares=True for "
            "the least-squares solution the flow tends to instead")
    return Reduced(A=sv[:, None] * Vt, b=b, U=U, y_hat=y_hat, outside=outside)


def feasibility(X, w, y_hat):
    """‖X w − ŷ‖∞ relative to the size of the terms that make it up."""
    scale = max(float(np.max(np.abs(y_hat), initial=0.0)),
                float(np.max(np.abs(X) @ np.abs(w), initial=0.0)), 1e-300)
    return float(np.max(np.abs(X @ w - y_hat), initial=0.0)) / scale
