"""The flow: gradient flow in log-loss time and log-parameter coordinates, and the
driver that advances it with a ``scipy.integrate`` solver.

Derivation (math.md, "Gradient flow" and "Log-loss time").  With theta± = log u±,
p = softmax(-m), g = Xtᵀ p and

    kappa = D² Σ_i (e^{(2D-2) theta+_i} + e^{(2D-2) theta-_i}) g_i²,

gradient flow is  d theta±/d gamma~ = ± D e^{(D-2) theta±} g / kappa.  Write
theta± = log alpha + delta±; the conservation law leaves one scalar per feature,
psi = delta+ - delta- (``_kernels.offsets`` recovers delta±), with

    d psi/d gamma~ = (e^{a delta+} + e^{a delta-}) g / (D alpha^D S),   a = D - 2,
    S = Σ_i (e^{(2D-2) delta+_i} + e^{(2D-2) delta-_i}) g_i².

The state is y = psi/phi, phi = R/(1+R), R = gamma~/alpha^D, against sigma = log gamma~:

    dy/dsigma = (1 + R)/D (e^{a delta+} + e^{a delta-}) g / S - y/(1 + R),

O(1) in both regimes: y -> g/(D|g|²) for gamma~ << alpha^D (kernel), y ~ psi ~ log R
for gamma~ >> alpha^D (rich).  Gradient-flow time rides along as omega = log(t kappa) - gamma~: since
dt/dgamma~ = e^{gamma~}/kappa, d omega/dsigma = gamma~ (e^{-omega} - 1) + d log kappa/dsigma.
Below XI_SWITCH t is not a state but a quadrature of dt/dsigma = gamma~ e^{gamma~}/kappa along
each accepted step (``Flow._clock_time``): d log kappa/dsigma cancels to rounding where kappa
is steep in y, and as a state it throttled the steps (D = 10, alpha = 0.01).

The support-vector margins equilibrate on an O(1) scale of gamma~, i.e. with rate
~gamma~ in sigma: the system is stiff with ratio ~gamma~, hence an implicit method
with the analytic Jacobian (``_kernels.jac_factors``, ``xi_jac_factors``) by default.

Linear algebra (``linalg``): the Jacobian is diagonal plus low rank in the features --
every coupling between features runs through the N samples (math.md: the flow is a mirror
flow of s = Xtᵀ nu) -- and ``structured.py`` factorises the implicit solvers' matrices
mu I - J by Woodbury / a Schur complement of size N in O(N² d) time and O(N d) memory.
``select.select`` uses that for Radau and BDF when d >> N (``structured_pays``), and dense LAPACK
LU of the (d + 1 + N)-sized matrix, assembled from the same factors, otherwise.
``flowkit.integrate`` goes further when d >> N: it integrates the same flow in N unknowns
(flowkit.dual.DualFlow, a subclass that reuses this driver through ``_ny``, ``_import``,
``_export`` and ``_solver``).

Past gamma~ = XI_SWITCH the state is (y, xi, omega), past TIME_SWITCH (y, xi), with the
margin offsets xi = m - gamma~ carried as N more ODE states (``_kernels.xi_rhs``; why, in the _kernels docstring):
the O(1) gaps between support-vector margins are then exact numbers instead of
differences of O(gamma~) margins recomputed from y, which float64 resolves only to
~eps gamma~ (Radau's steps collapsed past gamma~ ~ 1e9-1e12 with two support vectors).
It also removes the y-stiffness: with y alone, Newton had to place y to ~1/(k gamma~)
(k the gap relaxation rate over gamma~), which on data with many near-degenerate
support vectors throttled Radau already at gamma~ ~ 1e4.

Past TIME_SWITCH the xi rows gamma~ (a - pᵀa + Lambda) are evaluated in double-double
(``fun_xi_dd``, ``_kernels/xi_rates.py``): pᵀa = 1 identically, and float64 left ~eps gamma~
of non-smooth error there, on which Newton stalled once a sample left the support at
gamma~ >~ 1e10.  Radau's linear systems are then row-equilibrated (``linalg.EquilibratedLU``):
the xi rows of the Jacobian are ~gamma~ times its y rows.

Past XI_SWITCH the solver's clock is sigma less a double-double anchor (``Flow._run``: a
sample joining the support needs steps ~1/gamma~, below sigma's own spacing past ~1e13),
and Radau's error weights are kept above Newton's rounding floor (``Flow._floored``).
With both, 42 of 42 probe runs (benchmarks/join_probe.py: seven data sets, D = 2, 3, 5,
alpha = 1e3, 1e4) reach gamma~ = 1e30; 26 did before.

Saved states are (y, omega, xi), d + 1 + N numbers, whatever the regime: below the
switch xi is recomputed from y, above it omega comes from its asymptotic form.
"""
from __future__ import annotations

