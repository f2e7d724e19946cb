"""Large alpha on ``fig3d`` (engine-composition issue §3): steps and wall time of
``integrate(..., depth=2, alpha=alpha, mu=mu)`` (gamma~ = alpha²/mu, up to 1e14) for
alpha = 1e2 ... 1e6 and the issue's four mu.  Before the double-double offset rates
(flowkit/_kernels/xi_rates.py) alpha = 1e6 failed for mu <= 0.2 and the steps grew
~linearly in alpha; the claim checked here is growth ~log alpha.

Writes large_gamma.md (table), large_gamma.json (rows) and large_gamma.png/.pdf;
``--redraw`` remakes the table and plot from the JSON.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ALPHAS = (1e2, 1e3, 1e4, 1e5, 1e6)
MUS = (1.0, 0.2, 0.05, 0.01)


def measure():
    import flowkit

    X, y = flowkit.datasets.load("fig3d")
    flowkit.integrate(X, y, depth=2, alpha=1e3, mu=0.05)  # compile / load the kernels
    rows = []
    for mu in MUS:
        for alpha in ALPHAS:
            t0 = time.perf_counter()
            tr = flowkit.integrate(X, y, depth=2, alpha=alpha, mu=mu)
            rows.append({"mu": mu, "alpha": alpha, "gamma": float(tr.gamma[-1]),
                         "steps": tr.stats["steps"], "seconds": time.perf_counter() - t0,
                         "gamma_consistency": tr.stats["invariants"]["gamma_consistency"]})
    return rows


def table(rows):
    lines = ["# fig3d, D = 2, gamma~ = alpha²/mu: steps / wall seconds", "",
             "| mu | " + " | ".join(f"alpha = {a:.0e}" for a in ALPHAS) + " | worst gamma~ consistency |",
             "|---|" + "---|" * (len(ALPHAS) + 1)]
    for mu in MUS:
        sel = [r for r in rows if r["mu"] == mu]
        cells = [f"{r['steps']} / {r['seconds']:.2f} s" for r in sel]
        worst = max(r["gamma_consistency"] for r in sel)
        lines.append(f"| {mu:g} | " + " | ".join(cells) + f" | {worst:.1e} |")
    return "\n".join(lines) + "\n"


def plot(rows, stem):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    sys.path.insert(0, str(HERE.parent))
    from flowkit.analysis.style import SERIES, context

    with context():
        fig = Figure(figsize=(4.5, 3.2), layout="constrained")
        ax = fig.subplots()
        for k, mu in enumerate(MUS):
            sel = [r for r in rows if r["mu"] == mu]
            ax.plot([r["alpha"] for r in sel], [r["steps"] for r in sel], "o-",
                    color=SERIES[k % len(SERIES)], label=f"mu = {mu:g}")
        ax.set_xscale("log")
        ax.set_xlabel("initialisation scale alpha")
        ax.set_ylabel("Radau steps to gamma~ = alpha²/mu")
        ax.set_title("fig3d, D = 2")
        ax.legend()
        for ext in ("png", "pdf"):
            fig.savefig(f"{stem}.{ext}", dpi=150)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--redraw", action="store_true", help="table and plot from large_gamma.json")
    args = ap.parse_args(argv)
    stem = HERE / "large_gamma"
    if args.redraw:
        rows = json.loads(Path(f"{stem}.json").read_text())["rows"]
    else:
        rows = measure()
        Path(f"{stem}.json").write_text(json.dumps({"rows": rows}, indent=1))
    text = table(rows)
    Path(f"{stem}.md").write_text(text)
    plot(rows, stem)
    print(text)


if __name__ == "__main__":
    main()
