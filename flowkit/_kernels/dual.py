"""Numba kernel of the dual formulation (flowkit/dual.py): one pass over the features.

For a state zeta (N) and weights p (N) it computes, feature by feature i,

    ytil_i = (Xtᵀ zeta)_i,   g_i = (Xtᵀ p)_i,
    delta± from ytil (D = 2: ±phi ytil / 2;  D > 2: -log1p(∓t)/a, t = a phi ytil / 2),
    E1_i = e^{(2D-2) delta+} + e^{(2D-2) delta-},   E2_i = e^{(3D-4) delta+} - e^{(3D-4) delta-},

and accumulates S~ = Σ E1 g², B = Σ E2 g³ and v = Xt (E1 g) -- reading each row of
Xtᵀ once, which is what sets the cost at d >> N (one pass over the N x d data per
right-hand side, where the primal state needs several).  With ``jac`` it also keeps
E1, E2 g (the diagonals of the two Gram matrices of the Jacobian, formed by BLAS in
flowkit/dual.py) and a1 = Xt (E2 g²).

It does so for K states at once (Radau's three stages), reading each row once.

``ok`` is False when some |t| >= 1 (D > 2: outside the domain of the map ytil -> w,
which only a trial state of an implicit solver can reach) or a weight overflows; the
caller turns that into a NaN right-hand side, which makes the solver shrink its step.
"""
import math

import numpy as np
from numba import njit

from .flow import _scales, softmax_offsets


@njit(cache=True, fastmath={"reassoc", "contract"})
def _weights(yt, phi, a, k1, power):
    """(E1, E2) of one feature at ytil = yt (module docstring); NaN outside the domain."""
    if a == 0.0:
        # delta± = ±u/2, u = phi ytil: e^{(2D-2) delta±} = e^{±u} = e^{(3D-4) delta±}
        # two exps, not 1/e^u: a trial state far out (Newton's) underflows e^{-|u|} to 0,
        # and overflow then makes the weights inf, which the caller rejects
        u = phi * yt
        ep = math.exp(u)
        em = math.exp(-u)
        return ep + em, ep - em
    t = 0.5 * a * phi * yt
    if not abs(t) < 1.0:
        return math.nan, math.nan
    # e^{-a delta±} = 1 ∓ t: e^{(2D-2) delta±} = (1 ∓ t)^{-(2D-2)/a}, e^{(3D-4) delta±} = that / (1 ∓ t)
    rp = 1.0 / (1.0 - t)
    rm = 1.0 / (1.0 + t)
    if power > 0:  # (2D-2)/a an integer (D = 3, 4): multiplications instead of exp/log
        qp = rp
        qm = rm
        for _ in range(power - 1):
            qp *= rp
            qm *= rm
    else:
        qp = math.exp(-k1 / a * math.log1p(-t))
        qm = math.exp(-k1 / a * math.log1p(t))
    return qp + qm, qp * rp - qm * rm


