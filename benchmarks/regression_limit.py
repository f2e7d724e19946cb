"""Where squared-loss gradient flow ends, against flowkit.min_potential (objectives issue).

The flow of the network itself is integrated by the tests' independent reference
(tests/_reference_regression.py: u± in log coordinates, scipy Radau at rtol 1e-12, to a
gradient 1e-12 of its start) on random Gaussian data, N < d, D in {2, 3, 5}, alpha from
0.1 to 3 (slower below: the plateaus of small alpha take the reference many steps), and
compared with the Q^D_alpha interpolator; min_potential's own time on larger data and at
the ends of alpha is timed alongside.  Writes regression_limit.md and .png/.pdf.

    python benchmarks/regression_limit.py
"""
import os
import platform
import sys
import time
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from flowkit.analysis.style import SERIES, context, save
from flowkit.minpotential import min_potential

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from _reference_regression import flow_limit  # noqa: E402

def main():
    rng = np.random.default_rng(0)
    rows = []
    for N, d in ((4, 10), (6, 15)):
        X, y = rng.normal(size=(N, d)), rng.normal(size=N)
        for D in (2, 3, 5):
            for alpha in (0.1, 0.5, 1.0, 3.0):
                w, sol = flow_limit(X, y, D, alpha)
                q = min_potential(X, y, "Q", alpha=alpha, depth=D)
                err = float(np.max(np.abs(w - q.w)) / np.max(np.abs(q.w)))
                rows.append((N, d, D, alpha, err, q.kkt_residual, float(sol.t[-1])))
    timing = []
    for N, d in ((10, 20), (30, 100), (50, 200)):
        X, y = rng.normal(size=(N, d)), rng.normal(size=N)
        for D in (2, 3, 5):
            for alpha in (1e-4, 1e-2, 1.0, 1e3):
                t0 = time.perf_counter()
                q = min_potential(X, y, "Q", alpha=alpha, depth=D)
                timing.append((N, d, D, alpha, time.perf_counter() - t0, q.info["newton_iterations"], q.kkt_residual))
    md = ["# Squared-loss flow limit against min_potential", "",
          f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}.", "",
          "| N | d | D | alpha | flow end vs Q interpolator (rel. max) | Q kkt_residual | t at the end |",
          "|---|---|---|---|---|---|---|"]
    md += [f"| {N} | {d} | {D} | {a:g} | {e:.1e} | {k:.1e} | {t:.3g} |" for N, d, D, a, e, k, t in rows]
    md += ["", f"Worst: {max(r[4] for r in rows):.1e} over {len(rows)} cases.", "",
           "min_potential(kind='Q') alone (first call excluded: compiled kernels warm):", "",
           "| N | d | D | alpha | seconds | Newton iterations | kkt_residual |", "|---|---|---|---|---|---|---|"]
    md += [f"| {N} | {d} | {D} | {a:g} | {s:.3f} | {i} | {k:.1e} |" for N, d, D, a, s, i, k in timing]
    (HERE / "regression_limit.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    with context():
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for colour, D in zip(SERIES, (2, 3, 5)):
            sel = [r for r in rows if r[2] == D]
            ax.loglog([r[3] for r in sel], [r[4] for r in sel], "o", color=colour, label=f"D = {D}")
        ax.set_xlabel(r"initialisation scale $\alpha$")
        ax.set_ylabel("flow end vs Q interpolator (relative)")
        ax.legend()
        save(fig, HERE / "regression_limit")


if __name__ == "__main__":
    min_potential(np.eye(2, 3), [1.0, 2.0], "Q", alpha=1.0, depth=3)  # compile the kernels
    main()
