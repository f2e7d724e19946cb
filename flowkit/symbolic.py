"""Symbolic implicit-bias potentials (math.md, "Implicit-bias potentials") and the
generator of their numeric kernels, ``flowkit/_kernels/potentials.py``.

Definitions (math.md), with ``b = D/(D-2)`` and ``c = 2/(D-2) = b - 1``:

* ``h_2(v) = 2 sinh v``;  for D > 2, ``h_D(v) = (1-v)^(-b) - (1+v)^(-b)`` on (-1, 1);
* ``H_D(v) = ∫_0^v h_D``  (sympy integrates it here; math.md's closed forms
  ``2 cosh v - 2`` and ``((D-2)/2)[(1-v)^(-c) + (1+v)^(-c) - 2]`` are checked in the tests);
* ``q_D`` is the Legendre transform of ``H_D``: ``q_D(z) = z v - H_D(v)`` with
  ``v = h_D^{-1}(z)``.  Parametrised by v (``z = h_D(v)``, ``q = v h_D(v) - H_D(v)``) the
  chain rule gives ``q_D' = h_D^{-1}`` and ``q_D'' = 1/h_D'(h_D^{-1}(z))``.  For D = 2
  ``h_2^{-1}(z) = asinh(z/2)`` and ``q_2(z) = 2 - sqrt(4 + z²) + z asinh(z/2)``.

Besides the definitions this module holds the *numerically stable forms* the kernels
evaluate (``KERNELS``), each paired with the definition it must equal;
:func:`is_identity` proves the pairs equal (tests/test_symbolic.py runs it).  For D > 2
the kernels work on ``x = |v|`` and ``e = 1 - x`` (all functions are odd or even):

* ``x < 1/2``: ``1 - v²`` and ``(1+v)/(1-v)`` enter through ``log1p(-x²)`` and
  ``atanh x``, so that h_D (odd) and H_D (~ x²) keep full relative precision as x -> 0,
  where ``(1-x)^(-b) - (1+x)^(-b)`` cancels completely;
* ``x >= 1/2``: the forms take e (and 1 + x), which the caller holds exactly (``1 - x``
  is exact there, and h_D^{-1} solves for e itself): q_D'' ~ e^(b+1)/b would carry a
  relative error ~(b+1) eps/e if e were recovered from a rounded v near 1.  Powers are split
  as ``e^(-c)/e`` so that only the fractional exponent c is rounded (``e^(-b)`` would
  amplify the rounding of b by |log e|), and ``H_D`` is a sum of two ``expm1`` terms
  (``e^(-c) - 1`` once that no longer cancels), since for large D
  ``(1-v)^(-c) + (1+v)^(-c) - 2`` cancels to the last digit.

``generate_source()`` prints those forms with sympy's Python code printer into a numba
template (D = 2 branches, the |v| regime dispatch, a safeguarded Newton iteration for
h_D^{-1}, array loops); ``python -m flowkit.symbolic`` rewrites the kernel file and
``--check`` only compares.  The numeric path never imports this module.
"""
from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path
from typing import NamedTuple

import sympy as sp
from sympy.codegen.cfunctions import expm1, hypot, log1p
from sympy.printing.pycode import pycode

__all__ = [
    "D", "v", "z", "x", "e", "h_inv",
    "h", "dh", "H", "h_inv_2", "q", "dq", "d2q", "legendre_parametric", "q_small_z_series",
    "is_identity", "Kernel", "KERNELS", "generate_source", "KERNEL_PATH", "main",
]

D = sp.Symbol("D", positive=True)  # depth; D > 2 wherever it stays symbolic
v = sp.Symbol("v", real=True)
z = sp.Symbol("z", real=True)
x = sp.Symbol("x", nonnegative=True)  # |v| in the kernels
e = sp.Symbol("e", positive=True)  # 1 - |v|, carried exactly near |v| = 1
h_inv = sp.Function("h_inv")  # h_D^{-1}: no closed form for D > 2

KERNEL_PATH = Path(__file__).resolve().parent / "_kernels" / "potentials.py"

