"""flowkit.baselines: GD and the paper's normalised GD against things they do not share
code with -- the exact discrete solution on one sample, math.md's closed-form flow, a
plain numpy GD in u, flowkit's flow (first-order convergence in lr) -- and their
contract (Trajectory fields, exact end point, at(), errors)."""
import math

import numpy as np
import pytest
from scipy.optimize import brentq

import flowkit
from flowkit import baselines as B

X1 = np.array([[0.6, -0.3, 0.2]])  # one sample: p = 1, g = x~ for ever
Y1 = np.array([1.0])


def _one_sample_ngd(x, alpha, lr, k, eta):
    """D = 2 normalised GD on one sample, exactly: u± = alpha (1 ± 2 lr x)^k (1 ± 2 eta lr x)."""
    up = alpha * (1 + 2 * lr * x) ** k * (1 + 2 * eta * lr * x)
    um = alpha * (1 - 2 * lr * x) ** k * (1 - 2 * eta * lr * x)
    return up, um


def test_ngd_one_sample_is_the_exact_discrete_solution():
    x, alpha, lr, target = X1[0], 0.7, 1e-2, 5.0
    tr = B.normalized_gd(X1, Y1, depth=2, alpha=alpha, lr=lr, gamma=target, save_at=[1.5])
    for g in (1.5, target):  # N = 1: gamma~ = the margin
        margin = lambda k, eta: x @ (np.subtract(*[u ** 2 for u in _one_sample_ngd(x, alpha, lr, k, eta)]))
        k = 0
        while margin(k + 1, 0.0) < g:
            k += 1
        eta = brentq(lambda e: margin(k, e) - g, 0.0, 1.0, xtol=1e-15)
        up, um = _one_sample_ngd(x, alpha, lr, k, eta)
        i = int(np.flatnonzero(tr.gamma == g)[0])
        np.testing.assert_allclose(np.exp(tr.theta[i]), [up, um], rtol=1e-12)
        np.testing.assert_allclose(tr.w[i], up ** 2 - um ** 2, rtol=1e-11)
    assert tr.stats["iterations"] == k and tr.stats["method"] == "NGD"


def _flow_one_sample(x, alpha, gamma):
    """math.md, D = 2: u± = alpha exp(±2 s), s = nu x~; nu from x~ᵀw = gamma~ (N = 1)."""
    w = lambda nu: 2 * alpha ** 2 * np.sinh(4 * nu * x)
    nu = brentq(lambda v: x @ w(v) - gamma, 0.0, 10.0, xtol=1e-15)
    return w(nu)


def test_ngd_tends_to_the_closed_form_flow_at_first_order():
    x, alpha, target = X1[0], 0.7, 5.0
    w_flow = _flow_one_sample(x, alpha, target)
    errs = [np.max(np.abs(B.normalized_gd(X1, Y1, depth=2, alpha=alpha, lr=lr, gamma=target).w[-1] - w_flow))
            for lr in (4e-4, 2e-4, 1e-4)]
    assert errs[-1] < 1e-3
    for a, b in zip(errs, errs[1:]):
        assert 1.8 < a / b < 2.2


@pytest.mark.parametrize("depth", [2, 3])
def test_ngd_tends_to_the_flow_at_first_order(fig4a, depth):
    X, y = fig4a
    ref = flowkit.integrate(X, y, depth=depth, alpha=1.0, gamma=100.0, rtol=1e-12, points_per_decade=1)
    errs = []
    for lr in (4e-4, 2e-4, 1e-4):
        tr = B.normalized_gd(X, y, depth=depth, alpha=1.0, lr=lr, gamma=100.0, points_per_decade=1)
        assert tr.gamma[-1] == 100.0
        errs.append(np.max(np.abs(tr.w_hat[-1] - ref.w_hat[-1])))
    assert errs[-1] < 1e-3 * depth
    for a, b in zip(errs, errs[1:]):
        assert 1.8 < a / b < 2.2, errs


