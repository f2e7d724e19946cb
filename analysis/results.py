"""The paper's numbers from stored data only: the runs (a flowkit store) and the solutions
file.  Nothing here integrates or solves; ``summary`` is the contract of summary.json.

* accuracy: ε = exp(-α^D/μ) as a power of ten (exact: log10 ε = -α^D/(μ ln 10));
* fig5b: the γ̃ from which the excess ℓ1 norm stays <= 5% (the event's last downward
  crossing), against α^D, with a log-log fit (slope a, intercept b, 95% CIs), the same
  fit over large α^D only, and Theorem 6's asymptote γ̃ = α^D/μ_5% (slope 1);
* theorems: distance of ŵ to the ℓ2, Q_μ and ℓ1 points under γ̃ = α^{D/2}, α^D/μ, α^{2D},
  with the fitted log-log rate;
* kink_mu0: the first kink of the fig3d Q_μ path;
* depth_law: the smallest μ with excess_ℓ1(Q^D_μ) = δ over the near-tie family
  (worst case, the paper's sense), fitted as log(1/μ) = a/δ + b and as
  log(1/μ) = a log(1/δ) + b, with the predicted asymptotic slopes (depthlaw.py);
  depth_law_dataset: the same on the Fig. 5 dataset, where D = 2 is polynomial.
"""
from __future__ import annotations

import math

import numpy as np

from flowkit.store import open_store, run_id

from .depthlaw import d2_constant, power_exponent
from .fits import linear_fit, loglog_fit

__all__ = ["load_runs", "accuracy", "summary", "ACCURACY_EXAMPLES"]

# The paper's accuracy examples (Section 5): (alpha, depth, mu)
ACCURACY_EXAMPLES = ((100.0, 2, 0.5), (100.0, 2, 0.001), (1.0, 2, 0.001))


def accuracy(alpha, depth, mu):
    """log10 of the loss ε = exp(-α^D/μ) (never formed)."""
    return -math.exp(depth * math.log(alpha) - math.log(mu)) / math.log(10.0)


def load_runs(store_path, plan):
    """{purpose: [(meta, spec, Trajectory)]} for every planned run, read from the store
    (a missing run is an error: reproduce runs the sweep first)."""
    out = {}
    with open_store(store_path) as store:
        for purpose, specs in plan.items():
            rows = []
            for meta, spec in specs:
                rid = run_id(spec.X, spec.y, **spec.settings)
                if rid not in store:
                    raise LookupError(f"run {rid} ({purpose}, {spec.dataset}, D={spec.depth}, "
                                      f"alpha={spec.alpha:g}, {spec.stop}) is not in {store_path}")
                rows.append((meta, spec, store.load(rid, flow=False)))
            out[purpose] = rows
    return out


def _excess(traj, l1_norm):
    with np.errstate(invalid="ignore"):
        return np.where(traj.margin > 0, np.sum(np.abs(traj.w_hat), axis=1) / l1_norm - 1.0, np.nan)


def fig5a_curves(runs, sol, dataset):
    curves = []
    for meta, spec, tr in runs["fig5a"]:
        l1 = sol[dataset][f"D{spec.depth}"]["l1_norm"]
        curves.append(dict(depth=spec.depth, alpha_D=meta["alpha_D"], gamma=tr.gamma,
                           excess=_excess(tr, l1)))
    return curves


def fig5b(runs, sol, grid):
    """Per depth: α^D, γ̃_5% (last downward crossing), the log-log fit over all points,
    ``asymptotic`` (the fit over α^D >= grid.fig5b_asymptotic_from) and ``theory``:
    Theorem 6's asymptote γ̃ = α^D/μ_level (slope 1, intercept -log μ_level, μ_level the
    Q^D_μ point whose excess is the level, from the solutions file)."""
    out = {}
    for meta, spec, tr in runs["fig5b"]:
        ev = tr.stats["event"]
        row = out.setdefault(str(spec.depth), {"alpha_D": [], "gamma_5pct": []})
        row["alpha_D"].append(meta["alpha_D"])
        row["gamma_5pct"].append(ev["gamma_last_down"] if ev["gamma_last_down"] is not None else math.nan)
    for D, row in out.items():
        f = loglog_fit(row["alpha_D"], row["gamma_5pct"])
        row.update(slope=f["slope"], slope_ci=f["slope_ci"], intercept=f["intercept"],
                   intercept_ci=f["intercept_ci"], r2=f["r2"])
        a, g = np.asarray(row["alpha_D"]), np.asarray(row["gamma_5pct"])
        big = a >= grid.fig5b_asymptotic_from
        if np.sum(big & np.isfinite(g)) >= 3:
            f = loglog_fit(a[big], g[big])
            row["asymptotic"] = dict(min_alpha_D=grid.fig5b_asymptotic_from, slope=f["slope"],
                                     slope_ci=f["slope_ci"], intercept=f["intercept"],
                                     intercept_ci=f["intercept_ci"], r2=f["r2"])
        mu = float(sol[grid.fig5_dataset][f"D{D}"]["mu_fig5b"])
        row["theory"] = dict(mu_level=mu, slope=1.0, intercept=-math.log(mu),
                             ratio=(g * mu / a).tolist())  # γ̃_5% / (α^D/μ_level) -> 1
    return out


