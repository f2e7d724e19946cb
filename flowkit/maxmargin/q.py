"""Q^D_μ max-margin: min Σ_i q_D(w_i/μ) s.t. X̃ w >= 1 (math.md, "Max-margin problems";
the intermediate regime's limit, Theorem 6).

Solved in the smooth concave dual of math.md, written as a minimisation over ν >= 0:

    F(ν) = μ Σ_i H_D(v_i) - Σ_n ν_n,     v = X̃ᵀν,     w(ν) = μ h_D(v),
    ∇F = X̃ w(ν) - 1   (margins minus one),     ∇²F = μ X̃ diag(h_D'(v)) X̃ᵀ,

(for D > 2 on ‖v‖∞ < 1).  Two Newton iterations share the work:

* ``support_newton``: on a fixed support S (ν = 0 off S) solve X̃_S w(ν) = 1, the
  stationarity of the convex F restricted to span(S); quadratic convergence, and the
  solution extends smoothly past the μ where S stops being optimal (q_path uses that to
  locate kinks);
* ``projected_newton``: Bertsekas' projected Newton method on the bound-constrained F,
  which finds the support when no good guess is at hand.

The certificate is the KKT residual of ``common`` with stationarity measured in the dual
variable: ‖h_D^{-1}(w/μ) - X̃ᵀν‖∞ / max(1, ‖X̃ᵀν‖∞) -- the same condition as
w = μ h_D(X̃ᵀν), in the coordinates where it is O(1) at every μ.
"""
from __future__ import annotations

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve

from .. import potentials as P
from .common import MaxMargin, feasibility_parts, rescale, support_of
from .l2 import solve_l2

__all__ = ["solve_q", "support_newton", "kkt_residual"]

_EPS = np.finfo(float).eps


class _Dual:
    """F, its gradient and Hessian for one (X̃, μ, D); D > 2 is infinite off ‖v‖∞ < 1."""

    def __init__(self, Xt, mu, D):
        self.Xt, self.mu, self.D = Xt, mu, D

    def inside(self, v):
        return self.D == 2 or float(np.max(np.abs(v))) < 1.0

    def w(self, v):
        return self.mu * P.h(v, self.D)

    def value(self, nu, v):
        if not self.inside(v):
            return np.inf
        with np.errstate(over="ignore", invalid="ignore"):
            val = self.mu * float(np.sum(P.H(v, self.D))) - float(np.sum(nu))
        return val if np.isfinite(val) else np.inf

    def grad(self, v, rows=slice(None)):
        with np.errstate(over="ignore", invalid="ignore"):
            return self.Xt[rows] @ self.w(v) - 1.0

    def hess(self, v, rows):
        A = self.Xt[rows]
        return self.mu * (A * P.dh(v, self.D)) @ A.T


def _solve_spd(Hm, g, regularise=False):
    """Newton step -H⁻¹g.  H is PSD, and singular when the rows in play are dependent
    (more samples than features).  There F is linear along null(X̃ᵀ) and its minimum lies
    on the boundary ν_n = 0, so with ``regularise`` the step is -(H + λI)⁻¹g: Newton on
    range(H), a long gradient step along the null space, which the projected line search
    cuts at the boundary."""
    try:
        return -cho_solve(cho_factor(Hm), g)
    except (LinAlgError, ValueError):
        if not regularise:
            return -np.linalg.lstsq(Hm, g, rcond=None)[0]
    lam = 1e-10 * float(np.max(np.diag(Hm)))
    return -np.linalg.solve(Hm + lam * np.eye(len(g)), g)


def kkt_residual(Xt, mu, D, w, nu):
    """Relative KKT residual of (w, ν) for the Q^D_μ problem (module docstring)."""
    s = Xt.T @ nu
    stat = float(np.max(np.abs(P.h_inv(w / mu, D) - s))) / max(1.0, float(np.max(np.abs(s))))
    return max(stat, feasibility_parts(Xt, w, nu))


def support_newton(Xt, mu, D, S, nu_S, maxit=100):
    """Solve X̃_S μ h_D(X̃_Sᵀ ν_S) = 1 for ν_S (any sign) by damped Newton from ``nu_S``.

    Damping: backtracking until the residual's 2-norm falls (Newton's direction is a
    descent direction for it while X̃_S has independent rows) and, for D > 2, v stays in
    (-1, 1).  Returns (ν_S, max residual, iterations).
    """
    F = _Dual(Xt, mu, D)
    A = Xt[S]
    nu = np.array(nu_S, float)
    v = A.T @ nu
    if not F.inside(v):
        return nu, np.inf, 0
    r = F.grad(v, S)
    rn = float(np.linalg.norm(r))
    for it in range(1, maxit + 1):
        if not np.isfinite(rn) or rn <= 4 * _EPS * np.sqrt(len(S)):
            return nu, float(np.max(np.abs(r))), it - 1
        step = _solve_spd(F.hess(v, S), r)
        t = 1.0
        while t > 1e-12:
            new = nu + t * step
            vn = A.T @ new
            if F.inside(vn):
                rnew = F.grad(vn, S)
                rnn = float(np.linalg.norm(rnew))
                if rnn <= (1.0 - 1e-4 * t) * rn:
                    break
            t *= 0.5
        else:
            return nu, float(np.max(np.abs(r))), it
        nu, v, r, rn = new, vn, rnew, rnn
    return nu, float(np.max(np.abs(r))), maxit


