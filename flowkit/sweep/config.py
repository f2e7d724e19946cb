"""Sweep configuration: a TOML file naming datasets × depths × α grid × stopping rules.

    [sweep]
    datasets = ["fig4a", "data/kink.csv"]     # built-in names or .csv/.npz files
    depths   = [2, 3]
    alphas   = { logspace = [-1, 3], num = 9 } # or a list: [0.1, 1, 10]

    [[stop]]                 # each [[stop]] table is crossed with the whole grid
    gamma = 1e6              # a fixed accuracy gamma~ = -log L (number or list)
    [[stop]]
    mu = [0.5, 0.1]          # the family gamma~ = alpha^D / mu (Theorem 6)
    [[stop]]
    loss = "1e-8700"         # an exact loss (string or list of strings)
    [[stop]]
    excess_l1 = 0.05         # event: stop when ||w_hat||_1/||w_l1||_1 - 1 reaches 5%,
    gamma_max = 1e8          #   searched up to this gamma~

    [solver]                 # optional; defaults of flowkit.integrate
    method = "Radau"
    rtol = 1e-10
    points_per_decade = 20
    step = "scipy"           # or "compiled" (flowkit.CompiledRadau; method "Radau")

Relative paths resolve against the config file's directory.  Every mistake raises
``ConfigError`` naming the key and its line in the file.
"""
from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import datasets
from ..exceptions import FlowkitError
from ..flow import METHODS
from ..problem import Problem
from ..stopping import resolve_stopping_rule
from ..system import STEPS, check_solver

__all__ = ["ConfigError", "RunSpec", "load_config", "parse_config"]


class ConfigError(FlowkitError):
    """A sweep configuration that cannot be used (names the key and line)."""


@dataclass(frozen=True, eq=False)
class RunSpec:
    """One run of a sweep: data, model, stopping rule and solver settings.  ``stop`` is
    canonical: {"gamma": g} | {"mu": m} | {"loss": "1e-8700"} |
    {"excess_l1": level, "gamma_max": g}."""

    dataset: str
    X: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)
    depth: int
    alpha: float
    stop: dict
    method: str = "Radau"
    rtol: float = 1e-10
    points_per_decade: int = 20
    save_at: tuple | None = None  # extra exact save points (γ̃), e.g. the paper's cross-lines
    step: str = "scipy"  # integrate(step=): "compiled" for flowkit.CompiledRadau

    @property
    def settings(self):
        return dict(depth=self.depth, alpha=self.alpha, stopping=self.stop, method=self.method,
                    rtol=self.rtol, atol=None, points_per_decade=self.points_per_decade,
                    save_at=None if self.save_at is None else list(self.save_at), step=self.step)


MAX_RUNS = 1_000_000  # runs of one config (a logspace's num included)

_TOP = {"sweep", "stop", "solver"}
_SWEEP = {"datasets", "depths", "alphas"}
_STOP = {"gamma", "mu", "loss", "excess_l1", "gamma_max"}
_SOLVER = {"method", "rtol", "points_per_decade", "step"}


def _line(text, key, table=None):
    """Line number of ``key = ...`` (inside ``[table]`` when given), for messages."""
    lines = text.splitlines()
    start = 0
    if table:
        for i, ln in enumerate(lines):
            if re.match(rf"^\s*\[+\s*{re.escape(table)}\s*\]+", ln):
                start = i
                break
    for i in range(start, len(lines)):
        if re.match(rf"^\s*\"?{re.escape(key)}\"?\s*=", lines[i]) or \
                re.match(rf"^\s*\[+\s*{re.escape(key)}\s*\]+", lines[i]):
            return i + 1
    return None


class _Reader:
    def __init__(self, text, source):
        self.text, self.source = text, source

    def fail(self, key, msg, table=None):
        ln = _line(self.text, key.split(".")[-1], table)
        where = f"{self.source}, line {ln}" if ln else self.source
        raise ConfigError(f"{where}: key '{key}': {msg}")

    def number(self, key, value, table):
        """The one positive finite number of ``key`` (a list is an error, not a grid)."""
        if isinstance(value, list):
            self.fail(key, f"takes one number, not a list; got {value!r}", table)
        return self.numbers(key, value, table)[0]

    def numbers(self, key, value, table, positive=True):
        vals = value if isinstance(value, list) else [value]
        out = []
        for v in vals:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                    or (positive and v <= 0):
                self.fail(key, f"expected {'positive ' if positive else ''}finite numbers; got {v!r}", table)
            out.append(float(v))
        if not out:
            self.fail(key, "empty list", table)
        return out


