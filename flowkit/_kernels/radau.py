"""Radau IIA (order 5) compiled: scipy 1.17's step (``scipy/integrate/_ivp/radau.py``) in
numba, whole steps per call, with the driver's per-step work (driver.py) done in the loop.

A step is scipy's ``Radau._step_impl``, operation for operation: the simplified Newton
iteration on the collocation system in the transformed variables W = T⁻¹ Z, one real and
one complex LU of mu I - J (mu = MU_REAL/h, MU_COMPLEX/h), the embedded error estimate
with its second solve after a rejection, the predictive step-size controller
(``_predict``) and the Jacobian-refresh rule (refresh after an accepted step that needed
more than two iterations at a convergence rate above ``jac_theta``).  The numbers differ
from scipy's only by rounding: the LU is an unblocked partial-pivoting elimination (the
pivots LAPACK's getrf picks: first largest |re| + |im|), and sums run in loop order rather
than BLAS order (tests/test_compiled.py).

What a call also does, so that it needs no Python between steps (flowkit.compiled):

* the right-hand side and Jacobian at sigma = hi + (lo + s) for the solver's clock s
  (driver.py, the anchored clock; hi = lo = 0 leaves s as it is);
* row equilibration of both Newton matrices (``linalg.EquilibratedLU``), if asked;
* the error weights: scipy's, or the driver's floored ones (``driver.Driver._floored``:
  the rounding floor of Newton's iterates, the e^gap weights past GAP_WEIGHT_FROM, the
  plunge rule);
* after each accepted step: the time quadrature of mode 0 (``Driver._clock_time``, the
  system's log kappa at 3-point Gauss-Legendre nodes of the step's dense output), the
  plateau watch (``clock.sigma_rate`` above RATE_ENTER) and the re-anchoring test
  (step below REANCHOR |s|); each one stops the loop as the Python loop would.

The system's functions are ``rhs(t, z, args)``, ``jac(t, z, args)`` (dense n x n) and
``logk(t, y, args)`` (log kappa, for the quadrature), numba functions on one tuple ``args``
of its data.  They are globals of the functions below: ``specialise`` makes a copy of each,
bound to one system's functions and cached under its own name, so the step is compiled
once per system (then loaded from numba's cache) and calls them directly (no function
pointers, whose unboxing costs ~17 us per call).
"""
import glob
import hashlib
import math
import os
import types

import numpy as np
from numba import njit

# scipy 1.17's Radau IIA constants (scipy/integrate/_ivp/radau.py), as literals: the
# kernels freeze them at compile time, so they are written out where they are checked
# (tests/test_compiled.py compares them with scipy's).
S6 = 6 ** 0.5
C = np.array([(4 - S6) / 10, (4 + S6) / 10, 1.0])
E = np.array([-13 - 7 * S6, -13 + 7 * S6, -1]) / 3
MU_REAL = 3 + 3 ** (2 / 3) - 3 ** (1 / 3)
_MU_C = 3 + 0.5 * (3 ** (1 / 3) - 3 ** (2 / 3)) - 0.5j * (3 ** (5 / 6) + 3 ** (7 / 6))
MU_COMPLEX_RE = _MU_C.real
MU_COMPLEX_IM = _MU_C.imag
T = np.array([
    [0.09443876248897524, -0.14125529502095421, 0.03002919410514742],
    [0.25021312296533332, 0.20412935229379994, -0.38294211275726192],
    [1, 1, 0]])
TI = np.array([
    [4.17871859155190428, 0.32768282076106237, 0.52337644549944951],
    [-4.17871859155190428, -0.32768282076106237, 0.47662355450055044],
    [0.50287263494578682, -2.57192694985560522, 0.59603920482822492]])
P = np.array([
    [13 / 3 + 7 * S6 / 3, -23 / 3 - 22 * S6 / 3, 10 / 3 + 5 * S6],
    [13 / 3 - 7 * S6 / 3, -23 / 3 + 22 * S6 / 3, 10 / 3 - 5 * S6],
    [1 / 3, -8 / 3, 10 / 3]])
NEWTON_MAXITER = 6
MIN_FACTOR = 0.2
MAX_FACTOR = 10.0

