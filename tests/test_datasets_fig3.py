"""The constructed Fig. 3 datasets (data/README.md, data/make_fig3.py): every property the
paper's panels (b)-(d) need, asserted with flowkit's solvers AND an independent check
(tests/_reference_maxmargin.py, tests/_reference_kkt.py, scipy LPs, margins recomputed
from trajectories).  D = 2 unless stated.

(b) unique ℓ1 point, supp(ℓ2) == supp(ℓ1), ℓ1 = best ℓ_{2/3} and ℓ_{2/10} KKT point, no
    support change on the Q_μ paths for D = 2, 3, 10 (Fig. 5 integrates these depths);
(c) the Q_μ path never changes support and keeps the ℓ2 support, and the flow at α = 100
    follows it (Condition 5 holds on runs stopped at μ = 0.1, 0.01), while the ℓ1 optimum
    is a segment;
(d) supp(ℓ2) != supp(ℓ1): one kink at μ0 ~ 0.1154 where an ℓ2 support vector LEAVES, so
    Condition 5 fails on runs stopped below μ0 (μ0/5) and holds above it (3 μ0).
"""
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import brentq, linprog

import flowkit
from flowkit import diagnostics as dg
from _reference_kkt import l1_face_vertices, l2D_vertex_kkt_points, q_kink_mp, q_path_kinks
from _reference_maxmargin import h, l2_max_margin, q_mu_max_margin

DATA = Path(__file__).resolve().parents[1] / "data"
NAMES = ("fig3b", "fig3c", "fig3d")
MU_RANGE = (1e3, 1e-4)
# μ0 of fig3d by 40-digit mpmath (q_kink_mp); flowkit.q_path and the reference bisection
# agree with it within their brackets (2.5e-10 and ~1e-10 relative)
MU0_D = 0.115384984353496


def tilde(name):
    X, y = flowkit.datasets.load(name)
    return X, y, y[:, None] * X


