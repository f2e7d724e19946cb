"""What a system is: the part of a run that says *what* is integrated, for the driver
(driver.py) that says *how*.

flowkit has three: the network's flow in its primal state (flow.Flow), the same flow in
N dual unknowns (dual.DualFlow) and the tangent-kernel model (linearized.LinearizedFlow).
Each one brings its own equations; none inherits another's.  ``System`` holds what every
one of them shares and the driver reads:

* ``problem``, ``method``, ``rtol``, ``max_steps``, ``atol`` (resolved, ``atol_xi`` past
  XI_SWITCH), ``linalg``, ``sigma0`` / ``z0`` (the initial state);
* ``_mode(sigma)`` and ``switches``: the state variables in force (0: z = y with t by
  quadrature; 1: z = (y, xi, omega); 2: z = (y, xi)) and the gamma~ where they change;
* ``_solver(mode)``: (solver class, fun, jac, linear-algebra operator or None) for a mode,
  from the system's ``fun``/``jac`` (mode 0), ``fun_xi``/``jac_xi`` (1) and
  ``fun_xi_dd``/``jac_xi`` (2);
* the maps between the solver's state and the saved layout (y, omega, xi): ``_ny``,
  ``_import``, ``_export``, ``_offsets``, ``_omega_asymptotic``, ``_log_kappa``;
* ``clock``: a plateau clock (clock.py) or None.

A new objective or initialisation is a new system (or a new part of one), passed to the
same driver.
"""
from __future__ import annotations

import math
from functools import partial

import numpy as np
from scipy.integrate import DOP853, LSODA, RK23, RK45

from ._memo import ArrayMemo
from .bdf import OperatorBDF
from .compiled import CompiledRadau
from .driver import Driver
from .exceptions import ParameterError
from .linalg import EquilibratedLU
from .radau import ThetaRadau

__all__ = ["System", "METHODS", "STEPS", "GAMMA_START", "TIME_SWITCH", "XI_SWITCH", "XI_ATOL_MIN"]

STEPS = ("scipy", "compiled")
METHODS = {"Radau": ThetaRadau, "BDF": OperatorBDF, "LSODA": LSODA, "RK45": RK45, "RK23": RK23, "DOP853": DOP853}

# The flow starts at gamma~ = 1e-14 from the exact solution with p frozen at its
# initial value 1/N (error O(gamma~) in p, i.e. relative 1e-14 in the state).
GAMMA_START = 1e-14

# Past gamma~ = TIME_SWITCH the time variable omega = log(t kappa) - gamma~ leaves the
# ODE state and follows from t = ∫ e^x/kappa dx integrated by parts,
#   t kappa e^{-gamma~} = 1 + l' + O(l'^2, l''),  l' = d log kappa/d gamma~ = O(1/gamma~),
# i.e. omega = log1p(l') with error O(gamma~^-2) ~ 1e-10.  Kept in the state, its
# relaxation at rate gamma~ makes rounding (~eps gamma~) dominate the error estimate.
TIME_SWITCH = 1e5

# Past gamma~ = XI_SWITCH the margin offsets xi = m - gamma~ are ODE states (flow.py's
# docstring); between XI_SWITCH and TIME_SWITCH the state is (y, xi, omega).
XI_SWITCH = 10.0

# Absolute tolerance floor of xi (O(1) gaps): its evaluation noise is ~eps/k, with k the
# (data-dependent, O(1e-2) on the kink data) relaxation rate of the gaps over gamma~;
# Radau's Newton iteration must resolve xi to ~1e-5 of its tolerance.
XI_ATOL_MIN = 1e-11


def check_solver(method, rtol):
    """ParameterError unless ``method`` is one of METHODS and 1e-14 <= ``rtol`` < 0.1."""
    if method not in METHODS:
        raise ParameterError(f"unknown method {method!r}; choose one of {sorted(METHODS)}")
    if isinstance(rtol, bool) or not (isinstance(rtol, (int, float, np.floating)) and 1e-14 <= rtol < 1e-1):
        raise ParameterError(f"rtol must be a number in [1e-14, 0.1); got {rtol!r}")