import math
import time
from functools import partial

import numpy as np
from scipy.integrate import DOP853, LSODA, RK23, RK45
from scipy.integrate._ivp.radau import MU_REAL
from scipy.optimize import bisect

from ._kernels import flow as K
from .exceptions import IntegrationError, NumericalRangeError, ParameterError
from .clock import RATE_ENTER, PlateauClock, sigma_rate
from .bdf import OperatorBDF
from .linalg import EquilibratedLU, StructuredLU
from .radau import ThetaRadau, resume
from .structured import JAC_THETA, JacobianXi, Jacobian0, structured_pays

__all__ = ["Flow", "IntegrationError", "METHODS", "GAMMA_START", "TIME_SWITCH", "XI_SWITCH"]

METHODS = {"Radau": ThetaRadau, "BDF": OperatorBDF, "LSODA": LSODA, "RK45": RK45, "RK23": RK23, "DOP853": DOP853}
IMPLICIT = {"Radau", "BDF", "LSODA"}
# Implicit methods that can run on structured Jacobians (structured.py)
STRUCTURED = {"Radau": partial(ThetaRadau, jac_theta=JAC_THETA), "BDF": OperatorBDF}
STRUCTURED_OR_DENSE = ("dense", "structured")


# The flow starts at gamma~ = 1e-14 from the exact solution with p frozen at its
# initial value 1/N (error O(gamma~) in p, i.e. relative 1e-14 in the state).
GAMMA_START = 1e-14

# Past gamma~ = TIME_SWITCH the time variable omega = log(t kappa) - gamma~ leaves the
# ODE state and follows from t = ∫ e^x/kappa dx integrated by parts,
#   t kappa e^{-gamma~} = 1 + l' + O(l'^2, l''),  l' = d log kappa/d gamma~ = O(1/gamma~),
# i.e. omega = log1p(l') with error O(gamma~^-2) ~ 1e-10.  Kept in the state, its
# relaxation at rate gamma~ makes rounding (~eps gamma~) dominate the error estimate.
TIME_SWITCH = 1e5

# Past gamma~ = XI_SWITCH the margin offsets xi = m - gamma~ are ODE states (module
# docstring); between XI_SWITCH and TIME_SWITCH the state is (y, xi, omega).
XI_SWITCH = 10.0

# Absolute tolerance floor of xi (O(1) gaps): its evaluation noise is ~eps/k, with k the
# (data-dependent, O(1e-2) on the kink data) relaxation rate of the gaps over gamma~;
# Radau's Newton iteration must resolve xi to ~1e-5 of its tolerance.
XI_ATOL_MIN = 1e-11

# Past XI_SWITCH a solver run starts again from a new anchor (Flow._run) when its step falls
# below REANCHOR times its s = sigma - anchor: s keeps ~1e7 of its float spacing below h.
REANCHOR = 1e-9

# Radau's error weights past XI_SWITCH (Flow._floored): how far they stay above the rounding
# floor of Newton's iterates (Newton's tolerance on them is ~2e-5 at rtol 1e-10: the floor
# sits 1e-6 below the weights, where it cannot stall the iteration); and when an offset
# counts as landing on the support: its gap closing within LANDING units of sigma, at a rate
# above LANDING_NOISE gamma~ (the rates' own noise is ~eps gamma~ |x| |y| ~ 1e-14 gamma~).
NOISE_MARGIN = 1e6
# ... where an off-support offset's weight starts to carry its softmax weight (Flow._floored)
GAP_WEIGHT_FROM = 1e10
# ... and a step is rejected where an offset that is not landing plunges by more than
# GAP_DROP into the band GAP_ACTIVE above the support, where its softmax weight e^{-gap}
# is above rounding (Flow._floored)
GAP_ACTIVE = 40.0
GAP_DROP = 3.0
LANDING = 1.0
LANDING_NOISE = 1e-9
_EPS = np.finfo(float).eps


