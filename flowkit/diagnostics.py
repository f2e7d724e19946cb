"""Diagnostics of a trajectory: the invariants every trajectory must satisfy, and where
it stands with respect to the implicit-bias solutions (second half of this file).

Invariants (math.md), measured on saved points:

* ``conservation``: the conservation law, D = 2: u+ u- = alpha², i.e. delta+ + delta- = 0;
  D > 2: u+^{2-D} + u-^{2-D} = 2 alpha^{2-D}, i.e. e^{-a delta+} + e^{-a delta-} = 2.
  Built into the coordinates, so this checks their implementation (rounding level).
* ``gamma_consistency``: gamma~ recomputed from the state, log N - logsumexp(-m),
  against the independent variable (relative): the integration error made visible.
* ``margin_bounds``: gamma <= gamma~ <= gamma + log N (largest violation, relative).
* ``margin_increments``: smallest step of the margin gamma = min_n m_n between saved
  points (>= 0 when it grows monotonically; see the tests for when that is a theorem).
* ``lemma3``: Lemma 3 of the paper, L(t) <= 1/(1 + 2 D² alpha^{2D-2} gamma_2² t), as the
  smallest slack gamma~ - log(1 + 2 D² alpha^{2D-2} gamma_2² t) (>= 0 when it holds).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ._kernels.fields import softplus_each
from .exceptions import FlowkitError, ParameterError
from .problem import positive_float

# The max-margin solvers (second half) are imported where used: ``invariants`` is on the
# path of every ``integrate`` call (Trajectory), which needs none of them.

__all__ = ["invariants", "normalized_margins", "support_vectors", "mu_eff", "q_distance",
           "excess_l1", "condition5", "Condition5", "implicit_bias"]


def invariants(problem, gamma, delta, margin, gamma_state, log_time):
    """Dict of invariant measures over saved points (see module docstring)."""
    D = problem.depth
    dp, dm = delta[:, 0], delta[:, 1]
    if D == 2:
        conservation = float(np.max(np.abs(dp + dm), initial=0.0))
    else:
        a = D - 2.0
        conservation = float(np.max(np.abs(np.exp(-a * dp) + np.exp(-a * dm) - 2.0), initial=0.0) / 2.0)
    rel = np.abs(gamma_state - gamma) / gamma
    logN = math.log(problem.n_samples)
    scale = np.maximum(gamma, 1.0)
    bounds = np.maximum(margin - gamma, gamma - margin - logN) / scale
    inc = np.diff(margin)
    log_c = math.log(2.0 * D * D * problem.gamma2 ** 2) + (2.0 * D - 2.0) / D * problem.log_alpha_D
    lemma3 = gamma - softplus_each(log_c + np.ascontiguousarray(log_time, dtype=float))
    return {
        "conservation": conservation,
        "gamma_consistency": float(np.max(rel)),
        "margin_bounds": float(np.max(bounds)),
        "margin_increments": float(np.min(inc, initial=np.inf)),
        "lemma3_slack": float(np.min(lemma3)),
    }


# ---------------------------------------------------------------- implicit bias along a trajectory
# (math.md, "Link to the flow"; the paper's Theorem 6 and Condition 5)

SUPPORT_GAP = 5.0


def _tilde(traj):
    if traj.flow is None:
        raise FlowkitError("this Trajectory carries no problem (X, y); diagnostics need it")
    P = traj.flow.problem
    return P.Xt * P.scale if P.scale != 1.0 else P.Xt  # the caller's data (Problem.scale)


def normalized_margins(traj):
    """(n, N) margins y_k x_kᵀ w / γ at every saved point (NaN while γ <= 0)."""
    m = traj.w @ _tilde(traj).T
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(traj.margin[:, None] > 0, m / traj.margin[:, None], np.nan)


def support_vectors(traj, rtol=1e-3):
    """Per saved point, the samples with y_k x_kᵀ w <= (1 + rtol) γ (the paper's footnote 4,
    with a tolerance: at finite γ̃ margins of support vectors differ by O(1) while γ ~ γ̃)."""
    rtol = positive_float("rtol", rtol)
    r = normalized_margins(traj)
    return tuple(tuple(int(k) for k in np.flatnonzero(row <= 1.0 + rtol)) if np.all(np.isfinite(row))
                 else () for row in r)


def mu_eff(traj):
    """μ_eff = α^D / γ (math.md, "Link to the flow"): where on the Q_μ path the
    trajectory is.  Formed in logs; NaN while γ <= 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(traj.margin > 0,
                        np.exp(traj.depth * math.log(traj.alpha) - np.log(np.abs(traj.margin))), np.nan)


def q_distance(traj):
    """‖ŵ - w_Q(μ_eff)‖₂ at every saved point, w_Q the Q^D_μ max-margin point (margin 1,
    like ŵ).  Solved warm-started point to point.  For μ_eff above the Q solver's range the
    ℓ2 point stands in (Q_μ differs from it by O(μ⁻²) < 1e-12 there); below it, and while
    γ <= 0, NaN.  Returns (distance, mu_eff)."""
    from .maxmargin import MU_RANGE
    from .maxmargin.l2 import solve_l2
    from .maxmargin.q import solve_q

    Xt, D = _tilde(traj), traj.depth
    mus = mu_eff(traj)
    lo, hi = MU_RANGE
    out = np.full(len(mus), np.nan)
    l2 = None
    prev = None
    for k in np.argsort(-np.nan_to_num(mus, nan=-np.inf)):
        mu = mus[k]
        if not np.isfinite(mu) or mu < lo:
            continue
        if mu > hi:
            l2 = l2 or solve_l2(Xt)
            target = l2.w
        else:
            prev = solve_q(Xt, float(mu), D, nu0=None if prev is None else prev.dual,
                           support=None if prev is None else prev.support)
            target = prev.w
        out[k] = float(np.linalg.norm(traj.w_hat[k] - target))
    return out, mus


