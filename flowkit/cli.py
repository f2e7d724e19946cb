"""Command line: ``flowkit run`` integrates one trajectory and prints its end point;
``flowkit maxmargin`` solves one max-margin problem; ``flowkit path`` traces the Q_mu path.

    flowkit run (--dataset NAME | --data FILE) --depth D --alpha A
                (--gamma G | --loss 1e-8700 | --mu M) [--rtol R] [--method M]
                [--step scipy|compiled] [--json]
    flowkit maxmargin --kind l1|l2|Q|l2/D [--mu M] [--depth D] (--dataset NAME | --data FILE) [--json]
    flowkit path [--depth D] [--mu-range HI LO] (--dataset NAME | --data FILE) [--json]
    flowkit sweep CONFIG --out FILE.h5 [--scheduler tcp://HOST:PORT] [--workers N] [--no-progress]
    flowkit store check FILE [--salvage-to OUT] [--timeout SECONDS]
    flowkit store summary FILE [--json] [--verify]
    flowkit reproduce --out DIR [--reuse] [--reduced] [--workers N] [--no-progress]
                      [--step scipy|compiled]
    flowkit accuracy --alpha A --depth D --mu M
"""
from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import sys

import numpy as np

from . import datasets
from ._version import __version__
from .exceptions import FlowkitError, IntegrationError, ParameterError

__all__ = ["main"]

# Each command imports what it uses when it runs (``flowkit run`` loads neither the
# max-margin solvers nor the store's h5py): start-up time is part of the interface
# (benchmarks/startup.py, tests/test_startup.py).


class _LazyChoices:
    """argparse ``choices`` read from ``module.attr`` only when a value is checked or
    help is shown, so that building the parser imports no solver (the argument needs a
    ``metavar``: argparse would list the choices to make one)."""

    def __init__(self, module, attr, sort=False):
        self._where, self._sort = (module, attr), sort

    def _values(self):
        values = getattr(importlib.import_module(self._where[0], __package__), self._where[1])
        return sorted(values) if self._sort else list(values)

    def __contains__(self, value):
        return value in self._values()

    def __iter__(self):
        return iter(self._values())

    def __len__(self):
        return len(self._values())


def _parser():
    parser = argparse.ArgumentParser(prog="flowkit", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"flowkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="integrate one gradient-flow trajectory")
    _data_args(run)
    run.add_argument("--depth", type=int, required=True, help="network depth D >= 2")
    run.add_argument("--alpha", type=float, required=True, help="initialisation scale > 0")
    stop = run.add_mutually_exclusive_group(required=True)
    stop.add_argument("--gamma", type=float, help="target gamma~ = -log L")
    stop.add_argument("--loss", type=str, help="target loss, exact decimal such as 1e-8700")
    stop.add_argument("--mu", type=float, help="stop at gamma~ = alpha^D / mu")
    run.add_argument("--rtol", type=float, default=1e-10)
    run.add_argument("--method", choices=_LazyChoices(".flow", "METHODS", sort=True), default="Radau",
                     metavar="METHOD", help="ODE solver: %(choices)s (default %(default)s)")
    run.add_argument("--step", choices=("scipy", "compiled"), default="scipy",
                     help="Radau's step: scipy's Python (default) or compiled (flowkit.CompiledRadau; "
                          "~10x faster once its kernels are compiled, ~30 s on a machine's first use)")
    run.add_argument("--json", action="store_true", help="machine-readable output")

    mm = sub.add_parser("maxmargin", help="solve one max-margin problem, with its KKT certificate")
    mm.add_argument("--kind", choices=_LazyChoices(".maxmargin", "KINDS"), required=True,
                    metavar="KIND", help="max-margin problem: %(choices)s")
    mm.add_argument("--mu", type=float, help="Q^D_mu scale (kind Q only)")
    mm.add_argument("--depth", type=int, default=2, help="D for kinds Q and l2/D (default 2)")
    mm.add_argument("--starts", type=int, default=32, help="random restarts for l2/D")
    _data_args(mm)
    mm.add_argument("--json", action="store_true", help="machine-readable output")

    path = sub.add_parser("path", help="trace the Q_mu max-margin path and its kinks")
    path.add_argument("--depth", type=int, default=2)
    path.add_argument("--mu-range", type=float, nargs=2, metavar=("HI", "LO"), default=(1e3, 1e-4))
    path.add_argument("--max-angle", type=float, default=0.01,
                      help="largest angle between consecutive directions (radians)")
    _data_args(path)
    path.add_argument("--json", action="store_true", help="machine-readable output")

    sw = sub.add_parser("sweep", help="run a TOML grid of trajectories into one HDF5 store")
    sw.add_argument("config", help="sweep configuration (TOML; see examples/sweep.toml)")
    sw.add_argument("--out", required=True, help="HDF5 store to fill (created if absent)")
    sw.add_argument("--scheduler", help="Dask scheduler address tcp://HOST:PORT (default: local processes)")
    sw.add_argument("--workers", type=int, help="local worker processes (default: all cores)")
    sw.add_argument("--no-progress", action="store_true", help="no progress bar")

    st = sub.add_parser("store", help="inspect an HDF5 store")
    stsub = st.add_subparsers(dest="store_command", required=True)
    chk = stsub.add_parser("check", help="report what is readable; salvage a damaged store")
    chk.add_argument("file")
    chk.add_argument("--salvage-to", metavar="OUT", help="new file for the intact runs "
                     "(default FILE.salvaged.h5)")
    chk.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                     help="how long one read of the damaged file may take before it counts as hung "
                          "(default 60)")
    rep = sub.add_parser("reproduce", help="the paper end to end: sweeps, figures, REPORT.md, summary.json")
    rep.add_argument("--out", required=True, help="output directory")
    rep.add_argument("--reuse", action="store_true", help="redraw from DIR/*.h5 without integrating")
    rep.add_argument("--reduced", action="store_true", help="a small grid (minutes), for checks")
    rep.add_argument("--workers", type=int, help="local worker processes (default: all cores)")
    rep.add_argument("--no-progress", action="store_true")
    rep.add_argument("--step", choices=("scipy", "compiled"), default="scipy",
                     help="Radau's step for the runs (as for run; --reuse finds the runs of the same step)")

    acc = sub.add_parser("accuracy", help="the loss eps = exp(-alpha^D/mu) as a power of ten")
    acc.add_argument("--alpha", type=float, required=True)
    acc.add_argument("--depth", type=int, required=True)
    acc.add_argument("--mu", type=float, required=True)

    summ = stsub.add_parser("summary", help="one line per run")
    summ.add_argument("file")
    summ.add_argument("--json", action="store_true", help="machine-readable output")
    summ.add_argument("--verify", action="store_true",
                      help="check every run's checksum (reads all data; default: attributes only)")
    return parser