# the scalar state ``s`` (float64) ...
S_T, S_TOLD, S_H, S_HOLD, S_ENOLD, S_LOGT, S_TBOUND, S_HPLAN = range(8)
S_SIZE = 8
# ... the counters and flags ``c`` (int64) ...
C_NFEV, C_NJEV, C_NLU, C_STEPS, C_CURJAC, C_LUOK, C_SOL, C_FLOOR = range(8)
C_SIZE = 8
# ... and the options ``o`` (float64)
(O_RTOL, O_NTOL, O_MAXSTEP, O_THETA, O_HI, O_LO, O_DIR, O_NY, O_NX, O_WEIGHTS, O_EQUIL,
 O_QUAD, O_WATCH, O_WATCH_D, O_REANCHOR, O_RATE, O_NOISE, O_GAPFROM, O_GAPACT, O_GAPDROP,
 O_LANDING, O_LANDNOISE) = range(22)
O_SIZE = 22

# what a call returns
RUNNING, FINISHED, STALLED, REANCHOR, TOO_SMALL, BUDGET = 0, 1, 2, 3, -1, -2

_EPS = np.finfo(float).eps
# 3-point Gauss-Legendre on [-1, 1] (driver._GAUSS3) and the quadrature's piece length
_GX = np.array([-math.sqrt(0.6), 0.0, math.sqrt(0.6)])
_GW = np.array([5.0 / 9.0, 8.0 / 9.0, 5.0 / 9.0])
_TIME_PIECE = 0.1


@njit(cache=True)
def _norm(x):
    """scipy's RMS norm of a 1-D or 2-D array."""
    s = 0.0
    for v in x.ravel():
        s += v * v
    return math.sqrt(s) / math.sqrt(x.size)


@njit(cache=True)
def _lu(A, piv, r, equil):
    """A = diag(r)⁻¹ P L U in place (unit L below, U on and above the diagonal), r the
    powers of two of ``linalg.EquilibratedLU`` if ``equil`` else 1; pivots as getrf."""
    n = A.shape[0]
    for i in range(n):
        r[i] = 1.0
        if equil:
            top = 0.0
            for j in range(n):
                a = abs(A[i, j])
                if a > top or a != a:
                    top = a
            if top > 0.0 and math.isfinite(top):
                r[i] = math.ldexp(1.0, -math.frexp(top)[1])
                for j in range(n):
                    A[i, j] *= r[i]
    for k in range(n):
        p, big = k, abs(A[k, k].real) + abs(A[k, k].imag)
        for i in range(k + 1, n):
            v = abs(A[i, k].real) + abs(A[i, k].imag)
            if v > big:
                p, big = i, v
        piv[k] = p
        if p != k:
            for j in range(n):
                A[k, j], A[p, j] = A[p, j], A[k, j]
        akk = A[k, k]
        if akk == 0:
            continue
        inv = 1.0 / akk
        for i in range(k + 1, n):
            A[i, k] *= inv
        for i in range(k + 1, n):
            lik = A[i, k]
            if lik != 0:
                for j in range(k + 1, n):
                    A[i, j] -= lik * A[k, j]


@njit(cache=True)
def _solve(A, piv, r, b, x):
    """x = (diag(r)⁻¹ P L U)⁻¹ b for the factors of ``_lu``."""
    n = A.shape[0]
    for i in range(n):
        x[i] = b[i] * r[i]
    for k in range(n):
        p = piv[k]
        if p != k:
            x[k], x[p] = x[p], x[k]
    for i in range(n):
        acc = x[i]
        for j in range(i):
            acc -= A[i, j] * x[j]
        x[i] = acc
    for i in range(n - 1, -1, -1):
        acc = x[i]
        for j in range(i + 1, n):
            acc -= A[i, j] * x[j]
        x[i] = acc / A[i, i]


@njit(cache=True)
def _factor(J, h, LUr, pr, er, LUc, pc, ec, equil):
    """Both Newton matrices MU_REAL/h I - J and MU_COMPLEX/h I - J, factored."""
    n = J.shape[0]
    mr = MU_REAL / h
    mc = complex(MU_COMPLEX_RE, MU_COMPLEX_IM) / h
    for i in range(n):
        for j in range(n):
            LUr[i, j] = -J[i, j]
            LUc[i, j] = -J[i, j]
        LUr[i, i] += mr
        LUc[i, i] += mc
    _lu(LUr, pr, er, equil)
    _lu(LUc, pc, ec, equil)


