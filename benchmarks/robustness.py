"""Robustness battery: flowkit.integrate with its defaults on data nobody tuned for.

Dataset families (``FAMILIES``; seeds make each one many datasets): Gaussian X with labels
from a random planted separator (mixed labels; N > d and N < d, d from 1 to 50), duplicated
samples, a sample orthogonal to all the others, two samples 1e-9 apart (near-ties),
features scaled by 1e+6 and 1e-6, all-positive data (every label +1) and 3 x 3 positive
data with a kink on its Q_mu path.  Each dataset runs one or more cells of the grid
depth D in {2, 3, 5, 10, 20} x alpha in {1e-6, 1e-4, 1e-2, 1, 1e2, 1e4, 1e6} x
gamma~ in {1e2, 1e6, 1e13}, chosen so that the battery covers every cell, within the
documented range (|D log alpha| <= 600, gamma~ <= 1e15).

Every run records status (ok, or the exception's type and message), time, steps and the
plateau clock's share.  Where an independent reference can run (tests/_reference_flow.py:
the sigma-clock reference with its arc-length bridge, or the physical-time one for
gamma~ = 1e2 when the first fails) w_hat is compared with it.  Writes robustness.md (tables
by cell, failures, slowest cases), robustness.json (raw rows) and robustness.png/.pdf.

    python benchmarks/robustness.py [--quick] [--datasets 300] [--per-dataset 1]
        [--reference-every 3] [--workers 2] [--no-reference] [--redraw]
        [--gammas 1e20 1e30 --seed 7 --stem benchmarks/robustness_far]   (past the grid)
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import signal
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

DEPTHS = (2, 3, 5, 10, 20)
ALPHAS = (1e-6, 1e-4, 1e-2, 1.0, 1e2, 1e4, 1e6)
GAMMAS = (1e2, 1e6, 1e13)
TOL = 1e-8  # w_hat against the reference, relative to max |w_hat|
RUN_LIMIT = 60.0  # seconds a flowkit run may take before it counts as a failure
REF_LIMIT = 30.0   # seconds for a reference run (its own limits are not flowkit's)
REF_GAMMA = 1e6    # the references' cost grows with gamma~; past this they are not run


def _planted(rng, X):
    """Labels of a random planted separator through 0 (resampled if it ties a sample)."""
    while True:
        w = rng.standard_normal(X.shape[1])
        m = X @ w
        if np.min(np.abs(m)) > 1e-6 * np.max(np.abs(m)):
            return np.sign(m)


def gauss(rng):
    N, d = int(rng.integers(2, 41)), int(rng.integers(1, 51))
    X = rng.standard_normal((N, d))
    return X, _planted(rng, X)


def tall(rng):  # N > d
    d = int(rng.integers(1, 8))
    X = rng.standard_normal((int(rng.integers(d + 1, 4 * d + 8)), d))
    return X, _planted(rng, X)


def duplicated(rng):
    X, y = gauss(rng)
    k = rng.integers(0, X.shape[0], size=max(1, X.shape[0] // 3))
    return np.vstack([X, X[k]]), np.concatenate([y, y[k]])


def orthogonal(rng):
    """One sample orthogonal to all the others (and nonzero)."""
    N, d = int(rng.integers(3, 12)), int(rng.integers(2, 10))
    X = rng.standard_normal((N, d))
    X[:-1, 0] = 0.0
    X[-1] = 0.0
    X[-1, 0] = rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 2.0)
    y = _planted(rng, X)
    return X, y


def near_tie(rng):
    X, y = gauss(rng)
    X = np.vstack([X, X[0] + 1e-9 * rng.standard_normal(X.shape[1])])
    return X, np.append(y, y[0])


def scaled(rng):
    X, _ = gauss(rng)
    X = X * (10.0 ** rng.choice([-6.0, 6.0], size=X.shape[1]))
    return X, _planted(rng, X)


def positive(rng):
    N, d = int(rng.integers(2, 20)), int(rng.integers(1, 20))
    return rng.uniform(0.05, 1.0, size=(N, d)), np.ones(N)


def kink3(rng):
    """3 x 3 positive data, the issue's family with one Q_mu kink (all labels +1)."""
    return np.round(rng.uniform(0.1, 0.9, size=(3, 3)), 2), np.ones(3)


