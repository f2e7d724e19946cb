"""flowkit.max_margin against independent solves (tests/_reference_maxmargin.py: KKT
support enumeration and HiGHS; tests/_reference_kkt.py: SLSQP on the primal, brute-force
vertex enumeration) and against the problems' own structure."""
import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

import flowkit
from conftest import planted_data
from flowkit.exceptions import (DataError, NotSeparableError, NumericalRangeError,
                                ParameterError)
from _reference_maxmargin import l1_max_margin, l2_max_margin, q_mu_max_margin

DATASETS = ["fig4a", "fig4b", "kink"]


def _data(name):
    return flowkit.datasets.load(name)


def _rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def _check_certificate(r, X, y):
    m = (y[:, None] * X) @ r.w
    assert m.min() == pytest.approx(1.0, abs=1e-14)
    assert r.kkt_residual <= 1e-9
    assert np.all(r.dual >= 0)
    assert set(r.support.tolist()) == set(np.flatnonzero(r.dual > 0).tolist())


# ---------------------------------------------------------------- l2
@pytest.mark.parametrize("name", DATASETS)
def test_l2_matches_enumeration(name):
    X, y = _data(name)
    r = flowkit.max_margin(X, y, "l2")
    w, S = l2_max_margin(y[:, None] * X)
    _check_certificate(r, X, y)
    assert _rel(r.w, w) <= 1e-12 and tuple(r.support) == S and r.unique


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(2, 9), d=st.integers(1, 5))
def test_l2_random(seed, n, d):
    X, y = planted_data(np.random.default_rng(seed), n, d)
    r = flowkit.max_margin(X, y, "l2")
    w, _ = l2_max_margin(y[:, None] * X)
    _check_certificate(r, X, y)
    assert _rel(r.w, w) <= 1e-7


# ---------------------------------------------------------------- l1
def test_l1_unique_fig4a():
    X, y = _data("fig4a")
    r = flowkit.max_margin(X, y, "l1")
    _check_certificate(r, X, y)
    assert r.unique and r.face is None
    np.testing.assert_allclose(r.w, [1.0, 0.0, 0.5], atol=1e-15)


def test_l1_face_kink():
    # the kink data's ℓ1 optimum is a segment: both ends have norm 1.25 and margins >= 1
    X, y = _data("kink")
    r = flowkit.max_margin(X, y, "l1")
    _check_certificate(r, X, y)
    assert not r.unique and r.face.dimension == 1 and r.face.complete
    V = sorted(map(tuple, np.round(r.face.vertices, 14)))
    assert V == [(0.0, 0.0, 1.25), (0.0, 0.25, 1.0)]
    for v in r.face.vertices:
        assert np.abs(v).sum() == pytest.approx(r.objective, rel=1e-14)
        assert (X @ v).min() >= 1 - 1e-14


def test_l1_single_point_face():
    # one point x~ = (1, 1): min |w1| + |w2| s.t. w1 + w2 >= 1 is the whole segment
    r = flowkit.max_margin(np.array([[1.0, 1.0]]), np.array([1.0]), "l1")
    assert not r.unique
    V = sorted(map(tuple, np.abs(np.round(r.face.vertices, 14))))
    assert V == [(0.0, 1.0), (1.0, 0.0)]


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(2, 9), d=st.integers(1, 6))
def test_l1_random_objective_and_certificate(seed, n, d):
    X, y = planted_data(np.random.default_rng(seed), n, d)
    r = flowkit.max_margin(X, y, "l1")
    ref = np.abs(l1_max_margin(y[:, None] * X)).sum()
    _check_certificate(r, X, y)
    assert r.objective == pytest.approx(ref, rel=1e-9)
    if r.face is not None:  # every vertex is optimal and feasible
        for v in r.face.vertices:
            assert np.abs(v).sum() == pytest.approx(ref, rel=1e-9)
            assert ((y[:, None] * X) @ v).min() >= 1 - 1e-9


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(1, 5), d=st.integers(2, 4))
def test_l1_faces_on_integer_data(seed, n, d):
    # small-integer data make ties (non-unique optima) common
    rng = np.random.default_rng(seed)
    X = rng.integers(-1, 3, size=(n, d)).astype(float)
    X[:, 0] = np.abs(X[:, 0]) + 1.0  # separable by w = e_1
    y = np.ones(n)
    r = flowkit.max_margin(X, y, "l1")
    ref = np.abs(l1_max_margin(X)).sum()
    assert r.objective == pytest.approx(ref, rel=1e-12)
    # uniqueness decided independently: LPs for the range of each coordinate on the face
    from scipy.optimize import linprog
    spread = 0.0
    for i in range(d):
        for s in (1, -1):
            c = np.zeros(2 * d)
            c[i], c[d + i] = s, -s
            res = linprog(c, A_ub=np.vstack([-np.hstack([X, -X]), np.ones((1, 2 * d))]),
                          b_ub=np.concatenate([-np.ones(n), [ref * (1 + 1e-12)]]),
                          bounds=(0, None), method="highs")
            spread = max(spread, abs(res.fun - s * r.w[i]))
    assert r.unique == (spread < 1e-8)