@njit(cache=True)
def _predict(h_abs, h_abs_old, error_norm, error_norm_old):
    """scipy's ``predict_factor`` (NaN for None)."""
    if error_norm_old != error_norm_old or h_abs_old != h_abs_old or error_norm == 0:
        multiplier = 1.0
    else:
        multiplier = h_abs / h_abs_old * (error_norm_old / error_norm) ** 0.25
    if error_norm == 0:
        return math.inf
    return min(1.0, multiplier) * error_norm ** -0.25


@njit(cache=True)
def _weights(z, z_new, is_newton, h_abs, t, f, atol, floor, o, c, out):
    """The error weights (``driver.Driver._floored`` when o[O_WEIGHTS] = 1, else scipy's
    atol + rtol max(|z|, |z_new|)) into ``out``."""
    n = z.shape[0]
    rtol = o[O_RTOL]
    for i in range(n):
        out[i] = atol[i] + max(abs(z[i]), abs(z_new[i])) * rtol
    if o[O_WEIGHTS] == 0.0:
        return
    ny, N = int(o[O_NY]), int(o[O_NX])
    k = 0
    for i in range(1, N):
        if z[ny + i] < z[ny + k]:
            k = i
    gam = math.exp(o[O_HI] + o[O_LO] + t)
    plain = out[ny:ny + N].copy()
    landing = np.empty(N, dtype=np.bool_)
    for i in range(N):
        gap = z[ny + i] - z[ny + k]
        rel = f[ny + i] - f[ny + k]
        landing[i] = rel < -max(gap / o[O_LANDING], o[O_LANDNOISE] * gam)
        if gam > o[O_GAPFROM]:
            out[ny + i] *= math.exp(min(0.0 if landing[i] else gap, 300.0))
    if c[C_FLOOR]:
        mr = MU_REAL / h_abs
        for i in range(n):
            v = o[O_NOISE] * floor[0, i] / (floor[1, i] + mr)
            if v > out[i]:
                out[i] = v
    if not is_newton:
        lo = z_new[ny]
        for i in range(1, N):
            lo = min(lo, z_new[ny + i])
        for i in range(N):
            gap_new = z_new[ny + i] - lo
            gap = z[ny + i] - z[ny + k]
            if not landing[i] and gap_new < o[O_GAPACT] and gap - gap_new > o[O_GAPDROP]:
                out[ny + i] = plain[i]


@njit(cache=True)
def _floor(J, z, floor):
    """The rounding floor of Newton's iterates at J: eps (|J| |z|) and |diag J|."""
    n = z.shape[0]
    for i in range(n):
        acc = 0.0
        for j in range(n):
            acc += abs(J[i, j]) * abs(z[j])
        floor[0, i] = _EPS * acc
        floor[1, i] = abs(J[i, i])


@njit(cache=True)
def _dense_at(tt, t_old, h, y_old, Q, out):
    """The collocation polynomial of the last step at tt (scipy's RadauDenseOutput)."""
    x = (tt - t_old) / h
    x2 = x * x
    x3 = x2 * x
    for i in range(y_old.shape[0]):
        out[i] = Q[i, 0] * x + Q[i, 1] * x2 + Q[i, 2] * x3 + y_old[i]


@njit(cache=True)
def _q_of(Z, Q):
    """Q = Zᵀ P."""
    n = Z.shape[1]
    for i in range(n):
        for j in range(3):
            Q[i, j] = Z[0, i] * P[0, j] + Z[1, i] * P[1, j] + Z[2, i] * P[2, j]


@njit(cache=True)
def _sigma_rate(y, f, d):
    """clock.sigma_rate on the first d components."""
    top, big = 0.0, 1.0
    for i in range(d):
        top = max(top, abs(f[i]))
        big = max(big, abs(y[i]))
    return top / big


# -- the functions bound to a system's rhs / jac / logk (``specialise``) -------------------

def _eval(t, z, args, o, out, c):
    """rhs at sigma = hi + (lo + t) into out."""
    F = rhs(o[O_HI] + (o[O_LO] + t), z, args)  # noqa: F821 (bound by specialise)
    c[C_NFEV] += 1
    for i in range(out.shape[0]):
        out[i] = F[i]


def _jacobian(t, z, args, o, J, floor, c):
    """jac at sigma = hi + (lo + t) into J, and its rounding floor."""
    A = jac(o[O_HI] + (o[O_LO] + t), z, args)  # noqa: F821 (bound by specialise)
    c[C_NJEV] += 1
    n = z.shape[0]
    for i in range(n):
        for j in range(n):
            J[i, j] = A[i, j]
    if o[O_WEIGHTS] != 0.0:
        _floor(J, z, floor)
        c[C_FLOOR] = 1


