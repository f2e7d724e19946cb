"""Depth and accuracy (the paper's "Role of depth", after Woodworth et al. 2020): the μ
needed for the Q^D_μ max-margin point to be a δ-approximation of the ℓ1 one,
‖w_Q(μ)‖₁ ≤ (1 + δ)‖w_ℓ1‖₁.

The paper's rates, μ = exp(-c/δ) for D = 2 and 1/μ = poly(1/δ) for D > 2, are
*worst-case over data*.  On one fixed dataset whose ℓ1 point is a non-degenerate LP
vertex, D = 2 is polynomial too: an off-support coordinate i with LP-dual ratio
ρ_i = |X̃ᵀν*|_i < 1 carries w_i ∝ μ^{1-ρ_i} (from asinh(w/2μ) = X̃ᵀν, math.md), so
log(1/μ) ≈ log(1/δ)/(1 - ρ_max).  The exponent diverges as ρ_max → 1, which is where
the worst case lives.  Hence two computations:

* ``worst_case_mu``: the smallest μ over the one-parameter family ``near_tie(t)``: one
  sample x = (1, 1-t, ..., 1-t) (``copies`` near-tied features; the ℓ1 point is e₁,
  unique; ρ = 1 - t).  With w₁ = 2μ sinh(ν), w_j = 2μ sinh(ν(1-t)), the margin
  w₁ + k(1-t)w_j = 1 and the excess k t w_j = δ give, for small δ at t = cδ,
  log(1/μ) ≈ g(k)/δ with g(k) = max_c log(k(c-1))/c (``d2_constant``): the 1/δ law.
  For D > 2, w_j = μ h_D(ν(1-t)) with 1 - ν ~ μ^{(D-2)/D}, and the worst t gives
  δ ~ μ^{(D-2)/D}: log(1/μ) ≈ D/(D-2) · log(1/δ) (``power_exponent``).
* ``mu_for_excess`` on a given dataset (fig3b), with ``rho_max`` for the D = 2 exponent.
  For D > 2 on such data the off-support coordinates are μ h_D(ρ s) with s → 1, i.e.
  O(μ): log(1/μ) ≈ log(1/δ), slope 1.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq, minimize_scalar

from flowkit import datasets
from flowkit.maxmargin import MU_RANGE, max_margin
from flowkit.maxmargin.q import solve_q

__all__ = ["mu_for_excess", "near_tie", "near_tie_mu", "worst_case_mu", "d2_constant", "power_exponent",
           "rho_max", "COPIES"]

COPIES = 3  # near-tied features of the family (δ = 0.3 needs k >= 2: the ℓ2 end's excess)


def mu_for_excess(Xt, depth, delta, l1_norm, lo=None, hi=1e6):
    """μ with ‖w_Q(μ)‖₁/‖w_ℓ1‖₁ - 1 = δ (Brent on log μ; the excess grows with μ);
    NaN when δ is out of reach (even the ℓ2 end, μ = ``hi``, is closer than δ).

    Uses the Q solver below the public μ range on purpose: for D = 2 a small δ needs
    μ ~ exp(-c/δ); every point is still KKT-certified.  Brent's later iterates are close
    together: a solve within a factor e in μ of the previous one starts from its dual
    and support (solve_q's fixed-support Newton, its projected method if that fails)."""
    last = {}

    def f(lm):
        warm = last if abs(last.get("lm", math.inf) - lm) < 1.0 else {}
        r = solve_q(Xt, math.exp(lm), depth, nu0=warm.get("nu"), support=warm.get("support"))
        if r.kkt_residual > 1e-9:
            raise RuntimeError(f"Q solve not certified at mu = {math.exp(lm):g}")
        last.update(lm=lm, nu=r.dual, support=r.support)
        return float(np.sum(np.abs(r.w))) / l1_norm - 1.0 - delta

    # D > 2 approaches ℓ1 polynomially in μ: the validated range suffices (and its dual
    # needs 1 - |v| ~ μ^{(D-2)/D} > 0); D = 2 may need μ ~ exp(-c/δ)
    lo = (1e-300 if depth == 2 else MU_RANGE[0]) if lo is None else lo
    a, b = math.log(lo), math.log(hi)
    if f(b) < 0:
        return float("nan")
    if f(a) > 0:
        raise RuntimeError(f"delta = {delta:g} needs mu below {lo:g} at depth {depth}")
    return math.exp(brentq(f, a, b, xtol=1e-10, rtol=1e-12))


def near_tie(t, copies=COPIES):
    """X̃ of ``flowkit.datasets.near_tie`` (one sample, label +1): x = (1, 1-t, ..., 1-t)."""
    return datasets.near_tie(t, copies)[0]


def _log_h(v, depth):
    """log h_D(v) for 0 < v (< 1 for D > 2), without overflow or cancellation:
    2 sinh v = e^v (1 - e^{-2v}); (1-v)^{-b} - (1+v)^{-b} = e^B expm1(A - B)."""
    if depth == 2:
        return v + math.log(-math.expm1(-2.0 * v))
    b = depth / (depth - 2.0)
    a, c = -b * math.log1p(-v), -b * math.log1p(v)
    return c + math.log(math.expm1(a - c))


def near_tie_mu(t, depth, delta, copies=COPIES, hi=1e6):
    """μ(δ) on ``near_tie(t)`` from the one-sample KKT conditions, solved in the dual
    variable ν rather than in μ (a second formulation of ``mu_for_excess`` there).

    x = (1, s, ..., s), s = 1 - t, k = ``copies``: w₁ = μ h_D(ν), w_j = μ h_D(νs); with
    r(ν) = h_D(νs)/h_D(ν) (decreasing from s to 0) the margin gives μ = 1/(h_D(ν)(1 + k s r))
    and the excess k t r/(1 + k s r) = δ fixes r* = δ/(k(t - sδ)): one scalar root
    r(ν) = r*, in logarithms (any μ, no float range).  NaN where μ(δ) > ``hi`` or δ is
    beyond the μ → ∞ end (r* >= s), as ``mu_for_excess`` answers."""
    s, k = 1.0 - t, float(copies)
    if not t - s * delta > 0.0:
        return float("nan")
    log_r = math.log(delta) - math.log(k * (t - s * delta))
    if not log_r < math.log(s):
        return float("nan")

    def g(nu):
        return _log_h(nu * s, depth) - _log_h(nu, depth) - log_r

    # r(ν) <= e^{-νt}/(1 - e^{-2}) for ν >= 1 (D = 2); D > 2: r -> 0 as ν -> 1
    top = (-log_r + 1.0) / t + 1.0 if depth == 2 else math.nextafter(1.0, 0.0)
    nu = brentq(g, 1e-150, top, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)
    log_mu = -_log_h(nu, depth) - math.log1p(k * s * math.exp(log_r))
    return float("nan") if log_mu > math.log(hi) else math.exp(log_mu)


def worst_case_mu(depth, delta, copies=COPIES, grid=25):
    """(μ, t*): the smallest μ(δ) over ``near_tie(t)``, t in [1e-4, 0.999] (log grid of
    ``grid`` points, then bounded Brent around the best), each μ(δ) by ``near_tie_mu``.
    Datasets whose ℓ2 end is already within δ impose nothing (μ = 1 there)."""
    def log_mu(lt):
        m = near_tie_mu(math.exp(lt), depth, delta, copies)
        return math.log(m) if math.isfinite(m) else 0.0

    lts = np.linspace(math.log(1e-4), math.log(0.999), grid)
    vals = [log_mu(v) for v in lts]
    i = int(np.argmin(vals))
    r = minimize_scalar(log_mu, bounds=(lts[max(i - 1, 0)], lts[min(i + 1, grid - 1)]),
                        method="bounded", options={"xatol": 1e-5})
    best, lt = (r.fun, r.x) if r.fun <= vals[i] else (vals[i], lts[i])
    return math.exp(best), math.exp(lt)


def d2_constant(copies=COPIES):
    """g(k) = max_{c>1} log(k(c-1))/c: log(1/μ) ≈ g(k)/δ as δ → 0, D = 2 (module docstring)."""
    r = minimize_scalar(lambda c: -math.log(copies * (c - 1.0)) / c, bounds=(1.0 + 1e-9, 50.0),
                        method="bounded", options={"xatol": 1e-12})
    return -r.fun


def power_exponent(depth):
    """D/(D-2): log(1/μ) ≈ D/(D-2) log(1/δ) as δ → 0 on the worst case, D > 2."""
    return depth / (depth - 2.0)


def rho_max(X, y):
    """Largest LP-dual ratio |X̃ᵀν*|_i off the ℓ1 support (1 = degenerate); the D = 2
    slope of log(1/μ) in log(1/δ) on this dataset tends to 1/(1 - rho_max) (D > 2: 1)."""
    r = max_margin(X, y, "l1")
    s = np.abs((y[:, None] * X).T @ r.dual)
    off = np.ones(s.size, bool)
    off[np.flatnonzero(r.w)] = False
    return float(s[off].max()) if off.any() else 0.0
