"""The dual form (flowkit/dual.py): the flow in N unknowns for d >> N.

Checked against the primal engine (flow.py, d unknowns) state by state and along whole
trajectories, against the independent reference integrator (tests/_reference_flow.py),
and its Jacobian against finite differences."""
import math

import numpy as np
import pytest

import flowkit
from flowkit.dual import DualFlow
from flowkit.select import dual_pays
from flowkit.flow import Flow
from flowkit.integrator import save_grid
from flowkit.problem import Problem
from flowkit.store import open_store
from flowkit.trajectory import Trajectory

from _reference_flow import reference_w


def _problem(N, d, D, alpha=1.0, seed=3):
    X, y = flowkit.datasets.planted_sparse(N, d, 3, seed)
    return Problem.build(X, y, D, alpha)


def _run(flow, gamma, ppd=4):
    grid = save_grid(gamma, ppd)
    states, stats = flow.advance(flow.sigma0, flow.z0, [math.log(g) for g in grid])
    return Trajectory.from_states(flow, grid, states, stats, "test")


@pytest.mark.parametrize("D", [2, 3, 5])
def test_rhs_matches_primal(D):
    """At states of a primal run: the xi and omega rows are the primal ones, and zeta's
    rate maps to the primal dy/dsigma (D = 2: y = Xtᵀ zeta, exactly linear; D > 2 through
    y(zeta, sigma), by central differences)."""
    P = _problem(8, 60, D, alpha=0.7, seed=2)
    d, N = P.n_features, P.n_samples
    primal, dual = Flow(P, linalg="dense"), DualFlow(P)
    sigmas = [math.log(g) for g in (0.5, 50.0, 2e4)]
    states, _ = primal.advance(primal.sigma0, primal.z0, sigmas)
    for k, s in enumerate(sigmas):
        y, omega, xi = states[k, :d], states[k, d], states[k, d + 1:]
        zeta = dual._import(s, y)
        # D > 2 goes through 1 - |t| (flowkit.dual, "Precision"): measured 1.5e-13 at D = 5
        assert np.max(np.abs(dual._export(s, zeta) - y)) <= (1e-13 if D == 2 else 1e-11) * np.max(np.abs(y))
        f = dual.fun_xi(s, np.concatenate([zeta, xi, [omega]]))
        fp = primal.fun_xi(s, np.concatenate([y, xi, [omega]]))
        assert np.max(np.abs(f[N:2 * N] - fp[d:d + N])) <= 1e-11 * max(1.0, np.max(np.abs(fp[d:d + N])))
        assert abs(f[-1] - fp[-1]) <= 1e-11 * max(1.0, abs(fp[-1]))
        if D == 2:
            dy = P.Xt.T @ f[:N]
            tol = 1e-12
        else:
            def cd(h):
                return (dual._export(s + h, zeta + h * f[:N]) - dual._export(s - h, zeta - h * f[:N])) / (2 * h)
            dy = (4 * cd(5e-5) - cd(1e-4)) / 3      # Richardson: O(h^4)
            tol = 1e-7
        assert np.max(np.abs(dy - fp[:d])) <= tol * np.max(np.abs(fp[:d]))


@pytest.mark.parametrize("D,gamma", [(2, 0.5), (2, 2e4), (3, 50.0), (5, 2e4)])
def test_jacobian_finite_differences(D, gamma, monkeypatch):
    """The analytic Jacobian (Gram matrices in float64) against central differences; the
    omega row carries only its diagonal (flow.py's convention).  The default float32 Gram
    matrices stay within 1e-2 of the largest entry (they only steer Newton)."""
    P = _problem(6, 40, D, alpha=1.3, seed=D)
    N = P.n_samples
    dual = DualFlow(P)
    s = math.log(gamma)
    st, _ = Flow(P, linalg="dense").advance(Flow(P, linalg="dense").sigma0, Flow(P, linalg="dense").z0, [s])
    z = np.concatenate([dual._import(s, st[0, :P.n_features]), st[0, P.n_features + 1:], [st[0, P.n_features]]])
    J32 = dual.jac_xi(s, z)
    monkeypatch.setattr(DualFlow, "gram_dtype", np.float64)
    J = dual.jac_xi(s, z)
    fd = np.empty_like(J)
    for j in range(z.size):
        h = 1e-7 * max(1.0, abs(z[j]))
        e = np.zeros(z.size)
        e[j] = h
        fd[:, j] = (dual.fun_xi(s, z + e) - dual.fun_xi(s, z - e)) / (2 * h)
    fd[-1, :-1] = 0.0
    scale = np.max(np.abs(J))
    assert np.max(np.abs(J - fd)) <= 1e-6 * scale
    assert np.max(np.abs(J32 - J)) <= 1e-2 * scale
    assert J.shape == (2 * N + 1, 2 * N + 1)


