"""The flow's right-hand sides, dense Jacobians and log kappa (``flow``) in the calling
convention of the compiled Radau step (``radau.specialise``): ``f(t, z, args)`` with
args = (Xt, D, log alpha^D), one triple per state-variable mode of flowkit.system:

* mode 0, z = y: ``rhs0`` / ``jac0`` / ``logk0`` (flow.Flow.fun / jac / _log_kappa);
* mode 1, z = (y, xi, omega): ``rhs1`` / ``jac1`` (Flow.fun_xi / jac_xi);
* mode 2, z = (y, xi): ``rhs2`` (the xi rows in double-double, Flow.fun_xi_dd) / ``jac1``.

The formulas are those of ``_kernels/flow.py`` (its docstrings derive them; the Jacobians'
factors are ``jac_factors`` and ``xi_jac_factors``), written here as scalar loops over one
buffer per call: no temporary arrays and no BLAS call.  On 3 x 3 data the array form cost
~1.2 us per right-hand side, ~2.5 us per Jacobian, and 4-7 s of compile per kernel (every
array expression is a loop nest of its own); the step evaluates ~8 right-hand sides per
step.  The results differ from the array form by rounding (sums in loop order;
tests/test_fast_kernels.py).  The xi rows of mode 2 stay ``xi_rates``' double-double.
"""
import math

import numpy as np
from numba import njit

from .flow import LOG2, _scales
from .xi_rates import xi_rates


@njit(cache=True, error_model="numpy")
def _offsets_fused(psi, D):
    """``flow.offsets`` from one exponential: with x = a psi, delta± = f(±x)/a and
    d delta±/d psi = sigmoid(±x) share e^{-|x|} (|x| >= 1/2: the same operations as
    offsets, bit for bit) or expm1(x) (|x| < 1/2, where f(x) ~ x/2 needs it: rounding
    apart), instead of four exponentials and two logarithms (D > 2)."""
    a = D - 2.0
    if a == 0.0:
        return 0.5 * psi, -0.5 * psi, 0.5, 0.5
    x = a * psi
    if abs(x) < 0.5:
        em = math.expm1(x)
        return (math.log1p(0.5 * em) / a, math.log1p(-0.5 * em / (1.0 + em)) / a,
                (1.0 + em) / (2.0 + em), 1.0 / (2.0 + em))
    u = math.exp(-abs(x))
    lo = math.log1p(u)
    if x > 0.0:
        return (x + lo - LOG2) / a, (lo - LOG2) / a, 1.0 / (1.0 + u), u / (1.0 + u)
    return (lo - LOG2) / a, (-x + lo - LOG2) / a, u / (1.0 + u), 1.0 / (1.0 + u)


@njit(cache=True, error_model="numpy")
def _offsets_into(t, y, D, A, dp, dm, sp, sm):
    """delta±, their psi-derivatives sp, sm (``flow.offsets``) for the first d entries of y;
    returns (phi, log phi, beta, log(1+R), max delta)."""
    logphi, beta, log1pR = _scales(t, A)
    phi = math.exp(logphi)
    top = -math.inf
    for i in range(dp.shape[0]):
        dp[i], dm[i], sp[i], sm[i] = _offsets_fused(phi * y[i], D)
        top = max(top, dp[i], dm[i])
    return phi, logphi, beta, log1pR, top


@njit(cache=True, error_model="numpy")
def _margins_into(Xt, dp, dm, D, A, m):
    """m = Xt w with w = alpha^D (e^{D dp} - e^{D dm}) (``flow._w_of``, alpha^D hoisted)."""
    N, d = Xt.shape
    eA = math.exp(A)
    for k in range(N):
        m[k] = 0.0
    for i in range(d):
        u, v = dp[i], dm[i]
        if D * max(u, v) < 30.0:
            w = eA * (math.expm1(D * u) - math.expm1(D * v))
        else:
            w = math.exp(A + D * u) - math.exp(A + D * v)
        for k in range(N):
            m[k] += Xt[k, i] * w