# gradient-flow time below XI_SWITCH (Flow._clock_time): 3-point Gauss-Legendre nodes and
# weights on [-1, 1], and the largest gamma~ span of one quadrature piece
_GAUSS3 = ((-math.sqrt(0.6), 5.0 / 9.0), (0.0, 8.0 / 9.0), (math.sqrt(0.6), 5.0 / 9.0))
_TIME_PIECE = 0.1

# the solver counters that Flow.advance reports
_COUNTS = ("nfev", "njev", "nlu")


def _two_sum(a, b):
    """(s, e) with s = fl(a + b) and s + e = a + b exactly (Knuth)."""
    s = a + b
    v = s - a
    return s, (a - (s - v)) + (b - v)


def _anchored(f, hi, lo):
    """f(sigma, ...) as a function of s = sigma - (hi + lo) (Flow._run)."""
    return lambda s, *args: f(hi + (lo + s), *args)


def _is_radau(cls):
    cls = cls.func if isinstance(cls, partial) else cls
    return isinstance(cls, type) and issubclass(cls, ThetaRadau)


class Flow:
    """Right-hand side, Jacobian, initial state and driver for one Problem."""

    # loss plateaus are crossed on clock.py's clock; the linearised model has none
    plateau_clock = True

    def __init__(self, problem, *, method="Radau", rtol=1e-10, atol=None, max_steps=50_000,
                 linalg="dense"):
        if method not in METHODS:
            raise ParameterError(f"unknown method {method!r}; choose one of {sorted(METHODS)}")
        if isinstance(rtol, bool) or not (isinstance(rtol, (int, float, np.floating)) and 1e-14 <= rtol < 1e-1):
            raise ParameterError(f"rtol must be a number in [1e-14, 0.1); got {rtol!r}")
        self.problem = problem
        self.method = method
        self.rtol = float(rtol)
        self.max_steps = int(max_steps)
        self._args = (problem.Xt, float(problem.depth), problem.log_alpha_D)
        # structured linear algebra (structured.py): O(N² d) per factorisation and O(N d)
        # memory instead of O((d+N)³) and O((d+N)²); "auto" is resolved by select.select
        if linalg not in STRUCTURED_OR_DENSE or (linalg == "structured" and method not in STRUCTURED):
            raise ParameterError(f"Flow runs linalg 'dense', or 'structured' with method in "
                                 f"{sorted(STRUCTURED)}; got linalg={linalg!r}, method={method!r} "
                                 f"(flowkit.select chooses for linalg='auto')")
        self.linalg = linalg
        self.structured = self.linalg == "structured"
        self.sigma0, self.z0 = self._initial_state()
        self.atol = self._resolve_atol(atol)
        # the plateau clock's own linear algebra: structured only where it pays (on small data its
        # climb clock's rank-one slot made the Woodbury solves fail: 6 x 4 planted data,
        # D = 10, alpha = 1e-3, 50,000 steps in one plateau; dense LU: 572)
        self.clock = (PlateauClock(problem, self.rtol, self.structured and structured_pays(
            problem.n_samples, problem.n_features)) if self.plateau_clock else None)

    # -- what -----------------------------------------------------------------
    def fun(self, sigma, z):
        return K.rhs(sigma, z, *self._args)

    def jac(self, sigma, z):
        """Dense Jacobian, assembled from the factors the structured path uses."""
        return Jacobian0.at(sigma, z, *self._args).dense()

    def fun_xi(self, sigma, z):
        """Right-hand side past XI_SWITCH, z = (y, xi) or (y, xi, omega)."""
        return K.xi_rhs(sigma, z, *self._args)

    def fun_xi_dd(self, sigma, z):
        """``fun_xi`` past TIME_SWITCH, z = (y, xi), with the xi rows in double-double: their
        float64 rounding (~eps gamma~) stalls Radau's Newton iteration at gamma~ >~ 1e10
        (_kernels/xi_rates.py).  Below, float64 (~2e-11 at 1e5) costs half as much on 30 x 20
        data."""
        return K.xi_rhs_dd(sigma, z, *self._args)

    def jac_xi(self, sigma, z):
        return JacobianXi.at(sigma, z, *self._args).dense()

    def jac_structured(self, sigma, z):
        """``jac`` as a structured.Jacobian0 (diagonal + low rank), never formed densely."""
        return Jacobian0.at(sigma, z, *self._args)

    def jac_xi_structured(self, sigma, z):
        """``jac_xi`` as a structured.JacobianXi."""
        return JacobianXi.at(sigma, z, *self._args)

    def _initial_state(self):
        """Exact flow for frozen p = 1/N up to gamma~ = GAMMA_START (math.md closed form).

        With g0 = Xtᵀ1/N fixed, s = g0 t, so psi_i = 4 s_i (D = 2) or
        psi_i = (2/a) artanh(c s_i), c = D(D-2) alpha^{D-2} (D > 2).  Parametrised by
        P = psi of the feature with the largest |g0_i| (ratio r_i = g0_i / g0_max):
        psi_i = r_i P (D = 2), psi_i = (2/a) artanh(r_i tanh(a P / 2)) (D > 2), and
        t = P / (4 g0_max) or tanh(a P / 2) / (c g0_max).  P solves
        gamma~(w) = GAMMA_START, found by bisection on log P.
        """
        P_ = self.problem
        D, A, Xt = float(P_.depth), P_.log_alpha_D, P_.Xt
        a = D - 2.0
        g0 = Xt.mean(axis=0)
        imax = int(np.argmax(np.abs(g0)))
        gmax = g0[imax]
        ratio = g0 / gmax

        def psi_of(lP):
            big = math.exp(lP)
            if D == 2:
                psi = big * ratio
            else:
                with np.errstate(divide="ignore"):
                    psi = (2.0 / a) * np.arctanh(ratio * math.tanh(0.5 * a * big))
            tied = np.abs(ratio) == 1.0
            psi[tied] = big * ratio[tied]  # exact, where artanh(tanh(.)) would saturate
            return psi * np.sign(gmax)

        def excess(lP):
            # > 0 past the target.  Far out the frozen-p solution's gamma~ falls again (mixed
            # labels: a large w makes some margins very negative) or w overflows; both count
            # as past it, so that the one sign change is the first crossing (a spurious root
            # where w overflows broke D = 10, alpha = 0.01: omega0 = nan)
            psi = psi_of(lP)
            with np.errstate(over="ignore", invalid="ignore"):
                w = K.psi_to_w(psi, D, A)
                if not np.all(np.isfinite(w)):
                    return 1.0
                m, _, gam = K.softmax_margins(Xt, w)
            if gam > 0:
                return math.log(gam) - math.log(GAMMA_START)
            return 1.0 if np.max(np.abs(m)) > 1e-6 else -1.0

        hi = math.log(2000.0)
        if excess(hi) <= 0.0:
            raise NumericalRangeError(
                f"no initial state reaches gamma~ = {GAMMA_START:g} (depth {P_.depth}, "
                f"log alpha^D = {A:.6g}): the data's mean row is too small")
        lP = bisect(excess, -740.0, hi, xtol=1e-15, rtol=1e-15, maxiter=300)
        y_big = math.exp(lP)
        psi = psi_of(lP)
        sigma0 = math.log(GAMMA_START)
        logphi, _, _ = K._scales(sigma0, A)
        y0 = psi / math.exp(logphi)
        if D == 2:
            log_t0 = lP - math.log(4.0 * abs(gmax))
        else:
            logc = math.log(D * a) + a / D * A
            log_t0 = math.log(math.tanh(0.5 * a * y_big)) - logc - math.log(abs(gmax))
        omega0 = log_t0 + K.log_kappa(sigma0, y0, Xt, D, A) - GAMMA_START
        return sigma0, np.concatenate([y0, [omega0]])

    def _resolve_atol(self, atol):
        d, n = self.problem.n_features, self.z0.size
        if atol is None:
            # y is O(1)-scaled (see module docstring): ~1e-2 rtol of its size;
            # omega = log(t kappa) - gamma~ is O(1) and relaxes to ~0
            scale = max(np.max(np.abs(self.z0[:d])), 1e-300)
            arr = np.concatenate([np.full(d, 1e-2 * self.rtol * scale), np.full(n - d, self.rtol)])
        else:
            arr = np.asarray(atol, dtype=float)
            if arr.ndim == 0:
                arr = np.full(n, float(arr))
            if arr.shape != (n,) or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
                raise ParameterError(f"atol must be a positive scalar or a vector of length d+1 = {n}")
        # past XI_SWITCH: (y, xi[, omega]), xi the O(1)-gap margin offsets (absolute)
        self.atol_xi = np.concatenate(
            [arr[:d], np.full(self.problem.n_samples, max(self.rtol, XI_ATOL_MIN))])
        return arr

    # -- how --------------------------------------------------------------------
    def advance(self, sigma_from, z_from, sigma_to):
        """States at the increasing log-accuracies ``sigma_to`` starting from (sigma_from, z_from).

        Each save point ends a solver step exactly, so saved states carry the solver's full
        step accuracy (no interpolation); the solver then continues from it (``_run``).
        ``z_from`` is (y, omega) or a saved state (y, omega, xi).  Returns (states,
        stats dict); states are (y, omega, xi) (module docstring).
        """
        d, N = self.problem.n_features, self.problem.n_samples
        sigma, z_in = float(sigma_from), np.array(z_from, dtype=float)
        mode = self._mode(sigma)
        xi = z_in[d + 1:] if z_in.size == d + 1 + N else None
        z = self._layout(sigma, self._import(sigma, z_in[:d]), z_in[d], xi, mode)
        states = np.empty((len(sigma_to), d + 1 + N))
        self._h = self._live = self._live_end = self._exact = None
        self._anchor = (0.0, 0.0)
        self._stalled = False
        stats = {"nfev": 0, "njev": 0, "nlu": 0, "steps": 0}
        t0 = time.perf_counter()
        bounds = (math.log(XI_SWITCH), math.log(TIME_SWITCH))
        try:
            self._advance(sigma, z, mode, sigma_to, states, stats, bounds)
        finally:
            self._live = None  # a solver holds closures: a Flow must stay picklable
        stats["seconds"] = time.perf_counter() - t0
        return states, stats

    def _advance(self, sigma, z, mode, sigma_to, states, stats, bounds):
        """The loop of ``advance``: fills ``states``."""
        d = self.problem.n_features
        for k, target in enumerate(sigma_to):
            while True:
                need = self._mode(sigma)
                if need != mode:  # crossed a switch: change the state variables
                    y, omega, xi = self._unpack(sigma, z, mode)
                    z = self._layout(sigma, y, omega, xi, need)
                    mode = need
                    self._h = self._live = None  # new state variables: a new solver picks its first step
                if sigma >= target:
                    break
                if self._stalled:  # a loss plateau: cross it on clock.py's clock
                    y, omega, _ = self._unpack(sigma, z, mode)
                    sigma, y, omega, _ = self.clock.run(sigma, y, omega, target, stats, self.max_steps)
                    z = self._layout(sigma, y, omega, None, mode)
                    self._h = self._live = None
                    self._stalled = False
                    continue
                end = min([target] + [b for b in bounds if b > sigma])
                sigma, z = self._run(sigma, z, end, target, stats, mode)
            y, omega, xi = self._unpack(sigma, z, mode)
            states[k, :d], states[k, d], states[k, d + 1:] = self._export(sigma, y), omega, xi

    @staticmethod
    def _mode(sigma):
        """0: z = y (t by quadrature); 1: z = (y, xi, omega); 2: z = (y, xi)."""
        if sigma < math.log(XI_SWITCH):
            return 0
        return 1 if sigma < math.log(TIME_SWITCH) else 2

    def _layout(self, sigma, y, omega, xi, mode):
        """The solver's state for ``mode`` from y, omega and xi (None: from y)."""
        if mode == 0:  # the time rides outside the state (``_clock_time``)
            self._log_t = omega + math.exp(sigma) - self._log_kappa(sigma, y)
            return np.array(y, dtype=float)
        if xi is None:
            xi = self._offsets(sigma, y)
        return np.concatenate([y, xi, [omega]]) if mode == 1 else np.concatenate([y, xi])

    # The solver's first block is y itself here; flowkit.dual.DualFlow integrates an
    # N-vector instead and maps it to and from y at the ends of ``advance``.
    @property
    def _ny(self):
        return self.problem.n_features

    def _import(self, sigma, y):
        return y

    def _export(self, sigma, y):
        return y

    def _unpack(self, sigma, z, mode):
        """(y, omega, xi) from the solver's state in ``mode``."""
        d, N = self._ny, self.problem.n_samples
        y = z[:d]
        if mode == 0:
            return y, self._log_t + self._log_kappa(sigma, y) - math.exp(sigma), self._offsets(sigma, y)
        xi = z[d:d + N]
        return y, (z[d + N] if mode == 1 else self._omega_asymptotic(sigma, y, xi)), xi

    def _log_kappa(self, sigma, y):
        """log kappa at the mode-0 state y (math.md, "Log-loss time")."""
        return K.log_kappa(sigma, y, *self._args)

    def _clock_time(self, solver):
        """Add the time of the solver's last step to ``_log_t``: t = ∫ gamma~ e^{gamma~}/kappa
        dsigma over it, by 3-point Gauss-Legendre on the step's dense output, in pieces of at
        most ``_TIME_PIECE`` in sigma + gamma~ (the log of the integrand moves at rate
        1 + gamma~: relative error ~5e-7 piece^7, 4e-14 at 0.1).  Below XI_SWITCH omega = log(t kappa) - gamma~ used to be a
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
                y = dense(sig)[:self._ny]
                logs.append(math.log(wt * half) + math.exp(sig) + sig - self._log_kappa(sig, y))
        logs.append(self._log_t)
        top = max(logs)
        self._log_t = top + math.log(sum(math.exp(v - top) for v in logs))

    def _offsets(self, sigma, y):
        """xi = m(y) - gamma~ from y alone (exact enough while eps gamma~ << 1)."""
        return K.margin_offsets(sigma, y, *self._args)

    def _omega_asymptotic(self, sigma, y, xi):
        slope = K.dlogkappa_xi(sigma, y, xi, *self._args) / math.exp(sigma)
        return math.log1p(slope)

    def _run(self, sigma, z, target, final, stats, mode):
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
        if live is not None and self.method != "LSODA" and self._live_end == sigma:
            # the previous run's solver goes on past its end (same state variables, same
            # point) instead of a fresh one at every save point (radau.resume)
            counts = [getattr(live, k, 0) for k in _COUNTS]
            resume(live, self._clock_span(target, mode))
            return self._steps(live, target, final, stats, counts, mode)
        cls, fun, jac, linalg = self._solver(mode)
        self._anchor = (hi, lo) if mode >= 1 else (0.0, 0.0)
        if mode >= 1:
            fun, jac = _anchored(fun, hi, lo), _anchored(jac, hi, lo)
            if isinstance(cls, partial) and "fun_stages" in cls.keywords:
                cls = partial(cls, fun_stages=_anchored(cls.keywords["fun_stages"], hi, lo))
        atol = (self.atol[:self._ny], np.concatenate([self.atol_xi, self.atol[self._ny:]]),
                self.atol_xi)[mode]
        options = {"rtol": self.rtol, "atol": atol}
        if self.method in IMPLICIT:
            options["jac"] = jac
        if linalg is not None:
            options["linalg"] = linalg
        radau = _is_radau(cls)
        if radau and mode >= 1 and self.method in IMPLICIT:
            options["jac"], options["scale"] = self._floored(options["jac"], atol)
        t0, t1 = (sigma, target) if mode == 0 else (0.0, self._clock_span(target, mode))
        first = None if (self._h is None or self.method == "LSODA") else min(self._h, t1 - t0)
        solver = cls(fun, t0, z, t1, first_step=first, **options)
        return self._steps(solver, target, final, stats, [0, 0, 0], mode)  # its set-up's evaluations count

    def _clock_span(self, target, mode):
        """The solver's end for ``target``: target itself in mode 0, else target - anchor."""
        if mode == 0:
            return target
        hi, lo = self._anchor
        return (target - hi) - lo

    def _steps(self, solver, target, final, stats, counts, mode):
        """Step ``solver`` to its end, or in mode 0 to the first step end where the sigma
        clock stalls (``clock.RATE_ENTER``; sets ``_stalled``), or past XI_SWITCH to a step
        end where the clock needs a new anchor (``REANCHOR``); add its counts beyond
        ``counts`` to ``stats``.  Returns (sigma reached, state)."""
        d = self.problem.n_features
        watch = self.clock is not None and mode == 0
        hi, lo = self._anchor
        reanchor = False
        while solver.status == "running":
            message = solver.step()
            stats["steps"] += 1
            if solver.status == "failed" or stats["steps"] > self.max_steps:
                reason = message or f"more than {self.max_steps} steps"
                raise IntegrationError(
                    f"{self.method} failed at gamma~ = {math.exp(hi + (lo + solver.t)):.6g} "
                    f"(target {math.exp(final):.6g}): {reason}")
            if mode == 0:
                self._clock_time(solver)
            elif solver.status == "running" and solver.step_size < REANCHOR * abs(solver.t):
                reanchor = True
                break
            if watch and solver.status == "running":
                f = getattr(solver, "f", None)  # Radau and the RK methods keep it; BDF, LSODA not
                if f is None:
                    f = self.fun(solver.t, solver.y)
                    stats["nfev"] += 1
                if sigma_rate(solver.y[:d], f[:d]) > RATE_ENTER:
                    self._stalled = True
                    break
        for key, before in zip(_COUNTS, counts):
            stats[key] += getattr(solver, key, 0) - before
        self._h = getattr(solver, "h_abs", None)
        if solver.status == "finished":
            sigma = target  # the end, to within an ulp of s (not of sigma)
            self._exact = None
        elif mode == 0:
            sigma = solver.t
            self._exact = None
        else:  # a new anchor: the exact point reached, as a double-double
            h2, l2 = _two_sum(hi, solver.t)
            self._exact = _two_sum(h2, l2 + lo)
            sigma = self._exact[0] + self._exact[1]
        self._live, self._live_end = (None, None) if reanchor else (solver, sigma)
        return sigma, solver.y

    def _floored(self, jac, atol):
        """(jac, scale) for Radau past XI_SWITCH: the Jacobian callable, which also records
        the rounding floor of Newton's iterates at it, and the error weights that go with it.

        The weights are scipy's, atol + rtol |z|, with three changes on the offsets xi:

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
        rtol, ny, N = self.rtol, self._ny, self.problem.n_samples
        hi, lo = self._anchor
        floor = [None]

        def jac_floor(t, z, *args):
            J = jac(t, z, *args)
            if isinstance(J, np.ndarray):
                floor[0] = (_EPS * (np.abs(J) @ np.abs(z)), np.abs(np.diag(J)))
            return J

        def scale(solver, z, z_new, h_abs):
            s = atol + np.maximum(np.abs(z), np.abs(z_new)) * rtol
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

    def _solver(self, mode):
        """(solver class, fun, jac, linear-algebra operator or None: the solver's default)
        for the state variables of ``mode``."""
        fun = (self.fun, self.fun_xi, self.fun_xi_dd)[mode]
        if self.structured:
            jac = self.jac_structured if mode == 0 else self.jac_xi_structured
            return STRUCTURED[self.method], fun, jac, StructuredLU()
        jac = self.jac if mode == 0 else self.jac_xi
        return METHODS[self.method], fun, jac, self._dense_lu(mode)

    def _dense_lu(self, mode):
        """Radau's dense operator: past TIME_SWITCH the xi rows of J are ~gamma~ times the y
        rows (linalg.EquilibratedLU)."""
        return EquilibratedLU() if (self.method == "Radau" and mode == 2) else None
