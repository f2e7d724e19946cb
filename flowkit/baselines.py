"""Discrete baselines for the gradient flow of :func:`flowkit.integrate`: gradient descent
and the paper's normalised gradient descent (Moroshko et al. 2020, "Numerical
Simulations": "the gradient is normalized by the loss itself"), on the same model
(w = u+^D - u-^D, u(0) = alpha·1, exp-loss), with a fixed learning rate.

* :func:`gradient_descent`: u <- u - lr ∇L(u);
* :func:`normalized_gd`:    u <- u - lr ∇L(u) / L(u) = u - lr ∇ log L(u).

Normalised GD is forward Euler on the flow in the time tau with d tau = L dt (math.md,
"Log-loss time"); a step of size lr is a gradient-flow step of t-length lr / L, so the
discrete t of the returned ``log_time`` is log Σ_k lr e^{gamma~_k} (lr·k for plain GD).
In tau, gamma~ grows like e^{c tau} at D = 2 and blows up in finite tau for D > 2
(dgamma~/dtau = kappa grows like gamma~^{(2D-2)/D}), so at fixed lr each step moves
gamma~ by more and more.  The number of steps to a target stays finite (about
log(gamma~)/(c lr) at D = 2, bounded in gamma~ for D > 2) and the endpoint error is
first order in lr.  Stability: the O(1) gaps between the margins of support vectors relax
at a rate ~ k kappa in tau (k = their rate per unit of gamma~), so forward Euler with a
fixed lr is stable only while lr k kappa(gamma~) < 2 -- up to gamma~ ~ 1/(k lr) at D = 2.
Where several support vectors share the margin the iteration then starts raising the
loss (planted 8-point data, D = 2: lr = 1e-2 first does so at gamma~ ~ 2.6e3; tests).
That is reported, never smoothed over: ``strict=True`` (default) raises
UnstableStepError there; ``strict=False`` runs the paper's method as is and counts such
steps in ``stats["ascent_steps"]``.  A first step large enough to make some u± <= 0
(lr D alpha^{D-2} |g_i| >= 1, e.g. lr >= 1e-2 at D = 3, alpha = 100) always raises.

Numerics (kernels in ``flowkit._kernels.baselines``): the loss is never formed
(g = ∇_w log L = -Xtᵀ softmax(-m) with a log-sum-exp shift), the parameters are carried
as log-offsets delta± = log u± - log alpha and updated exactly by log1p, so that w keeps
full precision where u hardly moves (large alpha); the loop allocates nothing per step.

Stopping: the same rules as :func:`flowkit.integrate` (``gamma``, ``loss`` or ``mu``).
The point saved at a requested gamma~_s is the last iterate u_k with gamma~ < gamma~_s
moved by a **shortened step** eta·lr, eta in (0, 1] the root of gamma~(eta) = gamma~_s
(regula falsi): a genuine partial step of the method, landing on gamma~_s to rounding.
The partial step is a side branch: the iteration itself continues from u_k with full
steps, so the saved points and the end point are exactly those of one run of the
method, stopped at the first step that reaches the target.  The save grid is
``integrate``'s (same ``points_per_decade`` and ``save_at``), so a baseline and a flow
trajectory can be compared point by point.

Result: a :class:`BaselineTrajectory`, a :class:`flowkit.Trajectory` subclass with the
same fields (gamma, w, margin, w_hat, theta, log_time, state, stats, depth, alpha,
stopping, flow) and meanings, except that

* ``state`` rows are (delta+ (d), delta- (d), gamma~_k, log t_k, k, eta): the iterate u_k
  before the shortened step, and eta, from which ``at`` re-runs the iteration;
* ``flow`` is the :class:`Iteration` (problem, method, lr) that produced it;
* ``stats`` has method ("GD" or "NGD"), lr, iterations (full steps of the whole run),
  steps (= iterations), nfev (gradient evaluations, landing included), seconds, tau
  (the method's own time lr·(k + eta); for GD tau = t), ascent_steps and
  first_ascent_gamma (``strict=False``), and ``invariants``
  (diagnostics.invariants), whose ``conservation`` entry is the drift of the
  conservation law of the flow, which the discrete method does not keep: a measure of
  its discretisation error (zero for the flow up to rounding).

Errors: bad input raises :class:`flowkit.FlowkitError` subclasses (ValueError) before
any work; an unstable step raises :class:`UnstableStepError` (a ParameterError: the lr
is out of range for this problem at that gamma~; ``reason`` is "ascent", "sign",
"overflow" or "stall") and an exhausted budget (``max_iter``, ``max_seconds``) raises
:class:`BudgetExceededError` (an IntegrationError), both naming gamma~ and the step.
Plain GD's gamma~ grows only like the log of its step count (its step is lr L g); it
gives up with BudgetExceededError as soon as its current rate cannot reach the target
within ``max_iter``, instead of running out the budget.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from ._kernels import baselines as KB
from .diagnostics import invariants
from .exceptions import FlowkitError, ParameterError
from .exceptions import IntegrationError
from .integrator import save_points
from .problem import Problem, positive_float
from .stopping import resolve_stopping_rule
from .trajectory import Trajectory

__all__ = ["gradient_descent", "normalized_gd", "BaselineTrajectory", "Iteration",
           "UnstableStepError", "BudgetExceededError", "BASELINE_METHODS"]

BASELINE_METHODS = {"GD": False, "NGD": True}  # name -> normalised by the loss

# steps per call of the numba loop between wall-clock checks (~0.05-0.2 s)
CHUNK = 1 << 20


class UnstableStepError(ParameterError):
    """A full step raised the loss, would make a parameter u± non-positive, overflowed,
    or left every parameter unchanged: lr is not usable at this gamma~."""

    def __init__(self, message, *, gamma, iteration, lr, reason):
        super().__init__(message)
        self.gamma, self.iteration, self.lr, self.reason = gamma, iteration, lr, reason


class BudgetExceededError(IntegrationError):
    """``max_iter`` or ``max_seconds`` ran out before the target gamma~."""

    def __init__(self, message, *, gamma_reached, iterations, seconds):
        super().__init__(message)
        self.gamma_reached, self.iterations, self.seconds = gamma_reached, iterations, seconds


class Iteration:
    """GD or normalised GD with a fixed lr on one Problem (what ``BaselineTrajectory.flow``
    holds): ``advance`` runs the method between requested gamma~ values."""

    def __init__(self, problem, method, lr, *, max_iter=10**9, max_seconds=None, strict=True):
        if method not in BASELINE_METHODS:
            raise ParameterError(f"unknown baseline method {method!r}; choose one of {sorted(BASELINE_METHODS)}")
        self.problem = problem
        self.method = method
        self.normalized = BASELINE_METHODS[method]
        self.lr = positive_float("lr", lr)
        if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
            raise ParameterError(f"max_iter must be a positive integer; got {max_iter!r}")
        self.max_iter = int(max_iter)
        self.max_seconds = None if max_seconds is None else positive_float("max_seconds", max_seconds)
        if not isinstance(strict, (bool, np.bool_)):
            raise ParameterError(f"strict must be True or False; got {strict!r}")
        self.strict = bool(strict)
        D, A = float(problem.depth), problem.log_alpha_D
        # log(lr D alpha^{D-2})
        self.logc0 = math.log(self.lr) + math.log(D) + (D - 2.0) / D * A
        self._args = (problem.Xt, D, A, self.logc0, self.normalized)

    @property
    def state0(self):
        d = self.problem.n_features
        return np.concatenate([np.zeros(2 * d), [0.0, -np.inf, 0.0, 0.0]])

    def advance(self, sigma_from, state_from, sigma_to):
        """``Flow.advance``'s interface (log gamma~ targets), for ``Trajectory.at``."""
        return self.advance_gamma(state_from, np.exp(np.asarray(sigma_to, dtype=float)))

    def advance_gamma(self, state_from, targets):
        """States (rows as in ``BaselineTrajectory.state``) at the increasing gamma~
        ``targets``, iterating from the iterate held in ``state_from``; (states, stats)."""
        d = self.problem.n_features
        row = np.asarray(state_from, dtype=float)
        dp, dm = row[:d].copy(), row[d:2 * d].copy()
        gam, log_t, k = float(row[2 * d]), float(row[2 * d + 1]), int(row[2 * d + 2])
        targets = np.asarray(targets, dtype=float)
        if targets.size == 0 or not targets[0] > gam or np.any(np.diff(targets) <= 0):
            raise FlowkitError(f"targets must increase from above the start gamma~ = {gam:.6g}")
        saved = np.empty((targets.size, 2 * d + 3))
        j, k0 = 0, k
        ascents, first_ascent = 0, math.nan
        g_chunk, k_chunk = gam, k
        t0 = time.perf_counter()
        while True:
            kmax = min(k + CHUNK, self.max_iter)
            status, gam, log_t, k, j, gbad, n_asc, g_asc = KB.run(
                *self._args, dp, dm, gam, log_t, k, kmax, targets, j, saved, not self.strict)
            if n_asc and not ascents:
                first_ascent = g_asc
            ascents += n_asc
            if status == KB.REACHED:
                break
            elapsed = time.perf_counter() - t0
            if status == KB.BUDGET:
                over_time = self.max_seconds is not None and elapsed > self.max_seconds
                # plain GD slows down as L falls (gamma~ ~ log of the step count): at the
                # rate of the last chunk it would need this many more steps, a lower
                # estimate since its rate keeps falling
                rate = (gam - g_chunk) / (k - k_chunk) if k > k_chunk else 0.0
                hopeless = (not self.normalized and rate > 0
                            and (targets[-1] - gam) / rate > self.max_iter - k)
                if k >= self.max_iter or over_time or hopeless:
                    what = (f"max_iter = {self.max_iter}" if k >= self.max_iter
                            else f"max_seconds = {self.max_seconds:g}" if over_time else
                            f"max_iter = {self.max_iter} (at its current rate, "
                            f"{rate:.3g} per step, it needs > {(targets[-1] - gam) / rate:.3g} more steps)")
                    raise BudgetExceededError(
                        f"{self.method} (lr = {self.lr:g}) ran out of {what} at gamma~ = {gam:.6g} "
                        f"after {k} steps and {elapsed:.3g} s (target gamma~ = {targets[-1]:.6g})",
                        gamma_reached=gam, iterations=k, seconds=elapsed)
                g_chunk, k_chunk = gam, k
                continue
            raise self._unstable(status, gam, gbad, k, targets[-1])
        states = np.empty((targets.size, 2 * d + 4))
        nfev = k - k0 + 1
        for jj in range(targets.size):
            pre = saved[jj]
            eta, _, _, _, nev = KB.land(*self._args, pre[:d], pre[d:2 * d], pre[2 * d], targets[jj])
            states[jj, :-1], states[jj, -1] = pre, eta
            nfev += nev
        stats = {"nfev": nfev, "njev": 0, "nlu": 0, "steps": k - k0,
                 "seconds": time.perf_counter() - t0,
                 "ascent_steps": ascents, "first_ascent_gamma": first_ascent}
        return states, stats

    def _unstable(self, status, gam, gbad, k, target):
        name = "normalised GD" if self.normalized else "gradient descent"
        where = f"{name} with lr = {self.lr:g} at step {k} (gamma~ = {gam:.6g}, target {target:.6g})"
        if status == KB.ASCENT:
            reason, text = "ascent", f"a full step raised the loss (gamma~ {gam:.10g} -> {gbad:.10g})"
        elif status == KB.SIGN:
            reason, text = "sign", "a full step would make a parameter u+- <= 0"
        elif status == KB.NONFINITE:
            reason, text = "overflow", "the step overflowed"
        else:
            reason = "stall"
            text = ("the step changes no parameter in float64"
                    + ("" if self.normalized else
                       f": plain GD's step is lr·L with L = e^-gamma~ = e^-{gam:.4g}; "
                       "use normalized_gd or flowkit.integrate to go further"))
        advice = "" if reason == "stall" else "; lr is too large to be stable here, use a smaller lr"
        return UnstableStepError(f"{where}: {text}{advice}", gamma=gam, iteration=k, lr=self.lr, reason=reason)


