"""LAPACK's LU factorisation (getrf) inside numba kernels, for the compiled Radau step's
larger Newton matrices (_kernels/radau.py, ``_lu``).

The routines are scipy's own (``scipy.linalg.cython_lapack``, the LAPACK that
``scipy.linalg.lu_factor`` calls, and so scipy's Radau): the factors and pivots are
scipy's bit for bit (tests/test_compiled.py).  Measured on 2 AMD EPYC cores, unblocked
loops against getrf: complex 8 x 8 1.6 / 1.1 us, 24 x 24 9.0 / 6.4 us, 71 x 71 130 / 54 us.

How they are called: each routine's address is registered with LLVM under a name of
flowkit's (``llvmlite.binding.add_symbol``, at import, in every process) and declared as an
external function of that name, so that compiled code refers to the name and numba's cache
stays valid across processes (a ctypes function would bake its address into the code, which
numba then refuses to cache, and with it every kernel that calls it).
"""
import llvmlite.binding as llb
import numpy as np
from numba import njit, types
from numba.extending import get_cython_function_address, overload

for _name in ("dgetrf", "zgetrf"):
    llb.add_symbol(f"flowkit_{_name}", get_cython_function_address("scipy.linalg.cython_lapack", _name))
_SIG = types.void(*(6 * [types.voidptr]))  # getrf(m, n, a, lda, ipiv, info), Fortran pointers
_DGETRF = types.ExternalFunction("flowkit_dgetrf", _SIG)
_ZGETRF = types.ExternalFunction("flowkit_zgetrf", _SIG)


def _xgetrf(F, ipiv, ints):
    """getrf of the column-major n x n matrix F (ints = [n, n, info, 0], int32)."""


@overload(_xgetrf)
def _xgetrf_impl(F, ipiv, ints):
    fn = _ZGETRF if F.dtype == types.complex128 else _DGETRF

    def impl(F, ipiv, ints):
        fn(ints[0:].ctypes, ints[1:].ctypes, F.ctypes, ints[1:].ctypes, ipiv.ctypes, ints[2:].ctypes)
    return impl


@njit(cache=True)
def getrf(A, piv):
    """A = P L U in place, as ``_kernels.radau._lu`` leaves it (row-major, unit L below the
    diagonal, U on and above it; piv[k] the 0-based row swapped with row k at step k),
    computed by LAPACK on A's column-major copy.  Returns LAPACK's info (> 0: an exact zero
    pivot, on which the solves give inf/nan and Newton fails, as with scipy's lu_factor)."""
    n = A.shape[0]
    F = np.empty((n, n), dtype=A.dtype)  # F[j, i] = A[i, j]: Fortran order
    for i in range(n):
        for j in range(n):
            F[j, i] = A[i, j]
    ipiv = np.empty(n, dtype=np.int32)
    ints = np.zeros(4, dtype=np.int32)
    ints[0] = n
    ints[1] = n
    _xgetrf(F, ipiv, ints)
    for i in range(n):
        piv[i] = ipiv[i] - 1
        for j in range(n):
            A[i, j] = F[j, i]
    return ints[2]