# ---------------------------------------------------------------- Q
MUS = [1e-6, 1e-4, 1e-2, 0.3, 1.0, 10.0, 1e3, 1e6]


@pytest.mark.parametrize("depth", [2, 3, 5, 10])
@pytest.mark.parametrize("name", DATASETS)
def test_q_matches_enumeration(name, depth):
    X, y = _data(name)
    Xt = y[:, None] * X
    for mu in MUS:
        r = flowkit.max_margin(X, y, "Q", mu=mu, depth=depth)
        _check_certificate(r, X, y)
        try:
            w, _, S = q_mu_max_margin(Xt, mu, depth=depth, tol=1e-11)
        except ValueError:  # the enumeration reference cannot certify this corner
            continue
        assert _rel(r.w, w) <= 1e-7, mu
        assert tuple(r.support) == S


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(2, 6), d=st.integers(2, 5),
       depth=st.sampled_from([2, 3, 4, 7]), log_mu=st.floats(-6, 6))
def test_q_random(seed, n, d, depth, log_mu):
    X, y = planted_data(np.random.default_rng(seed), n, d, margin=0.2)
    r = flowkit.max_margin(X, y, "Q", mu=10.0 ** log_mu, depth=depth)
    _check_certificate(r, X, y)


@pytest.mark.parametrize("depth", [2, 3, 6])
def test_q_limits(depth):
    # μ -> ∞: ℓ2 (Q_μ ∝ ‖w‖² + O(μ⁻²)); μ -> 0: ℓ1 (fig4a's is unique), monotonically
    X, y = _data("fig4a")
    l2 = flowkit.max_margin(X, y, "l2").w
    l1 = flowkit.max_margin(X, y, "l1")
    assert np.max(np.abs(flowkit.max_margin(X, y, "Q", mu=1e6, depth=depth).w - l2)) < 1e-10
    mus = (1e-2, 1e-4, 1e-6)
    sols = [flowkit.max_margin(X, y, "Q", mu=mu, depth=depth).w for mu in mus]
    gaps = [np.max(np.abs(w - l1.w)) for w in sols]
    assert gaps[0] > gaps[1] > gaps[2]
    if depth == 2:
        # δ-approximation needs μ = exp(-1/δ) (paper, "Role of depth"): the excess ℓ1
        # norm is O(1/log(1/μ))
        excess = [np.abs(w).sum() / l1.objective - 1 for w in sols]
        assert all(0 < e * np.log(1 / mu) < 0.2 for e, mu in zip(excess, mus))
    else:  # 1/μ = poly(1/δ)
        assert gaps[2] < 1e-2


# ---------------------------------------------------------------- l2/D
def test_l2d_fig4a_depth3():
    X, y = _data("fig4a")
    r = flowkit.max_margin(X, y, "l2/D", depth=3)
    _check_certificate(r, X, y)
    np.testing.assert_allclose(r.w, [1 / 0.6, 0.0, 0.0], rtol=1e-14)
    objs = [p.objective for p in r.kkt_points]
    assert objs == sorted(objs) and r.kkt_points[0].objective == r.objective
    for p in r.kkt_points:
        _check_certificate(p, X, y)


def test_l2d_depth2_is_l1():
    X, y = _data("fig4a")
    r = flowkit.max_margin(X, y, "l2/D", depth=2)
    assert r.objective == pytest.approx(flowkit.max_margin(X, y, "l1").objective, rel=1e-14)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs, exc, text", [
    (dict(kind="linf"), ParameterError, "kind must be one of"),
    (dict(kind="Q"), ParameterError, "needs mu"),
    (dict(kind="l2", mu=1.0), ParameterError, "applies to kind='Q' only"),
    (dict(kind="Q", mu=-1.0), ParameterError, "positive"),
    (dict(kind="Q", mu=float("nan")), ParameterError, "positive"),
    (dict(kind="Q", mu=1e9), NumericalRangeError, "outside the range"),
    (dict(kind="Q", mu=1.0, depth=1), ParameterError, "depth"),
    (dict(kind="l2/D", depth=3, starts=0), ParameterError, "starts"),
])
def test_bad_options(kwargs, exc, text):
    X, y = _data("fig4a")
    kind = kwargs.pop("kind")
    with pytest.raises(exc, match=text):
        flowkit.max_margin(X, y, kind, **kwargs)