# Auxiliary symbols of is_identity: x = (1-k)/(1+k) maps k > 0 onto x in (-1, 1) with
# 1 - x and 1 + x manifestly positive, and D = 2 + 2/c maps c > 0 onto D > 2.
_k = sp.Symbol("k", positive=True)
_c = sp.Symbol("c", positive=True)


def _exponents(depth):
    return depth / (depth - 2), 2 / (depth - 2)  # b, c


def h(depth=D):
    """h_D(v) (math.md): ``2 sinh v`` for D = 2, else ``(1-v)^(-b) - (1+v)^(-b)``."""
    if depth == 2:
        return 2 * sp.sinh(v)
    b, _ = _exponents(depth)
    return (1 - v) ** (-b) - (1 + v) ** (-b)


def dh(depth=D):
    """h_D'(v)."""
    return sp.diff(h(depth), v)


def H(depth=D):
    """H_D(v) = ∫_0^v h_D, integrated by sympy (D > 2: valid as long as b != 1, i.e. D finite)."""
    s = sp.Dummy("s")
    integral = sp.integrate(h(depth).subs(v, s), (s, 0, v), conds="none")
    return integral if depth == 2 else sp.factor_terms(integral)


def h_inv_2():
    """h_2^{-1}(z): h_2 = k f(v) with f = sinh invertible on the reals, so v = f^{-1}(z/k)."""
    k, f = h(2).as_coeff_Mul()
    return f.inverse()(z / k)


def legendre_parametric(depth=D):
    """(z, q) as functions of v: z = h_D(v), q = v h_D(v) - H_D(v) (Legendre transform)."""
    return h(depth), v * h(depth) - H(depth)


def _inverse(depth):
    return h_inv_2() if depth == 2 else h_inv(z)


def q(depth=D):
    """q_D(z) = z h_D^{-1}(z) - H_D(h_D^{-1}(z)); closed form for D = 2, where sympy
    evaluates cosh(asinh(z/2)) = sqrt(1 + z²/4)."""
    V = _inverse(depth)
    return z * V - H(depth).subs(v, V)


def _chain_rule(depth, order):
    """d^order q/dz^order as a function of v, by the chain rule on the Legendre
    parametrisation z = h_D(v), q = v h_D(v) - H_D(v), with H_D' = h_D (its definition)."""
    antiderivative = sp.Function("H_D")(v)
    zv, qv = h(depth), v * h(depth) - antiderivative
    for _ in range(order):
        qv = (sp.diff(qv, v) / sp.diff(zv, v)).subs(sp.Derivative(antiderivative, v), h(depth))
    return qv


def dq(depth=D):
    """q_D'(z) = h_D^{-1}(z), derived by the chain rule (the result is v, then v -> h_D^{-1}(z))."""
    return _chain_rule(depth, 1).subs(v, _inverse(depth))


def d2q(depth=D):
    """q_D''(z) = 1/h_D'(h_D^{-1}(z)), derived by the chain rule."""
    return _chain_rule(depth, 2).subs(v, _inverse(depth))


def q_small_z_series(depth=D, order=4):
    """Taylor polynomial of q_D at z = 0 up to z**order, by series reversion.

    h_D is odd with h_D'(0) > 0, so v = h_D^{-1}(z) = Σ β_k z^k is found by matching
    h_D(Σ β_k z^k) = z order by order, and q_D = ∫_0^z h_D^{-1}.
    """
    hs = sp.series(h(depth), v, 0, order + 1).removeO()
    betas = sp.symbols(f"beta1:{order + 1}")
    V = sum(beta * z ** (i + 1) for i, beta in enumerate(betas))
    lhs = sp.expand(hs.subs(v, V))
    eqs = [sp.Eq(lhs.coeff(z, k), 1 if k == 1 else 0) for k in range(1, order + 1)]
    (sol,) = sp.solve(eqs, betas, dict=True)
    return sp.integrate(V.subs(sol), (z, 0, z)).expand()


# ---------------------------------------------------------------- identities


def _expand_special(expr):
    """Replace the code-printer functions by their definitions."""
    expr = expr.doit()  # UnevaluatedExpr
    expr = expr.replace(expm1, lambda a: sp.exp(a) - 1).replace(log1p, lambda a: sp.log(1 + a))
    return expr.replace(hypot, lambda a, b: sp.sqrt(a ** 2 + b ** 2))


