"""The compiled Radau step (flowkit.compiled, _kernels/radau.py) against scipy's own Radau
and against the scipy-Python step of the engine (integrate(step="scipy"))."""
import math

import numpy as np
import pytest
from numba import njit
from scipy.integrate import Radau, solve_ivp
from scipy.integrate._ivp import radau as SR

import flowkit
from flowkit import datasets
from flowkit._kernels import radau as K
from flowkit.compiled import CompiledRadau
from flowkit.exceptions import ParameterError


@njit
def robertson(t, y):
    return np.array([-0.04 * y[0] + 1e4 * y[1] * y[2],
                     0.04 * y[0] - 1e4 * y[1] * y[2] - 3e7 * y[1] ** 2, 3e7 * y[1] ** 2])


@njit
def robertson_jac(t, y):
    return np.array([[-0.04, 1e4 * y[2], 1e4 * y[1]],
                     [0.04, -1e4 * y[2] - 6e7 * y[1], -1e4 * y[1]],
                     [0.0, 6e7 * y[1], 0.0]])


A_LIN = np.array([[-1.0, 0.3, 0.0, 0.1], [0.2, -50.0, 1.0, 0.0], [0.0, 0.5, -2e3, 0.4],
                  [0.1, 0.0, 0.3, -0.5]])


@njit
def linear(t, y):
    return A_LIN @ y + np.sin(t) * np.ones(4)


@njit
def linear_jac(t, y):
    return A_LIN.copy()


def test_constants_are_scipys():
    for name in ("C", "E", "T", "TI", "P"):
        np.testing.assert_allclose(getattr(K, name), getattr(SR, name), rtol=1e-15, atol=1e-15)
    assert K.MU_REAL == pytest.approx(SR.MU_REAL, rel=1e-15)
    assert complex(K.MU_COMPLEX_RE, K.MU_COMPLEX_IM) == pytest.approx(SR.MU_COMPLEX, rel=1e-15)
    assert (K.NEWTON_MAXITER, K.MIN_FACTOR, K.MAX_FACTOR) == (SR.NEWTON_MAXITER, SR.MIN_FACTOR, SR.MAX_FACTOR)


def test_well_conditioned_problem_step_for_step():
    """On a mildly stiff linear system the compiled step is scipy's to rounding: the same
    counts, the same steps to a few ulps until the first step whose size differs, and then the
    same solution.  (The error estimate cancels: its norm moves by ~1e-9 relative with
    rounding, so from the first change of step size on (step 310 here) the step sizes
    differ by that much and the two step sequences drift apart; the solutions stay within
    2e-4 of the tolerance, i.e. ~2e-13 relative, of each other.)"""
    a = CompiledRadau(linear, 0.0, np.ones(4), 20.0, jac=linear_jac, rtol=1e-9, atol=1e-12)
    b = Radau(linear, 0.0, np.ones(4), 20.0, jac=linear_jac, rtol=1e-9, atol=1e-12)
    worst, same_h = 0.0, True
    while b.status == "running":
        a.step()
        b.step()
        same_h = same_h and (a.t - a.t_old) == pytest.approx(b.t - b.t_old, rel=1e-13, abs=0)
        if same_h:
            np.testing.assert_allclose(a.y, b.y, rtol=1e-13, atol=1e-15)
        if b.t_old <= a.t <= b.t:
            dev = np.abs(a.y - b.dense_output()(a.t)) / (1e-12 + 1e-9 * np.abs(a.y))
            worst = max(worst, float(np.max(dev)))
    assert a.status == "finished" and not same_h  # both regimes were exercised
    assert (a.nfev, a.njev, a.nlu) == (b.nfev, b.njev, b.nlu)
    assert worst < 2e-3
    # the compiled dense output is scipy's polynomial
    ts = np.linspace(a.t_old, a.t, 7)
    ref = Radau(linear, a.t_old, a.dense_output()(a.t_old), a.t, jac=linear_jac)
    assert ref.t == a.t_old
    np.testing.assert_allclose(a.dense_output()(ts)[:, [0, -1]],
                               np.column_stack([a.dense_output()(a.t_old), a.y]), rtol=1e-12)