FAMILIES = {"gauss": gauss, "tall": tall, "duplicated": duplicated, "orthogonal": orthogonal,
            "near_tie": near_tie, "scaled": scaled, "positive": positive, "kink3": kink3}


def in_range(D, alpha):
    return abs(D * math.log(alpha)) <= 600.0


def cases(n_datasets, per_dataset, seed=0):
    """(family, seed, D, alpha, gamma) with every grid cell covered; deterministic."""
    cells = [(D, a, g) for D in DEPTHS for a in ALPHAS for g in GAMMAS if in_range(D, a)]
    rng = np.random.default_rng(seed)
    order = [cells[k] for k in rng.permutation(len(cells))]
    fams = list(FAMILIES)
    out, c = [], 0
    for k in range(n_datasets):
        fam = fams[k % len(fams)]
        for _ in range(per_dataset):
            out.append((fam, k, *order[c % len(order)]))
            c += 1
    return out


def data(family, seed):
    return FAMILIES[family](np.random.default_rng([seed, len(family)]))


def _reference(Xt, D, alpha, gamma):
    from _reference_flow import reference_w, reference_w_time

    try:
        return reference_w(Xt, D, alpha, gamma, rtol=1e-12), "sigma"
    except Exception:  # noqa: BLE001 - the reference's own limits: try the other one
        if gamma > 200:
            return None, "none"
    try:
        return reference_w_time(Xt, D, alpha, gamma), "time"
    except Exception:  # noqa: BLE001
        return None, "none"


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout


def _bounded(fn, seconds):
    """fn() or _Timeout after ``seconds`` of wall time (SIGALRM: workers are processes)."""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# the Radau step of every run (``--step``): "scipy" (the default) or "compiled", which runs
# with linalg "dense" (the only linear algebra it has)
STEP = "scipy"


def run_case(case, reference=True):
    import flowkit
    from flowkit.exceptions import NotSeparableError

    family, seed, D, alpha, gamma = case
    X, y = data(family, seed)
    row = {"family": family, "seed": seed, "N": X.shape[0], "d": X.shape[1], "D": D,
           "alpha": alpha, "gamma": gamma}
    t0 = time.perf_counter()
    try:
        options = {"step": "compiled", "linalg": "dense"} if STEP == "compiled" else {}
        tr = _bounded(lambda: flowkit.integrate(X, y, depth=D, alpha=alpha, gamma=gamma, **options),
                      RUN_LIMIT)
    except _Timeout:
        row.update(status="timeout", why=f"more than {RUN_LIMIT} s", seconds=RUN_LIMIT)
        return row
    except NotSeparableError:
        row["status"] = "not separable"  # a generator's fault, not flowkit's
        return row
    except Exception as exc:  # noqa: BLE001 - every failure is a result here
        row.update(status=type(exc).__name__, why=str(exc)[:200],
                   seconds=time.perf_counter() - t0)
        return row
    row.update(status="ok", seconds=time.perf_counter() - t0, steps=tr.stats["steps"],
               plateau_steps=tr.stats.get("plateau_steps", 0), linalg=tr.stats["linalg"])
    if reference and X.shape[0] * X.shape[1] <= 400 and gamma <= REF_GAMMA:
        Xt = y[:, None] * X
        try:
            w_ref, kind = _bounded(lambda: _reference(Xt, D, alpha, gamma), REF_LIMIT)
        except _Timeout:
            w_ref, kind = None, "timeout"
        if w_ref is not None and np.all(np.isfinite(w_ref)):
            what = w_ref / np.min(Xt @ w_ref)
            err = float(np.max(np.abs(tr.w_hat[-1] - what)) / np.max(np.abs(what)))
            row.update(reference=kind, error=err)
        else:
            row["reference"] = "none"
    return row


def _run_star(args):
    return run_case(*args)


