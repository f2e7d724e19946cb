"""Accuracy per rtol of the dual form (flowkit.dual) against the primal state (flowkit.flow),
on small d >> N problems: max over the trajectory of |w_hat - w_hat_ref|, the reference a
primal run at rtol 1e-13 (dense LU).  Writes dual_accuracy.md next to this file.

    python benchmarks/dual_accuracy.py      # ~1 min on the 2-core machine
"""
from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np

import flowkit
from flowkit.dual import DualFlow
from flowkit.flow import Flow
from flowkit.integrator import save_grid
from flowkit.problem import Problem
from flowkit.select import primal_linalg
from flowkit.trajectory import Trajectory

HERE = Path(__file__).resolve().parent
CASES = [dict(N=N, d=d, D=D, alpha=a) for (N, d), D, a in
         itertools.product([(6, 100), (10, 200), (14, 300), (20, 400)], (2, 3), (0.5, 2.0))]
GAMMA, RTOLS = 1e4, (1e-8, 1e-10)


def run(flow):
    grid = save_grid(GAMMA)
    states, stats = flow.advance(flow.sigma0, flow.z0, [math.log(g) for g in grid])
    return Trajectory.from_states(flow, grid, states, stats, "dual_accuracy")


def main():
    rows = []
    for k, c in enumerate(CASES):
        X, y = flowkit.datasets.planted_sparse(c["N"], c["d"], 3, k)
        P = Problem.build(X, y, c["D"], c["alpha"])
        ref = run(Flow(P, rtol=1e-13, linalg="dense")).w_hat
        row = dict(c)
        for rtol in RTOLS:
            # the primal state with the linear algebra the selection gives it (structured for d >> N)
            primal = Flow(P, rtol=rtol, linalg=primal_linalg(P, "Radau", "auto"))
            for name, flow in (("dual", DualFlow(P, rtol=rtol)), ("primal", primal)):
                tr = run(flow)
                row[(name, rtol)] = float(np.max(np.abs(tr.w_hat - ref)))
                row[(name, rtol, "steps")] = tr.stats["steps"]
        rows.append(row)
        print(row, flush=True)
    lines = ["| N | d | D | alpha | " + " | ".join(f"{n} rtol {r:g} (steps)" for r in RTOLS for n in ("dual", "primal")) + " |",
             "|---|---|---|---|" + "---|" * (2 * len(RTOLS))]
    for r in rows:
        cells = [f"{r[(n, t)]:.1e} ({r[(n, t, 'steps')]})" for t in RTOLS for n in ("dual", "primal")]
        lines.append(f"| {r['N']} | {r['d']} | {r['D']} | {r['alpha']:g} | " + " | ".join(cells) + " |")
    worst = [f"{n} rtol {t:g}: {max(r[(n, t)] for r in rows):.1e}" for t in RTOLS for n in ("dual", "primal")]
    lines += ["", "worst: " + "; ".join(worst)]
    (HERE / "dual_accuracy.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
