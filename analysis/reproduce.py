"""``flowkit reproduce --out DIR``: the paper end to end.

1. run the sweeps of ``plan`` into DIR/runs.h5 (a flowkit store; runs already there are
   skipped, so an interrupted reproduce resumes);
2. compute the max-margin solutions, Q_μ paths and the depth law into DIR/solutions.h5;
3. from those two files only: figures (PNG + PDF), DIR/summary.json and DIR/REPORT.md.

``--reuse`` skips 1 and 2 and redraws from the stored files.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

import flowkit
from flowkit.exceptions import FlowkitError
from flowkit.sweep import run_sweep

from . import draw, results, solutions
from .report import report
from .plan import FULL, plan

__all__ = ["reproduce"]


def _json_default(o):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    raise TypeError(type(o))


def _clean(o):
    """NaN -> None so summary.json is strict JSON."""
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return o


def reproduce(out_dir, *, reuse=False, grid=FULL, workers=None, progress=True, log=print,
              step="scipy"):
    """Run (unless ``reuse``) and report the paper's figures and claims into ``out_dir``, the
    runs on integrate's ``step``.  Returns the summary dict (also written as summary.json)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs_h5, sol_h5 = out / "runs.h5", out / "solutions.h5"
    p = plan(grid, step)
    timings = {}
    t0 = time.perf_counter()
    if reuse:
        missing = [str(f) for f in (runs_h5, sol_h5) if not f.exists()]
        if missing:
            raise FlowkitError(f"--reuse needs the stored results, missing: {', '.join(missing)}")
    else:
        specs = [spec for rows in p.values() for _, spec in rows]
        log(f"reproduce: {len(specs)} planned runs into {runs_h5}")
        rep = run_sweep(specs, runs_h5, workers=workers, progress=progress)
        if rep.interrupted:
            raise KeyboardInterrupt
        if rep.pending or rep.failed:
            raise FlowkitError(f"{rep.failed} runs failed and {rep.pending} did not complete; "
                               f"see `flowkit store summary {runs_h5}`")
        timings["sweep"] = rep.seconds
        t1 = time.perf_counter()
        log("reproduce: max-margin solutions, Q_mu paths, depth law")
        solutions.compute(grid, sol_h5)
        timings["solutions"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    runs = results.load_runs(runs_h5, p)
    sol = solutions.load(sol_h5)
    summ = _clean(json.loads(json.dumps(results.summary(runs, sol, grid), default=_json_default)))
    figures = draw.all_figures(runs, sol, summ, grid, out)
    timings["figures"] = time.perf_counter() - t2
    timings["total"] = time.perf_counter() - t0
    (out / "summary.json").write_text(json.dumps(summ, indent=2, allow_nan=False))
    stats = _run_stats(runs)
    (out / "REPORT.md").write_text(report(summ, figures, stats, timings, grid))
    log(f"reproduce: wrote {out / 'REPORT.md'} and {out / 'summary.json'} "
        f"({timings['total']:.0f} s)")
    return summ


def _run_stats(runs):
    rows = [tr for v in runs.values() for _, _, tr in v]
    return dict(runs=len(rows),
                steps=int(sum(tr.stats["steps"] for tr in rows)),
                nfev=int(sum(tr.stats["nfev"] for tr in rows)),
                solver_seconds=float(sum(tr.stats["seconds"] for tr in rows)),
                max_gamma_consistency=float(max(tr.stats["invariants"]["gamma_consistency"] for tr in rows)),
                max_margin_bounds=float(max(tr.stats["invariants"]["margin_bounds"] for tr in rows)),
                min_lemma3_slack=float(min(tr.stats["invariants"]["lemma3_slack"] for tr in rows)),
                flowkit_version=flowkit.__version__)
