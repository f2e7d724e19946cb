"""The tangent-kernel (linearised) model of the diagonal network (math.md, "Tangent-kernel
(linearised) model"), integrated by the flow's engine: ``flowkit.integrate(...,
model="linearized")``.

Linearising w = u+^D - u-^D at u = alpha·1 gives the feature map phi(x) = D alpha^{D-1} [x; -x]
and the model w̄ = D alpha^{D-1} (Δu+ - Δu-); gradient flow on its parameters gives
Δu+ = -Δu- and

    dw̄/dt = K r(w̄),   K = 2 D² alpha^{2D-2},   r = L g,  g = Xtᵀ softmax(-Xt w̄).

In log-loss time (dgamma~/dt = K L |g|²)

    dw̄/dgamma~ = g / |g|²,    dt/dgamma~ = e^{gamma~} / (K |g|²),

so the path w̄(gamma~) is the same for every D and alpha (they set only the clock t),
and ŵ tends to the ℓ2 max-margin solution (``flowkit.max_margin(X, y, "l2")``; the gap
closes like O(1/gamma~) when its support vectors are stable).  Closed forms: one sample,
w̄ = gamma~ x̃/|x̃|², t = expm1(gamma~)/(K |x̃|²); orthogonal rows,
w̄(t) = Σ_n x̃_n log(1 + K |x̃_n|² t / N) / |x̃_n|².

Engine: the state and kernels are in ``flowkit._kernels.linearized`` (v = w̄/gamma~,
omega and, past XI_SWITCH, the margin offsets xi, laid out exactly as the flow's
states), so :class:`LinearizedFlow` is a system (flowkit.system) with its own right-hand
sides, Jacobians and initial state, and the driver (methods, tolerances, save points,
coordinate switches, error handling) is the flow's, unchanged.

Result: a :class:`LinearizedTrajectory` (a :class:`flowkit.Trajectory`) with the same
fields; ``theta`` holds the logs of the linear model's own parameters
u± = alpha ± w̄/(2 D alpha^{D-1}) (NaN where a parameter is <= 0: unlike the network's,
they are not kept positive), ``state`` rows are (v, omega, xi), ``stats["model"]`` is
"linearized", and ``stats["invariants"]`` has everything but ``conservation`` (the
linear model has u+ + u- = 2 alpha by construction).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import numpy as np

from ._kernels import linearized as KL
from ._kernels.flow import softmax_margins, softmax_offsets
from .diagnostics import invariants
from .exceptions import ParameterError
from .system import GAMMA_START, METHODS, System
from .trajectory import Trajectory

__all__ = ["LinearizedFlow", "LinearizedTrajectory"]


class LinearizedFlow(System):
    """The linearised model as a system for the flow's driver (module docstring); no
    plateau clock: a convex flow has no saddles to cross."""

    model = "linearized"

    def __init__(self, problem, *, method="Radau", rtol=1e-10, atol=None, max_steps=50_000,
                 linalg="dense"):
        super().__init__(problem, method=method, rtol=rtol, max_steps=max_steps)
        if linalg != "dense":  # its Jacobian is its own (d + 1 + N)-sized dense matrix
            raise ParameterError(f"the linearised model runs with linalg='dense' only; got {linalg!r}")
        self.sigma0, self.z0 = self._initial_state()
        self.atol = self._resolve_atol(atol)

    def fun(self, sigma, z):
        return KL.evaluate(sigma, z, self.problem.Xt, False)[0]

    def jac(self, sigma, z):
        return KL.evaluate(sigma, z, self.problem.Xt, True)[1]

    def fun_xi(self, sigma, z):
        return KL.xi_evaluate(sigma, z, self.problem.Xt, False)[0]

    # the linearised model's own offset rates, in float64 (its margins are a linear map of
    # its state; its large-gamma~ rounding is not measured yet)
    fun_xi_dd = fun_xi

    def jac_xi(self, sigma, z):
        return KL.xi_evaluate(sigma, z, self.problem.Xt, True)[1]

    def _reduced_solver(self, Xt):
        """Mode 2 on the distinct rows Xt (flowkit.system)."""
        return (METHODS[self.method], partial(_xi_fun, Xt=Xt), partial(_xi_jac, Xt=Xt),
                self._dense_lu(2))

    def _initial_state(self):
        """Exact solution for p frozen at 1/N up to gamma~ = GAMMA_START: w̄ = gamma~ ḡ/|ḡ|²
        (ḡ = mean row of Xt) and t kappa = expm1(gamma~); relative error O(gamma~) = 1e-14."""
        gbar = self.problem.Xt.mean(axis=0)
        v0 = gbar / np.dot(gbar, gbar)
        omega0 = math.log(math.expm1(GAMMA_START)) - GAMMA_START
        return math.log(GAMMA_START), np.concatenate([v0, [omega0]])

    def _log_kappa(self, sigma, y):
        """log kappa = log(K |g|²), g from the margins m = gamma~ Xt v."""
        _, p, _ = softmax_margins(self.problem.Xt, math.exp(sigma) * y)
        g = self.problem.Xt.T @ p
        return self.log_K() + math.log(np.dot(g, g))

    def _offsets(self, sigma, y):
        """xi = m - gamma~ from m = gamma~ Xt v, shifted so that mean e^{-xi} = 1."""
        m = math.exp(sigma) * (self.problem.Xt @ y)
        xi = m - m.min()
        return xi + math.log(np.exp(-xi).sum() / m.size)

    def _omega_asymptotic(self, sigma, y, xi):
        # d log kappa/dsigma along the solution: the omega row at omega = 0
        z = np.concatenate([y, xi, [0.0]])
        slope = KL.xi_evaluate(sigma, z, self.problem.Xt, False)[0][-1]
        return math.log1p(slope / math.exp(sigma))

    def log_K(self):
        """log K = log(2 D² alpha^{2D-2})."""
        D = float(self.problem.depth)
        return math.log(2.0 * D * D) + (2.0 * D - 2.0) / D * self.problem.log_alpha_D


def _xi_fun(sigma, z, Xt):
    return KL.xi_evaluate(sigma, z, Xt, False)[0]


def _xi_jac(sigma, z, Xt):
    return KL.xi_evaluate(sigma, z, Xt, True)[1]


@dataclass(frozen=True, eq=False)
class LinearizedTrajectory(Trajectory):
    """A :class:`Trajectory` of the linearised model (module docstring)."""

    @classmethod
    def from_states(cls, flow, gamma, states, stats, stopping):
        P = flow.problem
        D, A, d = float(P.depth), P.log_alpha_D, P.n_features
        gamma = np.asarray(gamma, dtype=float)
        n = gamma.size
        w = gamma[:, None] * states[:, :d]
        margin, gamma_state, log_time = np.empty(n), np.empty(n), np.empty(n)
        for k in range(n):
            m, _, gamma_state[k] = softmax_margins(P.Xt, w[k])
            margin[k] = m.min()
            p, _ = softmax_offsets(states[k, d + 1:])
            g = P.Xt.T @ p
            # omega = log(t kappa) - gamma~, kappa = K |g|²
            log_time[k] = states[k, d] + gamma[k] - flow.log_K() - math.log(np.dot(g, g))
        # linear-model parameters u± = alpha (1 ± w̄ / (2 D alpha^D))
        s = w * math.exp(-A) / (2.0 * D)
        with np.errstate(invalid="ignore", divide="ignore"):
            theta = math.log(P.alpha) + np.stack([np.log1p(s), np.log1p(-s)], axis=1)
        theta[~np.isfinite(theta)] = np.nan
        inv = invariants(P, gamma, np.zeros((n, 2, d)), margin, gamma_state, log_time)
        inv.pop("conservation")
        stats = dict(stats, method=flow.method, rtol=flow.rtol, atol=flow.atol.tolist(),
                     linalg=flow.linalg, model="linearized", invariants=inv)
        return cls(gamma=gamma, w=w, margin=margin, w_hat=w / margin[:, None], theta=theta,
                   log_time=log_time, state=np.array(states), stats=stats, depth=P.depth,
                   alpha=P.alpha, stopping=stopping, flow=flow)
