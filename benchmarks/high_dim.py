"""High-dimensional benchmark (engine issue 6 §3): d >> N, Gaussian features with a sparse
planted separator (flowkit.datasets.planted_sparse, k = 10, margin 0.1), alpha = 1.

Every case runs in a fresh subprocess (so its peak RSS is its own), single-threaded BLAS
unless --threads says otherwise (the dual form's own threads, flowkit.dual.THREADS -- 2 on
a 2-core machine -- are not BLAS's; each result records THREADS as "dual_threads", and the
tables show the threads a run used: one below flowkit.dual._MIN_PER_THREAD data entries
per thread):

* contract: N = 200, d = 10,000, D in {2, 3}, gamma~ = 1e6, flowkit's defaults (Radau,
  rtol 1e-10, 20 save points per decade), and the same at looser rtol;
* scaling: seconds per step and peak RSS against d (N = 100) and against N (d = 10,000),
  D = 2, to gamma~ = 1e2;
* baseline: the dense path (dense Jacobian, LAPACK LU of the (d+N)-sized matrices) and the
  structured path in the same process, D = 2 and 3, N = 50, d in {500, 1000}, to gamma~ = 1e2.

Accuracy at the contract cases, two ways:
* independent of the integrator: math.md's closed form says the flow is a mirror flow of
  s = Xtᵀ nu with nu >= 0 non-decreasing -- D = 2: s = (theta+ - theta-)/4; D > 2:
  s = (u-^{2-D} - u+^{2-D}) / (2 D (D-2)).  flowkit integrates d numbers y_i and never
  imposes that s lies in the N-dimensional range of Xtᵀ, so for D > 2 the relative distance
  of s from that range (least squares, all saved points) measures accumulated error.  (For
  D = 2 it is no test: dy/dsigma = c(sigma) Xtᵀ p - beta y is linear in Xtᵀ p with the same c
  for every feature, so any Runge-Kutta step keeps y in the range.)  nu's smallest entry and
  largest decrease check the sign conditions;
* a second method: BDF (structured, rtol 1e-8) on the same cases, and the looser-rtol Radau
  runs, against the rtol = 1e-10 Radau run (max |w_hat - w_hat_ref| / max |w_hat_ref|).
Invariant drift (diagnostics.invariants) is reported for every run.

    python benchmarks/high_dim.py            # everything (~40 min on the 2-core machine)
    python benchmarks/high_dim.py --only scaling baseline
    python benchmarks/high_dim.py --only dual dual_scaling   # the dual form (flowkit.dual)
    python benchmarks/high_dim.py --only dual --match D2_g1e+06_r1e-07_dual   # one case
    python benchmarks/high_dim.py --redraw   # table and plot from high_dim.json

Writes high_dim.json (raw results, merged across --only runs), high_dim.md and
high_dim.png/.pdf next to this file.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "high_dim.json"

CONTRACT = [dict(N=200, d=10_000, D=D, gamma=1e6, rtol=r) for D in (2, 3) for r in (1e-10, 1e-8, 1e-7)]
# a second method on the contract cases: BDF (variable order 1-5, its own error control)
CHECK = [dict(N=200, d=10_000, D=D, gamma=1e6, rtol=1e-8, method="BDF") for D in (2, 3)]
SCALING_D = [dict(N=100, d=d, D=2, gamma=1e2, rtol=1e-10) for d in (1000, 2000, 5000, 10_000, 20_000, 40_000)]
SCALING_N = [dict(N=N, d=10_000, D=2, gamma=1e2, rtol=1e-10) for N in (25, 50, 100, 200, 400)]
BASELINE = [dict(N=50, d=d, D=D, gamma=1e2, rtol=1e-10, baseline=True) for D in (2, 3) for d in (500, 1000)]
# the dual form (flowkit.dual, what integrate() runs for d >> N): the contract cases at several
# rtol, at rtol 1e-8 with the structured primal path in the same process as the baseline
DUAL = [dict(N=200, d=10_000, D=D, gamma=1e6, rtol=r, path="dual", compare=(r == 1e-8))
        for D in (2, 3) for r in (1e-10, 1e-8, 1e-7, 1e-6)]
DUAL_SCALING = ([dict(c, path="dual") for c in SCALING_D]
                + [dict(c, path="dual") for c in SCALING_N])
GROUPS = {"contract": CONTRACT, "reference": [c for c in CONTRACT if c["rtol"] == 1e-10],
          "loose": [c for c in CONTRACT if c["rtol"] != 1e-10], "check": CHECK, "scaling": SCALING_D + SCALING_N,
          "baseline": BASELINE, "dual": DUAL, "dual_scaling": DUAL_SCALING}


def _key(case):
    return ("N{N}_d{d}_D{D}_g{gamma:g}_r{rtol:g}".format(**case) + ("_base" if case.get("baseline") else "")
            + ("_" + case["method"] if case.get("method", "Radau") != "Radau" else "")
            + ("_dual" if _path(case) == "dual" else ""))


def _path(case):
    return case.get("path", "structured")


# ----------------------------------------------------------------- one case, in a subprocess

def _dual_check(traj):
    """Distance of s (closed form of math.md) from range(Xtᵀ), and nu's sign conditions."""
    P = traj.flow.problem
    Xt, D, alpha = P.Xt, P.depth, P.alpha
    tp, tm = traj.theta[:, 0], traj.theta[:, 1]
    if D == 2:
        s = (tp - tm) / 4.0
    else:  # u-^{2-D} - u+^{2-D} = alpha^{2-D} (expm1(-a delta-) - expm1(-a delta+)): no cancellation
        a, la = D - 2.0, math.log(alpha)
        s = alpha ** (2 - D) * (np.expm1(-a * (tm - la)) - np.expm1(-a * (tp - la))) / (2.0 * D * (D - 2))
    keep = np.max(np.abs(s), axis=1) > 0
    s = s[keep]
    Q, R = np.linalg.qr(Xt.T)
    from scipy.linalg import solve_triangular
    nu = solve_triangular(R, Q.T @ s.T).T             # least squares Xtᵀ nu = s
    resid = np.linalg.norm(s - nu @ Xt, axis=1) / np.linalg.norm(s, axis=1)
    scale = np.max(np.abs(nu), axis=1, keepdims=True)
    return {"range_residual": float(resid.max()),
            "nu_min": float(np.min(nu / scale)),
            "nu_decrease": float(-np.min(np.diff(nu, axis=0), initial=0.0) / np.max(np.abs(nu)))}


