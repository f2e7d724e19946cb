"""Independent reference solvers for max-margin KKT questions (numpy / scipy / mpmath only).

Nothing from ``flowkit`` is imported: these functions are what flowkit's own max-margin
solvers are tested against.  The potentials h_D, h_D^{-1}, H_D, q_D, Q^D_mu and the
support-enumeration solver ``q_mu_max_margin`` come from the (equally independent)
``_reference_maxmargin``.  ``Xt`` is always the N x d matrix whose rows are x~_n = y_n x_n.

Contents
--------
* ``q_mu_primal(Xt, mu, depth)``          Q^D_mu max-margin point solved in the PRIMAL
                                          (SLSQP, then Newton on the primal KKT system).
* ``l1_face_vertices(Xt)``                optimal value and ALL vertices of the optimal face of
                                          min ||w||_1 s.t. Xt w >= 1 (brute-force enumeration).
* ``l2D_vertex_kkt_points(Xt, depth)``    all KKT points of min sum|w_i|^{2/D} s.t. Xt w >= 1
                                          (D > 2) at vertices of {Xt w >= 1} cap orthant.
* ``l2D_multistart_u(Xt, depth)``         local solutions of min ||u||^2 s.t.
                                          Xt (u+^D - u-^D) >= 1, u >= 0, from random starts.
* ``q_path_kinks(Xt, depth)``             the mu where the support set of the Q_mu max-margin
                                          point changes (grid + bisection).
* ``q_kink_mp(Xt, depth, S, j, mu0)``     the same kink to many digits with mpmath (the kink is
                                          where sample j's margin reaches 1 on support S).
"""
from itertools import combinations

import mpmath as mp
import numpy as np
from scipy.optimize import linprog, minimize

from _reference_maxmargin import Q, dh, h_inv, l2_max_margin, q_mu_kkt_residual, q_mu_max_margin


# ============================================================ 1. Q_mu in the primal
def _primal_newton(Xt, mu, D, w, S, maxit=60):
    """Newton on the primal KKT system of the equality-constrained problem on active set S.

    Unknowns (w, nu_S); equations
        F1(w, nu) = h_D^{-1}(w / mu) - Xt_S^T nu_S = 0          (d equations, stationarity)
        F2(w)     = Xt_S w - 1 = 0                                (|S| equations, activity)
    with Jacobian [[diag(1 / (mu h_D'(h_D^{-1}(w/mu)))), -Xt_S^T], [Xt_S, 0]]
    (d/dz h^{-1}(z) = 1 / h'(h^{-1}(z))).  Full Newton steps; the iterate with the smallest
    residual is returned.  Returns (w, nu_S, residual).
    """
    A = Xt[list(S)]
    k, d = A.shape
    v = h_inv(w / mu, D)
    nuS = np.linalg.lstsq(A.T, v, rcond=None)[0] if k else np.zeros(0)

    def resid(w, nuS):
        v = h_inv(w / mu, D)
        F = np.concatenate([v - A.T @ nuS, A @ w - 1.0])
        return F, v

    F, v = resid(w, nuS)
    best = (w, nuS, float(np.max(np.abs(F))))
    for _ in range(maxit):
        J = np.zeros((d + k, d + k))
        J[:d, :d] = np.diag(1.0 / (mu * dh(v, D)))
        J[:d, d:] = -A.T
        J[d:, :d] = A
        try:
            step = np.linalg.solve(J, -F)
        except np.linalg.LinAlgError:
            break
        w, nuS = w + step[:d], nuS + step[d:]
        F, v = resid(w, nuS)
        r = float(np.max(np.abs(F)))
        if not np.isfinite(r):
            break
        if r < best[2]:
            best = (w, nuS, r)
        elif r > 2 * best[2] or best[2] < 1e-15:
            break
        if np.max(np.abs(step[:d])) <= 1e-17 * max(1.0, np.max(np.abs(w))):
            break
    return best


def _independent_rows(Xt, order):
    """Greedy: the rows of Xt, taken in ``order``, that keep the chosen set linearly independent."""
    S = []
    for n in order:
        if np.linalg.matrix_rank(Xt[S + [n]]) == len(S) + 1:
            S.append(n)
    return S