@dataclass(frozen=True, eq=False)
class BaselineTrajectory(Trajectory):
    """A :class:`Trajectory` produced by a discrete baseline (module docstring)."""

    @classmethod
    def from_states(cls, flow, gamma, states, stats, stopping):
        P = flow.problem
        D, A, d = float(P.depth), P.log_alpha_D, P.n_features
        gamma = np.asarray(gamma, dtype=float)
        n = gamma.size
        w = np.empty((n, d))
        delta = np.empty((n, 2, d))
        margin, gamma_state, log_time = np.empty(n), np.empty(n), np.empty(n)
        m_buf, p_buf = np.empty(P.n_samples), np.empty(P.n_samples)
        loglr = math.log(flow.lr)
        for k in range(n):
            row = states[k]
            pre_gam, pre_log_t, eta = row[2 * d], row[2 * d + 1], row[2 * d + 3]
            dp, dm = KB.step_from(*flow._args, row[:d], row[d:2 * d], pre_gam, eta)
            delta[k, 0], delta[k, 1] = dp, dm
            KB.fill_w(dp, dm, D, A, w[k])
            gamma_state[k] = KB.gamma_and_p(P.Xt, w[k], m_buf, p_buf)
            margin[k] = m_buf.min()
            dt = loglr + math.log(eta) + (pre_gam if flow.normalized else 0.0)
            log_time[k] = np.logaddexp(pre_log_t, dt)
        last = states[-1]
        stats = dict(stats, method=flow.method, lr=flow.lr, iterations=int(last[2 * d + 2]),
                     tau=flow.lr * (last[2 * d + 2] + last[2 * d + 3]),
                     invariants=invariants(P, gamma, delta, margin, gamma_state, log_time))
        return cls(gamma=gamma, w=w, margin=margin, w_hat=w / margin[:, None],
                   theta=math.log(P.alpha) + delta, log_time=log_time, state=np.array(states),
                   stats=stats, depth=P.depth, alpha=P.alpha, stopping=stopping, flow=flow)


