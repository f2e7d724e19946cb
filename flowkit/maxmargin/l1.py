"""ℓ1 max-margin: min ‖w‖₁ s.t. X̃ w >= 1 (math.md; the rich limit for D = 2, Theorem 7).

An LP in w = w⁺ - w⁻ (HiGHS, dual simplex), so its optimum can be a whole face -- the
paper's Fig. 3(c).  With one optimal dual ν, complementary slackness describes every
optimal w exactly:

    w_i = 0 where |X̃ᵀν|_i < 1,   sign(w_i) = (X̃ᵀν)_i where it is ±1,
    x̃_nᵀ w = 1 where ν_n > 0,     x̃_nᵀ w >= 1 elsewhere.

That polytope (in the coordinates E = {i : |X̃ᵀν|_i = 1}) is the optimal face; its vertices
are enumerated from the sets of active constraints, and the optimum is unique exactly when
there is one.  Stationarity (subgradient): X̃ᵀν ∈ ∂‖w‖₁, measured as the largest of
|(X̃ᵀν)_i - sign w_i| on w_i != 0 and (|X̃ᵀν|_i - 1)₊ elsewhere.
"""
from __future__ import annotations

from itertools import combinations
from math import comb

import numpy as np
from scipy.optimize import linprog

from ..exceptions import DataError
from .common import L1Face, MaxMargin, feasibility_parts, rescale, support_of

__all__ = ["solve_l1", "weighted_l1"]

_HIGHS = dict(primal_feasibility_tolerance=1e-10, dual_feasibility_tolerance=1e-10)
# Beyond this many candidate active sets the face's vertices are sampled by LPs instead.
MAX_ENUMERATION = 200_000
_TIGHT = 1e-9  # |X̃ᵀν|_i within this of 1 (ν scaled so that max |X̃ᵀν| = 1) counts as 1


def weighted_l1(Xt, c):
    """min Σ c_i |w_i| s.t. X̃ w >= 1 by HiGHS; returns (w, ν) with ν >= 0."""
    N, d = Xt.shape
    scale = float(np.max(np.abs(Xt)))  # HiGHS tolerances are absolute
    res = linprog(np.concatenate([c, c]), A_ub=-np.hstack([Xt, -Xt]) / scale,
                  b_ub=-np.ones(N) / scale, bounds=(0, None), method="highs-ds", options=_HIGHS)
    if res.status != 0:
        raise DataError(f"ℓ1 max-margin LP failed: {res.message}")
    w = res.x[:d] - res.x[d:]
    nu = np.maximum(-res.ineqlin.marginals, 0.0) / scale
    return w, nu


def _stationarity(Xt, w, nu):
    g = Xt.T @ nu
    on = w != 0
    return max(float(np.max(np.abs(g[on] - np.sign(w[on])), initial=0.0)),
               float(np.max(np.abs(g[~on]) - 1.0, initial=0.0)))


def _kkt(Xt, w, nu):
    return max(_stationarity(Xt, w, nu), feasibility_parts(Xt, w, nu))


def _polish(Xt, w, nu):
    """Re-solve the vertex (w) and the dual on its active sets exactly (least squares)."""
    T = np.flatnonzero(np.abs(w) > 1e-12 * np.max(np.abs(w)))
    S = support_of(nu)
    wT, *_ = np.linalg.lstsq(Xt[np.ix_(S, T)], np.ones(len(S)), rcond=None)
    nuS, *_ = np.linalg.lstsq(Xt[np.ix_(S, T)].T, np.sign(w[T]), rcond=None)
    w2, nu2 = np.zeros_like(w), np.zeros_like(nu)
    w2[T], nu2[S] = wT, nuS
    if _kkt(Xt, w2, nu2) < _kkt(Xt, w, nu):
        return w2, nu2
    return w, nu