@pytest.mark.parametrize("D", [2, 3])
def test_trajectory_equals_primal(D):
    """Through both state layouts (gamma~ = 1e-14 .. 2e5): the dual run and the dense primal
    run agree in every field.  Measured: ~1e-12 (w_hat), ~1e-12 (log t)."""
    P = _problem(8, 200, D, alpha=1.5, seed=D)
    primal, dual = _run(Flow(P, linalg="dense"), 2e5), _run(DualFlow(P), 2e5)
    assert dual.stats["linalg"] == "dual" and primal.stats["linalg"] == "dense"
    scale = np.max(np.abs(primal.w_hat), axis=1, keepdims=True)
    assert np.max(np.abs(dual.w_hat - primal.w_hat) / scale) <= 1e-9
    assert np.max(np.abs(dual.log_time - primal.log_time)) <= 1e-9
    assert np.max(np.abs(dual.margin / primal.margin - 1)) <= 1e-9
    inv = dual.stats["invariants"]
    assert inv["gamma_consistency"] < 1e-11 and inv["lemma3_slack"] >= 0


@pytest.mark.parametrize("D,alpha,gamma", [(2, 1.0, 300.0), (3, 0.5, 50.0)])
def test_against_reference_integrator(D, alpha, gamma):
    """integrate() on d >> N data takes the dual form; its end point matches the reference
    integrator (written independently, tests/_reference_flow.py)."""
    X, y = flowkit.datasets.planted_sparse(5, 120, 2, 11)
    tr = flowkit.integrate(X, y, depth=D, alpha=alpha, gamma=gamma, points_per_decade=2)
    assert tr.flow.linalg == "dual"
    w_ref = reference_w(y[:, None] * X, D, alpha, gamma)
    assert np.max(np.abs(tr.w[-1] - w_ref)) <= 1e-8 * np.max(np.abs(w_ref))


def test_at_and_store_roundtrip(tmp_path):
    """A dual run stores and loads like any run, and at() on the loaded one re-integrates in
    the dual form with the run's own tolerances."""
    X, y = flowkit.datasets.planted_sparse(6, 150, 2, 4)
    tr = flowkit.integrate(X, y, depth=2, alpha=1.0, gamma=1e3, points_per_decade=2)
    assert tr.flow.linalg == "dual"
    mid = math.sqrt(tr.gamma[-2] * tr.gamma[-1])
    direct = tr.at(mid)
    settings = dict(depth=2, alpha=1.0, stopping={"gamma": 1e3}, points_per_decade=2)
    with open_store(tmp_path / "s.h5", mode="a") as store:
        rid = store.write(tr, X=X, y=y, dataset="planted", settings=settings)
        back = store.load(rid)
    assert back.flow.linalg == "dual" and np.array_equal(back.w_hat, tr.w_hat)
    again = back.at(mid)
    assert np.max(np.abs(again.w_hat - direct.w_hat)) <= 1e-12 * np.max(np.abs(direct.w_hat))