def test_bad_data():
    X, y = _data("fig4a")
    with pytest.raises(NotSeparableError):
        flowkit.max_margin(np.vstack([X, X[:1]]), np.append(y, -1.0), "l1")
    with pytest.raises(DataError, match="labels"):
        flowkit.max_margin(X, np.array([1.0, 2.0, 1.0]), "l2")
    with pytest.raises(DataError, match="NaN"):
        flowkit.max_margin(np.where(X > 0.9, np.nan, X), y, "Q", mu=1.0)


@pytest.mark.parametrize("name", ["fig4b", "kink"])
def test_l2d_contains_the_flow_limit(name):
    # Theorem 2: at small alpha the flow's direction tends to a KKT point of the ℓ_{2/D}
    # problem -- on fig4b not the best one, which is why all of them are reported
    X, y = _data(name)
    r = flowkit.max_margin(X, y, "l2/D", depth=3)
    tr = flowkit.integrate(X, y, depth=3, alpha=0.01, gamma=1e8)
    gaps = [np.max(np.abs(tr.w_hat[-1] - p.w)) for p in r.kkt_points]
    assert min(gaps) < 1e-9
    if name == "fig4b":
        assert int(np.argmin(gaps)) > 0


# ---------------------------------------------------------------- against tests/_reference_kkt.py
from _reference_kkt import (l1_face_vertices, l2D_vertex_kkt_points,  # noqa: E402
                            q_mu_primal)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(2, 6), d=st.integers(2, 5),
       depth=st.sampled_from([2, 3, 5]), mu=st.sampled_from([1e-3, 1e-2, 0.1, 1.0, 10.0, 1e2, 1e3]))
@example(seed=838, n=4, d=2, depth=2, mu=1e-3)  # more tight samples than d: SLSQP+Newton fails
def test_q_against_primal_slsqp(seed, n, d, depth, mu):
    # a different formulation: SLSQP on the primal plus Newton on (w, ν_S); where that
    # reference cannot certify its point (a tight sample with ν = 0 makes its Newton system
    # singular), the support-enumeration reference decides instead
    X, y = planted_data(np.random.default_rng(seed), n, d, margin=0.2)
    r = flowkit.max_margin(X, y, "Q", mu=mu, depth=depth)
    try:
        w, _ = q_mu_primal(y[:, None] * X, mu, depth)
    except ValueError:
        w = q_mu_max_margin(y[:, None] * X, mu, depth)[0]
    assert _rel(r.w, w) <= 1e-7


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(1, 5), d=st.integers(2, 4))
def test_l1_face_against_brute_force(seed, n, d):
    rng = np.random.default_rng(seed)
    X = rng.integers(-1, 3, size=(n, d)).astype(float)
    X[:, 0] = np.abs(X[:, 0]) + 1.0
    r = flowkit.max_margin(X, np.ones(n), "l1")
    opt, V = l1_face_vertices(X)
    assert r.objective == pytest.approx(opt, rel=1e-12)
    got = r.face.vertices if r.face is not None else r.w[None, :]
    key = lambda A: sorted(map(tuple, np.round(A, 9) + 0.0))
    assert key(got) == key(V)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("depth", [3, 4])
def test_l2d_against_vertex_enumeration(seed, depth):
    X, y = planted_data(np.random.default_rng(seed), 4, 3, margin=0.2)
    Xt = y[:, None] * X
    r = flowkit.max_margin(X, y, "l2/D", depth=depth, starts=64)
    ref = l2D_vertex_kkt_points(Xt, depth)
    for p in r.kkt_points:  # everything found is a KKT point of the enumeration
        assert min(np.max(np.abs(p.w - q["w"])) for q in ref) <= 1e-9 * np.max(np.abs(p.w))
    assert r.objective == pytest.approx(ref[0]["objective"] ** (depth / 2), rel=1e-12)


def test_q_solver_never_leaves_the_dual_domain():
    # regression: below the public mu range a fixed-support candidate with nu_n < 0, clipped
    # to nu >= 0 as the next start, had |X~ᵀnu| > 1 (outside H_D's domain for D > 2) and the
    # solver raised instead of returning its best certified point
    from flowkit.maxmargin.q import solve_q
    Xt = np.array([[0.6, 0.1, 0.2], [1.0, 0.6, 0.6], [1.0, 0.6, 0.4]])
    r = solve_q(Xt, 6.509675230458174e-10, 5)
    assert np.all(np.isfinite(r.w)) and (Xt @ r.w).min() == pytest.approx(1.0)