class System:
    """The shared part of a system (module docstring)."""

    clock = None
    linalg = "dense"
    # the step: "scipy" (radau.ThetaRadau and scipy's other solvers) or "compiled"
    # (compiled.CompiledRadau, for a system with ``_kernels``); select.select_step chooses
    step = "scipy"
    # the gamma~ where the state variables change (``_mode``)
    switches = (XI_SWITCH, TIME_SWITCH)

    def __init__(self, problem, *, method, rtol, max_steps, step="scipy"):
        check_solver(method, rtol)
        self.problem = problem
        self.method = method
        self.rtol = float(rtol)
        self.max_steps = int(max_steps)
        if step not in STEPS or (step == "compiled" and (method != "Radau" or self._kernels() is None)):
            raise ParameterError(f"step must be 'scipy', or 'compiled' with method='Radau' on a system "
                                 f"that has compiled kernels; got step={step!r}, method={method!r}")
        self.step = step
        self._args = (problem.Xt, float(problem.depth), problem.log_alpha_D)
        self._distinct = _DISTINCT.get(problem.Xt, _distinct_samples)

    def advance(self, sigma_from, z_from, sigma_to):
        """States at the increasing log-accuracies ``sigma_to`` from (sigma_from, z_from):
        ``driver.Driver.advance`` on this system.  ``z_from`` is (y, omega) or a saved state
        (y, omega, xi).  Returns (states, stats dict); states are (y, omega, xi)."""
        return Driver(self).advance(sigma_from, z_from, sigma_to)

    @staticmethod
    def _mode(sigma):
        """0: z = y (t by quadrature); 1: z = (y, xi, omega); 2: z = (y, xi)."""
        if sigma < math.log(XI_SWITCH):
            return 0
        return 1 if sigma < math.log(TIME_SWITCH) else 2

    # The solver's first block is y itself, unless the system integrates another vector
    # (flowkit.dual.DualFlow: N unknowns) and maps it to and from y at the ends of ``advance``
    @property
    def _ny(self):
        return self.problem.n_features

    def _import(self, sigma, y):
        return y

    def _saved_rows(self, mode, sigma, Z, log_t):
        """The saved layout (y, omega, xi) of many solver states of ``mode`` at once
        (``Driver._save_rows``), or None: then each is saved on its own."""
        return None

    def _export(self, sigma, y):
        return y

    # -- past TIME_SWITCH: one margin offset per distinct sample ------------------
    # Identical samples have identical offsets; carried separately, the rounding of
    # Radau's linear solves splits them along a direction no force restores (it does not
    # move y), and past gamma~ ~ 1e15 that noise stalled Newton: 14 of 15 runs on data
    # with duplicated samples failed between 5e15 and 3e19 (benchmarks/robustness_far.md),
    # the same data without the duplicates ran.  A group of k identical samples out of N,
    # among U distinct ones, is one offset zeta = xi - log(k U / N): then softmax(-zeta) is
    # the group's total weight and log(mean_U e^{-zeta}) = log(mean_N e^{-xi}) = Lambda, so
    # the kernels on the U distinct rows give the flow exactly (the softmax and Lambda of
    # _kernels/flow.py and _kernels/linearized.py alike).  A system sets ``_distinct`` to
    # None to carry every copy (dual.DualFlow, which select.dual_pays keeps off such data),
    # else gives ``_reduced_solver(Xt)``, its mode-2 solver on the distinct rows.
    def _xi_count(self, mode):
        return self.problem.n_samples if (mode < 2 or self._distinct is None) else self._distinct[0].size

    def _reduce(self, mode, xi):
        if mode < 2 or self._distinct is None:
            return xi
        rep, _, shift, _ = self._distinct
        return xi[rep] - shift

    def _expand(self, mode, zeta):
        if mode < 2 or self._distinct is None:
            return zeta
        _, group, shift, _ = self._distinct
        return (zeta + shift)[group]

    def _atol(self, mode):
        """The solver's atol in ``mode``: (y[, omega]), (y, xi, omega), (y, xi)."""
        ny = self._ny
        atol = (self.atol[:ny], np.concatenate([self.atol_xi, self.atol[ny:]]), self.atol_xi)[mode]
        if mode < 2 or self._distinct is None:
            return atol
        d = self._ny
        return np.concatenate([atol[:d], atol[d:][self._distinct[0]]])


    def _solver(self, mode):
        """(solver class, fun, jac, linear-algebra operator or None: the solver's default)
        for the state variables of ``mode``."""
        if mode == 2 and self._distinct is not None:
            return self._reduced_solver(self._distinct[3])
        fun = (self.fun, self.fun_xi, self.fun_xi_dd)[mode]
        jac = self.jac if mode == 0 else self.jac_xi
        return self._method(mode, self._args), fun, jac, self._dense_lu(mode)

    def _method(self, mode, args):
        """The solver class for ``mode`` on the data ``args``: the method's, or the
        compiled step bound to the system's kernels for that mode."""
        if self.step == "compiled":
            return partial(CompiledRadau, kernels=self._kernels()[mode], kernel_args=args)
        return METHODS[self.method]

    @staticmethod
    def _kernels():
        """The compiled step's kernels per mode (_kernels.radau.specialise), or None."""
        return None

    def _dense_lu(self, mode):
        """Radau's dense operator: past TIME_SWITCH the xi rows of J are ~gamma~ times the y
        rows (linalg.EquilibratedLU)."""
        return EquilibratedLU() if (self.method == "Radau" and mode == 2) else None

    def _resolve_atol(self, atol):
        """The atol vector for z0 = (y, omega); ``atol_xi`` for (y, xi[, omega])."""
        d, n = self.problem.n_features, self.z0.size
        if atol is None:
            # y is O(1)-scaled (flow.py's docstring): ~1e-2 rtol of its size;
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


_DISTINCT = ArrayMemo()  # shared between systems on the same data: read only


def _distinct_samples(Xt):
    """None if the rows of Xt are distinct, else (rep, group, shift, args): the first row
    of each group of identical rows, each row's group, log(k U / N) per group and the
    distinct rows themselves (``Flow._reduce``)."""
    N = Xt.shape[0]
    _, first, inverse, counts = np.unique(Xt, axis=0, return_index=True, return_inverse=True,
                                          return_counts=True)
    if first.size == N:
        return None
    order = np.argsort(first)           # groups in the order of their first rows
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    rep = first[order]
    group = rank[np.ravel(inverse)]
    shift = np.log(counts[order] * (rep.size / N))
    return rep, group, shift, np.ascontiguousarray(Xt[rep])
