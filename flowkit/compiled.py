"""``CompiledRadau``: Radau IIA with its whole step compiled (_kernels/radau.py), as a
``scipy.integrate.OdeSolver`` that ``solve_ivp(..., method=CompiledRadau)`` accepts.

The step is scipy 1.17's Radau step, to rounding (tests/test_compiled.py checks it step for
step against scipy's own Radau and against radau.ThetaRadau); ``ThetaRadau`` stays the
reference (``integrate(..., step="scipy")``).  Where scipy's Python step spends ~90-250 us
per step on small systems in numpy calls, LAPACK wrappers and array allocations, this one
spends the right-hand sides' time and a few microseconds; and ``advance`` takes many steps
in one call with the driver's per-step work done in the loop (driver.py).

The right-hand side must be compiled too.  Two ways to give it:

* ``kernels=``, the step from ``_kernels.radau.specialise`` bound to numba functions
  ``rhs(t, z, args)``, ``jac(t, z, args)``, ``logk(t, y, args)``, and ``kernel_args=``,
  the tuple ``args`` of data they take (how flowkit's systems do it: cached per machine;
  not ``args=``, which ``solve_ivp`` keeps for itself), with ``fun(t, y)`` the same
  right-hand side in Python (for the choice of the first step);
* plain numba functions ``fun(t, y)`` and ``jac(t, y)`` (dense Jacobian), as with any
  ``solve_ivp`` call: they are bound here once per pair and process (no cache).

Options as scipy's Radau (``rtol``, ``atol``, ``first_step``, ``max_step``), and
``jac_theta`` (radau.ThetaRadau), ``equilibrate`` (linalg.EquilibratedLU's row scaling),
``linalg`` (``DenseLU()`` or ``EquilibratedLU()``: the operators this step has compiled;
the structured and dual ones run on ThetaRadau), ``anchor`` = (hi, lo) (the right-hand
sides see t = hi + (lo + s)) and ``floored`` (the driver's error weights: a dict of
driver._floored's constants and the state's layout).
"""
from __future__ import annotations

import numpy as np
from numba.core.registry import CPUDispatcher
from scipy.integrate import OdeSolver
from scipy.integrate._ivp.common import (select_initial_step, validate_first_step,
                                         validate_max_step, validate_tol, warn_extraneous)
from scipy.integrate._ivp.radau import RadauDenseOutput

from ._kernels import radau as K
from ._kernels.flow_step import no_logk
from .exceptions import ParameterError
from .linalg import DenseLU, EquilibratedLU

__all__ = ["CompiledRadau", "bind"]

_EPS = np.finfo(float).eps
_BOUND = {}


def bind(fun, jac):
    """The step bound to numba functions fun(t, y) and jac(t, y) (once per pair)."""
    key = (fun, jac)
    if key not in _BOUND:
        from numba import njit

        @njit
        def rhs(t, z, args):
            return fun(t, z)

        @njit
        def jac3(t, z, args):
            return np.asarray(jac(t, z), dtype=np.float64)

        _BOUND[key] = K.specialise(f"user{len(_BOUND)}", rhs, jac3, no_logk, cache=False)
    return _BOUND[key]


