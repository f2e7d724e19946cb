"""Numba kernels: the flow's right-hand side, its analytic Jacobian, and the map
from the integrator's state to (theta, w, margins).

Coordinates (math.md, "Gradient flow" and "Log-loss time"; derivation in flow.py):

* independent variable  sigma = log(gamma~)   (gamma~ = -log L, never L itself);
* per feature one scalar psi_i = delta+_i - delta-_i, where delta± = theta± - log(alpha)
  are the log-parameter offsets.  The conservation law of math.md fixes delta± from psi:
      D = 2:  delta± = ±psi/2
      D > 2:  delta± = f(±a psi)/a,  f(x) = log((1 + e^x)/2),  a = D - 2
  (then e^{-a delta+} + e^{-a delta-} = 2, i.e. u+^{2-D} + u-^{2-D} = 2 alpha^{2-D}).
  delta± have opposite signs, so w = alpha^D (expm1(D delta+) - expm1(D delta-)) never
  cancels: full relative precision deep in the kernel regime, where u moves by ~1e-47,
  and in the rich regime, where 1 - c s would lose every digit;
* the state is y = psi / phi with phi = R/(1+R), R = gamma~/alpha^D, so that y is O(1)
  from the kernel regime (psi ~ gamma~/alpha^D) to the rich one (psi ~ log R) and one
  absolute tolerance fits the whole run;
* omega = log(t kappa) - gamma~ carries the gradient-flow time t while gamma~ is
  moderate (flow.py drops it past TIME_SWITCH, where it has relaxed onto its
  asymptotic value).  It relaxes to ~0 at rate gamma~, and rounding in
  d log kappa/dsigma (~eps gamma~) would otherwise throttle the step at large gamma~.

* past gamma~ = XI_SWITCH (flow.py) the state is (y, xi[, omega]), with margin offsets
  xi = m - gamma~ (one per sample) carried as ODE states (``xi_rhs``, ``xi_jac``):
      dy/dsigma   as above, but with p = softmax(-xi),
      dxi/dsigma  = gamma~ (a - pᵀa + Lambda),   a = Xt (q g) / S,
      Lambda      = log(mean e^{-xi})  (= 0 on the exact flow, where pᵀa = 1).
  Why: at gamma~ >~ 1e9 with two or more support vectors the O(1) margin gaps
  that set p are differences of O(gamma~) margins; computed from y they carry
  rounding ~eps gamma~, and the stiff gap dynamics (rate ~gamma~) asks Newton to
  place y to ~1/gamma~ -- beyond float64 -- so Radau's steps collapse.  With xi
  in the state the gaps are exact O(1) numbers and y is no longer stiff; the
  gaps relax (rate ~gamma~) onto a slow manifold that depends on y with O(1)
  sensitivity.  The p-weighted mean of xi is neutral under the exact flow
  (sum_n e^{-xi_n} = N is conserved); its rounding noise (~eps gamma~ per
  evaluation) integrated over a step would dominate the error estimate, so the
  term gamma~ Lambda makes it decay at rate gamma~ instead (exactly zero on the
  exact flow, so the solution is unchanged).

Every power (alpha^D, e^{(2D-2) delta}) is carried as a logarithm and shifted before
it is exponentiated, so nothing overflows for |D log alpha| <= 600 (problem.py) and gamma~ <= 1e15.
"""
import math

import numpy as np
from numba import njit

LOG2 = math.log(2.0)


@njit(cache=True)
def softplus(x):
    """log(1 + e^x) without overflow."""
    if x > 0.0:
        return x + math.log1p(math.exp(-x))
    return math.log1p(math.exp(x))


@njit(cache=True)
def _half_log(x):
    """f(x) = log((1 + e^x)/2), accurate near 0 (where it is ~x/2) and for large |x|."""
    if abs(x) < 0.5:
        return math.log1p(0.5 * math.expm1(x))
    return softplus(x) - LOG2


@njit(cache=True)
def _sigmoid(x):
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@njit(cache=True)
def _scales(sigma, A):
    """(log phi, beta, log(1+R)) with R = e^sigma / alpha^D, A = log(alpha^D)."""
    logR = sigma - A
    sp = softplus(logR)
    return logR - sp, math.exp(-sp), sp


