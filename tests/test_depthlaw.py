"""The depth law (analysis/depthlaw.py) against closed forms: for one sample the Q^D_μ
KKT conditions reduce to one scalar equation, and the asymptotic rates follow from it."""
import math

import numpy as np
import pytest
from scipy.optimize import brentq

import flowkit
from flowkit.analysis.depthlaw import (d2_constant, mu_for_excess, near_tie, near_tie_mu, rho_max,
                               worst_case_mu)


def _h(v, D):
    if D == 2:
        return 2.0 * math.sinh(v)
    k = D / (D - 2.0)
    return (1.0 - v) ** -k - (1.0 + v) ** -k


def _excess_closed_form(x, mu, D):
    """One sample x > 0 with max x = 1: w_i = μ h_D(ν x_i) (KKT, math.md), margin
    Σ x_i w_i = 1 fixes ν; the ℓ1 optimum is 1."""
    x = [float(v) for v in x]  # Python floats: an overflow to inf is a sign for Brent
    hi = 700.0 if D == 2 else 1.0 - 1e-15
    nu = brentq(lambda v: sum(xi * mu * _h(v * xi, D) for xi in x) - 1.0, 0.0, hi,
                xtol=1e-300, rtol=1e-15)
    return sum(mu * _h(nu * xi, D) for xi in x) - 1.0


@pytest.mark.parametrize("D", [2, 3])
@pytest.mark.parametrize("t", [0.05, 0.3])
def test_mu_for_excess_equals_the_one_sample_closed_form(D, t):
    Xt = near_tie(t)
    for delta in (0.1, 0.02):
        mu = mu_for_excess(Xt, D, delta, 1.0)
        if math.isnan(mu):  # the ℓ2 end is already within δ: check that it is
            assert _excess_closed_form(Xt[0], 1e6, D) < delta
            continue
        assert _excess_closed_form(Xt[0], mu, D) == pytest.approx(delta, rel=1e-8)


@pytest.mark.parametrize("D", [2, 3, 5, 10])
def test_near_tie_mu_in_the_dual_variable_equals_the_q_solver(D):
    """worst_case_mu's formulation (a root in ν) against mu_for_excess (Brent in μ over
    certified Q^D_μ solves) and the closed-form excess: the same μ(δ), NaN alike."""
    compared = 0
    for t in (1e-3, 0.02, 0.2, 0.6, 0.97):
        for delta in (0.3, 0.05, 0.01):
            b = near_tie_mu(t, D, delta)
            try:
                a = mu_for_excess(near_tie(t), D, delta, 1.0)
            except RuntimeError:  # below the Q solver's validated μ range (D > 2)
                assert b < flowkit.maxmargin.MU_RANGE[0]
                continue
            assert math.isnan(a) == math.isnan(b), (t, delta, a, b)
            if not math.isnan(a):
                assert b == pytest.approx(a, rel=1e-9)
                assert _excess_closed_form(near_tie(t)[0], b, D) == pytest.approx(delta, rel=1e-9)
                compared += 1
    assert compared >= 8


def test_d2_constant_solves_its_stationarity_equation():
    # g(k) = max_c log(k(c-1))/c: at the optimum log(k(c-1)) = c/(c-1), so g = 1/(c-1)
    c = brentq(lambda c: math.log(3 * (c - 1)) - c / (c - 1), 1.5, 10.0, xtol=1e-14)
    assert d2_constant(3) == pytest.approx(1.0 / (c - 1.0), rel=1e-10)


def test_worst_case_depth_two_is_exp_minus_c_over_delta():
    # the paper's D = 2 rate: δ log(1/μ) -> g(3), attained at t* -> c δ
    c = brentq(lambda c: math.log(3 * (c - 1)) - c / (c - 1), 1.5, 10.0, xtol=1e-14)
    delta = 0.002
    mu, t_star = worst_case_mu(2, delta)
    assert delta * math.log(1.0 / mu) == pytest.approx(d2_constant(3), rel=0.01)
    assert t_star / delta == pytest.approx(c, rel=0.02)
    # and it is the worst case: a member away from t* needs a larger μ
    assert mu_for_excess(near_tie(2.0 * t_star), 2, delta, 1.0) > 10 * mu


def test_one_dataset_is_polynomial_with_the_lp_dual_exponent():
    X, y = flowkit.datasets.load("fig3b")
    rho = rho_max(X, y)
    assert rho == pytest.approx(1.0 / 3.0, abs=1e-12)
    Xt = y[:, None] * X
    l1 = flowkit.max_margin(X, y, "l1").objective
    for D, slope in ((2, 1.0 / (1.0 - rho)), (3, 1.0)):
        d1, d2 = (1e-5, 1e-6) if D == 2 else (1e-4, 1e-5)
        m1, m2 = (mu_for_excess(Xt, D, d, l1) for d in (d1, d2))
        assert math.log(m1 / m2) / math.log(d1 / d2) == pytest.approx(slope, rel=0.03)


def test_out_of_range_delta_is_an_error_not_a_number():
    with pytest.raises(RuntimeError, match="needs mu below"):
        mu_for_excess(near_tie(0.01), 3, 1e-4, 1.0)
    with pytest.raises(flowkit.ParameterError, match="t must be"):
        flowkit.datasets.near_tie(1.5)
    with pytest.raises(flowkit.ParameterError, match="copies"):
        flowkit.datasets.near_tie(0.5, copies=0)
    assert np.isnan(mu_for_excess(near_tie(0.9), 2, 0.3, 1.0))
