"""The structured linear algebra (flowkit/structured.py) against the dense Jacobian and dense
LU, and the structured integration path against the dense one."""
import math
import resource

import numpy as np
import pytest

import flowkit
import flowkit.structured as S
from flowkit.flow import Flow
from flowkit.integrator import save_grid
from flowkit.linalg import StructuredLU
from flowkit.problem import Problem
from flowkit.select import select
from flowkit.trajectory import Trajectory

OPS = StructuredLU()


def _problem(N, d, D, alpha=1.0, seed=0):
    X, y = flowkit.datasets.planted_sparse(N, d, 3, seed)
    return Problem.build(X, y, D, alpha)


def _states(rng, N, d):
    """A random state in each of the three state layouts (flow.py: modes 0, 1, 2)."""
    y = rng.uniform(-0.5, 0.8, d)
    xi = rng.uniform(-1.0, 3.0, N)
    return {0: np.append(y, 0.2), 1: np.concatenate([y, xi, [0.2]]), 2: np.concatenate([y, xi])}


CASES = [(D, math.log(g), mode) for D in (2, 3) for g, modes in ((0.4, (0, 1)), (3e3, (1, 2)))
         for mode in modes]


@pytest.mark.parametrize("D, sigma, mode", CASES)
def test_structured_jacobian_applies_like_the_dense_one(D, sigma, mode):
    P = _problem(12, 70, D, alpha=1.3)
    flow = Flow(P, linalg="structured")
    z = _states(np.random.default_rng(D), 12, 70)[mode]
    J = flow.jac_structured(sigma, z) if mode == 0 else flow.jac_xi_structured(sigma, z)
    Jd = flow.jac(sigma, z) if mode == 0 else flow.jac_xi(sigma, z)
    assert J.shape == Jd.shape
    np.testing.assert_array_equal(J.dense(), Jd)  # one source: the dense path assembles these factors
    X = np.random.default_rng(1).standard_normal((z.size, 3))
    for x in X.T:
        Jx = Jd @ x
        assert np.max(np.abs(J.matvec(x) - Jx)) <= 1e-13 * np.max(np.abs(Jx))


@pytest.mark.parametrize("D, sigma, mode", CASES)
def test_structured_solve_equals_dense_lu(D, sigma, mode):
    """(mu I - J)^{-1} and (I - c J)^{-1} (Radau's and BDF's matrices) for real and complex
    shifts: exact, and with the shift series at its default truncation."""
    P = _problem(12, 70, D, alpha=1.3)
    flow = Flow(P, linalg="structured")
    rng = np.random.default_rng(10 + D)
    z = _states(rng, 12, 70)[mode]
    J = flow.jac_structured(sigma, z) if mode == 0 else flow.jac_xi_structured(sigma, z)
    Jd = J.dense()
    n = z.size
    for mu in (3.7, 0.9 - 2.1j, 250.0, 4e3 + 1.2e3j):
        r = rng.standard_normal(n) + (1j * rng.standard_normal(n) if isinstance(mu, complex) else 0)
        A = mu * np.eye(n) - Jd
        x_ref = np.linalg.solve(A, r)
        for exact in (True, False):
            J.exact = exact
            x = OPS.solve(OPS.factor(J, mu), r)
            # exact: rounding only; series: Newton-matrix accuracy SHIFT_RTOL (backward error)
            if exact:
                assert np.max(np.abs(x - x_ref)) <= 1e-11 * np.max(np.abs(x_ref))
            else:
                assert np.linalg.norm(A @ x - r) <= 10 * S.SHIFT_RTOL * np.linalg.norm(A, 2) * np.linalg.norm(x)
    J.exact = True
    c = 0.07
    r = rng.standard_normal(n)
    x = OPS.solve(OPS.factor(J, 1.0, c), r)  # BDF's I - c J
    np.testing.assert_allclose(x, np.linalg.solve(np.eye(n) - c * Jd, r), rtol=0, atol=1e-12 * np.max(np.abs(x)))


def _run(P, linalg, gamma, ppd=4, method="Radau", rtol=1e-10):
    flow = Flow(P, linalg=linalg, method=method, rtol=rtol)
    grid = save_grid(gamma, ppd)
    states, stats = flow.advance(flow.sigma0, flow.z0, [math.log(g) for g in grid])
    return Trajectory.from_states(flow, grid, states, stats, "test")


@pytest.mark.parametrize("D", [2, 3])
def test_structured_trajectory_equals_dense(D):
    """Through all three state layouts (gamma~ = 1e-14 .. 2e5, past XI_SWITCH and TIME_SWITCH).
    Measured: 1e-14 (w_hat) and 1e-13 (log t) apart."""
    P = _problem(6, 40, D, alpha=2.0, seed=D)
    dense, struct = _run(P, "dense", 2e5), _run(P, "structured", 2e5)
    assert struct.flow.linalg == "structured" and dense.flow.linalg == "dense"
    assert np.max(np.abs(struct.w_hat - dense.w_hat)) <= 1e-9 * np.max(np.abs(dense.w_hat))
    np.testing.assert_allclose(struct.log_time, dense.log_time, rtol=1e-9, atol=0)
    inv = struct.stats["invariants"]
    assert inv["gamma_consistency"] < 1e-11 and inv["lemma3_slack"] >= 0