def _data_args(p):
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", choices=sorted(datasets.BUILTIN), help="built-in dataset")
    src.add_argument("--data", metavar="FILE", help=".csv (label last) or .npz (X, y)")


def _load(args):
    return datasets.load(args.dataset) if args.dataset else datasets.load_file(args.data)


def _vec(a):
    return np.array2string(np.asarray(a), precision=12, max_line_width=200)


def _maxmargin(args):
    from .maxmargin import max_margin

    X, y = _load(args)
    r = max_margin(X, y, args.kind, mu=args.mu, depth=args.depth, starts=args.starts)
    if args.json:
        print(json.dumps(dict(r.as_dict(), dataset=args.dataset or args.data), indent=2))
        return
    what = {"l2": "min ||w||_2", "l1": "min ||w||_1", "Q": f"min Q^{args.depth}_mu, mu={r.mu}",
            "l2/D": f"min ||w||_(2/{args.depth}) (KKT points)"}[args.kind]
    print(f"dataset       {args.dataset or args.data}   {what}  s.t. y_n x_n.w >= 1")
    print(f"w             {_vec(r.w)}")
    print(f"objective     {r.objective:.15g}")
    print(f"support       {r.support.tolist()}   dual nu = {_vec(r.dual)}")
    print(f"KKT residual  {r.kkt_residual:.3g}   ({r.info['seconds']:.3f} s)")
    if r.unique is not None:
        print(f"unique        {r.unique}")
    if r.face is not None:
        print(f"optimal face  dimension {r.face.dimension}, vertices:")
        for v in r.face.vertices:
            print(f"              {_vec(v)}")
    if len(r.kkt_points) > 1:
        print(f"KKT points    {len(r.kkt_points)} distinct from {r.info['starts']} starts, best first:")
        for p in r.kkt_points:
            print(f"              {p.objective:<14.10g} w = {_vec(p.w)}  support {p.support.tolist()}")


def _path(args):
    from .qpath import q_path

    X, y = _load(args)
    p = q_path(X, y, depth=args.depth, mu_range=tuple(args.mu_range), max_angle=args.max_angle)
    if args.json:
        print(json.dumps(dict(p.as_dict(), dataset=args.dataset or args.data), indent=2))
        return
    print(f"dataset       {args.dataset or args.data}   Q^{p.depth}_mu path, mu {p.mu[0]:g} -> {p.mu[-1]:g}")
    print(f"points        {len(p)} ({p.info['seconds']:.3f} s), largest KKT residual "
          f"{p.info['max_kkt_residual']:.3g}")
    for k in p.kinks:
        print(f"kink          mu* = {k.mu:.12g} (rel. {k.rtol:.1g}): support {list(k.support_above)} "
              f"above -> {list(k.support_below)} below")
    if not p.kinks:
        print("kinks         none in this range")
    idx = np.unique(np.linspace(0, len(p) - 1, min(len(p), 12)).round().astype(int))
    print(f"{'mu':>14}  w (margin 1)")
    for i in idx:
        print(f"{p.mu[i]:14.6g}  {_vec(p.w[i])}")


