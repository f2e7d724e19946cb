"""Engine selection (flowkit/select.py) and the Radau step flowkit forks from scipy."""
import numpy as np
import pytest
from scipy.integrate import BDF, Radau

import flowkit
from flowkit.bdf import OperatorBDF
from flowkit.exceptions import IntegrationError, ParameterError
from flowkit.problem import Problem
from flowkit.radau import ThetaRadau
from flowkit.select import replay, select


def _data(N, d, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, d))
    return X, np.sign(X @ rng.standard_normal(d))


def test_choice_by_shape_method_and_atol():
    small, wide, wider = (Problem.build(*_data(N, d), 2, 1.0) for N, d in ((6, 4), (20, 300), (10, 300)))
    assert select(small, gamma=1e4)[1] == "dense"
    assert select(wider, gamma=1e4)[1] == "dual"                     # d >> N, Radau, no atol
    assert select(wider, gamma=1e4, atol=1e-12)[1] == "structured"   # atol is on y: primal
    assert select(wider, gamma=1e4, method="BDF")[1] == "structured"
    assert select(wider, gamma=1e4, method="LSODA")[1] == "dense"
    assert select(wide, gamma=1e4, linalg="dense")[1] == "dense"
    assert select(wider, gamma=1e4, model="linearized")[1] == "dense"  # its own Jacobian
    for bad in ({"linalg": "lu"}, {"linalg": "structured", "method": "LSODA"},
                {"linalg": "dual", "method": "BDF"}, {"linalg": "dual", "atol": 1e-9},
                {"model": "linearized", "linalg": "structured"}):
        with pytest.raises(ParameterError):
            select(wide, gamma=1e4, **bad)


@pytest.mark.parametrize("linalg", ["dense", "structured", "dual"])
def test_integrate_linalg_gives_the_same_flow(linalg):
    X, y = _data(10, 60, 3)
    ref = flowkit.integrate(X, y, depth=2, alpha=1.0, gamma=1e3, linalg="dense", rtol=1e-12)
    tr = flowkit.integrate(X, y, depth=2, alpha=1.0, gamma=1e3, linalg=linalg)
    assert tr.stats["linalg"] == linalg
    assert np.max(np.abs(tr.w_hat[-1] - ref.w_hat[-1])) <= 1e-9 * np.max(np.abs(ref.w_hat[-1]))


def test_linearized_wide_data_runs_its_own_jacobian():
    """d >> N: the linearised model used to run on the network's structured Jacobian (the
    wrong model's): 144,609 right-hand sides on these data, 6,156 with its own."""
    X, y = _data(6, 200, 1)
    tr = flowkit.integrate(X, y, depth=2, alpha=1.0, gamma=1e4, model="linearized")
    assert tr.stats["linalg"] == "dense"
    assert tr.stats["nfev"] < 20_000


def test_max_steps_and_replay(tmp_path):
    X, y = _data(10, 60, 3)
    with pytest.raises(IntegrationError, match="more than 5 steps"):
        flowkit.integrate(X, y, depth=2, alpha=1.0, gamma=1e3, max_steps=5)
    for bad in (0, 2.5, True):
        with pytest.raises(ParameterError):
            flowkit.integrate(X, y, depth=2, alpha=1.0, gamma=1e3, max_steps=bad)
    tr = flowkit.integrate(X, y, depth=2, alpha=1.0, gamma=1e3, linalg="dense")
    assert replay(tr.stats)[1] == "dense"
    # a structured-eligible problem run dense: the store replays "dense", not its own "auto"
    X2, y2 = _data(20, 300, 2)
    tr = flowkit.integrate(X2, y2, depth=2, alpha=1.0, gamma=1e2, linalg="dense", atol=1e-13)
    from flowkit.store import open_store
    with open_store(tmp_path / "one.h5", mode="a") as store:
        rid = store.write(tr, X=X2, y=y2, dataset="wide", settings={
            "depth": 2, "alpha": 1.0, "stopping": {"gamma": 1e2}, "atol": 1e-13})
        store.commit()
    back = open_store(tmp_path / "one.h5").load(rid)
    assert back.stats["linalg"] == "dense" and back.flow.linalg == "dense"
    np.testing.assert_allclose(back.at([50.0]).w[0], tr.at([50.0]).w[0], rtol=1e-12)