@njit(cache=True)
def offsets(psi, D):
    """(delta+, delta-, d delta+/d psi, -d delta-/d psi) for one feature."""
    a = D - 2.0
    if a == 0.0:
        return 0.5 * psi, -0.5 * psi, 0.5, 0.5
    return _half_log(a * psi) / a, _half_log(-a * psi) / a, _sigmoid(a * psi), _sigmoid(-a * psi)


@njit(cache=True)
def _w_of(dp, dm, D, A):
    """w = alpha^D (e^{D dp} - e^{D dm}); dp, dm of opposite sign, so no cancellation."""
    if D * max(dp, dm) < 30.0:
        return math.exp(A) * (math.expm1(D * dp) - math.expm1(D * dm))
    return math.exp(A + D * dp) - math.exp(A + D * dm)


@njit(cache=True)
def state_to_w(sigma, y, D, A):
    """delta+, delta-, w from the state y at sigma = log gamma~."""
    d = y.shape[0]
    logphi, _, _ = _scales(sigma, A)
    phi = math.exp(logphi)
    dp = np.empty(d)
    dm = np.empty(d)
    w = np.empty(d)
    for i in range(d):
        dp[i], dm[i], _, _ = offsets(phi * y[i], D)
        w[i] = _w_of(dp[i], dm[i], D, A)
    return dp, dm, w


@njit(cache=True)
def psi_to_w(psi, D, A):
    """w for the per-feature offsets psi = delta+ - delta- (``offsets``, ``_w_of``)."""
    w = np.empty(psi.shape[0])
    for i in range(psi.shape[0]):
        dp, dm, _, _ = offsets(psi[i], D)
        w[i] = _w_of(dp, dm, D, A)
    return w


@njit(cache=True)
def _offsets_all(sigma, y, D, A):
    """delta±, their psi-derivatives (sp, sm: d delta+/dpsi, -d delta-/dpsi), phi, log phi,
    beta and log(1+R) for the state y at sigma."""
    d = y.shape[0]
    logphi, beta, log1pR = _scales(sigma, A)
    phi = math.exp(logphi)
    dp = np.empty(d)
    dm = np.empty(d)
    sp = np.empty(d)
    sm = np.empty(d)
    for i in range(d):
        dp[i], dm[i], sp[i], sm[i] = offsets(phi * y[i], D)
    return dp, dm, sp, sm, phi, logphi, beta, log1pR


@njit(cache=True)
def _weights(dp, dm, g, D):
    """q± = e^{(2D-2) delta±} scaled by e^{-M} (M their largest exponent) and
    S~ = Σ (q+ + q-) g², so that S = e^M S~ never overflows."""
    M = (2.0 * D - 2.0) * max(dp.max(), dm.max())
    qp = np.exp((2.0 * D - 2.0) * dp - M)
    qm = np.exp((2.0 * D - 2.0) * dm - M)
    return qp, qm, M, np.sum((qp + qm) * g * g)


@njit(cache=True)
def _log_kappa(dp, dm, g, D, A):
    """log kappa = log(D² alpha^{2D-2} S) (math.md, "Log-loss time")."""
    _, _, M, St = _weights(dp, dm, g, D)
    return 2.0 * math.log(D) + (2.0 * D - 2.0) / D * A + M + math.log(St)


@njit(cache=True)
def softmax_margins(Xt, w):
    """Margins m = Xt w, p = softmax(-m) and gamma~ = log N - logsumexp(-m) (shifted)."""
    m = Xt @ w
    mmin = m.min()
    e = np.exp(-(m - mmin))
    Z = e.sum()
    p = e / Z
    if np.max(np.abs(m)) < 0.5:  # small margins: -log1p(mean(expm1(-m))) keeps the digits
        gamma_state = -math.log1p(np.mean(np.expm1(-m)))
    else:
        gamma_state = mmin - math.log(Z) + math.log(m.shape[0])
    return m, p, gamma_state


