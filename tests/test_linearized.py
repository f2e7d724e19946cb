"""integrate(..., model="linearized"): the tangent-kernel model of math.md against its
closed forms (one sample; orthogonal rows, time included), its limit (the ℓ2 max-margin
solution), the network flow it linearises (alpha -> infinity), finite-difference
Jacobians, and the Trajectory contract."""
import math

import numpy as np
import pytest
from scipy.special import logsumexp

import flowkit
from flowkit._kernels import linearized as KL
from flowkit.flow import TIME_SWITCH, XI_SWITCH


def _log_K(D, alpha):
    return math.log(2 * D * D) + (2 * D - 2) * math.log(alpha)


def test_one_sample_closed_form():
    X, y = np.array([[0.6, -0.3, 0.2]]), np.array([-1.0])
    xt = -X[0]
    tr = flowkit.integrate(X, y, depth=2, alpha=1.5, gamma=1e6, model="linearized")
    # w̄ = gamma~ x̃/|x̃|², t = expm1(gamma~)/(K |x̃|²)
    np.testing.assert_allclose(tr.w, tr.gamma[:, None] * xt / (xt @ xt), rtol=1e-12)
    log_t = np.log(np.expm1(np.minimum(tr.gamma, 700))) + np.maximum(tr.gamma - 700, 0)
    np.testing.assert_allclose(tr.log_time, log_t - _log_K(2, 1.5) - math.log(xt @ xt),
                               rtol=1e-9, atol=1e-9)


def test_orthogonal_rows_closed_form():
    """w̄(t) = Σ_n x̃_n log(1 + K|x̃_n|² t/N)/|x̃_n|² with two O(1)-gapped support vectors,
    through both coordinate switches."""
    X, y = np.array([[2.0, 0.0, 0.0], [0.0, 0.5, 0.0]]), np.array([1.0, -1.0])
    Xt = y[:, None] * X
    D, alpha = 3, 0.7
    tr = flowkit.integrate(X, y, depth=D, alpha=alpha, gamma=1e7, model="linearized",
                           points_per_decade=3)
    assert tr.gamma[0] < XI_SWITCH and tr.gamma[-1] > TIME_SWITCH
    n2 = np.sum(Xt ** 2, axis=1)
    log_c = _log_K(D, alpha) + np.log(n2 / 2)
    L = np.logaddexp(0.0, log_c[None, :] + tr.log_time[:, None])  # log(1 + c_n t)
    w = L @ (Xt / n2[:, None])
    np.testing.assert_allclose(tr.w, w, rtol=1e-9, atol=1e-12)
    gamma = math.log(2) - logsumexp(-L, axis=1)
    np.testing.assert_allclose(gamma, tr.gamma, rtol=1e-9)
    w2 = flowkit.max_margin(X, y, "l2").w
    np.testing.assert_allclose(tr.w_hat[-1], w2, atol=1e-6)


def test_limit_is_the_l2_max_margin_solution():
    """fig3d: two ℓ2 support vectors; ŵ -> w_ℓ2 with error ∝ 1/gamma~."""
    X, y = flowkit.datasets.load("fig3d")
    w2 = flowkit.max_margin(X, y, "l2").w
    tr = flowkit.integrate(X, y, depth=2, alpha=1.0, gamma=1e8, model="linearized",
                           save_at=[1e6], points_per_decade=2)
    err = np.abs(tr.w_hat - w2).max(axis=1)
    i = int(np.flatnonzero(tr.gamma == 1e6)[0])
    assert err[-1] < 1e-7
    assert err[i] * 1e6 == pytest.approx(err[-1] * 1e8, rel=1e-3)
    inv = tr.stats["invariants"]
    assert "conservation" not in inv and inv["gamma_consistency"] < 1e-12
    assert inv["lemma3_slack"] >= -1e-12 * tr.gamma[-1]


