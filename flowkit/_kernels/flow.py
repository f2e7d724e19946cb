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
it is exponentiated, so nothing overflows for |D log alpha| <= 600 (problem.py) and gamma~ <= 1e30
(stopping.MAX_GAMMA; the xi rows are evaluated in double-double by ``xi_rates``).

Compile time.  Every kernel is compiled on first use (then cached), and a first
``flowkit run`` spends most of its time there, so the kernels are written for a short
compile, each change bit-for-bit neutral:
* the evaluators ``_common0`` / ``_common_xi`` are the jitted entry points, called from
  Python; ``rhs``, ``jac_factors``, ``xi_rhs``, ``xi_jac_factors``, ``dlogkappa``,
  ``dlogkappa_xi`` are plain Python.  (A jitted wrapper links and re-optimises its
  callee's whole call tree, ~1 s apiece, and a constant flag passed between jitted
  functions is a Literal[bool] specialisation of its own, i.e. a second full compile.)
  Whether the Jacobian's factors are wanted is a run-time value, the length of the
  buffer ``out`` they are written to (``_NO_FACTORS``: none), so the right-hand side
  returns one array: boxing a tuple of arrays would cost the solver's most frequent
  call ~2 us more;
* no slice assignment from an array (``f[:d] = ...``, ``J[:d, :d] = ...``): numba's
  broadcasting setitem with its error-message formatting costs ~2 s (1-D) and ~1.5 s
  (2-D) of compile; explicit loops cost nothing;
* min/max/sum/mean reductions are loops (``_amin``, ``_amax``), in numba's own order
  and NaN convention, so the results are the same bits.  BLAS calls (``@`` on arrays,
  ``np.dot``) stay: they set the rounding, and they are what scales for large d.
"""
import math

import numpy as np
from numba import njit

from .xi_rates import xi_rates

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
def _amin(x):
    """x.min() for a non-empty 1-D array, as numba computes it (first NaN wins); a loop
    compiles in a fraction of the time of numba's generic reduction."""
    r = x[0]
    if math.isnan(r):
        return r
    for k in range(1, x.shape[0]):
        v = x[k]
        if math.isnan(v):
            return v
        if v < r:
            r = v
    return r


@njit(cache=True)
def _amax(x):
    """x.max() for a non-empty 1-D array, as numba computes it (see ``_amin``)."""
    r = x[0]
    if math.isnan(r):
        return r
    for k in range(1, x.shape[0]):
        v = x[k]
        if math.isnan(v):
            return v
        if v > r:
            r = v
    return r


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
    M = (2.0 * D - 2.0) * max(_amax(dp), _amax(dm))
    qp = np.exp((2.0 * D - 2.0) * dp - M)
    qm = np.exp((2.0 * D - 2.0) * dm - M)
    St = 0.0  # np.sum's order: left to right from 0
    for i in range(g.shape[0]):
        St += (qp[i] + qm[i]) * g[i] * g[i]
    return qp, qm, M, St


@njit(cache=True)
def _log_kappa(dp, dm, g, D, A):
    """log kappa = log(D² alpha^{2D-2} S) (math.md, "Log-loss time")."""
    _, _, M, St = _weights(dp, dm, g, D)
    return 2.0 * math.log(D) + (2.0 * D - 2.0) / D * A + M + math.log(St)


@njit(cache=True)
def softmax_margins(Xt, w):
    """Margins m = Xt w, p = softmax(-m) and gamma~ = log N - logsumexp(-m) (shifted)."""
    m = Xt @ w
    N = m.shape[0]
    mmin = _amin(m)
    e = np.exp(-(m - mmin))
    Z = 0.0
    for k in range(N):
        Z += e[k]
    p = e / Z
    if _amax(np.abs(m)) < 0.5:  # small margins: -log1p(mean(expm1(-m))) keeps the digits
        em = np.expm1(-m)
        s = 0.0
        for k in range(N):
            s += em[k]
        gamma_state = -math.log1p(s / N)
    else:
        gamma_state = mmin - math.log(Z) + math.log(m.shape[0])
    return m, p, gamma_state


# ``out`` of the evaluators when only the right-hand side is wanted
_NO_FACTORS = np.empty(0)


