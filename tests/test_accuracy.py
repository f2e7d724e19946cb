"""Accuracy of w_hat against an independent integrator (_reference_flow.py: other
coordinates -- the dual s = Xtᵀnu with the closed form w(s) in the kernel regime, raw
log-parameter offsets in the rich regime -- plain numpy, Radau at rtol 1e-13)."""
import numpy as np
import pytest

import flowkit
from _reference_flow import reference_w

# every alpha and both accuracies per depth, without the full product (that runs in
# benchmarks/accuracy.py): kernel-regime-like (1e2) and rich (1e6) ends alternate
GRID = [(D, a, g) for D in (2, 3, 10)
        for a, g in ((0.1, 1e6), (1.0, 1e2), (10.0, 1e6), (100.0, 1e2), (100.0, 1e6))]


@pytest.mark.slow
@pytest.mark.parametrize("depth, alpha, gamma", GRID)
def test_w_hat_matches_independent_reference(fig4a, depth, alpha, gamma):
    X, y = fig4a
    w_ref = reference_w(y[:, None] * X, depth, alpha, gamma)
    w_hat_ref = w_ref / np.min((y[:, None] * X) @ w_ref)
    tr = flowkit.integrate(X, y, depth=depth, alpha=alpha, gamma=gamma)
    assert np.max(np.abs(tr.w_hat[-1] - w_hat_ref)) <= 1e-8
    # and w itself, relative to its size
    assert np.max(np.abs(tr.w[-1] - w_ref)) <= 1e-8 * np.max(np.abs(w_ref))


def test_closed_form_d2_along_the_trajectory(fig4a):
    """D = 2: u± = alpha e^{±2s} with s = Xtᵀnu; hence log(u+/u-)/4 = s must lie in the cone
    spanned by the x̃_n with nu non-decreasing (math.md closed form)."""
    X, y = fig4a
    tr = flowkit.integrate(X, y, depth=2, alpha=0.5, gamma=1e3)
    s = (tr.theta[:, 0] - tr.theta[:, 1]) / 4.0
    nu = np.linalg.solve((y[:, None] * X).T, s.T).T   # Xt is square and invertible here
    assert np.all(nu >= -1e-12)
    assert np.all(np.diff(nu, axis=0) >= -1e-12 * np.abs(nu[1:]).max())
    np.testing.assert_allclose(tr.w, 2 * 0.25 * np.sinh(4 * s), rtol=1e-12, atol=1e-300)


@pytest.mark.slow
@pytest.mark.parametrize("seed, depth, alpha", [(3, 3, 1.0), (4, 3, 1.0), (3, 2, 0.1), (5, 4, 2.0)])
def test_random_data_with_several_support_vectors(seed, depth, alpha):
    """N = 8 > d = 6 random data: several support vectors share O(1) margin gaps at
    gamma~ = 1e6, the regime where margins computed from w lose those gaps to rounding."""
    from conftest import planted_data
    X, y = planted_data(np.random.default_rng(seed), 8, 6)
    Xt = y[:, None] * X
    w_ref = reference_w(Xt, depth, alpha, 1e6)
    tr = flowkit.integrate(X, y, depth=depth, alpha=alpha, gamma=1e6)
    assert np.max(np.abs(tr.w_hat[-1] - w_ref / np.min(Xt @ w_ref))) <= 1e-8
