"""The minimum-ℓ2 interpolator: min ‖w‖₂ s.t. X w = ŷ, w = X⁺ŷ -- the α → ∞ limit of
the Q^D_α interpolator (``__init__``) and the kernel regime's.  Certificate:
stationarity w = Xᵀν (w in the row space of X), relative to ‖w‖∞.
"""
from __future__ import annotations

import numpy as np

__all__ = ["solve_l2"]


def solve_l2(red):
    """(w, λ, stationarity) for min ‖w‖₂ s.t. A w = b."""
    A = red.A
    w, *_ = np.linalg.lstsq(A, red.b, rcond=None)
    lam, *_ = np.linalg.lstsq(A.T, w, rcond=None)
    stat = float(np.max(np.abs(w - A.T @ lam))) / max(float(np.max(np.abs(w))), 1e-300)
    return w, lam, stat
