"""What every max-margin solver returns, and the KKT measures they share.

All four problems have the form  min f(w)  s.t.  X̃ w >= 1  (math.md, "Max-margin
problems"), with Lagrangian f(w) - νᵀ(X̃ w - 1), ν >= 0.  A point (w, ν) is certified by
its KKT residual: the largest of

* stationarity    ‖∂f(w) - X̃ᵀν‖∞, relative (each solver defines ∂f: see its module);
* feasibility     max(0, 1 - min_n m_n),            m = X̃ w;
* complementarity max_n ν_n |m_n - 1| / max(ν);
* dual sign       max(0, -min ν) / max(ν).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import nnls

__all__ = ["MaxMargin", "L1Face", "feasibility_parts", "support_of", "vertex_polish"]

# A sample is a support vector when its multiplier is this large relative to max(ν).
SUPPORT_RTOL = 1e-9


@dataclass(frozen=True)
class L1Face:
    """The optimal face of the ℓ1 problem (a polytope) when the optimum is not unique.

    Every optimal w has w_i = 0 off ``features``, sign(w_i) ∈ {0, ``signs``_i} on them,
    x̃_nᵀ w = 1 for n in ``tight`` and x̃_nᵀ w >= 1 for the other samples: complementary
    slackness with one optimal dual ν.  ``vertices`` (k x d) span it; ``complete`` is False
    when they were sampled by LPs instead of enumerated (large faces).
    """

    vertices: np.ndarray
    dimension: int
    features: np.ndarray
    signs: np.ndarray
    tight: np.ndarray
    complete: bool

    def __repr__(self):
        return (f"L1Face(dimension={self.dimension}, {len(self.vertices)} vertices, "
                f"features={self.features.tolist()}, complete={self.complete})")


@dataclass(frozen=True)
class MaxMargin:
    """A max-margin predictor with its certificate.

    ``w`` has minimum margin exactly 1; ``support`` are the sample indices with ν_n > 0;
    ``dual`` is ν; ``objective`` is f(w) in the problem's own units (‖w‖₂, ‖w‖₁,
    Q^D_μ(w) = Σ q_D(w_i/μ), ‖w‖_{2/D} = (Σ|w_i|^{2/D})^{D/2}).  ``unique`` is whether the
    optimum is unique (always True for "l2" and "Q", strictly convex; decided for "l1",
    with ``face`` describing the optimal set when it is not; None for "l2/D", whose KKT
    points are in ``kkt_points``, best first, this one included).
    """

    kind: str
    w: np.ndarray
    support: np.ndarray
    dual: np.ndarray
    kkt_residual: float
    objective: float
    depth: int | None = None
    mu: float | None = None
    unique: bool | None = None
    face: L1Face | None = None
    kkt_points: tuple = field(default=(), repr=False)
    info: dict = field(default_factory=dict, repr=False)

    @property
    def direction(self):
        """w / ‖w‖₂: the point on the sphere (the paper's figures plot these)."""
        return self.w / np.linalg.norm(self.w)

    def as_dict(self):
        """JSON-ready summary (lists and floats only)."""
        out = dict(kind=self.kind, w=self.w.tolist(), support=self.support.tolist(),
                   dual=self.dual.tolist(), kkt_residual=self.kkt_residual,
                   objective=self.objective, depth=self.depth, mu=self.mu, unique=self.unique)
        if self.face is not None:
            out["face"] = dict(dimension=self.face.dimension, vertices=self.face.vertices.tolist(),
                               features=self.face.features.tolist(), signs=self.face.signs.tolist(),
                               tight=self.face.tight.tolist(), complete=self.face.complete)
        if len(self.kkt_points) > 1:
            out["kkt_points"] = [dict(w=p.w.tolist(), objective=p.objective,
                                      support=p.support.tolist(), kkt_residual=p.kkt_residual)
                                 for p in self.kkt_points]
        out["info"] = {k: v for k, v in self.info.items() if isinstance(v, (int, float, str, bool))}
        return out


def feasibility_parts(Xt, w, nu):
    """max(feasibility, complementarity, dual sign) of the module docstring."""
    m = Xt @ w
    nscale = float(np.max(np.abs(nu))) or 1.0
    return max(max(0.0, 1.0 - float(np.min(m))),
               float(np.max(np.abs(nu * (m - 1.0)))) / nscale,
               max(0.0, -float(np.min(nu))) / nscale)


def support_of(nu):
    """Indices n with ν_n > SUPPORT_RTOL max(ν)."""
    top = float(np.max(nu, initial=0.0))
    return np.flatnonzero(nu > SUPPORT_RTOL * top) if top > 0 else np.zeros(0, int)


def rescale(Xt, w):
    """w scaled so that its minimum margin is exactly 1 (up to one rounding)."""
    return w / float(np.min(Xt @ w))


def vertex_polish(Xt, w, grad_of, tol=1e-9):
    """Snap a vertex solution of a (weighted) ℓ1-type problem onto its exact vertex.

    T = features with w_i != 0, S = samples with margin within ``tol`` of 1.  Then
    X̃_{S,T} w_T = 1 determines w (least squares when the vertex is degenerate), and the
    multipliers solve X̃_{S,T}ᵀ ν_S = ``grad_of``(w)_T with ν_S >= 0 (NNLS).
    Returns (w, nu, T, S, stationarity) with the NNLS residual relative to |grad|.
    """
    N, d = Xt.shape
    T = np.flatnonzero(np.abs(w) > 1e-12 * np.max(np.abs(w)))
    S = np.flatnonzero(Xt @ w - 1.0 <= tol * max(1.0, float(np.max(np.abs(Xt) @ np.abs(w)))))
    wT, *_ = np.linalg.lstsq(Xt[np.ix_(S, T)], np.ones(len(S)), rcond=None)
    w = np.zeros(d)
    w[T] = wT
    g = grad_of(w)[T]
    nuS, rnorm = nnls(Xt[np.ix_(S, T)].T, g)
    nu = np.zeros(N)
    nu[S] = nuS
    return w, nu, T, S, rnorm / max(float(np.linalg.norm(g)), 1e-300)
