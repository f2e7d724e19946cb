"""Hard regime benchmark: the kink dataset (D = 2, mu = 0.2), alpha = 1e3 ... 1e6.

Past the support-vector change at mu* ~ 0.405 the flow is stiff with ratio ~gamma~.
For each alpha: flowkit's default (Radau + analytic numba Jacobian) against a baseline
run in the same process, the same coordinates with scipy's finite-difference Jacobian.
Writes hard_regime.md (table) and hard_regime.png/.pdf (plot) next to this file.

    python benchmarks/hard_regime.py
"""
import math
import time
from pathlib import Path

import numpy as np

import flowkit
from flowkit.flow import Flow, IntegrationError
from flowkit.integrator import save_grid
from flowkit.problem import Problem

HERE = Path(__file__).resolve().parent
W_Q = np.array([0.205611362043526, 0.327104260766322, 0.897194318978237])  # Q_0.2 (KKT, tests)


def one(alpha, analytic, max_steps=60_000):
    X, y = flowkit.datasets.load("kink")
    flow = Flow(Problem.build(X, y, 2, alpha), max_steps=max_steps)
    if not analytic:
        flow.jac = None  # scipy forms the Jacobian by finite differences
    target = alpha ** 2 / 0.2
    grid = save_grid(target)
    t0 = time.perf_counter()
    try:
        states, stats = flow.advance(flow.sigma0, flow.z0, [math.log(g) for g in grid])
    except IntegrationError as exc:
        return {"ok": False, "seconds": time.perf_counter() - t0, "why": str(exc)}
    traj = flowkit.Trajectory.from_states(flow, grid, states, stats, "mu=0.2")
    return {"ok": True, "seconds": time.perf_counter() - t0, "nfev": stats["nfev"],
            "njev": stats["njev"], "steps": stats["steps"],
            "error": float(np.max(np.abs(traj.w_hat[-1] - W_Q)))}


def main():
    one(1e2, True)  # compile / warm the numba cache outside the timings
    rows = []
    for alpha in (1e3, 1e4, 1e5, 1e6):
        rows.append((alpha, one(alpha, True), one(alpha, False)))
    lines = ["| alpha | gamma~ | flowkit steps | nfev | njev | seconds | max abs error of w_hat | FD-Jacobian baseline seconds | ratio |",
             "|---|---|---|---|---|---|---|---|---|"]
    for alpha, a, b in rows:
        fk = (f"{a['steps']} | {a['nfev']} | {a['njev']} | {a['seconds']:.2f} | {a['error']:.1e}"
              if a["ok"] else f"fails | | | {a['seconds']:.1f} | {a['why'][:60]}")
        base = f"{b['seconds']:.2f}" if b["ok"] else f"fails after {b['seconds']:.1f}"
        ratio = f"{b['seconds'] / a['seconds']:.1f}x" if a["ok"] and b["ok"] else "-"
        lines.append(f"| {alpha:.0e} | {alpha**2/0.2:.1e} | {fk} | {base} | {ratio} |")
    (HERE / "hard_regime.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for k, (label, color, marker) in enumerate([("flowkit (analytic Jacobian)", "#0072B2", "o"),
                                                 ("baseline (finite-difference Jacobian)", "#D55E00", "s")]):
        xs = [r[0] for r in rows if r[1 + k]["ok"]]
        ys = [r[1 + k]["seconds"] for r in rows if r[1 + k]["ok"]]
        ax.loglog(xs, ys, marker=marker, color=color, label=label)
    ax.set_xlabel("initialisation scale alpha")
    ax.set_ylabel("wall time to gamma~ = alpha^2/0.2 [s]")
    ax.set_title("kink data, D = 2, mu = 0.2")
    ax.legend()
    fig.tight_layout()
    for ext in ("png", "pdf"):
        fig.savefig(HERE / f"hard_regime.{ext}", dpi=150)


if __name__ == "__main__":
    main()