def q_mu_primal(Xt, mu, depth=2, *, active_tol=1e-7, tol=1e-12, return_info=False):
    """Q^D_mu max-margin point  min_w Q^D_mu(w) = sum_i q_D(w_i/mu)  s.t.  Xt w >= 1, in the primal.

    Math.  Q^D_mu is smooth and strictly convex with gradient (1/mu) h_D^{-1}(w/mu) and Hessian
    diag(1 / (mu^2 h_D'(h_D^{-1}(w_i/mu)))).  KKT: h_D^{-1}(w/mu) = Xt^T nu, nu >= 0,
    nu_n (x~_n^T w - 1) = 0.  The solution is unique; on its active set S it solves the square
    system  h_D^{-1}(w/mu) = Xt_S^T nu_S,  Xt_S w = 1.

    Method (a different formulation from ``_reference_maxmargin.q_mu_max_margin``, which
    enumerates support sets in the dual variable nu):
      1. SLSQP in w, started at the l2 max-margin point, on the scaled objective
         Q^D_mu(w) / Q^D_mu(w_l2) (value 1 at the start; analytic gradient) with the linear
         constraints Xt w - 1 >= 0 (analytic Jacobian);
      2. active set S = {n : x~_n^T w - 1 <= active_tol * max(1, |w|_inf)} from the SLSQP point
         (reduced greedily to linearly independent rows, tightest first);
      3. polish: Newton on the primal KKT system in (w, nu_S) (see ``_primal_newton``);
      4. primal active-set correction: if some nu_n < 0 drop the most negative, if some
         margin < 1 add the most violated, and repeat 3 (at most 4 N times).
    The result is accepted when ``q_mu_kkt_residual <= tol`` (ValueError otherwise).

    Returns (w, nu) with nu of length N (zero off S); with ``return_info`` also a dict
    (S, slsqp result, number of active-set changes, kkt residual).
    """
    Xt, D, mu = np.asarray(Xt, float), int(depth), float(mu)
    N, d = Xt.shape
    w0 = l2_max_margin(Xt)[0]
    scale = Q(w0, mu, D)
    res = minimize(lambda w: Q(w, mu, D) / scale, w0,
                   jac=lambda w: h_inv(w / mu, D) / (mu * scale),
                   constraints=[dict(type="ineq", fun=lambda w: Xt @ w - 1.0, jac=lambda w: Xt)],
                   method="SLSQP", options=dict(ftol=1e-15, maxiter=2000))
    w = np.asarray(res.x, float)
    m = Xt @ w
    cand = [n for n in np.argsort(m) if m[n] - 1 <= active_tol * max(1.0, np.max(np.abs(w)))]
    S = _independent_rows(Xt, cand)
    changes, seen = 0, set()
    while True:
        seen.add(tuple(sorted(S)))
        wS, nuS, _ = _primal_newton(Xt, mu, D, w.copy(), S)
        nu = np.zeros(N)
        nu[S] = nuS
        m = Xt @ wS
        sc = max(1.0, float(np.max(np.abs(Xt) @ np.abs(wS))))
        nsc = max(1.0, float(np.max(np.abs(nu))))
        neg = nu.min() < -tol * nsc
        vio = np.min(m - 1) < -tol * sc
        if not (neg or vio) or changes >= 4 * N:
            break
        if neg:
            S = [n for n in S if n != int(np.argmin(nu))]
        else:
            S = _independent_rows(Xt, S + [int(np.argmin(m))])
        if tuple(sorted(S)) in seen:
            break
        changes += 1
        w = wS
    r = q_mu_kkt_residual(Xt, mu, wS, nu, D)
    if not r <= tol:
        raise ValueError(f"q_mu_primal: KKT residual {r:.3g} > {tol:g} (mu={mu:g}, D={D})")
    if return_info:
        return wS, nu, dict(S=tuple(sorted(S)), slsqp=res, changes=changes, kkt=r)
    return wS, nu


# ============================================================ 2. l1 optimal face
def _l1_highs(Xt):
    """min ||w||_1 s.t. Xt w >= 1 by HiGHS with w = a - b, a, b >= 0; returns (opt, w)."""
    N, d = Xt.shape
    res = linprog(np.ones(2 * d), A_ub=-np.hstack([Xt, -Xt]), b_ub=-np.ones(N),
                  bounds=(0, None), method="highs",
                  options=dict(primal_feasibility_tolerance=1e-10, dual_feasibility_tolerance=1e-10))
    if res.status != 0:
        raise ValueError("l1 LP: " + res.message)
    return float(res.fun), res.x[:d] - res.x[d:]


