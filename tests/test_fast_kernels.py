"""The allocation-free kernels of the compiled step and the per-call set-up
(_kernels/flow_step.py, _kernels/initial.py, _kernels/fields.py) against the kernels and
library routines they stand in for: the flow's own evaluators (a second formulation of the
same formulas, with temporaries and BLAS), scipy's bisect, and the per-point field maps."""
import math

import numpy as np
import pytest
from scipy.optimize import bisect

import flowkit
from flowkit._kernels import flow as K
from flowkit._kernels import flow_step as S
from flowkit._kernels import initial as I
from flowkit.problem import Problem

NONE = np.empty(0)


def _random_case(rng):
    N, d = int(rng.integers(1, 8)), int(rng.integers(1, 9))
    Xt = rng.standard_normal((N, d)) * 10 ** rng.uniform(-2, 2)
    D = float(rng.choice([2, 3, 4, 7]))
    return Xt, D, D * rng.uniform(-10, 10), rng.uniform(-3, 30), rng.standard_normal(d) * 10 ** rng.uniform(-2, 1)


def test_loop_right_hand_sides_equal_the_flow_evaluators_to_rounding():
    rng = np.random.default_rng(0)
    worst = dict(rhs0=0.0, logk0=0.0, y=0.0, xi=0.0, omega=0.0)
    checked = 0
    for _ in range(600):
        Xt, D, A, sigma, y = _random_case(rng)
        N, d = Xt.shape
        args = (Xt, D, A)
        with np.errstate(all="ignore"):
            f = K._common0(sigma, y, Xt, D, A, NONE)[0]
            lk = K.log_kappa(sigma, y, Xt, D, A)
            xi = rng.standard_normal(N) * 3
            z = np.concatenate([y, xi, [rng.standard_normal()]])
            fx = K._common_xi(sigma, z, Xt, D, A, NONE)[0]
            fx2 = K._common_xi(sigma, z[:-1], Xt, D, A, NONE)[0]
        if not (np.all(np.isfinite(f)) and np.isfinite(lk) and np.all(np.isfinite(fx))):
            continue
        checked += 1
        gam = math.exp(sigma)
        worst["rhs0"] = max(worst["rhs0"], np.max(np.abs(S.rhs0(sigma, y, args) - f)) / np.max(np.abs(f)))
        worst["logk0"] = max(worst["logk0"], abs(S.logk0(sigma, y, args) - lk) / max(1.0, abs(lk)))
        g = S.rhs1(sigma, z, args)
        worst["y"] = max(worst["y"], np.max(np.abs(g[:d] - fx[:d])) / np.max(np.abs(fx[:d])))
        # the xi rows are gamma~ (a - pᵀa + Lambda): rounding is relative to gamma~ (a + |Lambda|)
        scale = gam + np.max(np.abs(fx[d:d + N]))
        worst["xi"] = max(worst["xi"], np.max(np.abs(g[d:d + N] - fx[d:d + N])) / scale)
        worst["omega"] = max(worst["omega"], abs(g[-1] - fx[-1]) / max(abs(fx[-1]), gam))
        np.testing.assert_array_equal(S.rhs1(sigma, z[:-1], args)[:d], g[:d])
        assert S.rhs1(sigma, z[:-1], args).shape == fx2.shape
    assert checked > 400
    for key, value in worst.items():
        assert value < 1e-13, (key, value)


