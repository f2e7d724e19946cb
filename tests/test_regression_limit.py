"""Squared-loss gradient flow ends at flowkit.min_potential's interpolator: the flow of
the network itself, integrated independently (tests/_reference_regression.py: u± in
log coordinates, scipy Radau, to a gradient 1e-12 of its start), against the convex
solve -- Woodworth et al.'s theorem with flowkit's normalisation Q^D_α = α^D Σ q_D(w/α^D),
for D = 2, 3, 5, and the least-squares limit when there is no interpolator."""
import math

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


@pytest.mark.parametrize("depth", [2, 3, 5])
def test_per_coordinate_scales_give_the_alpha_squared_weighted_potential(depth):
    """u±(0) = α_i: for D > 2 the flow ends at the minimiser of Σ α_i² q_D(w_i/α_i^D),
    not of Σ α_i^D q_D(w_i/α_i^D) (they differ by 2-13 % here); for D = 2 the two agree."""
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(4, 8)), rng.normal(size=4)
    alpha = np.exp(rng.uniform(math.log(0.3), math.log(3.0), size=8))
    w, _ = flow_limit(X, y, depth, alpha)
    q = min_potential(X, y, "Q", alpha=alpha, depth=depth)
    assert np.max(np.abs(w - q.w)) < 1e-9 * np.max(np.abs(q.w)) and q.kkt_residual < 1e-12
    # the other weighting is a different point (D > 2), which the flow does not reach
    wrong = _weighted_minimiser(X, y, depth, alpha, alpha ** depth)
    assert (np.max(np.abs(w - wrong)) > 1e-2 * np.max(np.abs(w))) == (depth > 2)


def _weighted_minimiser(X, y, depth, alpha, c):
    """min Σ c_i q_D(w_i/α_i^D) s.t. Xw = y by SLSQP: an independent, low-accuracy solve."""
    from scipy.optimize import minimize

    from flowkit import potentials as P
    mu = alpha ** depth
    res = minimize(lambda w: float(np.sum(c * P.q(w / mu, depth))), np.linalg.lstsq(X, y, rcond=None)[0],
                   jac=lambda w: c * P.h_inv(w / mu, depth) / mu, method="SLSQP",
                   constraints=[{"type": "eq", "fun": lambda w: X @ w - y, "jac": lambda w: X}],
                   options=dict(ftol=1e-15, maxiter=2000))
    return res.x
