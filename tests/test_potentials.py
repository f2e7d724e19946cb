"""flowkit.potentials against the definitions of math.md ("Implicit-bias potentials")
evaluated in mpmath, plus properties (symmetry, monotonicity, convexity, q' = h^{-1},
the limits of Q_mu) and input validation."""
import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowkit import potentials as P
from flowkit.exceptions import ParameterError

DEPTHS = [2, 3, 4, 5, 7, 10, 50, 100, 1000]
EPS = 2.220446049250313e-16
# The issue asks for 1e-13 (h, h', H, q, q'') and 1e-14 (h^{-1}); the measured worst
# cases are ~6 ulp and ~1.3 ulp, so the bounds below still catch a lost digit.
TOL = {"h": 2e-14, "dh": 2e-14, "H": 2e-14, "q": 2e-14, "d2q": 2e-14, "h_inv": 1e-14}
TINY = 1e-290  # below this the float64 result may be subnormal or 0: compare absolutely


def _grid_v():
    small = np.logspace(-300, -1, 14)
    middle = np.array([0.1, 0.25, np.nextafter(0.5, 0.0), 0.5, 0.6, 0.75, 0.9])  # 0.5: regime switch
    near_one = 1.0 - np.logspace(-12, -1, 10)
    v = np.concatenate([small, middle, near_one])
    return v * np.where(np.arange(v.size) % 2, -1.0, 1.0)  # both signs


def _grid_z(depth):
    z = np.logspace(-300, 12, 36)
    switch = P.h(0.5, depth)  # where h_D^{-1} changes from solving for x to solving for e
    z = np.concatenate([z, [np.nextafter(switch, 0.0), switch, np.nextafter(switch, np.inf)]])
    return z * np.where(np.arange(z.size) % 2, -1.0, 1.0)


# ---------------------------------------------------------------- mpmath definitions


def _digits(t):
    # the definitions of h_D and H_D cancel like |t| and t² as t -> 0: carry the digits
    return 40 + int(2 * max(0.0, -math.log10(abs(t)))) if t else 40


def mp_h(t, D):
    if D == 2:
        return 2 * mpmath.sinh(t)
    b = mpmath.mpf(D) / (D - 2)
    return (1 - t) ** -b - (1 + t) ** -b


def mp_dh(t, D):
    if D == 2:
        return 2 * mpmath.cosh(t)
    b = mpmath.mpf(D) / (D - 2)
    return b * ((1 - t) ** (-b - 1) + (1 + t) ** (-b - 1))


def mp_H(t, D):
    if D == 2:
        return 2 * mpmath.cosh(t) - 2
    c = mpmath.mpf(2) / (D - 2)
    return ((1 - t) ** -c + (1 + t) ** -c - 2) / c


def mp_h_inv(zz, D, guess):
    """The root of h_D(v) = z, refined by mpmath's secant method from ``guess`` (only a
    starting point) and accepted only if the residual is at the working precision."""
    if D == 2:
        return mpmath.asinh(zz / 2)
    if zz == 0:
        return mpmath.mpf(0)
    a = abs(zz)
    if abs(guess) < 0.5:  # in log v: the root may be 1e-300
        root = mpmath.exp(mpmath.findroot(lambda w: mpmath.log(mp_h(mpmath.exp(w), D) / a),
                                          mpmath.log(abs(guess))))
    else:  # in log(1 - v): e = 1 - v carries the digits near v = 1
        root = 1 - mpmath.exp(mpmath.findroot(lambda u: mpmath.log(mp_h(1 - mpmath.exp(u), D) / a),
                                              mpmath.log(1 - abs(guess))))
    assert abs(mp_h(root, D) / a - 1) < mpmath.mpf(10) ** (-35)
    return mpmath.sign(zz) * root


