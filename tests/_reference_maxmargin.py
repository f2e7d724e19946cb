"""Independent reference solvers for the max-margin problems of the test-suite.

numpy + scipy only; nothing from ``flowkit`` is used.  ``Xt`` is the N x d matrix whose
rows are x~_n = y_n x_n, with N small (enumeration over support sets, N <= ~12).

* ``l2_max_margin(Xt)``            min ||w||_2      s.t. Xt w >= 1
* ``l1_max_margin(Xt)``            min ||w||_1      s.t. Xt w >= 1   (HiGHS LP; may be non-unique)
* ``q_mu_max_margin(Xt, mu, D)``   min sum_i q_D(w_i/mu) s.t. Xt w >= 1

Q_mu method: for every support set S with linearly independent rows, the equations
x~_n^T mu h_D(Xt_S^T nu_S) = 1 (n in S) are the gradient of the strictly convex, coercive
G(nu) = mu sum_i H_D((Xt_S^T nu)_i) - sum(nu), minimised by damped Newton from nu = 0
(Armijo backtracking; for D > 2 the iterates stay in |Xt_S^T nu|_inf < 1).  A candidate is
kept if nu_S >= 0 and the other margins are >= 1 (KKT residual <= tol); the primal is strictly
convex, so every kept candidate is the optimum, and ties (at a kink) are broken by objective.
"""
from itertools import combinations

import numpy as np
from scipy.optimize import brentq, linprog


# ---------------------------------------------------------------- potentials
def h(v, D):
    """h_D: 2 sinh(v) for D = 2, else (1-v)^(-p) - (1+v)^(-p), p = D/(D-2), on (-1, 1)."""
    v = np.asarray(v, float)
    if D == 2:
        return 2.0 * np.sinh(v)
    p = D / (D - 2.0)
    return np.expm1(-p * np.log1p(-v)) - np.expm1(-p * np.log1p(v))


def dh(v, D):
    """Derivative h_D'(v) (> 0)."""
    v = np.asarray(v, float)
    if D == 2:
        return 2.0 * np.cosh(v)
    p = D / (D - 2.0)
    return p * (np.exp(-(p + 1) * np.log1p(-v)) + np.exp(-(p + 1) * np.log1p(v)))


def H(v, D):
    """H_D(v) = int_0^v h_D, written without cancellation near v = 0."""
    v = np.asarray(v, float)
    if D == 2:
        return 4.0 * np.sinh(v / 2) ** 2          # = 2 cosh v - 2
    a = 2.0 / (D - 2.0)
    return (D - 2.0) / 2.0 * (np.expm1(-a * np.log1p(-v)) + np.expm1(-a * np.log1p(v)))


def h_inv(z, D):
    """Inverse of h_D (elementwise).  For D > 2 solved for t = 1 - |v| to keep digits near |v| = 1."""
    z = np.asarray(z, float)
    if D == 2:
        return np.arcsinh(z / 2)
    p = D / (D - 2.0)
    out = np.zeros_like(z)
    for k, zk in np.ndenumerate(z):
        a = abs(zk)
        if a == 0:
            continue
        f = lambda t: np.exp(-p * np.log(t)) - np.exp(-p * np.log1p(1 - t)) - a
        lo, hi = (a + 1) ** (-1 / p), min(1.0, a ** (-1 / p))   # bracket for t
        t = brentq(f, lo, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)
        out[k] = np.sign(zk) * (1 - t)
    return out


def q(z, D):
    """q_D(z); Q^D_mu(w) = sum(q(w / mu, D))."""
    z = np.asarray(z, float)
    if D == 2:
        r = np.sqrt(4 + z * z)
        return -z * z / (2 + r) + z * np.arcsinh(z / 2)   # 2 - sqrt(4+z^2) + z asinh(z/2)
    v = h_inv(z, D)
    return z * v - H(v, D)


def Q(w, mu, D=2):
    """Objective sum_i q_D(w_i / mu)."""
    return float(np.sum(q(np.asarray(w, float) / mu, D)))


# ---------------------------------------------------------------- residuals
def q_mu_kkt_residual(Xt, mu, w, nu, depth=2):
    """Relative KKT residual of (w, nu) for min Q^D_mu s.t. Xt w >= 1 (max of the parts below).

    stationarity  |h^-1(w/mu) - Xt^T nu|_inf / max(1, |Xt^T nu|_inf)
    feasibility   max(0, 1 - Xt w) / scale,  scale = max(1, max_n sum_i |x~_ni w_i|)
    complementarity  max_n nu_n |x~_n^T w - 1| / (scale max(1, |nu|_inf))
    dual sign     max(0, -min nu) / max(1, |nu|_inf)
    """
    Xt, w, nu = (np.asarray(a, float) for a in (Xt, w, nu))
    s, m = Xt.T @ nu, Xt @ w
    scale = max(1.0, float(np.max(np.abs(Xt) @ np.abs(w))))
    nscale = max(1.0, float(np.max(np.abs(nu))))
    return max(float(np.max(np.abs(h_inv(w / mu, depth) - s))) / max(1.0, float(np.max(np.abs(s)))),
               max(0.0, float(np.max(1 - m))) / scale,
               float(np.max(np.abs(nu * (m - 1)))) / (scale * nscale),
               max(0.0, -float(np.min(nu))) / nscale)


