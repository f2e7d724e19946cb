"""Supports joining at large gamma~ (engine-composition issue §3): 42 runs to gamma~ = 1e30.

Seven data sets (fig4a, kink, fig3d, and planted Gaussian 6 x 4 data of seeds 1-4) x
D in {2, 3, 5} x alpha in {1e3, 1e4}, defaults otherwise.  On these, samples join or leave
the support between gamma~ ~ 1e13 and 1e23, where the landing of an offset is shorter
than the float64 spacing of sigma = log gamma~ (driver.py: the anchored clock and the
error weights of ``driver.Driver._floored``).  Each run records whether it reached the target,
where it stopped if not, its steps, wall time and gamma~ consistency.

Writes join_probe.md (table), join_probe.json (rows) and join_probe.png/.pdf;
``--redraw`` remakes the table and plot from the JSON; ``--stem`` writes elsewhere (to run
an older checkout of flowkit on the same probe).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from multiprocessing import get_context
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATASETS = ("fig4a", "kink", "fig3d", "planted1", "planted2", "planted3", "planted4")
DEPTHS = (2, 3, 5)
ALPHAS = (1e3, 1e4)
TARGET = 1e30


def data(name):
    import flowkit

    if name.startswith("planted"):
        rng = np.random.default_rng(int(name[len("planted"):]))
        X = rng.standard_normal((6, 4))
        return X, np.sign(X @ rng.standard_normal(4))
    return flowkit.datasets.load(name)


def run(case):
    import flowkit

    name, D, alpha = case
    X, y = data(name)
    row = {"data": name, "D": D, "alpha": alpha}
    t0 = time.perf_counter()
    try:
        tr = flowkit.integrate(X, y, depth=D, alpha=alpha, gamma=TARGET)
    except Exception as exc:  # noqa: BLE001 - every failure is a result here
        hit = re.search(r"gamma~ = ([0-9.e+-]+)", str(exc))
        row.update(status=type(exc).__name__, why=str(exc)[:160],
                   reached=float(hit.group(1)) if hit else None,
                   seconds=time.perf_counter() - t0)
        return row
    row.update(status="ok", reached=float(tr.gamma[-1]), steps=tr.stats["steps"],
               seconds=time.perf_counter() - t0,
               gamma_consistency=tr.stats["invariants"]["gamma_consistency"])
    return row


def measure(workers):
    cases = [(n, D, a) for n in DATASETS for D in DEPTHS for a in ALPHAS]
    run(("kink", 2, 1e3))  # compile / load the kernels before timing
    if workers > 1:
        with get_context("fork").Pool(workers) as pool:
            return pool.map(run, cases, chunksize=1)
    return [run(c) for c in cases]


def table(rows, seconds):
    ok = [r for r in rows if r["status"] == "ok"]
    lines = [f"# Supports joining at large gamma~: {len(rows)} runs to gamma~ = {TARGET:.0e}", "",
             f"- reached the target: **{len(ok)}** of {len(rows)}; wall {seconds:.0f} s",
             f"- steps of the runs that reached it: {sum(r['steps'] for r in ok)} in all, "
             f"median {int(np.median([r['steps'] for r in ok])) if ok else 0}, "
             f"max {max((r['steps'] for r in ok), default=0)}",
             f"- worst gamma~ consistency: "
             f"{max((r['gamma_consistency'] for r in ok), default=float('nan')):.1e}", "",
             "| data | D | alpha | status | gamma~ reached | steps | s |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        reached = f"{r['reached']:.3g}" if r.get("reached") else "?"
        lines.append(f"| {r['data']} | {r['D']} | {r['alpha']:.0e} | {r['status']} | {reached} | "
                     f"{r.get('steps', '')} | {r['seconds']:.2f} |")
    return "\n".join(lines) + "\n"


def plot(rows, stem):
    sys.path.insert(0, str(HERE.parent))
    from matplotlib.figure import Figure  # no pyplot, so no backend to choose

    from flowkit.analysis.style import SERIES, context, save

    with context():
        fig = Figure(figsize=(7.5, 3.4), layout="constrained")
        ax = fig.subplots()
        x = {n: k for k, n in enumerate(DATASETS)}
        for j, D in enumerate(DEPTHS):
            for m, (alpha, marker) in enumerate(zip(ALPHAS, ("o", "s"))):
                sel = [r for r in rows if r["D"] == D and r["alpha"] == alpha]
                good = [r for r in sel if r["status"] == "ok"]
                bad = [r for r in sel if r["status"] != "ok"]
                off = 0.12 * (2 * j + m - 2.5)
                ax.plot([x[r["data"]] + off for r in good], [r["steps"] for r in good], marker,
                        ls="none", color=SERIES[j], label=f"D = {D}, alpha = {alpha:.0e}")
                if bad:  # failed runs sit on the axis
                    ax.plot([x[r["data"]] + off for r in bad], [0] * len(bad), "x",
                            ls="none", color=SERIES[j], ms=9, clip_on=False)
        ax.set_xticks(range(len(DATASETS)), DATASETS, rotation=30)
        ax.set_ylim(bottom=0)
        ax.set_xlabel("data set")
        ax.set_ylabel("Radau steps (x on the axis: failed)")
        ax.set_title(f"runs to gamma~ = {TARGET:.0e}", fontsize=9)
        fig.legend(*ax.get_legend_handles_labels(), fontsize=7, loc="outside right upper")
    save(fig, stem)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--redraw", action="store_true", help="table and plot from the JSON")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--stem", default=str(HERE / "join_probe"), help="output path without suffix")
    args = ap.parse_args(argv)
    stem = args.stem
    if args.redraw:
        saved = json.loads(Path(f"{stem}.json").read_text())
        rows, seconds = saved["rows"], saved["seconds"]
    else:
        t0 = time.perf_counter()
        rows = measure(args.workers)
        seconds = time.perf_counter() - t0
        Path(f"{stem}.json").write_text(json.dumps({"rows": rows, "seconds": seconds}, indent=1))
    text = table(rows, seconds)
    Path(f"{stem}.md").write_text(text)
    plot(rows, stem)
    print(text)


if __name__ == "__main__":
    main()