def _normal_powers(expr):
    """Factor every power's base, then split and denest the powers (bases are positive)."""
    expr = expr.replace(lambda t: t.is_Pow, lambda t: sp.Pow(sp.factor(t.base), t.exp))
    return sp.powdenest(sp.expand_power_base(expr, force=True), force=True)


def _to_domain(expr):
    """Substitute v, x = (1-k)/(1+k), e = 1 - x, D = 2 + 2/c and normalise powers/logs
    (legitimate: every base and log argument is then a positive function of k > 0)."""
    expr = _expand_special(expr)
    expr = expr.subs(e, 1 - x).subs(D, 2 + 2 / _c)
    expr = expr.replace(sp.atanh, lambda a: (sp.log(1 + a) - sp.log(1 - a)) / 2).rewrite(sp.exp)
    expr = expr.subs({x: (1 - _k) / (1 + _k), v: (1 - _k) / (1 + _k)})
    expr = expr.replace(sp.log, lambda a: sp.log(sp.factor(a)))
    return _normal_powers(sp.expand_log(expr, force=True))


def _branches(expr):
    """Every expression obtained by choosing one piece of each Piecewise."""
    pws = sorted(expr.atoms(sp.Piecewise), key=sp.default_sort_key)
    for choice in itertools.product(*[[arg.expr for arg in pw.args] for pw in pws]):
        yield expr.xreplace(dict(zip(pws, choice)))


def is_identity(lhs, rhs):
    """True iff sympy proves lhs == rhs, for every piece of every Piecewise in lhs.

    Expressions in D (> 2) and v or x (= |v|, with e = 1 - x) are compared on
    -1 < v < 1 through v = (1-k)/(1+k), D = 2 + 2/c with k, c > 0; expressions without
    D (the D = 2 case) on the real line.  False means "not proven", not "different".
    """
    on_interval = lhs.has(D) or rhs.has(D)

    def vanishes(a, b, thorough):
        if on_interval:
            diff = _to_domain(a) - _to_domain(b)
        else:
            diff = _expand_special(a) - _expand_special(b)
        if thorough:  # simplify() is slow on sums of powers: only when the normal form failed
            return sp.simplify(diff) == 0 or sp.simplify(diff.rewrite(sp.exp)) == 0
        for _ in range(2):
            diff = sp.powsimp(sp.expand(_normal_powers(sp.expand(diff))), force=True)
        return diff == 0

    def proven(p):
        # 1/(sum of powers) may normalise where the sum's reciprocal did not
        pairs = [(p, rhs), (1 / p, 1 / rhs)]
        return any(vanishes(a, b, thorough) for thorough in (False, True) for a, b in pairs)

    return all(proven(p) for p in _branches(lhs))


# ---------------------------------------------------------------- stable forms


class Kernel(NamedTuple):
    """One generated numba function: ``name(*params)`` returns ``expr``, which must equal
    ``definition`` (same parameters; e stands for 1 - x)."""

    name: str
    params: tuple
    expr: sp.Expr
    definition: sp.Expr
    doc: str


