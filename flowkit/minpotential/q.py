"""The Q^D_α interpolator: min α^D Σ_i q_D(w_i/α^D) s.t. X w = ŷ (Woodworth et al. 2020,
Theorem 1 for D = 2 and its depth-D form; ``__init__``'s docstring for why the flow ends
there).

Solved in z = w/μ, μ = α^D, where the problem is free of μ except through its
constraint A z = b/μ (A, b from ``common.reduce``): f(z) = Σ q_D(z_i), ∇f = h_D^{-1}(z),
∇²f = diag(q_D''(z)), q_D'' = 1/h_D'(h_D^{-1}) > 0.  Equality-constrained Newton
(Boyd & Vandenberghe §10.3, infeasible start), its KKT system solved through the QR
factors of B = ∇²f^{-1/2} Aᵀ: the curvatures spread over many decades when α is small
(q_D'' ~ 1/|z| on the large coordinates, O(1) on the zero ones), and B's QR has the
square root of the normal matrix's condition number.  The step is written in the KKT
residuals (its rounding then vanishes with them), and the line search backtracks on the
residual norm, measured relative in both parts -- not on f, which is ~|z| log |z| and
known only to rounding of that when α is small.  Small α by continuation in μ, a factor
10 per stage from where the minimum-ℓ2 point is close (``solve_q``).

Certificate (common.py): stationarity in the dual variable, ‖h_D^{-1}(w/μ) − Xᵀν‖∞ /
‖h_D^{-1}(w/μ)‖∞ with ν the least-squares multiplier (the coordinates in which it is
O(1) at every α), and the relative infeasibility ‖X w − ŷ‖∞.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.linalg import qr, solve_triangular

from .. import potentials as P

__all__ = ["solve_q", "stationarity", "Weighted"]

MAX_NEWTON = 500
_EPS = np.finfo(float).eps


class Weighted:
    """The problem min Σ c_i q_D(z_i) s.t. A z = b/μ̄ in the solver's variables (``solve_q``):
    ``A`` the reduced constraints with column i scaled by μ_i/μ̄, ``c`` the weights, ``Aw``
    = A with column i divided by c_i, whose rows span the dual variable: at the optimum
    h_D^{-1}(z) = Awᵀλ.  One scale α: c = 1 and Aw = A."""

    def __init__(self, A, c=None):
        self.A = A
        self.c = np.ones(A.shape[1]) if c is None else c
        self.Aw = A if c is None else A / c[None, :]


def certificate(W, bz, z, depth):
    """(max of stationarity and relative infeasibility, λ) at z."""
    stat, lam = stationarity(W.Aw, z, depth)
    A = W.A
    scale = max(float(np.max(np.abs(bz))), float(np.max(np.abs(A) @ np.abs(z))), 1e-300)
    return max(stat, float(np.max(np.abs(A @ z - bz))) / scale), lam


def stationarity(Aw, z, depth):
    """(residual, λ): v = h_D^{-1}(z) against its least-squares fit Awᵀλ, relative."""
    v = P.h_inv(z, depth)
    lam, *_ = np.linalg.lstsq(Aw.T, v, rcond=None)
    fit = Aw.T @ lam
    return float(np.max(np.abs(v - fit))) / max(float(np.max(np.abs(v))), 1e-300), lam


def _newton(W, bz, z, lam, depth):
    """Newton's (Δz, Δλ) for the KKT system c h_D^{-1}(z) = Aᵀλ, A z = bz at (z, λ).

    Written in the residuals r_d = c (h_D^{-1}(z) − Awᵀλ) and r_p = bz − A z, not in
    h_D^{-1}(z) itself: the QR projection's rounding is then relative to the residual,
    which vanishes at the solution, instead of to ∇²f^{-1/2} h_D^{-1}(z), whose large
    entries (the big coordinates, ∇²f^{-1/2} ~ |z|^{(D-1)/D}) would otherwise swamp the
    small coordinates' steps."""
    A = W.A
    s = 1.0 / np.sqrt(W.c * P.d2q(z, depth))  # ∇²f^{-1/2}
    Q, R = qr(s[:, None] * A.T, mode="economic", check_finite=False)
    c = s * W.c * (P.h_inv(z, depth) - W.Aw.T @ lam)
    r = bz - A @ z
    if np.max(np.abs(r)) <= 64 * _EPS * np.max(np.abs(A) @ np.abs(z)):
        r = np.zeros_like(r)  # rounding in A z: a correction would only add noise
    u = solve_triangular(R, r, trans="T", check_finite=False) + Q.T @ c  # R Δλ
    return s * (Q @ u - c), solve_triangular(R, u, check_finite=False)


