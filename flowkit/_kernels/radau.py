"""Radau IIA (order 5) compiled: scipy 1.17's step (``scipy/integrate/_ivp/radau.py``) in
numba, whole steps per call, with the driver's per-step work (driver.py) done in the loop.

A step is scipy's ``Radau._step_impl``, operation for operation: the simplified Newton
iteration on the collocation system in the transformed variables W = T⁻¹ Z, one real and
one complex LU of mu I - J (mu = MU_REAL/h, MU_COMPLEX/h), the embedded error estimate
with its second solve after a rejection, the predictive step-size controller
(``_predict``) and the Jacobian-refresh rule (refresh after an accepted step that needed
more than two iterations at a convergence rate above ``jac_theta``).  The numbers differ
from scipy's only by rounding: sums run in loop order rather than BLAS order, and below
LAPACK_FROM unknowns the LU is an unblocked elimination with getrf's pivots (from there on
it is LAPACK's getrf itself, _kernels/lapack.py) (tests/test_compiled.py).

What a call also does, so that it needs no Python between steps (flowkit.compiled):

* the right-hand side and Jacobian at sigma = hi + (lo + s) for the solver's clock s
  (driver.py, the anchored clock; hi = lo = 0 leaves s as it is);
* row equilibration of both Newton matrices (``linalg.EquilibratedLU``), if asked;
* the error weights: scipy's, or the driver's floored ones (``driver.Driver._floored``:
  the rounding floor of Newton's iterates, the e^gap weights past GAP_WEIGHT_FROM, the
  plunge rule);
* after each accepted step: the time quadrature of mode 0 (``Driver._clock_time``, the
  system's log kappa at 3-point Gauss-Legendre nodes of the step's dense output, summed
  as a streaming log-sum-exp: the driver's two-pass sum to ~2e-15 in log t), the
  plateau watch (``clock.sigma_rate`` above RATE_ENTER) and the re-anchoring test
  (step below REANCHOR |s|); each one stops the loop as the Python loop would.

The system's functions are ``rhs(t, z, args)``, ``jac(t, z, args)`` (dense n x n) and
``logk(t, y, args)`` (log kappa, for the quadrature), numba functions on one tuple ``args``
of its data.  The step never calls them: ``_machine`` (compiled once, for every system, as
a C function that every binding calls by name: ``_register_machine``) runs until it needs
one and returns a request with the points; ``_drive``, the loop that answers, is the one
function bound to a system's functions (``specialise``: a copy cached under its own name).
Measured on 2 AMD EPYC cores: the machine and its helpers compile in ~13 s once per
machine, each system's loop in ~1 s besides its own functions (3.5-5 s while it linked the
machine's code; the step bound into one function with them took 10-15 s per system), and
then numba's cache loads them in ~0.05 s.
Function pointers instead (numba first-class functions) would need no binding, but
unboxing one from Python costs 17-60 us per call.
"""
import glob
import hashlib
import math
import os
import types as pytypes

import llvmlite.binding as llb
import numpy as np
from numba import carray, cfunc, njit, types

from .lapack import getrf

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
# Every kernel here uses numpy's error model: a zero pivot or a zero error weight gives
# inf/nan, on which Newton fails and the step shrinks (scipy: a LinAlgWarning), instead of
# numba's ZeroDivisionError.
# 3-point Gauss-Legendre on [-1, 1] (driver._GAUSS3) and the quadrature's piece length
_GX = np.array([-math.sqrt(0.6), 0.0, math.sqrt(0.6)])
_GW = np.array([5.0 / 9.0, 8.0 / 9.0, 5.0 / 9.0])
_TIME_PIECE = 0.1
# from this size on the Newton matrices are factored by LAPACK (_kernels/lapack.py): the
# call costs ~1 us, the loops' n³ work overtakes it at ~12 (complex, measured)
LAPACK_FROM = 12


@njit(cache=True, error_model="numpy")
def _norm(x):
    """scipy's RMS norm of a 1-D or 2-D array."""
    s = 0.0
    for v in x.ravel():
        s += v * v
    return math.sqrt(s) / math.sqrt(x.size)