def _stable_forms():
    b, c = _exponents(D)
    U = sp.UnevaluatedExpr  # keeps e^(-c)/e from being merged into e^(-b) (see module doc)
    h_near0 = 2 * sp.exp(-(b / 2) * log1p(-x ** 2)) * sp.sinh(b * sp.atanh(x))
    h_near1 = U(e ** (-c)) / e - U((1 + x) ** (-c)) / (1 + x)
    dh_xe = b * (U(e ** (-c)) / e ** 2 + U((1 + x) ** (-c)) / (1 + x) ** 2)
    s, t = -log1p(-x ** 2) / (D - 2), 2 * sp.atanh(x) / (D - 2)
    # both terms >= 0 for x >= 0: no cancellation as x -> 0, where H_D ~ b x²
    H_near0 = (D - 2) * (expm1(s) * sp.cosh(t) + 2 * sp.sinh(t / 2) ** 2)
    # (1-x)^(-c) - 1: the power is more accurate than expm1(c |log e|) once that exceeds 1
    lead = sp.Piecewise((e ** (-c) - 1, c * sp.log(e) < -1), (expm1(-c * sp.log(e)), True))
    H_near1 = (D - 2) / 2 * (lead + expm1(-c * log1p(x)))

    at_x = {v: x}
    H_D, dh_D = H(D).subs(at_x), dh(D).subs(at_x)
    legendre = q(D).subs(h_inv(z), x)  # z x - H_D(x): z = |z|, x = h_D^{-1}(|z|)
    q_near0, q_near1 = z * x - H_near0, z * x - H_near1
    return [
        Kernel("_h_2", (v,), h(2), h(2), "h_2(v) = 2 sinh v."),
        Kernel("_dh_2", (v,), dh(2), dh(2), "h_2'(v) = 2 cosh v."),
        Kernel("_H_2", (v,), 4 * sp.sinh(v / 2) ** 2, H(2),
               "H_2(v) = 2 cosh v - 2 = 4 sinh²(v/2), without the cancellation near v = 0."),
        Kernel("_h_inv_2", (z,), h_inv_2(), h_inv_2(), "h_2^{-1}(z) = asinh(z/2)."),
        Kernel("_q_2", (z,), z * (sp.asinh(z / 2) - z / (2 + hypot(2, z))), q(2),
               "q_2(z) = 2 - sqrt(4+z²) + z asinh(z/2), with 2 - sqrt(4+z²) = -z²/(2 + sqrt(4+z²))\n"
               "(the difference is 0 in float64 for |z| < 1e-8) and sqrt(4+z²) = hypot(2, z)."),
        Kernel("_d2q_2", (z,), 1 / hypot(2, z), d2q(2), "q_2''(z) = 1/h_2'(asinh(z/2)) = 1/sqrt(4+z²)."),
        Kernel("_h_near0", (x, D), h_near0, h(D).subs(at_x),
               "h_D(x) = 2 (1-x²)^(-b/2) sinh(b atanh x), for 0 <= x < 1/2."),
        Kernel("_h_near1", (x, e, D), h_near1, h(D).subs(at_x),
               "h_D(x) = e^(-c)/e - (1+x)^(-c)/(1+x), e = 1 - x, for 1/2 <= x < 1."),
        Kernel("_dh_xe", (x, e, D), dh_xe, dh_D,
               "h_D'(x) = b [e^(-c)/e² + (1+x)^(-c)/(1+x)²], e = 1 - x: a sum of positive terms."),
        Kernel("_H_near0", (x, D), H_near0, H_D,
               "H_D(x) = (D-2) [expm1(s) cosh t + 2 sinh²(t/2)], s = -log(1-x²)/(D-2),\n"
               "t = 2 atanh(x)/(D-2), for 0 <= x < 1/2."),
        Kernel("_H_near1", (x, e, D), H_near1, H_D,
               "H_D(x) = ((D-2)/2) [((1-x)^(-c) - 1) + ((1+x)^(-c) - 1)], e = 1 - x, for 1/2 <= x < 1."),
        Kernel("_q_near0", (z, x, D), q_near0, legendre,
               "q_D(z) = z x - H_D(x) with x = h_D^{-1}(z) < 1/2 (z >= 0)."),
        Kernel("_q_near1", (z, x, e, D), q_near1, legendre,
               "q_D(z) = z x - H_D(x) with x = h_D^{-1}(z) >= 1/2, e = 1 - x (z >= 0)."),
        Kernel("_d2q_xe", (x, e, D), 1 / dh_xe, d2q(D).subs(h_inv(z), x),
               "q_D''(z) = 1/h_D'(x), x = h_D^{-1}(z), e = 1 - x."),
    ]


KERNELS = _stable_forms()

# ---------------------------------------------------------------- code generation

