"""The flow's right-hand sides, dense Jacobians and log kappa (``flow``) in the calling
convention of the compiled Radau step (``radau.specialise``): ``f(t, z, args)`` with
args = (Xt, D, log alpha^D), one triple per state-variable mode of flowkit.system:

* mode 0, z = y: ``rhs0`` / ``jac0`` (flow.Flow.fun / jac);
* mode 1, z = (y, xi, omega): ``rhs1`` / ``jac1`` (Flow.fun_xi / jac_xi);
* mode 2, z = (y, xi): ``rhs2`` (the xi rows in double-double, Flow.fun_xi_dd) / ``jac1``.

Each is the same arithmetic as the Python entry points of ``flow``, which call the same
jitted evaluators; only the Gram matrix Xt diag(q) Xtᵀ of jac1 is a GEMM here instead of
structured.gram's two SYRKs (rounding only).  (These are jitted wrappers, which link
their callees' call trees: a compile of their own, paid once per machine, in the step's
specialisation.)  A jitted caller passes ``np.empty(0)`` for flow._NO_FACTORS, which numba
would freeze as a read-only constant.
"""
import math

import numpy as np
from numba import njit

from .flow import (_common0, _common_xi, _scales, dense_jac0, dense_xi_jac, offsets,
                   xi_block)
from .xi_rates import xi_rates


@njit(cache=True, error_model="numpy")
def rhs0(t, z, args):
    """``flow.rhs`` for z = y (mode 0 carries no omega: its time is a quadrature), as loops
    over one buffer: no temporaries, no BLAS call (each cost ~0.1 us on 3 x 3 data, and the
    step makes ~8 calls per step)."""
    Xt, D, A = args
    N, d = Xt.shape
    a = D - 2.0
    c = 2.0 * D - 2.0
    logphi, beta, log1pR = _scales(t, A)
    phi = math.exp(logphi)
    eA = math.exp(A)
    buf = np.empty(3 * d + N)
    dp, dm, g, m = buf[:d], buf[d:2 * d], buf[2 * d:3 * d], buf[3 * d:]
    for k in range(N):
        m[k] = 0.0
    top = -math.inf
    for i in range(d):
        u, v, _, _ = offsets(phi * z[i], D)
        dp[i], dm[i] = u, v
        top = max(top, u, v)
        if D * max(u, v) < 30.0:  # _w_of, with alpha^D hoisted
            w = eA * (math.expm1(D * u) - math.expm1(D * v))
        else:
            w = math.exp(A + D * u) - math.exp(A + D * v)
        for k in range(N):
            m[k] += Xt[k, i] * w
    _softmax_into(m)
    St = _grad_into(Xt, m, dp, dm, g, c * top, c)
    base = log1pR - math.log(D) - c * top - math.log(St)
    f = np.empty(d)
    for i in range(d):
        f[i] = (math.exp(base + a * dp[i]) + math.exp(base + a * dm[i])) * g[i] - beta * z[i]
    return f


@njit(cache=True, error_model="numpy")
def _softmax_into(m):
    """m <- softmax(-m) in place; returns log of the shifted sum's Z and the shift."""
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
def _grad_into(Xt, p, dp, dm, g, M, c):
    """g = Xtᵀp into g; returns S~ = Σ (e^{c dp - M} + e^{c dm - M}) g² (``flow._weights``)."""
    N, d = Xt.shape
    St = 0.0
    for i in range(d):
        acc = 0.0
        for k in range(N):
            acc += Xt[k, i] * p[k]
        g[i] = acc
        St += (math.exp(c * dp[i] - M) + math.exp(c * dm[i] - M)) * acc * acc
    return St


@njit(cache=True)
def jac0(t, z, args):
    Xt, D, A = args
    N, d = Xt.shape
    out = np.empty(5 * d + N)
    jww = _common0(t, z, Xt, D, A, out)[1]
    return dense_jac0(Xt, out[:d], out[d:2 * d], out[2 * d:3 * d], out[5 * d:],
                      out[3 * d:4 * d], out[4 * d:5 * d], jww, z.shape[0])