def _robertson(t, y):
    return np.array([-0.04 * y[0] + 1e4 * y[1] * y[2],
                     0.04 * y[0] - 1e4 * y[1] * y[2] - 3e7 * y[1] ** 2,
                     3e7 * y[1] ** 2])


def _robertson_jac(t, y):
    return np.array([[-0.04, 1e4 * y[2], 1e4 * y[1]],
                     [0.04, -1e4 * y[2] - 6e7 * y[1], -1e4 * y[1]],
                     [0.0, 6e7 * y[1], 0.0]])


@pytest.mark.parametrize("jac", [_robertson_jac, None])
@pytest.mark.parametrize("scipy_cls, fork", [(Radau, ThetaRadau), (BDF, OperatorBDF)],
                         ids=["Radau", "BDF"])
def test_forks_equal_scipy_step_for_step(scipy_cls, fork, jac):
    """flowkit's Radau (at the default jac_theta, scipy's 1e-3) and BDF, their linear algebra
    an operator (flowkit.linalg), are scipy's, step for step, on Robertson's stiff problem;
    this pins the scipy versions the forks follow."""
    args = (_robertson, 0.0, np.array([1.0, 0.0, 0.0]), 1e5)
    opts = {"rtol": 1e-8, "atol": [1e-10, 1e-14, 1e-10], "jac": jac}
    a, b = scipy_cls(*args, **opts), fork(*args, **opts)
    steps = 0
    while a.status == "running":
        a.step()
        b.step()
        steps += 1
        assert b.t == a.t
        np.testing.assert_array_equal(b.y, a.y)
    assert b.status == a.status == "finished"
    assert (b.nfev, b.njev, b.nlu) == (a.nfev, a.njev, a.nlu)
    assert steps > 50


def test_solvers_use_only_the_operator():
    """The forks factor and solve through ``linalg`` alone: an operator that counts its calls
    sees every factorisation the solver reports, and scipy's own ``lu``/``solve_lu``/``I``
    are gone (nothing can bypass the operator)."""
    from flowkit.linalg import DenseLU

    class Counting(DenseLU):
        factors = solves = 0

        def factor(self, J, mu, c=1.0):
            Counting.factors += 1
            return super().factor(J, mu, c)

        def solve(self, F, b):
            Counting.solves += 1
            return super().solve(F, b)

    for cls in (ThetaRadau, OperatorBDF):
        Counting.factors = Counting.solves = 0
        s = cls(_robertson, 0.0, np.array([1.0, 0.0, 0.0]), 1e3, rtol=1e-6, atol=1e-10,
                jac=_robertson_jac, linalg=Counting())
        while s.status == "running":
            s.step()
        assert s.lu is None and s.solve_lu is None and s.I is None
        assert Counting.factors == s.nlu > 10 and Counting.solves > s.nlu


def test_three_systems_one_driver():
    """Primal, dual and linearised are three systems on one driver (flowkit.system): none
    inherits another's equations, and each one's Jacobian has its own state's size."""
    import math

    from flowkit.dual import DualFlow
    from flowkit.flow import Flow
    from flowkit.linearized import LinearizedFlow
    from flowkit.system import System

    P = Problem.build(*_data(5, 40, 2), 2, 1.0)
    sigma = math.log(50.0)
    for cls, n in ((Flow, 40 + 5 + 1), (DualFlow, 5 + 5 + 1), (LinearizedFlow, 40 + 5 + 1)):
        assert issubclass(cls, System)
        assert not any(other in cls.__mro__ for other in (Flow, DualFlow, LinearizedFlow) if other is not cls)
        system = cls(P)
        _, fun, jac, _ = system._solver(1)
        states, _ = system.advance(system.sigma0, system.z0, [sigma])
        y, omega, xi = states[0, :40], states[0, 40], states[0, 41:]
        z = np.concatenate([system._import(sigma, y), xi, [omega]])
        assert z.size == n and fun(sigma, z).shape == (n,) and jac(sigma, z).shape == (n, n)
