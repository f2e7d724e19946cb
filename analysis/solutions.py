"""The solutions the figures compare trajectories with, computed once and stored in HDF5
(``solutions.h5`` beside the runs), so that figures and tables regenerate from stored
data alone.

Per (dataset, depth) group ``/<dataset>/D<depth>``: ``start`` (the mean of y_n x_n, the
flow's first direction), ``l2``, ``l1`` and ``l1_face`` (vertices of the optimal face;
one row when unique), ``qpath_mu``/``qpath_w`` and ``kinks_mu`` (+ JSON attributes with
the supports on both sides), ``cross_mu``/``cross_w`` (the Q^D_μ points of the
cross-lines), and for D > 2 ``l2D_w``/``l2D_objective`` (ℓ_{2/D} KKT points, best first).
``/depth_law/D<depth>``: ``delta`` and ``mu`` with excess_ℓ1(Q^D_μ) = δ.
``/theorems``: ``mu`` and ``q`` (the Q_μ point of the linear rule).
Written to a temporary file and renamed, so a crash never leaves half a file.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import h5py
import numpy as np
from scipy.optimize import brentq

import flowkit
from flowkit import datasets
from flowkit.maxmargin import MU_RANGE
from flowkit.maxmargin.q import solve_q

__all__ = ["compute", "load", "mu_for_excess"]


def mu_for_excess(Xt, depth, delta, l1_norm, lo=None, hi=1e6):
    """μ with ‖w_Q(μ)‖₁/‖w_ℓ1‖₁ - 1 = δ (Brent on log μ; the excess grows with μ).

    Uses the Q solver below the public μ range on purpose: for D = 2 a small δ needs
    μ ~ exp(-1/δ) (the paper's "Role of depth"); every point is still KKT-certified."""
    def f(lm):
        r = solve_q(Xt, math.exp(lm), depth)
        if r.kkt_residual > 1e-9:
            raise RuntimeError(f"Q solve not certified at mu = {math.exp(lm):g}")
        return float(np.sum(np.abs(r.w))) / l1_norm - 1.0 - delta

    # D > 2 approaches ℓ1 polynomially in μ: the validated range suffices (and its dual
    # needs 1 - |v| ~ μ^{(D-2)/D} > 0); D = 2 needs μ ~ exp(-1/δ), certified point by point
    lo = (1e-300 if depth == 2 else MU_RANGE[0]) if lo is None else lo
    a, b = math.log(lo), math.log(hi)
    if f(a) > 0 or f(b) < 0:  # not that close even at the smallest μ / already at the ℓ2 end
        return float("nan")
    return math.exp(brentq(f, a, b, xtol=1e-10, rtol=1e-12))


def _group(f, name, depth, X, y, grid, l2d):
    g = f.require_group(f"{name}/D{depth}")
    Xt = y[:, None] * X
    g["start"] = Xt.mean(axis=0)
    l2 = flowkit.max_margin(X, y, "l2")
    l1 = flowkit.max_margin(X, y, "l1")
    g["l2"], g["l1"] = l2.w, l1.w
    g["l1_face"] = l1.face.vertices if l1.face is not None else l1.w[None, :]
    g.attrs["l1_unique"] = bool(l1.unique)
    g.attrs["l1_norm"] = l1.objective
    p = flowkit.q_path(X, y, depth=depth, mu_range=grid.path_range)
    g["qpath_mu"], g["qpath_w"] = p.mu, p.w
    g["kinks_mu"] = np.array([k.mu for k in p.kinks], float)
    g.attrs["kinks"] = json.dumps([dict(mu=k.mu, above=list(k.support_above), below=list(k.support_below))
                                   for k in p.kinks])
    g.attrs["l2_support"] = json.dumps(l2.support.tolist())
    g.attrs["l1_support"] = json.dumps(l1.support.tolist())
    mus = np.array(grid.cross_mus, float)
    g["cross_mu"] = mus
    g["cross_w"] = np.array([flowkit.max_margin(X, y, "Q", mu=m, depth=depth).w for m in mus])
    if l2d and depth > 2:
        r = flowkit.max_margin(X, y, "l2/D", depth=depth)
        g["l2D_w"] = np.array([q.w for q in r.kkt_points])
        g["l2D_objective"] = np.array([q.objective for q in r.kkt_points])


def compute(grid, path):
    """Compute every solution the figures and claims need (module docstring) into ``path``."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with h5py.File(tmp, "w") as f:
        f.attrs["flowkit_version"] = flowkit.__version__
        for names, depth, l2d in ((grid.fig3_datasets, 2, False), (grid.fig4_datasets, 3, True)):
            for name in names:
                _group(f, name, depth, *datasets.load(name), grid, l2d)
        X, y = datasets.load(grid.fig5_dataset)
        for D in grid.fig5_depths:
            if f"{grid.fig5_dataset}/D{D}" not in f:
                _group(f, grid.fig5_dataset, D, X, y, grid, l2d=True)
        Xt = y[:, None] * X
        l1_norm = flowkit.max_margin(X, y, "l1").objective
        for D in grid.depth_law_depths:
            g = f.require_group(f"depth_law/D{D}")
            g["delta"] = np.array(grid.depth_law_deltas, float)
            g["mu"] = np.array([mu_for_excess(Xt, D, d, l1_norm) for d in grid.depth_law_deltas])
        t = f.require_group("theorems")
        t.attrs["mu"] = grid.theorem_mu
        t["q"] = flowkit.max_margin(X, y, "Q", mu=grid.theorem_mu, depth=2).w
    os.replace(tmp, path)


def load(path):
    """Nested dict of numpy arrays and attributes from a solutions file."""
    def walk(g):
        out = {k: (walk(v) if isinstance(v, h5py.Group) else v[()]) for k, v in g.items()}
        for k, v in g.attrs.items():
            out[k] = json.loads(v) if isinstance(v, str) and v[:1] in "[{" else v
        return out
    try:
        with h5py.File(path, "r") as f:
            return walk(f)
    except OSError as exc:
        raise flowkit.FlowkitError(f"cannot read solutions file {path}: {exc}") from None