def test_dual_pays_and_fallbacks():
    P2 = _problem(6, 300, 2)
    assert dual_pays(P2, 1e6, 1e-10)
    assert not dual_pays(_problem(6, 20, 2), 1e6, 1e-10)            # d not >> N
    assert not dual_pays(_problem(5, 40, 2), 1e6, 1e-10)            # too small to pay
    assert not dual_pays(P2, 1e6, "1e-10")                           # Flow reports bad rtol
    assert not dual_pays(P2, 1e6, 1e-10, "LSODA")                    # only Radau is validated
    # D = 10: w's relative error (D/a) eps (w/alpha^D)^{a/D} passes rtol/10 at R ~ 1e6
    P10 = _problem(6, 300, 10)
    assert dual_pays(P10, 1e3, 1e-10) and not dual_pays(P10, 1e8, 1e-10)
    X, y = flowkit.datasets.planted_sparse(6, 300, 2, 3)
    # a user's atol (scalar or vector) is over the primal state: integrate keeps that state
    for atol in (np.full(301, 1e-12), 1e-12):
        tr = flowkit.integrate(X, y, depth=2, alpha=1.0, gamma=10.0, points_per_decade=1, atol=atol)
        assert tr.flow.linalg == "structured"
    with pytest.raises(flowkit.ParameterError):
        DualFlow(P2, atol=np.full(301, 1e-12))
    with pytest.raises(flowkit.ParameterError):
        DualFlow(P2, atol=-1.0)


def test_domain_guard():
    """D > 2: a trial state with |t| >= 1 (outside the map zeta -> w) gives a NaN
    right-hand side and Jacobian, which make the solver shrink its step."""
    P = _problem(6, 60, 3)
    dual = DualFlow(P)
    N = P.n_samples
    z = np.concatenate([np.full(N, 1e6), np.zeros(N), [0.0]])
    assert np.all(np.isnan(dual.fun_xi(math.log(10.0), z)))
    assert np.all(np.isnan(dual.jac_xi(math.log(10.0), z)))


def test_far_trial_state_d2():
    """D = 2: a trial state so far out that e^{-|u|} underflows to 0 and e^{|u|} overflows
    (Newton's excursion; it raised ZeroDivisionError in the pass) gives a NaN right-hand side."""
    P = _problem(6, 60, 2)
    dual = DualFlow(P)
    N = P.n_samples
    z = np.concatenate([np.full(N, 1e4), np.zeros(N), [0.0]])
    assert np.all(np.isnan(dual.fun_xi(math.log(10.0), z)))


@pytest.mark.parametrize("mu", [3.7, 2.1 + 1.3j, 4e3])
def test_block_lu_equals_dense_solve(mu):
    """The dual block elimination (Sherman-Morrison on zeta, Schur complement on xi)
    solves (mu I - J) x = b like LAPACK on the whole matrix."""
    from flowkit.dual import DualBlockLU, _BlockLU
    from flowkit.linalg import DenseLU
    P = _problem(7, 120, 3, seed=5)
    dual = DualFlow(P)
    s = math.log(300.0)
    st, _ = dual.advance(dual.sigma0, dual.z0, [s])
    z = np.concatenate([dual._import(s, st[0, :P.n_features]), st[0, P.n_features + 1:], [st[0, P.n_features]]])
    J = dual.jac_xi(s, z)
    A = mu * np.eye(J.shape[0]) - J
    b = np.random.default_rng(0).standard_normal(J.shape[0]) * (1 + 0.5j if isinstance(mu, complex) else 1)
    x = _BlockLU(A.copy(), dual._jac_parts[1:]).solve(b)
    assert np.max(np.abs(A @ x - b)) <= 1e-12 * np.max(np.abs(b)) * np.linalg.cond(A)
    assert np.allclose(x, np.linalg.solve(A, b), rtol=1e-10, atol=1e-13 * np.max(np.abs(x)))
    # as the solver's operator: the block path for the newest Jacobian only (its factors are
    # those of that very matrix), the fallback for any other, same solution either way
    ops = DualBlockLU(lambda: dual._jac_parts, DenseLU())
    F = ops.factor(J, mu)
    assert isinstance(F, _BlockLU)
    older = J.copy()
    G = ops.factor(older, mu)
    assert not isinstance(G, _BlockLU)
    np.testing.assert_allclose(ops.solve(F, b.copy()), ops.solve(G, b.copy()), rtol=1e-10,
                               atol=1e-13 * np.max(np.abs(x)))


