"""The compiled Radau step against the scipy-Python one (compiled-step issue): wall time
of whole ``flowkit.integrate`` calls and of the driver alone (``stats["seconds"]``),
steps, microseconds per step and the largest difference in w_hat, on the issue's cases,
both steps in one process, warm (kernels compiled or loaded first), interleaved, the
median of ``--repeats`` calls each.

Writes compiled_step.md (table), compiled_step.json (rows) and compiled_step.png/.pdf;
``--redraw`` remakes the table and plot from the JSON.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
STEPS = ("scipy", "compiled")


def cases():
    import flowkit

    fig4a, kink = flowkit.datasets.load("fig4a"), flowkit.datasets.load("kink")
    X, y = flowkit.datasets.planted_sparse(20, 50, 5, seed=0)
    return [
        ("fig4a, D = 2, alpha = 100, gamma~ = 1e3", fig4a, dict(depth=2, alpha=100.0, gamma=1e3)),
        ("fig4a, D = 2, alpha = 1, gamma~ = 1e4", fig4a, dict(depth=2, alpha=1.0, gamma=1e4)),
        ("fig4a, D = 3, alpha = 100, gamma~ = 1e3", fig4a, dict(depth=3, alpha=100.0, gamma=1e3)),
        ("kink, D = 2, alpha = 1e3, gamma~ = 5e6", kink, dict(depth=2, alpha=1e3, gamma=5e6)),
        ("kink, D = 2, alpha = 1e5, gamma~ = 5e10", kink, dict(depth=2, alpha=1e5, gamma=5e10)),
        ("kink, D = 2, alpha = 1e3, gamma~ = 1e20", kink, dict(depth=2, alpha=1e3, gamma=1e20)),
        ("planted 20 x 50, D = 2, alpha = 1, gamma~ = 1e6", (X, y), dict(depth=2, alpha=1.0, gamma=1e6)),
    ]


def measure(repeats):
    import flowkit

    rows = []
    for name, (X, y), kw in cases():
        for step in STEPS:  # compile or load the kernels, warm the caches
            flowkit.integrate(X, y, step=step, linalg="dense", **kw)
        wall = {s: [] for s in STEPS}
        driver = {s: [] for s in STEPS}
        runs = {}
        for _ in range(repeats):
            for step in STEPS:
                t0 = time.perf_counter()
                tr = flowkit.integrate(X, y, step=step, linalg="dense", **kw)
                wall[step].append(time.perf_counter() - t0)
                driver[step].append(tr.stats["seconds"])
                runs[step] = tr
        a, b = runs["scipy"], runs["compiled"]
        row = {"case": name, "dw_hat": float(np.max(np.abs(a.w_hat - b.w_hat)))}
        for step in STEPS:
            tr = runs[step]
            row[step] = {"steps": tr.stats["steps"], "nfev": tr.stats["nfev"],
                         "wall": statistics.median(wall[step]), "driver": statistics.median(driver[step])}
            row[step]["us_per_step"] = 1e6 * row[step]["driver"] / tr.stats["steps"]
        row["ratio_wall"] = row["scipy"]["wall"] / row["compiled"]["wall"]
        row["ratio_driver"] = row["scipy"]["driver"] / row["compiled"]["driver"]
        rows.append(row)
        print(name, f"{row['ratio_wall']:.1f}x", file=sys.stderr)
    # the sweep: 32 alpha on fig4a, D = 2 (per trajectory)
    X, y = flowkit.datasets.load("fig4a")
    alphas = np.logspace(-1, 3, 32)
    row = {"case": "fig4a, D = 2, 32 alpha in [0.1, 1e3], gamma~ = 1e4 (per trajectory)", "dw_hat": 0.0}
    for step in STEPS:
        t0, steps, drv = time.perf_counter(), 0, 0.0
        for al in alphas:
            tr = flowkit.integrate(X, y, depth=2, alpha=float(al), gamma=1e4, step=step)
            steps += tr.stats["steps"]
            drv += tr.stats["seconds"]
        n = len(alphas)
        row[step] = {"steps": steps // n, "nfev": 0, "wall": (time.perf_counter() - t0) / n,
                     "driver": drv / n, "us_per_step": 1e6 * drv / steps}
    row["ratio_wall"] = row["scipy"]["wall"] / row["compiled"]["wall"]
    row["ratio_driver"] = row["scipy"]["driver"] / row["compiled"]["driver"]
    rows.append(row)
    return rows


def machine():
    import numba
    import scipy

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {platform.system()} {platform.release()}, CPython {platform.python_version()}, "
            f"numpy {np.__version__}, scipy {scipy.__version__}, numba {numba.__version__}")


def table(rows, info):
    lines = ["# The compiled Radau step against scipy's Python step", "",
             f"Machine: {info['machine']}. Median of {info['repeats']} warm calls each, the two steps "
             "interleaved in one process; rtol 1e-10, linalg dense. *wall*: the whole "
             "`flowkit.integrate` call; *driver*: the integration alone (`stats[\"seconds\"]`).", "",
             "| case | steps scipy / compiled | wall scipy | wall compiled | ratio | driver ratio "
             "| µs per step scipy / compiled | max abs Δŵ |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        a, b = r["scipy"], r["compiled"]
        lines.append(f"| {r['case']} | {a['steps']} / {b['steps']} | {1e3 * a['wall']:.1f} ms "
                     f"| {1e3 * b['wall']:.1f} ms | {r['ratio_wall']:.1f} | {r['ratio_driver']:.1f} "
                     f"| {a['us_per_step']:.0f} / {b['us_per_step']:.1f} | {r['dw_hat']:.1e} |")
    return "\n".join(lines) + "\n"


def bars(rows, series, stem, xlabel, title):
    """Horizontal bars of milliseconds per case, one bar per (value(row), label) of
    ``series`` (also benchmarks/peer_diffrax.py)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    sys.path.insert(0, str(HERE.parent))
    from flowkit.analysis.style import SERIES, context

    with context():
        fig = Figure(figsize=(6.4, 3.6), layout="constrained")
        ax = fig.subplots()
        k = np.arange(len(rows))
        width = 0.8 / len(series)
        for j, (value, label) in enumerate(series):
            ax.barh(k + width * (j - (len(series) - 1) / 2), [1e3 * value(r) for r in rows], height=width,
                    color=SERIES[j], label=label)
        ax.set_yticks(k, [r["case"].replace(", gamma~", "\ngamma~") for r in rows], fontsize=6)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_title(title)
        ax.legend(fontsize=7)
        for ext in ("png", "pdf"):
            fig.savefig(f"{stem}.{ext}", dpi=150)


def plot(rows, stem):
    bars(rows, [(lambda r, s=step: r[s]["wall"], f"step = {step!r}") for step in STEPS], stem,
         "wall time of one integrate call (ms, median)", "Radau step: scipy's Python vs compiled")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--redraw", action="store_true", help="table and plot from compiled_step.json")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    stem = HERE / "compiled_step"
    if args.redraw:
        data = json.loads(Path(f"{stem}.json").read_text())
    else:
        data = {"info": {"machine": machine(), "repeats": args.repeats}, "rows": measure(args.repeats)}
        Path(f"{stem}.json").write_text(json.dumps(data, indent=1))
    text = table(data["rows"], data["info"])
    Path(f"{stem}.md").write_text(text)
    plot(data["rows"], stem)
    print(text)


if __name__ == "__main__":
    main()