def _residual(W, bz, z, lam, depth, weights):
    """‖(w_d (h_D^{-1}(z) − Awᵀλ), w_p (A z − bz))‖₂: the KKT residual, both parts
    relative.  Newton's direction decreases it for any fixed weights (its derivative
    along the step is minus itself), so they are fixed for each line search."""
    w_d, w_p = weights
    return math.hypot(w_d * float(np.linalg.norm(P.h_inv(z, depth) - W.Aw.T @ lam)),
                      w_p * float(np.linalg.norm(W.A @ z - bz)))


def _stage(W, bz, z, lam, depth, tol, max_iter):
    """Newton with backtracking on _residual from (z, λ), until the certificate is
    below ``tol`` or stops improving; returns (z, λ_ls, iterations, stationarity)."""
    stat, lam_ls = certificate(W, bz, z, depth)
    best = (stat, z, lam_ls)
    it = stalled = 0
    while it < max_iter and best[0] > tol and stalled < 3:
        it += 1
        dz, dlam = _newton(W, bz, z, lam, depth)
        weight = (1.0 / max(float(np.linalg.norm(P.h_inv(z, depth))), 1e-300),
                  1.0 / max(float(np.linalg.norm(bz)), 1e-300))
        merit = _residual(W, bz, z, lam, depth, weight)
        t = 1.0
        while t > 1e-10:
            trial = _residual(W, bz, z + t * dz, lam + t * dlam, depth, weight)
            if trial <= (1.0 - 0.01 * t) * merit:
                break
            t *= 0.5
        # done when neither the residual nor the certificate improves any more
        progress = trial < 0.99 * merit
        z, lam = z + t * dz, lam + t * dlam
        stat, lam_ls = certificate(W, bz, z, depth)
        stalled = 0 if progress or stat < 0.5 * best[0] else stalled + 1
        if stat < best[0]:
            best = (stat, z, lam_ls)
    return best[1], best[2], it, best[0]


def solve_q(red, mu, depth, tol=1e-13, scales=None):
    """(z, λ, iterations, stationarity) for min Σ c_i q_D(z_i) s.t. A diag(m) z = b/μ,
    w = μ m z: ``scales`` = (m, c) per coordinate (None: one scale, m = c = 1).

    From the minimum-ℓ2 point when μ is large enough for it to be close (|z| <= 1);
    else by continuation in μ down from there, a factor 10 per stage, each stage
    started from the previous one's dual variable (_warm_start), which moves little
    from one μ to the next where z and w do not -- the first Newton step puts the
    missing mass A z = b/μ on the large coordinates."""
    W = Weighted(red.A) if scales is None else Weighted(red.A * scales[0][None, :], scales[1])
    w_l2, *_ = np.linalg.lstsq(W.A, red.b, rcond=None)
    mu0 = float(np.max(np.abs(w_l2)))
    stages = [mu] if mu >= mu0 else [mu0 * 10.0 ** -k for k in range(int(math.log10(mu0 / mu)) + 1)] + [mu]
    z = w_l2 / stages[0]
    lam = stationarity(W.Aw, z, depth)[1]
    total = 0
    for k, m in enumerate(stages):
        if k:
            z, lam = _warm_start(W, z, lam, stages[k - 1], m, depth)
        final = k == len(stages) - 1
        z, lam, it, stat = _stage(W, red.b / m, z, lam, depth, tol if final else 1e-8,
                                  MAX_NEWTON if final else 50)
        total += it
    return z, lam, total, stat


def _warm_start(W, z, lam, mu_old, mu_new, depth):
    """(z, λ) at μ_new from the solution at μ_old, through the dual variable v = Awᵀλ.
    D > 2: v converges as μ -> 0 (to the ℓ1 problem's dual), so it is kept (z itself:
    h_D near ±1 would amplify the rounding of v).  D = 2:
    v grows like log(1/μ) times that dual (h_2 = 2 sinh), so it is scaled by
    log(|w|max/μ_new) / log(|w|max/μ_old), the ratio on the largest coordinate."""
    if depth > 2:
        return z, lam  # the same z is the same v
    top = float(np.max(np.abs(z))) * mu_old
    kappa = math.log(top / mu_new) / math.log(top / mu_old) if top > 2 * mu_old else 1.0
    return P.h(kappa * (W.Aw.T @ lam), depth), kappa * lam