def _supports(Xt):
    """Candidate support sets: all index subsets of linearly independent rows."""
    N = Xt.shape[0]
    for k in range(1, min(N, Xt.shape[1]) + 1):
        for S in combinations(range(N), k):
            if np.linalg.matrix_rank(Xt[list(S)]) == k:
                yield S


# ---------------------------------------------------------------- l2 / l1
def l2_max_margin(Xt, tol=1e-12):
    """Exact min ||w||_2 s.t. Xt w >= 1.  Returns (w, support) with support a tuple of indices."""
    Xt = np.asarray(Xt, float)
    best = None
    for S in _supports(Xt):
        A = Xt[list(S)]
        nuS = np.linalg.solve(A @ A.T, np.ones(len(S)))
        w = A.T @ nuS
        m = Xt @ w
        scale = max(1.0, float(np.max(np.abs(Xt) @ np.abs(w))))
        ok = (nuS.min() >= -tol * max(1.0, nuS.max())
              and max(0.0, float(np.max(1 - m))) <= tol * scale
              and float(np.max(np.abs(m[list(S)] - 1))) <= tol * scale)
        if ok and (best is None or w @ w < best[0] @ best[0]):
            best = (w, S)
    if best is None:
        raise ValueError("l2_max_margin: no KKT point (data not linearly separable?)")
    return best


def l1_max_margin(Xt):
    """min ||w||_1 s.t. Xt w >= 1 by HiGHS LP (w = a - b, a, b >= 0).  May be non-unique."""
    Xt = np.asarray(Xt, float)
    N, d = Xt.shape
    res = linprog(np.ones(2 * d), A_ub=-np.hstack([Xt, -Xt]), b_ub=-np.ones(N),
                  bounds=(0, None), method="highs",
                  options=dict(primal_feasibility_tolerance=1e-10, dual_feasibility_tolerance=1e-10))
    if res.status != 0:
        raise ValueError("l1_max_margin: " + res.message)
    return res.x[:d] - res.x[d:]


# ---------------------------------------------------------------- Q_mu
def _newton_support(A, mu, D, maxit=500):
    """Minimise G(nu) = mu sum H(A^T nu) - sum(nu); returns (nu, max |A w - 1|)."""
    one = np.ones(A.shape[0])

    def G(nu):
        s = A.T @ nu
        if D != 2 and np.max(np.abs(s)) >= 1:
            return np.inf
        with np.errstate(over="ignore", invalid="ignore"):
            val = mu * np.sum(H(s, D)) - nu.sum()
        return val if np.isfinite(val) else np.inf

    def grad(nu):
        with np.errstate(over="ignore", invalid="ignore"):
            return mu * A @ h(A.T @ nu, D) - one

    nu = np.zeros(A.shape[0])
    g = grad(nu)
    best = (nu, np.max(np.abs(g)))
    stall = 0
    for _ in range(maxit):
        gn = np.max(np.abs(g))
        if gn <= 1e-16:
            break
        s = A.T @ nu
        step = -np.linalg.solve(mu * (A * dh(s, D)) @ A.T, g)
        dec, G0, t = -g @ step, G(nu), 1.0
        while t > 1e-40:
            new = nu + t * step
            Gn = G(new)
            if np.isfinite(Gn):
                gnew = grad(new)
                # Armijo on G; near the solution (roundoff in G) accept any gradient decrease
                if Gn <= G0 - 1e-4 * t * dec or (gn < 1e-6 and np.max(np.abs(gnew)) < gn):
                    break
            t /= 2
        else:
            break
        nu, g = new, gnew
        gn_new = np.max(np.abs(g))
        if gn_new < best[1]:
            best, stall = (nu, gn_new), 0
        elif gn < 1e-6:
            stall += 1
            if stall >= 3:
                break
    return best


def q_mu_max_margin(Xt, mu, depth=2, tol=1e-12):
    """Q^D_mu max-margin point: min sum_i q_D(w_i/mu) s.t. Xt w >= 1.

    Returns (w, nu, support): w = mu h_D(Xt^T nu), nu >= 0 (length N), support a tuple of the
    indices with nu_n > 0 in the chosen candidate.  Raises ValueError if no candidate passes
    the KKT check ``q_mu_kkt_residual <= tol``.
    """
    Xt, D, mu = np.asarray(Xt, float), depth, float(mu)
    if D < 2:
        raise ValueError("depth must be >= 2")
    best = None
    for S in _supports(Xt):
        nuS, gmax = _newton_support(Xt[list(S)], mu, D)
        if not gmax <= 1e-10:
            continue
        nu = np.zeros(Xt.shape[0])
        nu[list(S)] = nuS
        w = mu * h(Xt.T @ nu, D)
        r = q_mu_kkt_residual(Xt, mu, w, nu, D)
        if r <= tol:
            obj = Q(w, mu, D)
            if best is None or obj < best[0]:
                best = (obj, w, nu, S)
    if best is None:
        raise ValueError("q_mu_max_margin: no KKT point found (not separable, or tol too tight)")
    return best[1], best[2], best[3]