def _run(args):
    from .integrator import integrate

    X, y = _load(args)
    traj = integrate(X, y, depth=args.depth, alpha=args.alpha, gamma=args.gamma,
                     loss=args.loss, mu=args.mu, rtol=args.rtol, method=args.method, step=args.step)
    out = dict(traj.final)
    out["log10_loss"] = -out["gamma"] / math.log(10.0)
    out.update(depth=traj.depth, alpha=traj.alpha, stopping=traj.stopping,
               dataset=args.dataset or args.data, points=len(traj), stats=traj.stats)
    if args.json:
        print(json.dumps(out, indent=2))
        return
    st = traj.stats
    print(f"dataset      {out['dataset']}  (depth {traj.depth}, alpha {traj.alpha:g}, {traj.stopping})")
    print(f"gamma~       {out['gamma']:.12g}   (loss = 10^{out['log10_loss']:.6g})")
    print(f"margin       {out['margin']:.12g}")
    print(f"w_hat        {np.array2string(np.array(out['w_hat']), precision=10)}")
    print(f"solver       {st['method']} ({st.get('step', 'scipy')} step) rtol={st['rtol']:g}: "
          f"{st['steps']} steps, nfev={st['nfev']}, njev={st['njev']}, nlu={st['nlu']}, "
          f"{st['seconds']:.3f} s, {len(traj)} saved points")
    inv = st["invariants"]
    print("invariants   " + ", ".join(f"{k}={v:.3g}" for k, v in inv.items()))


def _sweep(args):
    from .sweep import load_config, run_sweep

    if args.workers is not None and args.scheduler:
        raise ParameterError("--workers applies to local runs; a Dask cluster sizes itself")
    if args.workers is not None and args.workers < 1:
        raise ParameterError(f"--workers must be >= 1; got {args.workers}")
    specs = load_config(args.config)
    rep = run_sweep(specs, args.out, scheduler=args.scheduler, workers=args.workers,
                    progress=not args.no_progress)
    print(f"sweep        {args.config} -> {args.out}: {rep.total} runs, {rep.skipped} already stored, "
          f"{rep.done} computed ({rep.failed} failed), {rep.pending} pending, {rep.seconds:.1f} s")
    if rep.interrupted:
        print("interrupted: finished runs are stored; run the same command again to complete")
        return 130
    return 0 if rep.pending == 0 else 1


def _store(args):
    from .store import main_check, open_store

    if args.store_command == "check":
        if not (math.isfinite(args.timeout) and args.timeout > 0):
            raise ParameterError(f"--timeout must be a positive number of seconds; got {args.timeout!r}")
        return main_check(args.file, args.salvage_to, timeout=args.timeout)
    with open_store(args.file) as store:
        df = store.summary(verify=args.verify)
    if args.json:
        print(df.to_json(orient="records", indent=2))
    else:
        import pandas as pd
        with pd.option_context("display.max_rows", None, "display.width", 200):
            print(df.to_string(index=False))
        if not args.verify:
            print("(attributes only: checksums not verified; --verify or `flowkit store check` "
                  "reads and checks the data)")
    return 0


def _reproduce(args):
    from flowkit.analysis.plan import FULL, REDUCED
    from flowkit.analysis.reproduce import reproduce

    reproduce(args.out, reuse=args.reuse, grid=REDUCED if args.reduced else FULL,
              workers=args.workers, progress=not args.no_progress, step=args.step)
    return 0


def _accuracy(args):
    """Pure arithmetic in logs (no integration, so no float range limit on γ̃)."""
    from .problem import _check_depth, positive_float

    alpha, mu = positive_float("alpha", args.alpha), positive_float("mu", args.mu)
    depth = _check_depth(args.depth)
    log10_gamma = depth * math.log10(alpha) - math.log10(mu)   # γ̃ = α^D/μ
    log10_exponent = log10_gamma - math.log10(math.log(10.0))  # |log10 ε| = γ̃ / ln 10
    if log10_exponent < 300:
        eps = f"10^{-10.0 ** log10_exponent:.6g}"
        gam = f"{10.0 ** log10_gamma:.6g}"
    else:
        eps = f"10^-(10^{log10_exponent:.6f})"
        gam = f"10^{log10_gamma:.6f}"
    print(f"alpha = {alpha:g}, D = {depth}, mu = {mu:g}:  gamma~ = alpha^D/mu = {gam},  "
          f"eps = exp(-gamma~) = {eps}")
    return 0


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        status = {"run": _run, "maxmargin": _maxmargin, "path": _path, "sweep": _sweep,
                  "store": _store, "reproduce": _reproduce, "accuracy": _accuracy}[args.command](args)
    except FlowkitError as exc:
        print(f"flowkit: error: {exc}", file=sys.stderr)
        return 2
    except IntegrationError as exc:
        print(f"flowkit: integration failed: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into e.g. `head`: not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:  # outside a sweep's own handling (which keeps finished runs)
        print("flowkit: interrupted", file=sys.stderr)
        return 130
    return status or 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