def _baseline(method, X, y, depth, alpha, lr, gamma, loss, mu, save_at, points_per_decade,
              max_iter, max_seconds, strict):
    problem = Problem.build(X, y, depth, alpha)
    it = Iteration(problem, method, lr, max_iter=max_iter, max_seconds=max_seconds, strict=strict)
    rule = resolve_stopping_rule(gamma=gamma, loss=loss, mu=mu, log_alpha_D=problem.log_alpha_D)
    grid = save_points(rule, save_at, points_per_decade)
    states, stats = it.advance_gamma(it.state0, grid)
    return BaselineTrajectory.from_states(it, grid, states, stats, rule.describe())


def normalized_gd(X, y, *, depth, alpha, lr, gamma=None, loss=None, mu=None, save_at=None,
                  points_per_decade=20, max_iter=10**9, max_seconds=None, strict=True):
    """Normalised gradient descent u <- u - lr ∇L/L (the paper's method) from u = alpha·1 to
    a target training accuracy, with ``integrate``'s data, stopping rules and save grid.

    Parameters
    ----------
    X, y, depth, alpha, gamma, loss, mu, save_at, points_per_decade : as in
        :func:`flowkit.integrate`.
    lr : the fixed learning rate (> 0).
    max_iter : budget of full steps;  max_seconds : wall-time budget (None: no limit).
    strict : raise UnstableStepError at the first step that raises the loss (default);
        False takes such steps (the paper's method as is) and counts them in
        ``stats["ascent_steps"]`` (``stats["first_ascent_gamma"]``: gamma~ before the first).

    Returns a :class:`BaselineTrajectory` whose last point is at the target (module
    docstring: the last step is shortened to land on it).  Raises UnstableStepError if a
    step would make a parameter non-positive, overflows, changes nothing, or (``strict``)
    raises the loss; BudgetExceededError if the budget runs out first.
    """
    return _baseline("NGD", X, y, depth, alpha, lr, gamma, loss, mu, save_at,
                     points_per_decade, max_iter, max_seconds, strict)


def gradient_descent(X, y, *, depth, alpha, lr, gamma=None, loss=None, mu=None, save_at=None,
                     points_per_decade=20, max_iter=10**9, max_seconds=None, strict=True):
    """Plain gradient descent u <- u - lr ∇L; arguments and result as :func:`normalized_gd`.

    The step shrinks with the loss (lr L g, L = e^{-gamma~}); once it no longer changes
    the parameters in float64 (gamma~ of a few tens at lr ~ 0.1) the run stops with
    UnstableStepError(reason="stall") rather than spin: plain GD cannot reach high
    accuracies, which is why the paper normalises by the loss.
    """
    return _baseline("GD", X, y, depth, alpha, lr, gamma, loss, mu, save_at,
                     points_per_decade, max_iter, max_seconds, strict)