def _dedup(points, tol):
    """Unique rows (max-norm distance <= tol * max(1, |p|_inf)), first occurrence kept."""
    out = []
    for p in points:
        if not any(np.max(np.abs(p - q)) <= tol * max(1.0, np.max(np.abs(q))) for q in out):
            out.append(p)
    return out


def l1_face_vertices(Xt, rtol=1e-9):
    """Optimal value and ALL vertices of the optimal face of  min ||w||_1  s.t.  Xt w >= 1.

    Math.  On a closed orthant O (sign vector sigma) ||w||_1 = sigma^T w is linear, so the
    optimal face F = {w : Xt w >= 1, ||w||_1 = opt} meets O in a face of the polyhedron
    P_O = {Xt w >= 1} cap O.  A vertex of F is extreme in F cap O, hence a vertex of P_O: it is
    fixed by d linearly independent active constraints from {x~_n^T w = 1} cup {w_i = 0}.
    Conversely such a point that is feasible with ||w||_1 = opt is a vertex of F (any segment
    of F through it keeps ||.||_1 affine, hence stays in one closed orthant, where the point is
    a vertex).  F is bounded, so F = conv(vertices).

    Method.  Brute force over all d-subsets of the N + d equations; each nonsingular system is
    solved and the point kept if Xt w >= 1 - rtol * scale and ||w||_1 <= opt (1 + rtol).
    ``opt`` is the HiGHS LP value; it is cross-checked against the smallest feasible
    enumerated ||w||_1 (which is exact up to rounding and is the value returned).  Cost
    C(N + d, d) small solves.

    Returns (opt, V) with V a k x d array of the deduplicated vertices (sorted lexicographically).
    """
    Xt = np.asarray(Xt, float)
    N, d = Xt.shape
    opt_lp, _ = _l1_highs(Xt)
    E = np.vstack([Xt, np.eye(d)])
    rhs = np.concatenate([np.ones(N), np.zeros(d)])
    feas = []
    for C in combinations(range(N + d), d):
        A = E[list(C)]
        if np.linalg.matrix_rank(A) < d:
            continue
        w = np.linalg.solve(A, rhs[list(C)])
        sc = max(1.0, float(np.max(np.abs(Xt) @ np.abs(w))))
        if np.min(Xt @ w - 1) >= -rtol * sc:
            w[np.abs(w) <= 1e-14 * max(1.0, np.max(np.abs(w)))] = 0.0
            feas.append(w)
    if not feas:
        raise ValueError("l1_face_vertices: no feasible vertex (data not separable?)")
    norms = np.array([np.sum(np.abs(w)) for w in feas])
    opt = float(norms.min())
    if abs(opt - opt_lp) > 1e-8 * opt:
        raise ValueError(f"l1_face_vertices: HiGHS {opt_lp!r} != enumeration {opt!r}")
    V = _dedup([w for w, n in zip(feas, norms) if n <= opt * (1 + rtol)], 1e-9)
    V = np.array(sorted(V, key=tuple)).reshape(-1, d)
    return opt, V


# ============================================================ 3. l_{2/D} KKT points
def l2D_objective(w, depth):
    """sum_i |w_i|^{2/D} (the l_{2/D} quasi-norm to the power 2/D)."""
    return float(np.sum(np.abs(np.asarray(w, float)) ** (2.0 / depth)))


