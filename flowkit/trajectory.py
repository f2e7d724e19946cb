"""Trajectory: the saved points of one integration, plain arrays over gamma~ ascending.

Fields (n = number of saved points, d = features, N = samples):

* ``gamma``     (n,)      training accuracy gamma~ = -log L; the last entry is the target;
* ``w``         (n, d)    predictor w = u+^D - u-^D;
* ``margin``    (n,)      gamma = min_n y_n x_nᵀ w;
* ``w_hat``     (n, d)    normalised predictor w / gamma (margin 1);
* ``theta``     (n, 2, d) log-parameters (log u+, log u-);
* ``log_time``  (n,)      log of the gradient-flow time t;
* ``state``     (n, d+1+N) the integrator's state (y, omega, xi) (flow.py), from which
                          ``at`` restarts;
* ``stats``     dict      method, rtol, atol, linalg ("dense", "structured" or "dual":
                          flow.py, flowkit.dual), nfev, njev, nlu, steps, seconds, invariants.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ._kernels.fields import fields
from .diagnostics import invariants
from .exceptions import FlowkitError

__all__ = ["Trajectory"]


@dataclass(frozen=True, eq=False)
class Trajectory:
    gamma: np.ndarray
    w: np.ndarray
    margin: np.ndarray
    w_hat: np.ndarray
    theta: np.ndarray
    log_time: np.ndarray
    state: np.ndarray = field(repr=False)
    stats: dict
    depth: int
    alpha: float
    stopping: str
    flow: object = field(repr=False, default=None)

    @classmethod
    def from_states(cls, flow, gamma, states, stats, stopping):
        """Evaluate all fields from the integrator's states at the given gamma~."""
        P = flow.problem
        D, A = float(P.depth), P.log_alpha_D
        gamma = np.ascontiguousarray(gamma, dtype=float)
        w, delta, margin, gamma_state, log_time = fields(
            gamma, np.ascontiguousarray(states, dtype=float), P.Xt, D, A)
        stats = dict(stats, method=flow.method, rtol=flow.rtol, atol=flow.atol.tolist(),
                     linalg=flow.linalg, step=flow.step,
                     invariants=invariants(P, gamma, delta, margin, gamma_state, log_time))
        if P.scale != 1.0:  # the flow ran on X/s with alpha^D s (Problem.scale): back to X
            w = w / P.scale
            log_time = log_time - (2.0 / D) * math.log(P.scale)
            stats["data_scale"] = P.scale
        return cls(gamma=gamma, w=w, margin=margin, w_hat=w / margin[:, None],
                   theta=math.log(P.alpha) + delta, log_time=log_time, state=np.array(states),
                   stats=stats, depth=P.depth, alpha=P.alpha, stopping=stopping, flow=flow)

    def __len__(self):
        return self.gamma.size

    @property
    def final(self):
        """Dict of the last saved point (at the target)."""
        return {"gamma": float(self.gamma[-1]), "margin": float(self.margin[-1]),
                "w": self.w[-1].tolist(), "w_hat": self.w_hat[-1].tolist()}

    def at(self, gamma):
        """Trajectory at the given gamma~ (scalar or array; sorted, duplicates merged) inside
        [gamma[0], gamma[-1]].

        Dense evaluation within the run's tolerance: the flow is integrated again from
        the nearest saved state below each requested point, with the run's method and
        tolerances (no interpolation error on top of the solver's).
        """
        if self.flow is None:
            raise FlowkitError("this Trajectory carries no flow to evaluate from")
        req = np.atleast_1d(np.asarray(gamma, dtype=float))
        lo, hi = self.gamma[0], self.gamma[-1]
        if req.ndim != 1 or req.size == 0 or not np.all(np.isfinite(req)) or np.any(req < lo) or np.any(req > hi):
            raise FlowkitError(f"at() takes one or more gamma~ within the saved range [{lo:.6g}, {hi:.6g}]")
        req = np.unique(req)  # a Trajectory is ascending in gamma~
        order = range(req.size)
        states = np.empty((req.size, self.state.shape[1]))
        totals = {"nfev": 0, "njev": 0, "nlu": 0, "steps": 0, "seconds": 0.0}
        for j in order:
            k = int(np.searchsorted(self.gamma, req[j], side="right")) - 1
            if self.gamma[k] == req[j]:
                states[j] = self.state[k]
                continue
            out, st = self.flow.advance(math.log(self.gamma[k]), self.state[k], [math.log(req[j])])
            states[j] = out[-1]
            for key in totals:
                totals[key] += st[key]
        # type(self): subclasses (flowkit.baselines, flowkit.linearized) evaluate their own states
        return type(self).from_states(self.flow, req, states, totals, self.stopping)