def _collocate(t, y, h, Z0, scale, tol, LUr, pr, er, LUc, pc, ec, args, o, c, Z):
    """scipy's ``solve_collocation_system``: (converged, iterations, rate or -1); Z out."""
    n = y.shape[0]
    mr = MU_REAL / h
    mc = complex(MU_COMPLEX_RE, MU_COMPLEX_IM) / h
    W = np.zeros((3, n))
    for a in range(3):
        for i in range(n):
            W[a, i] = TI[a, 0] * Z0[0, i] + TI[a, 1] * Z0[1, i] + TI[a, 2] * Z0[2, i]
    for a in range(3):
        for i in range(n):
            Z[a, i] = Z0[a, i]
    F = np.empty((3, n))
    zs = np.empty(n)
    fr = np.empty(n)
    fc = np.empty(n, dtype=np.complex128)
    dr = np.empty(n)
    dc = np.empty(n, dtype=np.complex128)
    dW = np.empty((3, n))
    dW_norm_old = -1.0
    rate = -1.0
    converged = False
    k = 0
    for k in range(NEWTON_MAXITER):
        finite = True
        for a in range(3):
            for i in range(n):
                zs[i] = y[i] + Z[a, i]
            _eval(t + h * C[a], zs, args, o, F[a], c)  # noqa: F821
            for i in range(n):
                if not math.isfinite(F[a, i]):
                    finite = False
        if not finite:
            break
        for i in range(n):
            # F.T.dot(TI_REAL) and F.T.dot(TI_COMPLEX), TI_REAL = TI[0], TI_COMPLEX = TI[1] + 1j TI[2]
            fr[i] = (F[0, i] * TI[0, 0] + F[1, i] * TI[0, 1] + F[2, i] * TI[0, 2]) - mr * W[0, i]
            fc[i] = (complex(F[0, i] * TI[1, 0] + F[1, i] * TI[1, 1] + F[2, i] * TI[1, 2],
                             F[0, i] * TI[2, 0] + F[1, i] * TI[2, 1] + F[2, i] * TI[2, 2])
                     - mc * complex(W[1, i], W[2, i]))
        _solve(LUr, pr, er, fr, dr)
        _solve(LUc, pc, ec, fc, dc)
        for i in range(n):
            dW[0, i] = dr[i]
            dW[1, i] = dc[i].real
            dW[2, i] = dc[i].imag
        ss = 0.0
        for a in range(3):
            for i in range(n):
                v = dW[a, i] / scale[i]
                ss += v * v
        dW_norm = math.sqrt(ss) / math.sqrt(3.0 * n)
        if dW_norm_old >= 0.0:
            rate = dW_norm / dW_norm_old
        if rate >= 0.0 and (rate >= 1 or rate ** (NEWTON_MAXITER - k) / (1 - rate) * dW_norm > tol):
            break
        for a in range(3):
            for i in range(n):
                W[a, i] += dW[a, i]
        for a in range(3):
            for i in range(n):
                Z[a, i] = T[a, 0] * W[0, i] + T[a, 1] * W[1, i] + T[a, 2] * W[2, i]
        if dW_norm == 0 or (rate >= 0.0 and rate / (1 - rate) * dW_norm < tol):
            converged = True
            break
        dW_norm_old = dW_norm
    return converged, k + 1, rate