def _integrate(P, linalg, gamma, rtol, method="Radau"):
    from flowkit.dual import DualFlow
    from flowkit.flow import Flow
    from flowkit.integrator import save_grid
    from flowkit.trajectory import Trajectory
    t0, c0 = time.perf_counter(), time.process_time()
    if linalg == "dual":
        flow = DualFlow(P, rtol=rtol, method=method, max_steps=200_000)
    else:
        flow = Flow(P, linalg=linalg, rtol=rtol, method=method, max_steps=200_000)
    grid = save_grid(gamma)
    states, stats = flow.advance(flow.sigma0, flow.z0, [math.log(g) for g in grid])
    traj = Trajectory.from_states(flow, grid, states, stats, f"gamma={gamma:g}")
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    out = {k: stats[k] for k in ("steps", "nfev", "njev", "nlu")}
    out.update(linalg=flow.linalg, seconds=wall, cpu_seconds=cpu, per_step_ms=1e3 * wall / stats["steps"],
               invariants=traj.stats["invariants"])
    return traj, out


def run_case(case):
    import flowkit
    import flowkit.dual
    from flowkit.problem import Problem
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    X, y = flowkit.datasets.planted_sparse(case["N"], case["d"], 10, 0)
    t0 = time.perf_counter()
    P = Problem.build(X, y, case["D"], 1.0)
    build = time.perf_counter() - t0
    # numba compiles / loads its cache outside the timings: a tiny run of the same paths
    Xs, ys = flowkit.datasets.planted_sparse(4, 200, 2, 1)
    warm = Problem.build(Xs, ys, case["D"], 1.0)
    path = _path(case)
    for linalg in {"structured", path} | ({"dense"} if case.get("baseline") else set()):
        _integrate(warm, linalg, 1e2, 1e-6)
    out = {"case": case, "build_seconds": build, "rss_import_mb": rss0,
           "dual_threads": flowkit.dual.THREADS,
           "rss_before_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "data_mb": 2 * X.nbytes / 2**20}   # X and Xt
    traj, out[path] = _integrate(P, path, case["gamma"], case["rtol"], case.get("method", "Radau"))
    out[path]["seconds_with_build"] = out[path]["seconds"] + build
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if case["gamma"] >= 1e6:
        out["closed_form"] = _dual_check(traj)
        out["w_hat_end"] = traj.w_hat[-1].tolist()
    if case.get("compare"):  # the structured primal path on the same case, same process
        prim, out["structured"] = _integrate(P, "structured", case["gamma"], case["rtol"])
        out["w_hat_diff"] = float(np.max(np.abs(prim.w_hat - traj.w_hat)) / np.max(np.abs(prim.w_hat)))
    if case.get("baseline"):
        dense, out["dense"] = _integrate(P, "dense", case["gamma"], case["rtol"])
        out["w_hat_diff"] = float(np.max(np.abs(dense.w_hat - traj.w_hat)) / np.max(np.abs(dense.w_hat)))
        out["peak_rss_dense_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def spawn(case, threads):
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), NUMBA_NUM_THREADS=str(threads))
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, __file__, "--case", json.dumps(case)], env=env,
                          capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        return {"case": case, "failed": proc.stderr[-2000:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------- table and plot

def _fmt_inv(inv):
    return (f"{inv['gamma_consistency']:.1e} | {inv['conservation']:.1e} | "
            f"{inv['lemma3_slack']:.2g}")


def _threads(r):
    """Threads of the run: for the dual form its own, as many as the run split its pass into
    (flowkit.dual: one below _MIN_PER_THREAD data entries per thread; entries before
    session 5 have no "dual_threads": their pass was serial); for the primal path BLAS's."""
    if _path(r["case"]) != "dual":
        return r.get("threads", 1)
    from flowkit.dual import _MIN_PER_THREAD
    n, c = r.get("dual_threads", 1), r["case"]
    return n if c["N"] * c["d"] >= n * _MIN_PER_THREAD else 1


def table(res):
    lines = []
    ref = {}
    for r in res.values():
        c = r["case"]
        if ("failed" not in r and c["gamma"] >= 1e6 and c["rtol"] == 1e-10 and c.get("method", "Radau") == "Radau"
                and _path(c) == "structured"):
            ref[c["D"]] = np.array(r["w_hat_end"])
    contract = [r for r in res.values() if r["case"]["gamma"] >= 1e6 and "failed" not in r]
    if contract:
        lines += ["### Contract cases: N = 200, d = 10,000, alpha = 1, gamma~ = 1e6", "",
                  "Path: `dual` is flowkit.dual (N unknowns; what `integrate` runs here), `structured` the "
                  "primal state (d unknowns) with structured linear algebra.  The w_hat column compares with "
                  "the structured path at rtol 1e-10, so for the dual rows it is a second engine's check.", "",
                  "| D | path | method | threads | rtol | wall s (build + integrate + Trajectory) | CPU s | steps | nfev | njev | nlu | ms/step "
                  "| peak RSS MB | dist(s, range Xtᵀ) | min nu / max nu | max |w_hat - w_hat(structured, rtol 1e-10)| (rel.) "
                  "| gamma~-consistency | conservation | Lemma 3 slack |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in sorted(contract, key=lambda r: (r["case"]["D"], _path(r["case"]) == "dual",
                                                 r["case"].get("method", "Radau") != "Radau", -r["case"]["rtol"])):
            c, s = r["case"], r[_path(r["case"])]
            w = np.array(r["w_hat_end"])
            cf = r.get("closed_form") or r["dual"]   # older entries: the check was stored as "dual"
            diff = (f"{np.max(np.abs(w - ref[c['D']])) / np.max(np.abs(ref[c['D']])):.1e}"
                    if c["D"] in ref and (c["rtol"] != 1e-10 or c.get("method", "Radau") != "Radau"
                                          or _path(c) == "dual")
                    else "(reference)")
            lines.append(f"| {c['D']} | {_path(c)} | {c.get('method', 'Radau')} | {_threads(r)} | {c['rtol']:.0e} | "
                         f"{s['seconds_with_build']:.1f} | "
                         f"{s['cpu_seconds']:.1f} | {s['steps']} | {s['nfev']} | {s['njev']} | {s['nlu']} | {s['per_step_ms']:.1f} | "
                         f"{r['peak_rss_mb']:.0f} | {cf['range_residual']:.1e} | {cf['nu_min']:.1e} | "
                         f"{diff} | {_fmt_inv(s['invariants'])} |")
        lines.append("")
        same = [r for r in contract if r["case"].get("compare")]
        if same:
            lines += ["### Dual form against the structured primal path, same process (contract cases, Radau)", "",
                      "| D | rtol | structured s | structured steps | dual s | dual steps | ratio | "
                      "max |w_hat structured - w_hat dual| (rel.) |", "|---|---|---|---|---|---|---|---|"]
            for r in sorted(same, key=lambda r: r["case"]["D"]):
                c, a, b = r["case"], r["structured"], r["dual"]
                lines.append(f"| {c['D']} | {c['rtol']:.0e} | {a['seconds']:.1f} | {a['steps']} | {b['seconds']:.1f} | "
                             f"{b['steps']} | {a['seconds'] / b['seconds']:.1f}x | {r['w_hat_diff']:.1e} |")
            lines.append("")
    for label, key, fixed in (("d", "d", "N = 100"), ("N", "N", "d = 10,000")):
        rows = [r for r in res.values() if "failed" not in r and r["case"]["gamma"] == 1e2
                and not r["case"].get("baseline")
                and (r["case"]["N"] == 100 if key == "d" else r["case"]["d"] == 10_000)]
        if not rows:
            continue
        lines += [f"### Scaling in {label} ({fixed}, D = 2, gamma~ = 1e2, rtol 1e-10)", "",
                  "| path | threads | N | d | steps | nfev | njev | nlu | wall s | ms/step | peak RSS MB | of which X, Xt MB |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in sorted(rows, key=lambda r: (_path(r["case"]), r["case"][key])):
            c, s = r["case"], r[_path(r["case"])]
            lines.append(f"| {_path(c)} | {_threads(r)} | {c['N']} | {c['d']} | {s['steps']} | {s['nfev']} | {s['njev']} | {s['nlu']} | "
                         f"{s['seconds']:.1f} | {s['per_step_ms']:.2f} | {r['peak_rss_mb']:.0f} | {r['data_mb']:.0f} |")
        lines.append("")
    base = [r for r in res.values() if r["case"].get("baseline") and "failed" not in r]
    if base:
        lines += ["### Baseline in the same process: dense Jacobian + LAPACK LU (N = 50, gamma~ = 1e2)", "",
                  "| D | d | dense s | dense steps | structured s | structured steps | ratio | "
                  "max |w_hat dense - w_hat structured| (rel.) |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in sorted(base, key=lambda r: (r["case"]["D"], r["case"]["d"])):
            c, a, b = r["case"], r["dense"], r["structured"]
            lines.append(f"| {c['D']} | {c['d']} | {a['seconds']:.1f} | {a['steps']} | {b['seconds']:.2f} | "
                         f"{b['steps']} | {a['seconds'] / b['seconds']:.0f}x | {r['w_hat_diff']:.1e} |")
        lines.append("")
    failed = [r for r in res.values() if "failed" in r]
    for r in failed:
        lines.append(f"FAILED {_key(r['case'])}: {r['failed'][-300:]}")
    return "\n".join(lines)


def plot(res):
    sys.path.insert(0, str(ROOT))
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter
    from flowkit.analysis.style import OKABE_ITO, context, save
    ok = [r for r in res.values() if "failed" not in r]
    def sweep(key, fixed, path):
        return sorted([r for r in ok if r["case"]["gamma"] == 1e2 and not r["case"].get("baseline")
                       and r["case"][fixed[0]] == fixed[1] and _path(r["case"]) == path], key=lambda r: r["case"][key])
    sweep_d, sweep_n = sweep("d", ("N", 100), "structured"), sweep("N", ("d", 10_000), "structured")
    dual_d, dual_n = sweep("d", ("N", 100), "dual"), sweep("N", ("d", 10_000), "dual")
    base = sorted([r for r in ok if r["case"].get("baseline") and r["case"]["D"] == 2], key=lambda r: r["case"]["d"])
    contract = [r for r in ok if r["case"]["gamma"] >= 1e6 and r["case"]["rtol"] == 1e-10
                and r["case"].get("method", "Radau") == "Radau"]

    def star(ax, r, x, yv):
        c = r["case"]
        ax.loglog([x], [yv], "*" if _path(c) == "structured" else "P", ms=11 if _path(c) == "structured" else 8,
                  color=orange if c["D"] == 2 else OKABE_ITO["reddish_purple"],
                  label=f"contract run, {_path(c)}, D = {c['D']}, gamma~ = 1e6")
    blue, verm, green, orange, black = (OKABE_ITO[k] for k in ("blue", "vermillion", "bluish_green", "orange", "black"))
    with context():
        fig = Figure(figsize=(7.2, 5.6))
        axs = fig.subplots(2, 2)
        # time per step
        ax = axs[0, 0]
        if sweep_d:
            x = [r["case"]["d"] for r in sweep_d]
            yv = [r["structured"]["per_step_ms"] for r in sweep_d]
            ax.loglog(x, yv, "o-", color=blue, label="structured, N = 100")
            ax.loglog(x, [yv[-1] * xi / x[-1] for xi in x], "--", color=black, alpha=0.5, lw=1, label="slope 1 (O(d))")
        if dual_d:
            ax.loglog([r["case"]["d"] for r in dual_d], [r["dual"]["per_step_ms"] for r in dual_d], "D-",
                      color=OKABE_ITO["sky_blue"], label="dual form, N = 100")
        if base:
            x = [r["case"]["d"] for r in base]
            ax.loglog(x, [r["dense"]["per_step_ms"] for r in base], "s-", color=verm, label="dense LU, N = 50 (baseline)")
            ax.loglog(x, [r["structured"]["per_step_ms"] for r in base], "^-", color=green, label="structured, N = 50")
        for r in contract:
            star(ax, r, r["case"]["d"], r[_path(r["case"])]["per_step_ms"])
        ax.set_xlabel("features d")
        ax.set_ylabel("wall time per Radau step [ms]")
        ax.set_title("(a) time vs d")
        ax.set_ylim(0.5, 3e5)  # room above the data for the legend
        ax.legend(loc="upper left", fontsize=6)
        ax = axs[0, 1]
        if sweep_n:
            x = [r["case"]["N"] for r in sweep_n]
            yv = [r["structured"]["per_step_ms"] for r in sweep_n]
            ax.loglog(x, yv, "o-", color=blue, label="structured, d = 10,000")
            ax.loglog(x, [yv[-1] * xi / x[-1] for xi in x], "--", color=black, alpha=0.5, lw=1, label="slope 1 (O(N))")
            ax.loglog(x, [yv[-1] * (xi / x[-1]) ** 2 for xi in x], ":", color=black, alpha=0.5, lw=1, label="slope 2 (O(N²))")
        if dual_n:
            ax.loglog([r["case"]["N"] for r in dual_n], [r["dual"]["per_step_ms"] for r in dual_n], "D-",
                      color=OKABE_ITO["sky_blue"], label="dual form, d = 10,000")
        for r in contract:
            star(ax, r, r["case"]["N"], r[_path(r["case"])]["per_step_ms"])
        ax.set_xlabel("samples N")
        ax.set_ylabel("wall time per Radau step [ms]")
        ax.set_title("(b) time vs N")
        ax.set_ylim(0.2, 3e5)
        ax.legend(loc="upper left", fontsize=6)
        for ax, sweep, key, lab in ((axs[1, 0], sweep_d, "d", "features d"), (axs[1, 1], sweep_n, "N", "samples N")):
            if sweep:
                x = [r["case"][key] for r in sweep]
                ax.loglog(x, [r["peak_rss_mb"] for r in sweep], "o-", color=blue, label="peak RSS of the run's process")
                ax.loglog(x, [r["rss_before_mb"] for r in sweep], "v--", color=green, label="RSS before integrating (imports, data)")
                ax.loglog(x, [r["data_mb"] for r in sweep], ":", color=black, alpha=0.6, label="X and Xt themselves")
            dual = dual_d if key == "d" else dual_n
            if dual:
                ax.loglog([r["case"][key] for r in dual], [r["peak_rss_mb"] for r in dual], "D-",
                          color=OKABE_ITO["sky_blue"], label="peak RSS, dual form")
            for r in contract:
                star(ax, r, r["case"][key], r["peak_rss_mb"])
            ax.axhline(2048, color=black, ls="-.", lw=1, alpha=0.8, label="2 GB limit")
            ax.set_ylim(1, 1e8)  # room above the data for the legend
            ax.set_xlabel(lab)
            ax.set_ylabel("memory [MB]")
            ax.set_title(f"({'c' if key == 'd' else 'd'}) memory vs {key}")
            ax.legend(loc="upper left", fontsize=6)
        for ax in (axs[0, 1], axs[1, 1]):
            if sweep_n:
                ns = [r["case"]["N"] for r in sweep_n]
                ax.set_xticks(ns)
                ax.set_xticklabels([str(v) for v in ns])
                ax.xaxis.set_minor_formatter(NullFormatter())
        save(fig, HERE / "high_dim")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--only", nargs="*", choices=sorted(GROUPS), help="case groups to (re)run")
    ap.add_argument("--threads", type=int, default=1, help="BLAS/numba threads per case (default 1)")
    ap.add_argument("--redraw", action="store_true", help="table and plot from high_dim.json only")
    ap.add_argument("--match", help="only the cases of those groups whose key contains this")
    args = ap.parse_args()
    if args.case:
        print(json.dumps(run_case(json.loads(args.case))))
        return
    res = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if not args.redraw:
        for group in args.only or list(GROUPS):
            for case in GROUPS[group]:
                if args.match and args.match not in _key(case):
                    continue
                t0 = time.perf_counter()
                r = spawn(case, args.threads)
                r["threads"] = args.threads
                r["load_average"] = os.getloadavg()
                res[_key(case)] = r
                print(f"{_key(case)}: {time.perf_counter() - t0:.0f} s "
                      + ("FAILED" if "failed" in r else f"{r[_path(case)]['steps']} steps"), flush=True)
                RESULTS.write_text(json.dumps(res, indent=1))
    text = table(res)
    (HERE / "high_dim.md").write_text(text + "\n")
    print(text)
    plot(res)


if __name__ == "__main__":
    main()
