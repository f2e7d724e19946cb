"""Data scale: the flow on (cX, alpha) against the covariant flow on (X, alpha c^(1/D)).

The equations are covariant (w -> w/c, t -> t c^(-2/D), same gamma~ and margins), so
the two integrations must agree to the solver's tolerance at every scale c.  flowkit runs
the first on its data scaled by a power of two (Problem.scale); ``--unscaled`` runs it
on the data as given (the engine before that), to show what the scaling buys.

    python benchmarks/data_scale.py [--unscaled]

Writes data_scale.md and data_scale.png/.pdf (data_scale_unscaled.* with --unscaled).
"""
import argparse
import itertools
import math
import os
import platform
import warnings
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import flowkit
from flowkit import problem as problem_mod

HERE = Path(__file__).resolve().parent
EXPONENTS = (-200, -100, -20, -12, -8, -4, 4, 8, 20, 50, 100, 200)


def datasets():
    rng = np.random.default_rng(1)
    out = [("fig4a", *flowkit.datasets.load("fig4a"))]
    for k in range(3):
        X = rng.normal(size=(6 + 2 * k, 5))
        out.append((f"gauss{k}", X, np.where(X @ rng.normal(size=5) > 0, 1.0, -1.0)))
    return out


def error(X, y, c, D, alpha):
    """Largest relative difference of w_hat, w and absolute of log t, and the run's
    gamma~-consistency; inf if the scaled run fails."""
    try:
        a = flowkit.integrate(X * c, y, depth=D, alpha=alpha, gamma=1e4)
    except (flowkit.FlowkitError, flowkit.IntegrationError):
        return math.inf, math.inf
    b = flowkit.integrate(X, y, depth=D, alpha=alpha * c ** (1.0 / D), gamma=1e4)
    rel = lambda u, v: float(np.max(np.abs(u - v)) / np.max(np.abs(v)))
    e = max(rel(a.w_hat[-1] * c, b.w_hat[-1]), rel(a.w[-1] * c, b.w[-1]),
            abs(a.log_time[-1] + 2.0 / D * math.log(c) - b.log_time[-1]))
    return e, a.stats["invariants"]["gamma_consistency"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--unscaled", action="store_true", help="the data as given (no Problem.scale)")
    args = ap.parse_args()
    if args.unscaled:  # the engine before the scaling: s = 1 always, no range refusal
        problem_mod.data_scale = lambda Xt: 1.0
    warnings.simplefilter("ignore", RuntimeWarning)
    rows = []
    for e in EXPONENTS:
        errs, gcs = [], []
        for (_, X, y), D, alpha in itertools.product(datasets(), (2, 3), (1e-2, 1.0, 1e2)):
            err, gc = error(X, y, 10.0 ** e, D, alpha)
            errs.append(err)
            gcs.append(gc)
        rows.append((e, max(errs), float(np.median(errs)), sum(map(math.isinf, errs)), max(gcs)))
    name = "data_scale" + ("_unscaled" if args.unscaled else "")
    md = [f"# Data scale ({'unscaled' if args.unscaled else 'flowkit: data scaled by a power of two'})", "",
          f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}. "
          "4 datasets x D in {2, 3} x alpha in {1e-2, 1, 1e2}, gamma~ = 1e4, rtol 1e-10; error: the "
          "largest of |w_hat c - w_hat'| and |w c - w'| (relative) and |log t + (2/D) log c - log t'| "
          "against the covariant run on (X, alpha c^(1/D)).", "",
          "| max abs x | worst error | median error | failed runs | worst gamma~-consistency |",
          "|---|---|---|---|---|"]
    md += [f"| 1e{e} | {w:.1e} | {m:.1e} | {f} | {g:.1e} |" for e, w, m, f, g in rows]
    (HERE / f"{name}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ex = [r[0] for r in rows]
    ax.semilogy(ex, [min(r[1], 1e2) for r in rows], "o-", color="#0072B2", label="worst error (failures at 1e2)")
    ax.semilogy(ex, [max(r[2], 1e-17) for r in rows], "s--", color="#E69F00", label="median error")
    ax.set_xlabel(r"$\log_{10}$ max $|x|$")
    ax.set_ylabel("difference from the covariant run")
    ax.set_title("unscaled data" if args.unscaled else "flowkit (data scaled by a power of two)")
    ax.legend()
    fig.tight_layout()
    for ext in ("png", "pdf"):
        fig.savefig(HERE / f"{name}.{ext}")


if __name__ == "__main__":
    main()
