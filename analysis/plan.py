"""What ``flowkit reproduce`` runs: the paper's grids as RunSpecs, one list per figure or claim.

Every grid is a frozen ``Grid``; ``FULL`` is the paper's, ``REDUCED`` a small one for the
tests.  Stopping rules follow the paper:

* Fig. 3 (D = 2, datasets fig3b/c/d) and Fig. 4 (D = 3, fig4a/b): one run per α to
  γ̃ = min(cap, max(1e4, 1e3 α^D)) -- to the paper's smallest μ = 1e-3 -- with exact save
  points at the cross-lines γ̃ = α^D/μ, ε(α) = exp(-α^D/μ), for each μ in ``cross_mus``;
* Fig. 5(a): D ∈ {2, 3, 10}, α^D ∈ {0.1, 1} on fig3b, to γ̃ = ``fig5a_gamma``;
* Fig. 5(b): the 5% excess-ℓ1 event (flowkit.events) for α^D over ``fig5b_alpha_D``;
* Theorems 4, 6, 7 on fig3b, D = 2: γ̃ = α^{D/2}, α^D/μ_T and α^{2D}.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flowkit import datasets
from flowkit.sweep import RunSpec

__all__ = ["Grid", "FULL", "REDUCED", "plan", "cross_points"]


@dataclass(frozen=True)
class Grid:
    fig3_datasets: tuple = ("fig3b", "fig3c", "fig3d")
    fig3_alphas: tuple = (0.01, 0.1, 1.0, 10.0, 100.0, 1e4)
    fig4_datasets: tuple = ("fig4a", "fig4b")
    fig4_alphas: tuple = (0.01, 0.1, 1.0, 10.0, 100.0)
    cross_mus: tuple = (1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001)
    gamma_cap: float = 1e14
    fig5_dataset: str = "fig3b"
    fig5_depths: tuple = (2, 3, 10)
    fig5a_alpha_D: tuple = (0.1, 1.0)
    fig5a_gamma: float = 1e8
    fig5b_alpha_D: tuple = tuple(np.logspace(0, 4, 9))
    fig5b_level: float = 0.05
    fig5b_asymptotic_from: float = 100.0  # α^D where the second (asymptotic) fit starts
    theorem_alphas: tuple = tuple(np.logspace(0.5, 2.5, 7))
    theorem_mu: float = 0.1
    depth_law_depths: tuple = (2, 3, 5, 10)
    depth_law_deltas: tuple = tuple(np.logspace(np.log10(0.3), -2, 8))
    path_range: tuple = (1e3, 1e-4)
    points_per_decade: int = 20


FULL = Grid()
REDUCED = Grid(fig3_alphas=(0.1, 100.0), fig4_alphas=(0.1, 10.0), cross_mus=(0.5, 0.05),
               gamma_cap=1e8, fig5_depths=(2, 3), fig5a_gamma=1e5,
               fig5b_alpha_D=(1.0, 10.0, 100.0), fig5b_asymptotic_from=1.0, theorem_alphas=(3.0, 10.0, 30.0),
               depth_law_depths=(2, 3), depth_law_deltas=(0.3, 0.1, 0.03),
               path_range=(1e2, 1e-3), points_per_decade=6)


def _target(alpha_D, grid):
    # down to μ_eff = α^D/γ̃ = 1e-3, the paper's last Q_μ square (and never below γ̃ = 1e4)
    return float(min(grid.gamma_cap, max(1e4, 1e3 * alpha_D)))


def cross_points(alpha, depth, grid):
    """{μ: γ̃ = α^D/μ} for the cross-line μ's reachable in the run of ``_target``."""
    a_D = alpha ** depth
    top = _target(a_D, grid)
    return {mu: a_D / mu for mu in grid.cross_mus if 1e-3 < a_D / mu <= top}


def plan(grid=FULL, step="scipy"):
    """{purpose: [(meta, RunSpec), ...]} for every figure and claim (module docstring);
    ``meta`` says what the run is for (e.g. {"rule": "linear_qmu"}); ``step``: integrate's."""
    out = {"fig3": [], "fig4": [], "fig5a": [], "fig5b": [], "theorems": []}

    def _spec(name, X, y, depth, alpha, stop, grid, save_at=None):
        return RunSpec(dataset=name, X=X, y=y, depth=int(depth), alpha=float(alpha), stop=stop,
                       points_per_decade=grid.points_per_decade, step=step,
                       save_at=None if not save_at else tuple(sorted(save_at)))

    for key, names, depth, alphas in (("fig3", grid.fig3_datasets, 2, grid.fig3_alphas),
                                      ("fig4", grid.fig4_datasets, 3, grid.fig4_alphas)):
        for name in names:
            X, y = datasets.load(name)
            for a in alphas:
                cross = cross_points(a, depth, grid)
                top = _target(a ** depth, grid)
                out[key].append(({"cross": {m: g for m, g in cross.items() if g <= top}},
                                 _spec(name, X, y, depth, a, {"gamma": top}, grid,
                                       [g for g in cross.values() if g < top])))
    X, y = datasets.load(grid.fig5_dataset)
    for D in grid.fig5_depths:
        for a_D in grid.fig5a_alpha_D:
            out["fig5a"].append(({"alpha_D": a_D}, _spec(grid.fig5_dataset, X, y, D, a_D ** (1.0 / D),
                                                          {"gamma": grid.fig5a_gamma}, grid)))
        for a_D in grid.fig5b_alpha_D:
            out["fig5b"].append(({"alpha_D": a_D}, _spec(grid.fig5_dataset, X, y, D, a_D ** (1.0 / D),
                                                          {"excess_l1": grid.fig5b_level,
                                                           "gamma_max": float(2e3 * a_D + 1e4)}, grid)))
    for a in grid.theorem_alphas:
        # D = 2: γ̃ = α^{D/2}, α^D/μ, α^{2D}
        for rule, gam in (("sublinear_l2", a), ("linear_qmu", a ** 2 / grid.theorem_mu),
                          ("superlinear_l1", a ** 4)):
            out["theorems"].append(({"rule": rule}, _spec(grid.fig5_dataset, X, y, 2, a,
                                                          {"gamma": float(gam)}, grid)))
    return out
