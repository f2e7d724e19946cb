"""Stopping on an event of the trajectory rather than at a fixed accuracy.

``until_excess_l1``: stop when the excess ℓ1 norm ‖ŵ‖₁/‖w_ℓ1‖₁ - 1 (the paper's Fig. 5)
first reaches a level.  The flow is integrated to ``gamma_max``; the first saved point at
or below the level brackets the crossing with its predecessor, and Brent's method on
``Trajectory.at`` (re-integration, so at the run's tolerance) locates it.  The excess need
not be monotone, so the last downward crossing -- the γ̃ from which on the excess stays
at or below the level, up to gamma_max -- is located the same way and reported too (Fig.
5(b) uses it).  The returned trajectory ends exactly at the first crossing; both
crossings are in ``stats["event"]``.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from scipy.optimize import brentq

from .diagnostics import excess_l1
from .integrator import integrate
from .problem import positive_float

__all__ = ["until_excess_l1"]


def _crossing(traj, ex, level, k):
    """γ̃ in (gamma[k-1], gamma[k]] where the excess falls to ``level`` (ex[k] <= level)."""
    if k == 0 or not np.isfinite(ex[k - 1]):
        return float(traj.gamma[k])
    f = lambda g: float(excess_l1(traj.at([g]))[0]) - level
    return brentq(f, float(traj.gamma[k - 1]), float(traj.gamma[k]), rtol=1e-10)


def until_excess_l1(X, y, *, depth, alpha, level, gamma_max, **solver):
    """Trajectory stopped when the excess ℓ1 norm first reaches ``level`` (module
    docstring).  ``solver``: rtol, atol, method, points_per_decade of ``integrate``.
    If the level is not reached by ``gamma_max`` the run to gamma_max is returned with
    ``stats["event"]["reached"] = False``."""
    level = positive_float("level", level)
    long = integrate(X, y, depth=depth, alpha=alpha, gamma=gamma_max, **solver)
    ex = excess_l1(long)
    below = np.isfinite(ex) & (ex <= level)
    info = dict(kind="excess_l1", level=level, gamma_max=float(gamma_max), reached=bool(below.any()))
    if not below.any():
        info.update(gamma_first=None, gamma_last_down=None, excess_final=float(ex[-1]))
        return dataclasses.replace(long, stats=dict(long.stats, event=info))
    first = int(np.argmax(below))
    above = np.flatnonzero(~below)
    last = int(above[-1]) + 1 if len(above) else 0  # first index of the final stretch below
    info["gamma_first"] = _crossing(long, ex, level, first)
    if last == len(ex):  # back above the level at gamma_max: it does not stay below
        info["gamma_last_down"] = None
    else:
        info["gamma_last_down"] = (info["gamma_first"] if last == first
                                   else _crossing(long, ex, level, last))
    info["excess_final"] = float(ex[-1])
    traj = integrate(X, y, depth=depth, alpha=alpha, gamma=info["gamma_first"], **solver)
    return dataclasses.replace(traj, stats=dict(traj.stats, event=info))