def test_robertson_through_solve_ivp():
    """``solve_ivp(method=CompiledRadau)``: scipy's counts exactly on Robertson's problem.
    Its error estimate cancels ~9 digits, so rounding moves the step sizes by ~1e-9
    relative (scipy's own Radau moves as much when y0 moves by one ulp), and the
    solutions agree to well inside rtol."""
    kw = dict(jac=robertson_jac, rtol=1e-8, atol=1e-12)
    a = solve_ivp(robertson, (0.0, 1e5), [1.0, 0.0, 0.0], method=CompiledRadau, **kw)
    b = solve_ivp(robertson, (0.0, 1e5), [1.0, 0.0, 0.0], method="Radau", **kw)
    assert a.success and b.success
    assert (a.t.size, a.nfev, a.njev, a.nlu) == (b.t.size, b.nfev, b.njev, b.nlu)
    np.testing.assert_allclose(a.y[:, -1], b.y[:, -1], rtol=1e-7, atol=1e-12)
    assert np.sum(a.y[:, -1]) == pytest.approx(1.0, abs=1e-10)  # the invariant


def test_compiled_step_rejects_python_functions():
    with pytest.raises(ParameterError, match="numba-compiled"):
        CompiledRadau(lambda t, y: -y, 0.0, np.ones(2), 1.0, jac=lambda t, y: -np.eye(2))


def _dupes():
    X, y = datasets.load("kink")
    return np.vstack([X, X[:2]]), np.concatenate([y, y[:2]])