def _step(y, f, J, Z, Q, y_old, LUr, pr, er, LUc, pc, ec, floor, atol, s, c, o, args):
    """One accepted step of scipy's ``Radau._step_impl`` (or TOO_SMALL): the state arrays
    in and out."""
    n = y.shape[0]
    t = s[S_T]
    direction = o[O_DIR]
    s[S_HPLAN] = s[S_H]
    min_step = 10 * abs(np.nextafter(t, direction * np.inf) - t)
    h_abs = s[S_H]
    if h_abs > o[O_MAXSTEP]:
        h_abs, h_abs_old, error_norm_old = o[O_MAXSTEP], np.nan, np.nan
    elif h_abs < min_step:
        h_abs, h_abs_old, error_norm_old = min_step, np.nan, np.nan
    else:
        h_abs_old, error_norm_old = s[S_HOLD], s[S_ENOLD]
    equil = o[O_EQUIL] != 0.0
    Z0 = np.empty((3, n))
    scale = np.empty(n)
    y_new = np.empty(n)
    ZE = np.empty(n)
    rhs_e = np.empty(n)
    err = np.empty(n)
    tmp = np.empty(n)
    rejected = False
    n_iter, rate, error_norm, safety, t_new = 0, -1.0, 0.0, 0.0, t
    while True:
        if h_abs < min_step:
            return TOO_SMALL
        h = h_abs * direction
        t_new = t + h
        if direction * (t_new - s[S_TBOUND]) > 0:
            t_new = s[S_TBOUND]
        h = t_new - t
        h_abs = abs(h)
        if c[C_SOL]:
            h_prev = t - s[S_TOLD]
            for a in range(3):
                _dense_at(t + h * C[a], s[S_TOLD], h_prev, y_old, Q, tmp)
                for i in range(n):
                    Z0[a, i] = tmp[i] - y[i]
        else:
            Z0[:] = 0.0
        _weights(y, y, True, h_abs, t, f, atol, floor, o, c, scale)
        converged = False
        while not converged:
            if not c[C_LUOK]:
                _factor(J, h, LUr, pr, er, LUc, pc, ec, equil)
                c[C_NLU] += 2
                c[C_LUOK] = 1
            converged, n_iter, rate = _collocate(t, y, h, Z0, scale, o[O_NTOL], LUr, pr, er, LUc,  # noqa: F821
                                                 pc, ec, args, o, c, Z)
            if not converged:
                if c[C_CURJAC]:
                    break
                _jacobian(t, y, args, o, J, floor, c)  # noqa: F821
                c[C_CURJAC] = 1
                c[C_LUOK] = 0
        if not converged:
            h_abs *= 0.5
            c[C_LUOK] = 0
            continue
        for i in range(n):
            y_new[i] = y[i] + Z[2, i]
            ZE[i] = (Z[0, i] * E[0] + Z[1, i] * E[1] + Z[2, i] * E[2]) / h
            rhs_e[i] = f[i] + ZE[i]
        _solve(LUr, pr, er, rhs_e, err)
        _weights(y, y_new, False, h_abs, t, f, atol, floor, o, c, scale)
        for i in range(n):
            tmp[i] = err[i] / scale[i]
        error_norm = _norm(tmp)
        safety = 0.9 * (2 * NEWTON_MAXITER + 1) / (2 * NEWTON_MAXITER + n_iter)
        if rejected and error_norm > 1:
            for i in range(n):
                tmp[i] = y[i] + err[i]
            _eval(t, tmp, args, o, rhs_e, c)  # noqa: F821
            for i in range(n):
                rhs_e[i] += ZE[i]
            _solve(LUr, pr, er, rhs_e, err)
            for i in range(n):
                tmp[i] = err[i] / scale[i]
            error_norm = _norm(tmp)
        if error_norm > 1:
            factor = _predict(h_abs, h_abs_old, error_norm, error_norm_old)
            h_abs *= max(MIN_FACTOR, safety * factor)
            c[C_LUOK] = 0
            rejected = True
        else:
            break
    recompute_jac = n_iter > 2 and rate > o[O_THETA]
    factor = min(MAX_FACTOR, safety * _predict(h_abs, h_abs_old, error_norm, error_norm_old))
    if not recompute_jac and factor < 1.2:
        factor = 1.0
    else:
        c[C_LUOK] = 0
    for i in range(n):
        y_old[i] = y[i]
        y[i] = y_new[i]
    _eval(t_new, y, args, o, f, c)  # noqa: F821
    if recompute_jac:
        _jacobian(t_new, y, args, o, J, floor, c)  # noqa: F821
        c[C_CURJAC] = 1
    else:
        c[C_CURJAC] = 0
    s[S_HOLD] = s[S_H]
    s[S_ENOLD] = error_norm
    s[S_H] = h_abs * factor
    s[S_TOLD] = t
    s[S_T] = t_new
    _q_of(Z, Q)
    c[C_SOL] = 1
    return RUNNING


