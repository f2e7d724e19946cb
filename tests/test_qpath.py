"""flowkit.q_path: the Q_μ path and its kinks against independent solves
(support enumeration in tests/_reference_maxmargin.py)."""

import numpy as np
import pytest

import flowkit
from flowkit.exceptions import NumericalRangeError, ParameterError
from _reference_maxmargin import l2_max_margin, q_mu_max_margin

# μ* of the kink data (D = 2) from the support-enumeration reference, bisected on its
# support set; the "near 0.35" is not what two independent solves give
KINK_MU_D2 = 0.405345840454682


@pytest.fixture(scope="module")
def kink_path(kink):
    X, y = kink
    return flowkit.q_path(X, y, depth=2)


def test_kink_dataset_has_one_kink(kink_path, kink):
    p = kink_path
    assert len(p.kinks) == 1
    k = p.kinks[0]
    assert k.mu == pytest.approx(KINK_MU_D2, rel=1e-6)
    assert k.rtol <= 1e-6
    assert k.support_above == (1,) and k.support_below == (1, 2)
    # the supports of the sampled points agree with the kink
    for mu, S in zip(p.mu, p.support):
        assert S == ((1,) if mu > k.mu else (1, 2))


def test_kink_brackets_reference_supports(kink_path, kink):
    X, y = kink
    mu = kink_path.kinks[0].mu
    Xt = y[:, None] * X
    assert q_mu_max_margin(Xt, mu * (1 + 1e-5), 2)[2] == (1,)
    assert q_mu_max_margin(Xt, mu * (1 - 1e-5), 2)[2] == (1, 2)


def test_path_points_are_certified_and_smooth(kink_path, kink):
    X, y = kink
    p = kink_path
    assert np.all(np.diff(p.mu) < 0) and p.mu[0] == 1e3 and p.mu[-1] == 1e-4
    assert np.max(p.kkt_residual) <= 1e-9
    u = p.direction
    angles = 2 * np.arcsin(np.minimum(1, np.linalg.norm(np.diff(u, axis=0), axis=1) / 2))
    assert np.max(angles) <= 0.01
    Xt = y[:, None] * X
    for i in range(0, len(p), 7):
        w, _, _ = q_mu_max_margin(Xt, p.mu[i], 2)
        assert np.max(np.abs(p.w[i] - w)) <= 1e-7 * np.max(np.abs(w))
    # μ = 1e3 is the ℓ2 point up to O(μ⁻²)
    assert np.max(np.abs(p.w[0] - l2_max_margin(Xt)[0])) < 1e-6


@pytest.mark.parametrize("name, depth", [("kink", 3), ("fig4a", 2), ("fig4a", 3), ("fig4b", 2)])
def test_kinks_other_cases(name, depth):
    # each kink separates the reference's supports just above and just below it
    X, y = flowkit.datasets.load(name)
    Xt = y[:, None] * X
    p = flowkit.q_path(X, y, depth=depth)
    assert len(p.kinks) >= 1
    for k in p.kinks:
        assert q_mu_max_margin(Xt, k.mu * (1 + 1e-5), depth)[2] == k.support_above
        assert q_mu_max_margin(Xt, k.mu * (1 - 1e-5), depth)[2] == k.support_below


def test_support_vector_leaving():
    # data whose ℓ2 support vector 0 leaves the support at μ* ~ 0.564 (D = 2)
    X = np.array([[0.8, 0.1, 0.5], [0.7, 0.2, 0.6], [0.7, 0.6, 0.1]])
    p = flowkit.q_path(X, np.ones(3), depth=2, mu_range=(10.0, 0.01))
    assert [(k.support_above, k.support_below) for k in p.kinks] == [((0, 1, 2), (1, 2))]
    mu = p.kinks[0].mu
    Xt = X
    assert q_mu_max_margin(Xt, mu * (1 + 1e-5), 2)[2] == (0, 1, 2)
    assert q_mu_max_margin(Xt, mu * (1 - 1e-5), 2)[2] == (1, 2)


@pytest.mark.parametrize("kwargs, exc, text", [
    (dict(mu_range=(1e-3, 1.0)), ParameterError, "large to small"),
    (dict(mu_range=(1e3,)), ParameterError, "pair"),
    (dict(mu_range=(1e9, 1.0)), NumericalRangeError, "outside"),
    (dict(max_angle=0.0), ParameterError, "max_angle"),
    (dict(depth=1), ParameterError, "depth"),
])
def test_bad_options(kink, kwargs, exc, text):
    X, y = kink
    with pytest.raises(exc, match=text):
        flowkit.q_path(X, y, **kwargs)


@pytest.mark.parametrize("name, depth", [("kink", 2), ("kink", 3), ("fig4a", 2), ("fig4a", 3)])
def test_kink_location_against_mpmath(name, depth):
    # tests/_reference_kkt.q_kink_mp: the kink as the root of an extended KKT system
    # solved in 40-digit arithmetic (sample j joins support S)
    from _reference_kkt import q_kink_mp
    X, y = flowkit.datasets.load(name)
    (k,) = flowkit.q_path(X, y, depth=depth).kinks
    (j,) = set(k.support_below) - set(k.support_above)
    exact = float(q_kink_mp(y[:, None] * X, depth, k.support_above, j, k.mu * 1.01))
    assert k.mu == pytest.approx(exact, rel=1e-9)


def test_degenerate_support_change_is_reported():
    # sample 2 sits at margin 1 with multiplier ~0 near mu ~ 0.0943: several support
    # changes within 1e-9 relative; the kink is reported with its bracket, not dropped
    X = np.array([[0.5, 0.2, 0.5], [0.3, 0.4, 0.3], [0.1, 0.2, 0.9]])
    p = flowkit.q_path(X, np.ones(3), depth=2)
    changes = [i for i in range(len(p) - 1) if p.support[i] != p.support[i + 1]]
    assert len(p.kinks) >= len(changes) >= 1
    assert any(abs(k.mu / 0.0943354 - 1) < 1e-3 for k in p.kinks)