@njit(cache=True)
def _common0(sigma, z, Xt, D, A):
    """Everything the state z = (y[, omega]) (below XI_SWITCH) gives: the right-hand side f
    and the vectors the Jacobian is built from.  O(N d): no d x d array is formed."""
    d = Xt.shape[1]
    a = D - 2.0
    y = z[:d]
    timed = z.shape[0] > d  # the state carries omega (gradient-flow time)
    gam = math.exp(sigma)
    dp, dm, sp, sm, phi, logphi, beta, log1pR = _offsets_all(sigma, y, D, A)
    w = np.empty(d)
    for i in range(d):
        w[i] = _w_of(dp[i], dm[i], D, A)
    _, p, _ = softmax_margins(Xt, w)
    g = Xt.T @ p

    # S = sum_i q_i g_i^2, q = e^{(2D-2) delta+} + e^{(2D-2) delta-}, kept as M + log(S~)
    qp, qm, M, St = _weights(dp, dm, g, D)
    qg = (qp + qm) * g

    # dy/dsigma = (1+R)/D (e^{a delta+} + e^{a delta-}) g / S - beta y
    base = log1pR - math.log(D) - M - math.log(St)
    cfp = np.exp(base + a * dp)
    cfm = np.exp(base + a * dm)
    b = cfp + cfm
    bg = b * g
    f = np.empty(z.shape[0])
    f[:d] = bg - beta * y

    v = D * (np.exp(A + logphi + D * dp) * sp + np.exp(A + logphi + D * dm) * sm)  # dw/dy
    dq = (2.0 * D - 2.0) * phi * (qp * sp - qm * sm)       # dq~/dy
    # y-diagonal of the Jacobian: d b_i/d y_i g_i - beta (b through delta±; through S: below)
    delta = a * phi * (cfp * sp - cfm * sm) * g - beta
    if timed:
        # omega = log(t kappa) - gamma~: d omega/dsigma = gamma~ expm1(-omega) + d log kappa/dsigma,
        # d log kappa/dsigma = lS·(b g) along the flow, lS = d log S~/dy (see _jac0_factors);
        # 2 (qg)ᵀ(dg/dy)(b g) = -2 (qg)ᵀ C (v b g) = -2 [(Xt qg)ᵀ(p ⊙ Xt(v b g)) - St gᵀ(v b g)]
        vbg = v * bg
        two = np.empty((d, 2))
        two[:, 0] = qg
        two[:, 1] = vbg
        mm = Xt @ two
        qCvbg = np.sum(p * mm[:, 0] * mm[:, 1]) - St * np.dot(g, vbg)
        f[d] = gam * math.expm1(-z[d]) + (np.dot(dq * g * g, bg) - 2.0 * qCvbg) / St
    return f, delta, b, v, p, g, qg, bg, dq, St, gam


@njit(cache=True)
def rhs(sigma, z, Xt, D, A):
    """d z / d sigma for z = (y, omega) or z = y."""
    return _common0(sigma, z, Xt, D, A)[0]


@njit(cache=True)
def jac_factors(sigma, z, Xt, D, A):
    """Factors of the Jacobian of ``rhs`` (math: flowkit/structured.py, ``Jacobian0``):

        J_yy = diag(delta) + U Vᵀ,   U = [diag(b) Xtᵀ | b g],   V = [-diag(v) Xtᵀ diag(p) | g v - lS],

    from dg/dy = -C diag(v), C = Xtᵀ diag(p) Xt - g gᵀ (v = dw/dy) and the y-derivative of
    log S~, lS = (dq g² + 2 (q g)ᵀ dg/dy) / S~ = dq g²/S~ - 2 v ⊙ (Xtᵀ(p ⊙ Xt(q g)) - g S~)/S~
    (gᵀ q g = S~): O(N d).  Returns (delta, b, v, p, b g, g v - lS, J_omega,omega); the
    omega row's y-derivatives are left out (omega never feeds back into y, so the Newton
    iteration converges all the same) and J_omega,omega = 0 when z carries no omega."""
    d = Xt.shape[1]
    f, delta, b, v, p, g, qg, bg, dq, St, gam = _common0(sigma, z, Xt, D, A)
    Cqg = Xt.T @ (p * (Xt @ qg)) - g * St
    lS = (dq * g * g - 2.0 * v * Cqg) / St
    jww = -gam * math.exp(-z[d]) if z.shape[0] > d else 0.0
    return delta, b, v, p, bg, g * v - lS, jww


