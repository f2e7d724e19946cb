"""Implicit-bias diagnostics along trajectories (flowkit.diagnostics), checked against
independent max-margin solves (tests/_reference_maxmargin.py) and direct formulas."""
import dataclasses

import numpy as np
import pytest

import flowkit
from flowkit import diagnostics as dg
from flowkit.exceptions import FlowkitError, ParameterError
from _reference_maxmargin import l1_max_margin, q_mu_max_margin

# support vector 0 of the ℓ2 point leaves the Q_μ support at μ* ~ 0.564 (test_qpath.py)
LEAVING = np.array([[0.8, 0.1, 0.5], [0.7, 0.2, 0.6], [0.7, 0.6, 0.1]])


@pytest.fixture(scope="module")
def fig4a_run(fig4a):
    X, y = fig4a
    return flowkit.integrate(X, y, depth=2, alpha=100.0, mu=0.5)


def test_mu_eff_and_excess_l1_formulas(fig4a_run, fig4a):
    X, y = fig4a
    tr = fig4a_run
    ok = tr.margin > 0
    np.testing.assert_allclose(dg.mu_eff(tr)[ok], 100.0 ** 2 / tr.margin[ok], rtol=1e-13)
    assert np.all(np.isnan(dg.mu_eff(tr)[~ok]))
    ref = np.abs(l1_max_margin(y[:, None] * X)).sum()
    ex = dg.excess_l1(tr)
    np.testing.assert_allclose(ex[ok], np.abs(tr.w_hat[ok]).sum(1) / ref - 1, rtol=1e-9, atol=1e-12)


def test_q_distance_against_reference(fig4a_run, fig4a):
    X, y = fig4a
    tr = fig4a_run
    dist, mus = dg.q_distance(tr)
    Xt = y[:, None] * X
    ks = [k for k in range(len(tr)) if np.isfinite(mus[k]) and 1e-6 <= mus[k] <= 1e6][::15]
    assert len(ks) >= 3
    for k in ks:
        w_ref, _, _ = q_mu_max_margin(Xt, mus[k], 2)
        assert dist[k] == pytest.approx(np.linalg.norm(tr.w_hat[k] - w_ref), rel=1e-6, abs=1e-9)
    # Theorem 6 at finite alpha: the end point is near the Q_mu point, and closer than
    # the start of the kernel regime
    assert dist[-1] < 1e-2 * dist[np.flatnonzero(tr.margin > 0)[0]]


def test_support_vectors_change_along_kink_run(kink):
    X, y = kink
    tr = flowkit.integrate(X, y, depth=2, alpha=1e3, mu=0.2)
    S = dg.support_vectors(tr, rtol=1e-3)
    late = S[-1]
    assert late == (1, 2)
    kernel = [s for g, s, m in zip(tr.gamma, S, tr.margin) if m > 0 and g < 1e-2 * 1e6]
    assert kernel and all(s == (1,) for s in kernel)


def test_condition5_fails_when_a_support_vector_leaves():
    tr = flowkit.integrate(LEAVING, np.ones(3), depth=2, alpha=10.0, mu=0.1)
    c = dg.condition5(tr)
    assert not c.holds
    assert c.nonsupport == (0,) and c.witness[0] == 0
    assert c.violations and c.violations[0][0] == 0 and c.violations[0][2] < c.rho0
    assert c.rho_min < c.rho0
    # above the kink every point stays a support vector: nothing to check
    c2 = dg.condition5(flowkit.integrate(LEAVING, np.ones(3), depth=2, alpha=10.0, mu=2.0))
    assert c2.holds and c2.nonsupport == ()


def test_condition5_holds_on_fig4a(fig4a_run):
    c = dg.condition5(fig4a_run)
    assert c.holds and c.nonsupport == (0, 2) and c.rho_min > c.rho0 > 1
    # the same data and run with a bound above the smallest ratio fails, naming it
    c_tight = dg.condition5(fig4a_run, rho0=c.rho_min * 1.001)
    assert not c_tight.holds and c_tight.witness == c.witness


def test_implicit_bias_bundle(fig4a_run):
    out = dg.implicit_bias(fig4a_run)
    assert set(out) == {"gamma", "mu_eff", "support", "q_distance", "excess_l1", "condition5"}
    assert len(out["support"]) == len(fig4a_run)


def test_diagnostics_errors(fig4a_run):
    with pytest.raises(ParameterError, match="window"):
        dg.condition5(fig4a_run, window=(1e9, 1e10))
    with pytest.raises(ParameterError, match="rho0"):
        dg.condition5(fig4a_run, rho0=0.5)
    with pytest.raises(ParameterError, match="limit"):
        dg.condition5(fig4a_run, limit=[1.0, 2.0])
    bare = dataclasses.replace(fig4a_run, flow=None)
    with pytest.raises(FlowkitError, match="no problem"):
        dg.q_distance(bare)
