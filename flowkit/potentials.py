"""The implicit-bias potentials of depth-D diagonal networks (math.md, "Implicit-bias
potentials"; Woodworth et al., paper eq. 6), evaluated in float64.

* ``h(v, D)``:  h_2(v) = 2 sinh v;  D > 2: h_D(v) = (1-v)^(-b) - (1+v)^(-b), b = D/(D-2),
  on -1 < v < 1;
* ``dh``: h_D';  ``H``: H_D = ∫_0^v h_D (H_2 = 2 cosh v - 2,
  H_D = ((D-2)/2)[(1-v)^(-2/(D-2)) + (1+v)^(-2/(D-2)) - 2]);
* ``q``: q_D(z) = z v - H_D(v), v = h_D^{-1}(z) (Legendre transform of H_D;
  q_2(z) = 2 - sqrt(4+z²) + z asinh(z/2));
* ``h_inv`` = ``dq``: q_D' = h_D^{-1};  ``d2q``: q_D'' = 1/h_D'(h_D^{-1}(z));
* ``Q(w, mu, D)`` = Σ_i q_D(w_i/μ).  As μ -> ∞, μ² Q_μ(w) -> ‖w‖₂² (D-2)/(4D) (D = 2: ‖w‖₂²/4);
  as μ -> 0, μ Q_μ(w) -> ‖w‖₁ for D > 2 (D = 2: μ Q_μ(w)/log(1/μ) -> ‖w‖₁).

The work is done by the numba kernels of :mod:`flowkit._kernels.potentials`, generated
from sympy by :mod:`flowkit.symbolic`; accuracy (tests/test_potentials.py, against
mpmath): a few ulp for h, h', H, q, q'' and h_D^{-1}, for |v| up to 1 - 1e-12 and |z| up to 1e12.

Every function accepts a scalar (returns a float) or an array of any shape (returns
a float64 array of that shape); depth must be an integer >= 2.
"""
from __future__ import annotations

import numpy as np

from ._kernels import potentials as _K
from .exceptions import ParameterError
from .problem import _check_depth, positive_float

__all__ = ["h", "dh", "H", "h_inv", "dq", "q", "d2q", "Q"]


def _values(name, values):
    """``values`` as a float64 array and whether it was a scalar."""
    arr = np.asarray(values)
    if arr.dtype.kind not in "iuf":  # bools, complex, strings and objects are not real numbers
        raise ParameterError(f"{name} must be a real number or array of real numbers; got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        raise ParameterError(f"{name} contains NaN or inf")
    return arr, arr.ndim == 0


def _apply(kernel, name, values, depth, open_interval=False):
    depth = _check_depth(depth)
    arr, scalar = _values(name, values)
    if open_interval and depth > 2 and arr.size and np.max(np.abs(arr)) >= 1.0:
        raise ParameterError(f"for depth {depth} > 2, h_D, h_D' and H_D are defined on -1 < {name} < 1; "
                             f"got |{name}| = {np.max(np.abs(arr))!r}")
    out = kernel(np.ascontiguousarray(arr.reshape(-1)), depth).reshape(arr.shape)
    return float(out) if scalar else out


def h(v, depth):
    """h_D(v) (math.md): 2 sinh v for D = 2; (1-v)^(-D/(D-2)) - (1+v)^(-D/(D-2)) on (-1, 1)."""
    return _apply(_K.h_array, "v", v, depth, open_interval=True)


def dh(v, depth):
    """h_D'(v)."""
    return _apply(_K.dh_array, "v", v, depth, open_interval=True)


def H(v, depth):
    """H_D(v) = ∫_0^v h_D (math.md): 2 cosh v - 2 for D = 2,
    ((D-2)/2)[(1-v)^(-2/(D-2)) + (1+v)^(-2/(D-2)) - 2] on (-1, 1) for D > 2."""
    return _apply(_K.H_array, "v", v, depth, open_interval=True)


def h_inv(z, depth):
    """h_D^{-1}(z) = q_D'(z): asinh(z/2) for D = 2, else the root in (-1, 1)
    (safeguarded Newton; relative error ~1e-16)."""
    return _apply(_K.h_inv_array, "z", z, depth)


dq = h_inv


def q(z, depth):
    """q_D(z) = z v - H_D(v), v = h_D^{-1}(z) (math.md: Legendre transform of H_D);
    q_2(z) = 2 - sqrt(4+z²) + z asinh(z/2).  Even, convex, q_D(z) ~ (D-2) z²/(4D) at 0."""
    return _apply(_K.q_array, "z", z, depth)


def d2q(z, depth):
    """q_D''(z) = 1/h_D'(h_D^{-1}(z)) (D = 2: 1/sqrt(4+z²))."""
    return _apply(_K.d2q_array, "z", z, depth)


def Q(w, mu, depth):
    """Q^D_μ(w) = Σ_i q_D(w_i/μ) (math.md, paper eq. 6), summed over every entry of w."""
    depth = _check_depth(depth)
    mu = positive_float("mu", mu)
    arr, _ = _values("w", w)
    with np.errstate(over="ignore"):
        scaled = np.ascontiguousarray(arr.reshape(-1)) / mu
    if not np.all(np.isfinite(scaled)):
        raise ParameterError(f"w/mu overflows float64 (mu = {mu!r})")
    return float(np.sum(_K.q_array(scaled, depth)))
