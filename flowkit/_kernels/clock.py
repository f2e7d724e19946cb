"""Numba kernels of the physical-time clock (flowkit/clock.py): gradient flow in the
per-feature offsets psi (flow.py's coordinates, before the 1/phi scaling) against the scaled
time tau = D alpha^{D-2} t.

From du±/dt = ±D u±^{D-1} L g (math.md, "Gradient flow"; L = e^{-gamma~}, g = Xtᵀ p),
theta± = log alpha + delta± and psi = delta+ - delta-:

    d psi/d tau = L (e^{a delta+} + e^{a delta-}) g,     a = D - 2.

Its Jacobian, with b = e^{a delta+} + e^{a delta-}, b' = db/dpsi, v = dw/dpsi and
C = Xtᵀ(diag p - p pᵀ) Xt (dg/dw = -C, dL/dpsi = -L (g v)ᵀ):

    J = L [diag(b' g) - diag(b) C diag(v)] - L (b g)(g v)ᵀ
      = L [diag(b' g) - diag(b) Xtᵀ diag(p) Xt diag(v)]

(the two rank-one terms cancel), i.e. structured.Jacobian0's form with its rank-one column
zero.  L is O(1) wherever this clock runs (gamma~ < flow.XI_SWITCH), so it is formed.
"""
import math

import numpy as np
from numba import njit

from .flow import _NO_FACTORS, _w_of, offsets, psi_to_w, softmax_margins

# e^{-gamma~} at a Newton trial state far from the flow (gamma~ very negative): capped
# so that the right-hand side is large and finite and the trial is rejected, not raised
_MAX_EXP = 700.0


@njit(cache=True)
def _time_common(psi, Xt, D, A, out):
    """(f, gamma~): d psi/d tau and gamma~ at psi; if out is not empty, the Jacobian's
    factors written to out = [L b' g | L b | v | p] (3 d + N).  Called from Python."""
    N, d = Xt.shape
    a = D - 2.0
    dp = np.empty(d)
    dm = np.empty(d)
    sp = np.empty(d)
    sm = np.empty(d)
    w = np.empty(d)
    for i in range(d):
        dp[i], dm[i], sp[i], sm[i] = offsets(psi[i], D)
        w[i] = _w_of(dp[i], dm[i], D, A)
    _, p, gam = softmax_margins(Xt, w)
    g = Xt.T @ p
    L = math.exp(min(-gam, _MAX_EXP))
    f = np.empty(d)
    for i in range(d):
        f[i] = L * (math.exp(a * dp[i]) + math.exp(a * dm[i])) * g[i]
    if out.shape[0] == 0:
        return f, gam
    for i in range(d):
        ep, em = math.exp(a * dp[i]), math.exp(a * dm[i])
        out[i] = L * a * (ep * sp[i] - em * sm[i]) * g[i]
        out[d + i] = L * (ep + em)
        out[2 * d + i] = D * (math.exp(A + D * dp[i]) * sp[i] + math.exp(A + D * dm[i]) * sm[i])
    for k in range(N):
        out[3 * d + k] = p[k]
    return f, gam


def time_rhs(psi, Xt, D, A):
    """d psi / d tau."""
    return _time_common(psi, Xt, D, A, _NO_FACTORS)[0]


def time_gamma(psi, Xt, D, A):
    """gamma~ at psi (the state's own, from its margins)."""
    return softmax_margins(Xt, psi_to_w(psi, D, A))[2]


def time_jac_factors(psi, Xt, D, A):
    """(delta, b, v, p, f, gamma~) with J = diag(delta) + diag(b) Xtᵀ diag(p) Xt diag(-v)
    (module docstring): structured.Jacobian0's factors with a zero rank-one column."""
    N, d = Xt.shape
    out = np.empty(3 * d + N)
    f, gam = _time_common(psi, Xt, D, A, out)
    return out[:d], out[d:2 * d], out[2 * d:3 * d], out[3 * d:], f, gam


@njit(cache=True)
def climb_scores(psi, Xt, D, A, floor):
    """(1/T_i, sign g_i): |g_i| e^{a delta_i} on the growing side (delta+ for g_i > 0,
    delta- for g_i < 0), the rate at which feature i's climb nears its blow-up
    (flowkit/clock.py); -inf where |g_i| <= floor max|g| (grown features, g ~ rounding)."""
    d = psi.shape[0]
    a = D - 2.0
    dp = np.empty(d)
    dm = np.empty(d)
    w = np.empty(d)
    for i in range(d):
        dp[i], dm[i], _, _ = offsets(psi[i], D)
        w[i] = _w_of(dp[i], dm[i], D, A)
    _, p, _ = softmax_margins(Xt, w)
    g = Xt.T @ p
    gmax = 0.0
    for i in range(d):
        gmax = max(gmax, abs(g[i]))
    score = np.empty(d)
    sign = np.empty(d)
    for i in range(d):
        sign[i] = 1.0 if g[i] > 0 else -1.0
        if abs(g[i]) > floor * gmax:
            score[i] = abs(g[i]) * math.exp(a * (dp[i] if g[i] > 0 else dm[i]))
        else:
            score[i] = -np.inf
    return score, sign