def _magnitudes(sigma, z, Xt, D, A):
    """The size of every term that enters each Jacobian entry (absolute values throughout,
    d q~/dy as c phi (q+ s+ + q- s-), whose difference form cancels in the kernel regime):
    the scale that rounding in a different order is relative to (the entries cancel)."""
    N, d = Xt.shape
    aX = np.abs(Xt)
    _, _, sp, sm, phi, *_ = K._offsets_all(sigma, z[:d], D, A)
    dp, dm, _ = K.state_to_w(sigma, z[:d], D, A)
    if z.size == d:
        delta, b, v, p, bg, r2, _ = K.jac_factors(sigma, z, Xt, D, A)
        g = Xt.T @ p
        qp, qm, M, St = K._weights(dp, dm, g, D)
        qg = np.abs((qp + qm) * g)
        dq = (2 * D - 2) * phi * (qp * sp + qm * sm)
        Cabs = aX.T @ (p * (aX @ qg)) + np.abs(g) * St
        r2abs = np.abs(g * v) + (dq * g * g + 2 * np.abs(v) * Cabs) / St
        return (np.abs(b)[:, None] * (aX.T @ (p[:, None] * aX)) * np.abs(v)[None, :]
                + np.abs(bg)[:, None] * r2abs[None, :] + np.diag(np.abs(delta)))
    delta, b, p, bg, lSy, e1, h, u, q, av, St, gam, jww = K.xi_jac_factors(sigma, z, Xt, D, A)
    g = Xt.T @ p
    qp, qm, _, _ = K._weights(dp, dm, g, D)
    dq = (2 * D - 2) * phi * (qp * sp + qm * sm)
    lSy, h = dq * g * g / St, gam * dq * np.abs(g) / St
    n = z.size
    out = np.zeros((n, n))
    e1abs = p + 2 * p * np.abs(1 - av)
    out[:d, :d] = np.diag(np.abs(delta)) + np.abs(bg)[:, None] * lSy[None, :]
    out[:d, d:d + N] = np.abs(b)[:, None] * aX.T * p[None, :] + np.abs(bg)[:, None] * e1abs[None, :]
    out[d:d + N, :d] = aX * h[None, :] + np.abs(u)[:, None] * lSy[None, :]
    out[d:d + N, d:d + N] = gam * ((aX * q) @ aX.T / St * p[None, :]
                                   + np.abs(av)[:, None] * e1abs[None, :] + p[None, :])
    if n > d + N:
        out[-1, -1] = abs(jww)
    return out


def test_loop_jacobians_equal_the_flow_factors_to_rounding():
    """jac0 / jac1 against the dense Jacobians assembled from flow.jac_factors and
    xi_jac_factors (the scipy step's), entry by entry relative to the size of the terms that
    enter it, and against central differences of the loop right-hand sides."""
    from flowkit._kernels.flow_step import jac0, jac1, rhs0, rhs1
    from flowkit.structured import Jacobian0, JacobianXi
    rng = np.random.default_rng(3)
    worst, fd, checked = 0.0, 0.0, 0
    for _ in range(300):
        Xt, D, A, sigma, y = _random_case(rng)
        sigma = min(sigma, 8.0)
        N, d = Xt.shape
        args = (Xt, D, A)
        xi = rng.standard_normal(N)
        for z, jac, f, ref in ((y, jac0, rhs0, Jacobian0), (np.concatenate([y, xi, [0.2]]), jac1, rhs1, JacobianXi),
                               (np.concatenate([y, xi]), jac1, rhs1, JacobianXi)):
            with np.errstate(all="ignore"):
                J0 = ref.at(sigma, z, Xt, D, A).dense()
                size = _magnitudes(sigma, z, Xt, D, A)
            if not (np.all(np.isfinite(J0)) and np.all(np.isfinite(size))):
                continue
            checked += 1
            J = jac(sigma, z, args)
            worst = max(worst, np.max(np.abs(J - J0) / np.maximum(size, 1e-300)))
            if np.max(np.abs(z)) < 3 and z.size < d + N + 1:
                E = np.eye(z.size)
                # rows of tiny entries: the differences' rounding, ~eps |f| / h, sets their floor
                rows = np.max(np.abs(J), axis=1, keepdims=True) + 1e-6 * np.max(np.abs(J))
                best = math.inf
                for h in (1e-3, 1e-4, 1e-5, 1e-6):  # fourth-order central differences, the best step
                    Jfd = np.stack([(8 * (f(sigma, z + h * E[k], args) - f(sigma, z - h * E[k], args))
                                     - (f(sigma, z + 2 * h * E[k], args) - f(sigma, z - 2 * h * E[k], args)))
                                    / (12 * h) for k in range(z.size)], axis=1)
                    best = min(best, np.max(np.abs(Jfd - J) / rows))
                fd = max(fd, best)
    assert checked > 500
    assert worst < 1e-13, worst
    assert fd < 1e-7, fd