def angle_deg(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    return math.degrees(2.0 * math.asin(min(1.0, float(np.linalg.norm(a - b)) / 2.0)))


def l1_ranges(Xt):
    """Independent: the ℓ1 optimum `opt` by LP, then min and max of every w_i over the
    optimal set {Xt w >= 1, ‖w‖₁ <= opt} (w = a - b, a, b >= 0).  Returns (opt, lo, hi)."""
    N, d = Xt.shape
    A = -np.hstack([Xt, -Xt])
    opts = dict(primal_feasibility_tolerance=1e-10, dual_feasibility_tolerance=1e-10)
    base = linprog(np.ones(2 * d), A_ub=A, b_ub=-np.ones(N), bounds=(0, None), method="highs",
                   options=opts)
    assert base.status == 0
    opt = base.fun
    A2 = np.vstack([A, np.ones(2 * d)])
    b2 = np.concatenate([-np.ones(N), [opt * (1 + 1e-12)]])
    lo, hi = np.zeros(d), np.zeros(d)
    for i in range(d):
        c = np.zeros(2 * d)
        c[i], c[d + i] = 1.0, -1.0
        r_lo = linprog(c, A_ub=A2, b_ub=b2, bounds=(0, None), method="highs", options=opts)
        r_hi = linprog(-c, A_ub=A2, b_ub=b2, bounds=(0, None), method="highs", options=opts)
        assert r_lo.status == 0 and r_hi.status == 0
        lo[i], hi[i] = r_lo.fun, -r_hi.fun
    return opt, lo, hi


def l1_dual(Xt):
    """Independent ℓ1 dual: max Σν s.t. |Xtᵀν|_i <= 1, ν >= 0 (LP); returns (value, ν)."""
    N, d = Xt.shape
    r = linprog(-np.ones(N), A_ub=np.vstack([Xt.T, -Xt.T]), b_ub=np.ones(2 * d),
                bounds=(0, None), method="highs")
    assert r.status == 0
    return -r.fun, r.x


def ref_support(v, rtol=1e-9):
    v = np.asarray(v, float)
    return tuple(int(n) for n in np.flatnonzero(v > rtol * np.max(v)))


def one_support_q(Xt, mu, D, k):
    """Independent Q^D_μ point on the single support {k}: w = μ h_D(ν x̃_k) with
    x̃_kᵀ w = 1, ν > 0 by bracketing (x̃_k > 0, so the margin grows with ν).  When every
    other margin is >= 1 this is the KKT point, hence THE Q_μ max-margin point (strictly
    convex problem).  Returns (w, other margins)."""
    x = Xt[k]
    f = lambda nu: float(x @ (mu * h(nu * x, D))) - 1.0
    if D == 2:
        hi = 1.0
        while f(hi) <= 0:
            hi *= 2
    else:                                   # h_D lives on |v| < 1
        hi = (1 - 1e-15) / np.max(x)
    nu = brentq(f, 0.0, hi, xtol=1e-300, rtol=1e-15)
    w = mu * h(nu * x, D)
    return w, np.delete(Xt @ w, k)


def path_min_nonsupport_margin(Xt, path):
    """Smallest margin over the points outside each path point's support."""
    out = math.inf
    for w, S in zip(path.w, path.support):
        rest = [n for n in range(Xt.shape[0]) if n not in S]
        if rest:
            out = min(out, float(np.min(Xt[rest] @ w)))
    return out


@pytest.fixture(scope="module")
def paths():
    """flowkit Q_μ paths over [1e-4, 1e3]: D = 2, 3, 10 on fig3b, D = 2 on fig3c and fig3d."""
    out = {}
    for name, D in [("fig3b", 2), ("fig3b", 3), ("fig3b", 10), ("fig3c", 2), ("fig3d", 2)]:
        X, y = flowkit.datasets.load(name)
        out[name, D] = flowkit.q_path(X, y, depth=D, mu_range=MU_RANGE)
    return out


# ------------------------------------------------------------------ the files themselves
@pytest.mark.parametrize("name", NAMES)
def test_builtin_matches_csv_and_paper_format(name):
    X, y = flowkit.datasets.load(name)
    Xf, yf = flowkit.datasets.load_file(DATA / f"{name}.csv")
    np.testing.assert_array_equal(X, Xf)
    np.testing.assert_array_equal(y, yf)
    assert getattr(flowkit.datasets, name)()[0].tolist() == X.tolist()
    # like the paper's Fig. 3/4 data: three points in R^3, labels +1, one decimal in (0, 1]
    assert X.shape == (3, 3) and np.all(y == 1)
    assert np.all(X > 0) and np.all(X <= 1)
    np.testing.assert_array_equal(np.round(X * 10), X * 10)
    assert len({tuple(r) for r in X}) == 3
    assert name in flowkit.datasets.BUILTIN


# ------------------------------------------------------------------ (b)
def test_fig3b_l1_unique():
    X, y, Xt = tilde("fig3b")
    l1 = flowkit.max_margin(X, y, "l1")
    assert l1.unique and l1.face is None and l1.kkt_residual <= 1e-9
    np.testing.assert_allclose(l1.w, [1 / 0.6, 0, 0], rtol=1e-12, atol=1e-14)
    # independent: brute-force vertices of the optimal face, and LP ranges of every w_i
    opt, V = l1_face_vertices(Xt)
    assert V.shape == (1, 3)
    np.testing.assert_allclose(V[0], l1.w, rtol=1e-9, atol=1e-12)
    opt2, lo, hi = l1_ranges(Xt)
    assert opt2 == pytest.approx(opt, rel=1e-10) and opt == pytest.approx(l1.objective, rel=1e-10)
    assert np.max(hi - lo) <= 1e-7
    np.testing.assert_allclose(lo, l1.w, atol=1e-7)


def test_fig3b_same_support_vectors_for_l2_and_l1():
    X, y, Xt = tilde("fig3b")
    l2, l1 = flowkit.max_margin(X, y, "l2"), flowkit.max_margin(X, y, "l1")
    assert tuple(l2.support) == tuple(l1.support) == (0,)
    # independent: support enumeration for ℓ2, the ℓ1 dual LP, and the margins
    w2, S2 = l2_max_margin(Xt)
    np.testing.assert_allclose(w2, l2.w, rtol=1e-10)
    value, nu = l1_dual(Xt)
    assert value == pytest.approx(l1.objective, rel=1e-10)
    assert S2 == ref_support(nu) == (0,)
    for w in (w2, l1.w):
        m = Xt @ w
        assert m[0] == pytest.approx(1.0, abs=1e-12) and np.all(m[1:] >= 1.6)
    # different points on the sphere (the Q_μ path has room to be visible)
    assert angle_deg(l2.w, l1.w) == pytest.approx(20.44, abs=0.01)


@pytest.mark.parametrize("depth", [3, 10])
def test_fig3b_l1_is_the_l2D_solution(depth):
    X, y, Xt = tilde("fig3b")
    w1 = flowkit.max_margin(X, y, "l1").w
    r = flowkit.max_margin(X, y, "l2/D", depth=depth)
    np.testing.assert_allclose(r.w, w1, rtol=1e-10, atol=1e-12)
    assert r.kkt_points[0].objective < r.kkt_points[1].objective / 2
    # independent: every vertex KKT point, exhaustively; the ℓ1 point is strictly best
    ref = l2D_vertex_kkt_points(Xt, depth)       # objective Σ|w_i|^{2/D}
    np.testing.assert_allclose(ref[0]["w"], w1, rtol=1e-10, atol=1e-12)
    assert (ref[0]["objective"] / ref[1]["objective"]) ** (depth / 2) < 1 / 2
    assert ref[0]["support_samples"] == (0,)
    # and flowkit found the same set of KKT points
    assert sorted(tuple(np.round(p.w, 9)) for p in r.kkt_points) == \
        sorted(tuple(np.round(p["w"], 9)) for p in ref)


@pytest.mark.parametrize("depth", [2, 3, 10])
def test_fig3b_q_paths_keep_one_support_and_end_at_l1(paths, depth):
    X, y, Xt = tilde("fig3b")
    p = paths["fig3b", depth]
    assert p.kinks == () and set(p.support) == {(0,)}
    assert np.max(p.kkt_residual) <= 1e-9
    assert path_min_nonsupport_margin(Xt, p) >= 1.6
    w1 = flowkit.max_margin(X, y, "l1").w
    dist = np.linalg.norm(p.w[-1] - w1)
    assert dist <= {2: 5e-3, 3: 5e-4, 10: 2e-4}[depth]
    # independent: on a dense grid the single-support {0} KKT point is feasible with the
    # other margins >= 1.6 (so it is the Q_μ point and sample 0 never leaves, nobody enters)
    for mu in np.logspace(3, -4, 141):
        w, others = one_support_q(Xt, mu, depth, 0)
        assert np.min(others) >= 1.6
    np.testing.assert_allclose(one_support_q(Xt, MU_RANGE[1], depth, 0)[0], p.w[-1],
                               rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(one_support_q(Xt, MU_RANGE[0], depth, 0)[0],
                               l2_max_margin(Xt)[0], atol=1e-5)
    # and support enumeration (grid + bisection); its D > 2 KKT check breaks for
    # |w_i/μ| < 1e-16 (h_inv's bracket), hit by candidate supports at large μ, so D > 2
    # is enumerated from μ = 0.2 down
    hi = MU_RANGE[0] if depth == 2 else 0.2
    assert q_path_kinks(Xt, depth, mu_hi=hi, mu_lo=MU_RANGE[1], per_decade=3) == []
    w_end, _, S_end = q_mu_max_margin(Xt, MU_RANGE[1], depth)
    assert S_end == (0,)
    np.testing.assert_allclose(p.w[-1], w_end, rtol=1e-7, atol=1e-10)


def test_fig3b_deeper_paths_get_closer_to_l1(paths):
    # Woodworth et al.: at the same μ, Q^D_μ is a better ℓ1 approximation for larger D
    w1 = flowkit.max_margin(*flowkit.datasets.load("fig3b"), "l1").w
    d = [np.linalg.norm(paths["fig3b", D].w[-1] - w1) for D in (2, 3, 10)]
    assert d[0] > d[1] > d[2]


# ------------------------------------------------------------------ (c)
def test_fig3c_l1_not_unique():
    X, y, Xt = tilde("fig3c")
    l1 = flowkit.max_margin(X, y, "l1")
    assert not l1.unique and l1.face.dimension == 1 and l1.face.complete
    V = np.array(sorted(map(tuple, l1.face.vertices)))
    np.testing.assert_allclose(V, [[0.0, 2.0, 0.0], [0.5, 1.5, 0.0]], rtol=1e-9, atol=1e-12)
    # independent: brute-force face vertices and LP ranges of w over the optimal set
    opt, Vref = l1_face_vertices(Xt)
    assert opt == pytest.approx(2.0, rel=1e-12) == pytest.approx(l1.objective, rel=1e-12)
    np.testing.assert_allclose(Vref, V, rtol=1e-9, atol=1e-12)
    _, lo, hi = l1_ranges(Xt)
    np.testing.assert_allclose(lo, [0.0, 1.5, 0.0], atol=1e-7)
    np.testing.assert_allclose(hi, [0.5, 2.0, 0.0], atol=1e-7)
    for v in V:                                       # both ends optimal and feasible
        assert np.sum(np.abs(v)) == pytest.approx(opt, rel=1e-12)
        assert np.min(Xt @ v) >= 1 - 1e-12
    assert angle_deg(*V) == pytest.approx(18.43, abs=0.01)


def test_fig3c_q_path_keeps_the_l2_support(paths):
    X, y, Xt = tilde("fig3c")
    p = paths["fig3c", 2]
    l2 = flowkit.max_margin(X, y, "l2")
    assert tuple(l2.support) == (0, 1)
    assert p.kinks == () and set(p.support) == {(0, 1)}
    assert np.max(p.kkt_residual) <= 1e-9
    assert path_min_nonsupport_margin(Xt, p) >= 1.6     # sample 2 never comes near
    # independent: ℓ2 by support enumeration, Q_μ supports on a grid + bisection
    assert l2_max_margin(Xt)[1] == (0, 1)
    assert q_path_kinks(Xt, 2, mu_hi=MU_RANGE[0], mu_lo=MU_RANGE[1], per_decade=3) == []
    for mu in (1e3, 1.0, 1e-2, 1e-4):
        w, nu, S = q_mu_max_margin(Xt, mu, 2)
        assert S == (0, 1) and np.min(nu[[0, 1]]) > 0.1 * np.max(nu)
    # the path heads for the face vertex (0.5, 1.5, 0), ~28 degrees from ℓ2
    l1 = flowkit.max_margin(X, y, "l1")
    assert 0.01 < np.sum(np.abs(p.w[-1])) / l1.objective - 1 < 0.03
    assert angle_deg(p.w[-1], [0.5, 1.5, 0]) < 10 < 20 < angle_deg(p.w[-1], [0, 2, 0])
    assert angle_deg(l2.w, p.w[-1]) == pytest.approx(28.26, abs=0.01)


@pytest.mark.parametrize("mu", [0.1, 0.01])
def test_fig3c_flow_follows_the_q_path_and_condition5_holds(mu):
    # Condition 5 is about the flow's own limit, not the Q_mu path: at alpha = 100 the
    # flow stopped at gamma~ = alpha^2/mu keeps support {0, 1} (sample 2 is never a support
    # vector in the window) and ends at the Q_mu point (support enumeration, independent)
    X, y, Xt = tilde("fig3c")
    tr = flowkit.integrate(X, y, depth=2, alpha=100.0, mu=mu)
    c = dg.condition5(tr)
    assert c.holds and c.violations == () and tuple(c.nonsupport) == (2,)
    w_q, _, S_q = q_mu_max_margin(Xt, mu, 2)
    assert S_q == (0, 1)
    assert np.linalg.norm(tr.w_hat[-1] - w_q) < 0.01 * np.linalg.norm(w_q)
    m = Xt @ tr.w_hat[-1]
    np.testing.assert_allclose(m[:2], 1, atol=1e-3)
    assert m[2] > 1.6


def test_fig3c_which_l1_point_depends_on_init(paths):
    # small α: the flow lands near the face vertex (0, 2, 0); the large-α (Q_μ path)
    # limit is the other end (0.5, 1.5, 0) -- the panel's point
    X, y, Xt = tilde("fig3c")
    tr = flowkit.integrate(X, y, depth=2, alpha=0.01, gamma=1e6)
    w = tr.w_hat[-1]
    assert np.sum(np.abs(w)) / 2.0 - 1 < 1e-3                  # on the ℓ1 face, nearly
    assert angle_deg(w, [0, 2, 0]) < 3.0
    assert angle_deg(w, paths["fig3c", 2].w[-1]) > 15.0


# ------------------------------------------------------------------ (d)
def test_fig3d_support_vectors_differ():
    X, y, Xt = tilde("fig3d")
    l2, l1 = flowkit.max_margin(X, y, "l2"), flowkit.max_margin(X, y, "l1")
    assert tuple(l2.support) == (1, 2) and tuple(l1.support) == (2,) and l1.unique
    # independent
    w2, S2 = l2_max_margin(Xt)
    assert S2 == (1, 2)
    value, nu = l1_dual(Xt)
    assert ref_support(nu) == (2,) and value == pytest.approx(l1.objective, rel=1e-10)
    opt, V = l1_face_vertices(Xt)
    assert V.shape == (1, 3)
    np.testing.assert_allclose(V[0], l1.w, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(l1.w, [1 / 0.6, 0, 0], rtol=1e-12, atol=1e-14)
    m2, m1 = Xt @ w2, Xt @ l1.w
    np.testing.assert_allclose(m2[[1, 2]], 1, atol=1e-12)
    np.testing.assert_allclose(m1[2], 1, atol=1e-12)
    assert m2[0] > 1.6 and m1[0] > 1.45 and m1[1] > 1.16
    assert angle_deg(w2, l1.w) == pytest.approx(33.29, abs=0.01)


def test_fig3d_one_kink_where_a_support_vector_leaves(paths):
    X, y, Xt = tilde("fig3d")
    p = paths["fig3d", 2]
    assert len(p.kinks) == 1
    k = p.kinks[0]
    assert 0.01 <= k.mu <= 0.5
    assert k.mu == pytest.approx(MU0_D, rel=1e-9)
    assert k.support_above == (1, 2) and k.support_below == (2,)   # sample 1 leaves
    for mu, S in zip(p.mu, p.support):
        assert S == ((1, 2) if mu > k.mu else (2,))
    # the leaving multiplier goes to 0 at the kink from above
    above = p.mu > k.mu
    nu1 = p.dual[above, 1] / p.dual[above].max(axis=1)
    assert nu1[0] > 0.08 and nu1[-1] < 1e-3 and np.all(np.diff(nu1) <= 1e-12)
    # independent: grid + bisection on the support-enumeration reference, and mpmath
    ref = q_path_kinks(Xt, 2, mu_hi=MU_RANGE[0], mu_lo=MU_RANGE[1], per_decade=3)
    assert len(ref) == 1 and ref[0][1:] == ((1, 2), (2,))
    assert ref[0][0] == pytest.approx(k.mu, rel=1e-8)
    mu_mp = float(q_kink_mp(Xt, 2, (2,), 1, k.mu))
    assert mu_mp == pytest.approx(MU0_D, rel=1e-13)
    assert k.rtol <= 1e-9 and abs(mu_mp - k.mu) <= k.rtol * mu_mp
    assert q_mu_max_margin(Xt, k.mu * 1.01, 2)[2] == (1, 2)
    assert q_mu_max_margin(Xt, k.mu / 1.01, 2)[2] == (2,)


def test_fig3d_condition5_holds_above_the_kink_and_fails_below():
    X, y, Xt = tilde("fig3d")
    # stopped at μ = 3 μ0 > μ0: the flow follows the Q_μ path, support {1, 2}, Condition 5
    # holds, and it ends at the Q_μ point (support enumeration, independent)
    tr = flowkit.integrate(X, y, depth=2, alpha=100.0, mu=3 * MU0_D)
    c = dg.condition5(tr)
    assert c.holds and c.violations == () and tuple(c.nonsupport) == (0,)
    w_q, _, S_q = q_mu_max_margin(Xt, 3 * MU0_D, 2)
    assert S_q == (1, 2)
    assert np.linalg.norm(tr.w_hat[-1] - w_q) < 0.01 * np.linalg.norm(w_q)
    # stopped at μ = μ0/5 < μ0: sample 1 is an ℓ2 support vector early on, not one at the
    # limit, so Condition 5 fails with sample 1 as the (only) witness
    tr2 = flowkit.integrate(X, y, depth=2, alpha=100.0, mu=MU0_D / 5)
    c2 = dg.condition5(tr2)
    assert not c2.holds and 1 in c2.nonsupport
    assert [v[0] for v in c2.violations] == [1] and c2.violations[0][2] < c2.rho0
    # independent: sample 1's normalised margin from w is ~1 in the window, but the Q_μ
    # limit (support enumeration) keeps it at >= 1.04
    ok = (tr2.margin > 0) & (tr2.gamma >= c2.window[0])
    r = (tr2.w[ok] @ Xt.T) / np.min(tr2.w[ok] @ Xt.T, axis=1, keepdims=True)
    assert np.min(r[:, 1]) < 1 + 1e-3
    w_lim, _, S_lim = q_mu_max_margin(Xt, MU0_D / 5, 2)
    assert S_lim == (2,) and Xt[1] @ w_lim > 1.04
