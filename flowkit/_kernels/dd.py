"""Double-double arithmetic in numba: a number is an unevaluated sum hi + lo of two
float64 with |lo| <= ulp(hi)/2, about 32 significant digits (unit roundoff ~1.1e-32).

Used by ``_kernels.xi`` for the one quantity of the flow that loses digits like
eps gamma~: the margin-offset rates gamma~ (a_k - pᵀa + Lambda), where pᵀa = 1
identically (flow.py, "Past XI_SWITCH").  No package in the index provides this for
numba, so it is written out here from the error-free transformations:

* ``two_sum``: Knuth's TwoSum, s + e = a + b exactly;
* ``two_prod``: Dekker's product with Veltkamp's split (no FMA in numba's math),
  p + e = a b exactly unless |a|, |b| > ~1e300;
* ``add``/``mul``/``div``: the "accurate" (IEEE-style) algorithms of the QD library
  (Hida, Li & Bailey 2001), relative error a few units of 2^-104;
* ``exp``: argument reduction by k log 2 and by 2^-4, a Taylor series to 2^-106,
  four squarings of expm1 (s <- 2 s + s², which keeps the small result's digits);
* ``log``: one Newton step x + a e^{-x} - 1 from the float64 logarithm.

Every function takes and returns (hi, lo) pairs as separate floats: tuples of two
floats stay in registers, and numba inlines these small functions.
"""
import math
from fractions import Fraction

import numpy as np
from numba import njit

_SPLIT = 134217729.0  # 2^27 + 1 (Veltkamp)
# log 2 to 107 bits: hi is math.log(2), lo the rest
LN2_HI = 0.6931471805599453
LN2_LO = 2.3190468138462996e-17
# exp: |r| <= log(2)/2 scaled by 2^-4 needs 15 Taylor terms for 2^-106; each squaring
# doubles the relative error, so few squarings (10 gave 2e-30, 4 give ~1e-31)
_EXP_SQUARINGS = 4
_INV_SCALE = 1.0 / 16.0  # 2^-_EXP_SQUARINGS
_TAYLOR_TERMS = 16


def _inverse_factorials(n):
    """1/k!, k = 0..n-1, as exact double-double pairs (rows hi, lo)."""
    out = np.empty((n, 2))
    fact = 1
    for k in range(n):
        fact *= max(k, 1)
        exact = Fraction(1, fact)
        out[k, 0] = float(exact)
        out[k, 1] = float(exact - Fraction(out[k, 0]))
    return out


_INV_FACT = _inverse_factorials(_TAYLOR_TERMS + 1)


@njit(cache=True, inline="always")
def two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


@njit(cache=True, inline="always")
def quick_two_sum(a, b):
    """two_sum for |a| >= |b|."""
    s = a + b
    return s, b - (s - a)


@njit(cache=True, inline="always")
def _split(a):
    t = _SPLIT * a
    hi = t - (t - a)
    return hi, a - hi


@njit(cache=True, inline="always")
def two_prod(a, b):
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


@njit(cache=True, inline="always")
def add(ah, al, bh, bl):
    s, e = two_sum(ah, bh)
    t, f = two_sum(al, bl)
    e += t
    s, e = quick_two_sum(s, e)
    e += f
    return quick_two_sum(s, e)


@njit(cache=True, inline="always")
def add_d(ah, al, b):
    s, e = two_sum(ah, b)
    e += al
    return quick_two_sum(s, e)


@njit(cache=True, inline="always")
def mul(ah, al, bh, bl):
    p, e = two_prod(ah, bh)
    e += ah * bl + al * bh
    return quick_two_sum(p, e)


@njit(cache=True, inline="always")
def mul_d(ah, al, b):
    p, e = two_prod(ah, b)
    e += al * b
    return quick_two_sum(p, e)


@njit(cache=True, inline="always")
def div(ah, al, bh, bl):
    q1 = ah / bh
    rh, rl = mul_d(bh, bl, q1)
    rh, rl = add(ah, al, -rh, -rl)
    q2 = rh / bh
    rh2, rl2 = mul_d(bh, bl, q2)
    rh, rl = add(rh, rl, -rh2, -rl2)
    q3 = rh / bh
    q1, q2 = quick_two_sum(q1, q2)
    return add_d(q1, q2, q3)


@njit(cache=True)
def exp(ah, al):
    """e^(ah + al) in double-double; 0 below -745, inf above 709.78."""
    if ah > 709.78:
        return math.inf, 0.0
    if ah < -745.0:
        return 0.0, 0.0
    k = math.floor(ah / LN2_HI + 0.5)
    # r = a - k log 2, exact to 2^-106 (k has at most 11 bits)
    th, tl = mul_d(LN2_HI, LN2_LO, k)
    rh, rl = add(ah, al, -th, -tl)
    rh *= _INV_SCALE
    rl *= _INV_SCALE
    # expm1(r) = r (1 + r (1/2! + r (1/3! + ...))) by Horner: |r| <= log(2)/32
    sh, sl = _INV_FACT[_TAYLOR_TERMS, 0], _INV_FACT[_TAYLOR_TERMS, 1]
    for n in range(_TAYLOR_TERMS - 1, 0, -1):
        sh, sl = mul(sh, sl, rh, rl)
        sh, sl = add(sh, sl, _INV_FACT[n, 0], _INV_FACT[n, 1])
    sh, sl = mul(sh, sl, rh, rl)
    for _ in range(_EXP_SQUARINGS):  # expm1(2 r) = 2 expm1(r) + expm1(r)^2
        qh, ql = mul(sh, sl, sh, sl)
        sh, sl = add(2.0 * sh, 2.0 * sl, qh, ql)
    sh, sl = add_d(sh, sl, 1.0)
    scale = math.ldexp(1.0, int(k))
    return sh * scale, sl * scale


@njit(cache=True)
def log(ah, al):
    """log(ah + al) for ah + al > 0 in double-double (NaN otherwise)."""
    if not ah > 0.0:
        return math.nan, 0.0
    x = math.log(ah)
    eh, el = exp(-x, 0.0)
    th, tl = mul(ah, al, eh, el)
    th, tl = add_d(th, tl, -1.0)
    return add_d(th, tl, x)