@njit(cache=True, error_model="numpy")
def _lu(A, piv, r, equil):
    """A = diag(r)⁻¹ P L U in place (unit L below, U on and above the diagonal), r the
    powers of two of ``linalg.EquilibratedLU`` if ``equil`` else 1: LAPACK's getrf from
    LAPACK_FROM on (scipy's factors; _kernels/lapack.py), below it unblocked loops with
    getrf's pivots (first largest |re| + |im|)."""
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
    if n >= LAPACK_FROM:
        getrf(A, piv)
        return
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


@njit(cache=True, error_model="numpy")
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
        # a complex division by an exact zero raises in numba whatever the error model, and
        # the machine, a C function, cannot raise: a zero pivot gives NaN, on which Newton
        # fails and the step shrinks (scipy: inf/nan from getrs)
        d = A[i, i]
        x[i] = acc / d if d != 0 else acc * math.nan


@njit(cache=True, error_model="numpy")
def _factor(J, h, LUr, pr, er, LUc, pc, ec, equil):
    """Both Newton matrices MU_REAL/h I - J and MU_COMPLEX/h I - J, factored."""
    n = J.shape[0]
    mr = MU_REAL / h
    mc = complex(MU_COMPLEX_RE / h, MU_COMPLEX_IM / h)
    for i in range(n):
        for j in range(n):
            LUr[i, j] = -J[i, j]
            LUc[i, j] = -J[i, j]
        LUr[i, i] += mr
        LUc[i, i] += mc
    _lu(LUr, pr, er, equil)
    _lu(LUc, pc, ec, equil)


@njit(cache=True, error_model="numpy")
def _predict(h_abs, h_abs_old, error_norm, error_norm_old):
    """scipy's ``predict_factor`` (NaN for None)."""
    if error_norm_old != error_norm_old or h_abs_old != h_abs_old or error_norm == 0:
        multiplier = 1.0
    else:
        multiplier = h_abs / h_abs_old * (error_norm_old / error_norm) ** 0.25
    if error_norm == 0:
        return math.inf
    return min(1.0, multiplier) * error_norm ** -0.25


@njit(cache=True, error_model="numpy")
def _landing(z, f, t, o, i, k):
    """Whether offset i is landing on the support (offset k the lowest): ``Driver._floored``."""
    ny = int(o[O_NY])
    gam = math.exp(o[O_HI] + o[O_LO] + t)
    gap = z[ny + i] - z[ny + k]
    rel = f[ny + i] - f[ny + k]
    return rel < -max(gap / o[O_LANDING], o[O_LANDNOISE] * gam)


@njit(cache=True, error_model="numpy")
def _lowest(z, o):
    ny, N = int(o[O_NY]), int(o[O_NX])
    k = 0
    for i in range(1, N):
        if z[ny + i] < z[ny + k]:
            k = i
    return k


@njit(cache=True, error_model="numpy")
def _weights(z, z_new, h_abs, t, f, atol, floor, o, c, out):
    """The error weights of Newton's iteration into ``out``: ``driver.Driver._floored``
    when o[O_WEIGHTS] = 1 (without its plunge rule: ``_test_weights``), else scipy's
    atol + rtol max(|z|, |z_new|)."""
    n = z.shape[0]
    rtol = o[O_RTOL]
    for i in range(n):
        out[i] = atol[i] + max(abs(z[i]), abs(z_new[i])) * rtol
    if o[O_WEIGHTS] == 0.0:
        return
    ny, N = int(o[O_NY]), int(o[O_NX])
    k = _lowest(z, o)
    if math.exp(o[O_HI] + o[O_LO] + t) > o[O_GAPFROM]:
        for i in range(N):
            gap = 0.0 if _landing(z, f, t, o, i, k) else z[ny + i] - z[ny + k]
            out[ny + i] *= math.exp(min(gap, 300.0))
    if c[C_FLOOR]:
        mr = MU_REAL / h_abs
        for i in range(n):
            v = o[O_NOISE] * floor[0, i] / (floor[1, i] + mr)
            if v > out[i]:
                out[i] = v


