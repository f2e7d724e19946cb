"""Minimum-potential interpolators: where squared-loss gradient flow on a diagonal
network ends (regression; the classification limits are flowkit.max_margin's).

Why the flow ends there (Woodworth et al. 2020, "Kernel and rich regimes in
overparametrized models", Theorem 1 and its depth-D form).  With L(w) = ½‖Xw − y‖²,
r = Xw − y, g = Xᵀr and u±(0) = α·1, the flow u̇± = ∓D u±^{D−1} g integrates in closed
form per coordinate:

* D = 2: u± = α exp(∓2G), G = ∫₀ᵗ g, so w = u+² − u−² = α² · 2 sinh(−4G) = α² h_2(v);
* D > 2: d(u±^{2−D})/dt = ±D(D−2) g, so u±^D = α^D (1 ∓ v)^{−D/(D−2)} with
  v = −D(D−2) α^{D−2} G, and w = α^D h_D(v) on |v| < 1;

and G = Xᵀ(∫r), so v = Xᵀν for some ν ∈ R^N at every time (h_D and its inverse q_D' as in
flowkit.potentials, math.md "Implicit-bias potentials").  A limit w∞ with X w∞ = y and
h_D^{-1}(w∞/α^D) = Xᵀν is the KKT point of

    min  Q^D_α(w) = α^D Σ_i q_D(w_i/α^D)   s.t.  X w = y,

strictly convex, so it is the unique minimiser.

Per-coordinate scales u±(0) = α_i: the same integration gives w_i = α_i^D h_D(v_i) with
v = −D(D−2) diag(α^{D−2}) Xᵀ(∫r) (D > 2; D = 2: v = −4 Xᵀ∫r), so the stationarity is
h_D^{-1}(w_i/α_i^D) = α_i^{D−2} (Xᵀν)_i: the KKT condition of

    min  Σ_i α_i² q_D(w_i/α_i^D)   s.t.  X w = y,

weights α_i², not α_i^D (the two agree for D = 2 and for one scale; for D > 2 they are
different points, 2-13 % apart on the test's data, and the flow ends at this one:
tests/test_regression_limit.py).  ``objective`` reports ᾱ^{D−2} Σ_i α_i² q_D(w_i/α_i^D),
ᾱ the geometric mean of the α_i, which is Q^D_α for one scale.  With no interpolator (y outside
range(X), e.g. N > d), the flow still keeps v in range(Xᵀ) and its limit is stationary
for L, Xᵀ(Xw − y) = 0: the same problem with y replaced by its projection P y onto
range(X) (``least_squares=True``).  As α → ∞, Q^D_α → const·‖w‖₂² (the minimum-ℓ2
interpolator, kind "l2"); as α → 0, α^D Q^D_α/… → ‖w‖₁ (basis pursuit, kind "l1";
potentials.py gives the constants).

One facade, one file per problem: ``q`` (Newton on the equality-constrained convex
problem), ``l1`` (HiGHS LP with a uniqueness certificate), ``l2`` (pseudo-inverse);
each returns an :class:`Interpolator` with its KKT certificate (common.py).
"""
from __future__ import annotations

import time

import numpy as np
from threadpoolctl import threadpool_limits

from .. import potentials as P
from ..exceptions import NumericalRangeError, ParameterError
from ..problem import _check_depth, check_kind, positive_float, validate_arrays
from .common import Interpolator, NoInterpolatorError, feasibility, reduce
from .l1 import solve_l1, subgradient_residual
from .l2 import solve_l2
from .q import solve_q, stationarity

__all__ = ["min_potential", "Interpolator", "NoInterpolatorError", "KINDS", "Z_RANGE"]

KINDS = ("Q", "l1", "l2")
# max |w|/α^D of the minimum-ℓ2 interpolator within which the Q solver is tested
# (tests/test_minpotential.py, at both ends).  Above 1e21 its Newton iteration fails on
# some data (D = 2 at 1e24, D = 5 at 1e26: the curvatures then span more than the QR
# of the KKT system resolves) -- for D > 2 the Q interpolator is the ℓ1 one to
# rounding there (measured; D = 2 approaches it only like 1/log(1/α)); below 1e-100 it
# is the ℓ2 one to rounding.
Z_RANGE = (1e-100, 1e21)


