"""Numba kernels of the discrete baselines (:mod:`flowkit.baselines`): gradient descent
and the paper's normalised gradient descent on u = (u+, u-), w = u+^D - u-^D.

One step from u with step factor c (c = lr for normalised GD, c = lr L = lr e^{-gamma~}
for plain GD), g = Xtᵀ softmax(-m) = r / L:

    u± <- u± ± c D u±^{D-1} g

carried exactly in the log-parameter offsets delta± = log u± - log alpha:

    delta± <- delta± + log1p(± eta c D alpha^{D-2} e^{(D-2) delta±} g)

(eta = 1 for a full step, eta in (0, 1] for a partial step that lands on a requested
gamma~).  w = alpha^D (expm1(D delta+) - expm1(D delta-)) (flow kernels' ``_w_of``), so w
keeps full relative precision where u barely moves (large alpha).  The loss L is never
formed: gamma~ = log N - logsumexp(-m) with a shift, and plain GD's c = lr e^{-gamma~}
is formed from its logarithm (it underflows to 0 past gamma~ ~ 745 + log lr, where GD
stops moving: the ``STALL`` status).

The loops allocate nothing per step (N and d are small; the step costs ~2(N + d)
transcendental functions), so the baseline's wall time measures the method, not
Python or allocation overhead.

Compile time (flow.py's docstring, "Compile time"): ``run`` and ``land`` are the jitted
entry points; ``step_from`` is plain Python around the kernels ``run`` has compiled
(``fill_w``, ``gamma_and_p``, ``fill_g``, ``trial``), as ``BaselineTrajectory`` calls
them, so no third entry point re-links and re-optimises them.  Same bits.
"""
import math

import numpy as np
from numba import njit

from .flow import _w_of

# status codes of ``run``
REACHED = 0     # the next full step reaches the last requested gamma~ (not taken)
BUDGET = 1      # kmax steps done
ASCENT = 2      # a full step lowered gamma~ (raised the loss): lr too large here
SIGN = 3        # a full step would make some u± <= 0: lr too large here
NONFINITE = 4   # the step overflowed
STALL = 5       # the step changed no parameter (float64): the iteration stands still

EPS = 2.220446049250313e-16


@njit(cache=True)
def gamma_and_p(Xt, w, m, p):
    """gamma~ = log N - logsumexp(-m) for m = Xt w; fills m and p = softmax(-m)."""
    N, d = Xt.shape
    mmin = np.inf
    mabs = 0.0
    for n in range(N):
        s = 0.0
        for i in range(d):
            s += Xt[n, i] * w[i]
        m[n] = s
        mmin = min(mmin, s)
        mabs = max(mabs, abs(s))
    Z = 0.0
    for n in range(N):
        e = math.exp(-(m[n] - mmin))
        p[n] = e
        Z += e
    for n in range(N):
        p[n] /= Z
    if mabs < 0.5:  # small margins: keep the digits of gamma~ ~ mean(m)
        acc = 0.0
        for n in range(N):
            acc += math.expm1(-m[n])
        return 0.0 - math.log1p(acc / N)  # 0.0 - : +0.0, not -0.0, at w = 0
    return mmin - math.log(Z) + math.log(N)


@njit(cache=True)
def fill_w(dp, dm, D, A, w):
    for i in range(dp.shape[0]):
        w[i] = _w_of(dp[i], dm[i], D, A)


@njit(cache=True)
def fill_g(Xt, p, g):
    N, d = Xt.shape
    for i in range(d):
        s = 0.0
        for n in range(N):
            s += Xt[n, i] * p[n]
        g[i] = s


@njit(cache=True)
def trial(dp, dm, g, logc, D, eta, tp, tm):
    """tp, tm = delta± after a step of fraction eta with log step factor logc
    (log(c D alpha^{D-2})).  Returns False if some u± would become <= 0."""
    a = D - 2.0
    c0 = eta * math.exp(logc)
    for i in range(dp.shape[0]):
        if a == 0.0:
            cp = c0 * g[i]
            cm = cp
        else:
            cp = eta * math.exp(logc + a * dp[i]) * g[i]
            cm = eta * math.exp(logc + a * dm[i]) * g[i]
        if cp <= -1.0 or -cm <= -1.0:
            return False
        tp[i] = dp[i] + math.log1p(cp)
        tm[i] = dm[i] + math.log1p(-cm)
    return True


