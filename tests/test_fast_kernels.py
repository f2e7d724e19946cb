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
