"""Invariants that every trajectory must satisfy (math.md), measured on saved points.

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

import numpy as np

from ._kernels.flow import softplus

__all__ = ["invariants"]


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
    lemma3 = gamma - np.array([softplus(log_c + lt) for lt in log_time])
    return {
        "conservation": conservation,
        "gamma_consistency": float(np.max(rel)),
        "margin_bounds": float(np.max(bounds)),
        "margin_increments": float(np.min(inc, initial=np.inf)),
        "lemma3_slack": float(np.min(lemma3)),
    }
