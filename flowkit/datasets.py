"""Datasets: the paper's built-in examples and loading user data (.csv, .npz).

Built-ins (all labels +1):

* ``fig4a``: the paper's Figure 4(a) data (0.6,0.7,0.8), (0.7,0.6,0.6), (1.0,0.5,0.5);
* ``fig4b``: Figure 4(b) data (0.6,0.7,0.1), (0.4,0.6,0.6), (1.0,0.5,0.5);
* ``kink``: (0.7,0.9,0.8), (0.3,0.4,0.9), (0.1,0.8,0.8), whose D = 2 Q_mu path changes
  support vectors at mu* = 0.405345840455 (the engine's hard regime past that change);
* ``fig3b``, ``fig3c``, ``fig3d``: constructed stand-ins for the paper's Figure 3(b)-(d)
  data, which the paper does not print (search and properties: data/README.md,
  data/make_fig3.py, tests/test_datasets_fig3.py):
  ``fig3b`` (0.6,0.1,0.2), (1.0,0.6,0.6), (1.0,0.6,0.4): unique l1 point, the same
  support vectors for l2 and l1, and the l1 point is also the l_{2/3} and l_{2/10} one;
  ``fig3c`` (0.2,0.6,0.5), (0.5,0.5,0.4), (0.8,1.0,0.4): the l1 max-margin solution is
  a segment, the D = 2 Q_mu path keeps the l2 support {0, 1}, and the flow at alpha = 100
  follows it (Condition 5 holds);
  ``fig3d`` (0.9,0.5,0.9), (0.7,0.1,0.5), (0.6,0.4,0.1): an l2 support vector (sample 1)
  leaves the D = 2 Q_mu path's support at mu0 ~ 0.1154; Condition 5 holds on flows
  stopped above mu0 and fails below.

Generated: ``near_tie(t, copies)``, one sample x = (1, 1-t, ..., 1-t), the worst case
behind the paper's "Role of depth" rates (analysis/depthlaw.py); ``planted_sparse``,
Gaussian features labelled by a sparse planted separator with a margin (the
high-dimensional regime d >> N of the engine's structured linear algebra,
flowkit/structured.py).

CSV files hold one sample per row, the label in the last column (a header line is
allowed); .npz files hold arrays ``X`` and ``y``.
"""
from __future__ import annotations

import math
import numbers
import warnings
import zipfile
from pathlib import Path

import numpy as np
from scipy.special import ndtr, ndtri

from .exceptions import DataError, ParameterError
from .problem import validate_data

__all__ = ["BUILTIN", "load", "load_file", "fig4a", "fig4b", "kink", "fig3b", "fig3c", "fig3d",
           "near_tie", "planted_sparse"]

BUILTIN = {
    "fig4a": [[0.6, 0.7, 0.8], [0.7, 0.6, 0.6], [1.0, 0.5, 0.5]],
    "fig4b": [[0.6, 0.7, 0.1], [0.4, 0.6, 0.6], [1.0, 0.5, 0.5]],
    "kink": [[0.7, 0.9, 0.8], [0.3, 0.4, 0.9], [0.1, 0.8, 0.8]],
    "fig3b": [[0.6, 0.1, 0.2], [1.0, 0.6, 0.6], [1.0, 0.6, 0.4]],
    "fig3c": [[0.2, 0.6, 0.5], [0.5, 0.5, 0.4], [0.8, 1.0, 0.4]],
    "fig3d": [[0.9, 0.5, 0.9], [0.7, 0.1, 0.5], [0.6, 0.4, 0.1]],
}


def load(name):
    """(X, y) of a built-in dataset by name."""
    if name not in BUILTIN:
        raise DataError(f"unknown dataset {name!r}; built-ins are {sorted(BUILTIN)}")
    X = np.array(BUILTIN[name], dtype=float)
    return X, np.ones(X.shape[0])


def fig4a():
    return load("fig4a")


def fig4b():
    return load("fig4b")


def kink():
    return load("kink")


def fig3b():
    return load("fig3b")


def fig3c():
    return load("fig3c")


def fig3d():
    return load("fig3d")


def near_tie(t, copies=3):
    """(X, y): one sample x = (1, 1-t, ..., 1-t) with ``copies`` near-tied features, label
    +1, 0 < t < 1.  Its ℓ1 max-margin point is e₁ (unique, norm 1) and the LP-dual ratio
    of the other features is 1 - t: as t -> 0 the Q^D_μ point needs ever smaller μ to
    come within δ of it (D = 2: log(1/μ) ~ 1/δ at the worst t; analysis/depthlaw.py)."""
    if isinstance(t, bool) or not isinstance(t, (int, float, np.floating)) or not 0.0 < t < 1.0:
        raise ParameterError(f"near_tie: t must be a number in (0, 1); got {t!r}")
    if isinstance(copies, bool) or not isinstance(copies, (int, np.integer)) or copies < 1:
        raise ParameterError(f"near_tie: copies must be an integer >= 1; got {copies!r}")
    return np.array([[1.0] + [1.0 - float(t)] * int(copies)]), np.ones(1)


