"""ℓ_{2/D} max-margin KKT points: min Σ_i |w_i|^{2/D} s.t. X̃ w >= 1 (math.md; for D > 2
the flow's limit direction is a KKT point of this non-convex problem, Theorem 2).

On each orthant the objective is concave, so its local minimisers on the feasible set are
vertices of {X̃ w >= 1} ∩ orthant: w_T = X̃_{S,T}⁻¹ 1 on a feature set T with active
samples S.  Such a vertex is a KKT point when ν_S >= 0 solves the stationarity on T,

    (2/D) |w_i|^{2/D - 1} sign(w_i) = (X̃_Sᵀ ν_S)_i,      i ∈ T,

(w_i = 0 carries no condition: the objective's subdifferential is unbounded there).

Search: iteratively reweighted ℓ1 (majorise the concave objective by its tangent,
c_i = (2/D)(|w_i| + ε)^{2/D - 1}, and solve the weighted ℓ1 LP) from ``starts`` random
weight vectors.  Each LP returns a vertex; a fixed point is a KKT point by LP duality
(``weighted_l1``'s ν satisfies the stationarity above).  Every fixed point is snapped onto
its exact vertex (``vertex_polish``), certified, deduplicated and ranked by objective.
The search is a multi-start heuristic: it finds the minimisers its starts reach, not a
proof that there are no others (the tests compare with exhaustive enumeration).
"""
from __future__ import annotations

import numpy as np

from .common import MaxMargin, feasibility_parts, rescale, support_of, vertex_polish
from .l1 import weighted_l1

__all__ = ["solve_l2d"]


def _grad(w, D):
    """(2/D)|w|^{2/D-1} sign(w) on w != 0, 0 elsewhere."""
    p = 2.0 / D
    out = np.zeros_like(w)
    on = w != 0
    out[on] = p * np.abs(w[on]) ** (p - 1.0) * np.sign(w[on])
    return out


def _kkt(Xt, w, nu, D):
    on = w != 0
    g = _grad(w, D)[on]
    stat = float(np.max(np.abs(g - (Xt.T @ nu)[on]))) / float(np.max(np.abs(g)))
    return max(stat, feasibility_parts(Xt, w, nu))


def quasi_norm(w, D):
    """‖w‖_{2/D} = (Σ|w_i|^{2/D})^{D/2}."""
    return float(np.sum(np.abs(w) ** (2.0 / D)) ** (D / 2.0))


def _irl1(Xt, c, D, maxit=100):
    """Reweighted ℓ1 from weights c until the vertex repeats."""
    seen = None
    for _ in range(maxit):
        w, _ = weighted_l1(Xt, c)
        key = tuple(np.round(w / np.max(np.abs(w)), 10))
        if key == seen:
            break
        seen = key
        eps = 1e-9 * float(np.max(np.abs(w)))
        c = (2.0 / D) * (np.abs(w) + eps) ** (2.0 / D - 1.0)
        c = c / np.min(c)  # LP tolerances are absolute: keep the weights O(1) and up
    return w


def solve_l2d(Xt, D, starts=32, seed=0, tol=1e-9):
    rng = np.random.default_rng(seed)
    d = Xt.shape[1]
    found = []
    for k in range(starts):
        # start 0 is the ℓ1 solution; the others majorise around random points
        c = np.ones(d) if k == 0 else np.exp(rng.uniform(-np.log(1e3), np.log(1e3), d))
        w = _irl1(Xt, c, D)
        w, nu, T, S, _ = vertex_polish(Xt, w, lambda u: _grad(u, D))
        w = rescale(Xt, w)
        res = _kkt(Xt, w, nu, D)
        if res > tol:
            continue
        if any(np.max(np.abs(w - p.w)) <= 1e-8 * np.max(np.abs(p.w)) for p in found):
            continue
        found.append(MaxMargin(kind="l2/D", w=w, support=support_of(nu), dual=nu,
                               kkt_residual=res, objective=quasi_norm(w, D), depth=D,
                               info=dict(features=T.tolist())))
    found.sort(key=lambda p: p.objective)
    if not found:  # pragma: no cover - the ℓ1 start always ends at a vertex KKT point
        raise RuntimeError("no KKT point passed the certificate")
    best = found[0]
    return MaxMargin(kind="l2/D", w=best.w, support=best.support, dual=best.dual,
                     kkt_residual=best.kkt_residual, objective=best.objective, depth=D,
                     kkt_points=tuple(found),
                     info=dict(starts=starts, seed=seed, distinct=len(found)))
