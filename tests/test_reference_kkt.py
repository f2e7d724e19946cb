"""Self-tests of the independent KKT reference ``_reference_kkt.py`` (no flowkit code involved).

The reference is cross-checked against the other independent reference,
``_reference_maxmargin.py`` (dual support enumeration), against mpmath, against hand-solved
cases, and against itself (vertex enumeration vs multistart in parameter space).
"""
import mpmath as mp
import numpy as np
import pytest
from scipy.integrate import quad
from scipy.optimize import linprog

from _reference_kkt import (l1_face_vertices, l2D_multistart_u, l2D_objective,
                            l2D_vertex_kkt_points, q_kink_mp, q_mu_primal, q_path_kinks)
from _reference_maxmargin import Q, h_inv, q, q_mu_kkt_residual, q_mu_max_margin

KINK = np.array([[0.7, 0.9, 0.8], [0.3, 0.4, 0.9], [0.1, 0.8, 0.8]])    # all y = +1
FIG4A = np.array([[0.6, 0.7, 0.8], [0.7, 0.6, 0.6], [1.0, 0.5, 0.5]])   # all y = +1
MUS = (1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0, 1e3)


def planted(rng, n, d, margin=0.05):
    """Random separable Xt (rows y_n x_n): Gaussian points labelled by a planted unit separator,
    points within ``margin`` of its hyperplane pushed out (same recipe as conftest.planted_data,
    repeated here so that this file imports nothing that imports flowkit)."""
    ws = rng.standard_normal(d)
    ws /= np.linalg.norm(ws)
    X = rng.standard_normal((n, d))
    s = X @ ws
    X += np.outer(np.where(np.abs(s) < margin, np.sign(s + 1e-300) * margin - s, 0.0), ws)
    y = np.where(X @ ws > 0, 1.0, -1.0)
    return y[:, None] * X


def random_sets(seed, k, nmax=6, dmax=5):
    rng = np.random.default_rng(seed)
    return [planted(rng, int(rng.integers(1, nmax + 1)), int(rng.integers(1, dmax + 1)))
            for _ in range(k)]


# ------------------------------------------------------------------ the objective itself
@pytest.mark.parametrize("D", [2, 3, 5])
def test_q_is_the_integral_of_h_inv(D):
    """q_D(z) = int_0^z h_D^{-1}: the primal objective's gradient (1/mu) h^{-1}(w/mu) is exact."""
    for z in (-7.0, -0.3, 0.05, 1.0, 40.0):
        val, err = quad(lambda s: float(h_inv(s, D)), 0.0, z, epsabs=0, epsrel=1e-13, limit=200)
        assert abs(float(q(z, D)) - val) <= 1e-11 * max(1.0, abs(val))


# ------------------------------------------------------------------ 1. Q_mu in the primal
@pytest.mark.parametrize("D", [2, 3, 5])
@pytest.mark.parametrize("name", ["kink", "fig4a", "random"])
def test_q_mu_primal_matches_dual_enumeration(name, D):
    sets = {"kink": [KINK], "fig4a": [FIG4A], "random": random_sets(2024 + D, 8)}[name]
    worst = 0.0
    for Xt in sets:
        for mu in MUS:
            w, nu = q_mu_primal(Xt, mu, D)
            wr, nur, _ = q_mu_max_margin(Xt, mu, D)
            assert q_mu_kkt_residual(Xt, mu, w, nu, D) <= 1e-12
            err = np.linalg.norm(w - wr) / np.linalg.norm(wr)
            worst = max(worst, err)
            assert err <= 1e-9, (Xt.shape, mu, D, err)
            assert np.max(np.abs(nu - nur)) <= 1e-8 * max(1.0, np.max(np.abs(nur)))
    assert worst <= 1e-9


def test_q_mu_primal_is_a_minimiser():
    """Independent of the KKT machinery: feasible perturbations never lower Q_mu."""
    rng = np.random.default_rng(5)
    for D, mu in ((2, 0.1), (3, 1.0), (5, 0.01)):
        w, _ = q_mu_primal(KINK, mu, D)
        f0 = Q(w, mu, D)
        for _ in range(200):
            p = w + 1e-3 * np.linalg.norm(w) * rng.standard_normal(3)
            p /= min(1.0, float(np.min(KINK @ p)))        # back to feasibility by scaling up
            assert Q(p, mu, D) >= f0 * (1 - 1e-14)


