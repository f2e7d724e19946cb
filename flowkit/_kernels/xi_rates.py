"""The margin-offset rates dxi/dsigma = gamma~ (a - pᵀa + Lambda) in double-double.

Why (flow.py, "Past XI_SWITCH"; measured in tests/test_large_gamma.py): pᵀa = 1
identically and a_k ~ 1 on the support, so float64 leaves a - pᵀa with an error of
~eps that the factor gamma~ turns into ~eps gamma~ of noise, and the noise is not a
smooth function of the state.  Past gamma~ ~ 1e10 it exceeded the tolerance that
Radau's Newton iteration must reach on a sample leaving the support (its offset is
only weakly damped there): on ``fig3d``, D = 2, alpha = 1e5, mu = 0.05 the steps fell
to h ~ 1e-6 for 3,300 steps, and alpha = 1e6 ran out of steps at gamma~ ~ 3e12.

Here the whole chain from the state to the rates -- psi = phi y, the offsets delta±,
the weights q = e^{(2D-2) delta - M}, p = softmax(-xi), g = Xtᵀp, q g, S = gᵀ(q g),
a = Xt(q g)/S, Lambda = log(mean e^{-xi}) -- runs in double-double (``_kernels.dd``),
on the float64 state taken as exact, so the rates carry ~1e-31 gamma~ of error
instead of ~1e-16 gamma~.  Only the result is rounded to float64.  The rest of the
right-hand side and the Jacobian stay in float64: they cancel nothing.
"""
import math

import numpy as np
from numba import njit

from . import dd


@njit(cache=True)
def _half_log(xh, xl):
    """f(x) = log((1 + e^x)/2) = max(x, 0) + log((1 + e^{-|x|})/2), double-double."""
    if xh >= 0.0:
        eh, el = dd.exp(-xh, -xl)
    else:
        eh, el = dd.exp(xh, xl)
    eh, el = dd.add_d(eh, el, 1.0)
    lh, ll = dd.log(0.5 * eh, 0.5 * el)
    if xh >= 0.0:
        return dd.add(lh, ll, xh, xl)
    return lh, ll


@njit(cache=True)
def xi_rates(sigma, y, xi, Xt, D, A, out):
    """Write gamma~ (a_k - pᵀa + Lambda) to out[:N], and p, a (rounded) to out[N:2N],
    out[2N:3N], for the state (y, xi) at sigma = log gamma~ (flow.py's notation)."""
    N, d = Xt.shape
    a = D - 2.0
    c = 2.0 * D - 2.0
    # phi = R/(1+R) = 1/(1 + e^{-log R}), log R = sigma - A exactly
    lh, ll = dd.two_sum(sigma, -A)
    eh, el = dd.exp(-lh, -ll)
    eh, el = dd.add_d(eh, el, 1.0)
    ph, pl = dd.div(1.0, 0.0, eh, el)

    # the exponents (2D-2) delta± and their largest hi part M (a shift, exact as chosen)
    ep_h = np.empty(d)
    ep_l = np.empty(d)
    em_h = np.empty(d)
    em_l = np.empty(d)
    for i in range(d):
        sh, sl = dd.mul_d(ph, pl, y[i])  # psi_i
        if a == 0.0:
            dph, dpl = 0.5 * sh, 0.5 * sl
            dmh, dml = -dph, -dpl
        else:
            xh, xl = dd.mul_d(sh, sl, a)
            dph, dpl = _half_log(xh, xl)
            dmh, dml = _half_log(-xh, -xl)
            dph, dpl = dd.div(dph, dpl, a, 0.0)
            dmh, dml = dd.div(dmh, dml, a, 0.0)
        ep_h[i], ep_l[i] = dd.mul_d(dph, dpl, c)
        em_h[i], em_l[i] = dd.mul_d(dmh, dml, c)
    M = ep_h[0]
    for i in range(d):
        M = max(M, ep_h[i], em_h[i])
    q_h = np.empty(d)
    q_l = np.empty(d)
    for i in range(d):
        uh, ul = dd.add_d(ep_h[i], ep_l[i], -M)
        vh, vl = dd.add_d(em_h[i], em_l[i], -M)
        uh, ul = dd.exp(uh, ul)
        vh, vl = dd.exp(vh, vl)
        q_h[i], q_l[i] = dd.add(uh, ul, vh, vl)

    # p = softmax(-xi), Lambda = log(mean e^{-xi}) = log(Z/N) - xmin
    xmin = xi[0]
    for k in range(N):
        xmin = min(xmin, xi[k])
    p_h = np.empty(N)
    p_l = np.empty(N)
    zh, zl = 0.0, 0.0
    for k in range(N):
        uh, ul = dd.two_sum(xi[k], -xmin)
        p_h[k], p_l[k] = dd.exp(-uh, -ul)
        zh, zl = dd.add(zh, zl, p_h[k], p_l[k])
    for k in range(N):
        p_h[k], p_l[k] = dd.div(p_h[k], p_l[k], zh, zl)
    Lh, Ll = dd.div(zh, zl, float(N), 0.0)  # zh / N would round
    Lh, Ll = dd.log(Lh, Ll)
    Lh, Ll = dd.add_d(Lh, Ll, -xmin)

    # g = Xtᵀp, q g, S = gᵀ(q g)
    qg_h = np.empty(d)
    qg_l = np.empty(d)
    Sh, Sl = 0.0, 0.0
    for i in range(d):
        gh, gl = 0.0, 0.0
        for k in range(N):
            th, tl = dd.mul_d(p_h[k], p_l[k], Xt[k, i])
            gh, gl = dd.add(gh, gl, th, tl)
        qg_h[i], qg_l[i] = dd.mul(q_h[i], q_l[i], gh, gl)
        th, tl = dd.mul(qg_h[i], qg_l[i], gh, gl)
        Sh, Sl = dd.add(Sh, Sl, th, tl)

    if not Sh > 0.0:
        # a Newton trial state far out (y ~ 1e20, xi ~ 1e49: every q g² underflows): the
        # rates are undefined there, and NaN makes the solver reject the trial; dividing
        # would raise ZeroDivisionError out of the compiled code instead
        for k in range(3 * N):
            out[k] = math.nan
        return
    # a = Xt(q g)/S and pᵀa
    a_h = np.empty(N)
    a_l = np.empty(N)
    pah, pal = 0.0, 0.0
    for k in range(N):
        nh, nl = 0.0, 0.0
        for i in range(d):
            th, tl = dd.mul_d(qg_h[i], qg_l[i], Xt[k, i])
            nh, nl = dd.add(nh, nl, th, tl)
        a_h[k], a_l[k] = dd.div(nh, nl, Sh, Sl)
        th, tl = dd.mul(p_h[k], p_l[k], a_h[k], a_l[k])
        pah, pal = dd.add(pah, pal, th, tl)

    gam = math.exp(sigma)
    for k in range(N):
        rh, rl = dd.add(a_h[k], a_l[k], -pah, -pal)
        rh, rl = dd.add(rh, rl, Lh, Ll)
        out[k] = gam * (rh + rl)
        out[N + k] = p_h[k]
        out[2 * N + k] = a_h[k]
