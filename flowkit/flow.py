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
from functools import lru_cache, partial

import numpy as np

from ._kernels import flow as K
from ._kernels import initial as I
from ._kernels.fields import saved_rows0
from ._kernels.radau import specialise
from .bdf import OperatorBDF
from .clock import PlateauClock
from .exceptions import IntegrationError, NumericalRangeError, ParameterError
from .linalg import StructuredLU
from .radau import ThetaRadau
from .structured import JAC_THETA, JacobianXi, Jacobian0, structured_pays
from .system import GAMMA_START, METHODS, TIME_SWITCH, XI_ATOL_MIN, XI_SWITCH, System

__all__ = ["Flow", "IntegrationError", "METHODS", "GAMMA_START", "TIME_SWITCH", "XI_SWITCH",
           "XI_ATOL_MIN", "initial_state"]

# Implicit methods that can run on structured Jacobians (structured.py)
STRUCTURED = {"Radau": partial(ThetaRadau, jac_theta=JAC_THETA), "BDF": OperatorBDF}
STRUCTURED_OR_DENSE = ("dense", "structured")


class Flow(System):
    """The network's flow in its primal state: right-hand sides, Jacobians (dense or
    structured), initial state, tolerances and state maps for one Problem; driver.py
    advances it (``System.advance``)."""

    def __init__(self, problem, *, method="Radau", rtol=1e-10, atol=None, max_steps=50_000,
                 linalg="dense", step="scipy"):
        if step == "compiled" and linalg != "dense":
            raise ParameterError(f"step='compiled' runs linalg='dense' only; got linalg={linalg!r}")
        super().__init__(problem, method=method, rtol=rtol, max_steps=max_steps, step=step)
        # structured linear algebra (structured.py): O(N² d) per factorisation and O(N d)
        # memory instead of O((d+N)³) and O((d+N)²); "auto" is resolved by select.select
        if linalg not in STRUCTURED_OR_DENSE or (linalg == "structured" and method not in STRUCTURED):
            raise ParameterError(f"Flow runs linalg 'dense', or 'structured' with method in "
                                 f"{sorted(STRUCTURED)}; got linalg={linalg!r}, method={method!r} "
                                 f"(flowkit.select chooses for linalg='auto')")
        self.linalg = linalg
        self.structured = self.linalg == "structured"
        self.sigma0, self.z0 = initial_state(problem)
        self.atol = self._resolve_atol(atol)
        # the plateau clock's own linear algebra: structured only where it pays (on small data its
        # climb clock's rank-one slot made the Woodbury solves fail: 6 x 4 planted data,
        # D = 10, alpha = 1e-3, 50,000 steps in one plateau; dense LU: 572)
        self.clock = PlateauClock(problem, self.rtol, self.structured and structured_pays(
            problem.n_samples, problem.n_features))

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

    def _log_kappa(self, sigma, y):
        """log kappa at the mode-0 state y (math.md, "Log-loss time")."""
        return K.log_kappa(sigma, y, *self._args)

    def _offsets(self, sigma, y):
        """xi = m(y) - gamma~ from y alone (exact enough while eps gamma~ << 1)."""
        return K.margin_offsets(sigma, y, *self._args)

    def _saved_rows(self, mode, sigma, Z, log_t):
        """Mode 0 in one kernel call (``_kernels.fields.saved_rows0``: the same kernels as
        one ``Driver._save`` each), mode 1 by slicing; mode 2 (omega from its asymptotic
        form, offsets of distinct samples) one by one."""
        d, N = self.problem.n_features, self.problem.n_samples
        if mode == 0:
            return saved_rows0(sigma, np.ascontiguousarray(Z), log_t, *self._args)
        if mode == 1:
            return np.concatenate([Z[:, :d], Z[:, d + N:d + N + 1], Z[:, d:d + N]], axis=1)
        return None

    def _omega_asymptotic(self, sigma, y, xi):
        slope = K.dlogkappa_xi(sigma, y, xi, *self._args) / math.exp(sigma)
        return math.log1p(slope)

    def _reduced_solver(self, Xt):
        args = (Xt, *self._args[1:])
        fun = partial(_xi_rhs_dd, args=args)
        if self.structured:
            return STRUCTURED[self.method], fun, partial(_jac_xi, args=args, dense=False), StructuredLU()
        return self._method(2, args), fun, partial(_jac_xi, args=args, dense=True), self._dense_lu(2)

    @staticmethod
    def _kernels():
        return _flow_kernels()

    def _solver(self, mode):
        if self.structured and not (mode == 2 and self._distinct is not None):
            fun = (self.fun, self.fun_xi, self.fun_xi_dd)[mode]
            jac = self.jac_structured if mode == 0 else self.jac_xi_structured
            return STRUCTURED[self.method], fun, jac, StructuredLU()
        return super()._solver(mode)