def _quadrature(y_old, Q, s, o, args):
    """``driver.Driver._clock_time`` on the last step: s[S_LOGT] += log of ∫ dt."""
    a, b = s[S_TOLD], s[S_T]
    h = b - a
    ny = int(o[O_QUAD])
    pieces = max(1, int(math.ceil((b - a + math.exp(b) - math.exp(a)) / _TIME_PIECE)))
    step = (b - a) / pieces
    logs = np.empty(3 * pieces + 1)
    yy = np.empty(y_old.shape[0])
    m = 0
    for p in range(pieces):
        lo = a + p * step
        hi = b if p == pieces - 1 else a + (p + 1) * step
        mid, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
        for g in range(3):
            sig = mid + half * _GX[g]
            _dense_at(sig, a, h, y_old, Q, yy)
            logs[m] = math.log(_GW[g] * half) + math.exp(sig) + sig - logk(sig, yy[:ny], args)  # noqa: F821
            m += 1
    logs[m] = s[S_LOGT]
    top = logs[0]
    for i in range(1, m + 1):
        top = max(top, logs[i])
    acc = 0.0
    for i in range(m + 1):
        acc += math.exp(logs[i] - top)
    s[S_LOGT] = top + math.log(acc)


def _advance(y, f, J, Z, Q, y_old, LUr, pr, er, LUc, pc, ec, floor, atol, s, c, o, args,
             max_steps, budget):
    """Up to ``max_steps`` accepted steps towards s[S_TBOUND], with the driver's per-step
    work (module docstring); stops early at the end, a plateau, a re-anchoring point or
    past ``budget`` steps in all.  Returns the status (RUNNING ... BUDGET).  With
    ``max_steps`` = 0: the set-up of scipy's Radau.__init__ instead, f and J at the start."""
    if max_steps == 0:
        _eval(s[S_T], y, args, o, f, c)  # noqa: F821
        _jacobian(s[S_T], y, args, o, J, floor, c)  # noqa: F821
        return RUNNING
    direction = o[O_DIR]
    for _ in range(max_steps):
        status = _step(y, f, J, Z, Q, y_old, LUr, pr, er, LUc, pc, ec, floor, atol, s, c, o, args)  # noqa: F821
        if status != RUNNING:
            return status
        c[C_STEPS] += 1
        if c[C_STEPS] > budget:
            return BUDGET
        finished = direction * (s[S_T] - s[S_TBOUND]) >= 0
        if o[O_QUAD] != 0.0:
            _quadrature(y_old, Q, s, o, args)  # noqa: F821
        if finished:
            return FINISHED
        if o[O_REANCHOR] > 0.0 and abs(s[S_T] - s[S_TOLD]) < o[O_REANCHOR] * abs(s[S_T]):
            return REANCHOR
        if o[O_WATCH] != 0.0 and _sigma_rate(y, f, int(o[O_WATCH_D])) > o[O_RATE]:
            return STALLED
    return RUNNING


# the bound functions in call order; all but the entry point are inlined into it, so
# that a specialisation is one compile (each jitted function of its own links and
# re-optimises the system's whole call tree: 18.7 s for the mode-0 flow with each one
# separate)
_BOUND = ("_eval", "_jacobian", "_collocate", "_step", "_quadrature", "_advance")


def _source_tag():
    """A hash of every kernel source (this package's files): numba's cache checks only the
    file of the function itself, so a change in a system's kernels must change the cache
    entry's name."""
    h = hashlib.sha1()
    for path in sorted(glob.glob(os.path.join(os.path.dirname(__file__), "*.py"))):
        with open(path, "rb") as fh:
            h.update(fh.read())
    return h.hexdigest()[:10]


def specialise(name, rhs, jac, logk, cache=True):
    """``_advance`` bound to one system's numba ``rhs``, ``jac``, ``logk``: an njit function
    named ``_advance_<name>_<source hash>`` in numba's cache (``cache=False`` for functions
    that are not in importable modules)."""
    tag = f"{name}_{_source_tag()}" if cache else name
    g = dict(globals())
    g.update(rhs=rhs, jac=jac, logk=logk)
    for fname in _BOUND:
        fn = globals()[fname]
        copy = types.FunctionType(fn.__code__, g, f"{fname}_{tag}", fn.__defaults__)
        copy.__qualname__ = copy.__name__
        copy.__module__ = __name__
        copy.__doc__ = fn.__doc__
        entry = fname == _BOUND[-1]
        g[fname] = njit(cache=cache)(copy) if entry else njit(inline="always")(copy)
    return g[_BOUND[-1]]