def load_file(path):
    """(X, y) from a .csv (label in the last column) or .npz (arrays X, y) file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        if not zipfile.is_zipfile(path):  # np.load would take it for a pickle and say so
            raise DataError(f"{path}: not a .npz archive (not a zip file)")
        try:
            with np.load(path, allow_pickle=False) as f:
                if "X" not in f or "y" not in f:
                    raise DataError(f"{path}: .npz must contain arrays 'X' and 'y'; has {sorted(f.files)}")
                X, y = f["X"], f["y"]
        except (OSError, ValueError) as exc:
            if isinstance(exc, DataError):
                raise
            raise DataError(f"{path}: not a readable .npz file ({exc})") from None
    elif suffix == ".csv":
        try:
            with warnings.catch_warnings():  # an empty file: our message below, not numpy's warning
                warnings.simplefilter("ignore", UserWarning)
                # ndmin=2: one column stays a column (N rows of a label, no feature), not one row
                table = np.genfromtxt(path, delimiter=",", dtype=float, invalid_raise=True, ndmin=2)
        except ValueError as exc:
            raise DataError(f"{path}: malformed CSV ({exc})") from None
        header = int(table.size > 0 and np.all(np.isnan(table[0])))
        table = table[header:]
        if table.size and table.shape[1] < 2:
            raise DataError(f"{path}: CSV has {table.shape[1]} column; it needs feature columns "
                            "followed by a label column")
        if table.shape[0] == 0 or table.shape[1] < 2:
            raise DataError(f"{path}: CSV needs >= 1 row of features followed by a label column")
        if np.isnan(table).any():
            r, c = np.argwhere(np.isnan(table))[0]
            raise DataError(f"{path}: non-numeric or missing entry at line {r + header + 1}, column {c + 1}")
        X, y = table[:, :-1], table[:, -1]
    else:
        raise DataError(f"{path}: unsupported data format {suffix!r} (use .csv or .npz)")
    try:
        return validate_data(X, y)
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None


def _count(name, value, lo, hi=None):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ParameterError(f"{name} must be an integer; got {value!r}")
    value = int(value)
    if value < lo or (hi is not None and value > hi):
        bound = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ParameterError(f"{name} must be an integer {bound}; got {value}")
    return value


def planted_sparse(n_samples, n_features, k, seed=0, *, margin=0.1, return_w=False):
    """Separable Gaussian data labelled by a k-sparse planted separator, with a margin.

    * w* has k nonzero entries, on a uniformly random support, equal to ±1/sqrt(k) with
      random signs (so ||w*||_2 = 1, ||w*||_1 = sqrt(k));
    * the rows x_n are standard Gaussian in R^d conditioned on |x_nᵀ w*| >= ``margin``:
      the component along w* is drawn from the standard normal's two tails beyond
      ``margin`` (inverse-CDF sampling, exact for any margin), the orthogonal part is
      untouched -- the same law as rejecting Gaussian rows inside the slab;
    * y_n = sign(x_nᵀ w*).

    So y_n x_nᵀ w* >= margin for every n: the data are linearly separable with ℓ2 margin
    at least ``margin`` (and ℓ1 margin, over ||w||_1 <= 1, at least margin / sqrt(k)).
    With d >> N this is the high-dimensional regime of flowkit/structured.py.

    Parameters: n_samples N >= 1, n_features d >= 1, k in [1, d] (integers); ``seed`` an
    integer >= 0 or a numpy Generator; ``margin`` in (0, 30].  Returns (X, y), or
    (X, y, w*) with ``return_w=True``.  Bad input raises ParameterError (a ValueError).
    """
    n = _count("n_samples", n_samples, 1)
    d = _count("n_features", n_features, 1)
    k = _count("k", k, 1, d)
    if isinstance(seed, np.random.Generator):
        rng = seed
    else:
        rng = np.random.default_rng(_count("seed", seed, 0))
    if isinstance(margin, (bool, np.bool_)) or not isinstance(margin, numbers.Real) \
            or not (0.0 < float(margin) <= 30.0):
        raise ParameterError(f"margin must be a number in (0, 30]; got {margin!r}")
    margin = float(margin)
    w = np.zeros(d)
    support = rng.choice(d, size=k, replace=False)
    w[support] = rng.choice([-1.0, 1.0], size=k) / math.sqrt(k)
    X = rng.standard_normal((n, d))
    # |t| from the tail: P(|T| >= s | |T| >= margin) = ndtr(-s) / ndtr(-margin)
    tail = -ndtri(rng.uniform(0.0, 1.0, size=n) * ndtr(-margin))
    t = np.where(rng.uniform(size=n) < 0.5, -tail, tail)
    X += np.outer(t - X @ w, w)          # replace the component along w* by t
    y = np.where(t > 0, 1.0, -1.0)
    return (X, y, w) if return_w else (X, y)
