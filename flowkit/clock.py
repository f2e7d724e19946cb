"""The plateau clock: how the driver crosses loss plateaus.

The flow's usual independent variable is sigma = log gamma~ (flow.py).  It is singular
where gamma~ stalls: at small alpha and depth D >= 3 on mixed labels the flow passes
saddles (saddle-to-saddle dynamics), where the features already grown sit at the minimum of
the loss on their support while a new feature j climbs from u ~ alpha to u ~ 1.  gamma~
moves by ~u_j^D while the state moves by O(1): dy/dsigma grows without bound and a sigma
step below float64's spacing is needed (the driver's old failure, "Required step size is
less than spacing").

Physical time is no cure either.  In tau = D alpha^{D-2} t (_kernels/clock.py) the climb
is a finite-time blow-up, u_j^{2-D} = alpha^{2-D} - D(D-2) s_j with s_j linear in t
(math.md, closed form), and its last stretch, from u ~ 1e-5 to u ~ 1 say, lasts a fraction
u^{D-2} of the time since the start: beyond float64 for a plain t, and even re-anchored the
steps must shrink geometrically with the distance to the blow-up (measured: ~10,000 Radau
steps through one plateau at D = 20, alpha = 1e-6).  Arc length is worse: the grown
features' velocities are rounding noise (their g ~ 1e-16, times u^{D-2} up to alpha^{2-D}),
and a clock that normalises by them stalls.

So the clock is the climbing feature's own offset, rho = s_j psi_j (s_j = sign g_j):

    d psi/d rho = f / (s_j f_j),   d tau/d rho = 1 / (s_j f_j),   f = d psi/d tau,

with f_j = L (e^{a delta+_j} + e^{a delta-_j}) g_j an O(1), noise-free number (g_j is not a
cancelling sum on a climbing feature), so the climb moves at rate ~1/a in rho to the end,
and the grown features' noisy velocities enter only as stiff, stable terms (their fixed
point is set to rounding, which is all float64 gives).  j is the feature whose climb ends
first: the largest 1/T_i = |g_i| e^{a delta_i} (T_i: time left to its blow-up, growing side
delta_i = delta± as g_i >< 0) among the features with |g_i| > ``G_FLOOR`` max|g| (the grown
ones have |g| ~ 1e-16); it is chosen again at every step end, and a new stretch starts when
another feature's 1/T is ``RESELECT`` times larger, or j's g falls under the floor.  tau
rides along as a state (re-anchored at 0 for every stretch) and t is the sum of anchors.

Switching (hysteresis, so the driver cannot oscillate):
* sigma -> plateau clock after a sigma step whose rate max|dy/dsigma| / max(1, max|y|)
  exceeds ``RATE_ENTER`` (on flowkit's runs without plateaus it stays below ~1; in a
  plateau it grows to 1e4-1e7 before the old driver failed);
* plateau clock -> sigma at the first step end where the rate of the sigma clock at the
  same state is below ``RATE_EXIT``; no digit is lost at the switch: y = psi/phi(sigma)
  exactly and omega = log(t kappa) - gamma~ from t;
* a save point inside a plateau stretch is landed on: the step that crosses it is located
  on the solver's dense output, re-integrated from its start to the crossing, and polished
  by Newton steps in rho (the state's gamma~ equals the save point's to a few ulp).

Only below flow.XI_SWITCH (gamma~ < 10): a plateau has gamma~ <= log N (the loss of a
non-separating partial solution is at least 1/N), so L = e^{-gamma~} is O(1) here.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq

from ._kernels import clock as KC
from ._kernels import flow as K
from .exceptions import IntegrationError
from .radau import ThetaRadau
from .linalg import StructuredLU
from .structured import JAC_THETA, Jacobian0

__all__ = ["PlateauClock", "RATE_ENTER", "RATE_EXIT", "sigma_rate"]

RATE_ENTER = 1e2
RATE_EXIT = 10.0
G_FLOOR = 1e-2
RESELECT = 4.0
BLOWUP = 1e-3
FIRST = 1e-3
# a landing on a save point inside a stretch re-integrates the part of the last step before
# it in at least this many steps (PlateauClock._land)
LAND_SPLIT = 4


def sigma_rate(y, f):
    """How fast the sigma clock moves the state: max|dy/dsigma| / max(1, max|y|)."""
    return float(np.max(np.abs(f))) / max(1.0, float(np.max(np.abs(y))))


class _Time:
    """One stretch in tau (re-anchored at 0): z = (psi, tau), dz/dtau = (f, 1)."""

    def __init__(self, clock):
        self.clock = clock

    def fun(self, t, z):
        return np.append(self.clock.time_rhs(z[:-1]), 1.0)

    def jac(self, t, z):
        c = self.clock
        delta, b, v, p, f, _ = KC.time_jac_factors(z[:-1], c.Xt, c.D, c.A)
        zero = np.zeros_like(delta)
        jac = Jacobian0(c.Xt, delta, b, v, p, zero, zero, 0.0, z.shape[0])
        return jac if c.structured else jac.dense()

    def first_step(self, z):
        """A first step on the climb's scale (scipy's guess, from |f|, is set by the grown
        features' stiff velocities and starts ~100 decades too small): 1e-3 of the time to
        the first blow-up."""
        score = self.clock.climber(z[:-1])[2]
        top = float(np.max(score))
        return FIRST * (1.0 / top if np.isfinite(top) and top > 0 else 1.0)

    def speed(self, z):
        """d sigma/d clock = gᵀ (v dpsi/dclock) / gamma~  (d gamma~/dw = g)."""
        c = self.clock
        _, _, v, p, f, gam = KC.time_jac_factors(z[:-1], c.Xt, c.D, c.A)
        return float(np.dot(c.Xt.T @ p, v * f)) / (gam * self._per_tau(f))

    def _per_tau(self, f):
        return 1.0


class _Climb(_Time):
    """One stretch in rho = s (psi_j - psi_j at its start): z = (psi, tau),
    dz/drho = (f, 1) / (s f_j)."""

    def __init__(self, clock, j, s):
        self.clock, self.j, self.s = clock, j, s

    def _per_tau(self, f):
        return self.s * f[self.j]

    def first_step(self, z):
        return FIRST  # rho moves by ~1/(D-2) per e-fold of the climb

    def fun(self, rho, z):
        f = self.clock.time_rhs(z[:-1])
        fj = self.s * f[self.j]
        if not fj > 0:  # a trial state where j no longer climbs: rejected by the solver
            return np.full(z.shape, np.inf)
        return np.append(f, 1.0) / fj

    def jac(self, rho, z):
        c = self.clock
        psi = z[:-1]
        delta, b, v, p, f, _ = KC.time_jac_factors(psi, c.Xt, c.D, c.A)
        j, s = self.j, self.s
        inv = 1.0 / (s * f[j])
        # row j of d f/d psi = diag(delta) - diag(b) Xtᵀ diag(p) Xt diag(v)
        rj = -b[j] * ((c.Xt[:, j] * p) @ c.Xt) * v
        rj[j] += delta[j]
        # d/dpsi [f/(s f_j)] = J_f/(s f_j) - f (row j)ᵀ/(s f_j²): Jacobian0's rank-one slot;
        # the tau row is left out (tau never feeds back, as omega in flow.py)
        jac = Jacobian0(c.Xt, inv * delta, inv * b, v, p, -s * inv * inv * f, rj, 0.0, z.shape[0])
        return jac if c.structured else jac.dense()


class PlateauClock:
    """Integrates the flow through a loss plateau (module docstring)."""

    def __init__(self, problem, rtol, structured):
        self.Xt, self.D, self.A = problem.Xt, float(problem.depth), problem.log_alpha_D
        self.rtol = rtol
        self.structured = structured
        # tau = D alpha^{D-2} t
        self.log_scale = math.log(self.D) + (self.D - 2.0) / self.D * self.A

    def time_rhs(self, psi):
        return KC.time_rhs(psi, self.Xt, self.D, self.A)

    def gamma(self, psi):
        return KC.time_gamma(psi, self.Xt, self.D, self.A)

    def rate(self, psi):
        """``sigma_rate`` of the sigma clock at psi."""
        sigma = math.log(self.gamma(psi))
        y = psi / self._phi(sigma)
        return sigma_rate(y, K.rhs(sigma, y, self.Xt, self.D, self.A))

    def _phi(self, sigma):
        return math.exp(K._scales(sigma, self.A)[0])

    def climber(self, psi):
        """(j, sign g_j, scores 1/T): the feature whose climb ends first (module docstring)."""
        score, sign = KC.climb_scores(psi, self.Xt, self.D, self.A, G_FLOOR)
        j = int(np.argmax(score))
        return j, sign[j], score

    # -- a plateau -------------------------------------------------------------------------
    def run(self, sigma, y, omega, sigma_target, stats, max_steps):
        """From (sigma, y, omega) in flow.py's mode-0 state to the first of: the sigma clock
        regular again, or gamma~ = e^sigma_target.  Returns (sigma, y, omega, landed)."""
        Xt, D, A = self.Xt, self.D, self.A
        psi = y * self._phi(sigma)
        log_t = omega + math.exp(sigma) - K.log_kappa(sigma, y, Xt, D, A)
        anchor = math.exp(log_t + self.log_scale)  # tau since t = 0
        atol = np.full(psi.shape[0] + 1, 1e-2 * self.rtol * max(1.0, float(np.max(np.abs(psi)))))
        atol[-1] = 1e-2 * self.rtol
        stats["clock_switches"] = stats.get("clock_switches", 0) + 1
        z, system = np.append(psi, 0.0), _Time(self)
        stuck = 0  # stretches in a row that failed without an accepted step
        while True:  # stretches: each starts its clock at 0, from the state where the last ended
            solver = self._solver(system, 0.0, z, atol, first=system.first_step(z))
            own, peak = 0, 0.0
            while True:
                message = solver.step()
                own += 1
                stats["steps"] += 1
                stats["plateau_steps"] = stats.get("plateau_steps", 0) + 1
                if solver.status == "failed" and stats["steps"] <= max_steps and stuck < 2:
                    # the stretch's clock went singular (a climb that ends inside one step,
                    # where f_j -> 0): go on from its last accepted state on the other clock
                    stuck = stuck + 1 if own == 1 else 1
                    k, sk, score = self.climber(solver.y[:-1])
                    nxt = _Time(self) if isinstance(system, _Climb) or not np.isfinite(score[k]) \
                        else _Climb(self, k, sk)
                    break
                if solver.status == "failed" or stats["steps"] > max_steps:
                    self._count(solver, stats)
                    raise IntegrationError(
                        f"Radau (plateau clock) failed at gamma~ = {self.gamma(solver.y[:-1]):.6g} "
                        f"(target {math.exp(sigma_target):.6g}): "
                        f"{message or f'more than {max_steps} steps'}")
                stuck = 0
                psi = solver.y[:-1]
                gam = self.gamma(psi)
                if gam >= math.exp(sigma_target):
                    z = self._land(system, solver, sigma_target, atol, stats)
                    self._count(solver, stats)
                    return sigma_target, *self._export(sigma_target, z, anchor), True
                if own >= 2 and self.rate(psi) < RATE_EXIT:
                    self._count(solver, stats)
                    sig = math.log(gam)
                    return sig, *self._export(sig, solver.y, anchor), False
                k, sk, score = self.climber(psi)
                if isinstance(system, _Climb):
                    sj = score[system.j]
                    peak = max(peak, sj)
                    if k != system.j and score[k] > RESELECT * sj:
                        nxt = _Climb(self, k, sk)  # another feature's climb ends first
                        break
                    if not sj > peak / RESELECT:
                        nxt = _Time(self)          # j has arrived: relax in time
                        break
                elif own >= 3 and solver.h_abs < BLOWUP * solver.t and np.isfinite(score[k]):
                    nxt = _Climb(self, k, sk)      # steps shrink towards a blow-up
                    break
            self._count(solver, stats)
            anchor += solver.y[-1]
            z, system = np.append(solver.y[:-1], 0.0), nxt

    def _solver(self, stretch, rho, z, atol, bound=math.inf, first=None, max_step=math.inf):
        ops = {"linalg": StructuredLU(), "jac_theta": JAC_THETA} if self.structured else {}
        return ThetaRadau(stretch.fun, rho, z, bound, rtol=self.rtol, atol=atol, jac=stretch.jac,
                          first_step=first, max_step=max_step, **ops)

    @staticmethod
    def _count(solver, stats):
        for key in ("nfev", "njev", "nlu"):
            stats[key] += getattr(solver, key, 0)

    def _export(self, sigma, z, anchor):
        """(y, omega) of flow.py's mode 0 at sigma from z = (psi, tau since anchor)."""
        y = z[:-1] / self._phi(sigma)
        log_t = math.log(anchor + z[-1]) - self.log_scale
        omega = log_t + K.log_kappa(sigma, y, self.Xt, self.D, self.A) - math.exp(sigma)
        return y, omega

    def _land(self, stretch, solver, sigma_target, atol, stats):
        """The state (psi, tau) where gamma~ = e^sigma_target inside the solver's last step."""
        r0, z0 = solver.t_old, solver.y_old
        dense = solver.dense_output()
        hit = brentq(lambda r: math.log(self.gamma(dense(r)[:-1])) - sigma_target, r0, solver.t,
                     xtol=1e-15 * max(abs(solver.t), 1e-300), rtol=1e-15)
        z = z0
        if hit > r0:
            # the solver's own first-step guess can probe past the climb's end (fun = inf
            # there) and come out below float64's spacing; the step r0 -> t was accepted,
            # so its shorter part r0 -> hit is the natural first step
            # ... and it is re-integrated in LAND_SPLIT steps at least: taken as one step by a
            # fresh solver (no history, Newton from zero) it was accepted 2e-6 off in w (planted
            # seed 0, D = 10, alpha = 1e-3, a climb stretch's step of 1.5 in psi_j landing on
            # gamma~ = 0.557457: w 3e-7 from the physical-time reference; in 4 steps, 1.3e-13)
            part = (hit - r0) / LAND_SPLIT
            again = self._solver(stretch, r0, z0, atol, bound=hit, first=part, max_step=part)
            while again.status == "running":
                again.step()
                stats["steps"] += 1
                if again.status == "failed":
                    raise IntegrationError("Radau (plateau clock) failed landing on a save point")
            self._count(again, stats)
            z = again.y
        # Newton in rho, by Euler steps of the size of the miss
        for _ in range(4):
            miss = sigma_target - math.log(self.gamma(z[:-1]))
            if abs(miss) <= 4e-16 * max(1.0, abs(sigma_target)):
                break
            speed = stretch.speed(z)
            if not speed > 0:
                break
            z = z + stretch.fun(0.0, z) * (miss / speed)
        return z
