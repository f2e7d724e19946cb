"""Accuracy of flowkit's w_hat against the independent reference integrator
(tests/_reference_flow.py) on the engine issue's grid: fig4a, D in {2, 3, 10},
alpha in {0.1, 1, 10, 100}, gamma~ in {1e2, 1e6}, flowkit at its defaults.
Writes accuracy.md next to this file.

    python benchmarks/accuracy.py
"""
import sys
import time
from pathlib import Path

import numpy as np

import flowkit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from _reference_flow import reference_w  # noqa: E402


def main():
    X, y = flowkit.datasets.load("fig4a")
    Xt = y[:, None] * X
    flowkit.integrate(X, y, depth=2, alpha=1.0, gamma=10.0)  # compile outside the timings
    lines = ["| D | alpha | gamma~ | max abs error of w_hat | flowkit s | reference s |",
             "|---|---|---|---|---|---|"]
    errors = []
    for D in (2, 3, 10):
        for alpha in (0.1, 1.0, 10.0, 100.0):
            for gamma in (1e2, 1e6):
                t0 = time.perf_counter()
                w_ref = reference_w(Xt, D, alpha, gamma)
                t_ref = time.perf_counter() - t0
                tr = flowkit.integrate(X, y, depth=D, alpha=alpha, gamma=gamma)
                err = float(np.max(np.abs(tr.w_hat[-1] - w_ref / np.min(Xt @ w_ref))))
                errors.append(err)
                lines.append(f"| {D} | {alpha:g} | {gamma:.0e} | {err:.1e} | "
                             f"{tr.stats['seconds']:.2f} | {t_ref:.2f} |")
    lines.append(f"\nworst {max(errors):.1e}, median {np.median(errors):.1e}")
    (HERE / "accuracy.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