def test_auto_choice_and_bdf():
    """The selection's primal choice is the structured path for d >> N (with an atol on y,
    integrate() keeps the primal state; without, it goes to the dual form: test_dual.py);
    BDF runs on it too.  Flow itself takes only a resolved linalg."""
    X, y = flowkit.datasets.planted_sparse(6, 240, 2, 5)
    P = Problem.build(X, y, 2, 1.0)
    assert select(P, gamma=20.0, atol=1e-12)[1] == "structured"
    tr = _run(P, "structured", 20.0, ppd=2)
    assert tr.flow.linalg == "structured"
    assert tr.stats["invariants"]["gamma_consistency"] < 1e-11
    bdf = _run(tr.flow.problem, "structured", 20.0, ppd=2, method="BDF", rtol=1e-9)
    assert np.max(np.abs(bdf.w_hat[-1] - tr.w_hat[-1])) <= 1e-6 * np.max(np.abs(tr.w_hat[-1]))
    with pytest.raises(flowkit.ParameterError):
        Flow(tr.flow.problem, linalg="structured", method="LSODA")
    for bad in ("sparse", "auto"):
        with pytest.raises(flowkit.ParameterError):
            Flow(tr.flow.problem, linalg=bad)


def test_no_d_squared_memory():
    """d = 25,000: one d x d float64 array would be 5 GB.  A short run (initial-state
    bisection, Jacobians, factorisations, Trajectory) must stay far below (the process's
    peak RSS, which only grows)."""
    X, y = flowkit.datasets.planted_sparse(3, 25_000, 2, 7)
    P = Problem.build(X, y, 3, 1.0)
    tr = _run(P, select(P, gamma=1e-10, atol=1e-12)[1], 1e-10, ppd=1)
    assert tr.flow.linalg == "structured" and tr.gamma[-1] == 1e-10 and tr.stats["njev"] >= 1
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert peak_mb < 3000


# ---------------------------------------------------------------- data generator, Problem.build for d >> N

def test_planted_sparse():
    X, y, w = flowkit.datasets.planted_sparse(40, 500, 7, 3, margin=0.4, return_w=True)
    assert X.shape == (40, 500) and y.shape == (40,) and set(np.unique(y)) <= {-1.0, 1.0}
    assert np.count_nonzero(w) == 7 and np.linalg.norm(w) == pytest.approx(1.0)
    assert np.min(y * (X @ w)) >= 0.4 - 1e-12            # separable with the promised margin
    X2, y2 = flowkit.datasets.planted_sparse(40, 500, 7, 3, margin=0.4)
    np.testing.assert_array_equal(X, X2)                 # seeded
    assert not np.array_equal(X, flowkit.datasets.planted_sparse(40, 500, 7, 4, margin=0.4)[0])
    Xb, yb, wb = flowkit.datasets.planted_sparse(20, 5, 5, 0, margin=25.0, return_w=True)
    assert np.min(yb * (Xb @ wb)) >= 25.0 - 1e-9         # far tail, no rejection loop
    for bad in (dict(n_samples=0), dict(n_features=2.5), dict(k=0), dict(k=11), dict(seed=-1),
                dict(margin=0.0), dict(margin=float("nan")), dict(margin=True), dict(seed="a")):
        kw = dict(n_samples=3, n_features=10, k=2)
        kw.update(bad)
        with pytest.raises(flowkit.ParameterError):
            flowkit.datasets.planted_sparse(**kw)
    assert issubclass(flowkit.ParameterError, ValueError)


def test_build_fast_paths_for_d_much_larger_than_n():
    """The separability certificate and the l2 margin from the N-dimensional dual agree with
    the LP and the primal NNLS they replace for d >> N."""
    import flowkit.problem as Pm
    X, y = flowkit.datasets.planted_sparse(30, 400, 5, 2)
    Xt = y[:, None] * X
    lower = Pm._separability_certificate(Xt)
    assert lower is not None and 0 < lower <= Pm.separability_margin(Xt) + 1e-9
    w_dual, g_dual = Pm.l2_max_margin_direction(Xt)       # d >= 4(N+1): the dual path
    s = np.max(np.abs(Xt))
    E = np.vstack([(Xt / s).T, np.ones((1, 30))])
    f = np.zeros(401)
    f[-1] = 1.0
    u, _ = Pm.nnls(E, f, maxiter=50 * 431)
    r = E @ u - f
    w_primal = -r[:400] / r[400] / s
    assert g_dual == pytest.approx(1.0 / np.linalg.norm(w_primal), rel=1e-10)
    np.testing.assert_allclose(w_dual, w_primal, atol=1e-9 * np.max(np.abs(w_primal)))
    with pytest.raises(flowkit.NotSeparableError):       # N > d, not separable: the LP decides
        Problem.build(np.ones((6, 2)), np.array([1, -1, 1, -1, 1, -1.0]), 2, 1.0)