def excess_l1(traj):
    """‖ŵ‖₁ / ‖w_ℓ1‖₁ - 1 at every saved point (the paper's Fig. 5(a)); NaN while γ <= 0."""
    from .maxmargin.l1 import solve_l1

    ref = solve_l1(_tilde(traj)).objective
    with np.errstate(invalid="ignore"):
        return np.where(traj.margin > 0, np.sum(np.abs(traj.w_hat), axis=1) / ref - 1.0, np.nan)


@dataclass(frozen=True)
class Condition5:
    """The paper's Condition 5 on a finite trajectory: for every sample k that is not a
    support vector of ``limit`` (x̃_kᵀ ŵ_limit > 1), y_k x_kᵀ w / γ >= ρ₀ > 1 for all saved
    γ̃ in ``window``.  ``rho_min`` is the smallest such ratio, attained at ``witness``
    (sample, γ̃); ``violations`` lists (sample, γ̃, ratio) where the bound fails (the first
    one per sample)."""

    holds: bool
    rho0: float
    rho_min: float
    window: tuple
    nonsupport: tuple
    witness: tuple
    violations: tuple
    limit: np.ndarray = field(repr=False)


def condition5(traj, *, limit=None, window=None, rho0=None):
    """Check Condition 5 (see :class:`Condition5`) on the saved points.

    ``limit``: the limit predictor whose non-support vectors are checked.  The paper's ŵ
    is the limit of the trajectory itself (under its stopping rule), so by default it is
    this run's end point ŵ(γ̃_final) -- not the Q_μ point, which would assume Theorem 6's
    conclusion: a flow can keep the Q_μ path's non-support points away and still leave the
    path, when a support vector of the path drops out of the flow's support (fig3c's first
    construction did).  Pass a max-margin point to test against it instead.  ``window``: (γ̃_lo, γ̃_hi); by default
    from 1% of min(α^D, γ̃_final) -- standing in for the paper's exp(-o(α^D)) -- (or
    the first point with γ > 0, if later) to the end.  ``rho0``: the bound ρ₀ > 1.  The
    condition is asymptotic in α, so on one finite trajectory ρ₀ must be chosen; by default
    it is halfway to the limit's own smallest non-support margin, 1 + (min_k x̃_kᵀŵ_limit - 1)/2:
    a point that is a support vector earlier in the window (ratio near 1, as when it leaves
    the support along the Q_μ path) fails it, a point that stays separated passes.
    """
    Xt, D = _tilde(traj), traj.depth
    g_end = float(traj.gamma[-1])
    if limit is None:
        if not traj.margin[-1] > 0:
            raise ParameterError("the run ends before every sample is classified: pass limit=")
        limit = traj.w_hat[-1]
    limit = np.asarray(getattr(limit, "w", limit), dtype=float)
    if limit.shape != (Xt.shape[1],) or not np.all(np.isfinite(limit)):
        raise ParameterError(f"limit must be a finite vector of {Xt.shape[1]} weights")
    lm = Xt @ limit
    lm = lm / lm.min()
    # a sample is a support vector of the limit when its margin gap m_k - γ at the end of
    # the run is O(1) (softmax weight >= e^-5): at finite γ support vectors' margins differ
    # by O(1), so their ratios differ from 1 by O(1/γ), while a non-support gap grows ~γ
    nonsupport = np.flatnonzero((lm - 1.0) * max(float(traj.margin[-1]), 1.0) > SUPPORT_GAP)
    positive = traj.margin > 0
    if window is None:
        start = 0.01 * min(math.exp(min(D * math.log(traj.alpha), 700.0)), g_end)
        first = traj.gamma[np.argmax(positive)] if positive.any() else g_end
        window = (max(start, float(first)), g_end)
    lo_w, hi_w = (float(v) for v in window)
    inside = (traj.gamma >= lo_w) & (traj.gamma <= hi_w) & positive
    if not inside.any() or not lo_w <= hi_w:
        raise ParameterError(f"window {window!r} holds no saved point with positive margin")
    if len(nonsupport) == 0:
        return Condition5(True, math.nan, math.inf, (lo_w, hi_w), (), (), (), limit)
    gap = float(np.min(lm[nonsupport])) - 1.0
    thr = 1.0 + gap / 2.0 if rho0 is None else positive_float("rho0", rho0)
    if not thr > 1.0:
        raise ParameterError(f"rho0 must be > 1 (Condition 5); got {rho0!r}")
    r = normalized_margins(traj)[inside][:, nonsupport]
    gam = traj.gamma[inside]
    j, c = np.unravel_index(int(np.argmin(r)), r.shape)
    violations = []
    for col, k in enumerate(nonsupport):
        bad = np.flatnonzero(r[:, col] < thr)
        if len(bad):
            violations.append((int(k), float(gam[bad[0]]), float(r[bad[0], col])))
    rho_min = float(r[j, c])
    return Condition5(holds=not violations, rho0=thr, rho_min=rho_min, window=(lo_w, hi_w),
                      nonsupport=tuple(int(k) for k in nonsupport),
                      witness=(int(nonsupport[c]), float(gam[j])), violations=tuple(violations),
                      limit=limit)


def implicit_bias(traj):
    """All of the above in one dict: gamma, mu_eff, support, q_distance, excess_l1 and
    condition5 (with its defaults)."""
    dist, mus = q_distance(traj)
    try:
        c5 = condition5(traj)
    except ParameterError:
        c5 = None
    return dict(gamma=traj.gamma, mu_eff=mus, support=support_vectors(traj), q_distance=dist,
                excess_l1=excess_l1(traj), condition5=c5)
