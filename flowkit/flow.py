"""The flow: gradient flow in log-loss time and log-parameter coordinates, as a system
(right-hand sides, Jacobians, initial state, tolerances, state maps) that driver.py
advances with a ``scipy.integrate`` solver.

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
each accepted step (``driver.Driver._clock_time``): d log kappa/dsigma cancels to rounding where kappa
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
(flowkit.dual.DualFlow, on the same driver through ``_ny``, ``_import``, ``_export``
and ``_solver``).

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

Past XI_SWITCH the solver's clock is sigma less a double-double anchor (``driver.Driver._run``: a
sample joining the support needs steps ~1/gamma~, below sigma's own spacing past ~1e13),
and Radau's error weights are kept above Newton's rounding floor (``driver.Driver._floored``).
With both, 42 of 42 probe runs (benchmarks/join_probe.py: seven data sets, D = 2, 3, 5,
alpha = 1e3, 1e4) reach gamma~ = 1e30; 26 did before.

Saved states are (y, omega, xi), d + 1 + N numbers, whatever the regime: below the
switch xi is recomputed from y, above it omega comes from its asymptotic form.
"""
from __future__ import annotations

import math
from functools import partial

import numpy as np
from scipy.integrate import DOP853, LSODA, RK23, RK45
from scipy.optimize import bisect

from ._kernels import flow as K
from .exceptions import IntegrationError, NumericalRangeError, ParameterError
from .clock import PlateauClock
from .bdf import OperatorBDF
from .linalg import EquilibratedLU, StructuredLU
from .driver import Driver
from .radau import ThetaRadau
from .structured import JAC_THETA, JacobianXi, Jacobian0, structured_pays

__all__ = ["Flow", "IntegrationError", "METHODS", "GAMMA_START", "TIME_SWITCH", "XI_SWITCH"]

METHODS = {"Radau": ThetaRadau, "BDF": OperatorBDF, "LSODA": LSODA, "RK45": RK45, "RK23": RK23, "DOP853": DOP853}
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
    # -- how: the driver (driver.py) steps this system -----------------------------
    def advance(self, sigma_from, z_from, sigma_to):
        """States at the increasing log-accuracies ``sigma_to`` from (sigma_from, z_from):
        ``driver.Driver.advance`` on this system.  Returns (states, stats dict); states are
        (y, omega, xi) (module docstring)."""
        return Driver(self).advance(sigma_from, z_from, sigma_to)

    # the gamma~ where the state variables change (``_mode``)
    switches = (XI_SWITCH, TIME_SWITCH)

    @staticmethod
    def _mode(sigma):
        """0: z = y (t by quadrature); 1: z = (y, xi, omega); 2: z = (y, xi)."""
        if sigma < math.log(XI_SWITCH):
            return 0
        return 1 if sigma < math.log(TIME_SWITCH) else 2

    # The solver's first block is y itself here; flowkit.dual.DualFlow integrates an
    # N-vector instead and maps it to and from y at the ends of ``advance``.
    @property
    def _ny(self):
        return self.problem.n_features

    def _import(self, sigma, y):
        return y

    def _export(self, sigma, y):
        return y

    def _log_kappa(self, sigma, y):
        """log kappa at the mode-0 state y (math.md, "Log-loss time")."""
        return K.log_kappa(sigma, y, *self._args)

    def _offsets(self, sigma, y):
        """xi = m(y) - gamma~ from y alone (exact enough while eps gamma~ << 1)."""
        return K.margin_offsets(sigma, y, *self._args)

    def _omega_asymptotic(self, sigma, y, xi):
        slope = K.dlogkappa_xi(sigma, y, xi, *self._args) / math.exp(sigma)
        return math.log1p(slope)

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
