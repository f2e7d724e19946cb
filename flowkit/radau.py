"""Radau IIA as flowkit runs it: scipy's solver with its Jacobian-refresh threshold as a
parameter, its linear algebra an operator, its error weights and stage evaluations
optionally the caller's.

``jac_theta``: after an accepted step whose Newton iteration needed more than two
iterations, the Jacobian is re-evaluated when the convergence rate exceeded ``jac_theta``.
scipy fixes it at 1e-3; Hairer & Wanner's RADAU5 (its WORK(3)) defaults to 1e-3 too and
advises ~0.1 "when Jacobian evaluations are costly".  With ``jac_theta = 1e-3`` (the
default here) the steps are scipy's, operation for operation: ``_step_impl`` is scipy
1.17's with that one constant replaced, so it follows scipy's internals of that version
(setup.cfg pins scipy 1.17.x; tests/test_select.py checks the equality step for step on
Robertson's problem).

``linalg``: the operator (flowkit.linalg) that factors and solves Radau's two linear
systems mu I - J; default ``DenseLU``, scipy's own LAPACK calls on scipy's own matrix.

``scale``: the error weights, ``scale(solver, y, y_new, h_abs)``; default scipy's.

``fun_stages``: the right-hand side at Radau's three stages at once, F = fun_stages(ts, Y)
for Y of shape (3, n): a right-hand side that passes over large data reads it once for the
three (flowkit.dual).  Without it the stages are evaluated one by one, as scipy does.

"""
from __future__ import annotations

import numpy as np
from scipy.integrate import Radau
from scipy.integrate._ivp.common import norm
from scipy.integrate._ivp.radau import (C, E, MAX_FACTOR, MIN_FACTOR, MU_COMPLEX, MU_REAL,
                                        NEWTON_MAXITER, T, TI, TI_COMPLEX, TI_REAL, predict_factor)

from .linalg import OperatorSolver

__all__ = ["ThetaRadau", "resume"]