def _vertices(A_eq, A_in, k):
    """All vertices of {x in R^k : A_eq x = 1, A_in x >= b} given as rows [a | b]."""
    r = np.linalg.matrix_rank(A_eq[:, :k]) if len(A_eq) else 0
    need = k - r
    out = []
    for rows in combinations(range(len(A_in)), need):
        M = np.vstack([A_eq[:, :k], A_in[list(rows), :k]]) if len(A_eq) else A_in[list(rows), :k]
        rhs = np.concatenate([A_eq[:, k], A_in[list(rows), k]]) if len(A_eq) else A_in[list(rows), k]
        if np.linalg.matrix_rank(M) < k:
            continue
        x, *_ = np.linalg.lstsq(M, rhs, rcond=None)
        if np.max(np.abs(M @ x - rhs)) > 1e-9 or np.min(A_in[:, :k] @ x - A_in[:, k]) < -1e-9:
            continue
        if not any(np.max(np.abs(x - y)) <= 1e-9 * max(1.0, np.max(np.abs(y))) for y in out):
            out.append(x)
    return out


def _face(Xt, w, nu):
    N, d = Xt.shape
    g = Xt.T @ nu
    E = np.flatnonzero(np.abs(g) >= 1.0 - _TIGHT)
    s = np.sign(g[E])
    tight = support_of(nu)
    loose = np.setdiff1d(np.arange(N), tight)
    k = len(E)
    A_eq = np.hstack([Xt[np.ix_(tight, E)], np.ones((len(tight), 1))])
    sign_rows = np.hstack([np.diag(s), np.zeros((k, 1))])          # s_i x_i >= 0
    margin_rows = np.hstack([Xt[np.ix_(loose, E)], np.ones((len(loose), 1))])
    A_in = np.vstack([sign_rows, margin_rows])
    r = np.linalg.matrix_rank(A_eq[:, :k]) if len(tight) else 0
    if comb(len(A_in), k - r) <= MAX_ENUMERATION:
        xs, complete = _vertices(A_eq, A_in, k), True
    else:
        xs, complete = _sampled_vertices(A_eq, A_in, k), False
    V = np.zeros((len(xs), d))
    for j, x in enumerate(xs):
        V[j, E] = np.where(np.abs(x) > 1e-14 * np.max(np.abs(x)), x, 0.0)  # lstsq dust
    dim = int(np.linalg.matrix_rank(V[1:] - V[0], tol=1e-9)) if len(V) > 1 else 0
    return L1Face(vertices=V, dimension=dim, features=E, signs=s, tight=tight, complete=complete)


def _sampled_vertices(A_eq, A_in, k):
    """Vertices reached by minimising and maximising each coordinate over the face."""
    out = []
    for i in range(k):
        for sgn in (1.0, -1.0):
            c = np.zeros(k)
            c[i] = sgn
            res = linprog(c, A_ub=-A_in[:, :k], b_ub=-A_in[:, k],
                          A_eq=A_eq[:, :k] if len(A_eq) else None,
                          b_eq=A_eq[:, k] if len(A_eq) else None,
                          bounds=(None, None), method="highs-ds", options=_HIGHS)
            if res.status == 0 and not any(np.max(np.abs(res.x - y)) <= 1e-9 for y in out):
                out.append(res.x)
    return out


def solve_l1(Xt):
    w, nu = weighted_l1(Xt, np.ones(Xt.shape[1]))
    w, nu = _polish(Xt, w, nu)
    w = rescale(Xt, w)
    face = _face(Xt, w, nu)
    # one vertex means every coordinate's range over the face is zero, sampled or not
    unique = len(face.vertices) == 1
    return MaxMargin(kind="l1", w=w, support=support_of(nu), dual=nu, kkt_residual=_kkt(Xt, w, nu),
                     objective=float(np.sum(np.abs(w))), unique=unique,
                     face=None if unique else face,
                     info=dict(face_dimension=face.dimension, face_vertices=len(face.vertices)))
