"""The compiled kernels against independent evaluations: mpmath for the coordinate
maps, central finite differences for the analytic Jacobian."""
import math

import mpmath
import numpy as np
import pytest

import flowkit
from flowkit._kernels import flow as K
from flowkit.flow import Flow
from flowkit.problem import Problem


@pytest.mark.parametrize("D, psi", [(D, psi) for D in (2, 3, 4, 10, 20)
                                    for psi in (1e-40, -3e-17, 1e-6, 0.3, -2.0, 15.0, -60.0)
                                    if D * abs(psi) < 700])  # else w overflows float64
def test_offsets_and_w_against_mpmath(D, psi):
    mpmath.mp.dps = 60
    A = D * math.log(3.0)
    dp, dm, _, _ = K.offsets(psi, float(D))
    w = K._w_of(dp, dm, float(D), A)
    # independent: u± from the conservation law with delta+ - delta- = psi
    P = mpmath.mpf(psi)
    if D == 2:
        ep, em = P / 2, -P / 2
    else:
        a = D - 2
        ep = mpmath.log((1 + mpmath.exp(a * P)) / 2) / a
        em = mpmath.log((1 + mpmath.exp(-a * P)) / 2) / a
    w_ref = mpmath.exp(A) * (mpmath.exp(D * ep) - mpmath.exp(D * em))
    assert abs(dp - float(ep)) <= 1e-15 * abs(float(ep)) + 1e-300
    assert abs(dm - float(em)) <= 1e-15 * abs(float(em)) + 1e-300
    # exp of an exponent E carries relative error ~eps |E|: the float64 limit
    bound = 4e-16 * (4.0 + abs(A) + D * abs(psi))
    assert abs(w - float(w_ref)) <= bound * abs(float(w_ref))
    # the conservation law of math.md
    if D == 2:
        assert dp + dm == 0.0
    else:
        lhs = mpmath.exp(-(D - 2) * mpmath.mpf(dp)) + mpmath.exp(-(D - 2) * mpmath.mpf(dm))
        assert abs(float(lhs) - 2.0) < 1e-15


@pytest.mark.parametrize("D, alpha", [(2, 1.0), (3, 0.5), (10, 1.2), (4, 30.0)])
@pytest.mark.parametrize("gamma", [0.3, 20.0])
def test_jacobian_matches_finite_differences(D, alpha, gamma):
    X, y = flowkit.datasets.load("kink")
    flow = Flow(Problem.build(X, y, D, alpha))
    rng = np.random.default_rng(7)
    sigma = math.log(gamma)
    z = np.concatenate([rng.uniform(-0.3, 0.6, 3), [0.1]])
    J = flow.jac(sigma, z)
    Jfd = np.empty_like(J)
    for k in range(z.size):
        h = 1e-6 * max(1.0, abs(z[k]))
        zp, zm = z.copy(), z.copy()
        zp[k] += h
        zm[k] -= h
        Jfd[:, k] = (flow.fun(sigma, zp) - flow.fun(sigma, zm)) / (2 * h)
    # the y-block is exact; the omega row carries only its diagonal (see _kernels)
    scale = np.max(np.abs(Jfd[:3, :3]))
    assert np.max(np.abs(J[:3, :] - Jfd[:3, :])) < 1e-7 * scale
    assert J[3, 3] == pytest.approx(Jfd[3, 3], rel=1e-6)


def test_rhs_matches_the_paper_flow_in_theta():
    """dy/dsigma, mapped back, equals math.md's d theta±/d gamma~ = ± D e^{(D-2) theta} g / kappa."""
    X, y = flowkit.datasets.load("fig4a")
    for D, alpha in [(2, 0.7), (3, 1.3), (5, 0.9)]:
        P = Problem.build(X, y, D, alpha)
        sigma, yv = math.log(4.0), np.array([0.2, -0.1, 0.35])
        f = K.rhs(sigma, np.append(yv, 0.0), P.Xt, float(D), P.log_alpha_D)[:3]
        # finite-difference psi(gamma~) along the flow via theta-space formula
        gam = math.exp(sigma)
        R = gam / alpha ** D
        phi = R / (1 + R)
        dp, dm, w = K.state_to_w(sigma, yv, float(D), P.log_alpha_D)
        tp, tm = math.log(alpha) + dp, math.log(alpha) + dm
        m = P.Xt @ w
        p = np.exp(-(m - m.min()))
        p /= p.sum()
        g = P.Xt.T @ p
        kappa = D * D * np.sum((np.exp((2 * D - 2) * tp) + np.exp((2 * D - 2) * tm)) * g * g)
        dtp = D * np.exp((D - 2) * tp) * g / kappa
        dtm = -D * np.exp((D - 2) * tm) * g / kappa
        dpsi = dtp - dtm                     # d psi / d gamma~
        # y = psi/phi, dphi/dsigma = phi/(1+R)
        psi = phi * yv
        expected = gam * dpsi / phi - psi / phi / (1 + R)
        np.testing.assert_allclose(f, expected, rtol=1e-12)
