"""Property-based tests (hypothesis) over random separable data: invariants and
symmetries of gradient flow that no implementation detail may break."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import flowkit
from conftest import planted_data

SETTINGS = settings(max_examples=15, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
FEW = settings(SETTINGS, max_examples=8)


@st.composite
def problems(draw, nonnegative=False):
    seed = draw(st.integers(0, 2**32 - 1))
    n = draw(st.integers(1, 8))
    d = draw(st.integers(1, 6))
    X, y = planted_data(np.random.default_rng(seed), n, d)
    if nonnegative:  # every column of y·X keeps one sign
        X = y[:, None] * np.abs(X) * np.sign(np.random.default_rng(seed + 1).standard_normal(d))
    depth = draw(st.sampled_from([2, 3, 4, 7]))
    alpha = draw(st.sampled_from([0.1, 0.5, 1.0, 3.0]))
    gamma = draw(st.sampled_from([5.0, 60.0]))
    return X, y, depth, alpha, gamma


def run(X, y, depth, alpha, gamma):
    return flowkit.integrate(X, y, depth=depth, alpha=alpha, gamma=gamma, rtol=1e-10)


@SETTINGS
@given(problems())
def test_invariants_hold(prob):
    X, y, depth, alpha, gamma = prob
    tr = run(*prob)
    inv = tr.stats["invariants"]
    assert inv["conservation"] < 1e-13
    assert inv["gamma_consistency"] < 1e-8          # gamma~ of the state = the clock
    assert inv["margin_bounds"] < 1e-10             # gamma <= gamma~ <= gamma + log N
    assert inv["lemma3_slack"] > -1e-9              # L(t) <= 1/(1 + 2 D² a^{2D-2} g2² t)
    Xt = y[:, None] * X
    assert np.min(Xt @ tr.w_hat[-1]) == pytest.approx(1.0, rel=1e-12)   # ŵ has margin 1
    assert np.all(np.diff(tr.log_time) > 0)


@SETTINGS
@given(problems(nonnegative=True))
def test_margin_monotone_when_columns_keep_their_sign(prob):
    # dm_n/dt = Σ_i x̃_ni K_i(u) (Σ_k x̃_ki e^{-m_k})/N with K_i > 0: every term >= 0
    # when each column of X̃ has one sign, so each margin, and their minimum, grows.
    tr = run(*prob)
    assert tr.stats["invariants"]["margin_increments"] >= -1e-12 * tr.gamma[-1]


def test_margin_need_not_be_monotone():
    # ... but not in general: x̃ = (1, 0), (-0.9, 0.1) pull against each other at first.
    tr = flowkit.integrate([[1.0, 0.0], [-0.9, 0.1]], [1, 1], depth=2, alpha=1.0, gamma=20.0)
    assert tr.stats["invariants"]["margin_increments"] < 0
    assert tr.margin[-1] > 0


@FEW
@given(problems(), st.randoms(use_true_random=False))
def test_symmetries(prob, rnd):
    X, y, depth, alpha, gamma = prob
    base = run(*prob).w[-1]
    n, d = X.shape
    perm_n = list(range(n))
    rnd.shuffle(perm_n)
    w = run(X[perm_n], y[perm_n], depth, alpha, gamma).w[-1]
    np.testing.assert_allclose(w, base, rtol=1e-7, atol=1e-9 * np.abs(base).max())
    perm_d = list(range(d))
    rnd.shuffle(perm_d)
    w = run(X[:, perm_d], y, depth, alpha, gamma).w[-1]
    np.testing.assert_allclose(w, base[perm_d], rtol=1e-7, atol=1e-9 * np.abs(base).max())
    j = rnd.randrange(d)
    Xf = X.copy()
    Xf[:, j] *= -1
    w = run(Xf, y, depth, alpha, gamma).w[-1]
    flipped = base.copy()
    flipped[j] *= -1
    np.testing.assert_allclose(w, flipped, rtol=1e-7, atol=1e-9 * np.abs(base).max())
    # relabelling (x, y) -> (-x, -y) leaves the problem unchanged
    w = run(-X, -y, depth, alpha, gamma).w[-1]
    np.testing.assert_allclose(w, base, rtol=1e-7, atol=1e-9 * np.abs(base).max())
