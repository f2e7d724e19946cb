"""Max-margin predictors: the points trajectories are judged against (math.md,
"Max-margin problems").  One facade, one file per problem:

* ``l2``   min ‖w‖₂        (QP; the kernel regime, Theorem 4)
* ``l1``   min ‖w‖₁        (LP; the rich limit for D = 2, Theorem 7; may be a whole face)
* ``q``    min Q^D_μ(w)    (smooth concave dual; the intermediate regime, Theorem 6)
* ``l2d``  ‖w‖_{2/D} KKT points (multi-start; the rich limit for D > 2, Theorem 2)

all subject to X̃ w >= 1, each returning a :class:`MaxMargin` with its KKT certificate.
"""
from __future__ import annotations

import math
import time

from ..exceptions import NumericalRangeError, ParameterError
from ..problem import _check_depth, positive_float, separable_tilde
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


def max_margin(X, y, kind, *, mu=None, depth=2, starts=32, seed=0):
    """Max-margin predictor of kind "l2", "l1", "Q" (needs ``mu``) or "l2/D" (uses
    ``depth``; ``starts`` random restarts from ``seed``) for separable data (X, y).

    Returns a :class:`MaxMargin`: ``w`` with minimum margin exactly 1, ``support``,
    ``dual`` (ν), ``kkt_residual``, ``objective``; for "l1" ``unique`` and, when the
    optimum is a face, ``face`` (its vertices); for "l2/D" ``kkt_points``, best first.
    """
    if kind not in KINDS:
        raise ParameterError(f"kind must be one of {', '.join(map(repr, KINDS))}; got {kind!r}")
    if kind == "Q" and mu is None:
        raise ParameterError("kind='Q' needs mu (the Q^D_mu scale, > 0)")
    if kind != "Q" and mu is not None:
        raise ParameterError(f"mu applies to kind='Q' only; got mu={mu!r} with kind={kind!r}")
    depth = _check_depth(depth)
    Xt = separable_tilde(X, y)
    t0 = time.perf_counter()
    if kind == "l2":
        out = solve_l2(Xt)
    elif kind == "l1":
        out = solve_l1(Xt)
    elif kind == "Q":
        out = solve_q(Xt, check_mu(mu), depth)
    else:
        if isinstance(starts, bool) or not isinstance(starts, int) or starts < 1:
            raise ParameterError(f"starts must be a positive integer; got {starts!r}")
        out = solve_l2d(Xt, depth, starts=starts, seed=seed)
    out.info["seconds"] = time.perf_counter() - t0
    if not math.isfinite(out.kkt_residual):  # pragma: no cover - defensive
        raise NumericalRangeError(f"{kind} max-margin solve did not converge")
    return out
