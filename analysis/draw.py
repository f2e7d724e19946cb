"""From stored runs and solutions to the paper's figures: this module only selects and
reshapes arrays (``figures`` draws, ``style`` saves PNG + PDF)."""
from __future__ import annotations

import numpy as np

from flowkit import datasets

from . import figures, style
from .results import fig5a_curves

__all__ = ["all_figures", "sphere_inputs"]

THEOREM_LABELS = {
    "sublinear_l2": r"sub-linear $\tilde\gamma=\alpha^{D/2}$, to $\ell_2$",
    "linear_qmu": r"linear $\tilde\gamma=\alpha^D/\mu$, to $Q_\mu$",
    "superlinear_l1": r"super-linear $\tilde\gamma=\alpha^{2D}$, to $\ell_1$",
}


def sphere_inputs(rows, g, X, y, depth, title):
    """``figures.sphere_panel`` keywords for one dataset: ``rows`` its (meta, spec, traj)
    runs, ``g`` its solutions group."""
    rows = sorted(rows, key=lambda r: r[1].alpha)
    cross = {}
    for mu, q in zip(g["cross_mu"], g["cross_w"]):
        pts = []
        for meta, spec, tr in rows:
            gam = meta["cross"].get(float(mu))
            if gam is not None:
                k = int(np.argmin(np.abs(tr.gamma - gam)))
                if np.isclose(tr.gamma[k], gam, rtol=1e-12):
                    pts.append(tr.w[k])
        if len(pts) >= 2:
            cross[float(mu)] = np.array(pts)
    kw = dict(trajectories=[(spec.alpha, tr.w) for _, spec, tr in rows], start=g["start"],
              l2=g["l2"], l1=g["l1"], qpath_w=g["qpath_w"], cross=cross,
              q_points={float(m): w for m, w in zip(g["cross_mu"], g["cross_w"]) if float(m) in cross},
              title=title, depth=depth, centre=g["l2"])
    if not g["l1_unique"]:
        kw["l1_face"] = g["l1_face"]
    if "l2D_w" in g:
        kw["l2D_points"] = g["l2D_w"]
    return kw


def _by_dataset(rows):
    out = {}
    for row in rows:
        out.setdefault(row[1].dataset, []).append(row)
    return out


def all_figures(runs, sol, summ, grid, out):
    """Draw and save every figure into ``out``; returns [(title, path stem)]."""
    made = []

    def save(fig, name, title):
        style.save(fig, out / name)
        made.append((title, name))

    f3 = _by_dataset(runs["fig3"])
    titles = {"fig3b": "fig3b: unique $\\ell_1$, stable support", "fig3c": "fig3c: non-unique $\\ell_1$",
              "fig3d": "fig3d: support change"}
    X0, y0 = datasets.load(grid.fig3_datasets[0])
    panels = [dict(X=X0, y=y0, centre=sol[grid.fig3_datasets[0]]["D2"]["l2"])]
    for name in grid.fig3_datasets:
        X, y = datasets.load(name)
        panels.append(sphere_inputs(f3[name], sol[name]["D2"], X, y, 2, titles.get(name, name)))
    save(figures.fig3(panels), "fig3", "Figure 3: trajectories, D = 2")

    f4 = _by_dataset(runs["fig4"])
    panels = []
    for name in grid.fig4_datasets:
        X, y = datasets.load(name)
        kw = sphere_inputs(f4[name], sol[name]["D3"], X, y, 3, name)
        if name == "fig4b":  # centre on the KKT point the smallest alpha converges to
            end = kw["trajectories"][0][1][-1]
            P = kw["l2D_points"]
            u = end / np.linalg.norm(end)
            kw["centre"] = P[int(np.argmin(np.linalg.norm(P / np.linalg.norm(P, axis=1)[:, None] - u, axis=1)))]
        panels.append(kw)
    save(figures.fig4(panels), "fig4", "Figure 4: trajectories, D = 3")

    save(figures.fig5a(fig5a_curves(runs, sol, grid.fig5_dataset)), "fig5a",
         "Figure 5(a): excess ℓ1 norm against γ̃")
    pts = {int(D): (np.array(r["alpha_D"]), np.array(r["gamma_5pct"], float)) for D, r in summ["fig5b"].items()}
    fits = {int(D): {k: r[k] for k in ("slope", "slope_ci", "intercept", "intercept_ci")}
            for D, r in summ["fig5b"].items()}
    theory = {int(D): r["theory"]["mu_level"] for D, r in summ["fig5b"].items() if r.get("theory")}
    save(figures.fig5b(pts, fits, theory=theory), "fig5b", "Figure 5(b): accuracy for 5% excess ℓ1 norm against α^D")

    th = summ["theorems"]
    tdata = {THEOREM_LABELS[k]: dict(alpha=np.array(th[k]["alpha"]), distance=np.array(th[k]["distance"]),
                                     rate=th[k]["rate"]) for k in THEOREM_LABELS}
    save(figures.theorem_panel(None, tdata), "theorems", "Theorems 4, 6, 7: distance to the predicted limit")

    def law(rows):
        out = {}
        for D, r in rows.items():
            mu = np.array([np.nan if m is None else m for m in r["mu"]], float)
            ok = np.isfinite(mu)
            if ok.sum() >= 2:
                out[int(D)] = dict(delta=np.array(r["delta"])[ok], mu=mu[ok], fit=r.get("fit"))
        return out

    on_data = summ["depth_law_dataset"]
    save(figures.depth_law(law(summ["depth_law"]), on_data=law(on_data["depths"]),
                           dataset=on_data["dataset"]),
         "depth_law", "Depth and accuracy: μ needed for δ-closeness to ℓ1")
    return made