def theorems(runs, sol, dataset):
    g = sol[dataset]["D2"]
    targets = {"sublinear_l2": g["l2"], "linear_qmu": sol["theorems"]["q"], "superlinear_l1": g["l1"]}
    out = {k: {"alpha": [], "distance": []} for k in targets}
    for meta, spec, tr in runs["theorems"]:
        kind = meta["rule"]
        out[kind]["alpha"].append(spec.alpha)
        out[kind]["distance"].append(float(np.linalg.norm(tr.w_hat[-1] - targets[kind])))
    for row in out.values():
        row["rate"] = loglog_fit(row["alpha"], row["distance"])["slope"]
    # Predicted rates (D = 2): sub-linear, the O(1/γ̃) lag of ŵ behind its limit,
    # γ̃ = α^{D/2}; linear, the finite-α error O(α^{-D}) (Fig. 5(b)'s ratio falls so too);
    # super-linear, Q_μ -> ℓ1 like μ^{1-ρ_max} (depthlaw.py) at μ_eff = α^{-D}
    rho = float(sol["depth_law_dataset"]["rho_max"])
    for key, rate in (("sublinear_l2", -1.0), ("linear_qmu", -2.0), ("superlinear_l1", -2.0 * (1.0 - rho))):
        out[key]["theory_rate"] = rate
    out["mu"] = float(sol["theorems"]["mu"])
    return out


def _depth_fits(groups, theory):
    """{depth: delta, mu, both models' fits, ``fit`` (the paper's model for that depth)
    ``theory`` (a predicted asymptotic slope, see depthlaw.py) and ``theory_model`` (the
    fit it is the slope of)}."""
    out = {}
    for key, g in groups.items():
        if not key.startswith("D"):
            continue
        D = int(key[1:])
        delta, mu = np.asarray(g["delta"]), np.asarray(g["mu"])
        ok = np.isfinite(mu)
        row = {"delta": delta.tolist(), "mu": mu.tolist()}
        if "t_star" in g:
            row["t_star"] = np.asarray(g["t_star"]).tolist()
        if ok.sum() >= 3:
            y = np.log(1.0 / mu[ok])
            for name, x, model in (("fit_inverse", 1.0 / delta[ok], "log(1/mu) = a/delta + b"),
                                   ("fit_power", np.log(1.0 / delta[ok]), "log(1/mu) = a log(1/delta) + b")):
                f = linear_fit(x, y)
                row[name] = dict(model=model, slope=f["slope"], slope_ci=f["slope_ci"],
                                 intercept=f["intercept"], intercept_ci=f["intercept_ci"], r2=f["r2"])
            row["fit"] = row["fit_inverse"] if D == 2 else row["fit_power"]
        row["theory_model"], row["theory"] = theory(D)
        out[str(D)] = row
    return out


def depth_law(sol):
    """Worst case over the near-tie family (the paper's sense; depthlaw.py): per depth δ,
    μ(δ), t*, both models' fits (``fit_inverse``: log(1/μ) = a/δ + b; ``fit_power``:
    log(1/μ) = a log(1/δ) + b), ``fit`` (the paper's model) and ``theory``: the
    asymptotic slope g(k) of the 1/δ model (D = 2) or D/(D-2) of the power model."""
    k = int(sol["depth_law"]["copies"])
    return _depth_fits(sol["depth_law"], lambda D: ("fit_inverse", d2_constant(k)) if D == 2
                       else ("fit_power", power_exponent(D)))


def depth_law_dataset(sol):
    """The same on one dataset (the Fig. 5 data): D = 2 is polynomial there, with the
    log(1/δ)-slope tending to 1/(1 - rho_max); for D > 2 to 1 (``theory``, depthlaw.py)."""
    g = sol["depth_law_dataset"]
    rho = float(g["rho_max"])
    rows = _depth_fits(g, lambda D: ("fit_power", 1.0 / (1.0 - rho) if D == 2 else 1.0))
    return {"dataset": str(g["dataset"]), "rho_max": rho, "depths": rows}


def summary(runs, sol, grid):
    """The summary.json document (keys are the issue's contract)."""
    kinks = sol.get("fig3d", {}).get("D2", {}).get("kinks_mu", np.array([]))
    return {
        "accuracy": [dict(alpha=a, depth=D, mu=m, log10_loss=accuracy(a, D, m))
                     for a, D, m in ACCURACY_EXAMPLES],
        "fig5b": fig5b(runs, sol, grid),
        "kink_mu0": {"fig3d": float(kinks[0]) if len(kinks) else None},
        "theorems": theorems(runs, sol, grid.fig5_dataset),
        "depth_law": depth_law(sol),
        "depth_law_dataset": depth_law_dataset(sol),
    }
