"""Minimum-potential interpolators (flowkit.minpotential): each kind against an
independent solve -- the Q^D_α interpolator against Newton on its *dual* in 40-digit
mpmath (a second formulation, free of float64), basis pursuit against HiGHS's interior
point on the unreduced LP, the ℓ2 one against the pseudo-inverse -- and the limits
α -> ∞ (ℓ2, at the predicted rate α^(-2D)) and α -> 0 (ℓ1), least squares, bad input."""
import math

import mpmath as mp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

import flowkit
from flowkit.exceptions import DataError, NumericalRangeError, ParameterError
from flowkit.minpotential import Z_RANGE, NoInterpolatorError, min_potential


def _data(seed, N, d, sparse=None):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, d))
    if sparse:  # a planted sparse solution, the basis-pursuit regime
        w = np.zeros(d)
        w[rng.choice(d, sparse, replace=False)] = rng.normal(size=sparse) * 3
        return X, X @ w
    return X, rng.normal(size=N)


def _mp_dual(X, y, mu, D, dps=40):
    """w = μ h_D(Xᵀν) with X w = y, by damped Newton on ν in mpmath (the dual of the
    problem flowkit solves in the primal): the independent reference."""
    mp.mp.dps = dps
    N, d = X.shape
    Xm = mp.matrix(X.tolist())
    ym = mp.matrix(y.tolist())
    mu = mp.mpf(mu)
    b = mp.mpf(D) / (D - 2) if D > 2 else None

    def h(v):
        return 2 * mp.sinh(v) if D == 2 else (1 - v) ** (-b) - (1 + v) ** (-b)

    def dh(v):
        return 2 * mp.cosh(v) if D == 2 else b * ((1 - v) ** (-b - 1) + (1 + v) ** (-b - 1))

    def parts(nu):
        v = Xm.T * nu
        if D > 2 and max(abs(x) for x in v) >= 1:
            return None, None, None
        w = mp.matrix([mu * h(x) for x in v])
        return v, w, Xm * w - ym

    def newton(nu, tol):
        v, w, g = parts(nu)
        for _ in range(200):
            norm = mp.norm(g)
            if norm < tol:
                return nu, w
            J = Xm * mp.diag([mu * dh(x) for x in v]) * Xm.T
            step = mp.lu_solve(J, -g)
            t = mp.mpf(1)
            while t > mp.mpf(10) ** -30:
                v2, w2, g2 = parts(nu + t * step)
                if g2 is not None and mp.norm(g2) < (1 - t / 4) * norm:
                    break
                t /= 2
            nu, v, w, g = nu + t * step, v2, w2, g2
        raise AssertionError(  # pragma: no cover
            f"mpmath Newton did not converge at mu = {float(mu):g}, |g| = {float(norm):.3g}, t = {float(t):.3g}")

    # continuation from a large μ (where ν = 0 is close), a factor 10 per stage
    target = mu
    mus = [target]
    while mus[-1] < 1e3 * (1 + float(mp.norm(ym, mp.inf))):
        mus.append(mus[-1] * 10)
    nu = mp.matrix(N, 1)
    tol = mp.mpf(10) ** (-dps + 16) * (1 + mp.norm(ym))  # w ~ (1 - v)^(-b) magnifies v by 1e12
    for k, mu in enumerate(reversed(mus)):
        nu, w = newton(nu, tol if k == len(mus) - 1 else mp.mpf(10) ** -10)
    return np.array([float(x) for x in w])


CASES = [(0, 4, 9), (1, 6, 12), (2, 3, 7)]


@pytest.mark.parametrize("depth", [2, 3, 5])
@pytest.mark.parametrize("alpha", [1e-4, 1e-2, 1.0, 1e2, 1e3])
def test_q_against_the_mpmath_dual(depth, alpha):
    for seed, N, d in CASES[:2] if alpha in (1e-4, 1e3) else CASES:
        X, y = _data(seed, N, d)
        out = min_potential(X, y, "Q", alpha=alpha, depth=depth)
        ref = _mp_dual(X, y, alpha ** depth, depth)
        err = np.max(np.abs(out.w - ref)) / np.max(np.abs(ref))
        assert err < 1e-11, (seed, depth, alpha, err)
        assert out.kkt_residual < 1e-12 and out.residual < 1e-12 * np.linalg.norm(y)
        assert out.unique and out.depth == depth and out.alpha == alpha
        assert math.isclose(out.objective, alpha ** depth * np.sum(flowkit.potentials.q(out.w / alpha ** depth, depth)),
                            rel_tol=1e-12)
        # the certificate itself, recomputed here: ∇Q = h_D^{-1}(w/μ) lies in range(Xᵀ)
        v = flowkit.potentials.h_inv(out.w / alpha ** depth, depth)
        assert np.max(np.abs(v - X.T @ out.dual)) <= 1e-12 * np.max(np.abs(v))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10 ** 6), N=st.integers(2, 30), extra=st.integers(1, 120),
       depth=st.sampled_from([2, 3, 4, 5]), log_alpha=st.floats(-4, 3))
