"""Command line: ``flowkit run`` integrates one trajectory and prints its end point.

    flowkit run (--dataset NAME | --data FILE) --depth D --alpha A
                (--gamma G | --loss 1e-8700 | --mu M) [--rtol R] [--method M] [--json]
"""
from __future__ import annotations

import argparse
import json
import math
import sys

import numpy as np

from . import datasets
from .exceptions import FlowkitError
from .flow import METHODS, IntegrationError
from .integrator import integrate

__all__ = ["main"]


def _parser():
    parser = argparse.ArgumentParser(prog="flowkit", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="integrate one gradient-flow trajectory")
    src = run.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", choices=sorted(datasets.BUILTIN), help="built-in dataset")
    src.add_argument("--data", metavar="FILE", help=".csv (label last) or .npz (X, y)")
    run.add_argument("--depth", type=int, required=True, help="network depth D >= 2")
    run.add_argument("--alpha", type=float, required=True, help="initialisation scale > 0")
    stop = run.add_mutually_exclusive_group(required=True)
    stop.add_argument("--gamma", type=float, help="target gamma~ = -log L")
    stop.add_argument("--loss", type=str, help="target loss, exact decimal such as 1e-8700")
    stop.add_argument("--mu", type=float, help="stop at gamma~ = alpha^D / mu")
    run.add_argument("--rtol", type=float, default=1e-10)
    run.add_argument("--method", choices=sorted(METHODS), default="Radau")
    run.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def _run(args):
    X, y = datasets.load(args.dataset) if args.dataset else datasets.load_file(args.data)
    traj = integrate(X, y, depth=args.depth, alpha=args.alpha, gamma=args.gamma,
                     loss=args.loss, mu=args.mu, rtol=args.rtol, method=args.method)
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
    print(f"solver       {st['method']} rtol={st['rtol']:g}: {st['steps']} steps, nfev={st['nfev']}, "
          f"njev={st['njev']}, nlu={st['nlu']}, {st['seconds']:.3f} s, {len(traj)} saved points")
    inv = st["invariants"]
    print("invariants   " + ", ".join(f"{k}={v:.3g}" for k, v in inv.items()))


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            _run(args)
    except FlowkitError as exc:
        print(f"flowkit: error: {exc}", file=sys.stderr)
        return 2
    except IntegrationError as exc:
        print(f"flowkit: integration failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