def test_gd_is_plain_gradient_descent(fig4a):
    """Against plain numpy GD in u (L formed directly: fine at gamma~ ~ 2)."""
    X, y = fig4a
    D, alpha, lr, n = 3, 0.9, 0.05, 400
    up, um = np.full(3, alpha), np.full(3, alpha)
    for _ in range(n):
        w = up ** D - um ** D
        e = np.exp(-(X @ w))
        r = X.T @ e / 3
        up, um = up + lr * D * up ** (D - 1) * r, um - lr * D * um ** (D - 1) * r
    w = up ** D - um ** D
    # a hair below gamma~ of the n-th iterate: the n-th step lands on it with eta ~ 1
    target = -math.log(np.mean(np.exp(-(X @ w)))) * (1 - 1e-12)
    tr = B.gradient_descent(X, y, depth=D, alpha=alpha, lr=lr, gamma=target)
    assert tr.stats["method"] == "GD" and tr.stats["iterations"] == n - 1
    np.testing.assert_allclose(tr.w[-1], w, rtol=1e-9)
    assert tr.log_time[-1] == pytest.approx(math.log(lr * n), rel=1e-9)


def test_gd_tends_to_the_flow_at_first_order(fig4a):
    X, y = fig4a
    ref = flowkit.integrate(X, y, depth=2, alpha=1.0, gamma=2.0, rtol=1e-12)
    errs = [np.max(np.abs(B.gradient_descent(X, y, depth=2, alpha=1.0, lr=lr, gamma=2.0).w[-1] - ref.w[-1]))
            for lr in (4e-3, 2e-3, 1e-3)]
    for a, b in zip(errs, errs[1:]):
        assert 1.8 < a / b < 2.2, errs


def test_gd_cannot_reach_high_accuracy_and_says_so(fig4a):
    """Plain GD's gamma~ grows like log(step count): it gives up early, with the reason."""
    X, y = fig4a
    with pytest.raises(B.BudgetExceededError, match="current rate") as info:
        B.gradient_descent(X, y, depth=2, alpha=1.0, lr=0.5, gamma=1e3, max_iter=10**8)
    assert info.value.iterations < 10**7 and 5 < info.value.gamma_reached < 40


def test_a_step_below_float64_resolution_stalls(fig4a):
    """A step that changes no parameter would repeat for ever: reported at once (from
    an iterate far from u = alpha, where lr = 1e-20 is below the resolution of delta±)."""
    X, y = fig4a
    it = B.Iteration(flowkit.Problem.build(X, y, 2, 1.0), "NGD", 1e-20)
    state = it.state0
    state[:3], state[3:6] = 3.0, -3.0
    with pytest.raises(B.UnstableStepError, match="changes no parameter") as info:
        it.advance_gamma(state, [1e3])
    assert info.value.reason == "stall" and info.value.iteration == 0


def test_too_large_lr_is_reported(fig4a):
    X, y = fig4a
    with pytest.raises(B.UnstableStepError, match="too large") as info:
        B.normalized_gd(X, y, depth=3, alpha=100.0, lr=0.1, gamma=1e3)
    assert info.value.reason == "sign" and info.value.iteration == 0
    assert isinstance(info.value, flowkit.ParameterError)


def test_loss_increase_is_reported_or_counted(fig4a):
    """Several support vectors: fixed-lr NGD turns unstable once gamma~ ~ 1/lr (D = 2)."""
    from conftest import planted_data
    X, y = planted_data(np.random.default_rng(1), 8, 6)
    with pytest.raises(B.UnstableStepError, match="raised the loss") as info:
        B.normalized_gd(X, y, depth=2, alpha=1.0, lr=0.01, gamma=1e4)
    assert info.value.reason == "ascent" and 100 < info.value.gamma < 1e4
    tr = B.normalized_gd(X, y, depth=2, alpha=1.0, lr=0.01, gamma=1e4, strict=False, points_per_decade=1)
    assert tr.stats["ascent_steps"] > 0 and tr.stats["first_ascent_gamma"] == info.value.gamma
    assert tr.gamma[-1] == 1e4