def test_q_certificate_on_random_data(seed, N, extra, depth, log_alpha):
    X, y = _data(seed, N, N + extra)
    z = np.max(np.abs(np.linalg.pinv(X) @ y)) / 10.0 ** (depth * log_alpha)
    assume(Z_RANGE[0] <= z <= Z_RANGE[1])
    out = min_potential(X, y, "Q", alpha=10.0 ** log_alpha, depth=depth)
    assert out.kkt_residual < 1e-12, out.info


def test_alpha_to_infinity_is_l2_at_rate_alpha_to_minus_2D():
    X, y = _data(3, 8, 20)
    l2 = min_potential(X, y, "l2")
    assert np.allclose(l2.w, np.linalg.pinv(X) @ y, rtol=0, atol=1e-13 * np.max(np.abs(l2.w)))
    for depth in (2, 3, 5):
        # large enough for the z^4 term of q_D to dominate the distance, small enough that
        # the distance stays above rounding
        a1, a2 = (10.0, 30.0) if depth == 2 else (3.0, 6.0)
        d1, d2 = (np.linalg.norm(min_potential(X, y, "Q", alpha=a, depth=depth).w - l2.w) for a in (a1, a2))
        rate = math.log(d1 / d2) / math.log(a2 / a1)
        assert abs(rate - 2 * depth) < 0.1, (depth, rate)


def test_both_ends_of_the_validated_range():
    X, y = _data(7, 6, 15)
    l2 = min_potential(X, y, "l2")
    top = np.max(np.abs(l2.w))
    for depth in (2, 3, 5):
        # |w|/α^D at the bottom of the range: the ℓ2 interpolator to rounding
        alpha = (top / (2 * Z_RANGE[0])) ** (1 / depth)
        out = min_potential(X, y, "Q", alpha=alpha, depth=depth)
        assert out.kkt_residual < 1e-12 and np.allclose(out.w, l2.w, rtol=0, atol=1e-14 * top)
        # at the top: certified, and the ℓ1 interpolator to within the measured distance
        alpha = (top / (0.5 * Z_RANGE[1])) ** (1 / depth)
        out = min_potential(X, y, "Q", alpha=alpha, depth=depth)
        l1 = min_potential(X, y, "l1")
        assert out.kkt_residual < 1e-12, (depth, out.kkt_residual)
        if depth > 2:  # D = 2 approaches ℓ1 only logarithmically in α (1/log(1/α))
            assert np.linalg.norm(out.w - l1.w) < 1e-12 * np.linalg.norm(l1.w)
        with pytest.raises(NumericalRangeError, match="validated"):
            min_potential(X, y, "Q", alpha=alpha / 100 ** (1 / depth), depth=depth)


def test_alpha_to_zero_is_basis_pursuit():
    X, y = _data(4, 15, 30, sparse=3)
    l1 = min_potential(X, y, "l1")
    assert l1.unique and l1.kkt_residual < 1e-12 and np.count_nonzero(l1.w) == 3
    # another solver: HiGHS's interior point on the unreduced LP
    d = X.shape[1]
    res = linprog(np.ones(2 * d), A_eq=np.hstack([X, -X]), b_eq=y, bounds=(0, None), method="highs-ipm")
    assert math.isclose(l1.objective, res.fun, rel_tol=1e-8)
    assert np.max(np.abs(l1.w - (res.x[:d] - res.x[d:]))) < 1e-7 * np.max(np.abs(l1.w))
    for depth in (2, 3):
        dist = [np.linalg.norm(min_potential(X, y, "Q", alpha=a, depth=depth).w - l1.w)
                for a in (1e-2, 1e-4, 1e-6)]
        assert dist[0] > dist[1] > dist[2] and dist[2] < 1e-2 * np.linalg.norm(l1.w), (depth, dist)


