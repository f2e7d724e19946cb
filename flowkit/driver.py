"""The driver: steps a system's equations with a ``scipy.integrate`` solver from one
state to a list of save points, switching state variables and clocks on the way.

A system (flow.Flow, dual.DualFlow, linearized.LinearizedFlow) says what is integrated:
right-hand sides and Jacobians per mode (``_solver``), the modes themselves (``_mode``,
``switches``), the map between its state and the saved layout (y, omega, xi)
(``_import``, ``_export``, ``_offsets``, ``_omega_asymptotic``, ``_log_kappa``), its
tolerances and the plateau clock.  The driver says how: the step loop, the save points
(each one a step end), the state-variable switches at XI_SWITCH and TIME_SWITCH, the
plateau clock's hand-over (clock.py), continuation of the live solver past a save point
(radau.resume), the time quadrature below XI_SWITCH, and past it the anchored clock and
Radau's error weights.  One Driver serves one ``advance``: its solver state lives and
dies with it, none of it on the system.
"""
from __future__ import annotations

import math
import time
from functools import partial

import numpy as np
from scipy.integrate._ivp.radau import MU_REAL

from ._kernels import radau as KR
from .clock import RATE_ENTER, sigma_rate
from .compiled import CompiledRadau
from .exceptions import IntegrationError
from .radau import ThetaRadau, resume

__all__ = ["Driver", "IMPLICIT"]

# methods that take a Jacobian
IMPLICIT = {"Radau", "BDF", "LSODA"}

# Past XI_SWITCH a solver run starts again from a new anchor (Driver._run) when its step falls
# below REANCHOR times its s = sigma - anchor: s keeps ~1e7 of its float spacing below h.
REANCHOR = 1e-9

# Radau's error weights past XI_SWITCH (Driver._floored): how far they stay above the rounding
# floor of Newton's iterates (Newton's tolerance on them is ~2e-5 at rtol 1e-10: the floor
# sits 1e-6 below the weights, where it cannot stall the iteration); and when an offset
# counts as landing on the support: its gap closing within LANDING units of sigma, at a rate
# above LANDING_NOISE gamma~ (the rates' own noise is ~eps gamma~ |x| |y| ~ 1e-14 gamma~).
NOISE_MARGIN = 1e6
# ... where an off-support offset's weight starts to carry its softmax weight (Driver._floored)
GAP_WEIGHT_FROM = 1e10
# ... and a step is rejected where an offset that is not landing plunges by more than
# GAP_DROP into the band GAP_ACTIVE above the support, where its softmax weight e^{-gap}
# is above rounding (Driver._floored)
GAP_ACTIVE = 40.0
GAP_DROP = 3.0
LANDING = 1.0
LANDING_NOISE = 1e-9
_EPS = np.finfo(float).eps


# gradient-flow time below XI_SWITCH (Driver._clock_time): 3-point Gauss-Legendre nodes and
# weights on [-1, 1], and the largest gamma~ span of one quadrature piece
_GAUSS3 = ((-math.sqrt(0.6), 5.0 / 9.0), (0.0, 8.0 / 9.0), (math.sqrt(0.6), 5.0 / 9.0))
_TIME_PIECE = 0.1

# the solver counters that Driver.advance reports
_COUNTS = ("nfev", "njev", "nlu")


def _two_sum(a, b):
    """(s, e) with s = fl(a + b) and s + e = a + b exactly (Knuth)."""
    s = a + b
    v = s - a
    return s, (a - (s - v)) + (b - v)


def _anchored(f, hi, lo):
    """f(sigma, ...) as a function of s = sigma - (hi + lo) (Driver._run)."""
    return lambda s, *args: f(hi + (lo + s), *args)


def _is_compiled(cls):
    cls = cls.func if isinstance(cls, partial) else cls
    return isinstance(cls, type) and issubclass(cls, CompiledRadau)


def _is_radau(cls):
    cls = cls.func if isinstance(cls, partial) else cls
    return isinstance(cls, type) and issubclass(cls, ThetaRadau)


