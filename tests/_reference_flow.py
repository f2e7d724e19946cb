"""Independent reference integrator for the depth-D diagonal-network gradient flow.

Test-suite helper only (numpy + scipy; it does not import flowkit).

Model (see /work/shared/reference/math.md): rows x~_n of ``Xt``, w = u+^D - u-^D,
u+-(0) = alpha, gradient flow on L = mean(exp(-Xt w)), training accuracy
gamma~ = -log L.  ``reference_w`` returns w at the moment the flow reaches a
given gamma~.  L is never formed: only p = softmax(-Xt w) (shifted) and
g = Xt^T p = r / L appear.

Independent variable: sigma = log(gamma~), from a tiny gamma0 (initial state from
the second-order small-gamma~ expansion, gamma0 <= 1e-6 and |w0|/alpha^D <= 1e-6)
to log(gamma_target).  On loss plateaus (saddle-to-saddle escapes at small alpha,
mostly D = 10, alpha = 0.1 on data whose single coordinates do not separate) gamma~
hardly moves while u moves by O(1), and the sigma-parametrised flow becomes
numerically singular; so sigma is integrated as a state against a
pseudo-arc-length xi (see _bridged), which equals sigma up to ~0.5% away from
plateaus.  Integration stops at the last step before sigma = log(gamma_target)
and finishes plainly in sigma from the gamma~ recomputed from that state, so the
returned w satisfies -logsumexp(-Xt w) + log N = gamma_target to ~1e-15.

Two formulations of the same flow (with a(s) = dw/ds = D^2 (u+^(2D-2) + u-^(2D-2)),
kappa = sum_i a_i g_i^2):

(a) dual:       ds/dsigma = gamma~ g / kappa,  w = 2 alpha^2 sinh(4 s)  (D = 2)
                                              w = alpha^D h_D(c s)      (D > 2)
                (h_D evaluated as 2 (1-v^2)^(-p/2) sinh(p atanh v), p = D/(D-2), which
                keeps full relative precision for small v)
(b) log-param:  phi+- = log(u+-) - log(alpha)  (2d states; the constant shift of
                theta = log u keeps the states small and relative error control
                meaningful when u barely moves),
                dphi+-/dsigma = +-gamma~ exp((D-2) phi+-) g / (D alpha^D kappa^),
                kappa^ = sum_i (exp((2D-2) phi+_i) + exp((2D-2) phi-_i)) g_i^2,
                w = alpha^D (expm1(D phi+) - expm1(D phi-)).

Regime rule: a cheap predictor pass of (b) (rtol 1e-6) gives the final
|w|_inf / alpha^D.  If it is <= 1 (kernel / moderate regime, |c s| <= ~0.3 for D > 2,
where w = alpha^D h_D(c s) amplifies relative errors of s by at most ~2) the
answer is computed with (a); otherwise (rich regime, where 1 - c s would lose
digits for D > 2) with (b).  The predictor also sets the absolute tolerances:
atol_i = rtol * max over the trajectory of |y_i| (floored at 1e-8 of the largest),
so every component is controlled relative to its own scale, and early-time errors
are small relative to the final state.  All passes use Radau with an analytic
Jacobian.

Requires linearly separable data (checked by an LP), otherwise gamma~ is bounded.
"""
import numpy as np
from scipy.integrate import solve_ivp
from scipy.optimize import linprog

__all__ = ["reference_w", "reference_w_time"]


def _softmax_neg(m):
    z = -(m - m.min())          # shift: largest exponent is 0
    e = np.exp(z)
    return e / e.sum()


def _gamma_of_w(Xt, w):
    """-logsumexp(-Xt w) + log N, computed with a shift."""
    m = Xt @ w
    mmin = m.min()
    return mmin - np.log1p(np.mean(np.expm1(-(m - mmin))))   # log1p/expm1: exact at tiny gamma~


def _initial(Xt, D, alpha, gamma_target):
    """gamma0 and s(gamma0) from the second-order small-gamma~ expansion."""
    N = Xt.shape[0]
    xbar = Xt.mean(axis=0)
    nx2 = xbar @ xbar
    if not nx2 > 0:
        raise ValueError("mean of the rows of Xt is 0: w = 0 is a critical point")
    a0 = 2.0 * D**2 * alpha ** (2 * D - 2)
    C0 = Xt.T @ (np.eye(N) / N - 1.0 / N**2) @ Xt
    # keep |w0|_inf / alpha^D <= 1e-6 and gamma0 <= 1e-6 so neglected terms are ~1e-12 relative
    g0 = 1e-6 * min(1.0, alpha**D * nx2 / np.abs(xbar).max())
    g0 = min(g0, 1e-3 * gamma_target)
    Cx = C0 @ xbar
    s0 = (g0 / (a0 * nx2)) * (xbar + g0 / (2 * nx2) * (2 * xbar * (xbar @ Cx) / nx2 - Cx))
    return g0, s0