def _rel_errors(got, ref):
    """Relative errors, with |got - ref| <= 1e-300 counted as exact where |ref| < TINY."""
    errs = []
    for g, r in zip(got, ref):
        r = float(r)
        if abs(r) < TINY:
            errs.append(0.0 if abs(g - r) <= 1e-300 else math.inf)
        else:
            errs.append(abs(g - r) / abs(r))
    return np.array(errs)


def _record(name, D, errs):
    assert errs.max() <= TOL[name], f"{name}, D={D}: worst relative error {errs.max():.3g}"


@pytest.mark.parametrize("D", DEPTHS)
def test_h_dh_H_against_mpmath(D):
    v = _grid_v()
    got = {"h": P.h(v, D), "dh": P.dh(v, D), "H": P.H(v, D)}
    refs = {name: [] for name in got}
    for t in v:
        with mpmath.workdps(_digits(t)):
            T = mpmath.mpf(t)
            refs["h"].append(mp_h(T, D))
            refs["dh"].append(mp_dh(T, D))
            refs["H"].append(mp_H(T, D))
    for name in got:
        _record(name, D, _rel_errors(got[name], refs[name]))


@pytest.mark.parametrize("D", DEPTHS)
def test_h_inv_q_d2q_against_mpmath(D):
    zs = _grid_z(D)
    vs, qs, d2qs = P.h_inv(zs, D), P.q(zs, D), P.d2q(zs, D)
    ref_v, ref_q, ref_d2q = [], [], []
    for zz, guess in zip(zs, vs):
        with mpmath.workdps(_digits(zz) + 20):
            Z = mpmath.mpf(zz)
            V = mp_h_inv(Z, D, guess)
            ref_v.append(V)
            ref_q.append(Z * V - mp_H(V, D))  # Legendre transform
            ref_d2q.append(1 / mp_dh(V, D))
    _record("h_inv", D, _rel_errors(vs, ref_v))
    _record("q", D, _rel_errors(qs, ref_q))
    _record("d2q", D, _rel_errors(d2qs, ref_d2q))


@pytest.mark.parametrize("D", DEPTHS)
def test_round_trips(D):
    # h_D^{-1} is well conditioned (relative condition z/(v h_D'(v)) <= 1): tight
    v = _grid_v()
    assert np.all(np.abs(P.h_inv(P.h(v, D), D) - v) <= 4 * EPS * np.abs(v))
    # h_D amplifies the rounding of v by its condition number v h_D'(v)/h_D(v)
    z = _grid_z(D)
    z = z[np.abs(z) > TINY]
    w = P.h_inv(z, D)
    cond = 1.0 + np.abs(w) * P.dh(w, D) / np.abs(z)
    assert np.all(np.abs(P.h(w, D) - z) <= 4 * EPS * cond * np.abs(z))


# ---------------------------------------------------------------- properties

depths = st.sampled_from(DEPTHS)
open_unit = st.floats(-1.0, 1.0, exclude_min=True, exclude_max=True, allow_subnormal=False)
moderate = st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False)


def _v_for(D, t):
    return t * 50.0 if D == 2 else t  # D = 2: all of R (a modest range of it)


@settings(max_examples=200, deadline=None)
@given(D=depths, t=open_unit, s=moderate)
def test_symmetry(D, t, s):
    t = _v_for(D, t)
    assert P.h(-t, D) == -P.h(t, D)
    assert P.dh(-t, D) == P.dh(t, D)
    assert P.H(-t, D) == P.H(t, D)
    assert P.h_inv(-s, D) == -P.h_inv(s, D)
    assert P.q(-s, D) == P.q(s, D)
    assert P.d2q(-s, D) == P.d2q(s, D)


