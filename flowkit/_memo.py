"""Per-dataset facts remembered across calls, keyed by the bytes of an array.

A sweep over alpha and depth on one dataset needs some facts of the data once, not per
run: ``Problem.build``'s separability check and ℓ2 margin (an LP or a QR, and a QP) and the
system's groups of identical samples (an ``np.unique`` over rows).  They were ~1 ms of a
~7 ms compiled-step run on fig4a.  The values are shared between calls: read only.
"""
import hashlib
from collections import OrderedDict

import numpy as np


class ArrayMemo:
    """A least-recently-used map from arrays (by shape, dtype and bytes) to values."""

    def __init__(self, size=64):
        self.size = size
        self._items = OrderedDict()

    @staticmethod
    def _key(a):
        a = np.ascontiguousarray(a)
        return a.shape, a.dtype.str, hashlib.sha1(a.tobytes()).digest()

    def get(self, a, compute):
        """The value for ``a``, from ``compute(a)`` the first time."""
        key = self._key(a)
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        value = compute(a)
        self._items[key] = value
        if len(self._items) > self.size:
            self._items.popitem(last=False)
        return value