@njit(cache=True)
def _common0(sigma, z, Xt, D, A, out):
    """(f, J_omega,omega): the right-hand side f for the state z = (y[, omega]) (below
    XI_SWITCH) and, if out is not empty, the factors of its Jacobian (``jac_factors``)
    written to out = [delta | b | v | b g | g v - lS | p] (5 d + N); J_omega,omega is
    returned with them (0 when z carries no omega), else 0.  O(N d): no d x d array is formed.
    Called from Python (module docstring, "Compile time")."""
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
    for i in range(d):
        f[i] = bg[i] - beta * y[i]

    if not timed and out.shape[0] == 0:
        return f, 0.0  # the rest is for d log kappa/dsigma and the Jacobian only
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
        for i in range(d):
            two[i, 0] = qg[i]
            two[i, 1] = vbg[i]
        mm = Xt @ two
        pmm = 0.0  # np.sum(p * mm[:, 0] * mm[:, 1]), in np.sum's order
        for k in range(Xt.shape[0]):
            pmm += p[k] * mm[k, 0] * mm[k, 1]
        qCvbg = pmm - St * np.dot(g, vbg)
        f[d] = gam * math.expm1(-z[d]) + (np.dot(dq * g * g, bg) - 2.0 * qCvbg) / St
    if out.shape[0] == 0:
        return f, 0.0
    # the Jacobian's low-rank factor through log S~ (``jac_factors``)
    Cqg = Xt.T @ (p * (Xt @ qg)) - g * St
    lS = (dq * g * g - 2.0 * v * Cqg) / St
    for i in range(d):
        out[i] = delta[i]
        out[d + i] = b[i]
        out[2 * d + i] = v[i]
        out[3 * d + i] = bg[i]
        out[4 * d + i] = g[i] * v[i] - lS[i]
    for k in range(Xt.shape[0]):
        out[5 * d + k] = p[k]
    return f, (-gam * math.exp(-z[d]) if timed else 0.0)


# rhs, jac_factors, dlogkappa are plain Python: as jitted wrappers each would link and
# re-optimise all of _common0 (module docstring, "Compile time").
def rhs(sigma, z, Xt, D, A):
    """d z / d sigma for z = (y, omega) or z = y."""
    return _common0(sigma, z, Xt, D, A, _NO_FACTORS)[0]


def jac_factors(sigma, z, Xt, D, A):
    """Factors of the Jacobian of ``rhs`` (math: flowkit/structured.py, ``Jacobian0``):

        J_yy = diag(delta) + U Vᵀ,   U = [diag(b) Xtᵀ | b g],   V = [-diag(v) Xtᵀ diag(p) | g v - lS],

    from dg/dy = -C diag(v), C = Xtᵀ diag(p) Xt - g gᵀ (v = dw/dy) and the y-derivative of
    log S~, lS = (dq g² + 2 (q g)ᵀ dg/dy) / S~ = dq g²/S~ - 2 v ⊙ (Xtᵀ(p ⊙ Xt(q g)) - g S~)/S~
    (gᵀ q g = S~): O(N d).  Returns (delta, b, v, p, b g, g v - lS, J_omega,omega); the
    omega row's y-derivatives are left out (omega never feeds back into y, so the Newton
    iteration converges all the same) and J_omega,omega = 0 when z carries no omega.
    (Computed in ``_common0``; the vectors are views of one buffer.)"""
    N, d = Xt.shape
    out = np.empty(5 * d + N)
    jww = _common0(sigma, z, Xt, D, A, out)[1]
    delta, b, v, bg, r2 = (out[k * d:(k + 1) * d] for k in range(5))
    return delta, b, v, out[5 * d:], bg, r2, jww


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
    UW = U @ W  # BLAS: the O(N d²) part
    J = np.zeros((n, n))
    for i in range(d):  # a loop, not J[:d, :d] = U @ W (module docstring, "Compile time")
        for k in range(d):
            J[i, k] = UW[i, k] + bg[i] * r2[k]
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


def dlogkappa(sigma, y, Xt, D, A):
    """d log kappa / d sigma along the flow at state y."""
    return _common0(sigma, np.append(y, 0.0), Xt, D, A, _NO_FACTORS)[0][-1]


# ---------------------------------------------------------------------------
# Past XI_SWITCH: state (y, xi[, omega]), xi = m - gamma~ (module docstring)

@njit(cache=True)
def softmax_offsets(xi):
    """p = softmax(-xi) and Lambda = log(mean e^{-xi}) (shifted)."""
    xmin = _amin(xi)
    e = np.exp(-(xi - xmin))
    Z = 0.0
    for k in range(xi.shape[0]):
        Z += e[k]
    return e / Z, math.log(Z / xi.shape[0]) - xmin