@njit(cache=True)
def run(Xt, D, A, logc0, normalized, dp, dm, gam, log_t, k, kmax, grid, j, saved, allow_ascent):
    """Iterate from the state (dp, dm, gamma~ = gam, log_t, k) until the next full step
    would reach the last entry of ``grid`` or ``kmax`` steps are done.

    dp, dm are updated in place.  Each grid[j'] (j' >= j) that a full step reaches
    (gamma~ after the step >= grid[j']) records the state before that step in
    saved[j'] = (delta+, delta-, gamma~, log t, k).  Returns (status, gam, log_t, k, j,
    gamma~ after the rejected step for ASCENT/NONFINITE, number of ascent steps taken,
    gamma~ before the first of them).  With ``allow_ascent`` a step that lowers gamma~
    is taken and counted instead of ending the loop with ASCENT.

    logc0 = log(lr D alpha^{D-2}); plain GD (``normalized`` False) multiplies the step by
    L = e^{-gamma~}.  log t accumulates the gradient-flow time of each step: lr e^{gamma~}
    for normalised GD (a GD step of size lr / L), lr for plain GD.
    """
    N, d = Xt.shape
    w = np.empty(d)
    m = np.empty(N)
    p = np.empty(N)
    pn = np.empty(N)
    g = np.empty(d)
    tp = np.empty(d)
    tm = np.empty(d)
    ngrid = grid.shape[0]
    fill_w(dp, dm, D, A, w)
    gam = gamma_and_p(Xt, w, m, p)
    loglr = logc0 - math.log(D) - (D - 2.0) / D * A
    n_ascent = 0
    first_ascent = np.nan
    while k < kmax:
        fill_g(Xt, p, g)
        logc = logc0 if normalized else logc0 - gam
        if not trial(dp, dm, g, logc, D, 1.0, tp, tm):
            return SIGN, gam, log_t, k, j, np.nan, n_ascent, first_ascent
        fill_w(tp, tm, D, A, w)
        gnew = gamma_and_p(Xt, w, m, pn)
        if not math.isfinite(gnew):
            return NONFINITE, gam, log_t, k, j, gnew, n_ascent, first_ascent
        if gnew < gam - 64.0 * EPS * max(1.0, abs(gam)):
            if not allow_ascent:
                return ASCENT, gam, log_t, k, j, gnew, n_ascent, first_ascent
            if n_ascent == 0:
                first_ascent = gam
            n_ascent += 1
        same = True
        for i in range(d):
            if tp[i] != dp[i] or tm[i] != dm[i]:
                same = False
                break
        if same:
            return STALL, gam, log_t, k, j, gnew, n_ascent, first_ascent
        while j < ngrid and gnew >= grid[j]:
            for i in range(d):
                saved[j, i] = dp[i]
                saved[j, d + i] = dm[i]
            saved[j, 2 * d] = gam
            saved[j, 2 * d + 1] = log_t
            saved[j, 2 * d + 2] = k
            j += 1
        if j == ngrid:
            return REACHED, gam, log_t, k, j, gnew, n_ascent, first_ascent
        # take the step
        dt = loglr + gam if normalized else loglr
        if log_t == -np.inf:
            log_t = dt
        else:
            hi = max(log_t, dt)
            log_t = hi + math.log1p(math.exp(-abs(log_t - dt)))
        for i in range(d):
            dp[i] = tp[i]
            dm[i] = tm[i]
        for n in range(N):
            p[n] = pn[n]
        gam = gnew
        k += 1
    return BUDGET, gam, log_t, k, j, np.nan, n_ascent, first_ascent


@njit(cache=True)
def land(Xt, D, A, logc0, normalized, dp, dm, gam, target):
    """Fraction eta in (0, 1] of the step from (dp, dm) (gamma~ = gam < target) that lands
    on gamma~ = target, by the Illinois variant of regula falsi on [0, 1] (the full step
    reaches the target).  Returns (eta, delta+, delta-, gamma~ at eta, evaluations)."""
    N, d = Xt.shape
    w = np.empty(d)
    m = np.empty(N)
    p = np.empty(N)
    pt = np.empty(N)
    g = np.empty(d)
    tp = np.empty(d)
    tm = np.empty(d)
    fill_w(dp, dm, D, A, w)
    gamma_and_p(Xt, w, m, p)
    fill_g(Xt, p, g)
    logc = logc0 if normalized else logc0 - gam
    tol = 4.0 * EPS * abs(target)
    a, fa = 0.0, gam - target
    b = 1.0
    # callers land only a full step that ``run`` took; every fraction of it keeps u± > 0
    # (the factors 1 + eta c g are monotone in eta), so only the full step can fail
    if not trial(dp, dm, g, logc, D, b, tp, tm):
        raise ValueError("land: the full step would make some u <= 0")
    fill_w(tp, tm, D, A, w)
    fb = gamma_and_p(Xt, w, m, pt) - target
    nev = 2
    side = 0
    eta, fe = b, fb
    for _ in range(200):
        if abs(fe) <= tol or b - a <= 4.0 * EPS:
            break
        eta = (a * fb - b * fa) / (fb - fa)
        if not (a < eta < b):
            eta = 0.5 * (a + b)
        trial(dp, dm, g, logc, D, eta, tp, tm)
        fill_w(tp, tm, D, A, w)
        fe = gamma_and_p(Xt, w, m, pt) - target
        nev += 1
        if fe < 0.0:
            a, fa = eta, fe
            if side == -1:
                fb *= 0.5
            side = -1
        else:
            b, fb = eta, fe
            if side == 1:
                fa *= 0.5
            side = 1
    if fe < 0.0 and abs(fe) > tol:  # pragma: no cover - bracket exhausted below target
        eta = b
    trial(dp, dm, g, logc, D, eta, tp, tm)
    fill_w(tp, tm, D, A, w)
    gl = gamma_and_p(Xt, w, m, pt)
    return eta, tp.copy(), tm.copy(), gl, nev


# plain Python (flow.py's docstring, "Compile time"): it calls the kernels that ``run``
# has compiled already, where a jitted wrapper would link and re-optimise them again
def step_from(Xt, D, A, logc0, normalized, dp, dm, gam, eta):
    """delta± after the step of fraction eta from (dp, dm) (gamma~ = gam there)."""
    N, d = Xt.shape
    w = np.empty(d)
    m = np.empty(N)
    p = np.empty(N)
    g = np.empty(d)
    tp = np.empty(d)
    tm = np.empty(d)
    fill_w(dp, dm, D, A, w)
    gamma_and_p(Xt, w, m, p)
    fill_g(Xt, p, g)
    if not trial(dp, dm, g, logc0 if normalized else logc0 - gam, D, eta, tp, tm):
        raise ValueError("step_from: the step would make some u <= 0")
    return tp, tm