@njit(cache=True)
def dense_jac0(Xt, delta, b, v, p, bg, r2, jww, n):
    """The dense n x n Jacobian assembled from ``jac_factors`` (n = d + 1 with omega)."""
    N, d = Xt.shape
    U = np.empty((d, N))
    W = np.empty((N, d))
    for m in range(N):
        for i in range(d):
            U[i, m] = b[i] * Xt[m, i]
            W[m, i] = -p[m] * Xt[m, i] * v[i]
    J = np.zeros((n, n))
    J[:d, :d] = U @ W
    for i in range(d):
        for k in range(d):
            J[i, k] += bg[i] * r2[k]
        J[i, i] += delta[i]
    if n > d:
        J[d, d] = jww
    return J


@njit(cache=True)
def log_kappa(sigma, y, Xt, D, A):
    """log kappa at state y, with p from the margins m = Xt w(y)."""
    dp, dm, w = state_to_w(sigma, y, D, A)
    _, p, _ = softmax_margins(Xt, w)
    return _log_kappa(dp, dm, Xt.T @ p, D, A)


@njit(cache=True)
def dlogkappa(sigma, y, Xt, D, A):
    """d log kappa / d sigma along the flow at state y."""
    z = np.zeros(y.shape[0] + 1)
    z[:-1] = y
    return _common0(sigma, z, Xt, D, A)[0][-1]


# ---------------------------------------------------------------------------
# Past XI_SWITCH: state (y, xi[, omega]), xi = m - gamma~ (module docstring)

@njit(cache=True)
def softmax_offsets(xi):
    """p = softmax(-xi) and Lambda = log(mean e^{-xi}) (shifted)."""
    xmin = xi.min()
    e = np.exp(-(xi - xmin))
    Z = e.sum()
    return e / Z, math.log(Z / xi.shape[0]) - xmin


@njit(cache=True)
def _common_xi(sigma, z, Xt, D, A):
    """Right-hand side for z = (y, xi[, omega]) and the vectors its Jacobian is built from;
    O(N d)."""
    N, d = Xt.shape
    a = D - 2.0
    y = z[:d]
    n = z.shape[0]
    timed = n > d + N  # the state carries omega (last) as well
    gam = math.exp(sigma)
    dp, dm, sp, sm, phi, _, beta, log1pR = _offsets_all(sigma, y, D, A)
    p, Lam = softmax_offsets(z[d:d + N])
    g = Xt.T @ p

    qp, qm, M, St = _weights(dp, dm, g, D)
    q = qp + qm
    qg = q * g

    base = log1pR - math.log(D) - M - math.log(St)
    cfp = np.exp(base + a * dp)
    cfm = np.exp(base + a * dm)
    b = cfp + cfm
    bg = b * g
    f = np.empty(n)
    f[:d] = bg - beta * y
    # dm/dgamma~ = Xt (q g)/S (with q, S both scaled by e^{-M})
    av = (Xt @ qg) / St
    f[d:d + N] = gam * (av - np.dot(p, av) + Lam)
    dq = (2.0 * D - 2.0) * phi * (qp * sp - qm * sm)     # dq~/dy (diagonal)
    lSy = dq * g * g / St                                # d log S~/dy
    # d log S~/dxi = 2 (qg)ᵀ dg/dxi / S~ with dg/dxi = -Xtᵀ(diag p - p pᵀ) and gᵀ qg = S~
    lSx = 2.0 * p * (1.0 - av)
    if timed:
        # omega = log(t kappa) - gamma~ (as in _common0); d log kappa/dsigma =
        # lSy·(y' + beta y) + lSx·xi'  (y' + beta y = b g; lSx·1 = 0)
        f[n - 1] = gam * math.expm1(-z[n - 1]) + np.dot(lSy, bg) + np.dot(lSx, f[d:d + N])
    delta = a * phi * (cfp * sp - cfm * sm) * g - beta
    return f, delta, b, p, q, bg, lSy, lSx, av, dq, g, St, gam


@njit(cache=True)
def xi_rhs(sigma, z, Xt, D, A):
    """d z / d sigma for z = (y, xi) or z = (y, xi, omega)."""
    return _common_xi(sigma, z, Xt, D, A)[0]