@njit(cache=True, error_model="numpy")
def _softmax_into(m):
    """m <- softmax(-m) in place; returns (Z, shift) of the shifted sum."""
    N = m.shape[0]
    mmin = m[0]
    for k in range(1, N):
        mmin = min(mmin, m[k])
    Z = 0.0
    for k in range(N):
        m[k] = math.exp(-(m[k] - mmin))
        Z += m[k]
    for k in range(N):
        m[k] /= Z
    return Z, mmin


@njit(cache=True, error_model="numpy")
def _weights_into(Xt, p, dp, dm, M, c, g, qp, qm):
    """g = Xtᵀp, q± = e^{c delta± - M}; returns S~ = Σ (q+ + q-) g² (``flow._weights``)."""
    N, d = Xt.shape
    St = 0.0
    for i in range(d):
        acc = 0.0
        for k in range(N):
            acc += Xt[k, i] * p[k]
        g[i] = acc
        qp[i] = math.exp(c * dp[i] - M)
        qm[i] = math.exp(c * dm[i] - M)
        St += (qp[i] + qm[i]) * acc * acc
    return St


@njit(cache=True, error_model="numpy")
def _slots(buf, d, N):
    """The shared part of a buffer: delta+, delta-, their psi-derivatives, g, q+, q- (d
    each) and p (N), the layout of ``_primal`` and ``_dual``."""
    return (buf[:d], buf[d:2 * d], buf[2 * d:3 * d], buf[3 * d:4 * d], buf[4 * d:5 * d],
            buf[5 * d:6 * d], buf[6 * d:7 * d], buf[7 * d:7 * d + N])


@njit(cache=True, error_model="numpy")
def _primal(t, z, Xt, D, A, buf):
    """The shared part of mode 0: buf = [dp | dm | sp | sm | g | q+ | q- | p] (7 d + N);
    returns (phi, log phi, beta, log(1+R), M, S~)."""
    N, d = Xt.shape
    dp, dm, sp, sm, g, qp, qm, p = _slots(buf, d, N)
    phi, logphi, beta, log1pR, top = _offsets_into(t, z, D, A, dp, dm, sp, sm)
    _margins_into(Xt, dp, dm, D, A, p)
    _softmax_into(p)
    M = (2.0 * D - 2.0) * top
    return phi, logphi, beta, log1pR, M, _weights_into(Xt, p, dp, dm, M, 2.0 * D - 2.0, g, qp, qm)


@njit(cache=True, error_model="numpy")
def _dual(t, z, Xt, D, A, buf):
    """The shared part past XI_SWITCH, p = softmax(-xi): buf as ``_primal``; returns
    (phi, beta, log(1+R), M, S~, Lambda)."""
    N, d = Xt.shape
    dp, dm, sp, sm, g, qp, qm, p = _slots(buf, d, N)
    phi, _, beta, log1pR, top = _offsets_into(t, z, D, A, dp, dm, sp, sm)
    for k in range(N):
        p[k] = z[d + k]
    Z, xmin = _softmax_into(p)
    M = (2.0 * D - 2.0) * top
    St = _weights_into(Xt, p, dp, dm, M, 2.0 * D - 2.0, g, qp, qm)
    return phi, beta, log1pR, M, St, math.log(Z / N) - xmin


@njit(cache=True, error_model="numpy")
def rhs0(t, z, args):
    """``flow.rhs`` for z = y (mode 0 carries no omega: its time is a quadrature)."""
    Xt, D, A = args
    N, d = Xt.shape
    a = D - 2.0
    buf = np.empty(7 * d + N)
    _, _, beta, log1pR, M, St = _primal(t, z, Xt, D, A, buf)
    dp, dm, g = buf[:d], buf[d:2 * d], buf[4 * d:5 * d]
    base = log1pR - math.log(D) - M - math.log(St)
    f = np.empty(d)
    e = math.exp(base)  # D = 2: e^{a delta±} = 1, one exp for all features
    for i in range(d):
        b = e + e if a == 0.0 else math.exp(base + a * dp[i]) + math.exp(base + a * dm[i])
        f[i] = b * g[i] - beta * z[i]
    return f


