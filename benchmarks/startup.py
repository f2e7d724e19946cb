"""Start-up time of ``flowkit run`` (issue 6 §5): the first run after install, numba
compilation included, <= 15 s; later runs (numba cache warm) <= 2 s to first result.

Every measurement is a fresh ``python`` subprocess started the way the ``flowkit``
console script starts (``from flowkit.cli import main; main()``, see setup.cfg), with
PYTHONPATH pointing at the source tree under test and its own numba cache
(NUMBA_CACHE_DIR).  Sources are interleaved (each repetition runs every source in turn),
so that a change of machine load during the benchmark affects all of them alike:

* cold: a new, empty NUMBA_CACHE_DIR per repetition (first run after install: every
  kernel is compiled and written to the cache);
* warm: the cache the last cold repetition filled (every later run);
* floor: ``python -c "import numpy, scipy.integrate, numba"``, the imports any
  implementation on this stack pays before doing anything;
* import: ``python -c "import flowkit"``.

Time to first result: wall seconds from starting the subprocess until its first line of
output reaches this process (PYTHONUNBUFFERED=1; ``flowkit run`` prints its result once
the integration has finished, so this is the user-visible latency).  For the floor and
import rows, until the process exits.  CPU seconds are the child's user + system time.

Sources (``--src LABEL=SPEC``, repeatable; default: this checkout): SPEC is a directory,
a git revision of this repository (exported with ``git archive``), or either followed by
``+PATCH`` (applied with ``git apply`` to a copy).  The committed table and figure come from

    python benchmarks/startup.py --src "before (bb85716)=bb85716" --src "now=."

The result lines (gamma~, margin, w_hat) of every run are compared across sources.
Writes startup.md, startup.png/.pdf and the raw timings startup.json next to this file
(``--replot`` redraws from the json).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
COMMAND = ["run", "--dataset", "fig4a", "--depth", "2", "--alpha", "100", "--loss", "1e-8700"]
CONSOLE = "import sys; from flowkit.cli import main; sys.exit(main())"  # setup.cfg's flowkit = flowkit.cli:main
FLOOR = "import numpy, scipy.integrate, numba"
CONTRACT = {"cold": 15.0, "warm": 2.0}
# Okabe & Ito (2008) colour-blind-safe palette, one colour per source; black for the floor
OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442"]


def timed(argv, env, cwd):
    """(seconds to the first line of stdout, or to exit if none; CPU seconds; stdout lines)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            cwd=cwd, text=True)
    first = None
    lines = []
    for line in proc.stdout:
        if first is None:
            first = time.perf_counter() - t0
        lines.append(line.rstrip("\n"))
    err = proc.stderr.read()
    proc.wait()
    total = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}:\n{err[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return (first if first is not None else total), cpu, lines


def export(spec, into):
    """A source tree for SPEC (module docstring) under ``into``; returns its path."""
    base, _, patch = spec.partition("+")
    path = Path(base) if Path(base).is_dir() else None
    if path is not None and not patch:
        return path.resolve()
    tree = into / "src"
    if path is not None:
        shutil.copytree(path, tree, ignore=shutil.ignore_patterns(".git", "__pycache__", "*.nbi", "*.nbc"))
    else:
        tree.mkdir()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", base], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    if patch:
        subprocess.run(["git", "apply", str(Path(patch).resolve())], cwd=tree, check=True)
    return tree


def measure(trees, args, tmp):
    """Timings per source, interleaved (each repetition runs every source in turn), so
    that a change of machine load during the benchmark affects all sources alike."""
    envs = {label: dict(os.environ, PYTHONPATH=str(tree), PYTHONUNBUFFERED="1") for label, tree in trees.items()}
    cwd = tmp / "cwd"
    rows = {label: {"import": [], "cold": [], "warm": []} for label in trees}
    results = set()

    def run(label, key, argv):
        load = os.getloadavg()[0]
        first, cpu, lines = timed(argv, envs[label], cwd)
        rows[label][key].append((first, cpu, load))
        if key != "import":
            results.add(tuple(lines[1:4]))
        return first, cpu, load

    for k in range(args.reps_cold):
        for i, label in enumerate(trees):
            envs[label]["NUMBA_CACHE_DIR"] = str(tmp / f"numba-cache-{i}-{k}")
            first, cpu, load = run(label, "cold", [sys.executable, "-c", CONSOLE] + COMMAND)
            print(f"  {label}: cold {first:.2f} s (cpu {cpu:.1f} s, load {load:.1f})", flush=True)
    floor = []
    for _ in range(args.reps_warm):  # on the cache of the last cold repetition
        for label in trees:
            run(label, "warm", [sys.executable, "-c", CONSOLE] + COMMAND)
            run(label, "import", [sys.executable, "-c", "import flowkit"])
        load = os.getloadavg()[0]
        floor.append(timed([sys.executable, "-c", FLOOR], dict(os.environ), cwd)[:2] + (load,))
    for label in trees:
        print(f"  {label}: warm " + ", ".join(f"{r[0]:.2f}" for r in rows[label]["warm"]) + " s", flush=True)
    return rows, results, floor


def summary(samples):
    t = [s[0] for s in samples]
    return statistics.median(t), min(t), max(t), statistics.median(s[1] for s in samples)


def write_md(floor, data, args, loads, same):
    out = ["# Start-up time of `flowkit run`", "",
           f"`python benchmarks/startup.py` — command `flowkit {' '.join(COMMAND)}`; "
           f"{args.reps_cold} cold and {args.reps_warm} warm repetitions per source, each a fresh process, "
           "the sources interleaved. "
           "Time to first result: wall seconds from starting the process until its first line of "
           "output arrives (the run prints its result when the integration is done); floor and "
           "import rows: until the process exits. CPU: the process's user + system seconds, "
           "interpreter exit included (~0.2 s after a run's result is out, so CPU can exceed the "
           "time to first result).", "",
           f"Machine: {os.cpu_count()} cores, {platform.platform()}, CPython {platform.python_version()}; "
           f"1-minute load average during the measurements {min(loads):.1f}–{max(loads):.1f} "
           "(it counts the measured process itself; above ~2 on 2 cores processes waited for a core "
           "and wall times are inflated, CPU times much less so).", "",
           "| source | measurement | contract | median s | min s | max s | median CPU s | meets contract |",
           "|---|---|---|---|---|---|---|---|"]
    med, lo, hi, cpu = summary(floor)
    out.append(f"| — | floor: `python -c \"{FLOOR}\"` | — | {med:.2f} | {lo:.2f} | {hi:.2f} | {cpu:.2f} | — |")
    names = {"import": "`import flowkit`", "cold": "first run, cold numba cache",
             "warm": "later run, warm cache"}
    for label, rows in data.items():
        for key in ("cold", "warm", "import"):
            med, lo, hi, cpu = summary(rows[key])
            limit = CONTRACT.get(key)
            ok = "—" if limit is None else ("yes" if med <= limit else "**no**")
            bound = "—" if limit is None else f"≤ {limit:g} s"
            out.append(f"| {label} | {names[key]} | {bound} | {med:.2f} | {lo:.2f} | {hi:.2f} | {cpu:.2f} | {ok} |")
    out += ["", "Result lines (γ̃, margin, ŵ) identical across all runs and sources: "
            + ("yes." if same else "**no** — see the printed output."), ""]
    (HERE / "startup.md").write_text("\n".join(out))


def plot(floor, data):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    labels = list(data)
    n = len(labels)
    fig, (ax_c, ax_w) = plt.subplots(1, 2, figsize=(12, 2.4 + 0.6 * n))

    def bars(ax, y, samples, colour, **kw):
        t = [s[0] for s in samples]
        ax.barh(y, statistics.median(t), height=0.8, color=colour, **kw)
        ax.plot(t, [y] * len(t), "o", color="black", ms=3.5, zorder=3)
        ax.plot(statistics.median(s[1] for s in samples), y, "D", mfc="white", mec="black", ms=5, zorder=3)

    for i, label in enumerate(labels):
        colour = OKABE_ITO[i % len(OKABE_ITO)]
        bars(ax_c, n - 1 - i, data[label]["cold"], colour)
        bars(ax_w, 2 * (n - 1 - i) + 2.2, data[label]["warm"], colour)
        bars(ax_w, 2 * (n - 1 - i) + 1.2, data[label]["import"], colour, alpha=0.45, hatch="//",
             edgecolor="white")
    bars(ax_w, 0, floor, "0.35")
    ax_c.axvline(CONTRACT["cold"], color="black", ls="--", lw=1)
    ax_w.axvline(CONTRACT["warm"], color="black", ls="--", lw=1)
    ax_c.set_yticks(range(n), list(reversed(labels)))
    ticks, names = [0], ["floor: import numpy,\nscipy.integrate, numba"]
    for i, label in enumerate(labels):
        ticks += [2 * (n - 1 - i) + 2.2, 2 * (n - 1 - i) + 1.2]
        names += [f"{label}:\nlater run", f"{label}:\nimport flowkit"]
    ax_w.set_yticks(ticks, names, fontsize=7)
    ax_c.set_xlabel("seconds to first result (wall)")
    ax_w.set_xlabel("seconds (wall): to first result;\nfloor and import: to exit")
    ax_c.set_title("first run after install (cold numba cache)", fontsize=10)
    ax_w.set_title("later runs (warm cache)", fontsize=10)
    handles = [Patch(color=OKABE_ITO[i % len(OKABE_ITO)], label=lab) for i, lab in enumerate(labels)]
    handles += [Patch(color="0.35", label="floor"),
                Line2D([], [], color="black", ls="--", lw=1, label="contract (15 s cold, 2 s warm)"),
                Line2D([], [], ls="none", marker="o", color="black", ms=3.5, label="repetitions (wall)"),
                Line2D([], [], ls="none", marker="D", mfc="white", mec="black", ms=5,
                       label="median CPU seconds (user + system)")]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.22 if n < 3 else 0.17, 1, 1))
    for ext in ("png", "pdf"):
        fig.savefig(HERE / f"startup.{ext}", dpi=150)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--src", action="append", metavar="LABEL=SPEC",
                    help="source tree to time (repeatable; default: this checkout)")
    ap.add_argument("--reps-cold", type=int, default=3)
    ap.add_argument("--reps-warm", type=int, default=5)
    ap.add_argument("--replot", action="store_true", help="redraw from startup.json, no timing")
    args = ap.parse_args()
    if args.replot:
        raw = json.loads((HERE / "startup.json").read_text())
        args.reps_cold, args.reps_warm = raw["reps_cold"], raw["reps_warm"]
        loads = [s[2] for s in raw["floor"]] + [s[2] for r in raw["data"].values() for v in r.values() for s in v]
        write_md(raw["floor"], raw["data"], args, loads, raw["same_results"])
        plot(raw["floor"], raw["data"])
        return
    sources = [s.partition("=")[::2] for s in (args.src or [f"this checkout={REPO}"])]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "cwd").mkdir()
        trees = {}
        for k, (label, spec) in enumerate(sources):
            work = tmp / f"src{k}"
            work.mkdir()
            trees[label] = export(spec, work)
            print(f"{label}: {trees[label]}", flush=True)
        data, results, floor = measure(trees, args, tmp)
    loads = [s[2] for s in floor] + [s[2] for rows in data.values() for v in rows.values() for s in v]
    if len(results) != 1:
        print("result lines differ between runs:", *results, sep="\n", file=sys.stderr)
    write_md(floor, data, args, loads, len(results) == 1)
    (HERE / "startup.json").write_text(json.dumps(
        dict(reps_cold=args.reps_cold, reps_warm=args.reps_warm, sources=dict(sources), floor=floor,
             data=data, same_results=len(results) == 1), indent=1))
    plot(floor, data)
    print((HERE / "startup.md").read_text())


if __name__ == "__main__":
    main()
