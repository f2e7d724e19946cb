"""The flow's limits against independent max-margin solutions (KKT enumeration in
_reference_maxmargin.py, not flowkit code): the paper's Theorems 4 and 6 and the hard
regime past a support-vector change."""
import numpy as np
import pytest

import flowkit
from _reference_maxmargin import l2_max_margin, q_mu_max_margin


def test_theorem6_qmu_limit_fig4a(fig4a):
    # D = 2, mu = 0.5, alpha = 1e4: gamma~ = alpha^2/mu = 2e8, w_hat -> Q_mu point
    X, y = fig4a
    w_q, _, _ = q_mu_max_margin(y[:, None] * X, 0.5, depth=2)
    tr = flowkit.integrate(X, y, depth=2, alpha=1e4, mu=0.5)
    assert np.max(np.abs(tr.w_hat[-1] - w_q)) < 1e-6


@pytest.mark.parametrize("alpha", [1e4, 1e5, 1e6])
def test_hard_regime_past_support_vector_change(kink, alpha):
    # the Q_mu path of this data changes support vectors at mu* ~ 0.405 (D = 2): the flow
    # crosses it at gamma~ ~ alpha^2/0.405 and is stiff with ratio ~gamma~ afterwards
    X, y = kink
    w_q, nu, support = q_mu_max_margin(y[:, None] * X, 0.2, depth=2)
    assert support == (1, 2)
    tr = flowkit.integrate(X, y, depth=2, alpha=alpha, mu=0.2)
    assert np.max(np.abs(tr.w_hat[-1] - w_q)) < 1e-7
    assert tr.stats["invariants"]["gamma_consistency"] < 1e-9


@pytest.mark.parametrize("depth", [4, 10, 20])
def test_theorem4_kernel_regime_l2(fig4a, depth):
    # alpha^D >> gamma~ = 1e13: u moves by ~1e-47 (D = 10), yet w_hat must be the
    # l2 max-margin direction: the coordinates keep the motion as its own variable
    X, y = fig4a
    w2, _ = l2_max_margin(y[:, None] * X)
    tr = flowkit.integrate(X, y, depth=depth, alpha=1e6, gamma=1e13)
    assert np.max(np.abs(tr.w_hat[-1] - w2)) < 1e-6
    assert np.all(np.isfinite(tr.theta)) and np.all(np.isfinite(tr.log_time))


@pytest.mark.parametrize("depth, alpha", [(2, 1e-3), (3, 1e-3), (20, 1e-3), (10, 1e6), (2, 1e6)])
def test_extreme_scales_stay_finite(fig4a, depth, alpha):
    X, y = fig4a
    tr = flowkit.integrate(X, y, depth=depth, alpha=alpha, gamma=1e13)
    for field in (tr.w, tr.w_hat, tr.theta, tr.log_time, tr.margin):
        assert np.all(np.isfinite(field))
    inv = tr.stats["invariants"]
    assert inv["gamma_consistency"] < 1e-9 and inv["margin_bounds"] < 1e-9