class ThetaRadau(OperatorSolver, Radau):
    """scipy's Radau IIA with ``jac_theta``, ``linalg``, ``scale`` and ``fun_stages`` (module
    docstring).  The default operator calls the same getrf/getrs that ``lu_factor``/
    ``lu_solve`` call (so the same numbers), without their argument checks, which cost
    about a third of a step on the small systems flowkit solves."""

    jac_theta = 1e-3

    def __init__(self, fun, t0, y0, t_bound, *, fun_stages=None, linalg=None, scale=None,
                 jac_theta=None, **kwargs):
        self._fun_stages = fun_stages
        self._scale_fn = scale
        if jac_theta is not None:
            self.jac_theta = jac_theta
        self._init_ops(linalg)
        super().__init__(fun, t0, y0, t_bound, **kwargs)
        self._after_init()

    def _scale(self, y, y_new, h_abs):
        """The error weights of a step of size h_abs from y to y_new (y_new = y: Newton's),
        the solver at y (``scale(solver, y, y_new, h_abs)``):
        scipy's ``atol + max(|y|, |y_new|) rtol`` unless a ``scale`` callable was given."""
        if self._scale_fn is not None:
            return self._scale_fn(self, y, y_new, h_abs)
        return self.atol + np.maximum(np.abs(y), np.abs(y_new)) * self.rtol

    def _stages(self, t, y, ch, Z):
        """fun at the three stages (t + ch_i, y + Z_i)."""
        if self._fun_stages is not None:
            self.nfev += 3
            return self._fun_stages(t + ch, y + Z)
        F = np.empty(Z.shape)
        for i in range(3):
            F[i] = self.fun(t + ch[i], y + Z[i])
        return F

    def _collocate(self, t, y, h, Z0, scale, tol, LU_real, LU_complex):
        # scipy 1.17 radau.solve_collocation_system; the one change: the three stage
        # evaluations go through ``_stages``
        solve_lu = self._solve
        M_real = MU_REAL / h
        M_complex = MU_COMPLEX / h

        W = TI.dot(Z0)
        Z = Z0

        ch = h * C

        dW_norm_old = None
        dW = np.empty_like(W)
        converged = False
        rate = None
        for k in range(NEWTON_MAXITER):
            F = self._stages(t, y, ch, Z)

            if not np.all(np.isfinite(F)):
                break

            f_real = F.T.dot(TI_REAL) - M_real * W[0]
            f_complex = F.T.dot(TI_COMPLEX) - M_complex * (W[1] + 1j * W[2])

            dW_real = solve_lu(LU_real, f_real)
            dW_complex = solve_lu(LU_complex, f_complex)

            dW[0] = dW_real
            dW[1] = dW_complex.real
            dW[2] = dW_complex.imag

            dW_norm = norm(dW / scale)
            if dW_norm_old is not None:
                rate = dW_norm / dW_norm_old

            if (rate is not None and (rate >= 1 or
                    rate ** (NEWTON_MAXITER - k) / (1 - rate) * dW_norm > tol)):
                break

            W += dW
            Z = T.dot(W)

            if (dW_norm == 0 or
                    rate is not None and rate / (1 - rate) * dW_norm < tol):
                converged = True
                break

            dW_norm_old = dW_norm

        return converged, k + 1, Z, rate

    def resume(self, t_bound):
        """Go on past the end reached, to ``t_bound``, with this solver's step size, error
        history, Jacobian, LU and collocation polynomial (Newton's starting guess), which a
        fresh solver would rebuild.  If the end cut the last step short, go on with the step
        that had been planned, not the one the cut step's error suggests (a save grid of 20
        points per decade cost D = 3, rtol 1e-6 on planted_sparse(200, 10,000) 40% more steps
        than 2 per decade); h changes, so the LUs go, and the controller's history is that of
        a cut step, so it goes too."""
        self.t_bound, self.status = t_bound, "running"
        planned = getattr(self, "_h_planned", None)
        if (planned is not None and self.t_old is not None
                and abs(self.t - self.t_old) < 0.99 * planned and self.h_abs < planned):
            self.h_abs, self.h_abs_old, self.error_norm_old = planned, None, None
            self.LU_real = self.LU_complex = None

    def _step_impl(self):
        # scipy 1.17 Radau._step_impl; the one change: refresh threshold 1e-3 -> self.jac_theta
        # (and the planned step is remembered for ``resume``)
        self._h_planned = self.h_abs
        t = self.t
        y = self.y
        f = self.f

        max_step = self.max_step

        min_step = 10 * np.abs(np.nextafter(t, self.direction * np.inf) - t)
        if self.h_abs > max_step:
            h_abs = max_step
            h_abs_old = None
            error_norm_old = None
        elif self.h_abs < min_step:
            h_abs = min_step
            h_abs_old = None
            error_norm_old = None
        else:
            h_abs = self.h_abs
            h_abs_old = self.h_abs_old
            error_norm_old = self.error_norm_old

        J = self.J
        LU_real = self.LU_real
        LU_complex = self.LU_complex

        current_jac = self.current_jac
        jac = self.jac

        rejected = False
        step_accepted = False
        message = None
        while not step_accepted:
            if h_abs < min_step:
                return False, self.TOO_SMALL_STEP

            h = h_abs * self.direction
            t_new = t + h

            if self.direction * (t_new - self.t_bound) > 0:
                t_new = self.t_bound

            h = t_new - t
            h_abs = np.abs(h)

            if self.sol is None:
                Z0 = np.zeros((3, y.shape[0]))
            else:
                Z0 = self.sol(t + h * C).T - y

            scale = self._scale(y, y, h_abs)

            converged = False
            while not converged:
                if LU_real is None or LU_complex is None:
                    LU_real = self._factor(J, MU_REAL / h)
                    LU_complex = self._factor(J, MU_COMPLEX / h)

                converged, n_iter, Z, rate = self._collocate(
                    t, y, h, Z0, scale, self.newton_tol, LU_real, LU_complex)

                if not converged:
                    if current_jac:
                        break

                    J = self.jac(t, y, f)
                    current_jac = True
                    LU_real = None
                    LU_complex = None

            if not converged:
                h_abs *= 0.5
                LU_real = None
                LU_complex = None
                continue

            y_new = y + Z[-1]
            ZE = Z.T.dot(E) / h
            error = self._solve(LU_real, f + ZE)
            scale = self._scale(y, y_new, h_abs)
            error_norm = norm(error / scale)
            safety = 0.9 * (2 * NEWTON_MAXITER + 1) / (2 * NEWTON_MAXITER
                                                       + n_iter)

            if rejected and error_norm > 1:
                error = self._solve(LU_real, self.fun(t, y + error) + ZE)
                error_norm = norm(error / scale)

            if error_norm > 1:
                factor = predict_factor(h_abs, h_abs_old,
                                        error_norm, error_norm_old)
                h_abs *= max(MIN_FACTOR, safety * factor)

                LU_real = None
                LU_complex = None
                rejected = True
            else:
                step_accepted = True

        recompute_jac = jac is not None and n_iter > 2 and rate > self.jac_theta

        factor = predict_factor(h_abs, h_abs_old, error_norm, error_norm_old)
        factor = min(MAX_FACTOR, safety * factor)

        if not recompute_jac and factor < 1.2:
            factor = 1
        else:
            LU_real = None
            LU_complex = None

        f_new = self.fun(t_new, y_new)
        if recompute_jac:
            J = jac(t_new, y_new, f_new)
            current_jac = True
        elif jac is not None:
            current_jac = False

        self.h_abs_old = self.h_abs
        self.error_norm_old = error_norm

        self.h_abs = h_abs * factor

        self.y_old = y

        self.t = t_new
        self.y = y_new
        self.f = f_new

        self.Z = Z

        self.LU_real = LU_real
        self.LU_complex = LU_complex
        self.current_jac = current_jac
        self.J = J

        self.t_old = t
        self.sol = self._compute_dense_output()

        return step_accepted, message


def resume(solver, t_bound):
    """Continue a scipy ``OdeSolver`` that reached its end past it, to ``t_bound``
    (``ThetaRadau.resume``; the other methods keep their state as it is).  Not LSODA, which
    keeps its end point inside its Fortran state."""
    if isinstance(solver, ThetaRadau) or hasattr(solver, "resume"):  # compiled.CompiledRadau too
        solver.resume(t_bound)
    else:
        solver.t_bound, solver.status = t_bound, "running"