@pytest.mark.parametrize("D,d", [(2, 61), (3, 60), (5, 7)])
def test_three_stage_pass_equals_single(D, d):
    """The fused three-stage pass (two features per iteration, odd d included) gives what
    three single passes give."""
    from flowkit._kernels.dual import dual_pass
    rng = np.random.default_rng(d)
    N = 9
    XtT = rng.standard_normal((d, N))
    Z = rng.standard_normal((3, N)) * 0.05
    P = rng.dirichlet(np.ones(N), size=3)
    phi = np.array([0.3, 0.5, 0.7])
    E1, E2g, a1 = np.empty(d), np.empty(d), np.empty(N)
    V, St, B = np.empty((3, N)), np.empty(3), np.empty(3)
    assert dual_pass(XtT, Z, P, phi, float(D), False, E1, E2g, a1, V, St, B)
    for k in range(3):
        v, st, b = np.empty((1, N)), np.empty(1), np.empty(1)
        assert dual_pass(XtT, Z[k:k + 1], P[k:k + 1], phi[k:k + 1], float(D), False, E1, E2g, a1, v, st, b)
        assert np.allclose(V[k], v[0], rtol=1e-13, atol=1e-15 * np.max(np.abs(v)))
        assert st[0] == pytest.approx(St[k], rel=1e-13) and b[0] == pytest.approx(B[k], rel=1e-12, abs=1e-300)


def test_pickle_scale_and_failure(tmp_path):
    """A DualFlow pickles without its data caches and works after loading; a run that fails
    leaves its flow picklable; data of scale 1e20 (float32 Gram matrices of Xt / max|Xt|)
    integrate as the primal path does."""
    import pickle
    X, y = flowkit.datasets.planted_sparse(6, 150, 2, 4)
    tr = flowkit.integrate(X, y, depth=2, alpha=1.0, gamma=1e2, points_per_decade=2)
    blob = pickle.dumps(tr)
    assert len(blob) < 2 * len(pickle.dumps(X)) + 200_000
    back = pickle.loads(blob)
    mid = math.sqrt(tr.gamma[-2] * tr.gamma[-1])
    assert np.max(np.abs(back.at(mid).w_hat - tr.at(mid).w_hat)) <= 1e-13 * np.max(np.abs(tr.w_hat))
    P1 = Problem.build(X, y, 2, 1.0)
    _, st = DualFlow(P1).advance(DualFlow(P1).sigma0, DualFlow(P1).z0, [math.log(1e-3)])
    flow = DualFlow(P1, max_steps=st["steps"] + 3)   # fails after its first save point
    with pytest.raises(flowkit.IntegrationError):
        flow.advance(flow.sigma0, flow.z0, [math.log(1e-3), math.log(1e3)])
    pickle.dumps(flow)
    big = flowkit.integrate(X * 1e20, y, depth=2, alpha=1.0, gamma=1e2, points_per_decade=2)
    assert big.flow.linalg == "dual"
    P = Problem.build(X * 1e20, y, 2, 1.0)
    ref = _run(Flow(P, linalg="dense"), 1e2, ppd=2)
    assert np.max(np.abs(big.w_hat[-1] - ref.w_hat[-1])) <= 1e-9 * np.max(np.abs(ref.w_hat[-1]))