_HEADER = '''\
"""Numba kernels of the implicit-bias potentials (math.md, "Implicit-bias potentials").

GENERATED by flowkit.symbolic.generate_source() -- do not edit by hand; regenerate with
``python -m flowkit.symbolic``.  Every formula in the private kernels was printed by
sympy from an expression that tests/test_symbolic.py proves equal to its definition
(flowkit/symbolic.py explains the forms); only the regime dispatch, the Newton
iteration for h_D^{{-1}} and the array loops are template code.

Scalar kernels take a float v or z and an integer D >= 2: h, dh (= h_D'), H, h_inv,
q and d2q (= q_D'').  For D > 2 they return NaN for |v| >= 1 (the public API in
flowkit.potentials validates its input first).  ``<name>_array(values, D)`` maps a
scalar kernel over a 1-d float64 array.

For D > 2 the kernels use the symmetry of each function and work on x = |v| and
e = 1 - x, switching forms at x = {switch}: below it e would not add precision and
the x-forms avoid cancellation; above it 1 - x is exact and e carries the digits
that a rounded v near 1 has lost.
"""
import math

import numpy as np
from numba import njit

X_SWITCH = {switch}  # |v| where the kernels change from the x-forms to the e-forms
MAX_ITER = 100
# Newton stops once a step is below a few ulp: quadratic convergence has then already
# pushed the error far below rounding noise.
STEP_TOL = 4.0 * 2.220446049250313e-16
'''

_KERNEL = '''

@njit(cache=True, error_model="numpy")
def {name}({params}):
    """{doc}"""
    return {code}
'''

_TEMPLATE = '''

# ---------------------------------------------------------------- h_D^{-1} (template)


@njit(cache=True, error_model="numpy")
def _h_inv_near0(a, D):
    """x in [0, 1/2] with h_D(x) = a, for 0 <= a <= h_D(1/2), D > 2.

    h_D is increasing and convex on [0, 1) with h_D(0) = 0, so the root lies in
    [a/h_D'(1/2), a/h_D'(0)] and Newton from the upper end decreases monotonically;
    bisection is the fallback if rounding ever pushes an iterate out of the bracket.
    """
    lo = a / _dh_xe(X_SWITCH, 1.0 - X_SWITCH, D)
    hi = min(a / _dh_xe(0.0, 1.0, D), X_SWITCH)
    x = hi
    for _ in range(MAX_ITER):
        f = _h_near0(x, D) - a
        if f == 0.0:
            return x
        if f > 0.0:
            hi = x
        else:
            lo = x
        xn = x - f / _dh_xe(x, 1.0 - x, D)
        if not lo <= xn <= hi:
            xn = 0.5 * (lo + hi)
        if abs(xn - x) <= STEP_TOL * xn:
            return xn
        x = xn
    return x


@njit(cache=True, error_model="numpy")
def _h_inv_near1(a, D):
    """e = 1 - x in (0, 1/2] with h_D(x) = a, for a >= h_D(1/2), D > 2.

    Solved for e itself, so that e keeps full relative precision as x -> 1.  On
    e <= 1/2, (2/3) e^(-b) <= h_D <= e^(-b), which brackets e; the iteration is Newton
    on log h_D as a function of log e (nearly linear, slope -> -b), applied as a
    multiplicative update of e; geometric bisection is the fallback.
    """
    b = D / (D - 2.0)
    lo = (2.0 / (3.0 * a)) ** (1.0 / b) * (1.0 - 1e-12)
    hi = min(a ** (-1.0 / b) * (1.0 + 1e-12), 1.0 - X_SWITCH)
    e = hi  # the asymptote (1 - v)^(-b) ~ z
    for _ in range(MAX_ITER):
        x = 1.0 - e
        hx = _h_near1(x, e, D)
        r = (hx - a) / a
        if r == 0.0:
            return e
        if r > 0.0:
            lo = e
        else:
            hi = e
        en = e * math.exp(math.log1p(r) * hx / (e * _dh_xe(x, e, D)))
        if not lo <= en <= hi:
            en = math.sqrt(lo) * math.sqrt(hi)
        if abs(en - e) <= STEP_TOL * en:
            return en
        e = en
    return e


@njit(cache=True, error_model="numpy")
def _h_inv_xe(a, D):
    """(x, e) = (h_D^{-1}(a), 1 - h_D^{-1}(a)) for a >= 0, D > 2."""
    if a < _h_near1(X_SWITCH, 1.0 - X_SWITCH, D):
        x = _h_inv_near0(a, D)
        return x, 1.0 - x
    e = _h_inv_near1(a, D)
    return 1.0 - e, e


# ---------------------------------------------------------------- scalar kernels


@njit(cache=True, error_model="numpy")
def h(v, D):
    """h_D(v); NaN for D > 2 and |v| >= 1."""
    if D == 2:
        return _h_2(v)
    x = abs(v)
    if not x < 1.0:
        return math.nan
    if x < X_SWITCH:
        return math.copysign(_h_near0(x, D), v)
    return math.copysign(_h_near1(x, 1.0 - x, D), v)


@njit(cache=True, error_model="numpy")
def dh(v, D):
    """h_D'(v); NaN for D > 2 and |v| >= 1."""
    if D == 2:
        return _dh_2(v)
    x = abs(v)
    if not x < 1.0:
        return math.nan
    return _dh_xe(x, 1.0 - x, D)


@njit(cache=True, error_model="numpy")
def H(v, D):
    """H_D(v) = ∫_0^v h_D; NaN for D > 2 and |v| >= 1."""
    if D == 2:
        return _H_2(v)
    x = abs(v)
    if not x < 1.0:
        return math.nan
    if x < X_SWITCH:
        return _H_near0(x, D)
    return _H_near1(x, 1.0 - x, D)


@njit(cache=True, error_model="numpy")
def h_inv(z, D):
    """h_D^{-1}(z) = q_D'(z)."""
    if D == 2:
        return _h_inv_2(z)
    if not abs(z) <= 1.7976931348623157e308:
        return math.nan
    x, _ = _h_inv_xe(abs(z), D)
    return math.copysign(x, z)


@njit(cache=True, error_model="numpy")
def q(z, D):
    """q_D(z), the Legendre transform of H_D."""
    if D == 2:
        return _q_2(z)
    a = abs(z)
    if not a <= 1.7976931348623157e308:
        return math.nan
    x, e = _h_inv_xe(a, D)
    if x < X_SWITCH:
        return _q_near0(a, x, D)
    return _q_near1(a, x, e, D)


@njit(cache=True, error_model="numpy")
def d2q(z, D):
    """q_D''(z) = 1/h_D'(h_D^{-1}(z))."""
    if D == 2:
        return _d2q_2(z)
    a = abs(z)
    if not a <= 1.7976931348623157e308:
        return math.nan
    x, e = _h_inv_xe(a, D)
    return _d2q_xe(x, e, D)


# ---------------------------------------------------------------- array kernels
'''

