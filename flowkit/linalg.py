"""Linear algebra of the implicit steps as operators.

Radau IIA and BDF solve linear systems with the Newton matrix  mu I - c J  (Radau:
c = 1, mu = MU_REAL/h and MU_COMPLEX/h; BDF: mu = 1, c = h/alpha_k).  An operator has

* ``factor(J, mu, c=1.0)``: a factorisation F of mu I - c J for the solver's Jacobian J;
* ``solve(F, b)``: x with (mu I - c J) x = b;
* ``structured``: whether J is an ndarray (False) or the operator's own Jacobian object
  (structured.py), which the solver then keeps as it is.

The solvers (radau.ThetaRadau, bdf.OperatorBDF) take one as ``linalg=`` and call nothing
else, so a new linear algebra is a new operator, not a patch of scipy's private ``lu``,
``solve_lu``, ``I`` and ``J``:

* ``DenseLU``: LAPACK getrf/getrs on mu * I - c * J formed as scipy forms it, the calls
  scipy's ``lu_factor``/``lu_solve`` make (the same numbers as scipy's Radau and BDF,
  operation for operation; tests/test_select.py);
* ``EquilibratedLU``: the same after scaling each row of the matrix (and of b) by the power
  of two nearest to 1/max|row| -- exact in binary, so well-scaled matrices lose nothing.
  Why: past gamma~ = XI_SWITCH the margin-offset rows of the flow's Jacobian are ~gamma~
  times its y rows (flow.py), and partial pivoting on mu/h I - J then leaves a backward
  error of ~eps gamma~ in every row, the O(1) y rows included.  On ``fig3d``, D = 2,
  alpha = 1e6, Newton stalled (rate 1.0000000003, increments 5e5 in the scaled norm) at
  gamma~ = 5.6e25; equilibrated, the run goes to gamma~ = 1e40 with gamma~ consistency
  7e-13 throughout;
* ``StructuredLU``: J diagonal plus low rank (structured.Jacobian0 / JacobianXi), factored
  by Woodbury or a Schur complement of size N: mu I - c J = c (mu/c I - J);
* dual.DualBlockLU: the dual form's block elimination, falling back on one of the above.
"""
from __future__ import annotations

import numpy as np
from scipy.linalg.lapack import dgetrf, dgetrs, zgetrf, zgetrs
from scipy.sparse import csc_matrix

__all__ = ["DenseLU", "EquilibratedLU", "StructuredLU", "OperatorSolver"]


class DenseLU:
    """mu I - c J = P L U by LAPACK; no checks (the systems are the solver's own)."""

    structured = False

    def __init__(self):
        self._eye = None

    def newton_matrix(self, J, mu, c=1.0):
        """mu * I - c * J, with scipy's own operations (Radau: c = 1, ``mu * I - J``;
        BDF: mu = 1, ``I - c * J``)."""
        n = J.shape[0]
        if self._eye is None or self._eye.shape[0] != n:
            self._eye = np.identity(n)
        if c == 1.0:
            return (self._eye if mu == 1.0 else mu * self._eye) - J
        return (self._eye if mu == 1.0 else mu * self._eye) - c * J

    def factor(self, J, mu, c=1.0):
        return self.lu(self.newton_matrix(J, mu, c))

    @staticmethod
    def lu(A):
        lu, piv, _ = (zgetrf if A.dtype.kind == "c" else dgetrf)(A, overwrite_a=True)
        return lu, piv

    def solve(self, F, b):
        return (zgetrs if F[0].dtype.kind == "c" else dgetrs)(F[0], F[1], b, overwrite_b=True)[0]


class EquilibratedLU(DenseLU):
    """diag(r) (mu I - c J) = P L U with r_i a power of two ~ 1/max_j |A_ij|."""

    def lu(self, A):
        top = np.max(np.abs(A), axis=1)
        r = np.ones(top.shape)
        ok = (top > 0) & np.isfinite(top)
        r[ok] = np.ldexp(1.0, -np.frexp(top[ok])[1])
        lu, piv = super().lu(A * r[:, None])
        return lu, piv, r

    def solve(self, F, b):
        return super().solve(F[:2], b * F[2])


class StructuredLU:
    """mu I - c J for a structured Jacobian J (structured.py): J.factor(mu/c), and the
    right-hand side divided by c."""

    structured = True

    def factor(self, J, mu, c=1.0):
        return J.factor(mu / c), c

    def solve(self, F, b):
        fact, c = F
        return fact.solve(b if c == 1.0 else b / c)


class OperatorSolver:
    """Mixin for flowkit's forks of scipy's implicit solvers: the operator ``linalg`` in
    place of scipy's ``lu``/``solve_lu``/``I``.  A structured operator's Jacobian is kept
    as the object ``jac(t, y)`` returns; scipy's set-up is handed an empty sparse
    placeholder, so that it takes its O(n) sparse branch instead of allocating a dense
    n x n identity (0.8 GB at d = 10,000) that nothing uses."""

    def _init_ops(self, linalg):
        self._ops = DenseLU() if linalg is None else linalg

    def _after_init(self):
        if self._ops.structured:
            self.J = self._structured_J
        # nothing may use scipy's own factorisation: the operator does it all
        self.lu = self.solve_lu = self.I = None

    def _validate_jac(self, jac, sparsity):
        if not self._ops.structured:
            return super()._validate_jac(jac, sparsity)
        if not callable(jac):
            raise TypeError("a structured linear algebra needs a callable jac(t, y)")
        self._structured_J, self.njev = jac(self.t, self.y), 1

        def jac_wrapped(t, y, _=None):
            self.njev += 1
            return jac(t, y)

        return jac_wrapped, csc_matrix((self.n, self.n))

    def _factor(self, J, mu, c=1.0):
        self.nlu += 1
        return self._ops.factor(J, mu, c)

    def _solve(self, F, b):
        return self._ops.solve(F, b)