# ------------------------------------------------------------------ 2. l1 optimal face
def _same_vertex_set(V, W, tol=1e-12):
    V, W = np.atleast_2d(V), np.atleast_2d(W)
    return len(V) == len(W) and all(np.min(np.max(np.abs(W - v), axis=1)) <= tol for v in V)


@pytest.mark.parametrize("Xt, opt, V", [
    ([[1.0, 1.0]], 1.0, [[1, 0], [0, 1]]),                                  # a segment
    ([[1.0, 1.0, 1.0]], 1.0, np.eye(3)),                                     # a triangle
    ([[1.0, 0.0], [0.0, 1.0]], 2.0, [[1, 1]]),                               # unique
    ([[1.0, 1.0], [1.0, -0.5]], 1.0, [[1, 0]]),                              # unique, degenerate
    ([[1.0, 2.0, 0.0], [0.0, 1.0, 1.0], [2.0, 0.0, 1.0]], 1.2, [[0.2, 0.4, 0.6]]),  # interior
    ([[1.0, 1.0], [-1.0, 1.0]], 1.0, [[0, 1]]),                              # unique on an axis
    (KINK, 1.25, [[0, 0, 1.25], [0, 0.25, 1]]),                              # kink: a segment
    (FIG4A, 1.5, [[1, 0, 0.5]]),                                             # fig4a: unique
])
def test_l1_face_known(Xt, opt, V):
    o, W = l1_face_vertices(np.array(Xt, float))
    assert abs(o - opt) <= 1e-14 * opt
    assert _same_vertex_set(W, np.array(V, float))


def test_l1_face_complete_by_random_linear_objectives():
    """F = conv(V): for random c, min c^T w over F (HiGHS, lifted w = a - b) = min_v c^T v."""
    rng = np.random.default_rng(3)
    for Xt in random_sets(7, 12, nmax=5, dmax=4) + [KINK, np.array([[1.0, 1.0, 1.0]])]:
        opt, V = l1_face_vertices(Xt)
        N, d = Xt.shape
        assert np.all(Xt @ V.T >= 1 - 1e-12) and np.allclose(np.abs(V).sum(1), opt, rtol=1e-12)
        for _ in range(5):
            c = rng.standard_normal(d)
            res = linprog(np.concatenate([c, -c]),
                          A_ub=np.vstack([-np.hstack([Xt, -Xt]), np.ones((1, 2 * d))]),
                          b_ub=np.concatenate([-np.ones(N), [opt * (1 + 1e-12)]]),
                          bounds=(0, None), method="highs")
            assert res.status == 0
            assert abs(res.fun - np.min(V @ c)) <= 1e-8 * max(1.0, abs(res.fun))


# ------------------------------------------------------------------ 3. l_{2/D} KKT points
def test_l2D_vertices_by_hand():
    """kink, D = 3: the vertex KKT points are e3/0.8, e2/0.4 and e1/0.1 (single-feature,
    each held by its tightest sample); the two-feature vertices fail the sign of nu."""
    P = l2D_vertex_kkt_points(KINK, 3)
    W = np.array([p["w"] for p in P])
    assert _same_vertex_set(W, np.array([[0, 0, 1.25], [0, 2.5, 0], [10, 0, 0]]), tol=1e-14)
    assert [p["support_samples"] for p in P] == [(0,), (1,), (2,)]
    assert np.allclose([p["objective"] for p in P], [1.25 ** (2 / 3), 2.5 ** (2 / 3), 10 ** (2 / 3)],
                       rtol=1e-14)


@pytest.mark.parametrize("D", [3, 4])
def test_l2D_vertex_points_satisfy_kkt(D):
    for Xt in random_sets(11 + D, 6, nmax=4, dmax=4) + [KINK, FIG4A]:
        for p in l2D_vertex_kkt_points(Xt, D):
            w, nu = p["w"], p["nu"]
            T = np.flatnonzero(w)
            assert np.min(Xt @ w) >= 1 - 1e-9 and np.all(nu >= 0)
            assert np.max(np.abs(nu * (Xt @ w - 1))) <= 1e-9 * max(1.0, nu.max())
            g = (2.0 / D) * np.abs(w[T]) ** (2.0 / D - 1) * np.sign(w[T])
            assert np.allclose((Xt.T @ nu)[T], g, rtol=1e-10, atol=1e-12)
            assert abs(p["objective"] - l2D_objective(w, D)) <= 1e-15 * p["objective"]