def test_fused_offsets_are_flows_to_rounding():
    """One exponential per feature: bit for bit where |a psi| >= 1/2, to a few ulps below."""
    from flowkit._kernels.flow_step import _offsets_fused
    rng = np.random.default_rng(4)
    for D in (2.0, 3.0, 4.0, 7.0, 10.0):
        psis = np.concatenate([rng.standard_normal(3000) * 10 ** rng.uniform(-14, 3, 3000),
                               [0.0, -0.0, 1e-300, 0.5 / max(D - 2, 1), -0.5 / max(D - 2, 1), 800.0, -800.0]])
        for psi in psis:
            ref, got = K.offsets(psi, D), _offsets_fused(psi, D)
            if abs((D - 2) * psi) >= 0.5 or D == 2:
                assert got == ref
            else:
                for u, v in zip(got, ref):
                    assert abs(u - v) <= 1e-15 * abs(v)


@pytest.mark.parametrize("name", ["fig4a", "kink", "fig3d"])
def test_initial_root_is_scipys_bisect(name):
    """The compiled bisection takes scipy's iterates: the same float on the same function."""
    X, y = flowkit.datasets.load(name)
    rng = np.random.default_rng(1)
    for D in (2, 3, 10):
        for alpha in (1e-3, 1.0, 1e4):
            Xs = X * 10 ** rng.uniform(-2, 2)
            P = Problem.build(Xs, y, D, alpha)
            g0 = P.Xt.mean(axis=0)
            gmax = g0[int(np.argmax(np.abs(g0)))]
            args = (g0 / gmax, float(np.sign(gmax)), P.Xt, float(D), P.log_alpha_D, math.log(flowkit.flow.GAMMA_START))
            hi = math.log(2000.0)
            ref = bisect(lambda lP: I.excess(lP, *args), -740.0, hi, xtol=1e-15, rtol=1e-15, maxiter=300)
            got, converged = I.root(-740.0, hi, *args, 1e-15, 1e-15, 300)
            assert converged and got == ref
            sigma0, z0 = flowkit.flow.initial_state(P)
            # the frozen-p closed form reaches gamma~ = GAMMA_START at z0
            w = K.state_to_w(sigma0, z0[:-1], float(D), P.log_alpha_D)[2]
            assert K.softmax_margins(P.Xt, w)[2] == pytest.approx(flowkit.flow.GAMMA_START, rel=1e-13)


def test_root_reports_a_bracket_without_a_sign_change():
    Xt = np.array([[1.0, 0.5]])
    args = (np.array([1.0, 0.5]), 1.0, Xt, 2.0, 0.0, math.log(1e-3))
    lo = I.excess(-5.0, *args)
    assert lo > 0  # both ends past the target
    value, converged = I.root(-5.0, 1.0, *args, 1e-15, 1e-15, 300)
    assert not converged and math.isnan(value)


def test_fields_equal_the_per_point_maps():
    X, y = flowkit.datasets.load("kink")
    tr = flowkit.integrate(X, y, depth=3, alpha=10.0, gamma=1e8)
    P = tr.flow.problem
    D, A, d = 3.0, P.log_alpha_D, P.n_features
    for k in range(len(tr)):
        sigma, z = math.log(tr.gamma[k]), tr.state[k]
        dp, dm, w = K.state_to_w(sigma, z[:d], D, A)
        m = K.softmax_margins(P.Xt, w)[0]
        np.testing.assert_array_equal(tr.w[k], w)
        assert tr.margin[k] == m.min()
        assert tr.log_time[k] == z[d] + tr.gamma[k] - K.log_kappa_xi(sigma, z[:d], z[d + 1:], P.Xt, D, A)
        np.testing.assert_array_equal(tr.theta[k], math.log(P.alpha) + np.stack([dp, dm]))
