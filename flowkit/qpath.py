"""The Q_μ path: the Q^D_μ max-margin point as μ goes from ∞ (the ℓ2 point) towards 0
(math.md, "Max-margin problems"; the paper's Fig. 3 dashed curves).

Continuation in log μ, warm-started from the previous point's dual and support, with the
step halved whenever consecutive points are more than ``max_angle`` apart on the sphere
(angle between w/‖w‖₂) and doubled again when they are close: the sampled curve is smooth.

Kinks are where the support set changes.  On either side of one the solution with a
fixed support S is a smooth function of μ that extends past the kink (``support_newton``),
so the kink is the root of

    φ_S(log μ) = min( min_{n∈S} ν_n / max ν,  min_{k∉S} (x̃_kᵀ w - 1) ),

the first multiplier reaching 0 (a support vector leaving) or the first outside margin
reaching 1 (one entering).  It is bracketed by the two accepted points, refined by Brent's
method (bisection-safeguarded) from both sides, and accepted when the two roots agree to
``kink_rtol``; otherwise the step is halved (two changes inside one step).  Where that
cannot separate them (degenerate data: a sample at margin 1 with multiplier 0 over a
stretch of μ), the kink is reported with its bracket as ``rtol``: a support change is
never dropped.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import brentq

from . import potentials as P
from .exceptions import ParameterError
from .maxmargin import check_mu
from .maxmargin.q import solve_q, support_newton
from .problem import _check_depth, positive_float, separable_tilde

__all__ = ["q_path", "QPath", "Kink"]


@dataclass(frozen=True)
class Kink:
    """A change of support at ``mu`` (located to relative ``rtol``): ``support_above``
    holds for μ just above it (towards ℓ2), ``support_below`` just below."""

    mu: float
    support_above: tuple
    support_below: tuple
    rtol: float


@dataclass(frozen=True)
class QPath:
    """Points of the path, μ decreasing: ``mu`` (n,), ``w`` (n x d, margin 1), ``dual``
    (n x N), ``support`` (n tuples), ``kkt_residual`` (n,), and the ``kinks``."""

    mu: np.ndarray
    w: np.ndarray
    dual: np.ndarray
    support: tuple
    kkt_residual: np.ndarray
    kinks: tuple
    depth: int
    info: dict = field(default_factory=dict, repr=False)

    def __len__(self):
        return len(self.mu)

    @property
    def direction(self):
        """w / ‖w‖₂ row by row: the path on the sphere."""
        return self.w / np.linalg.norm(self.w, axis=1, keepdims=True)

    def as_dict(self):
        return dict(depth=self.depth, mu=self.mu.tolist(), w=self.w.tolist(),
                    support=[list(s) for s in self.support],
                    kkt_residual=self.kkt_residual.tolist(),
                    kinks=[dict(mu=k.mu, support_above=list(k.support_above),
                                support_below=list(k.support_below), rtol=k.rtol)
                           for k in self.kinks],
                    info={k: v for k, v in self.info.items() if isinstance(v, (int, float, str))})


def _angle(a, b):
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    return 2.0 * math.asin(min(1.0, float(np.linalg.norm(a - b)) / 2.0))


def _validity(Xt, D, S, nu_S):
    """φ_S as a function of log μ (module docstring), warm-starting each Newton solve
    from the last one; invalid solves (not converged, |v| >= 1) count as negative."""
    state = {"nu": np.array(nu_S, float)}

    def phi(log_mu):
        mu = math.exp(log_mu)
        nu, res, _ = support_newton(Xt, mu, D, S, state["nu"])
        if not res <= 1e-10:
            return -1.0
        state["nu"] = nu
        full = np.zeros(Xt.shape[0])
        full[S] = nu
        m = Xt @ (mu * P.h(Xt.T @ full, D))
        out = float(np.min(nu)) / float(np.max(np.abs(nu)))
        rest = np.setdiff1d(np.arange(Xt.shape[0]), S)
        if len(rest):
            out = min(out, float(np.min(m[rest] - 1.0)))
        return out
    return phi


def _root(phi, lo, hi, xtol):
    """Root of phi on [lo, hi] in log μ with phi(hi side) valid; None without a sign change."""
    f_lo, f_hi = phi(lo), phi(hi)
    if f_lo == 0.0:
        return lo
    if f_hi == 0.0:
        return hi
    if (f_lo > 0) == (f_hi > 0):
        return None
    try:
        return brentq(phi, lo, hi, xtol=xtol, rtol=4 * np.finfo(float).eps, maxiter=200)
    except ValueError:  # phi warm-starts, so an end point can re-evaluate to the other sign
        return None


def _locate(Xt, D, above, below, lm_above, lm_below, rtol):
    """The kink between two accepted points with different supports, or None."""
    Sa, Sb = np.array(above.support), np.array(below.support)
    ra = _root(_validity(Xt, D, Sa, above.dual[Sa]), lm_below, lm_above, rtol / 4)
    rb = _root(_validity(Xt, D, Sb, below.dual[Sb]), lm_below, lm_above, rtol / 4)
    if ra is None or rb is None or abs(ra - rb) > rtol:
        return None
    mu = math.exp(0.5 * (ra + rb))
    return Kink(mu=mu, support_above=tuple(int(i) for i in Sa),
                support_below=tuple(int(i) for i in Sb), rtol=max(abs(ra - rb), rtol / 4))


# The work q_path may do: solves (points and rejected steps), and the finest angle
MAX_POINTS = 20_000
MIN_ANGLE = 1e-9


def q_path(X, y, *, depth=2, mu_range=(1e3, 1e-4), max_angle=0.01, max_step=math.log(10) / 8,
           kink_rtol=1e-9):
    """The Q^D_μ max-margin path from μ = mu_range[0] down to mu_range[1] (module
    docstring).  ``max_angle``: largest angle (radians) between consecutive directions;
    ``max_step``: largest step in log μ; ``kink_rtol``: relative accuracy of each kink."""
    Xt = separable_tilde(X, y)
    D = _check_depth(depth)
    try:
        hi, lo = (float(m) for m in mu_range)
    except (TypeError, ValueError):
        raise ParameterError(f"mu_range must be a pair (mu_start, mu_end); got {mu_range!r}") from None
    hi, lo = check_mu(hi), check_mu(lo)
    if not hi > lo:
        raise ParameterError(f"mu_range runs from large to small mu (towards the rich limit); "
                             f"got {mu_range!r}")
    max_angle = positive_float("max_angle", max_angle)
    max_step = positive_float("max_step", max_step)
    kink_rtol = positive_float("kink_rtol", kink_rtol)
    if max_angle < MIN_ANGLE:
        raise ParameterError(f"max_angle = {max_angle:g} rad is below {MIN_ANGLE:g}: consecutive "
                             "points are certified to ~1e-12, so finer angles measure rounding")
    span = math.log(hi) - math.log(lo)
    if span / max_step > MAX_POINTS:
        raise ParameterError(f"max_step = {max_step:g} would take more than {MAX_POINTS} points "
                             f"over log mu in [{math.log(lo):.4g}, {math.log(hi):.4g}]; "
                             f"use max_step >= {span / MAX_POINTS:.3g}")
    min_step = min(max(1e-6, 4 * kink_rtol), max_step)

    t0 = time.perf_counter()
    cur = solve_q(Xt, hi, D)
    pts, kinks, lms = [cur], [], [math.log(hi)]
    lm, step, rejected = math.log(hi), max_step, 0
    while lm > math.log(lo):
        if len(pts) + rejected > MAX_POINTS:
            raise ParameterError(f"q_path: more than {MAX_POINTS} solves for max_angle = {max_angle:g} "
                                 f"(reached mu = {math.exp(lm):.6g} of {lo:g}); use a larger max_angle")
        lm_new = max(lm - step, math.log(lo))
        mu_new = lo if lm_new == math.log(lo) else math.exp(lm_new)
        new = solve_q(Xt, mu_new, D, nu0=cur.dual, support=cur.support)
        ang = _angle(cur.w, new.w)
        if ang > max_angle and step > min_step:
            step, rejected = step / 2, rejected + 1
            continue
        if set(new.support.tolist()) != set(cur.support.tolist()):
            kink = _locate(Xt, D, cur, new, lm, lm_new, kink_rtol)
            if kink is None and step > min_step:
                step, rejected = step / 2, rejected + 1
                continue
            if kink is None:  # degenerate (several changes within min_step): the bracket
                kink = Kink(mu=math.exp(0.5 * (lm + lm_new)),
                            support_above=tuple(int(i) for i in cur.support),
                            support_below=tuple(int(i) for i in new.support), rtol=abs(lm - lm_new))
            kinks.append(kink)
        pts.append(new)
        lms.append(lm_new)
        cur, lm = new, lm_new
        if ang < max_angle / 4:
            step = min(2 * step, max_step)
    return QPath(mu=np.array([p.mu for p in pts]), w=np.array([p.w for p in pts]),
                 dual=np.array([p.dual for p in pts]),
                 support=tuple(tuple(int(i) for i in p.support) for p in pts),
                 kkt_residual=np.array([p.kkt_residual for p in pts]), kinks=tuple(kinks),
                 depth=D, info=dict(points=len(pts), rejected_steps=rejected,
                                    seconds=time.perf_counter() - t0,
                                    max_kkt_residual=float(max(p.kkt_residual for p in pts))))