@settings(max_examples=200, deadline=None)
@given(D=depths, t1=open_unit, t2=open_unit, s1=moderate, s2=moderate)
def test_monotone_and_positive(D, t1, t2, s1, s2):
    t1, t2 = sorted((_v_for(D, t1), _v_for(D, t2)))
    assert P.h(t1, D) <= P.h(t2, D)
    assert P.dh(t1, D) > 0 and P.H(t1, D) >= 0
    s1, s2 = sorted((s1, s2))
    assert P.h_inv(s1, D) <= P.h_inv(s2, D)
    assert P.q(s1, D) >= 0 and P.d2q(s1, D) > 0
    if D > 2:
        assert abs(P.h_inv(s1, D)) < 1


@settings(max_examples=200, deadline=None)
@given(D=depths, s1=moderate, s2=moderate)
def test_q_convex(D, s1, s2):
    mid = P.q(0.5 * (s1 + s2), D)
    assert mid <= 0.5 * (P.q(s1, D) + P.q(s2, D)) * (1 + 8 * EPS) + 1e-300


@settings(max_examples=200, deadline=None)
@given(D=depths, s=st.floats(1e-3, 1e3), sign=st.sampled_from([-1.0, 1.0]))
def test_derivatives_by_finite_differences(D, s, sign):
    s *= sign
    d = 1e-4 * abs(s)
    # central differences: truncation ~ d² f''', rounding ~ eps f / d
    fd_q = (P.q(s + d, D) - P.q(s - d, D)) / (2 * d)
    assert fd_q == pytest.approx(P.h_inv(s, D), rel=1e-6)
    fd_hinv = (P.h_inv(s + d, D) - P.h_inv(s - d, D)) / (2 * d)
    assert fd_hinv == pytest.approx(P.d2q(s, D), rel=1e-6)
    vs = P.h_inv(s, D)
    dv = 1e-5 * min(abs(vs), 1 - abs(vs)) if D > 2 else 1e-5 * abs(vs)
    fd_h = (P.h(vs + dv, D) - P.h(vs - dv, D)) / (2 * dv)
    assert fd_h == pytest.approx(P.dh(vs, D), rel=1e-6)
    fd_H = (P.H(vs + dv, D) - P.H(vs - dv, D)) / (2 * dv)
    assert fd_H == pytest.approx(P.h(vs, D), rel=1e-6)


weights = st.lists(st.floats(0.01, 100.0), min_size=1, max_size=6).flatmap(
    lambda w: st.lists(st.sampled_from([-1.0, 1.0]), min_size=len(w), max_size=len(w)).map(
        lambda signs: np.array(w) * np.array(signs)))


@settings(max_examples=100, deadline=None)
@given(D=depths, w=weights)
def test_Q_large_mu_is_quadratic(D, w):
    # q_D(z) = z²/(2 h_D'(0)) (1 + O(z²)), h_D'(0) = 2D/(D-2) (D = 2: 2)
    coeff = 0.25 if D == 2 else (D - 2) / (4 * D)
    expected = coeff * np.sum(w ** 2)
    for mu in (1e4, 1e6):  # relative deviation O((|w|/mu)²)
        bound = 1e-13 + (np.max(np.abs(w)) / mu) ** 2
        assert abs(mu ** 2 * P.Q(w, mu, D) / expected - 1) <= bound


@settings(max_examples=100, deadline=None)
@given(D=depths.filter(lambda d: d > 2), w=weights)
def test_Q_small_mu_is_l1(D, w):
    # q_D(z)/|z| = 1 - (1 - v) - H_D(v)/|z| -> 1, the deviation ~ (D/2) |z|^(-(D-2)/D)
    l1 = np.sum(np.abs(w))
    deviations = []
    for mu in (1e-8, 1e-12):
        ratio = mu * P.Q(w, mu, D) / l1
        zmin = np.min(np.abs(w)) / mu
        assert 0 < 1 - ratio <= D * zmin ** (-(D - 2) / D)
        deviations.append(1 - ratio)
    assert deviations[1] < deviations[0]