class CompiledRadau(OdeSolver):
    """Radau IIA of order 5, compiled (module docstring)."""

    TOO_SMALL_STEP = "Required step size is less than spacing between numbers."

    def __init__(self, fun, t0, y0, t_bound, max_step=np.inf, rtol=1e-3, atol=1e-6,
                 jac=None, first_step=None, vectorized=False, *, kernels=None, kernel_args=(),
                 jac_theta=1e-3, equilibrate=False, linalg=None, anchor=(0.0, 0.0),
                 floored=None, **extraneous):
        warn_extraneous(extraneous)
        if kernels is None:
            if not (isinstance(fun, CPUDispatcher) and isinstance(jac, CPUDispatcher)):
                raise ParameterError("CompiledRadau needs numba-compiled fun(t, y) and jac(t, y) "
                                     "(numba.njit), or kernels= from _kernels.radau.specialise")
            kernels, kernel_args = bind(fun, jac), ()
        if linalg is not None:
            if type(linalg) not in (DenseLU, EquilibratedLU):
                raise ParameterError(f"CompiledRadau runs the dense operators (DenseLU, "
                                     f"EquilibratedLU); got {type(linalg).__name__}")
            equilibrate = isinstance(linalg, EquilibratedLU)
        self._k, self._args = kernels, kernel_args
        y0 = np.array(y0, dtype=float)  # a copy: the kernels write to it
        if y0.ndim != 1:
            raise ParameterError(f"y0 must be 1-dimensional; got shape {y0.shape}")
        n = y0.size
        self.n, self.direction = n, float(np.sign(t_bound - t0)) if t_bound != t0 else 1.0
        self.status, self.vectorized = "running", False
        self.fun = self._fun_py
        self.max_step = validate_max_step(max_step)
        self.rtol, self.atol = validate_tol(rtol, atol, n)
        self._s = np.full(K.S_SIZE, np.nan)
        self._c = np.zeros(K.C_ALL, dtype=np.int64)
        self._L = np.zeros(K.L_SIZE)
        self._wk, self._wv = np.zeros((K.W_SIZE, 3, n)), np.zeros((K.V_SIZE, n))
        self._wc = np.zeros((K.WC_SIZE, n), dtype=complex)
        self._tq, self._Yq, self._Fq, self._Lq = np.zeros(3), np.zeros((3, n)), np.zeros((3, n)), np.zeros(3)
        self._o = o = np.zeros(K.O_SIZE)
        self._y, self._f, self._J = y0, np.empty(n), np.empty((n, n))
        self._Z, self._Q, self._y_old = np.zeros((3, n)), np.zeros((n, 3)), np.empty(n)
        self._LUr, self._pr, self._er = np.empty((n, n)), np.empty(n, dtype=np.int64), np.empty(n)
        self._LUc, self._pc, self._ec = (np.empty((n, n), dtype=complex), np.empty(n, dtype=np.int64),
                                         np.empty(n))
        self._floor = np.zeros((2, n))
        self._atol = np.broadcast_to(np.asarray(self.atol, dtype=float), (n,)).copy()
        self._s[K.S_T], self._s[K.S_TBOUND], self._s[K.S_LOGT] = t0, t_bound, -np.inf
        o[K.O_RTOL] = self.rtol
        o[K.O_NTOL] = max(10 * _EPS / rtol, min(0.03, rtol ** 0.5))
        o[K.O_MAXSTEP], o[K.O_THETA], o[K.O_DIR] = self.max_step, jac_theta, self.direction
        o[K.O_HI], o[K.O_LO] = anchor
        o[K.O_EQUIL] = 1.0 if equilibrate else 0.0
        if floored is not None:
            o[K.O_WEIGHTS] = 1.0
            o[K.O_NY], o[K.O_NX] = floored["ny"], floored["nx"]
            for key, idx in (("noise_margin", K.O_NOISE), ("gap_from", K.O_GAPFROM),
                             ("gap_active", K.O_GAPACT), ("gap_drop", K.O_GAPDROP),
                             ("landing", K.O_LANDING), ("landing_noise", K.O_LANDNOISE)):
                o[idx] = floored[key]
        self._fun = fun
        self._c[K.C_PHASE] = K.PH_INIT
        self._call(0, 0)  # f and J at the start
        if first_step is None:
            self._s[K.S_H] = select_initial_step(self._fun_py, t0, self._y, t_bound, self.max_step,
                                                 self._f.copy(), self.direction, 3, self.rtol,
                                                 self.atol)
        else:
            self._s[K.S_H] = validate_first_step(first_step, t0, t_bound)
        self._c[K.C_CURJAC] = 1

    # -- scipy's OdeSolver attributes, read from the kernels' state -----------------------
    def _fun_py(self, t, y):
        """fun at t = hi + (lo + s) from Python (the initial step's selection)."""
        self._c[K.C_NFEV] += 1
        return np.asarray(self._fun(self._o[K.O_HI] + (self._o[K.O_LO] + t), y), dtype=float)

    def _get(i):
        return property(lambda self: float(self._s[i]) if self._s[i] == self._s[i] else None,
                        lambda self, v: self._s.__setitem__(i, np.nan if v is None else v))

    t, t_bound, h_abs = _get(K.S_T), _get(K.S_TBOUND), _get(K.S_H)
    del _get

    @property
    def t_old(self):
        """The start of the last step the kernel took (where its dense output starts)."""
        v = self._s[K.S_TOLD]
        return float(v) if v == v else None

    @t_old.setter
    def t_old(self, v):
        # OdeSolver.step writes t_old; at t == t_bound it sets t_old = t without a step,
        # which must not move the start of the kernel's dense output (a resume from there
        # would predict Newton's start with a step of length 0)
        pass

    def _count(i):
        return property(lambda self: int(self._c[i]), lambda self, v: self._c.__setitem__(i, v))

    nfev, njev, nlu = _count(K.C_NFEV), _count(K.C_NJEV), _count(K.C_NLU)
    del _count

    @property
    def y(self):
        return self._y.copy()

    @property
    def f(self):
        return self._f.copy()

    @property
    def J(self):
        return self._J.copy()

    @property
    def log_t(self):
        """The time quadrature's log t (``advance(quadrature=True)``)."""
        return float(self._s[K.S_LOGT])

    @log_t.setter
    def log_t(self, v):
        self._s[K.S_LOGT] = v

    def _call(self, max_steps, budget, targets=None):
        """The kernel, to ``targets`` (solver clock, increasing) or to t_bound; the states
        and log t reached at them are then ``self.saved``, ``self.saved_log_t``."""
        tg = np.array([self._s[K.S_TBOUND]]) if targets is None else np.asarray(targets, dtype=float)
        self._s[K.S_TBOUND], self._c[K.C_TGT] = tg[0], 0
        self.saved, self.saved_log_t = np.empty((tg.size, self.n)), np.empty(tg.size)
        return self._k(self._y, self._f, self._J, self._Z, self._Q, self._y_old, self._LUr,
                       self._pr, self._er, self._LUc, self._pc, self._ec, self._floor, self._atol,
                       self._s, self._c, self._o, self._L, self._wk, self._wv, self._wc, self._tq,
                       self._Yq, self._Fq, self._Lq, tg, self.saved, self.saved_log_t, self._args,
                       max_steps, budget)

    @property
    def reached(self):
        """How many of the last ``advance``'s targets were reached (their states in
        ``saved``, ``saved_log_t``)."""
        return int(self._c[K.C_TGT]) + (1 if self.status == "finished" else 0)

    def _step_impl(self):
        o = self._o
        o[K.O_QUAD] = o[K.O_WATCH] = o[K.O_REANCHOR] = 0.0
        status = self._call(1, np.iinfo(np.int64).max)
        if status == K.TOO_SMALL:
            return False, self.TOO_SMALL_STEP
        return True, None

    def advance(self, budget, *, quadrature=0, watch=0, rate=np.inf, reanchor=0.0, targets=None):
        """Steps to t_bound in one call, stopping early as the driver's loop would
        (_kernels/radau.py, ``_advance``): returns the kernel's status (K.FINISHED, ...).
        ``budget``: the steps allowed to this solver in all (counted in ``steps``);
        ``quadrature``: if > 0, add each step's time to ``log_t``, with log kappa of the
        first ``quadrature`` components (mode 0); ``watch``, ``rate``:
        stop where the first ``watch`` components move faster than ``rate`` (the plateau
        watch); ``reanchor``: stop where a step is below reanchor |t|; ``targets``:
        increasing ends to pass through in one call (the last one becomes t_bound), each
        reached as ``resume`` would go on from it (``reached``, ``saved``)."""
        if self.status != "running":
            raise RuntimeError("advance on a solver that is not running")
        o = self._o
        o[K.O_QUAD] = quadrature
        o[K.O_WATCH], o[K.O_WATCH_D], o[K.O_RATE] = (1.0 if watch else 0.0), watch, rate
        o[K.O_REANCHOR] = reanchor
        status = self._call(np.iinfo(np.int64).max, budget, targets)
        if status == K.FINISHED:
            self.status = "finished"
        elif status == K.TOO_SMALL:
            self.status = "failed"
        return status

    @property
    def steps(self):
        return int(self._c[K.C_STEPS])

    def resume(self, t_bound):
        """radau.ThetaRadau.resume: go on to a new end with the solver's state."""
        self.t_bound, self.status = t_bound, "running"
        s, planned = self._s, self._s[K.S_HPLAN]
        if (planned == planned and s[K.S_TOLD] == s[K.S_TOLD]
                and abs(s[K.S_T] - s[K.S_TOLD]) < 0.99 * planned and s[K.S_H] < planned):
            s[K.S_H], s[K.S_HOLD], s[K.S_ENOLD] = planned, np.nan, np.nan
            self._c[K.C_LUOK] = 0

    def _dense_output_impl(self):
        s = self._s
        return RadauDenseOutput(s[K.S_TOLD], s[K.S_T], self._y_old.copy(), self._Q.copy())