def test_path_is_independent_of_depth_and_alpha(fig4a):
    X, y = fig4a
    a = flowkit.integrate(X, y, depth=2, alpha=1.0, gamma=1e4, model="linearized", points_per_decade=3)
    b = flowkit.integrate(X, y, depth=4, alpha=7.0, gamma=1e4, model="linearized", points_per_decade=3)
    np.testing.assert_allclose(b.w, a.w, rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(b.log_time - a.log_time, _log_K(2, 1.0) - _log_K(4, 7.0), rtol=1e-9)


def test_it_is_the_network_flow_at_large_alpha(fig4a):
    """The network flow in log-loss time tends to the linearised one as alpha -> infinity.
    Its tangent kernel u+^{2D-2} + u-^{2D-2} moves only at second order in w/alpha^D (u+
    and u- move in opposite directions), so the deviation falls like alpha^{-2D}."""
    X, y = fig4a
    for D, alpha in ((2, 100.0), (3, 10.0)):
        dev, dev_t = [], []
        for a in (alpha, 2 * alpha):
            lin = flowkit.integrate(X, y, depth=D, alpha=a, gamma=100.0, model="linearized",
                                    points_per_decade=1)
            net = flowkit.integrate(X, y, depth=D, alpha=a, gamma=100.0, points_per_decade=1)
            dev.append(np.abs(net.w[-1] - lin.w[-1]).max() / np.abs(lin.w[-1]).max())
            assert dev[-1] < (100.0 / a ** D) ** 2
            dev_t.append(abs(net.log_time[-1] - lin.log_time[-1]))  # the clock, likewise
        assert dev[0] / dev[1] == pytest.approx(2.0 ** (2 * D), rel=0.05)
        assert dev_t[0] / dev_t[1] == pytest.approx(2.0 ** (2 * D), rel=0.05)


@pytest.mark.parametrize("xi", [False, True])
def test_analytic_jacobians_match_finite_differences(xi):
    X, y = flowkit.datasets.load("fig3d")
    rng = np.random.default_rng(0)
    sigma = math.log(50.0)
    z = np.concatenate([rng.normal(size=3), rng.normal(size=3) if xi else [], [0.3]])
    ev = KL.xi_evaluate if xi else KL.evaluate
    J = ev(sigma, z, X, True)[1]
    Jfd = np.empty_like(J)
    for k in range(z.size):
        h = 1e-6 * max(1.0, abs(z[k]))
        zp, zm = z.copy(), z.copy()
        zp[k] += h
        zm[k] -= h
        Jfd[:, k] = (ev(sigma, zp, X, False)[0] - ev(sigma, zm, X, False)[0]) / (2 * h)
    # the omega row keeps only its own derivative (omega never feeds back), as in the flow
    np.testing.assert_allclose(J[:-1], Jfd[:-1], rtol=1e-5, atol=1e-6 * np.abs(Jfd).max())
    assert J[-1, -1] == pytest.approx(Jfd[-1, -1], rel=1e-6)


def test_trajectory_contract_at_and_errors(fig4a):
    X, y = fig4a
    tr = flowkit.integrate(X, y, depth=3, alpha=0.5, gamma=1e3, model="linearized", save_at=[42.0])
    assert isinstance(tr, flowkit.Trajectory) and tr.stats["model"] == "linearized"
    assert tr.theta.shape == (len(tr), 2, 3) and tr.gamma[-1] == 1e3
    # theta: the linear model's parameters u± = alpha ± w̄ / (2 D alpha^{D-1}) where positive
    u = 0.5 + np.array([1.0, -1.0])[None, :, None] * tr.w[:, None, :] / (2 * 3 * 0.5 ** 2)
    ok = u > 0
    np.testing.assert_allclose(np.exp(tr.theta[ok]), u[ok], rtol=1e-12)
    assert np.all(np.isnan(tr.theta[~ok])) and (~ok).any()
    got = tr.at([42.0, 500.0])
    assert type(got) is type(tr)
    np.testing.assert_allclose(got.w[0], tr.w[tr.gamma == 42.0][0], rtol=1e-12)
    with pytest.raises(flowkit.ParameterError, match="unknown model"):
        flowkit.integrate(X, y, depth=2, alpha=1.0, gamma=10.0, model="linear")


def test_orthogonal_rows_with_a_copy_closed_form():
    """A copied sample weighs k/N in the loss: m_u = log(1 + K |x̃_u|² k_u t / N), w̄ = Σ_u
    x̃_u m_u / |x̃_u|² over the distinct rows.  Past TIME_SWITCH the copies share one offset
    (flowkit.system); before that they are carried apart, so both layouts are checked."""
    X, y = np.array([[2.0, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.5, 0.0]]), np.array([1.0, -1.0, -1.0])
    Xt = y[:, None] * X
    D, alpha = 3, 0.7
    tr = flowkit.integrate(X, y, depth=D, alpha=alpha, gamma=1e7, model="linearized",
                           points_per_decade=3)
    assert tr.gamma[0] < XI_SWITCH and tr.gamma[-1] > TIME_SWITCH
    u, k = Xt[:2], np.array([1.0, 2.0])
    n2 = np.sum(u ** 2, axis=1)
    log_c = _log_K(D, alpha) + np.log(n2 * k / 3)
    L = np.logaddexp(0.0, log_c[None, :] + tr.log_time[:, None])
    np.testing.assert_allclose(tr.w, L @ (u / n2[:, None]), rtol=1e-9, atol=1e-12)
    gamma = -logsumexp(-L + np.log(k / 3), axis=1)
    np.testing.assert_allclose(tr.gamma, gamma, rtol=1e-9)