@njit(cache=True, error_model="numpy")
def logk0(t, y, args):
    """``flow.log_kappa`` as loops (``rhs0``)."""
    Xt, D, A = args
    N, d = Xt.shape
    c = 2.0 * D - 2.0
    phi = math.exp(_scales(t, A)[0])
    eA = math.exp(A)
    buf = np.empty(3 * d + N)
    dp, dm, g, m = buf[:d], buf[d:2 * d], buf[2 * d:3 * d], buf[3 * d:]
    for k in range(N):
        m[k] = 0.0
    top = -math.inf
    for i in range(d):
        u, v, _, _ = offsets(phi * y[i], D)
        dp[i], dm[i] = u, v
        top = max(top, u, v)
        if D * max(u, v) < 30.0:
            w = eA * (math.expm1(D * u) - math.expm1(D * v))
        else:
            w = math.exp(A + D * u) - math.exp(A + D * v)
        for k in range(N):
            m[k] += Xt[k, i] * w
    _softmax_into(m)
    St = _grad_into(Xt, m, dp, dm, g, c * top, c)
    return 2.0 * math.log(D) + c / D * A + c * top + math.log(St)


@njit(cache=True, error_model="numpy")
def rhs1(t, z, args):
    """``flow.xi_rhs`` for z = (y, xi[, omega]) as loops over one buffer (``rhs0``)."""
    Xt, D, A = args
    N, d = Xt.shape
    n = z.shape[0]
    timed = n > d + N
    a = D - 2.0
    c = 2.0 * D - 2.0
    gam = math.exp(t)
    logphi, beta, log1pR = _scales(t, A)
    phi = math.exp(logphi)
    buf = np.empty(5 * d + 2 * N)
    dp, dm, sp, sm, g = (buf[:d], buf[d:2 * d], buf[2 * d:3 * d], buf[3 * d:4 * d],
                         buf[4 * d:5 * d])
    p, av = buf[5 * d:5 * d + N], buf[5 * d + N:]
    top = -math.inf
    for i in range(d):
        dp[i], dm[i], sp[i], sm[i] = offsets(phi * z[i], D)
        top = max(top, dp[i], dm[i])
    for k in range(N):
        p[k] = z[d + k]
    Z, xmin = _softmax_into(p)
    Lam = math.log(Z / N) - xmin
    M = c * top
    St = _grad_into(Xt, p, dp, dm, g, M, c)
    base = log1pR - math.log(D) - M - math.log(St)
    f = np.empty(n)
    for k in range(N):
        av[k] = 0.0
    ly = 0.0  # lSy . (b g), for omega's row
    for i in range(d):
        qp = math.exp(c * dp[i] - M)
        qm = math.exp(c * dm[i] - M)
        qg = (qp + qm) * g[i]
        bg = (math.exp(base + a * dp[i]) + math.exp(base + a * dm[i])) * g[i]
        f[i] = bg - beta * z[i]
        for k in range(N):
            av[k] += Xt[k, i] * qg
        if timed:
            ly += c * phi * (qp * sp[i] - qm * sm[i]) * g[i] * g[i] / St * bg
    pav = 0.0
    for k in range(N):
        av[k] /= St
        pav += p[k] * av[k]
    lx = 0.0  # lSx . xi'
    for k in range(N):
        f[d + k] = gam * (av[k] - pav + Lam)
        lx += 2.0 * p[k] * (1.0 - av[k]) * f[d + k]
    if timed:
        f[n - 1] = gam * math.expm1(-z[n - 1]) + ly + lx
    return f


@njit(cache=True)
def jac1(t, z, args):
    Xt, D, A = args
    N, d = Xt.shape
    out = np.empty(6 * d + 4 * N)
    _, St, gam, jww = _common_xi(t, z, Xt, D, A, out)
    delta, b, bg, lSy, h, q = (out[:d], out[d:2 * d], out[2 * d:3 * d], out[3 * d:4 * d],
                               out[4 * d:5 * d], out[5 * d:6 * d])
    o = 6 * d
    p, e1, u, av = out[o:o + N], out[o + N:o + 2 * N], out[o + 2 * N:o + 3 * N], out[o + 3 * N:]
    B = np.empty((N, d))
    for m in range(N):
        for i in range(d):
            B[m, i] = Xt[m, i] * q[i]
    Jxx = xi_block(B @ Xt.T, St, p, av, e1, gam)
    return dense_xi_jac(Xt, delta, b, p, bg, lSy, e1, h, u, Jxx, jww, z.shape[0])


@njit(cache=True, error_model="numpy")
def rhs2(t, z, args):
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
