"""On-disk layout of a store file and of one run: RunRecord <-> HDF5 group.

A store file (the main file, and every journal file, which is a store holding one run)::

    /                      attrs: schema_version = 1, flowkit_version, created, title
    /runs/<run_id>         one netCDF4 group per run (h5netcdf's layout, _netcdf.py, so
                           ``xarray.open_dataset(path, group="runs/<run_id>",
                           engine="h5netcdf")`` opens it as labelled data)

A run group, n saved points, d features, N samples::

    dims       gamma = n, feature = d, sample = N, side = 2, state_dim = d + 1 + N
    gamma      (gamma)                   coordinate: training accuracy gamma~ = -log L
    side       (side)                    coordinate: "+", "-" (u+ and u-)
    w, w_hat   (gamma, feature)          predictor, normalised predictor w / margin
    margin     (gamma)                   min_n y_n x_n . w
    theta      (gamma, side, feature)    log u+, log u-
    log_time   (gamma)                   log of the gradient-flow time
    state      (gamma, state_dim)        integrator state (y, omega, xi), from which at() restarts
    X, y       (sample, feature), (sample)   the data the run was computed on

    attrs      run_id, status ("ok" | "failed"), error ("" | "<Exception>: message"),
               dataset, data_sha256, depth, alpha, stopping (JSON), stopping_rule
               (Trajectory.stopping text), method, rtol, atol (JSON), points_per_decade,
               save_at (JSON), settings (JSON, canonical: what run_id hashes), stats (JSON,
               incl. invariants), flowkit_version, versions (JSON: flowkit, numpy, scipy,
               numba, h5py, hdf5, h5netcdf, python), timestamp (UTC ISO 8601),
               gamma_final, margin_final, n_points, checksum.

A failed run keeps only X, y (dims sample, feature), NaN for gamma_final/margin_final
and n_points = 0.  Float arrays are little-endian float64, chunked, deflate + shuffle
(standard netCDF4 filters, readable by netCDF-C) with HDF5's fletcher32 per chunk.
``checksum`` = "sha256:" of every array (name, shape, bytes) and every attribute except
itself: the store's own end-to-end check, since fletcher32 covers only chunk data, not
attributes, and a damaged file can still decode to wrong numbers.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import platform
import re
from dataclasses import dataclass
from datetime import datetime, timezone

import h5netcdf
import h5py
import numpy as np

from .._version import __version__
from ..exceptions import ParameterError
from ._errors import StoreError
from ._ids import _run_id, canonical_json, canonical_settings, data_sha256, describe_stopping
from ._netcdf import create_file, next_dimid, write_group

__all__ = ["SCHEMA_VERSION", "RunRecord", "record_from_trajectory", "record_failure",
           "trajectory_from_record", "write_run", "append_runs", "new_store_file", "read_run", "read_attrs",
           "create_store_file",
           "open_root", "run_names", "checksum", "versions"]

SCHEMA_VERSION = 1

# name -> (dims, long_name); the order is the order of writing
VARIABLES = {
    "gamma": (("gamma",), "training accuracy gamma~ = -log L"),
    "w": (("gamma", "feature"), "predictor w = u+^D - u-^D"),
    "margin": (("gamma",), "margin min_n y_n x_n.w"),
    "w_hat": (("gamma", "feature"), "normalised predictor w / margin"),
    "theta": (("gamma", "side", "feature"), "log-parameters log u+, log u-"),
    "log_time": (("gamma",), "log of the gradient-flow time t"),
    "state": (("gamma", "state_dim"), "integrator state (y, omega, xi)"),
    "X": (("sample", "feature"), "features"),
    "y": (("sample",), "labels"),
}
TRAJECTORY_ARRAYS = ("gamma", "w", "margin", "w_hat", "theta", "log_time", "state")

_FILTERS = {"compression": "gzip", "compression_opts": 4, "shuffle": True, "fletcher32": True}


@dataclass
class RunRecord:
    """One run in memory: its arrays (float64) and attributes (str, int or float)."""

    run_id: str
    arrays: dict
    attrs: dict

    @property
    def ok(self):
        return self.attrs.get("status") == "ok"

    def verify(self):
        """None if the stored checksum and run id match the content, else the reason."""
        stored = self.attrs.get("checksum")
        if stored is None:
            return "no checksum attribute"
        need = ("X", "y") + (TRAJECTORY_ARRAYS if self.ok else ())
        missing = [name for name in need if name not in self.arrays]
        if missing:
            return f"missing arrays {missing}"
        if checksum(self.arrays, self.attrs) != stored:
            return "checksum mismatch (arrays or attributes differ from what was written)"
        if self.attrs.get("run_id") != self.run_id:
            return f"group name {self.run_id} differs from its run_id attribute {self.attrs.get('run_id')!r}"
        try:
            expected = _run_id(data_sha256(self.arrays["X"], self.arrays["y"]),
                               json.loads(self.attrs["settings"]), self.attrs["flowkit_version"])
        except (KeyError, ValueError, TypeError) as exc:
            return f"cannot recompute the run id ({exc!r})"
        if expected != self.run_id:
            return f"run id {self.run_id} does not hash its data and settings (expected {expected})"
        return None


def utc_now():
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def versions():
    import numba
    import scipy
    return {"flowkit": __version__, "numpy": np.__version__, "scipy": scipy.__version__,
            "numba": numba.__version__, "h5py": h5py.__version__,
            "hdf5": h5py.version.hdf5_version, "h5netcdf": h5netcdf.__version__,
            "python": platform.python_version()}


def checksum(arrays, attrs):
    h = hashlib.sha256(b"flowkit.store/checksum/1\0")
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name], dtype="<f8")
        h.update(f"{name}{a.shape}\0".encode())
        h.update(a.tobytes())
    meta = {k: v for k, v in attrs.items() if k != "checksum" and not k.startswith("_")}
    h.update(canonical_json(meta).encode())
    return "sha256:" + h.hexdigest()


# ------------------------------------------------------------------ records from results
def _data(X, y):
    try:
        X = np.array(X, dtype="<f8")
        y = np.array(y, dtype="<f8")
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"X and y must be numeric arrays to be stored: {exc}") from None
    if X.ndim != 2 or y.ndim != 1:
        raise ParameterError(f"X must be 2-d and y 1-d to be stored; got shapes {X.shape}, {y.shape}")
    return X, y


def _base_attrs(X, y, dataset, s):
    data_hash = data_sha256(X, y)
    return {
        "run_id": _run_id(data_hash, s, __version__),
        "dataset": str(dataset),
        "data_sha256": data_hash,
        "depth": s["depth"],
        "alpha": s["alpha"],
        "stopping": canonical_json(s["stopping"]),
        "method": s["method"],
        "rtol": s["rtol"],
        "atol": canonical_json(s["atol"]),
        "points_per_decade": s["points_per_decade"],
        "save_at": canonical_json(s["save_at"]),
        "settings": canonical_json(s),
        "flowkit_version": __version__,
        "versions": canonical_json(versions()),
        "timestamp": utc_now(),
    }


def _check_describes(traj, X, y, s):
    """Refuse to file a trajectory under settings or data that did not produce it: the
    run id would then name the wrong result and the sweep would trust it forever."""
    from ..integrator import save_grid
    from ..stopping import resolve_stopping_rule

    def bad(what):
        raise ParameterError(f"the given settings/data do not describe this trajectory: {what}")

    N, d = X.shape
    if traj.w.shape[1:] != (d,) or traj.state.shape[1:] != (d + 1 + N,) or y.shape != (N,):
        bad(f"trajectory has {traj.w.shape[1]} features and state size {traj.state.shape[1]}, "
            f"data are {N} x {d}")
    if traj.depth != s["depth"] or traj.alpha != s["alpha"]:
        bad(f"depth/alpha {traj.depth}/{traj.alpha!r} vs settings {s['depth']}/{s['alpha']!r}")
    if traj.stats.get("step", "scipy") != s.get("step", "scipy"):
        bad(f"step {traj.stats.get('step', 'scipy')!r} vs settings {s.get('step', 'scipy')!r}")
    if traj.stats.get("method") != s["method"] or traj.stats.get("rtol") != s["rtol"]:
        bad(f"method/rtol {traj.stats.get('method')}/{traj.stats.get('rtol')!r} vs settings "
            f"{s['method']}/{s['rtol']!r}")
    # the resolved atol covers the integrated state: d + 1 numbers, or N + 1 in the dual form
    n_atol = N + 1 if traj.stats.get("linalg") == "dual" else d + 1
    if s["atol"] is not None and (np.ndim(s["atol"]) and np.size(s["atol"]) != n_atol or not np.array_equal(
            np.broadcast_to(np.asarray(s["atol"]), (n_atol,)), np.asarray(traj.stats.get("atol")))):
        bad(f"atol {traj.stats.get('atol')} vs settings {s['atol']}")
    if "excess_l1" in s["stopping"]:  # an event run ends at its crossing (flowkit.events)
        ev = traj.stats.get("event") or {}
        if ev.get("level") != s["stopping"]["excess_l1"] or ev.get("gamma_max") != s["stopping"]["gamma_max"]:
            bad(f"event {ev or 'missing'} vs settings {s['stopping']}")
        target = ev["gamma_first"] if ev["reached"] else ev["gamma_max"]
    else:
        target = resolve_stopping_rule(**s["stopping"],
                                       log_alpha_D=s["depth"] * math.log(s["alpha"])).gamma
    if traj.gamma[-1] != target:
        bad(f"final gamma~ {traj.gamma[-1]!r} vs the target {target!r} of {s['stopping']}")
    if not np.array_equal(traj.gamma, save_grid(target, s["points_per_decade"], s["save_at"] or ())):
        bad("saved gamma~ differ from the save grid of points_per_decade/save_at")
    margin = np.min((y[:, None] * X) @ traj.w[-1])
    if not math.isclose(margin, traj.margin[-1], rel_tol=1e-8, abs_tol=1e-300):
        bad(f"final margin {traj.margin[-1]!r} is not that of the data ({margin!r})")


def record_from_trajectory(traj, *, X, y, dataset, settings):
    """RunRecord of a successful run (checks that settings and data produced ``traj``)."""
    s = canonical_settings(**settings)
    X, y = _data(X, y)
    _check_describes(traj, X, y, s)
    arrays = {name: np.ascontiguousarray(getattr(traj, name), dtype="<f8") for name in TRAJECTORY_ARRAYS}
    arrays.update(X=X, y=y)
    attrs = _base_attrs(X, y, dataset, s)
    attrs.update(status="ok", error="", stopping_rule=traj.stopping,
                 stats=canonical_json(traj.stats), gamma_final=float(traj.gamma[-1]),
                 margin_final=float(traj.margin[-1]), n_points=int(traj.gamma.size))
    attrs["checksum"] = checksum(arrays, attrs)
    return RunRecord(attrs["run_id"], arrays, attrs)


def record_failure(*, X, y, dataset, settings, error):
    """RunRecord of a run that raised ``error`` (an exception or a message)."""
    s = canonical_settings(**settings)
    X, y = _data(X, y)
    if isinstance(error, BaseException):
        error = f"{type(error).__name__}: {error}"
    arrays = {"X": X, "y": y}
    attrs = _base_attrs(X, y, dataset, s)
    attrs.update(status="failed", error=str(error) or "failed", stopping_rule=describe_stopping(s["stopping"]),
                 stats="{}", gamma_final=math.nan, margin_final=math.nan, n_points=0)
    attrs["checksum"] = checksum(arrays, attrs)
    return RunRecord(attrs["run_id"], arrays, attrs)


def trajectory_from_record(rec, *, flow=True):
    """The Trajectory of an "ok" record; with ``flow`` a working Flow so that at() works."""
    from ..problem import Problem
    from ..select import replay
    from ..trajectory import Trajectory

    a, at = rec.arrays, rec.attrs
    stats = json.loads(at["stats"])
    depth, alpha = int(at["depth"]), float(at["alpha"])
    fl = None
    if flow:
        # the resolved atol vector, exactly the tolerances the run used
        cls, linalg = replay(stats)
        options = {} if linalg == "dual" else {"linalg": linalg}
        if stats.get("step", "scipy") == "compiled":  # at() on the run's own step
            options["step"] = "compiled"
        fl = cls(Problem.build(a["X"], a["y"], depth, alpha, scaled=True), method=at["method"],
                 rtol=float(at["rtol"]), atol=np.asarray(stats["atol"], dtype=float), **options)
    return Trajectory(gamma=a["gamma"], w=a["w"], margin=a["margin"], w_hat=a["w_hat"],
                      theta=a["theta"], log_time=a["log_time"], state=a["state"], stats=stats,
                      depth=depth, alpha=alpha, stopping=at["stopping_rule"], flow=fl)


# ------------------------------------------------------------------ HDF5
def _root_attrs():
    return {"title": "flowkit trajectory store", "schema_version": SCHEMA_VERSION,
            "flowkit_version": __version__, "created": utc_now()}


@contextlib.contextmanager
def new_store_file(path):
    """A new, empty store at ``path``: yields its /runs group (h5py) for write_run."""
    with create_file(path, _root_attrs()) as f:
        yield f.create_group("runs", track_order=True)


def create_store_file(path, records=()):
    """A new store at ``path`` holding ``records`` (callers make it appear atomically)."""
    with new_store_file(path) as runs:
        for rec in records:
            write_run(runs, rec)


def append_runs(path, records, replace=()):
    """Add ``records`` to the store file at ``path``, first deleting the runs named in
    ``replace`` (callers work on a private copy: an interrupted append may leave it
    inconsistent)."""
    with h5py.File(path, "r+") as f:
        runs = f["runs"]
        for rid in replace:
            del runs[rid]
        first = next_dimid(runs)
        for rec in records:
            first = write_run(runs, rec, first)


def write_run(runs, rec, first_dimid=None):
    """Write ``rec`` as the netCDF4 group runs/<run_id>; ``runs`` is an h5py Group.
    Its dimension ids start at ``first_dimid`` (default: the next free one); returns
    the next free id after them."""
    a = rec.arrays
    dims = {"sample": a["X"].shape[0], "feature": a["X"].shape[1]}
    if "gamma" in a:
        dims.update(gamma=a["gamma"].size, side=2, state_dim=a["state"].shape[1])
    variables = []
    for name, (vdims, long_name) in VARIABLES.items():
        if name not in a:
            continue
        arr = a[name]
        # chunks must be non-empty: a zero-sized array (failed run on empty data) is contiguous
        filters = dict(_FILTERS, chunks=True) if arr.size else {}
        variables.append((name, vdims, arr, "<f8", {"long_name": long_name}, filters))
        if name == "gamma":
            variables.append(("side", ("side",), np.array(["+", "-"], dtype=object), h5py.string_dtype(),
                              {"long_name": "u+ (theta[:, 0]) and u- (theta[:, 1])"}, {}))
    if first_dimid is None:
        first_dimid = next_dimid(runs)
    nxt = write_group(runs, rec.run_id, dims, variables, rec.attrs, first_dimid)
    # HDF5 gives heap blocks and B-tree nodes their file addresses only when it flushes
    # them (until then they live at temporary addresses); flushed here, each run's
    # metadata lands right after its own data instead of at the end of the whole
    # commit, so a file cut short keeps every run before the cut whole (_scan.py)
    runs.file.flush()
    return nxt


def _py(value):
    """An attribute as written: str, int or float (h5netcdf stores numbers as 1-element arrays)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        if value.size != 1:
            return [_py(v) for v in value.tolist()]
        value = value.reshape(()).item()
    elif isinstance(value, np.generic):
        value = value.item()
    return value.decode() if isinstance(value, bytes) else value