# ---------------------------------------------------------------- (a) dual
def _dual_parts(s, D, alpha):
    """w(s), a = dw/ds, da = d2w/ds2 (element-wise)."""
    if D == 2:
        sh, ch = np.sinh(4 * s), np.cosh(4 * s)
        return 2 * alpha**2 * sh, 8 * alpha**2 * ch, 32 * alpha**2 * sh
    p = D / (D - 2)
    c = D * (D - 2) * alpha ** (D - 2)
    v = c * s
    # (1-v)^-q -+ (1+v)^-q = 2 (1-v^2)^(-q/2) {sinh, cosh}(q atanh v): no cancellation at small v
    at, l2 = np.arctanh(v), np.log1p(-v * v)
    K = D**2 * alpha ** (2 * D - 2)                     # = alpha^D c p
    w = 2 * alpha**D * np.exp(-p / 2 * l2) * np.sinh(p * at)
    a = 2 * K * np.exp(-(p + 1) / 2 * l2) * np.cosh((p + 1) * at)
    da = 2 * K * c * (p + 1) * np.exp(-(p + 2) / 2 * l2) * np.sinh((p + 2) * at)
    return w, a, da


def _dual_system(Xt, D, alpha):
    def fun(sig, s):
        w, a, _ = _dual_parts(s, D, alpha)
        g = Xt.T @ _softmax_neg(Xt @ w)
        return np.exp(sig) * g / (a @ g**2)

    def jac(sig, s):
        w, a, da = _dual_parts(s, D, alpha)
        p = _softmax_neg(Xt @ w)
        g = Xt.T @ p
        kap = a @ g**2
        C = Xt.T @ (np.diag(p) - np.outer(p, p)) @ Xt
        G = -C * a[None, :]                              # dg/ds
        dkap = da * g**2 + 2 * (a * g) @ G
        return np.exp(sig) * (G / kap - np.outer(g, dkap) / kap**2)

    return fun, jac


# ---------------------------------------------------------------- (b) log-param
def _logp_w(y, D, alpha):
    d = y.size // 2
    return alpha**D * (np.expm1(D * y[:d]) - np.expm1(D * y[d:]))


def _logp_system(Xt, D, alpha):
    d = Xt.shape[1]
    aD = alpha**D

    def parts(y):
        pp, pm = y[:d], y[d:]
        w = aD * (np.expm1(D * pp) - np.expm1(D * pm))
        p = _softmax_neg(Xt @ w)
        g = Xt.T @ p
        ep, em = np.exp((D - 2) * pp), np.exp((D - 2) * pm)
        Ep, Em = np.exp((2 * D - 2) * pp), np.exp((2 * D - 2) * pm)
        kap = (Ep + Em) @ g**2
        q = np.concatenate([ep * g, -em * g])
        return pp, pm, p, g, ep, em, Ep, Em, kap, q

    def fun(sig, y):
        *_, kap, q = parts(y)
        return np.exp(sig) / (D * aD) * q / kap

    def jac(sig, y):
        pp, pm, p, g, ep, em, Ep, Em, kap, q = parts(y)
        C = Xt.T @ (np.diag(p) - np.outer(p, p)) @ Xt
        wp, wm = D * aD * np.exp(D * pp), D * aD * np.exp(D * pm)   # dw/dphi+ = wp, dw/dphi- = -wm
        G = np.hstack([-C * wp[None, :], C * wm[None, :]])          # dg/dy, d x 2d
        dkap = np.concatenate([(2 * D - 2) * Ep * g**2, (2 * D - 2) * Em * g**2]) \
            + 2 * ((Ep + Em) * g) @ G
        dq = np.vstack([ep[:, None] * G, -em[:, None] * G])
        dq[np.arange(d), np.arange(d)] += (D - 2) * ep * g
        dq[d + np.arange(d), d + np.arange(d)] -= (D - 2) * em * g
        return np.exp(sig) / (D * aD) * (dq / kap - np.outer(q, dkap) / kap**2)

    return fun, jac


def _s_to_phi(s, D, alpha):
    if D == 2:
        return np.concatenate([2 * s, -2 * s])
    c = D * (D - 2) * alpha ** (D - 2)
    return np.concatenate([-np.log1p(-c * s), -np.log1p(c * s)]) / (D - 2)


def _phi_to_s(y, D, alpha):
    d = y.size // 2
    if D == 2:
        return y[:d] / 2
    c = D * (D - 2) * alpha ** (D - 2)
    return -np.expm1(-(D - 2) * y[:d]) / c


# ---------------------------------------------------------------- driver
_K = 10.0   # relative-rate threshold of the plateau-bridging reparametrisation


