"""``flowkit.integrate``: the one entry point from data to Trajectory.

Data flow: (X, y) -> Problem (validation, separability) -> StoppingRule (target
gamma~) -> save grid -> Flow.advance -> Trajectory.  With many more features than samples
Radau integrates the flow in its dual form (flowkit.dual.DualFlow, N unknowns instead of d;
``dual_pays``); its Trajectory is the same in every field.
"""
from __future__ import annotations

import math

import numpy as np

from .exceptions import ParameterError, StoppingRuleError
from .dual import DualFlow, dual_pays
from .flow import GAMMA_START, Flow
from .linearized import LinearizedFlow, LinearizedTrajectory
from .problem import Problem
from .stopping import resolve_stopping_rule
from .trajectory import Trajectory

__all__ = ["integrate", "save_grid", "save_points", "MODELS"]

# integrate()'s models: name -> (flow, trajectory class)
MODELS = {"nonlinear": (Flow, Trajectory), "linearized": (LinearizedFlow, LinearizedTrajectory)}


def save_grid(target, points_per_decade=20, extra=()):
    """gamma~ values to save at: >= ``points_per_decade`` per decade from 1e-3 (or the
    start, for targets below 1e-2) up to the target, plus ``extra``; the target is last."""
    lower = 1e-3 if target > 1e-2 else GAMMA_START * 10
    decades = math.log10(target / lower)
    n = max(int(math.ceil(points_per_decade * decades)), 1) + 1
    grid = np.logspace(math.log10(lower), math.log10(target), n)[:-1]
    pts = np.unique(np.concatenate([grid, np.asarray(extra, dtype=float), [target]]))
    return pts[pts <= target]


def save_points(rule, save_at, points_per_decade):
    """The checked save grid of a run to ``rule``'s target: ``save_grid`` with ``save_at``
    as extra points (shared with flowkit.baselines)."""
    try:
        extra = () if save_at is None else np.atleast_1d(np.asarray(save_at, dtype=float))
    except (TypeError, ValueError):
        raise StoppingRuleError(f"save_at must be a list of numbers; got {save_at!r}") from None
    if len(extra) and extra.ndim != 1:
        raise StoppingRuleError(f"save_at must be a flat list of gamma~ values; got shape {extra.shape}")
    if len(extra) and (not np.all(np.isfinite(extra)) or np.any(extra <= GAMMA_START * 10)
                       or np.any(extra > rule.gamma)):
        raise StoppingRuleError(
            f"save_at values must lie in ({GAMMA_START * 10:g}, target gamma~ = {rule.gamma:.6g}]")
    if not (isinstance(points_per_decade, (int, np.integer)) and 1 <= points_per_decade <= 1000):
        raise StoppingRuleError(f"points_per_decade must be an integer in [1, 1000]; got {points_per_decade!r}")
    return save_grid(rule.gamma, points_per_decade, extra)


def integrate(X, y, *, depth, alpha, gamma=None, loss=None, mu=None, save_at=None,
              rtol=1e-10, atol=None, method="Radau", points_per_decade=20, model="nonlinear"):
    """Gradient flow of the depth-``depth`` diagonal network from u = alpha·1 to a target
    training accuracy, on linearly separable data (X, y) with the exp-loss.

    Parameters
    ----------
    X, y : (N, d) features and (N,) labels in {-1, +1}.
    depth : integer D >= 2.   alpha : initialisation scale > 0.
    gamma, loss, mu : exactly one stopping rule -- the target gamma~ = -log L; the loss L
        (number or exact decimal string such as "1e-8700"); or mu, the paper's
        eps(alpha) = exp(-alpha^D/mu), i.e. gamma~ = alpha^D/mu.
    save_at : extra gamma~ values (0 < gamma~ <= target) to save at exactly.
    rtol, atol : solver tolerances (atol on the scaled state, see flow.py).
    method : "Radau" (default), "BDF", "LSODA" (stiff) or "RK45", "RK23", "DOP853".
    points_per_decade : density of the default save grid.
    model : "nonlinear" (the network, default) or "linearized" (its tangent-kernel model,
        flowkit.linearized; same engine, its w is the linearised predictor).

    Returns
    -------
    Trajectory with gamma~ ascending and its last point exactly at the target.
    """
    if model not in MODELS:
        raise ParameterError(f"unknown model {model!r}; choose one of {list(MODELS)}")
    flow_cls, traj_cls = MODELS[model]
    problem = Problem.build(X, y, depth, alpha)
    rule = resolve_stopping_rule(gamma=gamma, loss=loss, mu=mu, log_alpha_D=problem.log_alpha_D)
    grid = save_points(rule, save_at, points_per_decade)
    # a user's atol is on flow.py's scaled state y: it keeps that state
    if flow_cls is Flow and atol is None and dual_pays(problem, rule.gamma, rtol, method):
        flow_cls = DualFlow  # d >> N: the same flow in N unknowns (flowkit.dual)
    flow = flow_cls(problem, method=method, rtol=rtol, atol=atol)
    states, stats = flow.advance(flow.sigma0, flow.z0, [math.log(g) for g in grid])
    return traj_cls.from_states(flow, grid, states, stats, rule.describe())
