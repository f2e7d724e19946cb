"""Run identity: canonical settings and the content hash that names a run.

A run is fully determined by the data (X, y), the settings of ``flowkit.integrate``
and the flowkit version that computes it, so its id is a hash of exactly those:

    run_id = sha256( "flowkit.store/run/1" | data_sha256(X, y)
                     | canonical JSON of the settings | flowkit version )[:20 hex]

* **Data** enter as float64 little-endian C-order bytes with their shapes, i.e. as
  ``flowkit.integrate`` sees them (``y = [1, 1]`` and ``[1.0, 1.0]`` are one dataset);
  the dataset's *name* is a label stored with the run, not part of its identity.
* **Settings** are canonicalised so that spellings which integrate identically hash
  identically: ``alpha=10`` and ``10.0``, defaults given or omitted, ``save_at`` in any
  order or with duplicates, ``loss="1e-3"``, ``"0.001"`` and ``1e-3``.  Floats enter by
  ``repr`` (shortest round-trip form), so two settings hash alike iff they are the same
  float64 numbers.
* **The flowkit version** is included because a new version may compute a different
  trajectory: a store keeps the results of each version apart, and a sweep re-run after
  an upgrade recomputes (and retries runs that failed before).

80 bits of sha256 make an accidental collision among even 10^9 runs ~1e-6 likely.
"""
from __future__ import annotations

import hashlib
import json
import numbers
from decimal import Decimal, InvalidOperation

import numpy as np

from .._version import __version__
from ..exceptions import ParameterError, StoppingRuleError

__all__ = ["canonical_settings", "run_id", "data_sha256", "integrate_kwargs",
           "describe_stopping", "canonical_json", "RUN_ID_LENGTH"]

RUN_ID_LENGTH = 20
_STOPPING_KINDS = ("gamma", "loss", "mu")


def canonical_json(obj):
    """Deterministic JSON: sorted keys, no spaces, floats by repr (Python's json, which
    writes NaN/Infinity for non-finite floats), numpy scalars and arrays as numbers."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=True, default=_plain)


def _plain(obj):
    if isinstance(obj, (np.generic, np.ndarray)):
        return obj.tolist()
    raise TypeError(f"cannot store {type(obj).__name__} {obj!r} as JSON")


def _real(name, value, error=ParameterError):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise error(f"{name} must be a real number; got {value!r}")
    return float(value)


def _integer(name, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) \
            or not float(value).is_integer():
        raise ParameterError(f"{name} must be an integer; got {value!r}")
    return int(value)


def _canonical_loss(value):
    if isinstance(value, (bool, np.bool_)):
        raise StoppingRuleError(f"loss must be a number or a decimal string; got {value!r}")
    # the same text gamma_from_loss parses: repr of a float, or the stripped string
    text = repr(float(value)) if isinstance(value, numbers.Real) else str(value).strip()
    try:
        dec = Decimal(text)
    except (InvalidOperation, ValueError):
        raise StoppingRuleError(f"loss must be a number or a decimal string like '1e-8700'; got {value!r}") from None
    if not dec.is_finite():
        raise StoppingRuleError(f"loss must be finite; got {value!r}")
    return str(dec.normalize())  # "1e-3", "0.001", 1e-3 -> "0.001"; "1e-8700" -> "1E-8700"


def _canonical_stopping(stopping):
    """{"gamma": float} | {"mu": float} | {"loss": canonical decimal string}, from such a
    dict or from a Trajectory's ``stopping`` text ("gamma=1000.0", "loss=1e-8700")."""
    if isinstance(stopping, str):
        kind, sep, value = stopping.partition("=")
        if not sep:
            raise StoppingRuleError(f"stopping must look like 'gamma=1e3'; got {stopping!r}")
        kind = kind.strip()
        if kind in ("gamma", "mu"):
            try:
                value = float(value)
            except ValueError:
                raise StoppingRuleError(f"stopping {stopping!r}: {kind} must be a number") from None
        stopping = {kind: value}
    if isinstance(stopping, dict) and set(stopping) == {"excess_l1", "gamma_max"}:
        # the event rule of flowkit.events.until_excess_l1 (sweeps)
        return {"excess_l1": _real("excess_l1", stopping["excess_l1"], StoppingRuleError),
                "gamma_max": _real("gamma_max", stopping["gamma_max"], StoppingRuleError)}
    if not isinstance(stopping, dict) or len(stopping) != 1:
        raise StoppingRuleError(
            "stopping must be one rule such as {'gamma': 1e6}, {'mu': 0.5} or {'loss': '1e-8700'}; "
            f"got {stopping!r}")
    (kind, value), = stopping.items()
    if kind not in _STOPPING_KINDS:
        raise StoppingRuleError(f"unknown stopping rule {kind!r}; use one of {_STOPPING_KINDS}")
    if kind == "loss":
        return {"loss": _canonical_loss(value)}
    return {kind: _real(kind, value, StoppingRuleError)}