@lru_cache(maxsize=1)
def _flow_kernels():
    """The compiled step bound to the flow's kernels, per mode (_kernels/flow_step.py)."""
    from ._kernels import flow_step as S
    return (specialise("flow0", S.rhs0, S.jac0, S.logk0), specialise("flow1", S.rhs1, S.jac1, S.no_logk),
            specialise("flow2", S.rhs2, S.jac1, S.no_logk))


def _xi_rhs_dd(sigma, z, args):
    return K.xi_rhs_dd(sigma, z, *args)


def _jac_xi(sigma, z, args, dense):
    J = JacobianXi.at(sigma, z, *args)
    return J.dense() if dense else J


def initial_state(problem):
    """(sigma0, z0 = (y0, omega0)): the exact flow for frozen p = 1/N up to gamma~ =
    GAMMA_START (math.md closed form), where every system on the network's flow starts.

    With g0 = Xtᵀ1/N fixed, s = g0 t, so psi_i = 4 s_i (D = 2) or
    psi_i = (2/a) artanh(c s_i), c = D(D-2) alpha^{D-2} (D > 2).  Parametrised by
    P = psi of the feature with the largest |g0_i| (ratio r_i = g0_i / g0_max):
    psi_i = r_i P (D = 2), psi_i = (2/a) artanh(r_i tanh(a P / 2)) (D > 2), and
    t = P / (4 g0_max) or tanh(a P / 2) / (c g0_max).  P solves
    gamma~(w) = GAMMA_START, found by bisection on log P.
    """
    P_ = problem
    D, A, Xt = float(P_.depth), P_.log_alpha_D, P_.Xt
    a = D - 2.0
    g0 = Xt.mean(axis=0)
    imax = int(np.argmax(np.abs(g0)))
    gmax = g0[imax]
    ratio = g0 / gmax

    sign = float(np.sign(gmax))
    hi, log_target = math.log(2000.0), math.log(GAMMA_START)
    if I.excess(hi, ratio, sign, Xt, D, A, log_target) <= 0.0:
        raise NumericalRangeError(
            f"no initial state reaches gamma~ = {GAMMA_START:g} (depth {P_.depth}, "
            f"log alpha^D = {A:.6g}): the data's mean row is too small")
    # scipy.optimize.bisect(excess, -740, hi, xtol=1e-15, rtol=1e-15, maxiter=300), compiled
    lP, converged = I.root(-740.0, hi, ratio, sign, Xt, D, A, log_target, 1e-15, 1e-15, 300)
    if not converged:
        raise NumericalRangeError(f"the initial state's bisection did not converge (depth {P_.depth}, "
                                  f"log alpha^D = {A:.6g})")
    y_big = math.exp(lP)
    if D == 2:
        psi = y_big * ratio
    else:  # numpy's arctanh, not numba's: 1 ulp apart on D > 2 (the root is the same)
        with np.errstate(divide="ignore"):
            psi = (2.0 / a) * np.arctanh(ratio * math.tanh(0.5 * a * y_big))
    tied = np.abs(ratio) == 1.0
    psi[tied] = y_big * ratio[tied]  # exact, where artanh(tanh(.)) would saturate
    psi = psi * sign
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