def parse_config(text, source="<config>", base=None):
    """RunSpecs of a TOML configuration text (module docstring)."""
    try:
        cfg = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    r = _Reader(text, source)
    for key in cfg:
        if key not in _TOP:
            r.fail(key, f"unknown section; expected one of {sorted(_TOP)}")
    sweep = cfg.get("sweep")
    if not isinstance(sweep, dict):
        raise ConfigError(f"{source}: missing [sweep] table (datasets, depths, alphas)")
    for key in sweep:
        if key not in _SWEEP:
            r.fail(f"sweep.{key}", f"unknown key; expected one of {sorted(_SWEEP)}", "sweep")
    for key in sorted(_SWEEP - set(sweep)):
        raise ConfigError(f"{source}: [sweep] is missing the key '{key}'")

    data = []
    names = sweep["datasets"] if isinstance(sweep["datasets"], list) else [sweep["datasets"]]
    if not names:
        r.fail("sweep.datasets", "empty list", "sweep")
    for name in names:
        if not isinstance(name, str):
            r.fail("sweep.datasets", f"expected dataset names or file paths; got {name!r}", "sweep")
        try:
            if name in datasets.BUILTIN:
                X, y = datasets.load(name)
            else:
                path = Path(name) if base is None or Path(name).is_absolute() else Path(base) / name
                X, y = datasets.load_file(path)
        except FlowkitError as exc:
            r.fail("sweep.datasets", f"{name!r}: {exc}", "sweep")
        data.append((name, X, y))

    depths = sweep["depths"] if isinstance(sweep["depths"], list) else [sweep["depths"]]
    for D in depths:
        if isinstance(D, bool) or not isinstance(D, int) or D < 2:
            r.fail("sweep.depths", f"depths are integers >= 2; got {D!r}", "sweep")
    if not depths:
        r.fail("sweep.depths", "empty list", "sweep")

    alphas = sweep["alphas"]
    if isinstance(alphas, dict):
        extra = set(alphas) - {"logspace", "num"}
        if extra or "logspace" not in alphas:
            r.fail("sweep.alphas", "write {logspace = [lo, hi], num = n} (log10 exponents) or a list",
                   "sweep")
        lo_hi, num = alphas["logspace"], alphas.get("num", 10)
        if not (isinstance(lo_hi, list) and len(lo_hi) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in lo_hi)):
            r.fail("sweep.alphas", f"logspace needs two exponents [lo, hi]; got {lo_hi!r}", "sweep")
        if isinstance(num, bool) or not isinstance(num, int) or not 1 <= num <= MAX_RUNS:
            r.fail("sweep.alphas", f"num must be an integer in [1, {MAX_RUNS}]; got {num!r}", "sweep")
        if not all(abs(v) <= 300 for v in lo_hi):
            r.fail("sweep.alphas", f"logspace exponents must lie in [-300, 300]; got {lo_hi!r}", "sweep")
        alphas = [float(a) for a in np.logspace(lo_hi[0], lo_hi[1], num)]
    else:
        alphas = r.numbers("sweep.alphas", alphas, "sweep")

    stops = cfg.get("stop")
    if stops is None:
        raise ConfigError(f"{source}: no [[stop]] table: give at least one stopping rule")
    if not isinstance(stops, list):
        r.fail("stop", "write stopping rules as [[stop]] tables")
    rules = []
    for table in stops:
        for key in table:
            if key not in _STOP:
                r.fail(f"stop.{key}", f"unknown key; expected one of {sorted(_STOP)}", "stop")
        kinds = [k for k in ("gamma", "mu", "loss", "excess_l1") if k in table]
        if len(kinds) != 1:
            r.fail("stop", f"each [[stop]] needs exactly one of gamma, mu, loss, excess_l1; got {kinds}")
        kind = kinds[0]
        if kind == "loss":
            vals = table["loss"] if isinstance(table["loss"], list) else [table["loss"]]
            if not vals:
                r.fail("stop.loss", "empty list", "stop")
            for v in vals:
                if not isinstance(v, str):
                    r.fail("stop.loss", f"write losses as strings such as \"1e-8700\"; got {v!r}", "stop")
            rules += [{"loss": v} for v in vals]
        elif kind == "excess_l1":
            if "gamma_max" not in table:
                r.fail("stop.excess_l1", "the excess_l1 event needs gamma_max (search limit)", "stop")
            level = r.number("stop.excess_l1", table["excess_l1"], "stop")
            gmax = r.number("stop.gamma_max", table["gamma_max"], "stop")
            rules.append({"excess_l1": level, "gamma_max": gmax})
        else:
            if "gamma_max" in table:
                r.fail("stop.gamma_max", "gamma_max belongs to the excess_l1 event only", "stop")
            rules += [{kind: v} for v in r.numbers(f"stop.{kind}", table[kind], "stop")]

    solver = cfg.get("solver", {})
    for key in solver:
        if key not in _SOLVER:
            r.fail(f"solver.{key}", f"unknown key; expected one of {sorted(_SOLVER)}", "solver")
    method = solver.get("method", "Radau")
    if method not in METHODS:
        r.fail("solver.method", f"one of {sorted(METHODS)}; got {method!r}", "solver")
    rtol = r.number("solver.rtol", solver.get("rtol", 1e-10), "solver")
    try:
        check_solver(method, rtol)
    except FlowkitError as exc:
        r.fail("solver.rtol", str(exc), "solver")
    ppd = solver.get("points_per_decade", 20)
    if isinstance(ppd, bool) or not isinstance(ppd, int) or not 1 <= ppd <= 1000:
        r.fail("solver.points_per_decade", f"an integer in [1, 1000]; got {ppd!r}", "solver")
    step = solver.get("step", "scipy")
    if step not in STEPS or (step == "compiled" and method != "Radau"):
        r.fail("solver.step", f"one of {sorted(STEPS)} ('compiled' with method = \"Radau\"); "
               f"got {step!r}", "solver")

    n_runs = len(data) * len(depths) * len(alphas) * len(rules)
    if n_runs > MAX_RUNS:
        raise ConfigError(f"{source}: {n_runs} runs ({len(data)} datasets x {len(depths)} depths x "
                          f"{len(alphas)} alphas x {len(rules)} stopping rules); at most {MAX_RUNS} "
                          "per config")
    _check_runs(r, data, depths, alphas, rules)
    return [RunSpec(dataset=name, X=X, y=y, depth=D, alpha=a, stop=rule, method=method,
                    rtol=rtol, points_per_decade=ppd, step=step)
            for name, X, y in data for D in depths for a in alphas for rule in rules]