CASES = {
    # modes 0 and 1
    "fig4a D=2 a=1 1e4": (lambda: datasets.load("fig4a"), 2, 1.0, 1e4),
    # all three modes
    "kink D=3 a=1 1e6": (lambda: datasets.load("kink"), 3, 1.0, 1e6),
    # one offset per group of copies past TIME_SWITCH (the reduced solver)
    "kink+copies D=2 a=10 1e8": (_dupes, 2, 10.0, 1e8),
    # the floored and e^gap weights, the anchored clock and its re-anchoring
    "kink D=2 a=1e3 1e20": (lambda: datasets.load("kink"), 2, 1e3, 1e20),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_engine_compiled_equals_scipy_step(case):
    data, depth, alpha, gamma = CASES[case]
    X, y = data()
    ref = flowkit.integrate(X, y, depth=depth, alpha=alpha, gamma=gamma, step="scipy")
    tr = flowkit.integrate(X, y, depth=depth, alpha=alpha, gamma=gamma, step="compiled")
    assert tr.stats["step"] == "compiled" and ref.stats["step"] == "scipy"
    np.testing.assert_allclose(tr.gamma, ref.gamma, rtol=1e-15)
    np.testing.assert_allclose(tr.w_hat, ref.w_hat, rtol=0, atol=1e-11)
    np.testing.assert_allclose(tr.log_time, ref.log_time, rtol=1e-9)
    # the same steps, up to the rounding the step sizes amplify on long runs
    assert abs(tr.stats["steps"] - ref.stats["steps"]) <= 0.01 * ref.stats["steps"]


def test_plateau_watch_and_quadrature_in_the_kernel():
    """D = 10, alpha = 1e-3: the plateau clock takes over at the same point (the kernel's
    watch), and the time quadrature of mode 0 is the driver's."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(6, 4))
    y = np.sign(X @ np.array([1.0, -0.5, 0.2, 0.0]))
    kw = dict(depth=10, alpha=1e-3, gamma=2.0)
    ref = flowkit.integrate(X, y, step="scipy", **kw)
    tr = flowkit.integrate(X, y, step="compiled", **kw)
    assert tr.stats.get("clock_switches", 0) == ref.stats.get("clock_switches", 0) >= 1
    np.testing.assert_allclose(tr.w_hat, ref.w_hat, rtol=0, atol=1e-10)
    np.testing.assert_allclose(tr.log_time, ref.log_time, rtol=1e-9)


def test_step_budget_and_its_message():
    X, y = datasets.load("kink")
    with pytest.raises(flowkit.IntegrationError, match="more than 40 steps"):
        flowkit.integrate(X, y, depth=2, alpha=1.0, gamma=1e4, step="compiled", max_steps=40)


@pytest.mark.parametrize("bad, match", [
    (dict(step="numba"), "step must be one of"),
    (dict(step="compiled", method="BDF"), "step='compiled' runs"),
    (dict(step="compiled", linalg="structured"), "step='compiled' runs"),
    (dict(step="compiled", model="linearized"), "step='compiled' runs"),
    (dict(step=None), "step must be one of"),
])
def test_bad_step_options(bad, match):
    X, y = datasets.load("fig4a")
    with pytest.raises(ParameterError, match=match):
        flowkit.integrate(X, y, depth=2, alpha=1.0, gamma=10.0, **bad)


def test_kernel_cache_names_follow_the_sources():
    """A specialisation's cache name carries a hash of every kernel source, so editing a
    system's kernels cannot load a stale compiled step."""
    from flowkit.flow import _flow_kernels
    names = [k.__name__ for k in _flow_kernels()]
    assert len(set(names)) == 3
    assert all(n.endswith(K._source_tag()) for n in names)
    assert math.isfinite(K.MU_REAL)


# -- edge cases from a review against scipy --------------------------------------------------

@njit
def singular(t, y):
    return SR.MU_REAL * y


@njit
def singular_jac(t, y):
    return np.array([[SR.MU_REAL]])


def test_exact_zero_pivot_shrinks_the_step_as_scipy_does():
    """f = MU_REAL y with h = 1 makes the real Newton matrix exactly singular: scipy warns,
    Newton fails on inf/nan and the step is halved; the compiled LU must do the same, not
    raise ZeroDivisionError (numba's default error model)."""
    import warnings
    kw = dict(first_step=1.0, rtol=1e-6, atol=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = solve_ivp(singular, (0.0, 3.0), [1.0], method="Radau", jac=singular_jac, **kw)
    got = solve_ivp(singular, (0.0, 3.0), [1.0], method=CompiledRadau, jac=singular_jac, **kw)
    assert got.success and ref.success
    assert (got.t.size, got.nfev, got.njev, got.nlu) == (ref.t.size, ref.nfev, ref.njev, ref.nlu)
    assert got.y[0, -1] == pytest.approx(math.exp(3.0 * SR.MU_REAL), rel=1e-4)


def test_resume_after_the_end_point_shortcut():
    """OdeSolver.step at t == t_bound sets t_old = t without a step; resuming from there
    must not predict Newton's start from a step of length 0."""
    from flowkit.radau import ThetaRadau, resume
    kw = dict(rtol=1e-6, atol=1e-10)
    a = ThetaRadau(robertson, 0.0, np.array([1.0, 0.0, 0.0]), 1.0, jac=robertson_jac, **kw)
    b = CompiledRadau(robertson, 0.0, np.array([1.0, 0.0, 0.0]), 1.0, jac=robertson_jac, **kw)
    for s in (a, b):
        while s.status == "running":
            s.step()
        resume(s, 1.0)
        s.step()
        resume(s, 2.0)
        while s.status == "running":
            s.step()
    assert b.status == "finished" and b.t == 2.0
    assert (b.nfev, b.njev, b.nlu) == (a.nfev, a.njev, a.nlu)
    np.testing.assert_allclose(b.y, a.y, rtol=1e-9, atol=1e-14)


def test_lapack_lu_is_scipys_bit_for_bit():
    """From LAPACK_FROM unknowns the Newton matrices go to LAPACK's getrf: scipy's factors
    and pivots exactly (real and complex, with and without the row equilibration)."""
    from scipy.linalg import lu_factor, lu_solve
    rng = np.random.default_rng(7)
    for n in (K.LAPACK_FROM, 17, 40):
        for dtype in (float, complex):
            A = rng.standard_normal((n, n)) * np.logspace(-8, 8, n)[:, None]
            if dtype is complex:
                A = A + 1j * rng.standard_normal((n, n))
            for equil in (False, True):
                B, piv, r = A.copy(), np.empty(n, dtype=np.int64), np.empty(n)
                K._lu(B, piv, r, equil)
                scaled = A * r[:, None]
                assert np.all(r == (2.0 ** -np.frexp(np.max(np.abs(A), axis=1))[1] if equil else 1.0))
                lu, p = lu_factor(scaled)
                assert np.array_equal(B, lu) and np.array_equal(piv, p)
                b, x = rng.standard_normal(n).astype(dtype), np.empty(n, dtype=dtype)
                K._solve(B, piv, r, b, x)
                ref = lu_solve((lu, p), r * b)
                np.testing.assert_allclose(x, ref, rtol=0, atol=1e-10 * np.max(np.abs(ref)))


@njit
def singular12(t, y):
    return SR.MU_REAL * y


@njit
def singular12_jac(t, y):
    return SR.MU_REAL * np.eye(y.shape[0])


def test_exact_zero_pivot_in_lapack_shrinks_the_step_as_scipy_does():
    import warnings
    kw = dict(first_step=1.0, rtol=1e-6, atol=1e-9)
    y0 = np.ones(K.LAPACK_FROM + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = solve_ivp(singular12, (0.0, 3.0), y0, method="Radau", jac=singular12_jac, **kw)
    got = solve_ivp(singular12, (0.0, 3.0), y0, method=CompiledRadau, jac=singular12_jac, **kw)
    assert got.success and ref.success
    assert (got.t.size, got.nfev, got.njev, got.nlu) == (ref.t.size, ref.nfev, ref.njev, ref.nlu)
    np.testing.assert_allclose(got.y[:, -1], ref.y[:, -1], rtol=1e-12)


def test_engine_on_lapack_sized_matrices():
    """6 x 8 planted data: 15 unknowns past XI_SWITCH, so the Newton matrices are LAPACK's."""
    X, y = datasets.planted_sparse(6, 8, 2, seed=3)
    ref = flowkit.integrate(X, y, depth=2, alpha=1.0, gamma=1e6, step="scipy", linalg="dense")
    tr = flowkit.integrate(X, y, depth=2, alpha=1.0, gamma=1e6, step="compiled", linalg="dense")
    assert X.shape[0] + X.shape[1] + 1 >= K.LAPACK_FROM
    np.testing.assert_allclose(tr.w_hat, ref.w_hat, rtol=0, atol=1e-11)
    assert abs(tr.stats["steps"] - ref.stats["steps"]) <= 0.01 * ref.stats["steps"]


def test_saved_rows_in_one_call_equal_one_by_one(monkeypatch):
    """The batch of save points a compiled run passes is saved in one kernel call (mode 0)
    or by slicing (mode 1): bit for bit what saving each one on its own gives."""
    X, y = datasets.load("kink")
    runs = [flowkit.integrate(X, y, depth=D, alpha=a, gamma=1e7, step="compiled")
            for D, a in ((2, 0.1), (3, 100.0))]
    monkeypatch.setattr(flowkit.flow.Flow, "_saved_rows", lambda self, *a: None)
    for (D, a), tr in zip(((2, 0.1), (3, 100.0)), runs):
        one = flowkit.integrate(X, y, depth=D, alpha=a, gamma=1e7, step="compiled")
        assert np.array_equal(tr.state, one.state) and len(tr) > 100


@pytest.mark.parametrize("step", ["scipy", "compiled"])
def test_unresolved_step_on_the_anchored_clock_reanchors(step, monkeypatch):
    """A step that fails as "less than spacing" past an anchor's start (rejections alone,
    no accepted step for the REANCHOR test) restarts from a new anchor at the last
    accepted point, on both steps; at the anchor itself it still fails.  Injected once,
    mid-run: the result is that of the undisturbed run to the tolerance."""
    from flowkit.radau import ThetaRadau
    X, y = datasets.load("kink")
    kw = dict(depth=2, alpha=10.0, gamma=1e8, step=step)
    ref = flowkit.integrate(X, y, **kw)
    fired = []
    if step == "compiled":
        orig = CompiledRadau.advance

        def advance(self, budget, **options):
            if not fired and self._o[K.O_HI] > 3.0:
                fired.append(self._step_impl())
                self.status = "failed"
                return K.TOO_SMALL
            return orig(self, budget, **options)
        monkeypatch.setattr(CompiledRadau, "advance", advance)
    else:
        orig = ThetaRadau._step_impl

        def step_impl(self):
            if not fired and self.n > X.shape[1] and self.t > 0.1:  # anchored (mode >= 1), past its start
                fired.append(True)
                return False, self.TOO_SMALL_STEP
            return orig(self)
        monkeypatch.setattr(ThetaRadau, "_step_impl", step_impl)
    tr = flowkit.integrate(X, y, **kw)
    assert fired
    np.testing.assert_allclose(tr.w_hat, ref.w_hat, rtol=0, atol=1e-10)

    from flowkit.driver import Driver
    drv = Driver.__new__(Driver)
    drv._anchored = True
    at_anchor = CompiledRadau(robertson, 0.0, np.array([1.0, 0.0, 0.0]), 1.0, jac=robertson_jac)
    assert not drv._unresolved(at_anchor, at_anchor.TOO_SMALL_STEP)
    drv._anchored = False
    assert not drv._unresolved(at_anchor, at_anchor.TOO_SMALL_STEP)


def test_repeated_target_takes_no_step():
    """A target equal to the one before it is reached without a step (OdeSolver.step's
    shortcut): a step of length 0 divided by h = 0, and the machine, a C function, cannot
    raise (numba printed "complex division by zero" and went on)."""
    a = CompiledRadau(robertson, 0.0, np.array([1.0, 0.0, 0.0]), 1.0, jac=robertson_jac,
                      rtol=1e-8, atol=1e-12)
    status = a.advance(10_000, targets=[0.5, 0.5, 1.0, 1.0])
    assert status == K.FINISHED and a.reached == 4
    assert np.array_equal(a.saved[0], a.saved[1]) and np.array_equal(a.saved[2], a.saved[3])
    b = CompiledRadau(robertson, 0.0, np.array([1.0, 0.0, 0.0]), 1.0, jac=robertson_jac,
                      rtol=1e-8, atol=1e-12)
    b.advance(10_000, targets=[0.5, 1.0])
    assert np.array_equal(b.saved[1], a.saved[3]) and b.steps == a.steps