def _bridged(fun, jac):
    """Augmented autonomous system z = (y, sigma) in a pseudo-arc-length xi.

    dz/dxi = (F, 1) / rho,  F = dy/dsigma,  rho = sqrt(1 + |F|^2 / (K^2 |y|^2)).
    In ordinary phases |F| <~ |y| (rho ~ 1, xi ~ sigma); on a loss plateau
    (saddle-to-saddle escape at small alpha, where gamma~ barely moves while u
    moves by O(1)) |F| / |y| is huge and the relative speed of y is capped at K.
    F depends on sigma only through its factor gamma~ = e^sigma, so dF/dsigma = F.
    """
    def parts(z):
        y, sig = z[:-1], z[-1]
        F = fun(sig, y)
        n2 = max(y @ y, 1e-300)
        q = (F @ F) / (_K**2 * n2)
        return y, sig, F, n2, q, np.sqrt(1 + q)

    def afun(xi, z):
        _, _, F, _, _, rho = parts(z)
        return np.append(F, 1.0) / rho

    def ajac(xi, z):
        y, sig, F, n2, q, rho = parts(z)
        J = jac(sig, y)
        drho_y = (2 * (J.T @ F) / (_K**2 * n2) - 2 * q * y / n2) / (2 * rho)
        drho_s = q / rho                                 # (dq/dsigma = 2q) / (2 rho)
        n = y.size
        A = np.empty((n + 1, n + 1))
        A[:n, :n] = J / rho - np.outer(F, drho_y) / rho**2
        A[:n, n] = F / rho - F * drho_s / rho**2
        A[n, :n] = -drho_y / rho**2
        A[n, n] = -drho_s / rho**2
        return A

    return afun, ajac


def _integrate(Xt, D, alpha, gamma_target, formulation, rtol, atol=None):
    """Integrate one formulation; returns (w, solution of the bridged pass).

    atol=None: atol = rtol * |y0|_inf (pure relative control).
    Pass 1 integrates the bridged system until sigma = log(gamma_target) (terminal
    event) and keeps the last accepted step before it (no interpolation); pass 2
    integrates plainly in sigma from the gamma~ of that state, recomputed from w,
    to exactly log(gamma_target).
    """
    g0, s0 = _initial(Xt, D, alpha, gamma_target)
    if formulation == "a":
        fun, jac = _dual_system(Xt, D, alpha)
        y0 = s0
        to_w = lambda y: _dual_parts(y, D, alpha)[0]
    else:
        fun, jac = _logp_system(Xt, D, alpha)
        y0 = _s_to_phi(s0, D, alpha)
        to_w = lambda y: _logp_w(y, D, alpha)
    if atol is None:
        atol = rtol * max(np.abs(y0).max(), 1e-300)
    atol = np.broadcast_to(np.asarray(atol, dtype=float), y0.shape)
    sigT = np.log(gamma_target)

    afun, ajac = _bridged(fun, jac)
    event = lambda xi, z: z[-1] - sigT
    event.terminal = True
    sol = solve_ivp(afun, (0.0, 1e6), np.append(y0, np.log(g0)), method="Radau", jac=ajac,
                    rtol=rtol, atol=np.append(atol, rtol), events=event)
    if sol.status != 1:
        raise RuntimeError(f"reference flow ({formulation}) did not reach gamma~ = "
                           f"{gamma_target:g}: {sol.message}")
    y = sol.y[:-1, -2]
    sol2 = solve_ivp(fun, (np.log(_gamma_of_w(Xt, to_w(y))), sigT), y, method="Radau",
                     jac=jac, rtol=rtol, atol=atol)
    if not sol2.success:
        raise RuntimeError(f"reference flow ({formulation}) failed: {sol2.message}")
    return to_w(sol2.y[:, -1]), sol


def _plan(Xt, D, alpha, gamma_target):
    """Predictor pass: chosen formulation and per-component atol scale."""
    wpred, sol = _integrate(Xt, D, alpha, gamma_target, "b", 1e-6)
    if np.abs(wpred).max() / alpha**D <= 1.0:
        Y = np.array([_phi_to_s(y, D, alpha) for y in sol.y[:-1].T]).T
        form = "a"
    else:
        Y = sol.y[:-1]
        form = "b"
    scale = np.abs(Y).max(axis=1)
    return form, np.maximum(scale, 1e-8 * scale.max())