def _check_runs(r, data, depths, alphas, rules):
    """Everything integrate checks before integrating, for every run of the grid, with the
    key to blame: so that a sweep that cannot run fails here, before its store exists."""
    for name, X, y in data:
        try:  # the data's checks (separability: an LP), cached per dataset for the runs
            Problem.build(X, y, 2, 1.0, scaled=True)
        except FlowkitError as exc:
            r.fail("sweep.datasets", f"{name!r}: {exc}", "sweep")
    for D in depths:
        for a in alphas:
            for name, X, y in data:  # the range of alpha^D times the data's scale
                try:
                    problem = Problem.build(X, y, D, a, scaled=True)
                except FlowkitError as exc:
                    r.fail("sweep.alphas", f"alpha = {a!r} at depth {D} on {name!r}: {exc}", "sweep")
            for rule in rules:
                kind = next(iter(rule))
                target = {"gamma": rule["gamma_max"]} if kind == "excess_l1" else rule
                try:
                    resolve_stopping_rule(**target, log_alpha_D=problem.given_log_alpha_D)
                except FlowkitError as exc:
                    key = "gamma_max" if kind == "excess_l1" else kind
                    r.fail(f"stop.{key}", f"{exc} (depth {D}, alpha {a!r})", "stop")


def load_config(path):
    """RunSpecs of the TOML file at ``path``."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read sweep config {path}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}, line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); "
                          "TOML files are UTF-8") from None
    return parse_config(text, source=str(path), base=path.parent)