@pytest.mark.parametrize("D", [3, 4])
def test_l2D_multistart_lands_on_vertex_kkt_points(D):
    """Every local solution of min ||u||^2 s.t. Xt(u+^D - u-^D) >= 1 from random starts is a
    vertex KKT point (<= 1e-6), and the best found equals the best vertex objective."""
    for Xt in random_sets(100 + D, 5, nmax=4, dmax=4) + [KINK, FIG4A]:
        V = l2D_vertex_kkt_points(Xt, D)
        M = l2D_multistart_u(Xt, D, starts=60, seed=D)
        assert M, "no multistart run converged"
        for p in M:
            dist = min(np.max(np.abs(p["w"] - v["w"])) / max(1.0, np.max(np.abs(v["w"])))
                       for v in V)
            assert dist <= 1e-6, (Xt, D, p["w"], dist)
        assert abs(M[0]["objective"] - V[0]["objective"]) <= 1e-7 * V[0]["objective"]


# ------------------------------------------------------------------ 4. kinks of the Q_mu path
KINK_D2 = 0.405345840454682       # two earlier independent solves (the "near 0.35" is wrong)
# mpmath (q_kink_mp at 50 and 70 digits agree to 1e-49; data read as the decimals above), 30 digits:
KINKS_MP = {("kink", 2): "0.405345840454680072352115597246",
            ("kink", 3): "0.623014138941752468079330466497",
            ("fig4a", 2): "0.000415684381927212200978085039527",
            ("fig4a", 3): "0.013505381383407933605580184287"}


def _primal_support(Xt, mu, D):
    return q_mu_primal(Xt, mu, D, return_info=True)[2]["S"]


def test_kink_dataset_D2_has_exactly_one_kink():
    K = q_path_kinks(KINK, 2)            # [1e-4, 1e3], 100 points per decade, bisection 1e-10
    assert len(K) == 1
    mu, above, below = K[0]
    assert (above, below) == ((1,), (1, 2))
    assert abs(mu - KINK_D2) <= 2e-10 * KINK_D2
    with mp.workdps(50):
        m = q_kink_mp(KINK, 2, (1,), 2, mu, dps=50)
        assert abs(m - mp.mpf(KINKS_MP["kink", 2])) <= mp.mpf("1e-29")
        assert abs(m - mp.mpf(KINK_D2)) <= mp.mpf("5e-15")
    # the primal solver (a different formulation) sees the same change of active set
    assert _primal_support(KINK, mu * (1 + 1e-6), 2) == (1,)
    assert _primal_support(KINK, mu * (1 - 1e-6), 2) == (1, 2)


@pytest.mark.parametrize("name, D, lo, hi, above, below", [
    ("kink", 3, 0.2, 2.0, (1,), (1, 2)),
    ("fig4a", 2, 1e-4, 1e-3, (1,), (0, 1)),
    ("fig4a", 3, 0.005, 0.05, (1,), (0, 1)),
])
def test_other_kinks(name, D, lo, hi, above, below):
    """One kink in a decade around it (the full range [1e-4, 1e3] also has exactly one each:
    measured, too slow to repeat here); bisection, mpmath and the primal solver agree."""
    Xt = {"kink": KINK, "fig4a": FIG4A}[name]
    K = q_path_kinks(Xt, D, mu_hi=hi, mu_lo=lo)
    assert len(K) == 1 and K[0][1:] == (above, below)
    j = (set(below) - set(above)).pop()
    with mp.workdps(50):
        m = q_kink_mp(Xt, D, above, j, K[0][0], dps=50)
        assert abs(m - mp.mpf(KINKS_MP[name, D])) <= mp.mpf("1e-29") * m
    assert abs(K[0][0] - float(m)) <= 2e-10 * float(m)
    assert _primal_support(Xt, float(m) * (1 + 1e-6), D) == above
    assert _primal_support(Xt, float(m) * (1 - 1e-6), D) == below
