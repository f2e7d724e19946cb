"""Sweep throughput (issue: 200 runs on fig4a, D in {2, 3}, 100 alphas log-spaced
0.1..1e3, gamma~ = 1e6, in <= 60 s on 2 cores).

Baseline, same process: the same runs integrated one after another in this process
(a sample of them, scaled up), i.e. what the sweep would cost without workers or store.
The sweep itself runs through ``flowkit sweep``'s code path (run_sweep, local workers,
HDF5 store with journal and commits).  Writes sweep_throughput.md and .png/.pdf
(``--step compiled``: the runs on flowkit.CompiledRadau, sweep_throughput_compiled.*).

    python benchmarks/sweep_throughput.py [--workers N] [--step scipy|compiled]
"""
import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import flowkit
from flowkit.sweep import parse_config, run_sweep

HERE = Path(__file__).resolve().parent
CONFIG = """\
[sweep]
datasets = ["fig4a"]
depths = [2, 3]
alphas = { logspace = [-1, 3], num = 100 }

[[stop]]
gamma = 1e6
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--sample", type=int, default=20, help="runs timed serially for the baseline")
    ap.add_argument("--step", choices=("scipy", "compiled"), default="scipy")
    args = ap.parse_args()
    specs = parse_config(CONFIG + f'\n[solver]\nstep = "{args.step}"\n')
    assert len(specs) == 200
    name = "sweep_throughput" + ("" if args.step == "scipy" else "_compiled")

    # baseline: serial in-process integration of an evenly spaced sample
    X, y = flowkit.datasets.load("fig4a")
    for D in (2, 3):  # compile/load kernels first (the compiled step: every mode)
        flowkit.integrate(X, y, depth=D, alpha=1.0, gamma=1e6, step=args.step)
    sample = specs[:: len(specs) // args.sample]
    t0 = time.perf_counter()
    for s in sample:
        flowkit.integrate(s.X, s.y, depth=s.depth, alpha=s.alpha, step=args.step, **s.stop)
    serial_per_run = (time.perf_counter() - t0) / len(sample)

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.h5"
        rep = run_sweep(specs, out, workers=args.workers, progress=False)
        with flowkit.open_store(out) as store:
            df = store.summary()
            size = out.stat().st_size
    assert rep.done == 200 and rep.failed == 0, rep
    ts = pd.to_datetime(df["timestamp"]).sort_values()
    done_at = (ts - ts.iloc[0]).dt.total_seconds().to_numpy()

    rows = [
        ("runs", 200),
        ("step", args.step),
        ("workers", args.workers),
        ("sweep wall time (s)", f"{rep.seconds:.1f}"),
        ("serial baseline, same process (s, from a sample of %d)" % len(sample), f"{200 * serial_per_run:.1f}"),
        ("ratio baseline / sweep", f"{200 * serial_per_run / rep.seconds:.2f}"),
        ("mean solver seconds per run (store stats)", f"{df['seconds'].mean():.3f}"),
        ("store size (MB)", f"{size / 1e6:.1f}"),
    ]
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    md = ["# Sweep throughput", "", f"Machine: {machine}.", "", "| quantity | value |", "|---|---|"]
    md += [f"| {k} | {v} |" for k, v in rows]
    (HERE / f"{name}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(done_at, np.arange(1, len(done_at) + 1), color="#0072B2", label=f"sweep, {args.workers} workers")
    ax.plot([0, 200 * serial_per_run], [0, 200], color="#D55E00", ls="--", label="serial baseline")
    ax.set_xlabel("wall time since first stored run (s)")
    ax.set_ylabel("runs stored")
    ax.set_title(f"200-run sweep, fig4a, $\\tilde\\gamma = 10^6$, {args.step} step")
    ax.legend()
    fig.tight_layout()
    for ext in ("png", "pdf"):
        fig.savefig(HERE / f"{name}.{ext}")


if __name__ == "__main__":
    main()