def l2D_vertex_kkt_points(Xt, depth, tol=1e-9):
    """All KKT points of  min sum_i |w_i|^{2/D}  s.t.  Xt w >= 1  (D > 2) at vertices of
    {Xt w >= 1} cap (an orthant), best objective first.

    Math.  Let T = supp(w).  Off T the objective has an unbounded (limiting) subdifferential
    (|t|^{2/D} has infinite slope at 0), so no condition; on T it is smooth and KKT reads
        (2/D) |w_i|^{2/D - 1} sign(w_i) = (Xt_{:,T}^T nu)_i,  i in T,  nu >= 0,
        nu_n (x~_n^T w - 1) = 0.
    These are exactly the KKT points of the parameter problem min ||u||^2 s.t.
    Xt (u+^D - u-^D) >= 1 (Lyu & Li) mapped by w = u+^D - u-^D.  A vertex with support T has
    |T| active rows S with Xt_{S,T} invertible; if the KKT multiplier exists on the (possibly
    larger) active set, by Caratheodory it exists on such an S (extended by zeros), so
    enumerating (T, S) with |S| = |T| finds every vertex KKT point.

    Method.  For every nonempty T and S with |S| = |T| and Xt_{S,T} nonsingular:
    w_T = Xt_{S,T}^{-1} 1, w = 0 off T; keep if all |w_i| > 0 (i in T), Xt w >= 1 - tol * scale,
    and nu_S = Xt_{S,T}^{-T} g_T (g the gradient above) is >= -tol * max(1, |nu|_inf).
    Deduplicated on w (relative 1e-9).

    Returns a list of dicts (w, nu [length N], objective, support_features [tuple T],
    support_samples [tuple of n with nu_n > 0; for ties the first S found]) sorted by objective.
    """
    Xt, D = np.asarray(Xt, float), int(depth)
    if D <= 2:
        raise ValueError("l2D_vertex_kkt_points needs depth > 2")
    N, d = Xt.shape
    out = []
    for kT in range(1, min(N, d) + 1):
        for T in combinations(range(d), kT):
            for S in combinations(range(N), kT):
                A = Xt[np.ix_(S, T)]
                if np.linalg.matrix_rank(A) < kT:
                    continue
                wT = np.linalg.solve(A, np.ones(kT))
                if np.min(np.abs(wT)) <= 1e-12 * max(1.0, np.max(np.abs(wT))):
                    continue
                w = np.zeros(d)
                w[list(T)] = wT
                sc = max(1.0, float(np.max(np.abs(Xt) @ np.abs(w))))
                if np.min(Xt @ w - 1) < -tol * sc:
                    continue
                g = (2.0 / D) * np.abs(wT) ** (2.0 / D - 1) * np.sign(wT)
                nuS = np.linalg.solve(A.T, g)
                if nuS.min() < -tol * max(1.0, np.max(np.abs(nuS))):
                    continue
                if any(np.max(np.abs(w - p["w"])) <= 1e-9 * max(1.0, np.max(np.abs(w)))
                       for p in out):
                    continue
                nu = np.zeros(N)
                nu[list(S)] = np.maximum(nuS, 0.0)
                out.append(dict(w=w, nu=nu, objective=l2D_objective(w, D), support_features=T,
                                support_samples=tuple(int(n) for n in S if nu[n] > 0)))
    out.sort(key=lambda p: p["objective"])
    return out


def _u_kkt_ok(Xt, D, u, ctol, ktol):
    """KKT test for min ||u||^2 s.t. c(u) = Xt (u+^D - u-^D) - 1 >= 0, u >= 0, at u.

    Feasible (min c >= -ctol * scale) and stationary: with A = the rows with c_n <= 1e-7 and
    J the constraint Jacobian, the NNLS residual of  J_A^T lam = 2 u,  lam >= 0  (on the
    coordinates with u_i > 0; at u_i = 0 both sides vanish for D > 2, the bound multiplier
    is 0) is <= ktol * max(1, |u|).
    """
    from scipy.optimize import nnls
    d = Xt.shape[1]
    up, um = u[:d], u[d:]
    w = up ** D - um ** D
    c = Xt @ w - 1.0
    sc = max(1.0, float(np.max(np.abs(Xt) @ np.abs(w))))
    if not np.min(c) >= -ctol * sc:
        return False
    act = np.flatnonzero(c <= 1e-7 * sc)
    if act.size == 0:
        return bool(np.max(np.abs(u)) <= ktol)
    J = np.hstack([D * Xt * up ** (D - 1), -D * Xt * um ** (D - 1)])[act]
    lam, res = nnls(J.T, 2 * u)
    return bool(res <= ktol * max(1.0, float(np.linalg.norm(u))))