def projected_newton(Xt, mu, D, nu0, maxit=500, gtol=1e-12):
    """Bertsekas' projected Newton method for min F(ν), ν >= 0, from ``nu0`` (>= 0).

    Each step: the ε-active set A = {ν_n <= ε, ∂_n F > 0} stays at 0; a Levenberg-damped
    Newton step (H + λI)d = -g on the rest; an Armijo search along the projected arc
    max(ν + t d, 0).  When the search fails λ grows (towards a projected gradient step,
    which always descends), and shrinks again after a success.  Stops when the projected
    gradient is below ``gtol`` or when no λ helps (F's rounding: the caller polishes with
    ``support_newton``).  Returns (ν, iterations).
    """
    F = _Dual(Xt, mu, D)
    nu = np.maximum(np.array(nu0, float), 0.0)
    v = Xt.T @ nu
    f = F.value(nu, v)
    damp = 0.0  # λ relative to max diag(H)
    for it in range(1, maxit + 1):
        g = F.grad(v)
        pg = np.where(nu > 0, g, np.minimum(g, 0.0))
        pgn = float(np.max(np.abs(pg)))
        if pgn <= gtol:
            return nu, it - 1
        eps = min(1e-3 * float(np.max(nu, initial=0.0)), pgn)
        free = ~((nu <= eps) & (g > 0))
        Hm = F.hess(v, free)
        scale = float(np.max(np.diag(Hm), initial=1.0))
        while True:
            d = np.zeros_like(nu)
            if np.any(free):
                d[free] = _solve_spd(Hm + damp * scale * np.eye(len(Hm)), g[free], regularise=True)
            d[~free] = -g[~free] / (scale * max(damp, 1e-10))
            new, vn, fn = _arc_search(F, nu, f, g, d, pgn)
            if new is not None:
                damp = damp / 100 if damp > 1e-12 else 0.0
                break
            if damp >= 1e8:
                return nu, it
            damp = max(100 * damp, 1e-10)
        if np.array_equal(new, nu):
            return nu, it
        nu, v, f = new, vn, fn
    return nu, maxit


def _arc_search(F, nu, f, g, d, pgn):
    """Armijo backtracking along max(ν + t d, 0); (None, None, None) when it fails."""
    t = 1.0
    while t > 1e-14:
        new = np.maximum(nu + t * d, 0.0)
        vn = F.Xt.T @ new
        fn = F.value(new, vn)
        # (finite first: an overflowing step makes both sides inf)
        if np.isfinite(fn) and fn <= f + 1e-4 * float(g @ (new - nu)):
            return new, vn, fn
        # near the solution F's decrease drops below its rounding: judge the step by
        # the projected gradient instead
        if np.isfinite(fn) and pgn < 1e-6:
            gn = F.grad(vn)
            if np.max(np.abs(np.where(new > 0, gn, np.minimum(gn, 0.0)))) < 0.5 * pgn:
                return new, vn, fn
        t *= 0.5
    return None, None, None


def _start(Xt, mu, D):
    """ν along the ℓ2 dual direction (the μ → ∞ limit), scaled so that w(ν) matches the
    ℓ2 point's largest coordinate (for D > 2 also |v| <= 1/2): finite at every μ."""
    l2 = solve_l2(Xt)
    v2 = Xt.T @ l2.dual
    top = float(np.max(np.abs(v2)))
    vmax = float(P.h_inv(float(np.max(np.abs(l2.w))) / mu, D))
    if D > 2:
        vmax = min(vmax, 0.5)
    return l2.dual * (vmax / top)


def solve_q(Xt, mu, D, nu0=None, support=None, tol=1e-12):
    """The Q^D_μ max-margin point.  ``nu0``/``support``: a warm start (q_path passes its
    previous point); the fixed-support Newton is tried first, the projected method when
    that support fails the KKT test.  Raises nothing: the residual tells the caller."""
    N = Xt.shape[0]
    tried, best = [], None
    if nu0 is not None and support is not None and len(support):
        tried.append((np.asarray(support), np.asarray(nu0, float)))
    iters = 0
    for attempt in range(4):
        if tried:
            S, nu_start = tried.pop()
            nuS, _, k = support_newton(Xt, mu, D, S, nu_start[S])
            iters += k
            nu = np.zeros(N)
            nu[S] = nuS
        else:
            start = _start(Xt, mu, D) if best is None else np.maximum(best[1], 0.0)
            if D > 2 and not float(np.max(np.abs(Xt.T @ start))) < 1.0:
                # the best candidate so far can have ν_n < 0 (a fixed-support solve):
                # clipped to ν >= 0 it may leave F's domain
                start = _start(Xt, mu, D)
            nu, k = projected_newton(Xt, mu, D, start)
            iters += k
            S = support_of(nu)
            nuS, _, k = support_newton(Xt, mu, D, S, nu[S])
            iters += k
            cand = np.zeros(N)
            cand[S] = nuS
            if kkt_residual(Xt, mu, D, mu * P.h(Xt.T @ cand, D), cand) <= \
                    kkt_residual(Xt, mu, D, mu * P.h(Xt.T @ nu, D), nu):
                nu = cand
        w = mu * P.h(Xt.T @ nu, D)
        res = kkt_residual(Xt, mu, D, w, nu)
        stalled = best is not None and res > 0.1 * best[0]
        if best is None or res < best[0]:
            best = (res, nu, w)
        if res <= tol or (stalled and attempt > 1):
            break
    res, nu, w = best
    w = rescale(Xt, w)
    return MaxMargin(kind="Q", w=w, support=support_of(nu), dual=nu,
                     kkt_residual=kkt_residual(Xt, mu, D, w, nu),
                     objective=float(np.sum(P.q(w / mu, D))), depth=D, mu=mu, unique=True,
                     info=dict(newton_iterations=iters))