@njit(cache=True, fastmath={"reassoc", "contract"})
def _accumulate(yt, g, phi, a, k1, power, St, B, k):
    """Add one feature's terms to S~[k] and B[k]; its coefficient E1 g in v."""
    e1, e2 = _weights(yt, phi, a, k1, power)
    St[k] += e1 * g * g
    B[k] += e2 * g * g * g
    return e1 * g


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def dual_pass(XtT, Z, P, phi, D, jac, E1, E2g, a1, V, St, B):
    """ok; fills, for each of the K rows of Z, P (K x N) and phi (K), V[k] (N), St[k] and
    B[k] and, if jac (K = 1), E1 and E2g (d) and a1 (N).  XtT is d x N.  Each row of XtT
    is read once for all K states (Radau's three stages: ``flowkit.radau``); K = 3 has its
    own loop, with the three stages' dot products fused and two features per iteration
    (1.3 ms against 2.2 ms for the general loop at N = 200, d = 10,000).  The sums are over
    features, so a caller may split XtT's rows between threads and add the parts
    (flowkit/dual.py does; the kernel releases the GIL)."""
    d, N = XtT.shape
    K = Z.shape[0]
    a = D - 2.0
    k1 = 2.0 * D - 2.0
    power = 0
    if a > 0.0 and k1 / a == math.floor(k1 / a):
        power = int(k1 / a)
    for k in range(K):
        St[k] = 0.0
        B[k] = 0.0
        for n in range(N):
            V[k, n] = 0.0
    for n in range(N):
        a1[n] = 0.0
    if K == 3 and not jac:
        # two features per iteration: each load of zeta, p and v serves both rows
        # (1.31 ms against 1.56 ms at N = 200, d = 10,000)
        z0, z1, z2, p0, p1, p2, v0, v1, v2 = Z[0], Z[1], Z[2], P[0], P[1], P[2], V[0], V[1], V[2]
        i = 0
        while i < d:
            ra = XtT[i]
            rb = XtT[i + 1] if i + 1 < d else XtT[i]  # odd d: the last row once (cb = 0 below)
            ya0 = ya1 = ya2 = ga0 = ga1 = ga2 = 0.0
            yb0 = yb1 = yb2 = gb0 = gb1 = gb2 = 0.0
            for n in range(N):
                xa = ra[n]
                xb = rb[n]
                za = z0[n]
                zb = z1[n]
                zc = z2[n]
                pa = p0[n]
                pb = p1[n]
                pc = p2[n]
                ya0 += xa * za
                ya1 += xa * zb
                ya2 += xa * zc
                ga0 += xa * pa
                ga1 += xa * pb
                ga2 += xa * pc
                yb0 += xb * za
                yb1 += xb * zb
                yb2 += xb * zc
                gb0 += xb * pa
                gb1 += xb * pb
                gb2 += xb * pc
            ca0 = _accumulate(ya0, ga0, phi[0], a, k1, power, St, B, 0)
            ca1 = _accumulate(ya1, ga1, phi[1], a, k1, power, St, B, 1)
            ca2 = _accumulate(ya2, ga2, phi[2], a, k1, power, St, B, 2)
            cb0 = cb1 = cb2 = 0.0
            if i + 1 < d:
                cb0 = _accumulate(yb0, gb0, phi[0], a, k1, power, St, B, 0)
                cb1 = _accumulate(yb1, gb1, phi[1], a, k1, power, St, B, 1)
                cb2 = _accumulate(yb2, gb2, phi[2], a, k1, power, St, B, 2)
            for n in range(N):
                xa = ra[n]
                xb = rb[n]
                v0[n] += xa * ca0 + xb * cb0
                v1[n] += xa * ca1 + xb * cb1
                v2[n] += xa * ca2 + xb * cb2
            i += 2
    else:
        c = np.empty(K)
        for i in range(d):
            row = XtT[i]
            for k in range(K):
                zk = Z[k]
                pk = P[k]
                yt = 0.0
                g = 0.0
                for n in range(N):
                    yt += row[n] * zk[n]
                    g += row[n] * pk[n]
                e1, e2 = _weights(yt, phi[k], a, k1, power)
                St[k] += e1 * g * g
                B[k] += e2 * g * g * g
                c[k] = e1 * g
                if jac:
                    E1[i] = e1
                    E2g[i] = e2 * g
                    q = e2 * g * g
                    for n in range(N):
                        a1[n] += row[n] * q
            for k in range(K):
                vk = V[k]
                ck = c[k]
                for n in range(N):
                    vk[n] += row[n] * ck
    for k in range(K):
        if not (math.isfinite(St[k]) and math.isfinite(B[k]) and St[k] > 0.0):
            return False
    return True


@njit(cache=True)
def dual_to_psi(XtT, zeta, phi, D):
    """psi = delta+ - delta- for every feature (the primal state is y = psi / phi)."""
    d, N = XtT.shape
    a = D - 2.0
    psi = np.empty(d)
    for i in range(d):
        yt = 0.0
        for n in range(N):
            yt += XtT[i, n] * zeta[n]
        if a == 0.0:
            psi[i] = phi * yt
        else:
            t = 0.5 * a * phi * yt
            psi[i] = (math.log1p(t) - math.log1p(-t)) / a
    return psi


# weights below this are 0 to every digit the flow keeps; flushed, because subnormal
# operands slow the pass over the data by orders of magnitude
TINY = 1e-250


@njit(cache=True)
def prepare(sigmas, Z, N, A, phi, Pw, Lam):
    """Per state k of Z (zeta, xi[, omega]) at sigmas[k]: phi, p = softmax(-xi) (tiny
    weights flushed to 0) and Lambda = log(mean e^{-xi})."""
    for k in range(Z.shape[0]):
        logphi, _, _ = _scales(sigmas[k], A)
        phi[k] = math.exp(logphi)
        p, Lam[k] = softmax_offsets(Z[k, N:2 * N])
        for m in range(N):
            Pw[k, m] = p[m] if p[m] >= TINY else 0.0


@njit(cache=True)
def finish(sigmas, Z, Pw, Lam, V, St, B, D, A, F):
    """The right-hand sides F[k] from dual_pass's sums (flowkit/dual.py, module docstring)."""
    K, n = Z.shape
    N = Pw.shape[1]
    timed = n > 2 * N
    for k in range(K):
        gam = math.exp(sigmas[k])
        _, beta, log1pR = _scales(sigmas[k], A)
        cs = 2.0 * math.exp(log1pR) / D / St[k]
        pav = 0.0
        for m in range(N):
            pav += Pw[k, m] * (V[k, m] / St[k])
        lsx = 0.0
        for m in range(N):
            F[k, m] = cs * Pw[k, m] - beta * Z[k, m]
            av = V[k, m] / St[k]
            fx = gam * (av - pav + Lam[k])
            F[k, N + m] = fx
            lsx += 2.0 * Pw[k, m] * (1.0 - av) * fx
        if timed:
            R = math.exp(sigmas[k] - A)
            F[k, n - 1] = (gam * math.expm1(-Z[k, n - 1]) + (2.0 * D - 2.0) / D * R * B[k] / (St[k] * St[k])
                           + lsx)