def l2D_multistart_u(Xt, depth, starts=200, seed=0, ctol=1e-9, ktol=1e-7):
    """Local solutions of  min ||u||^2  s.t.  Xt (u+^D - u-^D) >= 1,  u = (u+, u-) >= 0.

    Math.  Lyu & Li: the directional limits of gradient flow on a homogeneous model are KKT
    points of this problem; w = u+^D - u-^D maps them to KKT points of min sum|w_i|^{2/D}
    (at a KKT point at most one of u+_i, u-_i is nonzero, and ||u||^2 = sum|w_i|^{2/D}).

    Method.  SLSQP (analytic gradient 2u and constraint Jacobian
    [D Xt diag(u+^{D-1}), -D Xt diag(u-^{D-1})], bounds u >= 0, ftol 1e-15, maxiter 300) from
    ``starts`` random FEASIBLE points (from infeasible random starts SLSQP mostly collapses
    to u = 0, where the constraint gradient vanishes): a Gaussian w of scale
    ||w_l1||_inf, pushed along w_l2 into the open cone {Xt w > 0} if needed, mapped to
    u+- = max(+-w, 0)^{1/D} plus Exp noise of scale 0.1 ||w_l1||_inf^{1/D} in every entry, and
    rescaled to min margin 1.05.  A run counts when its end point passes ``_u_kkt_ok``
    (feasible to ctol, NNLS stationarity residual <= ktol), whatever SLSQP's status (with
    ftol 1e-15 most converged runs end with "positive directional derivative").  Solutions are
    mapped to w and deduplicated (max-norm, relative 1e-6).

    Returns a list of dicts (w, u, objective = sum|w_i|^{2/D}, count = number of starts that
    reached it) sorted by objective; plus the number of failed runs as ``failed`` on each dict.
    """
    Xt, D = np.asarray(Xt, float), int(depth)
    N, d = Xt.shape
    rng = np.random.default_rng(seed)
    s = max(np.max(np.abs(_l1_highs(Xt)[1])), 1e-3) ** (1.0 / D)

    def split(u):
        return u[:d], u[d:]

    def con(u):
        up, um = split(u)
        return Xt @ (up ** D - um ** D) - 1.0

    def con_jac(u):
        up, um = split(u)
        return np.hstack([D * Xt * up ** (D - 1), -D * Xt * um ** (D - 1)])

    w2 = l2_max_margin(Xt)[0]

    def start():
        # random w in the cone {Xt w > 0}: a Gaussian direction, pushed along w_l2 if needed
        g = rng.standard_normal(d) * s ** D
        m, m2 = Xt @ g, Xt @ w2
        t = max(0.0, float(np.max((0.05 * np.linalg.norm(g) * np.linalg.norm(Xt, axis=1) - m) / m2)))
        w = g + t * w2
        # to u (both halves positive: small random extra mass), then scaled to min margin 1.05
        e = 0.1 * s * rng.exponential(1.0, 2 * d)
        u = np.concatenate([np.maximum(w, 0) ** (1.0 / D), np.maximum(-w, 0) ** (1.0 / D)]) + e
        m = con(u) + 1.0
        if m.min() <= 0:
            u = np.concatenate([np.maximum(w, 0) ** (1.0 / D), np.maximum(-w, 0) ** (1.0 / D)])
            m = con(u) + 1.0
        return u * (1.05 / m.min()) ** (1.0 / D)

    found, failed = [], 0
    for _ in range(starts):
        u0 = start()
        r = minimize(lambda u: u @ u, u0, jac=lambda u: 2 * u, method="SLSQP",
                     bounds=[(0, None)] * (2 * d),
                     constraints=[dict(type="ineq", fun=con, jac=con_jac)],
                     options=dict(ftol=1e-15, maxiter=300))
        u = np.maximum(r.x, 0.0)
        up, um = split(u)
        w = up ** D - um ** D
        if not _u_kkt_ok(Xt, D, u, ctol, ktol):
            failed += 1
            continue
        for p in found:
            if np.max(np.abs(w - p["w"])) <= 1e-6 * max(1.0, np.max(np.abs(p["w"]))):
                p["count"] += 1
                if u @ u < p["u"] @ p["u"]:
                    p.update(w=w, u=u, objective=l2D_objective(w, D))
                break
        else:
            found.append(dict(w=w, u=u, objective=l2D_objective(w, D), count=1))
    for p in found:
        p["failed"] = failed
    found.sort(key=lambda p: p["objective"])
    return found


# ============================================================ 4. kinks of the Q_mu path
def _support(Xt, mu, D):
    return tuple(int(n) for n in q_mu_max_margin(Xt, mu, D)[2])