@njit(cache=True, error_model="numpy")
def _test_weights(z, z_new, h_abs, t, f, atol, floor, o, c, out):
    """The error weights of a step's error test: ``_weights`` and the plunge rule (an
    offset that is not landing and falls by more than GAP_DROP into the band GAP_ACTIVE
    keeps scipy's weight)."""
    _weights(z, z_new, h_abs, t, f, atol, floor, o, c, out)
    if o[O_WEIGHTS] == 0.0:
        return
    ny, N = int(o[O_NY]), int(o[O_NX])
    k = _lowest(z, o)
    lo = z_new[ny]
    for i in range(1, N):
        lo = min(lo, z_new[ny + i])
    rtol = o[O_RTOL]
    for i in range(N):
        gap_new = z_new[ny + i] - lo
        gap = z[ny + i] - z[ny + k]
        if not _landing(z, f, t, o, i, k) and gap_new < o[O_GAPACT] and gap - gap_new > o[O_GAPDROP]:
            out[ny + i] = atol[ny + i] + max(abs(z[ny + i]), abs(z_new[ny + i])) * rtol


@njit(cache=True, error_model="numpy")
def _floor(J, z, floor):
    """The rounding floor of Newton's iterates at J: eps (|J| |z|) and |diag J|."""
    n = z.shape[0]
    for i in range(n):
        acc = 0.0
        for j in range(n):
            acc += abs(J[i, j]) * abs(z[j])
        floor[0, i] = _EPS * acc
        floor[1, i] = abs(J[i, i])


@njit(cache=True, error_model="numpy")
def _dense_at(tt, t_old, h, y_old, Q, out):
    """The collocation polynomial of the last step at tt (scipy's RadauDenseOutput)."""
    x = (tt - t_old) / h
    x2 = x * x
    x3 = x2 * x
    for i in range(y_old.shape[0]):
        out[i] = Q[i, 0] * x + Q[i, 1] * x2 + Q[i, 2] * x3 + y_old[i]


@njit(cache=True, error_model="numpy")
def _q_of(Z, Q):
    """Q = Zᵀ P."""
    n = Z.shape[1]
    for i in range(n):
        for j in range(3):
            Q[i, j] = Z[0, i] * P[0, j] + Z[1, i] * P[1, j] + Z[2, i] * P[2, j]


@njit(cache=True, error_model="numpy")
def _sigma_rate(y, f, d):
    """clock.sigma_rate on the first d components."""
    top, big = 0.0, 1.0
    for i in range(d):
        top = max(top, abs(f[i]))
        big = max(big, abs(y[i]))
    return top / big


# -- the step as a machine that asks for the system's functions ---------------------------
# The step is compiled once for every system: it never calls a right-hand side, it returns
# a request (REQ_*) with the points in tq/Yq, and the system's loop (``_drive``, bound to
# its functions by ``specialise``) answers into Fq / J / Lq and calls it again; its place
# in the step is c[C_PHASE] and its locals live in L.
REQ_F1, REQ_F3, REQ_J, REQ_LOGK = 10, 11, 12, 13

(C_PHASE, C_K, C_REJECTED, C_RECOMP, C_FINISHED, C_CALLSTEPS, C_PIECE, C_NPIECES,
 C_NITER, C_TGT) = range(C_SIZE, C_SIZE + 10)
C_ALL = C_SIZE + 10
(L_HABS, L_HOLD, L_ENOLD, L_MINSTEP, L_H, L_TNEW, L_RATE, L_DWOLD, L_ERRN, L_SAFETY,
 L_FACTOR, L_QTOP, L_QACC) = range(13)
L_SIZE = 13
# work arrays: wk[W_*] of shape (3, n) and wv[V_*] of shape (n,)
W_Z0, W_W, W_DW = range(3)
W_SIZE = 3
V_SCALE, V_YNEW, V_ZE, V_ERR, V_TMP, V_FR, V_DR = range(7)
V_SIZE = 7
# and wc[WC_*] of shape (n,), complex: Newton's complex right-hand side and solution
WC_FC, WC_DC = range(2)
WC_SIZE = 2
(PH_START, PH_ATTEMPT, PH_NEWTON, PH_STAGES, PH_JRETRY, PH_ERROR, PH_REEVAL, PH_DECIDE,
 PH_FNEW, PH_JNEW, PH_FINISH, PH_QUAD, PH_CHECKS, PH_INIT, PH_INITF, PH_INITJ) = range(16)


@njit(cache=True, error_model="numpy")
def _point(t, z, tq, Yq):
    """The one point (t, z) of a REQ_F1 or REQ_J request."""
    tq[0] = t
    for i in range(z.shape[0]):
        Yq[0, i] = z[i]


