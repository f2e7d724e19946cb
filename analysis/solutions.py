"""The solutions the figures compare trajectories with, computed once and stored in HDF5
(``solutions.h5`` beside the runs), so that figures and tables regenerate from stored
data alone.

Per (dataset, depth) group ``/<dataset>/D<depth>``: ``start`` (the mean of y_n x_n, the
flow's first direction), ``l2``, ``l1`` and ``l1_face`` (vertices of the optimal face;
one row when unique), ``qpath_mu``/``qpath_w`` and ``kinks_mu`` (+ JSON attributes with
the supports on both sides), ``cross_mu``/``cross_w`` (the Q^D_μ points of the
cross-lines), on the Fig. 5 dataset the attribute ``mu_fig5b`` (the Q^D_μ point with
the Fig. 5(b) excess, Theorem 6's asymptote γ̃ = α^D/μ), and for D > 2
``l2D_w``/``l2D_objective`` (ℓ_{2/D} KKT points, best first).
``/depth_law/D<depth>``: ``delta``, ``mu`` (the smallest μ with excess_ℓ1(Q^D_μ) = δ over
the near-tie family of depthlaw.py) and ``t_star`` (the family member attaining it);
``/depth_law_dataset/D<depth>``: ``delta`` and ``mu`` on the Fig. 5 dataset (attributes
``dataset``, ``rho_max``).
``/theorems``: ``mu`` and ``q`` (the Q_μ point of the linear rule).
Written to a temporary file and renamed, so a crash never leaves half a file.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np

import flowkit
from flowkit import datasets

from .depthlaw import COPIES, mu_for_excess, rho_max, worst_case_mu

__all__ = ["compute", "load"]


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
        for D in grid.fig5_depths:  # Theorem 6's asymptote of Fig. 5(b): γ̃ = α^D/μ_level
            f[f"{grid.fig5_dataset}/D{D}"].attrs["mu_fig5b"] = mu_for_excess(Xt, D, grid.fig5b_level, l1_norm)
        deltas = np.array(grid.depth_law_deltas, float)
        f.require_group("depth_law").attrs["copies"] = COPIES
        on_data = f.require_group("depth_law_dataset")
        on_data.attrs["dataset"], on_data.attrs["rho_max"] = grid.fig5_dataset, rho_max(X, y)
        for D in grid.depth_law_depths:
            worst = np.array([worst_case_mu(D, d) for d in deltas])
            g = f.require_group(f"depth_law/D{D}")
            g["delta"], g["mu"], g["t_star"] = deltas, worst[:, 0], worst[:, 1]
            g = on_data.require_group(f"D{D}")
            g["delta"] = deltas
            g["mu"] = np.array([mu_for_excess(Xt, D, d, l1_norm) for d in deltas])
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
