"""Trajectory contract: fields, save grid, exact end point, dense at(), methods."""
import math

import numpy as np
import pytest

import flowkit


@pytest.fixture(scope="module")
def traj(fig4a):
    X, y = fig4a
    return flowkit.integrate(X, y, depth=3, alpha=0.8, gamma=1e4, save_at=[7.5, 333.0])


def test_fields_and_shapes(traj):
    n = len(traj)
    assert traj.gamma.shape == (n,) and traj.w.shape == (n, 3) and traj.w_hat.shape == (n, 3)
    assert traj.theta.shape == (n, 2, 3) and traj.log_time.shape == (n,) and traj.margin.shape == (n,)
    assert np.all(np.diff(traj.gamma) > 0)
    assert traj.gamma[-1] == 1e4
    for key in ("method", "rtol", "atol", "nfev", "njev", "nlu", "steps", "seconds", "invariants"):
        assert key in traj.stats
    assert traj.stats["method"] == "Radau" and traj.stats["nfev"] > 0 and traj.stats["njev"] > 0


def test_save_grid(traj):
    decades = math.log10(1e4 / 1e-3)
    assert len(traj) >= 20 * decades
    assert 7.5 in traj.gamma and 333.0 in traj.gamma
    assert traj.gamma[0] == pytest.approx(1e-3)


def test_fields_are_consistent(traj):
    D, alpha = 3, 0.8
    u = np.exp(traj.theta)
    np.testing.assert_allclose(u[:, 0] ** D - u[:, 1] ** D, traj.w, rtol=1e-9, atol=1e-12)
    X, _ = flowkit.datasets.load("fig4a")
    np.testing.assert_allclose((X @ traj.w.T).min(axis=0), traj.margin, rtol=1e-13)
    np.testing.assert_allclose(traj.w_hat * traj.margin[:, None], traj.w, rtol=1e-14)
    # conservation law in the stored log-parameters
    np.testing.assert_allclose(u[:, 0] ** (2 - D) + u[:, 1] ** (2 - D), 2 * alpha ** (2 - D), rtol=1e-13)


def test_gamma_of_state_equals_independent_variable(traj):
    X, _ = flowkit.datasets.load("fig4a")
    m = X @ traj.w.T
    lse = -m.min(axis=0) + np.log(np.exp(-(m - m.min(axis=0))).sum(axis=0))
    gamma_state = np.log(3) - lse
    np.testing.assert_allclose(gamma_state, traj.gamma, rtol=1e-9)
    assert traj.stats["invariants"]["gamma_consistency"] < 1e-9


def test_at_saved_points_is_exact(traj):
    sub = traj.at(traj.gamma[[5, 40, -1]])
    np.testing.assert_array_equal(sub.w, traj.w[[5, 40, -1]])


def test_at_matches_a_run_that_saved_there(traj, fig4a):
    X, y = fig4a
    g = [0.0123, 3.3, 4321.0]
    direct = flowkit.integrate(X, y, depth=3, alpha=0.8, gamma=1e4, save_at=g)
    idx = [int(np.flatnonzero(direct.gamma == v)[0]) for v in g]
    dense = traj.at(g)
    np.testing.assert_allclose(dense.w, direct.w[idx], rtol=1e-8)
    np.testing.assert_allclose(dense.log_time, direct.log_time[idx], rtol=1e-8)
    np.testing.assert_array_equal(dense.gamma, g)


def test_at_rejects_out_of_range(traj):
    with pytest.raises(flowkit.FlowkitError, match="saved range"):
        traj.at(2e4)
    with pytest.raises(flowkit.FlowkitError, match="saved range"):
        traj.at(1e-9)


@pytest.mark.parametrize("method", ["BDF", "LSODA", "DOP853", "RK45"])
def test_other_methods_agree(fig4a, method):
    X, y = fig4a
    ref = flowkit.integrate(X, y, depth=2, alpha=1.0, gamma=30.0, rtol=1e-11)
    other = flowkit.integrate(X, y, depth=2, alpha=1.0, gamma=30.0, rtol=1e-9, method=method)
    assert other.stats["method"] == method
    np.testing.assert_allclose(other.w_hat[-1], ref.w_hat[-1], rtol=1e-6)