def test_trajectory_contract_and_at(fig4a):
    X, y = fig4a
    kw = dict(depth=3, alpha=0.8, lr=1e-3, gamma=300.0)
    tr = B.normalized_gd(X, y, **kw)
    flow = flowkit.integrate(X, y, depth=3, alpha=0.8, gamma=300.0)
    assert isinstance(tr, flowkit.Trajectory) and isinstance(tr, B.BaselineTrajectory)
    np.testing.assert_array_equal(tr.gamma, flow.gamma)  # the same save grid
    assert tr.w.shape == flow.w.shape and tr.theta.shape == flow.theta.shape
    for key in ("method", "lr", "iterations", "steps", "nfev", "seconds", "tau", "invariants"):
        assert key in tr.stats
    inv = tr.stats["invariants"]
    assert inv["gamma_consistency"] < 1e-13 and inv["margin_bounds"] <= 1e-12
    assert 1e-5 < inv["conservation"] < 1e-1  # the discrete method drifts, at O(lr)
    np.testing.assert_allclose(tr.w_hat * tr.margin[:, None], tr.w, rtol=1e-14)
    np.testing.assert_allclose(np.exp(tr.theta[:, 0]) ** 3 - np.exp(tr.theta[:, 1]) ** 3, tr.w, rtol=1e-9)
    assert np.all(np.diff(tr.log_time) > 0)
    # at(): re-runs the same iteration from a saved iterate and lands on the request
    other = B.normalized_gd(X, y, **kw, save_at=[123.4])
    got = tr.at([123.4])
    assert isinstance(got, B.BaselineTrajectory)
    k = int(np.flatnonzero(other.gamma == 123.4)[0])
    np.testing.assert_array_equal(got.state[0, :-1], other.state[k, :-1])  # the same iterate
    np.testing.assert_allclose(got.w[0], other.w[k], rtol=1e-13)  # at() lands on e^{log gamma~}


def test_stopping_rules_match_integrate(fig4a):
    X, y = fig4a
    tr = B.normalized_gd(X, y, depth=2, alpha=2.0, lr=1e-2, loss="1e-30", points_per_decade=1)
    assert tr.gamma[-1] == pytest.approx(30 * math.log(10), rel=1e-15) and tr.stopping == "loss=1e-30"
    tr = B.normalized_gd(X, y, depth=2, alpha=2.0, lr=1e-2, mu=0.1, points_per_decade=1)
    assert tr.gamma[-1] == pytest.approx(40.0, rel=1e-14)


@pytest.mark.parametrize("kwargs, err", [
    (dict(lr=0.0), flowkit.ParameterError), (dict(lr=-1e-3), flowkit.ParameterError),
    (dict(lr=float("nan")), flowkit.ParameterError), (dict(lr="0.1"), flowkit.ParameterError),
    (dict(lr=True), flowkit.ParameterError), (dict(max_iter=0), flowkit.ParameterError),
    (dict(max_iter=2.5), flowkit.ParameterError), (dict(max_seconds=-1), flowkit.ParameterError),
    (dict(strict="no"), flowkit.ParameterError), (dict(loss=1e-3), flowkit.StoppingRuleError),
    (dict(gamma=None), flowkit.StoppingRuleError), (dict(gamma=-1.0), flowkit.StoppingRuleError),
    (dict(save_at=[20.0]), flowkit.StoppingRuleError), (dict(depth=1), flowkit.ParameterError),
    (dict(alpha=0.0), flowkit.ParameterError),
])
def test_bad_input_raises_flowkit_errors(fig4a, kwargs, err):
    X, y = fig4a
    args = dict(depth=2, alpha=1.0, lr=1e-2, gamma=10.0) | kwargs
    for fn in (B.normalized_gd, B.gradient_descent):
        with pytest.raises(err) as info:
            fn(X, y, **args)
        assert isinstance(info.value, ValueError) and str(info.value)


def test_bad_data_and_budget(fig4a):
    X, y = fig4a
    with pytest.raises(flowkit.DataError):
        B.normalized_gd(np.where(X > 0.9, np.nan, X), y, depth=2, alpha=1.0, lr=1e-2, gamma=10.0)
    with pytest.raises(B.BudgetExceededError, match="max_iter = 10 ") as info:
        B.normalized_gd(X, y, depth=2, alpha=1.0, lr=1e-3, gamma=10.0, max_iter=10)
    assert info.value.iterations == 10 and 0 < info.value.gamma_reached < 10.0
    assert isinstance(info.value, flowkit.IntegrationError)


def test_step_helpers_refuse_a_step_through_zero():
    # a step that would make some u <= 0 raises instead of returning unwritten memory
    from flowkit._kernels import baselines as KB
    X, y = flowkit.datasets.load("fig4a")
    Xt = y[:, None] * X
    z = np.zeros(3)
    with pytest.raises(ValueError, match="u <= 0"):
        KB.step_from(Xt, 2.0, 0.0, math.log(10.0), True, z, z, 0.0, 1.0)
    with pytest.raises(ValueError, match="u <= 0"):
        KB.land(Xt, 2.0, 0.0, math.log(10.0), True, z, z, 0.0, 5.0)