def read_attrs(group):
    return {k: _py(v) for k, v in group.attrs.items() if not k.startswith("_")}


def read_run(group, run_id=None):
    """RunRecord from an h5py group runs/<run_id> (not verified: see RunRecord.verify).
    ``run_id``: the name it is filed under, for a group opened by address, which has none."""
    arrays = {name: np.asarray(group[name][()], dtype="<f8") for name in VARIABLES if name in group}
    return RunRecord(run_id or group.name.rsplit("/", 1)[-1], arrays, read_attrs(group))


def _open_error(path, exc):
    msg = str(exc)
    sizes = re.search(r"truncated file: eof = (\d+).*stored_eof = (\d+)", msg)
    if sizes:
        why = (f"truncated HDF5 file ({sizes.group(1)} bytes on disk, its superblock records "
               f"{sizes.group(2)})")
    elif "truncated file" in msg:
        why = f"truncated HDF5 file ({msg})"
    elif "signature" in msg:
        why = "not an HDF5 file (no HDF5 signature)" + (" - it is empty" if _size(path) == 0 else "")
    else:
        why = f"unreadable HDF5 file ({msg})"
    return StoreError(f"{path}: {why}; `flowkit store check {path}` reports and salvages what is readable")


def _size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return -1


def open_root(path, need_runs=True):
    """The store file at ``path`` opened read-only after checking it is one (StoreError).
    ``need_runs=False``: a store whose /runs group is unreadable is still opened (the
    check searches such a file for its runs)."""
    try:
        f = h5py.File(path, "r")
    except FileNotFoundError:
        raise StoreError(f"{path}: no such store file") from None
    except (OSError, RuntimeError, ValueError) as exc:
        raise _open_error(path, exc) from None
    try:
        if "schema_version" not in f.attrs:
            raise StoreError(f"{path}: not a flowkit store (HDF5 file without a schema_version attribute)")
        version = _py(f.attrs["schema_version"])
        if not isinstance(version, int) or version < 1:
            raise StoreError(f"{path}: not a flowkit store (schema_version = {version!r})")
        if version > SCHEMA_VERSION:
            raise StoreError(f"{path}: written with store schema {version}; this flowkit reads "
                             f"schema <= {SCHEMA_VERSION} (upgrade flowkit)")
        if need_runs and not isinstance(f.get("runs"), h5py.Group):
            raise StoreError(f"{path}: not a flowkit store (no /runs group)")
    except StoreError:
        f.close()
        raise
    except (OSError, RuntimeError, KeyError, ValueError) as exc:
        f.close()
        raise StoreError(f"{path}: damaged store root ({exc}); `flowkit store check {path}` "
                         "reports and salvages what is readable") from None
    return f


def run_names(f, path):
    """Run ids in an open store file (StoreError if the run index cannot be read)."""
    try:
        runs = f["runs"]
        if not isinstance(runs, h5py.Group):
            raise KeyError("/runs is not a group")
        return list(runs.keys())
    except (OSError, RuntimeError, KeyError, ValueError) as exc:
        raise StoreError(f"{path}: cannot list the runs ({exc}); `flowkit store check {path}` "
                         "reports and salvages what is readable") from None