def reference_w(Xt, depth, alpha, gamma_target, rtol=1e-13):
    """w of the depth-`depth` diagonal network (init alpha) when gamma~ = gamma_target."""
    Xt = np.asarray(Xt, dtype=float)
    D = int(depth)
    if D != depth or D < 2:
        raise ValueError("depth must be an integer >= 2")
    if not (alpha > 0 and gamma_target > 0):
        raise ValueError("alpha and gamma_target must be positive")
    N, d = Xt.shape
    lp = linprog(np.zeros(d), A_ub=-Xt, b_ub=-np.ones(N), bounds=[(None, None)] * d)
    if lp.status != 0:
        raise ValueError("data not linearly separable (Xt w >= 1 infeasible): gamma~ is bounded")
    form, scale = _plan(Xt, D, float(alpha), float(gamma_target))
    w, _ = _integrate(Xt, D, float(alpha), float(gamma_target), form, rtol, rtol * scale)
    return w


# ---------------------------------------------------------------- physical time
def reference_w_time(Xt, depth, alpha, gamma_target, rtol=1e-12, return_log_time=False):
    """w when gamma~ = gamma_target (or, for a list of increasing targets, one w per target),
    integrated in physical time (a second, independent
    route through loss plateaus; usable while the loss is representable, gamma~ <~ 50).

    State: the 2d log-parameter offsets phi± = log(u±/alpha), *both* integrated (the
    conservation law is not used), against tau = D alpha^(D-2) t:
        dphi±/dtau = ± exp((D-2) phi±) * r,   r = Xt^T exp(-Xt w) / N   (L formed directly).
    The flow is autonomous, so tau is re-anchored to 0 whenever a step falls below 1e-9 of
    tau (an escape from a saddle ends in a finite-time blow-up of u^(2-D) whose last stretch
    float64 would not resolve relative to the time since the start).  The step that crosses
    gamma~ = gamma_target is located on the dense output and re-integrated to the crossing.
    With ``return_log_time`` also log t at each target (t = anchors + tau, / (D alpha^(D-2))).
    """
    from scipy.integrate import Radau
    from scipy.optimize import brentq

    Xt = np.asarray(Xt, dtype=float)
    N, d = Xt.shape
    D, alpha = int(depth), float(alpha)
    a = D - 2.0

    def w_of(z):
        return alpha**D * (np.expm1(D * z[:d]) - np.expm1(D * z[d:]))

    def gam(z):
        return _gamma_of_w(Xt, w_of(z))

    def fun(t, z):
        with np.errstate(over="ignore", invalid="ignore"):   # far Newton trials: inf, rejected
            r = Xt.T @ np.exp(-(Xt @ w_of(z))) / N
            return np.concatenate([np.exp(a * z[:d]) * r, -np.exp(a * z[d:]) * r])

    def jac(t, z):
        w = w_of(z)
        e = np.exp(-(Xt @ w))
        r = Xt.T @ e / N
        H = -(Xt.T * e) @ Xt / N                   # dr/dw
        dw = np.concatenate([D * alpha**D * np.exp(D * z[:d]), -D * alpha**D * np.exp(D * z[d:])])
        Ep, Em = np.exp(a * z[:d]), np.exp(a * z[d:])
        J = np.empty((2 * d, 2 * d))
        J[:d, :d] = Ep[:, None] * H * dw[None, :d]
        J[:d, d:] = Ep[:, None] * H * dw[None, d:]
        J[d:, :d] = -Em[:, None] * H * dw[None, :d]
        J[d:, d:] = -Em[:, None] * H * dw[None, d:]
        J[:d, :d] += np.diag(a * Ep * r)
        J[d:, d:] -= np.diag(a * Em * r)
        return J

    targets = list(np.atleast_1d(np.asarray(gamma_target, dtype=float)))
    gamma_max = max(targets)
    out, times, anchor = [], [], 0.0
    z = np.zeros(2 * d)
    # phi moves by ~gamma~/alpha^D in the kernel regime: the absolute tolerance follows it
    atol = rtol * 1e-2 * min(1.0, gamma_max / alpha**D)
    make = lambda t0, z0, tb: Radau(fun, t0, z0, tb, rtol=rtol, atol=atol, jac=jac)
    sol = make(0.0, z, np.inf)
    while targets:
        sol.step()
        if sol.status == "failed":
            raise RuntimeError("reference flow (physical time) failed")
        while targets and gam(sol.y) >= targets[0]:
            dense = sol.dense_output()
            hit = brentq(lambda t: gam(dense(t)) - targets[0], sol.t_old, sol.t,
                         xtol=1e-16 * sol.t, rtol=1e-15)
            again = make(sol.t_old, sol.y_old, hit)
            while again.status == "running":
                again.step()
            out.append(w_of(again.y))
            times.append(np.log(anchor + hit) - np.log(D) - (D - 2) * np.log(alpha))
            targets.pop(0)
        if sol.h_abs < 1e-9 * sol.t:
            anchor += sol.t
            sol = make(0.0, sol.y, np.inf)
    w = out[0] if np.ndim(gamma_target) == 0 else np.array(out)
    if return_log_time:
        return w, (times[0] if np.ndim(gamma_target) == 0 else np.array(times))
    return w
