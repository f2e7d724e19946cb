"""Numba kernel: the initial state's root, log P with gamma~(w(P)) = GAMMA_START
(flow.initial_state, math.md closed form for frozen p = 1/N).

It was a scipy ``bisect`` on a Python function: ~56 evaluations at ~30 us each, 1.6 ms of
every ``integrate`` call, as much as the whole compiled integration of a small case.  Here
the same bisection (scipy 1.17's ``Zeros/bisect.c``, step for step: the same iterates, the
same stopping test) runs on the same kernels, so the root is the same float.
"""
import math

import numpy as np
from numba import njit

from .flow import psi_to_w, softmax_margins


@njit(cache=True, error_model="numpy")
def psi_of(lP, ratio, sign, D):
    """psi for the largest feature's offset P = e^lP (flow.initial_state)."""
    a = D - 2.0
    big = math.exp(lP)
    psi = np.empty(ratio.shape[0])
    for i in range(ratio.shape[0]):
        if D == 2.0 or abs(ratio[i]) == 1.0:  # exact, where artanh(tanh(.)) would saturate
            psi[i] = big * ratio[i]
        else:
            psi[i] = (2.0 / a) * np.arctanh(ratio[i] * math.tanh(0.5 * a * big))
        psi[i] *= sign
    return psi


@njit(cache=True, error_model="numpy")
def excess(lP, ratio, sign, Xt, D, A, log_target):
    """> 0 past the target.  Far out the frozen-p solution's gamma~ falls again (mixed
    labels: a large w makes some margins very negative) or w overflows; both count as past
    it, so that the one sign change is the first crossing (a spurious root where w
    overflows broke D = 10, alpha = 0.01: omega0 = nan)."""
    w = psi_to_w(psi_of(lP, ratio, sign, D), D, A)
    for i in range(w.shape[0]):
        if not math.isfinite(w[i]):
            return 1.0
    m, _, gam = softmax_margins(Xt, w)
    if gam > 0:
        return math.log(gam) - log_target
    top = 0.0
    for k in range(m.shape[0]):
        top = max(top, abs(m[k]))
    return 1.0 if top > 1e-6 else -1.0


@njit(cache=True, error_model="numpy")
def root(lo, hi, ratio, sign, Xt, D, A, log_target, xtol, rtol, maxiter):
    """scipy's bisect(excess, lo, hi, xtol, rtol, maxiter): (root, converged)."""
    fa = excess(lo, ratio, sign, Xt, D, A, log_target)
    fb = excess(hi, ratio, sign, Xt, D, A, log_target)
    if fa * fb > 0:
        return math.nan, False
    if fa == 0:
        return lo, True
    if fb == 0:
        return hi, True
    dm = hi - lo
    xa = lo
    for _ in range(maxiter):
        dm *= 0.5
        xm = xa + dm
        fm = excess(xm, ratio, sign, Xt, D, A, log_target)
        if fm * fa >= 0:
            xa = xm
        if fm == 0 or abs(dm) < xtol + rtol * abs(xm):
            return xm, True
    return xa, False
