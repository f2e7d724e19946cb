"""Squared-loss gradient flow ends at flowkit.min_potential's interpolator: the flow of
the network itself, integrated independently (tests/_reference_regression.py: u± in
log coordinates, scipy Radau, to a gradient 1e-12 of its start), against the convex
solve -- Woodworth et al.'s theorem with flowkit's normalisation Q^D_α = α^D Σ q_D(w/α^D),
for D = 2, 3, 5, and the least-squares limit when there is no interpolator."""
import numpy as np
import pytest

from flowkit.minpotential import min_potential

from _reference_regression import flow_limit


@pytest.mark.parametrize("depth, alpha", [(2, 0.5), (3, 3.0), (5, 1.0), (3, 0.1)])
def test_the_flow_ends_at_the_q_interpolator(depth, alpha):
    rng = np.random.default_rng(10 * depth)
    X, y = rng.normal(size=(4, 10)), rng.normal(size=4)
    w, _ = flow_limit(X, y, depth, alpha)
    q = min_potential(X, y, "Q", alpha=alpha, depth=depth)
    assert np.max(np.abs(w - q.w)) < 1e-9 * np.max(np.abs(q.w))
    # and not at either limit (by 100x the agreement): the potential matters at these α
    for kind in ("l1", "l2"):
        assert np.max(np.abs(w - min_potential(X, y, kind).w)) > 1e-7 * np.max(np.abs(q.w))


def test_without_an_interpolator_the_flow_ends_at_least_squares():
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(12, 5)), rng.normal(size=12)
    w, _ = flow_limit(X, y, 2, 1.0)
    ls = min_potential(X, y, "Q", alpha=1.0, least_squares=True)
    assert np.max(np.abs(w - ls.w)) < 1e-9 * np.max(np.abs(ls.w))
    assert np.allclose(ls.w, np.linalg.lstsq(X, y, rcond=None)[0], rtol=0, atol=1e-12)