@pytest.mark.parametrize("D", [2, 3])
def test_threaded_pass_and_grams_equal_serial(D, monkeypatch):
    """Split between threads by features (flowkit.dual.THREADS), the stage right-hand sides
    and the Jacobian are the serial ones up to summation order; a block of all-zero
    features (S~ = 0 on that block alone) does not count as a domain failure."""
    import flowkit.dual as dual_mod
    P = _problem(8, 90, D, alpha=0.7, seed=4)
    Xz = np.concatenate([P.X, np.zeros((P.n_samples, 90))], axis=1)   # the second chunk is all zero
    P = Problem.build(Xz, P.y, D, 0.7)
    serial = DualFlow(P)
    monkeypatch.setattr(dual_mod, "THREADS", 2)
    monkeypatch.setattr(dual_mod, "_MIN_PER_THREAD", 1)
    split = DualFlow(P)
    assert len(serial._chunks) == 1 and split._chunks == [(0, 90), (90, 180)]
    N = P.n_samples
    rng = np.random.default_rng(0)
    s0, d = math.log(30.0), P.n_features
    state = serial.advance(serial.sigma0, serial.z0, [s0])[0][0]
    zeta = serial._import(s0, state[:d])
    Z = np.stack([np.concatenate([zeta * (1 + 0.01 * k), state[d + 1:] + 0.1 * rng.standard_normal(N),
                                  [state[d]]]) for k in range(3)])
    sig = s0 + np.array([0.0, 0.01, 0.02])
    Fs, Ft = serial.fun_stages(sig, Z), split.fun_stages(sig, Z)
    assert np.all(np.isfinite(Fs))
    assert np.allclose(Ft, Fs, rtol=1e-12, atol=1e-14 * np.max(np.abs(Fs)))
    Js, Jt = serial.jac_xi(sig[0], Z[0]), split.jac_xi(sig[0], Z[0])
    assert np.allclose(Jt, Js, rtol=1e-5, atol=1e-6 * np.max(np.abs(Js)))   # float32 Gram matrices
    # the split is a cache, like the data copies: rebuilt on unpickling, as THREADS now says
    import pickle
    blob = pickle.dumps(split)
    monkeypatch.setattr(dual_mod, "THREADS", 1)
    assert pickle.loads(blob)._chunks == [(0, P.n_features)]
    monkeypatch.setattr(dual_mod, "THREADS", 3)   # a changed THREADS gets a pool of its size
    assert dual_mod._pool()._max_workers == 3
    monkeypatch.setattr(dual_mod, "THREADS", 2)
    # and a whole run agrees
    a, b = _run(serial, 1e3), _run(split, 1e3)
    assert np.max(np.abs(a.w_hat - b.w_hat)) <= 1e-10


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")   # Python >= 3.12: fork with threads
def test_thread_pool_survives_fork(monkeypatch):
    """A forked process (a sweep worker) gets its own pool: the parent's threads are gone."""
    import multiprocessing as mp
    import flowkit.dual as dual_mod
    monkeypatch.setattr(dual_mod, "THREADS", 2)
    monkeypatch.setattr(dual_mod, "_MIN_PER_THREAD", 1)
    P = _problem(6, 60, 2)
    parent = _run(DualFlow(P), 10.0).w_hat          # the pool now exists in this process
    with mp.get_context("fork").Pool(1) as pool:
        child = pool.apply_async(_run_w_hat, (P,)).get(timeout=30)
    assert np.array_equal(parent, child)


def _run_w_hat(P):
    return _run(DualFlow(P), 10.0).w_hat


def test_not_chosen_for_duplicated_samples():
    """Copies of a sample leave the dual state a direction nothing restores (it stalled at
    gamma~ = 3.6e13 on this data); the selection keeps such data on the primal path, which
    shares one offset per group of copies, and that runs to 1e20."""
    X, y = flowkit.datasets.planted_sparse(8, 200, 3, 1)
    P = Problem.build(X, y, 2, 1.0)
    assert dual_pays(P, 1e20, 1e-10)
    Xd, yd = np.vstack([X, X[[1, 3, 3]]]), np.concatenate([y, y[[1, 3, 3]]])
    assert not dual_pays(Problem.build(Xd, yd, 2, 1.0), 1e20, 1e-10)
    tr = flowkit.integrate(Xd, yd, depth=2, alpha=1.0, gamma=1e20)
    assert tr.stats["linalg"] == "structured" and tr.stats["invariants"]["gamma_consistency"] < 1e-10