@njit(cache=True, error_model="numpy")
def _stage_points(t, y, h, Z, tq, Yq):
    n = y.shape[0]
    for a in range(3):
        tq[a] = t + h * C[a]
        for i in range(n):
            Yq[a, i] = y[i] + Z[a, i]


@njit(cache=True, error_model="numpy")
def _quad_points(s, o, y_old, Q, piece, pieces, tq, Yq):
    """The three Gauss-Legendre nodes of quadrature piece ``piece`` (``Driver._clock_time``)."""
    a, b = s[S_TOLD], s[S_T]
    step = (b - a) / pieces
    lo = a + piece * step
    hi = b if piece == pieces - 1 else a + (piece + 1) * step
    mid, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
    for g in range(3):
        tq[g] = mid + half * _GX[g]
        _dense_at(tq[g], a, b - a, y_old, Q, Yq[g])
    return half


@njit(cache=True, error_model="numpy")
def _machine(y, f, J, Z, Q, y_old, LUr, pr, er, LUc, pc, ec, floor, atol, s, c, o, L, wk, wv,
             wc, tq, Yq, Fq, Lq, tg, sv, svt, max_steps, budget):
    """Radau's steps from where c[C_PHASE] left off until a request (REQ_*: the points are
    in tq, Yq) or a status (RUNNING ... BUDGET).  scipy 1.17's ``Radau._step_impl`` and
    ``solve_collocation_system``, cut at their evaluations of fun and jac.  The ends are
    the targets tg[c[C_TGT]:] (s[S_TBOUND] the current one): the state and log t at each
    one reached go to sv, svt, and the solver goes on to the next as ``resume`` would;
    FINISHED at the last."""
    n = y.shape[0]
    direction = o[O_DIR]
    equil = o[O_EQUIL] != 0.0
    Z0, W, dW = wk[W_Z0], wk[W_W], wk[W_DW]
    scale, y_new, ZE, err, tmp = wv[V_SCALE], wv[V_YNEW], wv[V_ZE], wv[V_ERR], wv[V_TMP]
    fr, dr, fc, dc = wv[V_FR], wv[V_DR], wc[WC_FC], wc[WC_DC]
    while True:
        ph = c[C_PHASE]
        if ph == PH_INIT:  # scipy's Radau.__init__: f and J at the start
            _point(s[S_T], y, tq, Yq)
            c[C_PHASE] = PH_INITF
            return REQ_F1
        if ph == PH_INITF:
            for i in range(n):
                f[i] = Fq[0, i]
            c[C_PHASE] = PH_INITJ
            return REQ_J
        if ph == PH_INITJ:
            if o[O_WEIGHTS] != 0.0:
                _floor(J, y, floor)
                c[C_FLOOR] = 1
            c[C_PHASE] = PH_START
            return RUNNING
        if ph == PH_START:
            if c[C_CALLSTEPS] >= max_steps:
                return RUNNING
            t = s[S_T]
            s[S_HPLAN] = s[S_H]
            if direction * (s[S_TBOUND] - t) <= 0:
                # already at the end (a target equal to the last one: OdeSolver.step's
                # shortcut, no step; a step of length 0 would divide by h = 0)
                c[C_FINISHED] = 1
                c[C_PHASE] = PH_CHECKS
                continue
            L[L_MINSTEP] = 10 * abs(np.nextafter(t, direction * np.inf) - t)
            h_abs = s[S_H]
            if h_abs > o[O_MAXSTEP]:
                L[L_HABS], L[L_HOLD], L[L_ENOLD] = o[O_MAXSTEP], np.nan, np.nan
            elif h_abs < L[L_MINSTEP]:
                L[L_HABS], L[L_HOLD], L[L_ENOLD] = L[L_MINSTEP], np.nan, np.nan
            else:
                L[L_HABS], L[L_HOLD], L[L_ENOLD] = h_abs, s[S_HOLD], s[S_ENOLD]
            c[C_REJECTED] = 0
            c[C_PHASE] = PH_ATTEMPT
            continue
        t = s[S_T]
        if ph == PH_ATTEMPT:
            h_abs = L[L_HABS]
            if h_abs < L[L_MINSTEP]:
                c[C_PHASE] = PH_START
                return TOO_SMALL
            t_new = t + h_abs * direction
            if direction * (t_new - s[S_TBOUND]) > 0:
                t_new = s[S_TBOUND]
            h = t_new - t
            L[L_TNEW], L[L_H], L[L_HABS] = t_new, h, abs(h)
            if c[C_SOL]:
                h_prev = t - s[S_TOLD]
                for a in range(3):
                    _dense_at(t + h * C[a], s[S_TOLD], h_prev, y_old, Q, tmp)
                    for i in range(n):
                        Z0[a, i] = tmp[i] - y[i]
            else:
                Z0[:] = 0.0
            _weights(y, y, abs(h), t, f, atol, floor, o, c, scale)
            c[C_PHASE] = PH_NEWTON
            continue
        h = L[L_H]
        if ph == PH_NEWTON:  # a Newton iteration from Z0 on the current LU
            if not c[C_LUOK]:
                _factor(J, h, LUr, pr, er, LUc, pc, ec, equil)
                c[C_NLU] += 2
                c[C_LUOK] = 1
            for a in range(3):
                for i in range(n):
                    W[a, i] = TI[a, 0] * Z0[0, i] + TI[a, 1] * Z0[1, i] + TI[a, 2] * Z0[2, i]
                    Z[a, i] = Z0[a, i]
            L[L_DWOLD], L[L_RATE] = -1.0, -1.0
            c[C_K] = 0
            _stage_points(t, y, h, Z, tq, Yq)
            c[C_PHASE] = PH_STAGES
            return REQ_F3
        if ph == PH_STAGES:  # the stages' F in Fq: one iteration
            k = c[C_K]
            done, converged = False, False
            finite = True
            for a in range(3):
                for i in range(n):
                    if not math.isfinite(Fq[a, i]):
                        finite = False
            if not finite:
                done = True
            else:
                mr = MU_REAL / h
                mc = complex(MU_COMPLEX_RE / h, MU_COMPLEX_IM / h)
                for i in range(n):
                    # F.T.dot(TI_REAL), F.T.dot(TI_COMPLEX): TI_REAL = TI[0], TI_COMPLEX = TI[1] + 1j TI[2]
                    fr[i] = (Fq[0, i] * TI[0, 0] + Fq[1, i] * TI[0, 1] + Fq[2, i] * TI[0, 2]) - mr * W[0, i]
                    fc[i] = (complex(Fq[0, i] * TI[1, 0] + Fq[1, i] * TI[1, 1] + Fq[2, i] * TI[1, 2],
                                     Fq[0, i] * TI[2, 0] + Fq[1, i] * TI[2, 1] + Fq[2, i] * TI[2, 2])
                             - mc * complex(W[1, i], W[2, i]))
                _solve(LUr, pr, er, fr, dr)
                _solve(LUc, pc, ec, fc, dc)
                ss = 0.0
                for i in range(n):
                    dW[0, i] = dr[i]
                    dW[1, i] = dc[i].real
                    dW[2, i] = dc[i].imag
                for a in range(3):
                    for i in range(n):
                        v = dW[a, i] / scale[i]
                        ss += v * v
                dW_norm = math.sqrt(ss) / math.sqrt(3.0 * n)
                rate = L[L_RATE]
                if L[L_DWOLD] >= 0.0:
                    rate = dW_norm / L[L_DWOLD]
                    L[L_RATE] = rate
                tol = o[O_NTOL]
                if rate >= 0.0 and (rate >= 1 or rate ** (NEWTON_MAXITER - k) / (1 - rate) * dW_norm > tol):
                    done = True
                else:
                    for a in range(3):
                        for i in range(n):
                            W[a, i] += dW[a, i]
                    for a in range(3):
                        for i in range(n):
                            Z[a, i] = T[a, 0] * W[0, i] + T[a, 1] * W[1, i] + T[a, 2] * W[2, i]
                    if dW_norm == 0 or (rate >= 0.0 and rate / (1 - rate) * dW_norm < tol):
                        done, converged = True, True
                    else:
                        L[L_DWOLD] = dW_norm
                        if k + 1 == NEWTON_MAXITER:
                            done = True
            if not done:
                c[C_K] = k + 1
                _stage_points(t, y, h, Z, tq, Yq)
                return REQ_F3
            c[C_NITER] = k + 1
            if converged:
                c[C_PHASE] = PH_ERROR
            elif c[C_CURJAC]:  # diverged on a fresh Jacobian: halve the step
                L[L_HABS] = L[L_HABS] * 0.5
                c[C_LUOK] = 0
                c[C_PHASE] = PH_ATTEMPT
            else:
                _point(t, y, tq, Yq)
                c[C_PHASE] = PH_JRETRY
                return REQ_J
            continue
        if ph == PH_JRETRY:  # J is fresh at (t, y): Newton again
            if o[O_WEIGHTS] != 0.0:
                _floor(J, y, floor)
                c[C_FLOOR] = 1
            c[C_CURJAC] = 1
            c[C_LUOK] = 0
            c[C_PHASE] = PH_NEWTON
            continue
        if ph == PH_ERROR:
            for i in range(n):
                y_new[i] = y[i] + Z[2, i]
                ZE[i] = (Z[0, i] * E[0] + Z[1, i] * E[1] + Z[2, i] * E[2]) / h
                tmp[i] = f[i] + ZE[i]
            _solve(LUr, pr, er, tmp, err)
            _test_weights(y, y_new, L[L_HABS], t, f, atol, floor, o, c, scale)
            for i in range(n):
                tmp[i] = err[i] / scale[i]
            L[L_ERRN] = _norm(tmp)
            L[L_SAFETY] = 0.9 * (2 * NEWTON_MAXITER + 1) / (2 * NEWTON_MAXITER + c[C_NITER])
            if c[C_REJECTED] and L[L_ERRN] > 1:
                for i in range(n):
                    tmp[i] = y[i] + err[i]
                _point(t, tmp, tq, Yq)
                c[C_PHASE] = PH_REEVAL
                return REQ_F1
            c[C_PHASE] = PH_DECIDE
            continue
        if ph == PH_REEVAL:
            for i in range(n):
                tmp[i] = Fq[0, i] + ZE[i]
            _solve(LUr, pr, er, tmp, err)
            for i in range(n):
                tmp[i] = err[i] / scale[i]
            L[L_ERRN] = _norm(tmp)
            c[C_PHASE] = PH_DECIDE
            continue
        if ph == PH_DECIDE:
            h_abs, error_norm = L[L_HABS], L[L_ERRN]
            if error_norm > 1:
                factor = _predict(h_abs, L[L_HOLD], error_norm, L[L_ENOLD])
                L[L_HABS] = h_abs * max(MIN_FACTOR, L[L_SAFETY] * factor)
                c[C_LUOK] = 0
                c[C_REJECTED] = 1
                c[C_PHASE] = PH_ATTEMPT
                continue
            c[C_RECOMP] = 1 if (c[C_NITER] > 2 and L[L_RATE] > o[O_THETA]) else 0
            factor = min(MAX_FACTOR, L[L_SAFETY] * _predict(h_abs, L[L_HOLD], error_norm, L[L_ENOLD]))
            if not c[C_RECOMP] and factor < 1.2:
                factor = 1.0
            else:
                c[C_LUOK] = 0
            L[L_FACTOR] = factor
            for i in range(n):
                y_old[i] = y[i]
                y[i] = y_new[i]
            _point(L[L_TNEW], y, tq, Yq)
            c[C_PHASE] = PH_FNEW
            return REQ_F1
        if ph == PH_FNEW:
            for i in range(n):
                f[i] = Fq[0, i]
            if c[C_RECOMP]:
                c[C_PHASE] = PH_JNEW
                return REQ_J  # at (t_new, y_new), still in tq[0], Yq[0]
            c[C_CURJAC] = 0
            c[C_PHASE] = PH_FINISH
            continue
        if ph == PH_JNEW:
            if o[O_WEIGHTS] != 0.0:
                _floor(J, y, floor)
                c[C_FLOOR] = 1
            c[C_CURJAC] = 1
            c[C_PHASE] = PH_FINISH
            continue
        if ph == PH_FINISH:  # the step is accepted
            s[S_HOLD] = s[S_H]
            s[S_ENOLD] = L[L_ERRN]
            s[S_H] = L[L_HABS] * L[L_FACTOR]
            s[S_TOLD] = t
            s[S_T] = L[L_TNEW]
            _q_of(Z, Q)
            c[C_SOL] = 1
            c[C_STEPS] += 1
            c[C_CALLSTEPS] += 1
            if c[C_STEPS] > budget:
                c[C_PHASE] = PH_START
                return BUDGET
            c[C_FINISHED] = 1 if direction * (s[S_T] - s[S_TBOUND]) >= 0 else 0
            if o[O_QUAD] != 0.0:
                a, b = s[S_TOLD], s[S_T]
                c[C_NPIECES] = max(1, int(math.ceil((b - a + math.exp(b) - math.exp(a)) / _TIME_PIECE)))
                c[C_PIECE] = 0
                L[L_QTOP], L[L_QACC] = s[S_LOGT], 1.0  # streaming log-sum-exp, from log t
                _quad_points(s, o, y_old, Q, c[C_PIECE], c[C_NPIECES], tq, Yq)
                c[C_PHASE] = PH_QUAD
                return REQ_LOGK
            c[C_PHASE] = PH_CHECKS
            continue
        if ph == PH_QUAD:  # log kappa at a piece's nodes in Lq
            half = _quad_points(s, o, y_old, Q, c[C_PIECE], c[C_NPIECES], tq, Yq)
            for g in range(3):
                v = math.log(_GW[g] * half) + math.exp(tq[g]) + tq[g] - Lq[g]
                if v > L[L_QTOP]:
                    L[L_QACC] = L[L_QACC] * math.exp(L[L_QTOP] - v) + 1.0
                    L[L_QTOP] = v
                else:
                    L[L_QACC] += math.exp(v - L[L_QTOP])
            c[C_PIECE] += 1
            if c[C_PIECE] < c[C_NPIECES]:
                _quad_points(s, o, y_old, Q, c[C_PIECE], c[C_NPIECES], tq, Yq)
                return REQ_LOGK
            s[S_LOGT] = L[L_QTOP] + math.log(L[L_QACC])
            c[C_PHASE] = PH_CHECKS
            continue
        if ph == PH_CHECKS:
            c[C_PHASE] = PH_START
            if c[C_FINISHED]:
                j = c[C_TGT]
                for i in range(n):
                    sv[j, i] = y[i]
                svt[j] = s[S_LOGT]
                if j + 1 >= tg.shape[0]:
                    return FINISHED
                c[C_TGT] = j + 1  # on to the next end, as CompiledRadau.resume
                s[S_TBOUND] = tg[j + 1]
                planned = s[S_HPLAN]
                if abs(s[S_T] - s[S_TOLD]) < 0.99 * planned and s[S_H] < planned:
                    s[S_H], s[S_HOLD], s[S_ENOLD] = planned, np.nan, np.nan
                    c[C_LUOK] = 0
                continue
            if o[O_REANCHOR] > 0.0 and abs(s[S_T] - s[S_TOLD]) < o[O_REANCHOR] * abs(s[S_T]):
                return REANCHOR
            if o[O_WATCH] != 0.0 and _sigma_rate(y, f, int(o[O_WATCH_D])) > o[O_RATE]:
                return STALLED
            continue