def _cell_table(rows, key, values, label):
    lines = [f"| {label} | runs | failures | median s | max s | ref. compared | worst error |",
             "|---|---|---|---|---|---|---|"]
    for v in values:
        sel = [r for r in rows if r[key] == v and r["status"] != "not separable"]
        if not sel:
            continue
        ok = [r for r in sel if r["status"] == "ok"]
        secs = [r["seconds"] for r in ok]
        errs = [r["error"] for r in ok if "error" in r]
        lines.append(f"| {v:g} | {len(sel)} | {len(sel) - len(ok)} | "
                     f"{np.median(secs) if secs else float('nan'):.3f} | "
                     f"{max(secs) if secs else float('nan'):.2f} | {len(errs)} | "
                     f"{max(errs) if errs else float('nan'):.1e} |")
    return lines


def report(rows, seconds, workers):
    import platform

    valid = [r for r in rows if r["status"] != "not separable"]
    fails = [r for r in valid if r["status"] != "ok"]
    errs = [r for r in valid if "error" in r]
    bad = [r for r in errs if r["error"] > TOL]
    lines = [f"# Robustness battery ({len(valid)} runs on {len({(r['family'], r['seed']) for r in valid})} datasets)",
             "", f"`python benchmarks/robustness.py{' --step compiled' if STEP == 'compiled' else ''}`, {workers} workers, {seconds:.0f} s wall, "
             f"{platform.processor() or platform.machine()}, {mp.cpu_count()} CPUs, "
             f"Python {platform.python_version()}.", "",
             f"- failures: **{len(fails)}** of {len(valid)}",
             f"- w_hat against an independent reference: {len(errs)} compared, worst "
             f"{max((r['error'] for r in errs), default=float('nan')):.1e}, "
             f"{len(bad)} above {TOL:g}", ""]
    for key, values, label in (("D", DEPTHS, "D"), ("alpha", ALPHAS, "alpha"), ("gamma", GAMMAS, "gamma~")):
        lines += [f"## By {label}", ""] + _cell_table(valid, key, values, label) + [""]
    lines += ["## By family", "", "| family | runs | failures | median s |", "|---|---|---|---|"]
    for fam in FAMILIES:
        sel = [r for r in valid if r["family"] == fam]
        ok = [r["seconds"] for r in sel if r["status"] == "ok"]
        lines.append(f"| {fam} | {len(sel)} | {len(sel) - len(ok)} | {np.median(ok) if ok else float('nan'):.3f} |")
    lines += ["", "## Failures", ""]
    lines += [f"- {r['family']} seed {r['seed']} (N={r['N']}, d={r['d']}) D={r['D']} alpha={r['alpha']:g} "
              f"gamma~={r['gamma']:g}: {r['status']}: {r.get('why', '')}" for r in fails] or ["none"]
    lines += ["", "## Reference disagreements above tolerance", ""]
    lines += [f"- {r['family']} seed {r['seed']} D={r['D']} alpha={r['alpha']:g} gamma~={r['gamma']:g}: "
              f"{r['error']:.2e} ({r['reference']})" for r in bad] or ["none"]
    lines += ["", "## Slowest runs", "", "| family | seed | N | d | D | alpha | gamma~ | s | steps | plateau steps |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted([r for r in valid if r["status"] == "ok"], key=lambda r: -r["seconds"])[:12]:
        lines.append(f"| {r['family']} | {r['seed']} | {r['N']} | {r['d']} | {r['D']} | {r['alpha']:g} | "
                     f"{r['gamma']:g} | {r['seconds']:.2f} | {r['steps']} | {r['plateau_steps']} |")
    return "\n".join(lines) + "\n"


def plot(rows, stem):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    sys.path.insert(0, str(HERE.parent))
    from flowkit.analysis.style import SERIES, context

    valid = [r for r in rows if r["status"] != "not separable"]
    with context():
        fig = Figure(figsize=(7.0, 3.2))
        ax1, ax2 = fig.subplots(1, 2)
        for k, D in enumerate(DEPTHS):
            sel = [r for r in valid if r["D"] == D and r["status"] == "ok"]
            ax1.scatter([r["alpha"] for r in sel], [r["seconds"] for r in sel], s=6,
                        color=SERIES[k % len(SERIES)], label=f"D = {D}", alpha=0.7)
            errs = [r for r in sel if "error" in r]
            ax2.scatter([r["alpha"] for r in errs], [max(r["error"], 1e-17) for r in errs], s=6,
                        color=SERIES[k % len(SERIES)], label=f"D = {D}", alpha=0.7)
        ax1.set(xscale="log", yscale="log", xlabel="alpha", ylabel="wall time per run (s)",
                title="time")
        if not any("error" in r for r in valid):  # --no-reference: an empty panel, still labelled
            ax2.scatter([1.0], [TOL], s=0)
        ax2.axhline(TOL, color="black", lw=0.8, ls="--", label=f"tolerance {TOL:g}")
        ax2.set(xscale="log", yscale="log", xlabel="alpha",
                ylabel="max |w_hat - w_hat_ref| / max |w_hat_ref|", title="error vs reference")
        ax1.legend(fontsize=6, loc="upper left")
        ax2.legend(fontsize=6, loc="upper left")
        fig.tight_layout()
        for ext in ("png", "pdf"):
            fig.savefig(f"{stem}.{ext}", dpi=150)


def main(argv=None):
    global GAMMAS, STEP
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="40 datasets x 3 cells")
    ap.add_argument("--datasets", type=int, default=300)
    ap.add_argument("--per-dataset", type=int, default=1, help="grid cells per dataset")
    ap.add_argument("--reference-every", type=int, default=3,
                    help="compare with a reference on every k-th run (they cost seconds each)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument("--redraw", action="store_true", help="tables and plot from robustness.json")
    ap.add_argument("--gammas", type=float, nargs="+", help=f"the gamma~ cells (default {GAMMAS})")
    ap.add_argument("--seed", type=int, default=0, help="the order in which cells meet datasets")
    ap.add_argument("--stem", help="output path without suffix (default benchmarks/robustness)")
    ap.add_argument("--step", choices=("scipy", "compiled"), default="scipy",
                    help="the Radau step of every run (compiled: with linalg 'dense')")
    args = ap.parse_args(argv)
    STEP = args.step  # the forked workers inherit it
    if args.gammas:
        GAMMAS = tuple(args.gammas)  # read by cases() and report(); the forked workers inherit it
    stem = Path(args.stem) if args.stem else HERE / ("robustness_quick" if args.quick else "robustness")
    if args.redraw:
        saved = json.loads(Path(f"{stem}.json").read_text())
        rows, seconds, workers = saved["rows"], saved["seconds"], saved["workers"]
    else:
        todo = cases(40, 3) if args.quick else cases(args.datasets, args.per_dataset, args.seed)
        t0 = time.perf_counter()
        run_case(("gauss", 0, 3, 1.0, 10.0), reference=False)  # compile before timing
        rows = []
        with mp.get_context("fork").Pool(args.workers) as pool:
            jobs = [(c, not args.no_reference and k % args.reference_every == 0) for k, c in enumerate(todo)]
            for k, row in enumerate(pool.imap_unordered(_run_star, jobs)):
                rows.append(row)
                if row["status"] not in ("ok", "not separable") or k % 50 == 0:
                    print(f"[{k + 1}/{len(todo)}] {row['family']} {row['seed']} D={row['D']} "
                          f"alpha={row['alpha']:g} gamma={row['gamma']:g}: {row['status']} "
                          f"{row.get('seconds', 0):.2f}s {row.get('why', '')[:80]}", file=sys.stderr, flush=True)
        seconds, workers = time.perf_counter() - t0, args.workers
        Path(f"{stem}.json").write_text(json.dumps({"rows": rows, "seconds": seconds,
                                                     "workers": workers}, indent=0))
    text = report(rows, seconds, workers)
    Path(f"{stem}.md").write_text(text)
    plot(rows, stem)
    print(text)


if __name__ == "__main__":
    main()