_ARRAY = '''

@njit(cache=True, error_model="numpy")
def {name}_array(values, D):
    """{name}(value, D) for each value of a 1-d float64 array, as a new array."""
    out = np.empty(values.shape[0])
    for i in range(values.shape[0]):
        out[i] = {name}(values[i], D)
    return out
'''

_SWITCH = "0.5"
PUBLIC_KERNELS = ("h", "dh", "H", "h_inv", "q", "d2q")


def _kernel_source(kernel):
    code = pycode(kernel.expr, fully_qualified_modules=True)
    doc = kernel.doc.replace("\n", "\n    ")
    return _KERNEL.format(name=kernel.name, params=", ".join(map(str, kernel.params)), doc=doc, code=code)


def generate_source():
    """The full text of flowkit/_kernels/potentials.py."""
    parts = [_HEADER.format(switch=_SWITCH)]
    parts += [_kernel_source(k) for k in KERNELS]
    parts.append(_TEMPLATE)
    parts += [_ARRAY.format(name=name) for name in PUBLIC_KERNELS]
    return "".join(parts)


def main(argv=None):
    """``python -m flowkit.symbolic [--check]``: rewrite (or compare) the kernel file."""
    parser = argparse.ArgumentParser(prog="python -m flowkit.symbolic", description=main.__doc__)
    parser.add_argument("--check", action="store_true",
                        help="exit with status 1 if the kernel file differs from the generated source")
    args = parser.parse_args(argv)
    source = generate_source()
    if args.check:
        current = KERNEL_PATH.read_text(encoding="utf-8") if KERNEL_PATH.exists() else ""
        if current != source:
            print(f"{KERNEL_PATH} is out of date; run python -m flowkit.symbolic", file=sys.stderr)
            return 1
        return 0
    KERNEL_PATH.write_text(source, encoding="utf-8")
    print(f"wrote {KERNEL_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