# -- the machine as one C function --------------------------------------------------------
# A binding (``_drive``) that called ``_machine`` as a numba function would link the
# machine's code into its own, and numba optimises and generates a binding's code whole:
# ~3.5 s of every binding's compile (the flow has three, each test's user functions one)
# went into the machine again.  As a C function it is compiled once (numba's cache), its
# address registered with LLVM under a name (as _kernels/lapack.py does for LAPACK), and
# every binding calls it by that name.
_F, _I, _Z = types.CPointer(types.float64), types.CPointer(types.int64), types.CPointer(types.complex128)
_MACHINE_POINTERS = (_F, _F, _F, _F, _F, _F, _F, _I, _F, _Z, _I, _F, _F, _F, _F, _I, _F, _F, _F, _F,
                     _Z, _F, _F, _F, _F, _F, _F, _F)
_MACHINE_SIG = types.int64(*_MACHINE_POINTERS, types.int64, types.int64, types.int64, types.int64)
_MACHINE_SYMBOL = "flowkit_radau_machine"
_MACHINE = types.ExternalFunction(_MACHINE_SYMBOL, types.int64(
    *(len(_MACHINE_POINTERS) * [types.voidptr]), types.int64, types.int64, types.int64, types.int64))


def _machine_c(y, f, J, Z, Q, y_old, LUr, pr, er, LUc, pc, ec, floor, atol, s, c, o, L, wk, wv,
               wc, tq, Yq, Fq, Lq, tg, sv, svt, n, ntg, max_steps, budget):
    """``_machine`` on raw pointers (the arrays' shapes from n and the number of targets)."""
    return _machine(carray(y, (n,)), carray(f, (n,)), carray(J, (n, n)), carray(Z, (3, n)),
                    carray(Q, (n, 3)), carray(y_old, (n,)), carray(LUr, (n, n)), carray(pr, (n,)),
                    carray(er, (n,)), carray(LUc, (n, n)), carray(pc, (n,)), carray(ec, (n,)),
                    carray(floor, (2, n)), carray(atol, (n,)), carray(s, (S_SIZE,)),
                    carray(c, (C_ALL,)), carray(o, (O_SIZE,)), carray(L, (L_SIZE,)),
                    carray(wk, (W_SIZE, 3, n)), carray(wv, (V_SIZE, n)), carray(wc, (WC_SIZE, n)),
                    carray(tq, (3,)), carray(Yq, (3, n)), carray(Fq, (3, n)), carray(Lq, (3,)),
                    carray(tg, (ntg,)), carray(sv, (ntg, n)), carray(svt, (ntg,)), max_steps, budget)