def describe_stopping(stopping):
    """'gamma=1000.0' etc. from a canonical stopping dict (as in Trajectory.stopping);
    the excess-l1 event reads 'excess_l1=0.05,gamma_max=1e8'."""
    return ",".join(f"{kind}={value}" for kind, value in stopping.items())


def canonical_settings(*, depth, alpha, stopping, method="Radau", rtol=1e-10, atol=None,
                       points_per_decade=20, save_at=None, step="scipy"):
    """The settings of one ``flowkit.integrate`` call in canonical form (a plain dict,
    JSON-ready), with integrate's defaults filled in.  ``step`` appears only when it is not
    the default "scipy", so that the ids of runs on the default step stay what they were.

    Only types are normalised here; ranges are integrate's business (a run whose
    settings integrate rejects can still be stored as a failed run).
    """
    if atol is not None:
        try:
            arr = None if isinstance(atol, (bool, np.bool_, str, bytes)) else np.asarray(atol, dtype=float)
        except (TypeError, ValueError):
            arr = None
        if arr is None or arr.ndim > 1:
            raise ParameterError(f"atol must be None, a number or a vector; got {atol!r}")
        atol = float(arr) if arr.ndim == 0 else [float(v) for v in arr]
    if save_at is not None:
        try:
            pts = np.unique(np.atleast_1d(np.asarray(save_at, dtype=float)))
        except (TypeError, ValueError):
            raise StoppingRuleError(f"save_at must be a list of numbers; got {save_at!r}") from None
        # integrate merges duplicates and sorts: so does the id; [] integrates like None
        save_at = [float(v) for v in pts] or None
    if not isinstance(method, str):
        raise ParameterError(f"method must be a string; got {method!r}")
    if not isinstance(step, str):
        raise ParameterError(f"step must be a string; got {step!r}")
    out = {
        "depth": _integer("depth", depth),
        "alpha": _real("alpha", alpha),
        "stopping": _canonical_stopping(stopping),
        "method": method,
        "rtol": _real("rtol", rtol),
        "atol": atol,
        "points_per_decade": _integer("points_per_decade", points_per_decade),
        "save_at": save_at,
    }
    if step != "scipy":
        out["step"] = step
    return out


def integrate_kwargs(settings):
    """Keyword arguments of ``flowkit.integrate`` for (canonical or raw) ``settings``."""
    s = canonical_settings(**settings)
    if "excess_l1" in s["stopping"]:
        raise StoppingRuleError("the excess_l1 event runs through flowkit.events.until_excess_l1, "
                                "not integrate")
    kw = {k: v for k, v in s.items() if k != "stopping"}
    kw.update(s["stopping"])
    return kw


def data_sha256(X, y):
    """Hex sha256 of the data as float64 (shapes included)."""
    h = hashlib.sha256(b"flowkit.store/data/1\0")
    for name, arr in (("X", X), ("y", y)):
        a = np.ascontiguousarray(np.asarray(arr, dtype="<f8"))
        h.update(f"{name}{a.shape}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def run_id(X, y, *, flowkit_version=None, **settings):
    """Content hash naming the run of ``flowkit.integrate(X, y, **settings)`` computed by
    flowkit ``flowkit_version`` (default: this one); 20 hex characters.

    ``settings``: depth, alpha, stopping (``{"gamma": 1e6}``, ``{"mu": 0.5}``,
    ``{"loss": "1e-8700"}`` or ``"gamma=1e6"``), and optionally method, rtol, atol,
    points_per_decade, save_at, step (integrate's defaults otherwise).
    """
    return _run_id(data_sha256(X, y), canonical_settings(**settings),
                   __version__ if flowkit_version is None else flowkit_version)


def _run_id(data_hash, settings, version):
    h = hashlib.sha256(b"flowkit.store/run/1\0")
    h.update(data_hash.encode() + b"\0")
    h.update(canonical_json(settings).encode() + b"\0")
    h.update(str(version).encode())
    return h.hexdigest()[:RUN_ID_LENGTH]