class Driver:
    """Advances one system (module docstring)."""

    def __init__(self, system):
        self.system = system
        self._h = self._live = self._live_end = self._exact = None
        self._anchor = (0.0, 0.0)
        self._stalled = False
        self._anchored = False
        self._log_t = None

    def advance(self, sigma_from, z_from, sigma_to):
        """States at the increasing log-accuracies ``sigma_to`` starting from (sigma_from, z_from).

        Each save point ends a solver step exactly, so saved states carry the solver's full
        step accuracy (no interpolation); the solver then continues from it (``_run``).
        ``z_from`` is (y, omega) or a saved state (y, omega, xi).  Returns (states,
        stats dict); states are (y, omega, xi) (flow.py's module docstring).
        """
        d, N = self.system.problem.n_features, self.system.problem.n_samples
        sigma, z_in = float(sigma_from), np.array(z_from, dtype=float)
        mode = self.system._mode(sigma)
        xi = z_in[d + 1:] if z_in.size == d + 1 + N else None
        z = self._layout(sigma, self.system._import(sigma, z_in[:d]), z_in[d], xi, mode)
        states = np.empty((len(sigma_to), d + 1 + N))
        stats = {"nfev": 0, "njev": 0, "nlu": 0, "steps": 0}
        t0 = time.perf_counter()
        bounds = tuple(math.log(b) for b in self.system.switches)
        try:
            self._advance(sigma, z, mode, sigma_to, states, stats, bounds)
        finally:
            self._live = None  # the solver holds closures over the system: let it go
        stats["seconds"] = time.perf_counter() - t0
        return states, stats

    def _advance(self, sigma, z, mode, sigma_to, states, stats, bounds):
        """The loop of ``advance``: fills ``states``."""
        k = 0
        while k < len(sigma_to):
            target = sigma_to[k]
            self._batch = []
            while True:
                need = self.system._mode(sigma)
                if need != mode:  # crossed a switch: change the state variables
                    y, omega, xi = self._unpack(sigma, z, mode)
                    z = self._layout(sigma, y, omega, xi, need)
                    mode = need
                    self._h = self._live = None  # new state variables: a new solver picks its first step
                if sigma >= target:
                    break
                if self._stalled:  # a loss plateau: cross it on clock.py's clock
                    y, omega, _ = self._unpack(sigma, z, mode)
                    sigma, y, omega, _ = self.system.clock.run(sigma, y, omega, target, stats, self.system.max_steps)
                    z = self._layout(sigma, y, omega, None, mode)
                    self._h = self._live = None
                    self._stalled = False
                    continue
                bound = min([b for b in bounds if b > sigma], default=math.inf)
                end = min(target, bound)
                # the save points after this one up to the next switch, for a solver that
                # passes through several in one call (compiled.CompiledRadau)
                more = [t for t in sigma_to[k + 1:] if t < bound] if end == target else []
                sigma, z = self._run(sigma, z, end, target, stats, mode, more)
            if not self._batch:
                self._save(states, k, sigma, z, mode)
                k += 1
                continue
            # the save points a compiled solver passed through (``_steps_compiled``): their
            # own states, then on from where the solver is, which may lie past the last one
            live_log_t = self._log_t
            batch = self._batch
            # where the solver stands: saved from its state now, in the state variables of
            # a switch there if one followed, as without a batch
            here = batch[-1][0] == sigma
            self._save_rows(states, k, batch[:-1] if here else batch)
            k += len(batch) - here
            if here:
                self._log_t = live_log_t
                self._save(states, k, sigma, z, mode)
                k += 1
            self._log_t = live_log_t

    def _save_rows(self, states, k, batch):
        """``_save`` of a batch's (sigma, state, log t, mode) entries, all of one mode, as
        states[k:]: in one call where the system has one (``System._saved_rows``)."""
        if not batch:
            return
        sig = np.array([b[0] for b in batch])
        Z = np.array([b[1] for b in batch])
        log_t = np.array([b[2] for b in batch])
        rows = self.system._saved_rows(batch[0][3], sig, Z, log_t)
        if rows is not None:
            states[k:k + len(batch)] = rows
            return
        for j, (s, zz, lt, m) in enumerate(batch):
            self._log_t = lt
            self._save(states, k + j, s, zz, m)

    def _save(self, states, k, sigma, z, mode):
        """The saved layout (y, omega, xi) of the solver's state z at sigma, as states[k]."""
        d = self.system.problem.n_features
        y, omega, xi = self._unpack(sigma, z, mode)
        states[k, :d], states[k, d], states[k, d + 1:] = self.system._export(sigma, y), omega, xi

    def _layout(self, sigma, y, omega, xi, mode):
        """The solver's state for ``mode`` from y, omega and xi (None: from y)."""
        if mode == 0:  # the time rides outside the state (``_clock_time``)
            self._log_t = omega + math.exp(sigma) - self.system._log_kappa(sigma, y)
            return np.array(y, dtype=float)
        if xi is None:
            xi = self.system._offsets(sigma, y)
        xi = self.system._reduce(mode, xi)
        return np.concatenate([y, xi, [omega]]) if mode == 1 else np.concatenate([y, xi])

    def _unpack(self, sigma, z, mode):
        """(y, omega, xi) from the solver's state in ``mode``."""
        d, N = self.system._ny, self.system._xi_count(mode)
        y = z[:d]
        if mode == 0:
            return y, self._log_t + self.system._log_kappa(sigma, y) - math.exp(sigma), self.system._offsets(sigma, y)
        xi = self.system._expand(mode, z[d:d + N])
        return y, (z[d + N] if mode == 1 else self.system._omega_asymptotic(sigma, y, xi)), xi

    def _clock_time(self, solver):
        """Add the time of the solver's last step to ``_log_t``: t = ∫ gamma~ e^{gamma~}/kappa
        dsigma over it, by 3-point Gauss-Legendre on the step's dense output, in pieces of at
        most ``_TIME_PIECE`` in sigma + gamma~ (the log of the integrand moves at rate
        1 + gamma~: relative error ~5e-7 piece^7, 4e-14 at 0.1).  Below XI_SWITCH
        omega = log(t kappa) - gamma~ used to be a
        state; its right-hand side d log kappa/dsigma cancels to rounding where kappa is
        steep in y (D = 10, alpha = 0.01: 1-ulp spread 8e-11 against its atol 1e-10), and
        Newton stalled on it: 50,000 steps short of gamma~ = 5.3 (robustness battery)."""
        a, b = solver.t_old, solver.t
        dense = solver.dense_output()
        # log of the integrand moves at rate ~1 + gamma~ in sigma: pieces short in both
        pieces = max(1, int(math.ceil((b - a + math.exp(b) - math.exp(a)) / _TIME_PIECE)))
        edges = np.linspace(a, b, pieces + 1)
        logs = []
        for lo, hi in zip(edges[:-1], edges[1:]):
            mid, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
            for x, wt in _GAUSS3:
                sig = mid + half * x
                y = dense(sig)[:self.system._ny]
                logs.append(math.log(wt * half) + math.exp(sig) + sig - self.system._log_kappa(sig, y))
        logs.append(self._log_t)
        top = max(logs)
        self._log_t = top + math.log(sum(math.exp(v - top) for v in logs))

    def _run(self, sigma, z, target, final, stats, mode, more=()):
        """One solver run from sigma to target (final: the overall target, for messages),
        with the state variables of ``mode`` (see ``_mode``).

        Past XI_SWITCH the solver's independent variable is s = sigma - anchor, the anchor a
        double-double (hi, lo) at the run's start: when a sample joins the support at large
        gamma~ its offset falls at rate ~gamma~ in sigma and lands on an O(1) scale of
        gamma~, i.e. within ~1/gamma~ of sigma, below sigma's own float spacing past
        gamma~ ~ 1e13 (fig4a, D = 3, alpha = 1e4 failed at gamma~ = 7.4e13, "step size less
        than spacing").  s resolves it, and the run is re-anchored (``REANCHOR``) when the
        steps become small against s; the right-hand sides see sigma = hi + (lo + s)
        rounded, a relative error ~eps in gamma~ that is smooth enough for Newton."""
        exact = self._exact
        hi, lo = exact if (exact is not None and exact[0] + exact[1] == sigma) else (sigma, 0.0)
        live = self._live
        if live is not None and self.system.method != "LSODA" and self._live_end == sigma:
            # the previous run's solver goes on past its end (same state variables, same
            # point) instead of a fresh one at every save point (radau.resume)
            counts = [getattr(live, k, 0) for k in _COUNTS]
            resume(live, self._clock_span(target, mode))
            return self._steps(live, target, final, stats, counts, mode, more)
        cls, fun, jac, linalg = self.system._solver(mode)
        compiled = _is_compiled(cls)
        # LSODA keeps sigma as its clock: its own first step depends on |t|, and from t = 0 it
        # could stay in Adams order 1 at its stability limit (planted_sparse(3, 120), D = 2,
        # gamma~ = 1e8: 8,548 steps unanchored, more than 50,000 anchored)
        self._anchored = mode >= 1 and self.system.method != "LSODA"
        self._anchor = (hi, lo) if self._anchored else (0.0, 0.0)
        options = {}
        if self._anchored and compiled:
            options["anchor"] = (hi, lo)
        elif self._anchored:
            fun, jac = _anchored(fun, hi, lo), _anchored(jac, hi, lo)
            if isinstance(cls, partial) and "fun_stages" in cls.keywords:
                cls = partial(cls, fun_stages=_anchored(cls.keywords["fun_stages"], hi, lo))
        atol = self.system._atol(mode)
        options.update(rtol=self.system.rtol, atol=atol)
        if self.system.method in IMPLICIT:
            options["jac"] = jac
        if linalg is not None:
            options["linalg"] = linalg
        if mode >= 1 and compiled:
            options["floored"] = self._floor_options(mode)
        elif _is_radau(cls) and mode >= 1 and self.system.method in IMPLICIT:
            options["jac"], options["scale"] = self._floored(options["jac"], atol, mode)
        t0, t1 = (0.0, self._clock_span(target, mode)) if self._anchored else (sigma, target)
        first = None if (self._h is None or self.system.method == "LSODA") else min(self._h, t1 - t0)
        solver = cls(fun, t0, z, t1, first_step=first, **options)
        return self._steps(solver, target, final, stats, [0, 0, 0], mode, more)  # its set-up's evaluations count

    def _clock_span(self, target, mode):
        """The solver's end for ``target``: target itself on an unanchored clock, else
        target - anchor."""
        if not self._anchored:
            return target
        hi, lo = self._anchor
        return (target - hi) - lo

    def _steps(self, solver, target, final, stats, counts, mode, more=()):
        """Step ``solver`` to its end, or in mode 0 to the first step end where the sigma
        clock stalls (``clock.RATE_ENTER``; sets ``_stalled``), or past XI_SWITCH to a step
        end where the clock needs a new anchor (``REANCHOR``); add its counts beyond
        ``counts`` to ``stats``.  Returns (sigma reached, state)."""
        if isinstance(solver, CompiledRadau):
            return self._steps_compiled(solver, target, final, stats, counts, mode, more)
        d = self.system.problem.n_features
        watch = self.system.clock is not None and mode == 0
        hi, lo = self._anchor
        reanchor = False
        while solver.status == "running":
            message = solver.step()
            stats["steps"] += 1
            if solver.status == "failed" and self._unresolved(solver, message):
                reanchor = True
                break
            if solver.status == "failed" or stats["steps"] > self.system.max_steps:
                reason = message or f"more than {self.system.max_steps} steps"
                raise IntegrationError(
                    f"{self.system.method} failed at gamma~ = {math.exp(hi + (lo + solver.t)):.6g} "
                    f"(target {math.exp(final):.6g}): {reason}")
            if mode == 0:
                self._clock_time(solver)
            elif self._anchored and solver.status == "running" and solver.step_size < REANCHOR * abs(solver.t):
                reanchor = True
                break
            if watch and solver.status == "running":
                f = getattr(solver, "f", None)  # Radau and the RK methods keep it; BDF, LSODA not
                if f is None:
                    f = self.system.fun(solver.t, solver.y)
                    stats["nfev"] += 1
                if sigma_rate(solver.y[:d], f[:d]) > RATE_ENTER:
                    self._stalled = True
                    break
        return self._ended(solver, target, stats, counts, reanchor)

    def _steps_compiled(self, solver, target, final, stats, counts, mode, more=()):
        """``_steps`` for compiled.CompiledRadau: the same loop, run inside the kernel in one
        call (its quadrature, plateau watch, re-anchoring test and step budget are this
        driver's: _kernels/radau.py, ``_machine``), through the save points ``more`` after
        ``target`` as well, each one reached as ``_run`` would resume from it (the ~30 us of
        this driver's Python per save point stay out of the loop); ``_batch`` gets
        (sigma, state, log t, mode) of each save point reached, ``target`` first."""
        watch = self.system.problem.n_features if (self.system.clock is not None and mode == 0) else 0
        if mode == 0:
            solver.log_t = self._log_t
        before = solver.steps
        goals = [target, *more]
        status = solver.advance(self.system.max_steps - stats["steps"] + before,
                                quadrature=self.system._ny if mode == 0 else 0, watch=watch,
                                rate=RATE_ENTER, reanchor=REANCHOR if self._anchored else 0.0,
                                targets=[self._clock_span(g, mode) for g in goals])
        stats["steps"] += solver.steps - before
        if status == KR.TOO_SMALL and self._unresolved(solver, solver.TOO_SMALL_STEP):
            status = KR.REANCHOR
        reached = solver.reached
        self._batch = [(goals[j], solver.saved[j].copy(), float(solver.saved_log_t[j]), mode)
                       for j in range(reached)]
        if reached:
            target = goals[reached - 1]
        if mode == 0:
            self._log_t = solver.log_t
        if status in (KR.TOO_SMALL, KR.BUDGET):
            hi, lo = self._anchor
            reason = (solver.TOO_SMALL_STEP if status == KR.TOO_SMALL
                      else f"more than {self.system.max_steps} steps")
            raise IntegrationError(
                f"{self.system.method} failed at gamma~ = {math.exp(hi + (lo + solver.t)):.6g} "
                f"(target {math.exp(final):.6g}): {reason}")
        self._stalled = status == KR.STALLED
        return self._ended(solver, target, stats, counts, status == KR.REANCHOR)

    def _unresolved(self, solver, message):
        """Whether a failed step is the anchored clock's resolution, not the flow's: steps
        shrunk below s's float spacing by rejections alone, with no accepted step between
        for the REANCHOR test to see (a sample landing on the support; ``duplicated`` 106,
        D = 3, alpha = 1e6 at gamma~ = 5.5e27: from h = 0.01 at s = 0.008).  A new anchor at
        the last accepted point gives them the spacing of s = 0; a run that fails at its
        own anchor still fails."""
        return self._anchored and message == solver.TOO_SMALL_STEP and solver.t != 0.0

    def _ended(self, solver, target, stats, counts, reanchor):
        """The end of a run of steps: counts to ``stats``, the step size and the point
        reached for the next run.  Returns (sigma reached, state)."""
        hi, lo = self._anchor
        for key, before in zip(_COUNTS, counts):
            stats[key] += getattr(solver, key, 0) - before
        self._h = getattr(solver, "h_abs", None)
        if solver.status == "finished":
            sigma = target  # the end, to within an ulp of s (not of sigma)
            self._exact = None
        elif not self._anchored:
            sigma = solver.t
            self._exact = None
        else:  # a new anchor: the exact point reached, as a double-double
            h2, l2 = _two_sum(hi, solver.t)
            self._exact = _two_sum(h2, l2 + lo)
            sigma = self._exact[0] + self._exact[1]
        self._live, self._live_end = (None, None) if reanchor else (solver, sigma)
        return sigma, solver.y

    def _floor_options(self, mode):
        """``_floored``'s constants and the state's layout, for the compiled step (which
        computes the same weights in its loop: _kernels/radau.py, ``_weights``)."""
        return {"ny": self.system._ny, "nx": self.system._xi_count(mode), "noise_margin": NOISE_MARGIN,
                "gap_from": GAP_WEIGHT_FROM, "gap_active": GAP_ACTIVE, "gap_drop": GAP_DROP,
                "landing": LANDING, "landing_noise": LANDING_NOISE}

    def _floored(self, jac, atol, mode):
        """(jac, scale) for Radau past XI_SWITCH: the Jacobian callable, which also records
        the rounding floor of Newton's iterates at it, and the error weights that go with it.

        The weights are scipy's, atol + rtol |z|, with three changes, the first and last on
        the offsets xi, the second on every component:

        * past gamma~ = ``GAP_WEIGHT_FROM``, an offset xi_n above the support (gap G_n =
          xi_n - min xi), which reaches y only through its softmax weight, relative
          e^{-G_n}, has its weight multiplied by e^{G_n} (at most e^300), except while it is
          landing (its gap closing faster than G_n / ``LANDING`` per unit of sigma, and
          faster than ``LANDING_NOISE`` gamma~, above the noise below).  A trade of digits
          for steps: the far offsets grow like e^sigma and, held to rtol, cost ~200 steps
          per decade of gamma~ against ~20 (the save grid), and an offset ~30 above the
          support on kink moves by rounding noise that plain weights resolve only with
          ~40,000 steps in the decade 1e20 (kink, D = 2, alpha = 1e3 to 1e30: 48,817 steps,
          w_hat 2.8e-17 from the Q_mu point; with the multiplier, 2,867 steps and 2.2e-13).
          The cost in digits is an offset that leaves and comes back: fig4a, D = 2,
          alpha = 10 (a sample 1,100 above the support at gamma~ = 5e4 joins it at 2.3e5)
          had w_hat 7.7e-13 from the reference with the multiplier at every gamma~,
          1.9e-15 without; hence the threshold;
        * no weight falls below ``NOISE_MARGIN`` times the floor nu_n = eps (|J| |z|)_n /
          (|J_nn| + mu/h) (mu = Radau's real eigenvalue, h the step).  The offsets' rates
          gamma~ (a - pᵀa + Lambda) depend on y with slopes ~gamma~ |x|, so y's own rounding
          moves them by ~eps gamma~ |x| |y|, a noise in the state that no evaluation in any
          precision removes; a stiff component settles only to nu_n;
        * in a step's error test, an offset that is not landing and falls by more than
          ``GAP_DROP`` to a gap below ``GAP_ACTIVE`` keeps scipy's weight, so the step is
          rejected.  Such an offset moves by noise alone (its weight above lets it), and
          once it plunged from 35 to 6 in one step (kink, D = 2, alpha = 1e4, gamma~ =
          1e24), into a state where its pull back is ~1e21 per unit of sigma and e^{-gap}
          too curved for Newton's four iterations: the run died there.

        Measured on benchmarks/join_probe.py (42 runs to gamma~ = 1e30): all complete, in
        144,068 steps; the session-7 weights completed 26."""
        ny, N = self.system._ny, self.system._xi_count(mode)
        hi, lo = self._anchor
        floor = [None]

        def jac_floor(t, z, *args):
            J = jac(t, z, *args)
            if isinstance(J, np.ndarray):
                floor[0] = (_EPS * (np.abs(J) @ np.abs(z)), np.abs(np.diag(J)))
            return J

        def scale(solver, z, z_new, h_abs):
            # the solver's rtol: scipy raises one below 100 eps to that (the compiled step's too)
            s = atol + np.maximum(np.abs(z), np.abs(z_new)) * solver.rtol
            xi, rate = z[ny:ny + N], solver.f[ny:ny + N]
            k = int(np.argmin(xi))
            rel = rate - rate[k]
            gap = xi - xi[k]
            gam = math.exp(hi + lo + solver.t)
            landing = rel < -np.maximum(gap / LANDING, LANDING_NOISE * gam)
            plain = s[ny:ny + N].copy()
            if gam > GAP_WEIGHT_FROM:
                s[ny:ny + N] *= np.exp(np.minimum(np.where(landing, 0.0, gap), 300.0))
            if floor[0] is not None:
                noise, diag = floor[0]
                np.maximum(s, NOISE_MARGIN * noise / (diag + MU_REAL / h_abs), out=s)
            if z_new is not z:  # the error test of a step: no plunge into the active band
                xn = z_new[ny:ny + N]
                gap_new = xn - np.min(xn)
                plunge = ~landing & (gap_new < GAP_ACTIVE) & (gap - gap_new > GAP_DROP)
                s[ny:ny + N][plunge] = plain[plunge]
            return s
        return jac_floor, scale