_REGISTERED = []


def _register_machine():
    """Compile (or load from numba's cache) the machine as a C function and register its
    address under _MACHINE_SYMBOL, once per process, before any binding is compiled or
    loaded."""
    if not _REGISTERED:
        fn = cfunc(_MACHINE_SIG, cache=True, error_model="numpy")(_machine_c)
        llb.add_symbol(_MACHINE_SYMBOL, fn.address)
        _REGISTERED.append(fn)  # keeps the code alive


# -- the loop bound to a system's rhs / jac / logk (``specialise``) -------------------------

def _drive(y, f, J, Z, Q, y_old, LUr, pr, er, LUc, pc, ec, floor, atol, s, c, o, L, wk, wv,
           wc, tq, Yq, Fq, Lq, tg, sv, svt, args, max_steps, budget):
    """``_machine`` answered with the system's functions at sigma = hi + (lo + t): up to
    ``max_steps`` accepted steps (the call's count restarts), or the set-up if
    c[C_PHASE] = PH_INIT.  Returns the machine's status."""
    n = y.shape[0]
    hi, lo = o[O_HI], o[O_LO]
    c[C_CALLSTEPS] = 0
    while True:
        r = _MACHINE(y.ctypes, f.ctypes, J.ctypes, Z.ctypes, Q.ctypes, y_old.ctypes, LUr.ctypes,
                     pr.ctypes, er.ctypes, LUc.ctypes, pc.ctypes, ec.ctypes, floor.ctypes, atol.ctypes,
                     s.ctypes, c.ctypes, o.ctypes, L.ctypes, wk.ctypes, wv.ctypes, wc.ctypes, tq.ctypes,
                     Yq.ctypes, Fq.ctypes, Lq.ctypes, tg.ctypes, sv.ctypes, svt.ctypes, n, tg.shape[0],
                     max_steps, budget)
        if r == REQ_F3 or r == REQ_F1:
            for a in range(3 if r == REQ_F3 else 1):
                F = rhs(hi + (lo + tq[a]), Yq[a], args)  # noqa: F821 (bound by specialise)
                c[C_NFEV] += 1
                for i in range(n):
                    Fq[a, i] = F[i]
        elif r == REQ_J:
            A = jac(hi + (lo + tq[0]), Yq[0], args)  # noqa: F821
            c[C_NJEV] += 1
            for i in range(n):
                for j in range(n):
                    J[i, j] = A[i, j]
        elif r == REQ_LOGK:
            ny = int(o[O_QUAD])
            for g in range(3):
                Lq[g] = logk(tq[g], Yq[g, :ny], args)  # noqa: F821
        else:
            return r


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
    """``_drive`` bound to one system's numba ``rhs``, ``jac``, ``logk``: an njit function
    named ``_drive_<name>_<source hash>`` in numba's cache (``cache=False`` for functions
    that are not in importable modules, such as closures)."""
    _register_machine()
    tag = f"{name}_{_source_tag()}" if cache else name
    g = dict(globals())
    g.update(rhs=rhs, jac=jac, logk=logk)
    fn = pytypes.FunctionType(_drive.__code__, g, f"_drive_{tag}", _drive.__defaults__)
    fn.__qualname__ = fn.__name__
    fn.__module__ = __name__
    fn.__doc__ = _drive.__doc__
    return njit(cache=cache, error_model="numpy")(fn)
