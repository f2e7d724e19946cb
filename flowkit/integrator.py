"""``flowkit.integrate``: the one entry point from data to Trajectory.

Data flow: (X, y) -> Problem (validation, separability) -> StoppingRule (target
gamma~) -> save grid -> engine (``select.select``: model x linear algebra x method) ->
system.advance (driver.Driver) -> Trajectory.  With many more features than samples Radau integrates the
flow in its dual form (flowkit.dual.DualFlow, N unknowns instead of d); its Trajectory is
the same in every field.
"""
from __future__ import annotations

import math

import numpy as np

from .exceptions import ParameterError, StoppingRuleError
from .flow import GAMMA_START
from .linearized import LinearizedTrajectory
from .problem import Problem
from .select import select, select_step
from .stopping import resolve_stopping_rule
from .trajectory import Trajectory

__all__ = ["integrate", "save_grid", "save_points", "MODELS"]

# integrate()'s models: name -> trajectory class (the flow is chosen in select.py)
MODELS = {"nonlinear": Trajectory, "linearized": LinearizedTrajectory}


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
              rtol=1e-10, atol=None, method="Radau", points_per_decade=20, model="nonlinear",
              linalg="auto", max_steps=50_000, step="scipy"):
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
    linalg : "auto" (default), "dense", "structured" or "dual": the Newton matrices' linear
        algebra (flowkit.select); the choice made is ``stats["linalg"]``.
    max_steps : the solver's step budget (IntegrationError past it).
    step : "scipy" (default: radau.ThetaRadau, scipy's Radau step in Python) or "compiled"
        (compiled.CompiledRadau: the same step in numba, ~15-25x faster on small data;
        method "Radau", linalg "dense", the nonlinear model); ``stats["step"]``.

    Returns
    -------
    Trajectory with gamma~ ascending and its last point exactly at the target.
    """
    if not isinstance(model, str) or model not in MODELS:
        raise ParameterError(f"unknown model {model!r}; choose one of {list(MODELS)}")
    if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)) or max_steps < 1:
        raise ParameterError(f"max_steps must be a positive integer; got {max_steps!r}")
    # the network flow scales its data (Problem.scale); the linearised model runs them as given
    problem = Problem.build(X, y, depth, alpha, scaled=model == "nonlinear")
    rule = resolve_stopping_rule(gamma=gamma, loss=loss, mu=mu, log_alpha_D=problem.given_log_alpha_D)
    grid = save_points(rule, save_at, points_per_decade)
    flow_cls, chosen = select(problem, gamma=rule.gamma, method=method, rtol=rtol, atol=atol,
                              linalg=linalg, model=model)
    options = {} if chosen == "dual" else {"linalg": chosen}
    if select_step(step, method=method, linalg=chosen, model=model) == "compiled":
        options["step"] = "compiled"
    flow = flow_cls(problem, method=method, rtol=rtol, atol=atol, max_steps=int(max_steps), **options)
    states, stats = flow.advance(flow.sigma0, flow.z0, [math.log(g) for g in grid])
    return MODELS[model].from_states(flow, grid, states, stats, rule.describe())
