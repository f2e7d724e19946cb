"""Max-margin predictors: the points trajectories are judged against (math.md,
"Max-margin problems").  One facade, one file per problem:

* ``l2``   min ‖w‖₂        (QP; the kernel regime, Theorem 4)
* ``l1``   min ‖w‖₁        (LP; the rich limit for D = 2, Theorem 7; may be a whole face)
* ``q``    min Q^D_μ(w)    (smooth concave dual; the intermediate regime, Theorem 6)
* ``l2d``  ‖w‖_{2/D} KKT points (multi-start; the rich limit for D > 2, Theorem 2)

all subject to X̃ w >= 1, each returning a :class:`MaxMargin` with its KKT certificate.
"""
from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from ..exceptions import NumericalRangeError, ParameterError
from ..problem import _check_depth, check_kind, data_scale, positive_float, separable_tilde
from .common import L1Face, MaxMargin
from .l1 import solve_l1
from .l2 import solve_l2
from .l2d import solve_l2d
from .q import solve_q

__all__ = ["max_margin", "MaxMargin", "L1Face", "KINDS", "MU_RANGE"]

KINDS = ("l2", "l1", "Q", "l2/D")
# μ range in which the Q solver is tested (both ends: tests/test_maxmargin.py)
MU_RANGE = (1e-6, 1e6)


def check_mu(mu):
    mu = positive_float("mu", mu)
    if not MU_RANGE[0] <= mu <= MU_RANGE[1]:
        raise NumericalRangeError(
            f"mu = {mu:g} is outside the range the Q solver is validated for "
            f"[{MU_RANGE[0]:g}, {MU_RANGE[1]:g}]; use kind='l2' for mu -> inf "
            "(and kind='l1' or 'l2/D' for mu -> 0)")
    return mu


# each kind's dual and objective on data s·X̃ in terms of those on X̃ (w scales as 1/s):
# l2: w = X̃ᵀν; l1: |X̃ᵀν|∞ <= 1; Q: w = μ h(X̃ᵀν) with μ -> sμ; l2/D: ∇‖w‖^p = X̃ᵀν, p = 2/D
def _dual_power(kind, depth):
    return {"l2": -2.0, "l1": -1.0, "Q": -1.0}.get(kind, -2.0 / (depth or 2))


def _unscaled(out, s, mu):
    """The result ``out`` on X̃/s as the result on X̃ (max_margin solved the scaled data)."""
    face = out.face
    if face is not None:
        face = dataclasses.replace(face, vertices=face.vertices / s)
    # the dual can leave float64 where w does not (l2 at data scale 1e∓200: ν ~ 1e±400):
    # inf or 0 then; ``kkt_residual`` is the certificate of the scaled solve (the residuals
    # are relative, the same on both scales)
    with np.errstate(over="ignore", invalid="ignore"):
        factor = np.exp2(np.float64((math.frexp(s)[1] - 1) * _dual_power(out.kind, out.depth)))
        dual = np.where(out.dual != 0, out.dual * factor, 0.0)
    return dataclasses.replace(
        out, w=out.w / s, dual=dual,
        objective=out.objective if out.kind == "Q" else out.objective / s,
        mu=mu if out.kind == "Q" else out.mu, face=face,
        kkt_points=tuple(_unscaled(p, s, mu) for p in out.kkt_points),
        info=dict(out.info, data_scale=s))


def max_margin(X, y, kind, *, mu=None, depth=2, starts=32, seed=0):
    """Max-margin predictor of kind "l2", "l1", "Q" (needs ``mu``) or "l2/D" (uses
    ``depth``; ``starts`` random restarts from ``seed``) for separable data (X, y).

    Returns a :class:`MaxMargin`: ``w`` with minimum margin exactly 1, ``support``,
    ``dual`` (ν), ``kkt_residual``, ``objective``; for "l1" ``unique`` and, when the
    optimum is a face, ``face`` (its vertices); for "l2/D" ``kkt_points``, best first.
    """
    check_kind(kind, KINDS, "mu", mu, "the Q^D_mu scale")
    depth = _check_depth(depth)
    Xt = separable_tilde(X, y)
    s = data_scale(Xt)  # the network flow's scaling (problem.py): solver tolerances are absolute
    if kind == "Q":
        # Q^D_μ on s·X̃ is Q^D_{sμ} on X̃ (w scaled by 1/s): the range holds for sμ
        mu = positive_float("mu", mu)
        try:
            check_mu(mu * s)
        except NumericalRangeError:
            raise NumericalRangeError(
                f"mu = {mu:g} is outside the range the Q solver is validated for, "
                f"[{MU_RANGE[0]:g}, {MU_RANGE[1]:g}] divided by the data's scale {s:g} "
                "(max |x|); use kind='l2' for mu -> inf (and kind='l1' or 'l2/D' for mu -> 0)") from None
    if kind == "l2/D" and (isinstance(starts, bool) or not isinstance(starts, int) or starts < 1):
        raise ParameterError(f"starts must be a positive integer; got {starts!r}")
    t0 = time.perf_counter()
    Xs = Xt / s  # exact: s is a power of two
    if kind == "l2":
        out = solve_l2(Xs)
    elif kind == "l1":
        out = solve_l1(Xs)
    elif kind == "Q":
        out = solve_q(Xs, mu * s, depth)
    else:
        out = solve_l2d(Xs, depth, starts=starts, seed=seed)
    if s != 1.0:
        out = _unscaled(out, s, mu)
    out.info["seconds"] = time.perf_counter() - t0
    if not math.isfinite(out.kkt_residual):  # pragma: no cover - defensive
        raise NumericalRangeError(f"{kind} max-margin solve did not converge")
    return out
