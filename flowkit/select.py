"""The one place where a run's engine is chosen: model x linear algebra x method.

``select`` is what ``flowkit.integrate`` calls and ``replay`` what ``store.load`` calls; the
choice is recorded as ``stats["linalg"]`` and replayed from there.  The linear algebra:

* ``"dense"``: LAPACK LU of the (d + 1 + N)-sized Newton matrices (flow.py);
* ``"structured"``: the same primal state, with the Jacobian kept as diagonal plus low
  rank and factorised by Woodbury / a Schur complement of size N (structured.py); Radau
  and BDF only; chosen for d >> N by ``structured_pays``;
* ``"dual"``: the flow in N unknowns (dual.py); Radau only and no user atol (an atol is on
  the primal state); chosen for d >> N by ``dual_pays``, which supersedes the structured
  path where both hold.

The linearised model runs on its own dense Jacobian only: flow.py's structured Jacobians
are the network's (before, ``model="linearized"`` at d >> N was integrated with the wrong
model's Jacobian: 3,937 right-hand sides instead of 2,462 at N = 10, d = 300).
"""
from __future__ import annotations

import math

import numpy as np

from .dual import DualFlow
from .exceptions import ParameterError
from .flow import Flow
from .linearized import LinearizedFlow
from .structured import structured_pays

__all__ = ["select", "select_step", "replay", "structured_pays", "dual_pays", "LINALG", "STRUCTURED_METHODS",
           "STEPS"]

LINALG = ("auto", "dense", "structured", "dual")
STEPS = ("scipy", "compiled")
STRUCTURED_METHODS = ("Radau", "BDF")

_EPS = np.finfo(float).eps
# Largest log R = log(gamma~/alpha^D) of the dual form: its weights E1 ~ (w/alpha^D)^{(2D-2)/D}
# are not rescaled (the primal kernels shift them by their largest exponent), so they must
# stay far from overflow.
_MAX_LOG_R = 230.0


def dual_pays(problem, gamma, rtol, method="Radau"):
    """Whether the dual form pays for a run to training accuracy gamma:
    Radau (measured, N = 10, d = 300, D = 2, gamma~ = 1e4, rtol 1e-8, error of w_hat against
    rtol 1e-12: Radau 3e-12 on the dual state; but LSODA 5e-7 against 4e-10 on the primal
    one, BDF 2.5e-8 against 5e-9 -- an error on zeta reaches w through Xtᵀ and an
    exponential, and the multistep methods' estimates let more of it through), many more
    features than samples, d >= 4 (N + 1) and d + N >= 100 (measured, to gamma~ =
    1e4, D = 2, against the primal path's own best: 0.42 s against 0.60 s at N = 6,
    d = 100; 0.44 s against 0.38 s at N = 5, d = 40; 1.3 s against 2.4 s at N = 50,
    d = 1000), and, for D > 2, the precision bound of dual.py's docstring below rtol/10 at
    R = gamma/alpha^D; and distinct samples: the dual form carries one zeta and one xi per
    sample, and copies' split along a direction nothing restores stalled Radau (N = 8 + 3
    copies, d = 200, D = 2: "more than 50000 steps" at gamma~ = 3.6e13; the primal path,
    which shares one offset per group, runs to 1e20 in 1,899 steps)."""
    if method != "Radau":
        return False
    if isinstance(rtol, bool) or not isinstance(rtol, (int, float, np.floating)) or not rtol > 0:
        return False  # Flow reports the bad rtol
    N, d = problem.n_samples, problem.n_features
    if not (d >= 4 * (N + 1) and d + N >= 100):
        return False
    if np.unique(problem.Xt, axis=0).shape[0] < N:
        return False
    log_R = math.log(gamma) - problem.log_alpha_D
    if log_R > _MAX_LOG_R:
        return False
    D = float(problem.depth)
    if D == 2:
        return True
    a = D - 2.0
    return math.log(D / a * _EPS) + a / D * max(log_R, 0.0) < math.log(rtol / 10.0)


def primal_linalg(problem, method, linalg):
    """"dense" or "structured" for flow.py's primal state ("auto": ``structured_pays``)."""
    if linalg not in ("auto", "dense", "structured"):
        raise ParameterError(f"linalg must be one of ('auto', 'dense', 'structured') for the "
                             f"primal state; got {linalg!r}")
    if linalg == "structured" and method not in STRUCTURED_METHODS:
        raise ParameterError(f"linalg='structured' needs method in {list(STRUCTURED_METHODS)}; got {method!r}")
    if linalg == "auto":
        pays = method in STRUCTURED_METHODS and structured_pays(problem.n_samples, problem.n_features)
        return "structured" if pays else "dense"
    return linalg


def select(problem, *, gamma, method="Radau", rtol=1e-10, atol=None, linalg="auto",
           model="nonlinear"):
    """(flow class, linear algebra) for a run to training accuracy ``gamma``."""
    if not isinstance(linalg, str) or linalg not in LINALG:
        raise ParameterError(f"linalg must be one of {LINALG}; got {linalg!r}")
    if model == "linearized":
        if linalg not in ("auto", "dense"):
            raise ParameterError(f"the linearised model runs with linalg='dense' only; got {linalg!r}")
        return LinearizedFlow, "dense"
    if linalg == "dual":
        if method != "Radau":
            raise ParameterError(f"linalg='dual' needs method='Radau'; got {method!r}")
        if atol is not None:
            raise ParameterError("linalg='dual' takes no atol (an atol is on the primal state y)")
        return DualFlow, "dual"
    if linalg == "auto" and atol is None and dual_pays(problem, gamma, rtol, method):
        return DualFlow, "dual"
    return Flow, primal_linalg(problem, method, linalg)


def select_step(step, *, method, linalg, model="nonlinear"):
    """The Radau step for the chosen engine: "scipy" (radau.ThetaRadau, the reference) or
    "compiled" (compiled.CompiledRadau, scipy's step in numba: the same steps to rounding).
    The compiled step has the flow's dense kernels only (_kernels/flow_step.py), so it
    needs method="Radau", the primal state with linalg "dense" and the network's model;
    it is not the default yet because on a machine's first run it compiles for ~12 s
    (the step, once) plus ~4 s per state-variable mode (each mode's loop binding the
    flow's kernels), after which numba's cache loads it in ~0.05 s: as the default it
    would take the first ``flowkit run`` past the 15 s of benchmarks/startup.md."""
    if not isinstance(step, str) or step not in STEPS:
        raise ParameterError(f"step must be one of {STEPS}; got {step!r}")
    if step == "compiled" and (method != "Radau" or linalg != "dense" or model != "nonlinear"):
        raise ParameterError(f"step='compiled' runs method='Radau' with linalg 'dense' on the nonlinear "
                             f"model; got method={method!r}, linalg={linalg!r}, model={model!r}")
    return step


def replay(stats, model="nonlinear"):
    """(flow class, linalg) that a stored run used, from its ``stats``."""
    linalg = stats.get("linalg", "dense")
    if model == "linearized":
        return LinearizedFlow, "dense"
    return (DualFlow, "dual") if linalg == "dual" else (Flow, linalg)
