"""Basis pursuit: min ‖w‖₁ s.t. X w = ŷ (Chen, Donoho & Saunders 1998), the α → 0 limit
of the Q^D_α interpolator (``__init__``).

An LP in w = w⁺ − w⁻ on the reduced constraints A w = b (common.reduce), by HiGHS
(dual simplex), then polished on its support T: A_T w_T = b and A_Tᵀλ = sign(w_T) by
least squares.  Certificate: the subgradient condition Aᵀλ ∈ ∂‖w‖₁, measured as the
largest of |(Aᵀλ)_i − sign w_i| on T and (|Aᵀλ|_i − 1)₊ off it.

Uniqueness (Zhang, Yin & Cheng 2015, "Necessary and sufficient conditions of solution
uniqueness in ℓ1 minimization", Theorem 2.1): w is the unique minimiser iff A_T has full
column rank and some λ has A_Tᵀλ = sign(w_T) and |Aᵀλ|_i < 1 off T -- one more LP, for the
λ that maximises the slack 1 − max_{i∉T} |Aᵀλ|_i.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linprog

from ..exceptions import DataError

__all__ = ["solve_l1", "subgradient_residual"]

_HIGHS = dict(primal_feasibility_tolerance=1e-10, dual_feasibility_tolerance=1e-10)
_SLACK = 1e-9  # a strict-inequality margin smaller than this does not count


def subgradient_residual(A, w, lam):
    g = A.T @ lam
    on = w != 0
    return max(float(np.max(np.abs(g[on] - np.sign(w[on])), initial=0.0)),
               float(np.max(np.abs(g[~on]) - 1.0, initial=0.0)))


def _lp(A, b):
    r, d = A.shape
    a = float(np.max(np.abs(A)))
    c = float(np.max(np.abs(b))) / a or 1.0  # HiGHS tolerances are absolute: w = c w'
    res = linprog(np.ones(2 * d), A_eq=np.hstack([A, -A]) / a, b_eq=b / (a * c), bounds=(0, None),
                  method="highs-ds", options=_HIGHS)
    if res.status != 0:
        raise DataError(f"basis-pursuit LP failed: {res.message}")
    return c * (res.x[:d] - res.x[d:]), res.eqlin.marginals / a


def _polish(A, b, w, lam):
    T = np.flatnonzero(np.abs(w) > 1e-12 * np.max(np.abs(w), initial=0.0))
    wT, *_ = np.linalg.lstsq(A[:, T], b, rcond=None)
    lam2, *_ = np.linalg.lstsq(A[:, T].T, np.sign(wT), rcond=None)
    w2 = np.zeros_like(w)
    w2[T] = wT
    before = max(subgradient_residual(A, w, lam), _feas(A, b, w))
    if max(subgradient_residual(A, w2, lam2), _feas(A, b, w2)) <= before:
        return w2, lam2
    return w, lam


def _feas(A, b, w):
    scale = max(float(np.max(np.abs(b))), float(np.max(np.abs(A) @ np.abs(w))), 1e-300)
    return float(np.max(np.abs(A @ w - b))) / scale


def unique(A, w):
    """Theorem 2.1 of Zhang, Yin & Cheng: (unique, slack)."""
    r, d = A.shape
    T = np.flatnonzero(w)
    if np.linalg.matrix_rank(A[:, T]) < len(T):
        return False, 0.0
    off = np.setdiff1d(np.arange(d), T)
    if off.size == 0:
        return True, 1.0
    # variables (λ, t): max t  s.t.  A_Tᵀλ = sign(w_T),  ±A_offᵀλ + t <= 1,  t <= 1
    A_eq = np.hstack([A[:, T].T, np.zeros((len(T), 1))])
    A_ub = np.vstack([np.hstack([A[:, off].T, np.ones((off.size, 1))]),
                      np.hstack([-A[:, off].T, np.ones((off.size, 1))])])
    cost = np.zeros(r + 1)
    cost[-1] = -1.0
    res = linprog(cost, A_ub=A_ub, b_ub=np.ones(2 * off.size), A_eq=A_eq, b_eq=np.sign(w[T]),
                  bounds=[(None, None)] * r + [(None, 1.0)], method="highs", options=_HIGHS)
    if res.status != 0:
        return False, 0.0
    slack = float(-res.fun)
    return slack > _SLACK, slack


def solve_l1(red):
    """(w, λ, unique, slack) for min ‖w‖₁ s.t. A w = b."""
    w, lam = _lp(red.A, red.b)
    w, lam = _polish(red.A, red.b, w, lam)
    is_unique, slack = unique(red.A, w)
    return w, lam, is_unique, slack