def test_paper_loss_examples_reach_their_target(fig4a):
    X, y = fig4a
    tr = flowkit.integrate(X, y, depth=2, alpha=100.0, loss="1e-8700")
    assert tr.gamma[-1] == pytest.approx(8700 * math.log(10), rel=1e-15)
    assert np.all(np.isfinite(tr.w))
    # gamma <= gamma~ <= gamma + log N, up to rounding of margins ~2e4
    assert tr.margin[-1] <= tr.gamma[-1] <= tr.margin[-1] + math.log(3) + 1e-10 * tr.gamma[-1]
    tr = flowkit.integrate(X, y, depth=2, alpha=100.0, mu=1e-3)
    assert tr.gamma[-1] / math.log(10) == pytest.approx(4.342944819e6, rel=1e-9)


def test_at_sorts_and_merges(traj):
    sub = traj.at([500.0, 2.0, 50.0, 2.0])
    np.testing.assert_array_equal(sub.gamma, [2.0, 50.0, 500.0])
    with pytest.raises(flowkit.FlowkitError):
        traj.at([])


@pytest.mark.parametrize("scale", [1e-8, 1e-3, 1e4, 1e12, 1e-100, 1e100])
def test_feature_scale_equivariance(fig4a, scale):
    """(X, alpha) -> (cX, alpha c^{-1/D}) maps u -> u c^{-1/D}, w -> w/c, t -> t c^{-2/D} with
    the same margins, so the same gamma~; the separability LP and the l2 margin
    (gamma_2 -> c gamma_2, used by Lemma 3) must follow.  Outside [2^-16, 2^16] the flow
    runs on the data scaled by a power of two (Problem.scale)."""
    X, y = fig4a
    base = flowkit.integrate(X, y, depth=2, alpha=1.0, gamma=100.0)
    tr = flowkit.integrate(X * scale, y, depth=2, alpha=scale ** -0.5, gamma=100.0)
    np.testing.assert_allclose(tr.w[-1] * scale, base.w[-1], rtol=1e-8)
    np.testing.assert_allclose(tr.log_time[-1], base.log_time[-1] - np.log(scale), rtol=1e-8)
    p0 = flowkit.Problem.build(X, y, 2, 1.0, scaled=True)
    p1 = flowkit.Problem.build(X * scale, y, 2, 1.0, scaled=True)
    assert p1.gamma2 * p1.scale == pytest.approx(scale * p0.gamma2, rel=1e-10)
    assert tr.stats["invariants"]["lemma3_slack"] > -1e-9


def test_small_targets_are_consistent(fig4a):
    X, y = fig4a
    tr = flowkit.integrate(X, y, depth=2, alpha=1.0, gamma=5e-3)
    assert tr.stats["invariants"]["gamma_consistency"] < 1e-9
    tr = flowkit.integrate(X, y, depth=3, alpha=1.0, gamma=1e-8)
    assert tr.stats["invariants"]["gamma_consistency"] < 1e-6


def test_at_across_the_coordinate_switches(kink):
    """Saved states change layout at gamma~ = 10 (margin offsets join) and 1e5 (time leaves
    the ODE); dense evaluation across both must agree with a run that saved there."""
    X, y = kink
    g = [9.0, 11.0, 9e4, 1.1e5, 3e6]
    tr = flowkit.integrate(X, y, depth=2, alpha=1e3, mu=0.2)
    direct = flowkit.integrate(X, y, depth=2, alpha=1e3, mu=0.2, save_at=g)
    idx = [int(np.flatnonzero(direct.gamma == v)[0]) for v in g]
    dense = tr.at(g)
    np.testing.assert_allclose(dense.w_hat, direct.w_hat[idx], rtol=1e-8)
    np.testing.assert_allclose(dense.log_time, direct.log_time[idx], rtol=1e-9)
    assert np.all(np.diff(tr.log_time) > 0)
