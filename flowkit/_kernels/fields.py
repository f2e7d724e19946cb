"""Numba kernel: a Trajectory's fields from the saved states (trajectory.Trajectory.from_states).

The same kernels as the Python loop it replaces (state_to_w, softmax_margins, log_kappa_xi),
called once per trajectory instead of three dispatches per saved point: ~18 us a point
from Python, 2.2 ms of a 121-point ``integrate`` call, more than the compiled integration
of a small case.
"""
import math

import numpy as np
from numba import njit

from .flow import (_amin, log_kappa, log_kappa_xi, margin_offsets, softmax_margins, softplus,
                   state_to_w)


@njit(cache=True)
def fields(gamma, states, Xt, D, A):
    """(w, delta = (delta+, delta-), margin, gamma~ of the state, log t) at each saved
    point; states are (y, omega, xi) (flow.py)."""
    n = gamma.shape[0]
    d = Xt.shape[1]
    w = np.empty((n, d))
    delta = np.empty((n, 2, d))
    margin = np.empty(n)
    gamma_state = np.empty(n)
    log_time = np.empty(n)
    for k in range(n):
        sigma = math.log(gamma[k])
        y = states[k, :d]
        dp, dm, wk = state_to_w(sigma, y, D, A)
        for i in range(d):
            w[k, i] = wk[i]
            delta[k, 0, i] = dp[i]
            delta[k, 1, i] = dm[i]
        m, _, gamma_state[k] = softmax_margins(Xt, wk)
        margin[k] = _amin(m)
        # omega = log(t kappa) - gamma~
        log_time[k] = states[k, d] + gamma[k] - log_kappa_xi(sigma, y, states[k, d + 1:], Xt, D, A)
    return w, delta, margin, gamma_state, log_time


@njit(cache=True)
def softplus_each(x):
    """``flow.softplus`` of every entry (the Lemma-3 slack of diagnostics.invariants: one
    call instead of one per saved point)."""
    out = np.empty(x.shape[0])
    for k in range(x.shape[0]):
        out[k] = softplus(x[k])
    return out


@njit(cache=True)
def saved_rows0(sigma, Y, log_t, Xt, D, A):
    """The saved layout (y, omega, xi) of mode-0 solver states Y (rows y) at sigma with the
    time quadrature's log t (driver.Driver._save with flow.Flow's maps: omega = log t +
    log kappa - gamma~, xi = margin offsets), all rows in one call."""
    N, d = Xt.shape
    m = Y.shape[0]
    out = np.empty((m, d + 1 + N))
    for k in range(m):
        y = Y[k, :d]
        for i in range(d):
            out[k, i] = y[i]
        out[k, d] = log_t[k] + log_kappa(sigma[k], y, Xt, D, A) - math.exp(sigma[k])
        xi = margin_offsets(sigma[k], y, Xt, D, A)
        for j in range(N):
            out[k, d + 1 + j] = xi[j]
    return out
