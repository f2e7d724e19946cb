"""The flow's right-hand sides, dense Jacobians and log kappa (``flow``) in the calling
convention of the compiled Radau step (``radau.specialise``): ``f(t, z, args)`` with
args = (Xt, D, log alpha^D), one triple per state-variable mode of flowkit.system:

* mode 0, z = y: ``rhs0`` / ``jac0`` (flow.Flow.fun / jac);
* mode 1, z = (y, xi, omega): ``rhs1`` / ``jac1`` (Flow.fun_xi / jac_xi);
* mode 2, z = (y, xi): ``rhs2`` (the xi rows in double-double, Flow.fun_xi_dd) / ``jac1``.

Each is the same arithmetic as the Python entry points of ``flow``, which call the same
jitted evaluators; only the Gram matrix Xt diag(q) Xtᵀ of jac1 is a GEMM here instead of
structured.gram's two SYRKs (rounding only).  (These are jitted wrappers, which link
their callees' call trees: a compile of their own, paid once per machine, in the step's
specialisation.)  A jitted caller passes ``np.empty(0)`` for flow._NO_FACTORS, which numba
would freeze as a read-only constant.
"""
import numpy as np
from numba import njit

from .flow import (_common0, _common_xi, dense_jac0, dense_xi_jac, log_kappa,
                   xi_block)
from .xi_rates import xi_rates


@njit(cache=True)
def rhs0(t, z, args):
    Xt, D, A = args
    return _common0(t, z, Xt, D, A, np.empty(0))[0]


@njit(cache=True)
def jac0(t, z, args):
    Xt, D, A = args
    N, d = Xt.shape
    out = np.empty(5 * d + N)
    jww = _common0(t, z, Xt, D, A, out)[1]
    return dense_jac0(Xt, out[:d], out[d:2 * d], out[2 * d:3 * d], out[5 * d:],
                      out[3 * d:4 * d], out[4 * d:5 * d], jww, z.shape[0])


@njit(cache=True)
def logk0(t, y, args):
    Xt, D, A = args
    return log_kappa(t, y, Xt, D, A)


@njit(cache=True)
def rhs1(t, z, args):
    Xt, D, A = args
    return _common_xi(t, z, Xt, D, A, np.empty(0))[0]


@njit(cache=True)
def jac1(t, z, args):
    Xt, D, A = args
    N, d = Xt.shape
    out = np.empty(6 * d + 4 * N)
    _, St, gam, jww = _common_xi(t, z, Xt, D, A, out)
    delta, b, bg, lSy, h, q = (out[:d], out[d:2 * d], out[2 * d:3 * d], out[3 * d:4 * d],
                               out[4 * d:5 * d], out[5 * d:6 * d])
    o = 6 * d
    p, e1, u, av = out[o:o + N], out[o + N:o + 2 * N], out[o + 2 * N:o + 3 * N], out[o + 3 * N:]
    B = np.empty((N, d))
    for m in range(N):
        for i in range(d):
            B[m, i] = Xt[m, i] * q[i]
    Jxx = xi_block(B @ Xt.T, St, p, av, e1, gam)
    return dense_xi_jac(Xt, delta, b, p, bg, lSy, e1, h, u, Jxx, jww, z.shape[0])


@njit(cache=True)
def rhs2(t, z, args):
    Xt, D, A = args
    N, d = Xt.shape
    f = _common_xi(t, z, Xt, D, A, np.empty(0))[0]
    out = np.empty(3 * N)
    xi_rates(t, z[:d], z[d:d + N], Xt, D, A, out)
    for m in range(N):
        f[d + m] = out[m]
    return f


@njit(cache=True)
def no_logk(t, y, args):
    """For modes without the time quadrature."""
    return 0.0