def q_path_kinks(Xt, depth, mu_hi=1e3, mu_lo=1e-4, per_decade=100, rtol=1e-10):
    """The mu in [mu_lo, mu_hi] where the support set of the Q^D_mu max-margin point changes.

    Math.  Along the path mu -> w(mu) (unique, continuous) the support S(mu) = {n : nu_n > 0}
    is piecewise constant; at a kink mu* a sample j enters/leaves: with the smaller support
    S, nu_j = 0 and x~_j^T w = 1 hold simultaneously (see ``q_kink_mp``).

    Method.  S(mu) from ``_reference_maxmargin.q_mu_max_margin`` (the support tuple it
    returns) on a log grid from mu_hi down to mu_lo with >= ``per_decade`` points per decade;
    between neighbours with different supports, bisection in log mu on the support set until
    (hi - lo) / lo <= rtol (a third support met inside a bracket splits it recursively).
    mu* = sqrt(lo hi).  Two kinks inside one grid cell that restore the same support are not
    seen (the grid is the resolution).

    Returns a list of (mu_star, support_above, support_below), largest mu first, where
    support_above = S(mu) just above mu*.
    """
    Xt, D = np.asarray(Xt, float), int(depth)
    n = int(np.ceil(per_decade * np.log10(mu_hi / mu_lo))) + 1
    grid = np.logspace(np.log10(mu_hi), np.log10(mu_lo), n)
    sup = [_support(Xt, m, D) for m in grid]

    def bisect(hi, lo, Shi, Slo):
        while (hi - lo) / lo > rtol:
            mid = np.sqrt(hi * lo)
            Sm = _support(Xt, mid, D)
            if Sm == Shi:
                hi = mid
            elif Sm == Slo:
                lo = mid
            else:
                return bisect(hi, mid, Shi, Sm) + bisect(mid, lo, Sm, Slo)
        return [(float(np.sqrt(hi * lo)), Shi, Slo)]

    kinks = []
    for i in range(n - 1):
        if sup[i] != sup[i + 1]:
            kinks += bisect(grid[i], grid[i + 1], sup[i], sup[i + 1])
    return kinks


def q_kink_mp(Xt, depth, S, j, mu0, dps=40):
    """The kink mu* where sample j joins support S, to ``dps`` digits (mpmath).

    Math.  On support S the Q_mu point is w = mu h_D(Xt_S^T nu_S) with x~_a^T w = 1 (a in S);
    the support changes where additionally x~_j^T w = 1 (equivalently, on S + {j}, nu_j = 0).
    Unknowns (nu_S, log mu), |S| + 1 equations x~_a^T mu h_D(Xt_S^T nu_S) = 1, a in S + {j};
    solved by mpmath.findroot (multidimensional Newton) from nu_S at mu0 (from
    ``q_mu_max_margin`` restricted to S).  h_D is evaluated in mpmath (2 sinh v for D = 2,
    (1-v)^{-D/(D-2)} - (1+v)^{-D/(D-2)} otherwise).  Returns mu* as an mpmath mpf.
    """
    from _reference_maxmargin import _newton_support
    Xt, D = np.asarray(Xt, float), int(depth)
    S = list(S)
    nu0, _ = _newton_support(Xt[S], float(mu0), D)
    with mp.workdps(dps):
        X = mp.matrix([[mp.mpf(repr(float(x))) for x in row] for row in Xt])
        d = Xt.shape[1]
        p = mp.mpf(D) / (D - 2) if D > 2 else None

        def hh(v):
            return 2 * mp.sinh(v) if D == 2 else (1 - v) ** (-p) - (1 + v) ** (-p)

        def F(*z):
            nu, mu = z[:-1], mp.exp(z[-1])
            s = [sum(nu[k] * X[S[k], i] for k in range(len(S))) for i in range(d)]
            w = [mu * hh(si) for si in s]
            return [sum(X[a, i] * w[i] for i in range(d)) - 1 for a in S + [j]]

        z0 = [mp.mpf(float(x)) for x in nu0] + [mp.log(mp.mpf(float(mu0)))]
        z = mp.findroot(F, z0, tol=mp.mpf(10) ** (-dps + 5), maxsteps=200)
        return mp.exp(z[len(S)])
