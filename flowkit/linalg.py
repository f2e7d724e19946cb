"""Linear algebra of the implicit steps as operators: ``factor(A)`` returns a factorisation,
``solve(F, b)`` solves A x = b with it.  The Radau step (radau.ThetaRadau) takes one as
``linalg=``, instead of scipy's private ``lu``/``solve_lu`` being patched.

* ``DenseLU``: LAPACK getrf/getrs, the calls scipy's ``lu_factor``/``lu_solve`` make
  (so the same numbers as scipy's Radau, operation for operation).
* ``EquilibratedLU``: the same after scaling each row of A (and of b) by the power of two
  nearest to 1/max|row| -- exact in binary, so well-scaled matrices lose nothing.  Why:
  past gamma~ = XI_SWITCH the margin-offset rows of the flow's Jacobian are ~gamma~ times
  its y rows (flow.py), and partial pivoting on mu/h I - J then leaves a backward error
  of ~eps gamma~ in every row, the O(1) y rows included.  On ``fig3d``, D = 2,
  alpha = 1e6, Newton stalled (rate 1.0000000003, increments 5e5 in the scaled norm) at
  gamma~ = 5.6e25; equilibrated, the run goes to gamma~ = 1e40 with gamma~ consistency
  7e-13 throughout.
"""
from __future__ import annotations

import numpy as np
from scipy.linalg.lapack import dgetrf, dgetrs, zgetrf, zgetrs

__all__ = ["DenseLU", "EquilibratedLU"]


class DenseLU:
    """A = P L U by LAPACK; no checks (the systems are the solver's own)."""

    def factor(self, A):
        lu, piv, _ = (zgetrf if A.dtype.kind == "c" else dgetrf)(A, overwrite_a=True)
        return lu, piv

    def solve(self, F, b):
        return (zgetrs if F[0].dtype.kind == "c" else dgetrs)(F[0], F[1], b, overwrite_b=True)[0]


class EquilibratedLU(DenseLU):
    """diag(r) A = P L U with r_i a power of two ~ 1/max_j |A_ij|."""

    def factor(self, A):
        top = np.max(np.abs(A), axis=1)
        r = np.ones(top.shape)
        ok = (top > 0) & np.isfinite(top)
        r[ok] = np.ldexp(1.0, -np.frexp(top[ok])[1])
        lu, piv = super().factor(A * r[:, None])
        return lu, piv, r

    def solve(self, F, b):
        return super().solve(F[:2], b * F[2])