@njit(cache=True, error_model="numpy")
def logk0(t, y, args):
    """``flow.log_kappa``: log(D² alpha^{2D-2} S)."""
    Xt, D, A = args
    N, d = Xt.shape
    buf = np.empty(7 * d + N)
    M, St = _primal(t, y, Xt, D, A, buf)[4:]
    return 2.0 * math.log(D) + (2.0 * D - 2.0) / D * A + M + math.log(St)


@njit(cache=True, error_model="numpy")
def jac0(t, z, args):
    """The dense d x d Jacobian of ``rhs0``: diag(delta) + U Vᵀ of ``flow.jac_factors``,
    J_ik = delta_i [i = k] - b_i Σ_m Xt_mi p_m Xt_mk v_k + (b g)_i (g v - lS)_k."""
    Xt, D, A = args
    N, d = Xt.shape
    a = D - 2.0
    c = 2.0 * D - 2.0
    buf = np.empty(12 * d + 2 * N)
    phi, logphi, beta, log1pR, M, St = _primal(t, z, Xt, D, A, buf)
    dp, dm, sp, sm, g, qp, qm, p = _slots(buf, d, N)
    o = 7 * d + N
    b, v, delta, r2, qg = (buf[o:o + d], buf[o + d:o + 2 * d], buf[o + 2 * d:o + 3 * d],
                           buf[o + 3 * d:o + 4 * d], buf[o + 4 * d:o + 5 * d])
    xq = buf[o + 5 * d:]
    base = log1pR - math.log(D) - M - math.log(St)
    for i in range(d):
        cfp = math.exp(base + a * dp[i])
        cfm = math.exp(base + a * dm[i])
        b[i] = cfp + cfm
        v[i] = D * (math.exp(A + logphi + D * dp[i]) * sp[i] + math.exp(A + logphi + D * dm[i]) * sm[i])
        delta[i] = a * phi * (cfp * sp[i] - cfm * sm[i]) * g[i] - beta
        qg[i] = (qp[i] + qm[i]) * g[i]
    for k in range(N):  # p ⊙ Xt (q g)
        acc = 0.0
        for i in range(d):
            acc += Xt[k, i] * qg[i]
        xq[k] = p[k] * acc
    for i in range(d):
        Cqg = -g[i] * St
        for k in range(N):
            Cqg += Xt[k, i] * xq[k]
        dq = c * phi * (qp[i] * sp[i] - qm[i] * sm[i])
        r2[i] = g[i] * v[i] - (dq * g[i] * g[i] - 2.0 * v[i] * Cqg) / St
    J = np.empty((d, d))
    for i in range(d):
        bgi = b[i] * g[i]
        for k in range(d):
            acc = 0.0
            for m in range(N):
                acc += Xt[m, i] * p[m] * Xt[m, k]
            J[i, k] = -b[i] * acc * v[k] + bgi * r2[k]
        J[i, i] += delta[i]
    return J


@njit(cache=True, error_model="numpy")
def rhs1(t, z, args):
    """``flow.xi_rhs`` for z = (y, xi[, omega])."""
    Xt, D, A = args
    N, d = Xt.shape
    n = z.shape[0]
    timed = n > d + N
    a = D - 2.0
    c = 2.0 * D - 2.0
    gam = math.exp(t)
    buf = np.empty(7 * d + 2 * N)
    phi, beta, log1pR, M, St, Lam = _dual(t, z, Xt, D, A, buf)
    dp, dm, sp, sm, g, qp, qm, p = _slots(buf, d, N)
    av = buf[7 * d + N:]
    base = log1pR - math.log(D) - M - math.log(St)
    f = np.empty(n)
    e = math.exp(base)  # as in rhs0
    for k in range(N):
        av[k] = 0.0
    ly = 0.0  # d log S~/dy . (b g), for omega's row
    for i in range(d):
        qg = (qp[i] + qm[i]) * g[i]
        bg = (e + e if a == 0.0 else math.exp(base + a * dp[i]) + math.exp(base + a * dm[i])) * g[i]
        f[i] = bg - beta * z[i]
        for k in range(N):
            av[k] += Xt[k, i] * qg
        if timed:
            ly += c * phi * (qp[i] * sp[i] - qm[i] * sm[i]) * g[i] * g[i] / St * bg
    pav = 0.0
    for k in range(N):
        av[k] /= St
        pav += p[k] * av[k]
    lx = 0.0  # d log S~/dxi . xi'
    for k in range(N):
        f[d + k] = gam * (av[k] - pav + Lam)
        lx += 2.0 * p[k] * (1.0 - av[k]) * f[d + k]
    if timed:
        f[n - 1] = gam * math.expm1(-z[n - 1]) + ly + lx
    return f