@njit(cache=True)
def xi_jac_factors(sigma, z, Xt, D, A):
    """Factors of the Jacobian of ``xi_rhs`` (math: flowkit/structured.py, ``JacobianXi``):

        J_yy  = diag(delta) - (b g) lSyᵀ                      diagonal + rank 1
        J_yxi = -diag(b) Xtᵀ diag(p) + (b g) e1ᵀ,  e1 = p - lSx   (dg/dxi = -Xtᵀ(diag p - p pᵀ))
        J_xiy = Xt diag(h) - u lSyᵀ,   h = gamma~ dq g / S~,  u = gamma~ a_v
        J_xixi = gamma~ (-(Xt diag(q) Xtᵀ / S~) diag(p) + a_v e1ᵀ - 1 pᵀ)   (``xi_block``)

    (pᵀ a_v = gᵀ(q g)/S~ = 1 identically in (y, xi), so its derivatives vanish;
    d Lambda/d xi = -p).  Returns (delta, b, p, b g, lSy, e1, h, u, q, a_v, S~, gamma~,
    J_omega,omega); the omega row's (y, xi)-derivatives are left out, as in ``jac_factors``.
    The one O(N² d) part, the Gram matrix Xt diag(q) Xtᵀ, is left to the caller
    (structured.gram: symmetric BLAS)."""
    N, d = Xt.shape
    n = z.shape[0]
    f, delta, b, p, q, bg, lSy, lSx, av, dq, g, St, gam = _common_xi(sigma, z, Xt, D, A)
    jww = -gam * math.exp(-z[n - 1]) if n > d + N else 0.0
    return delta, b, p, bg, lSy, p - lSx, gam * dq * g / St, gam * av, q, av, St, gam, jww


@njit(cache=True)
def xi_block(Gq, St, p, av, e1, gam):
    """J_xixi = gamma~ (-(Gq / S~) diag(p) + a_v e1ᵀ - 1 pᵀ) from Gq = Xt diag(q) Xtᵀ."""
    N = p.shape[0]
    Jxx = np.empty((N, N))
    for k in range(N):
        for m in range(N):
            Jxx[k, m] = gam * (-Gq[k, m] / St * p[m] + av[k] * e1[m] - p[m])
    return Jxx


@njit(cache=True)
def dense_xi_jac(Xt, delta, b, p, bg, lSy, e1, h, u, Jxx, jww, n):
    """The dense n x n Jacobian assembled from ``xi_jac_factors`` and ``xi_block``."""
    N, d = Xt.shape
    J = np.zeros((n, n))
    for i in range(d):
        for k in range(d):
            J[i, k] = -bg[i] * lSy[k]
        J[i, i] += delta[i]
        for m in range(N):
            J[i, d + m] = -b[i] * Xt[m, i] * p[m] + bg[i] * e1[m]
    for m in range(N):
        for i in range(d):
            J[d + m, i] = Xt[m, i] * h[i] - u[m] * lSy[i]
        for k in range(N):
            J[d + m, d + k] = Jxx[m, k]
    if n > d + N:
        J[n - 1, n - 1] = jww
    return J


@njit(cache=True)
def margin_offsets(sigma, y, Xt, D, A):
    """xi = m(y) - gamma~, shifted so that mean e^{-xi} = 1 (gamma~-consistent)."""
    _, _, w = state_to_w(sigma, y, D, A)
    m = Xt @ w
    mmin = m.min()
    xi = m - mmin
    Z = np.exp(-xi).sum()
    return xi + math.log(Z / m.shape[0])


@njit(cache=True)
def log_kappa_xi(sigma, y, xi, Xt, D, A):
    """log kappa with p = softmax(-xi) (the state past XI_SWITCH)."""
    dp, dm, _ = state_to_w(sigma, y, D, A)
    p, _ = softmax_offsets(xi)
    return _log_kappa(dp, dm, Xt.T @ p, D, A)


@njit(cache=True)
def dlogkappa_xi(sigma, y, xi, Xt, D, A):
    """d log kappa / d sigma along the flow from the state (y, xi): the omega row of
    ``xi_rhs`` at omega = 0."""
    z = np.zeros(y.shape[0] + xi.shape[0] + 1)
    z[:y.shape[0]] = y
    z[y.shape[0]:-1] = xi
    return _common_xi(sigma, z, Xt, D, A)[0][-1]