@njit(cache=True)
def _common_xi(sigma, z, Xt, D, A, out):
    """(f, S~, gamma~, J_omega,omega): the right-hand side f for z = (y, xi[, omega]) and,
    if out is not empty, the factors of its Jacobian (``xi_jac_factors``) written to
    out = [delta | b | b g | lSy | h | q | p | e1 | u | a_v] (6 d + 4 N) with S~, gamma~
    and J_omega,omega (0 when z carries no omega); else those three are 0.
    O(N d).  Called from Python (module docstring, "Compile time")."""
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
    for i in range(d):
        f[i] = bg[i] - beta * y[i]
    # dm/dgamma~ = Xt (q g)/S (with q, S both scaled by e^{-M})
    av = (Xt @ qg) / St
    pav = np.dot(p, av)
    for k in range(N):
        f[d + k] = gam * (av[k] - pav + Lam)
    if not timed and out.shape[0] == 0:
        return f, 0.0, 0.0, 0.0  # the rest is for omega's row and the Jacobian only
    dq = (2.0 * D - 2.0) * phi * (qp * sp - qm * sm)     # dq~/dy (diagonal)
    lSy = dq * g * g / St                                # d log S~/dy
    # d log S~/dxi = 2 (qg)ᵀ dg/dxi / S~ with dg/dxi = -Xtᵀ(diag p - p pᵀ) and gᵀ qg = S~
    lSx = 2.0 * p * (1.0 - av)
    if timed:
        # omega = log(t kappa) - gamma~ (as in _common0); d log kappa/dsigma =
        # lSy·(y' + beta y) + lSx·xi'  (y' + beta y = b g; lSx·1 = 0)
        f[n - 1] = gam * math.expm1(-z[n - 1]) + np.dot(lSy, bg) + np.dot(lSx, f[d:d + N])
    if out.shape[0] == 0:
        return f, 0.0, 0.0, 0.0
    delta = a * phi * (cfp * sp - cfm * sm) * g - beta
    h = gam * dq * g / St
    for i in range(d):
        out[i] = delta[i]
        out[d + i] = b[i]
        out[2 * d + i] = bg[i]
        out[3 * d + i] = lSy[i]
        out[4 * d + i] = h[i]
        out[5 * d + i] = q[i]
    o = 6 * d
    for k in range(N):
        out[o + k] = p[k]
        out[o + N + k] = p[k] - lSx[k]
        out[o + 2 * N + k] = gam * av[k]
        out[o + 3 * N + k] = av[k]
    return f, St, gam, (-gam * math.exp(-z[n - 1]) if timed else 0.0)


# xi_rhs, xi_jac_factors, dlogkappa_xi are plain Python, as rhs (module docstring).
def xi_rhs(sigma, z, Xt, D, A):
    """d z / d sigma for z = (y, xi) or z = (y, xi, omega)."""
    return _common_xi(sigma, z, Xt, D, A, _NO_FACTORS)[0]


def xi_rhs_dd(sigma, z, Xt, D, A):
    """``xi_rhs`` for z = (y, xi) with the xi rows in double-double (``_kernels.xi_rates``:
    in float64 they carry ~eps gamma~ of noise; flow.py uses this past TIME_SWITCH)."""
    f = _common_xi(sigma, z, Xt, D, A, _NO_FACTORS)[0]
    N, d = Xt.shape
    out = np.empty(3 * N)
    xi_rates(sigma, z[:d], z[d:d + N], Xt, D, A, out)
    f[d:d + N] = out[:N]
    return f


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
    (structured.gram: symmetric BLAS).  (Computed in ``_common_xi``; the vectors are views
    of one buffer.)"""
    N, d = Xt.shape
    out = np.empty(6 * d + 4 * N)
    _, St, gam, jww = _common_xi(sigma, z, Xt, D, A, out)
    delta, b, bg, lSy, h, q = (out[k * d:(k + 1) * d] for k in range(6))
    p, e1, u, av = (out[6 * d + k * N:6 * d + (k + 1) * N] for k in range(4))
    return delta, b, p, bg, lSy, e1, h, u, q, av, St, gam, jww


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
    xi = m - _amin(m)
    e = np.exp(-xi)
    Z = 0.0
    for k in range(m.shape[0]):
        Z += e[k]
    return xi + math.log(Z / m.shape[0])


@njit(cache=True)
def log_kappa_xi(sigma, y, xi, Xt, D, A):
    """log kappa with p = softmax(-xi) (the state past XI_SWITCH)."""
    dp, dm, _ = state_to_w(sigma, y, D, A)
    p, _ = softmax_offsets(xi)
    return _log_kappa(dp, dm, Xt.T @ p, D, A)


def dlogkappa_xi(sigma, y, xi, Xt, D, A):
    """d log kappa / d sigma along the flow from the state (y, xi): the omega row of
    ``xi_rhs`` at omega = 0."""
    return _common_xi(sigma, np.concatenate((y, xi, np.zeros(1))), Xt, D, A, _NO_FACTORS)[0][-1]
