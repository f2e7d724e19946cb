"""ℓ2 max-margin: min ‖w‖₂ s.t. X̃ w >= 1 (math.md; the kernel regime's limit, Theorem 4).

A strictly convex QP.  Lawson & Hanson's least-distance programming gives w (NNLS,
``problem.l2_max_margin_direction``); the multipliers then solve w = X̃_Sᵀ ν_S, ν_S >= 0
on the samples S with margin 1 (NNLS again), and w is re-formed as X̃ᵀν so that
stationarity holds to rounding.  Stationarity here is ‖w - X̃ᵀν‖∞ / ‖w‖∞.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import nnls

from ..problem import l2_max_margin_direction
from .common import MaxMargin, feasibility_parts, rescale, support_of

__all__ = ["solve_l2"]


def _kkt(Xt, w, nu):
    stat = float(np.max(np.abs(w - Xt.T @ nu))) / float(np.max(np.abs(w)))
    return max(stat, feasibility_parts(Xt, w, nu))


def solve_l2(Xt):
    w0, _ = l2_max_margin_direction(Xt)
    w0 = rescale(Xt, w0)
    S = np.flatnonzero(Xt @ w0 - 1.0 <= 1e-8)
    nuS, _ = nnls(Xt[S].T, w0)
    nu = np.zeros(Xt.shape[0])
    nu[S] = nuS
    # Newton polish on the support: Gram system for margins exactly 1 there
    S = support_of(nu)
    A = Xt[S]
    nuS, *_ = np.linalg.lstsq(A @ A.T, np.ones(len(S)), rcond=None)
    cand = np.zeros_like(nu)
    cand[S] = nuS
    w1 = Xt.T @ cand
    if _kkt(Xt, w1, cand) <= _kkt(Xt, w0, nu):
        w0, nu = w1, cand
    w = rescale(Xt, w0)
    return MaxMargin(kind="l2", w=w, support=support_of(nu), dual=nu,
                     kkt_residual=_kkt(Xt, w, nu), objective=float(np.linalg.norm(w)),
                     unique=True)
