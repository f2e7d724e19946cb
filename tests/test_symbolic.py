"""Symbolic checks of the implicit-bias potentials (math.md, "Implicit-bias potentials"):
the definitions, the Legendre-transform derivatives, the series and limits, the stable
forms the kernels use, and that the kernel file is exactly what sympy generates."""
import math

import pytest
import sympy as sp

from flowkit import symbolic as S
from flowkit.symbolic import D, e, v, x, z

b, c = D / (D - 2), 2 / (D - 2)


def test_q2_derivative_is_asinh():
    assert sp.simplify(sp.diff(S.q(2), z) - sp.asinh(z / 2)) == 0
    assert S.dq(2) == sp.asinh(z / 2)


def test_q2_closed_form_matches_math_md():
    assert S.is_identity(S.q(2), 2 - sp.sqrt(4 + z ** 2) + z * sp.asinh(z / 2))


def test_H2_is_2cosh_minus_2():
    assert sp.simplify(S.H(2) - (2 * sp.cosh(v) - 2)) == 0
    assert sp.diff(S.H(2), v) == S.h(2)


def test_HD_derivative_is_hD_and_matches_math_md():
    assert S.is_identity(sp.diff(S.H(D), v), S.h(D))
    assert S.H(D).subs(v, 0) == 0
    assert S.is_identity(S.H(D), (D - 2) / 2 * ((1 - v) ** (-c) + (1 + v) ** (-c) - 2))


def test_h2_inverse():
    assert S.h_inv_2() == sp.asinh(z / 2)
    assert sp.simplify(S.h(2).subs(v, S.h_inv_2()) - z) == 0


def test_legendre_derivatives():
    # q_D' = h_D^{-1} and q_D'' = 1/h_D'(h_D^{-1}) by the chain rule ...
    assert S.dq(D) == S.h_inv(z)
    assert sp.simplify(S.d2q(D) - 1 / S.dh(D).subs(v, S.h_inv(z))) == 0
    assert sp.simplify(S.d2q(2) - 1 / sp.sqrt(4 + z ** 2)) == 0
    # ... and directly from q_D = z V - H_D(V): dq/dz - V = V'(z - H_D'(V)) = 0 on z = h_D(V)
    V, dV = sp.Symbol("V"), sp.Symbol("dV")
    rest = (sp.diff(S.q(D), z) - S.h_inv(z)).subs(sp.Derivative(S.h_inv(z), z), dV).subs(S.h_inv(z), V)
    assert S.is_identity(sp.expand(rest / dV).subs(z, S.h(D).subs(v, V)).subs(V, v), sp.S.Zero)


def test_small_z_series_by_reversion():
    series = S.q_small_z_series(D, 4)
    c2, c4 = series.coeff(z, 2), series.coeff(z, 4)
    assert sp.simplify(c2 - (D - 2) / (4 * D)) == 0
    assert sp.simplify(c2 - 1 / (2 * S.dh(D).subs(v, 0))) == 0  # z²/(2 h_D'(0))
    assert series.coeff(z, 1) == 0 and series.coeff(z, 3) == 0  # q_D is even
    assert sp.simplify(c4 + (D - 2) * (D - 1) * (3 * D - 4) / (96 * D ** 3)) == 0
    assert S.q_small_z_series(2, 4) == z ** 2 / 4 - z ** 4 / 192  # 2 - sqrt(4+z²) + z asinh(z/2)
    assert sp.simplify(sp.series(S.q(2), z, 0, 5).removeO() - S.q_small_z_series(2, 4)) == 0


@pytest.mark.parametrize("depth", [3, 10])
def test_small_z_series_matches_kernel(depth):
    from flowkit._kernels import potentials as kernels

    series = sp.lambdify(z, S.q_small_z_series(depth, 4))
    for zz in (1e-3, 3e-2):
        # the omitted term is O(z⁶) with a coefficient below 1; the z⁴ term is larger
        assert abs(kernels.q(zz, depth) - series(zz)) <= 1e-15 * series(zz) + zz ** 6


def test_large_z_limits():
    # q_D(z)/|z| -> 1 for D > 2: with z = h_D(v), q/z = v - H_D(v)/h_D(v) as v -> 1-
    ratio = S.H(D) / S.h(D)
    assert sp.limit(ratio.subs(D, 2 + 2 / sp.Symbol("c", positive=True)), v, 1, "-") == 0
    for depth in (3, 4, 6):
        zv, qv = S.legendre_parametric(depth)
        assert sp.limit(zv, v, 1, "-") == sp.oo
        assert sp.limit(qv / zv, v, 1, "-") == 1
    # q_2(z) ~ |z| log|z|
    assert sp.limit(S.q(2) / (z * sp.log(z)), z, sp.oo) == 1
    assert sp.limit(S.q(2) / (-z * sp.log(-z)), z, -sp.oo) == 1


@pytest.mark.parametrize("kernel", S.KERNELS, ids=lambda k: k.name)
def test_stable_form_equals_definition(kernel):
    assert S.is_identity(kernel.expr, kernel.definition)


@pytest.mark.parametrize("wrong, right", [
    # a wrong exponent, a missing term, a swapped regime variable, a wrong branch of a Piecewise
    (2 * sp.exp(-(c / 2) * sp.log(1 - x ** 2)) * sp.sinh(b * sp.atanh(x)), S.h(D).subs(v, x)),
    ((D - 2) * sp.cosh(2 * sp.atanh(x) / (D - 2)) * (sp.exp(-sp.log(1 - x ** 2) / (D - 2)) - 1),
     S.H(D).subs(v, x)),
    (e ** (-b) - (1 - x) ** (-b), S.h(D).subs(v, x)),
    (sp.Piecewise((e ** (-c), x > sp.S.Half), ((1 - x) ** (-c) - 1, True)), (1 - x) ** (-c) - 1),
    (z * (sp.asinh(z / 2) - z / (4 + sp.sqrt(4 + z ** 2))), S.q(2)),
])
def test_is_identity_rejects_wrong_forms(wrong, right):
    assert not S.is_identity(wrong, right)


def test_kernel_file_is_generated_by_sympy():
    assert S.KERNEL_PATH.read_text(encoding="utf-8") == S.generate_source(), \
        "flowkit/_kernels/potentials.py is stale or hand-edited: run python -m flowkit.symbolic"
    assert S.main(["--check"]) == 0


def test_generated_kernels_print_the_sympy_forms():
    source = S.generate_source()
    for kernel in S.KERNELS:
        assert sp.pycode(kernel.expr, fully_qualified_modules=True) in source
    # the printed code evaluates the expression it came from
    kernel = next(k for k in S.KERNELS if k.name == "_H_near1")
    code = sp.pycode(kernel.expr, fully_qualified_modules=True)
    value = eval(code, {"math": math}, {"x": 0.75, "e": 0.25, "D": 7})
    exact = S.H(7).subs(v, sp.Rational(3, 4))
    assert value == pytest.approx(float(exact), rel=1e-14)
