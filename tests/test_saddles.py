"""flowkit.saddles (flowkit/saddle_to_saddle.py, Pesme & Flammarion's Algorithm 1) on its
own -- its end is the minimum-ℓ1 interpolator, its invariants hold, a closed form on an orthogonal design --
and against the flow itself: the network's squared-loss flow from α = 1e-24 … 1e-96,
integrated by the tests' independent reference in log coordinates, jumps at the predicted
rescaled times with an error that falls like 1/log(1/α)."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import solve_ivp
from scipy.optimize import brentq

from flowkit.exceptions import DataError, ParameterError
from flowkit.minpotential import min_potential
from flowkit.saddle_to_saddle import saddles, time_scale


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10 ** 6), N=st.integers(2, 25), d=st.integers(2, 60))
def test_ends_at_the_minimum_l1_point_with_its_invariants(seed, N, d):
    rng = np.random.default_rng(seed)
    X, y = rng.normal(size=(N, d)), rng.normal(size=N)
    path = saddles(X, y)
    l1 = min_potential(X, y, "l1", least_squares=N > d)
    assert np.max(np.abs(path.w[-1] - l1.w)) < 1e-9 * np.max(np.abs(l1.w))
    assert all(v < 1e-9 for v in path.invariants.values()), path.invariants
    assert np.all(np.diff(path.tau) > 0) and np.all(np.diff(path.loss) <= 1e-12 * path.loss[0])
    assert np.array_equal(path.w[0], np.zeros(d)) and path.tau[0] == 0.0
    # the last dual is an ℓ1 certificate: |s| <= 1, s = sign(w) on the support
    s, w = path.s[-1], path.w[-1]
    assert np.max(np.abs(s)) <= 1 + 1e-9 and np.allclose(s[w != 0], np.sign(w[w != 0]), atol=1e-9)


def test_orthogonal_design_closed_form():
    """X = I: the coordinates are independent, s_i = τ y_i, so coordinate i jumps to y_i
    at τ = 1/|y_i|, the largest |y_i| first."""
    y = np.array([0.5, -2.0, 1.0, 4.0, -0.25])
    path = saddles(np.eye(5), y)
    order = np.argsort(-np.abs(y))
    assert np.allclose(path.tau[1:], 1 / np.abs(y[order]), rtol=1e-14)
    for k in range(1, 6):
        expect = np.zeros(5)
        expect[order[:k]] = y[order[:k]]
        assert np.allclose(path.w[k], expect, atol=1e-15)
    assert path.at(0.1) is path.w[0] or np.array_equal(path.at(0.1), np.zeros(5))
    assert np.array_equal(path.at(0.3), path.w[1]) and np.array_equal(path.at(10.0), path.w[-1])
    assert math.isclose(path.times(1e-10)[1], 0.25 * math.log(1e10) / 2, rel_tol=1e-14)


def _flow(X, y, alpha, t_end):
    """The depth-2 network's flow in log coordinates θ± = log u± (independent of flowkit)."""
    d = X.shape[1]
    G = X.T @ X

    def f(t, th):
        w = np.exp(2 * th[:d]) - np.exp(2 * th[d:])
        g = X.T @ (X @ w - y)
        return np.concatenate([-2 * g, 2 * g])

    def jac(t, th):
        dwp, dwm = 2 * np.exp(2 * th[:d]), -2 * np.exp(2 * th[d:])
        return np.block([[-2 * G * dwp, -2 * G * dwm], [2 * G * dwp, 2 * G * dwm]])

    with np.errstate(over="ignore", invalid="ignore"):  # Radau's rejected trial steps
        return solve_ivp(f, (0, t_end), np.full(2 * d, math.log(alpha)), method="Radau", jac=jac,
                         rtol=1e-11, atol=1e-12, dense_output=True)


def test_the_flow_jumps_at_the_predicted_times():
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(5, 10)), rng.normal(size=5)
    path = saddles(X, y)
    K = len(path.tau) - 1
    worst = []
    for alpha in (1e-24, 1e-48, 1e-96):
        T = time_scale(alpha)
        sol = _flow(X, y, alpha, path.tau[-1] * T * 1.3)

        def loss(tau):
            th = sol.sol(tau * T)
            w = np.exp(2 * th[:10]) - np.exp(2 * th[10:])
            return 0.5 * np.sum((X @ w - y) ** 2)

        errs = []
        for k in range(1, K + 1):
            # where the loss crosses halfway between saddles k-1 and k: once, since the
            # loss falls monotonically along gradient flow
            level = 0.5 * (path.loss[k - 1] + path.loss[k])
            errs.append(brentq(lambda t: loss(t) - level, 0.0, 1.3 * path.tau[-1]) - path.tau[k])
        worst.append(max(map(abs, errs)))
    # the error falls like 1/log(1/α): halved with each doubling of log(1/α)
    assert worst[0] > 1.6 * worst[1] > 1.6 ** 2 * worst[2] and worst[2] < 0.1, worst


def test_bad_input():
    X = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    with pytest.raises(DataError, match="general position"):
        saddles(X, [1.0, 0.5])  # two identical columns: the first saddle is not unique
    with pytest.raises(DataError, match="never leaves"):
        saddles(np.eye(2), [0.0, 0.0])
    with pytest.raises(DataError, match="NaN or inf"):
        saddles(np.eye(2), [np.nan, 1.0])
    for bad in (0.0, 1.0, 2.0, "x"):
        with pytest.raises(ParameterError, match=r"\(0, 1\)"):
            time_scale(bad)