def min_potential(X, y, kind, *, alpha=None, depth=2, least_squares=False):
    """The interpolator of (X, y) minimising Q^D_α (``kind="Q"``, needs ``alpha``: a scale,
    or one per feature -- the potential is then Σ α_i² q_D(w_i/α_i^D), module docstring), ‖w‖₁
    ("l1", the α → 0 limit) or ‖w‖₂ ("l2", the α → ∞ limit), subject to X w = y -- or,
    with ``least_squares``, to X w = P y (P the projection onto range(X)): the solution
    squared-loss gradient flow from u± = α·1 tends to.

    Returns an :class:`Interpolator` (``w``, ``dual``, ``kkt_residual``, ``objective``,
    ``residual`` = ‖Xw − y‖₂, ``unique``).  Raises NoInterpolatorError if X w = y has no
    solution and ``least_squares`` is False.
    """
    check_kind(kind, KINDS, "alpha", alpha, "the initialisation scale")
    if not isinstance(least_squares, (bool, np.bool_)):
        raise ParameterError(f"least_squares must be True or False; got {least_squares!r}")
    depth = _check_depth(depth)
    X, y = validate_arrays(X, y)
    if kind == "Q":
        alpha = _scales(alpha, X.shape[1])
        log_mu = depth * np.log(np.atleast_1d(alpha))
        if not np.all((-690.0 < log_mu) & (log_mu < 690.0)):
            bad = float(log_mu[np.argmax(np.abs(log_mu))])
            raise NumericalRangeError(f"alpha^D = exp({bad:.4g}) is outside float64; "
                                      "use kind='l1' (alpha -> 0) or 'l2' (alpha -> inf)")
    t0 = time.perf_counter()
    # one BLAS thread: these matrices are small, and threaded OpenBLAS on them is up to
    # 100x slower when the cores are busy (measured: a 200 x 50 QR, 0.3 ms -> 30 ms)
    with threadpool_limits(limits=1, user_api="blas"):
        return _solve(X, y, kind, alpha, depth, bool(least_squares), t0)


def _scales(alpha, d):
    """alpha as a positive float, or as a float64 array of d positive scales."""
    if np.ndim(alpha) == 0:
        return positive_float("alpha", alpha)
    try:
        arr = np.array(alpha, dtype=float)
    except (TypeError, ValueError):
        raise ParameterError(f"alpha must be a positive number or {d} positive numbers; got {alpha!r}") from None
    if arr.shape != (d,) or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        why = "" if arr.shape != (d,) else " with values <= 0 or not finite"
        raise ParameterError(f"alpha must be a positive number or {d} positive numbers (one per feature); "
                             f"got shape {arr.shape}{why}")
    return arr


def _solve(X, y, kind, alpha, depth, least_squares, t0):
    red = reduce(X, y, least_squares)
    info = dict(rank=int(red.A.shape[0]), outside_range=red.outside)
    if kind == "l2":
        w, lam, stat = solve_l2(red)
        objective, unique = float(np.linalg.norm(w)), True
    elif kind == "l1":
        w, lam, unique, slack = solve_l1(red)
        stat, objective = subgradient_residual(red.A, w, lam), float(np.sum(np.abs(w)))
        info["uniqueness_slack"] = slack
    else:
        w, lam, stat, objective, info["newton_iterations"] = _solve_q(red, alpha, depth)
        unique = True
    kkt = max(stat, feasibility(X, w, red.y_hat))
    info["seconds"] = time.perf_counter() - t0
    return Interpolator(kind=kind, w=w, dual=red.dual(lam), kkt_residual=kkt, objective=objective,
                        residual=float(np.linalg.norm(X @ w - y)), least_squares=bool(least_squares),
                        depth=depth if kind == "Q" else None, alpha=alpha if kind == "Q" else None,
                        unique=unique, info=info)


def _solve_q(red, alpha, depth):
    """(w, λ, stationarity, objective, Newton iterations) of kind "Q".  One scale: μ = α^D;
    per coordinate: μ = ᾱ^D (ᾱ the geometric mean), m_i = (α_i/ᾱ)^D in the constraint
    and weights c_i = (α_i/ᾱ)^2 (module docstring)."""
    vector = np.ndim(alpha) == 1
    abar = float(np.exp(np.mean(np.log(alpha)))) if vector else alpha
    mu = abar ** depth
    m, c = ((alpha / abar) ** depth, (alpha / abar) ** 2) if vector else (np.ones(1), np.ones(1))
    top = float(np.max(np.abs(solve_l2(red)[0])))
    z_low, z_high = top / (mu * float(np.max(m))), top / (mu * float(np.min(m)))
    if not (Z_RANGE[0] <= z_low and z_high <= Z_RANGE[1]):
        raise NumericalRangeError(
            f"max |w|/alpha^D = {z_high:.3g} (at least {z_low:.3g}) for these data at depth {depth} is "
            f"outside the range the Q solver is validated for [{Z_RANGE[0]:g}, {Z_RANGE[1]:g}]; "
            "use kind='l1' for alpha -> 0 or 'l2' for alpha -> inf")
    z, _, iterations, _ = solve_q(red, mu, depth, scales=(m, c) if vector else None)
    # the certificate, recomputed: h_D^{-1}(w_i/α_i^D) = (α_i/ᾱ)^(D-2) (Xᵀν)_i at the optimum
    stat, lam = stationarity(red.A * (m / c) if vector else red.A, z, depth)
    return mu * m * z, lam, stat, mu * float(np.sum(c * P.q(z, depth))), iterations
