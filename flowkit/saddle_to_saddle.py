"""The vanishing-initialisation limit of squared-loss gradient flow on a depth-2 diagonal
network: the saddles it visits and when it jumps (Pesme & Flammarion, NeurIPS 2023,
"Saddle-to-saddle dynamics in diagonal linear networks", Algorithm 1).

In flowkit's normalisation (L(w) = ½‖Xw − y‖², w = u+² − u−², u±(0) = α·1; the closed
form of flowkit.minpotential's docstring) w = α² · 2 sinh(v) with v = −4 ∫₀ᵗ ∇L.  As α -> 0
a coordinate can only be non-zero where |v_i| reaches 2 log(1/α), so in the rescaled
variables

    s = v / (2 log(1/α)) = −∫₀^τ ∇L(w) dτ',      τ = 2 t / log(1/α),

w(τ) tends to a piecewise-constant path: it sits at a saddle w_k while s moves on the
straight line s_k − (τ − τ_k) ∇L(w_k), until a coordinate of s reaches ±1; then it jumps
to the next saddle, the minimiser of L over the sign pattern s fixes:

    Δ_k = inf{δ > 0 : |s_k − δ ∇L(w_k)|_i > 1 for some i},   τ_{k+1} = τ_k + Δ_k,
    s_{k+1} = s_k − Δ_k ∇L(w_k),
    w_{k+1} = argmin L(w)  s.t.  w_i >= 0 where s_{k+1,i} = 1, w_i <= 0 where it is −1,
                                 w_i = 0 where |s_{k+1,i}| < 1,

from τ_0 = 0, s_0 = 0, w_0 = 0, until ∇L(w_k) = 0.  The last saddle is the minimum-ℓ1
interpolator (or, without an interpolator, the least-squares point of least ℓ1 norm):
s is then a dual certificate, ‖s‖∞ <= 1 with s_i = sign(w_i) on the support.

Each step's sign-constrained least squares is an NNLS in |w| on the signed columns (scipy's
active-set NNLS), which is unique when those columns are independent (the paper's
general-position assumption; checked, DataError otherwise).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import nnls

from .exceptions import DataError, ParameterError
from .problem import validate_arrays

__all__ = ["saddles", "SaddlePath", "time_scale"]

# |s_i| within this of 1 counts as 1 (s is a sum of a few O(1) terms)
_ON_BOX = 1e-12
MAX_SADDLES = 10_000


@dataclass(frozen=True)
class SaddlePath:
    """Algorithm 1's output: saddle k is ``w[k]``, reached at rescaled time ``tau[k]``
    (τ = 2t/log(1/α): ``time_scale``), with the dual ``s[k]`` at that time; ``w[0] = 0``.
    ``loss[k]`` = ½‖X w_k − y‖²; ``invariants`` the largest violations of the recursion's
    own conditions over the path (see ``saddles``)."""

    tau: np.ndarray
    w: np.ndarray
    s: np.ndarray
    loss: np.ndarray
    invariants: dict = field(default_factory=dict)

    @property
    def supports(self):
        """The support of each saddle (indices of its non-zero coordinates)."""
        return [np.flatnonzero(wk) for wk in self.w]

    def times(self, alpha):
        """The jump times in gradient-flow time t for an initialisation scale ``alpha``
        (the α -> 0 prediction: t = τ log(1/α) / 2)."""
        return self.tau * time_scale(alpha)

    def at(self, tau):
        """The saddle the limiting flow sits at, at rescaled time ``tau``."""
        k = int(np.searchsorted(self.tau, tau, side="right")) - 1
        return self.w[max(k, 0)]


def time_scale(alpha):
    """t per unit of τ, log(1/α)/2, for α in (0, 1)."""
    if not (isinstance(alpha, (int, float, np.floating)) and 0.0 < alpha < 1.0):
        raise ParameterError(f"alpha must be a number in (0, 1) for the saddle-to-saddle limit; got {alpha!r}")
    return -math.log(alpha) / 2.0


def _saddle(X, y, s):
    """argmin ½‖Xw − y‖² over the sign pattern of s (the module docstring)."""
    d = X.shape[1]
    plus, minus = np.flatnonzero(s >= 1 - _ON_BOX), np.flatnonzero(s <= -1 + _ON_BOX)
    cols = np.concatenate([plus, minus])
    w = np.zeros(d)
    if cols.size == 0:
        return w
    signed = np.hstack([X[:, plus], -X[:, minus]])
    if np.linalg.matrix_rank(signed) < cols.size:
        raise DataError(f"the saddle on coordinates {sorted(cols.tolist())} is not unique (their columns "
                        "of X are dependent): Algorithm 1 needs data in general position")
    p, _ = nnls(signed, y, maxiter=50 * max(cols.size, 1))
    w[plus], w[minus] = p[:plus.size], -p[plus.size:]
    return w


def saddles(X, y, *, gtol=1e-10):
    """The saddles and rescaled jump times of the α -> 0 limit of squared-loss gradient
    flow from u± = α·1 on a depth-2 network (Pesme & Flammarion's Algorithm 1; module
    docstring).  Ends where ‖∇L‖∞ <= ``gtol`` ‖Xᵀy‖∞.  Returns a :class:`SaddlePath`.

    ``invariants`` reports, over every saddle: ``box`` max(‖s_k‖∞ − 1, 0); ``sign`` the
    largest |s_k,i − sign w_k,i| on the supports; ``stationary`` the largest |∇L(w_k)_i|
    on them, relative to ‖Xᵀy‖∞ (each saddle is a critical point of L restricted to its
    support); ``dual`` the distance of s_k from −Σ_j Δ_j ∇L(w_j), recomputed."""
    X, y = validate_arrays(X, y)
    gscale = float(np.max(np.abs(X.T @ y)))
    if gscale == 0.0:
        raise DataError("X^T y = 0: the flow from vanishing initialisation never leaves w = 0")
    d = X.shape[1]
    taus, ws, ss = [0.0], [np.zeros(d)], [np.zeros(d)]
    steps = []
    while True:
        w, s = ws[-1], ss[-1]
        g = X.T @ (X @ w - y)
        if np.max(np.abs(g)) <= gtol * gscale:
            break
        if len(ws) > MAX_SADDLES:
            raise DataError(f"more than {MAX_SADDLES} saddles: Algorithm 1 does not terminate on these data")
        # the first coordinate of s - δ g to leave [-1, 1]; those on the box move inward
        # (the saddle's KKT conditions) or not at all
        with np.errstate(divide="ignore", invalid="ignore"):
            hit = np.where(g < 0, (1.0 - s) / -g, np.where(g > 0, (1.0 + s) / g, np.inf))
        on_box = np.abs(s) >= 1 - _ON_BOX
        hit[on_box & (np.sign(-g) == np.sign(s))] = np.inf  # would leave at once: cannot, at a saddle
        hit[on_box & (np.abs(g) <= gtol * gscale)] = np.inf
        delta = float(np.min(hit))
        if not math.isfinite(delta):  # pragma: no cover - a saddle with ∇L != 0 always moves s
            raise DataError("Algorithm 1 stalled: no coordinate of s moves towards the box")
        s_new = s - delta * g
        s_new[np.argmin(hit)] = np.sign(s_new[np.argmin(hit)])  # exactly on the box
        # the saddle's own coordinates stay on the box exactly (∇L = 0 there): their
        # rounding-level gradients times a long Δ must not drift them off it
        active = w != 0
        s_new[active] = np.sign(w[active])
        steps.append((delta, g))
        taus.append(taus[-1] + delta)
        ss.append(s_new)
        ws.append(_saddle(X, y, s_new))
    W, S = np.array(ws), np.array(ss)
    loss = 0.5 * np.sum((W @ X.T - y) ** 2, axis=1)
    return SaddlePath(tau=np.array(taus), w=W, s=S, loss=loss,
                      invariants=_invariants(X, y, W, S, steps, gscale))


def _invariants(X, y, W, S, steps, gscale):
    sign = stationary = 0.0
    for wk, sk in zip(W, S):
        on = wk != 0
        if on.any():
            sign = max(sign, float(np.max(np.abs(sk[on] - np.sign(wk[on])))))
            stationary = max(stationary, float(np.max(np.abs((X.T @ (X @ wk - y))[on]))) / gscale)
    partial = np.zeros(X.shape[1])
    dual = 0.0
    for k, (delta, g) in enumerate(steps, start=1):
        partial = partial - delta * g
        dual = max(dual, float(np.max(np.abs(partial - S[k]))))
    return {"box": max(float(np.max(np.abs(S))) - 1.0, 0.0), "sign": sign,
            "stationary": stationary, "dual": dual}
