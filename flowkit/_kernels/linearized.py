"""Numba kernels of the tangent-kernel (linearised) model (math.md, "Tangent-kernel
(linearised) model"; driver in :mod:`flowkit.linearized`).

The linearised predictor obeys dw̄/dt = K r(w̄), K = 2 D² alpha^{2D-2}, r = L g,
g = Xtᵀ softmax(-Xt w̄).  Along it dgamma~/dt = K L |g|², so in log-loss time

    dw̄/dgamma~ = g / |g|²,        dt/dgamma~ = e^{gamma~} / (K |g|²):

the path w̄(gamma~) does not depend on D or alpha at all (they only scale the time t).
State, against sigma = log gamma~ (as for the flow, _kernels/flow.py):

* v = w̄ / gamma~ (O(1) for all gamma~; v -> ḡ/|ḡ|² as gamma~ -> 0, ḡ the mean row):
      dv/dsigma = g/|g|² - v;
* omega = log(t kappa) - gamma~ with kappa = K |g|² (the flow's omega):
      domega/dsigma = gamma~ expm1(-omega) + d log kappa/dsigma;
* past XI_SWITCH (flow.py) the margin offsets xi = m - gamma~ are states as well, for the
  same reason as in the flow (O(1) gaps that float64 would only resolve to ~eps gamma~
  as differences of O(gamma~) margins, and a stiff v):
      dxi/dsigma = gamma~ (a - pᵀa + Lambda),  a = Xt g/|g|²,  p = softmax(-xi),
  Lambda = log(mean e^{-xi}) (pᵀa = 1 identically; Lambda = 0 on the exact solution).
  These are the flow's xi equations with the parameter weights q = e^{(2D-2) delta} set
  to 1: the linearised model is the flow with its tangent kernel frozen at u = alpha·1.
  With xi in the state, p no longer depends on v: the v-block of the Jacobian is -I.

Compile time: written as the flow's kernels are (flow.py's docstring, "Compile time"):
two jitted entry points called from Python, ``want_jac`` a run-time bool, no slice
assignment from an array, no np.outer; products and broadcasts are loops computing the
same expressions in the same order, and the BLAS calls (``@``, ``np.dot``) stay, on
arrays of the same layout, since they set the rounding.  Same bits as before.

The same layouts as the flow, so the flow's driver (flowkit.driver) runs it unchanged:
(v, omega) below XI_SWITCH, (v, xi, omega) up to TIME_SWITCH, (v, xi) past it.
"""
import math

import numpy as np
from numba import njit

from .flow import softmax_margins, softmax_offsets


@njit(cache=True)
def _evaluate(sigma, z, Xt, want_jac):
    """State (v[, omega]) below XI_SWITCH: p from the margins m = gamma~ Xt v.
    Called from Python (module docstring, "Compile time")."""
    N, d = Xt.shape
    n = z.shape[0]
    timed = n > d
    gam = math.exp(sigma)
    w = np.empty(d)
    for i in range(d):
        w[i] = gam * z[i]
    _, p, _ = softmax_margins(Xt, w)
    g = Xt.T @ p
    G2 = np.dot(g, g)
    f = np.empty(n)
    for i in range(d):
        f[i] = g[i] / G2 - z[i]
    # C = Xtᵀ(diag p - p pᵀ) Xt = Xtᵀ (p ⊙ Xt) - g gᵀ
    pX = np.empty((N, d))
    for k in range(N):
        for i in range(d):
            pX[k, i] = p[k] * Xt[k, i]
    C = Xt.T @ pX                                       # BLAS
    for i in range(d):
        for k in range(d):
            C[i, k] = C[i, k] - g[i] * g[k]
    Cg = C @ g
    if timed:
        # d log kappa/dsigma = 2 gᵀ dg/dsigma / |g|², dg/dsigma = -gamma~ C u
        f[d] = gam * math.expm1(-z[d]) - 2.0 * gam * np.dot(g, Cg) / (G2 * G2)
    if not want_jac:
        return f, np.empty((0, 0))
    J = np.zeros((n, n))
    # d u/d v = (I/|g|² - 2 g gᵀ/|g|⁴) dg/dv,  dg/dv = -gamma~ C
    mg = -gam
    G4 = G2 * G2
    for i in range(d):
        for k in range(d):
            J[i, k] = mg * (C[i, k] / G2 - 2.0 * (g[i] * Cg[k]) / G4)
        J[i, i] -= 1.0
    # omega row: only its own derivative (omega never feeds back), as in the flow
    if timed:
        J[d, d] = -gam * math.exp(-z[d])
    return f, J


@njit(cache=True)
def _xi_evaluate(sigma, z, Xt, want_jac):
    """State (v, xi[, omega]) past XI_SWITCH.  Called from Python (module docstring)."""
    N, d = Xt.shape
    n = z.shape[0]
    timed = n > d + N
    gam = math.exp(sigma)
    p, Lam = softmax_offsets(z[d:d + N])
    g = Xt.T @ p
    G2 = np.dot(g, g)
    u = np.empty(d)
    for i in range(d):
        u[i] = g[i] / G2
    av = Xt @ u
    f = np.empty(n)
    for i in range(d):
        f[i] = u[i] - z[i]
    pav = np.dot(p, av)
    for k in range(N):
        f[d + k] = gam * (av[k] - pav + Lam)
    Gx = np.empty((d, N))                               # dg/dxi = -Xtᵀ(diag p - p pᵀ)
    for i in range(d):
        for m in range(N):
            Gx[i, m] = -(Xt[m, i] * p[m]) + g[i] * p[m]
    gGx = g @ Gx                                        # BLAS
    lSx = np.empty(N)                                   # d log |g|²/dxi
    for m in range(N):
        lSx[m] = 2.0 * gGx[m] / G2
    if timed:
        f[n - 1] = gam * math.expm1(-z[n - 1]) + np.dot(lSx, f[d:d + N])
    if not want_jac:
        return f, np.empty((0, 0))
    J = np.zeros((n, n))
    Ux = np.empty((d, N))                               # du/dxi
    for i in range(d):
        J[i, i] = -1.0
        for m in range(N):
            Ux[i, m] = Gx[i, m] / G2 - u[i] * lSx[m]
            J[i, d + m] = Ux[i, m]
    # pᵀa = 1 identically: its derivatives vanish; d Lambda/d xi = -p
    XU = Xt @ Ux                                        # BLAS
    for k in range(N):
        for m in range(N):
            J[d + k, d + m] = gam * XU[k, m]
            J[d + k, d + m] -= gam * p[m]
    if timed:
        J[n - 1, n - 1] = -gam * math.exp(-z[n - 1])
    return f, J


# Two entry points only, called from Python: the driver's rhs/jac wrappers, the margin
# offsets and d log kappa/dsigma are thin Python around them (flowkit.linearized).
evaluate = _evaluate
xi_evaluate = _xi_evaluate