@njit(cache=True, error_model="numpy")
def jac1(t, z, args):
    """The dense Jacobian of ``rhs1`` (and of ``rhs2``) from ``flow.xi_jac_factors``:

        J_yy  = diag(delta) - (b g) lSyᵀ,      J_yxi = -diag(b) Xtᵀ diag(p) + (b g) e1ᵀ,
        J_xiy = Xt diag(h) - u lSyᵀ,           J_xixi = gamma~ (-(Xt diag(q) Xtᵀ / S~) diag(p)
                                                                + a_v e1ᵀ - 1 pᵀ),

    and J_omega,omega = -gamma~ e^{-omega} when z carries omega (its other entries left out,
    as there)."""
    Xt, D, A = args
    N, d = Xt.shape
    n = z.shape[0]
    a = D - 2.0
    c = 2.0 * D - 2.0
    gam = math.exp(t)
    buf = np.empty(10 * d + 3 * N)
    phi, beta, log1pR, M, St, _ = _dual(t, z, Xt, D, A, buf)
    dp, dm, sp, sm, g, qp, qm, p = _slots(buf, d, N)
    o = 7 * d + N
    b, lSy, h = buf[o:o + d], buf[o + d:o + 2 * d], buf[o + 2 * d:o + 3 * d]
    av, e1 = buf[o + 3 * d:o + 3 * d + N], buf[o + 3 * d + N:]
    base = log1pR - math.log(D) - M - math.log(St)
    for k in range(N):
        av[k] = 0.0
    J = np.zeros((n, n))
    for i in range(d):
        cfp = math.exp(base + a * dp[i])
        cfm = math.exp(base + a * dm[i])
        b[i] = cfp + cfm
        dq = c * phi * (qp[i] * sp[i] - qm[i] * sm[i])
        lSy[i] = dq * g[i] * g[i] / St
        h[i] = gam * dq * g[i] / St
        J[i, i] = a * phi * (cfp * sp[i] - cfm * sm[i]) * g[i] - beta
        qg = (qp[i] + qm[i]) * g[i]
        for k in range(N):
            av[k] += Xt[k, i] * qg
    for k in range(N):
        av[k] /= St
        e1[k] = p[k] - 2.0 * p[k] * (1.0 - av[k])
    for i in range(d):
        bg = b[i] * g[i]
        for k in range(d):
            J[i, k] -= bg * lSy[k]
        for m in range(N):
            J[i, d + m] = -b[i] * Xt[m, i] * p[m] + bg * e1[m]
    for m in range(N):
        for i in range(d):
            J[d + m, i] = Xt[m, i] * h[i] - gam * av[m] * lSy[i]
        for k in range(N):
            G = 0.0  # (Xt diag(q) Xtᵀ)_mk
            for i in range(d):
                G += Xt[m, i] * (qp[i] + qm[i]) * Xt[k, i]
            J[d + m, d + k] = gam * (-G / St * p[k] + av[m] * e1[k] - p[k])
    if n > d + N:
        J[n - 1, n - 1] = -gam * math.exp(-z[n - 1])
    return J


@njit(cache=True, error_model="numpy")
def rhs2(t, z, args):
    """``rhs1`` for z = (y, xi) with the xi rows from ``xi_rates`` (double-double)."""
    Xt, D, A = args
    N, d = Xt.shape
    f = rhs1(t, z, args)
    out = np.empty(3 * N)
    xi_rates(t, z[:d], z[d:d + N], Xt, D, A, out)
    for m in range(N):
        f[d + m] = out[m]
    return f


@njit(cache=True)
def no_logk(t, y, args):
    """For modes without the time quadrature."""
    return 0.0