def test_basis_pursuit_decides_uniqueness():
    # two identical columns: w1 + w2 is fixed, any split of it is optimal
    X = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    out = min_potential(X, [2.0, 1.0], "l1")
    assert not out.unique and math.isclose(out.objective, 3.0, rel_tol=1e-12)
    assert min_potential(np.eye(3)[:2], [2.0, -1.0], "l1").unique


def test_least_squares_when_no_interpolator():
    X, y = _data(5, 40, 6)  # N > d, full column rank: one least-squares solution
    with pytest.raises(NoInterpolatorError, match="least_squares=True"):
        min_potential(X, y, "Q", alpha=1.0, depth=2)
    ls, *_ = np.linalg.lstsq(X, y, rcond=None)
    for kind, kw in (("Q", dict(alpha=1e-3, depth=3)), ("Q", dict(alpha=10.0)), ("l1", {}), ("l2", {})):
        out = min_potential(X, y, kind, least_squares=True, **kw)
        assert np.max(np.abs(out.w - ls)) < 1e-10 * np.max(np.abs(ls)), kind
        assert math.isclose(out.residual, np.linalg.norm(X @ ls - y), rel_tol=1e-10)
    # rank-deficient with a residual: the potential picks among the least-squares solutions
    rng = np.random.default_rng(6)
    X = rng.normal(size=(30, 3)) @ rng.normal(size=(3, 8))  # rank 3, d = 8
    y = rng.normal(size=30)
    out = min_potential(X, y, "Q", alpha=0.1, depth=2, least_squares=True)
    assert out.info["rank"] == 3 and out.kkt_residual < 1e-12
    assert np.max(np.abs(X.T @ (X @ out.w - y))) < 1e-10 * np.linalg.norm(X.T @ y)  # normal equations
    U = np.linalg.svd(X, full_matrices=False)[0][:, :3]  # X w = P y as 3 independent rows
    ref = _mp_dual(U.T @ X, U.T @ y, 0.01, 2)
    assert np.max(np.abs(out.w - ref)) < 1e-10 * np.max(np.abs(ref))


def test_bad_input():
    X, y = _data(0, 4, 9)
    for args, kw, err, msg in [
        ((X, y, "l3"), {}, ParameterError, "kind must be"),
        ((X, y, "Q"), {}, ParameterError, "needs alpha"),
        ((X, y, "l1"), dict(alpha=1.0), ParameterError, "applies to kind='Q'"),
        ((X, y, "Q"), dict(alpha=-1.0), ParameterError, "alpha"),
        ((X, y, "Q"), dict(alpha=1e-200, depth=5), NumericalRangeError, "outside float64"),
        ((X, y, "Q"), dict(alpha=1e-60, depth=2), NumericalRangeError, "validated"),
        ((X, y, "Q"), dict(alpha=1.0, depth=1), ParameterError, "depth"),
        ((X, y, "Q"), dict(alpha=np.ones(8)), ParameterError, "one per feature"),
        ((X, y, "Q"), dict(alpha=np.r_[np.ones(8), -1.0]), ParameterError, "<= 0"),
        ((X, y, "Q"), dict(alpha=[[1.0] * 9]), ParameterError, "one per feature"),
        ((X, y, "Q"), dict(alpha=np.r_[np.ones(8), 1e-200], depth=5), NumericalRangeError, "outside float64"),
        ((X, y, "l2"), dict(least_squares="yes"), ParameterError, "least_squares"),
        ((X, np.r_[y[:-1], np.nan], "l2"), {}, DataError, "NaN or inf"),
        ((X, y[:3], "l2"), {}, DataError, "shape mismatch"),
        ((np.zeros((4, 9)), y, "l2"), {}, DataError, "X is zero"),
        (([[1, 2], [3]], [1, 2], "l2"), {}, DataError, "rectangular"),
    ]:
        with pytest.raises(err, match=msg):
            min_potential(*args, **kw)
    assert issubclass(NoInterpolatorError, ValueError)


def test_per_coordinate_scales_reduce_to_one_scale():
    """alpha = a·1 as a vector is the scalar problem: the same w, dual and objective."""
    X, y = _data(1, 6, 12)
    for depth in (2, 3, 5):
        one = min_potential(X, y, "Q", alpha=0.3, depth=depth)
        many = min_potential(X, y, "Q", alpha=np.full(12, 0.3), depth=depth)
        assert np.allclose(many.w, one.w, rtol=0, atol=1e-12 * np.max(np.abs(one.w)))
        assert np.allclose(many.dual, one.dual, rtol=1e-10)
        assert math.isclose(many.objective, one.objective, rel_tol=1e-12)
        assert many.as_dict()["alpha"] == [0.3] * 12