@settings(max_examples=50, deadline=None)
@given(w=weights)
def test_Q2_small_mu_is_l1_log(w):
    # q_2(z) = |z| (log|z| - 1) + 2 + O(log|z| / |z|), so mu Q_mu(w) / log(1/mu) -> ‖w‖₁
    mu = 1e-10
    expected = np.sum(np.abs(w) * (np.log(np.abs(w) / mu) - 1) + 2 * mu)
    assert mu * P.Q(w, mu, 2) == pytest.approx(expected, rel=1e-9)


# ---------------------------------------------------------------- API


def test_scalars_and_arrays():
    assert type(P.h(0.5, 3)) is float and type(P.q(2, 3)) is float
    assert type(P.Q([1.0, -2.0], 0.5, 4)) is float
    grid = np.linspace(-0.9, 0.9, 6).reshape(2, 3)
    for f in (P.h, P.dh, P.H, P.h_inv, P.q, P.d2q):
        out = f(grid, 5)
        assert isinstance(out, np.ndarray) and out.shape == (2, 3) and out.dtype == np.float64
        assert out[1, 2] == f(grid[1, 2], 5)
    assert P.h([0.1, 0.2], 3).shape == (2,)
    assert P.h(np.float32(0.25), np.int64(3)) == P.h(0.25, 3)
    assert P.dq is P.h_inv
    assert P.h(np.empty(0), 3).shape == (0,)


def test_known_values():
    assert P.h(0.5, 4) == pytest.approx(4 - 4 / 9, rel=1e-15)  # b = 2
    assert P.H(0.5, 4) == pytest.approx(2 + 2 / 3 - 2, rel=1e-15)  # c = 1, (D-2)/2 = 1
    assert P.q(2.0, 2) == pytest.approx(2 - math.sqrt(8) + 2 * math.asinh(1), rel=1e-15)
    assert P.h_inv(P.h(0.3, 7), 7) == pytest.approx(0.3, rel=1e-15)
    assert P.q(0.0, 3) == 0.0 and P.h_inv(0.0, 3) == 0.0
    assert P.d2q(0.0, 3) == pytest.approx(1 / 6, rel=1e-15)  # 1/h_3'(0) = (D-2)/(2D)
    assert P.Q([1.0, -1.0], 2.0, 3) == pytest.approx(2 * P.q(0.5, 3), rel=1e-15)


@pytest.mark.parametrize("depth", [1, 0, -3, 2.5, "3", True, None, 3 + 0j])
def test_bad_depth(depth):
    with pytest.raises(ParameterError, match="depth"):
        P.h(0.1, depth)
    with pytest.raises(ParameterError, match="depth"):
        P.Q([0.1], 1.0, depth)


@pytest.mark.parametrize("f", [P.h, P.dh, P.H, P.h_inv, P.q, P.d2q])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, [0.1, math.nan]])
def test_non_finite_input(f, bad):
    with pytest.raises(ParameterError, match="NaN or inf"):
        f(bad, 3)


@pytest.mark.parametrize("bad", [True, [True, False], 1j, "0.5", None, [0.1, "a"]])
def test_non_real_input(bad):
    with pytest.raises(ParameterError):
        P.q(bad, 3)


@pytest.mark.parametrize("f", [P.h, P.dh, P.H])
def test_outside_open_interval(f):
    for bad in (1.0, -1.0, 1.5, [0.0, -2.0]):
        with pytest.raises(ParameterError, match="-1 < v < 1"):
            f(bad, 3)
    assert math.isfinite(f(1.5, 2))  # D = 2: defined on all of R


@pytest.mark.parametrize("mu", [0.0, -1.0, math.nan, math.inf, "1", True, None])
def test_bad_mu(mu):
    with pytest.raises(ParameterError, match="mu"):
        P.Q([1.0], mu, 3)


def test_Q_rejects_bad_w():
    with pytest.raises(ParameterError, match="NaN or inf"):
        P.Q([1.0, math.nan], 1.0, 3)
    with pytest.raises(ParameterError, match="overflows"):
        P.Q([1e300], 1e-300, 3)
