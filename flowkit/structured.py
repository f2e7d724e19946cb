"""Structured Jacobians: the flow's Jacobian as diagonal + low rank, and the implicit
solvers' linear algebra in O(N² d) instead of O((d + N)³).

Why.  The Jacobian of the flow (flow.py, _kernels/flow.py) is dense (d + N)², but all its
coupling between features runs through the N samples: w enters the right-hand side only
through the margins Xt w and the dual vector g = Xtᵀ p (math.md, "Gradient flow": the flow
is a mirror-descent flow of the N-dimensional dual variable s = Xtᵀ nu).  So

* below XI_SWITCH, state (y, omega) (``Jacobian0``):

      J_yy = diag(delta) + U Vᵀ,  U = [diag(b) Xtᵀ | b g],  V = [-diag(v) Xtᵀ diag(p) | g v - lS]

  diagonal plus rank N + 1;

* past XI_SWITCH, state (y, xi[, omega]) (``JacobianXi``): J_yy = diag(delta) - (b g) lSyᵀ
  (diagonal + rank 1), J_yxi = -diag(b) Xtᵀ diag(p) + (b g) e1ᵀ and
  J_xiy = Xt diag(h) - u lSyᵀ (d x N and N x d, applied through Xt), J_xixi dense N x N;

* omega: its row carries only the diagonal J_ww (its other derivatives are left out, see
  _kernels/flow.py) and no other row depends on omega, so it decouples.

The factors come from ``_kernels.flow.jac_factors`` / ``xi_jac_factors``; the dense path
assembles its Jacobian from the same factors (``dense_jac0``, ``dense_xi_jac``), so the two
cannot describe different matrices.

The implicit solvers need (mu I - J)^{-1} for real and complex shifts mu (Radau IIA:
mu = MU_REAL/h and MU_COMPLEX/h; BDF: I - c J = c (I/c - J)).  With Lambda = diag(mu - delta):

* ``Jacobian0``: Woodbury,  (Lambda - U Vᵀ)^{-1} = Lambda^{-1} + Lambda^{-1} U K^{-1} Vᵀ Lambda^{-1},
  K = I - Vᵀ Lambda^{-1} U of size N + 1, whose N x N block is I + diag(p) Xt diag(v b / lambda) Xtᵀ;
* ``JacobianXi``: block elimination of the y block (diagonal + rank 1: Sherman-Morrison) leaves
  the N x N Schur complement S = A_xixi - A_xiy A_yy^{-1} A_yxi, whose d-sized part is the
  weighted Gram matrix Xt diag(h b / lambda) Xtᵀ diag(p).

Cost: one weighted Gram matrix Xt diag(rho) Xtᵀ, O(N² d), per factorisation (two real ones for
a complex shift); O(N d) per solve (one product with Xt, one with Xtᵀ); O(N d) memory.
When delta is the same for every feature -- always for D = 2, where delta = -beta -- the
weights are rho / (mu - delta_0), so the Gram matrix and the other Xt-products are formed once
per Jacobian and every factorisation costs O(N³ + d).

``StructuredRadau`` / ``StructuredBDF`` are scipy's Radau and BDF with ``J``, ``I``, ``lu`` and
``solve_lu`` replaced so that ``mu * I - J`` (Radau) and ``I - c * J`` (BDF) stay structured and
"LU" is the factorisation above.  Every use of them in scipy (Newton iterations, the error
estimate, the Jacobian refresh) goes through those four names; the first-step selection uses
only the right-hand side.
"""
from __future__ import annotations

import numpy as np
from scipy.integrate import BDF, Radau
from scipy.linalg.lapack import dgetrf, dgetrs, zgetrf, zgetrs
from scipy.sparse import csc_matrix

from ._kernels import flow as K

__all__ = ["Jacobian0", "JacobianXi", "StructuredRadau", "StructuredBDF", "IDENTITY"]


# -- products with Xt that never form a complex copy of Xt ---------------------------------

def _xt(Xt, V):
    """Xt @ V for real or complex V of shape (d,) or (d, k)."""
    if np.iscomplexobj(V):
        k = 1 if V.ndim == 1 else V.shape[1]
        R = Xt @ np.column_stack([V.real, V.imag])
        out = R[:, :k] + 1j * R[:, k:]
        return out[:, 0] if V.ndim == 1 else out
    return Xt @ V


def _xtt(Xt, U):
    """Xtᵀ @ U for real or complex U of shape (N,)."""
    if np.iscomplexobj(U):
        R = Xt.T @ np.column_stack([U.real, U.imag])
        return R[:, 0] + 1j * R[:, 1]
    return Xt.T @ U


def _gram(Xt, rho):
    """Xt diag(rho) Xtᵀ (N x N) for real or complex weights rho: one GEMM, O(N² d)."""
    if np.iscomplexobj(rho):
        N = Xt.shape[0]
        G = np.concatenate([Xt * rho.real, Xt * rho.imag]) @ Xt.T
        return G[:N] + 1j * G[N:]
    return (Xt * rho) @ Xt.T


def _getrf(A):
    lu, piv, info = (zgetrf if A.dtype.kind == "c" else dgetrf)(A, overwrite_a=True)
    if info < 0:  # pragma: no cover - argument error
        raise ValueError(f"getrf: illegal argument {-info}")
    return lu, piv


def _getrs(LU, b):
    lu, piv = LU
    if lu.dtype.kind == "c":
        return zgetrs(lu, piv, b.astype(complex, copy=False))[0]
    if b.dtype.kind == "c":
        return dgetrs(lu, piv, b.real)[0] + 1j * dgetrs(lu, piv, b.imag)[0]
    return dgetrs(lu, piv, b)[0]


# -- the identity and scaled Jacobians as scipy's solvers combine them ----------------------

class _Identity:
    """s I, as ``self.I`` of scipy's Radau (``mu * I - J``) and BDF (``I - c * J``)."""

    __array_ufunc__ = None  # numpy scalars defer to __rmul__

    def __init__(self, s=1.0):
        self.s = s

    def __rmul__(self, c):
        return _Identity(c * self.s)

    __mul__ = __rmul__

    def __sub__(self, other):
        if isinstance(other, _Scaled):       # s I - c J = c ((s/c) I - J)
            return _Shifted(other.jac, self.s / other.c, other.c)
        if isinstance(other, _Structured):   # s I - J
            return _Shifted(other, self.s, 1.0)
        return NotImplemented


IDENTITY = _Identity()


class _Scaled:
    __array_ufunc__ = None

    def __init__(self, jac, c):
        self.jac, self.c = jac, c


class _Shifted:
    """scale * (mu I - J), factorised on demand by ``factor`` (the solvers' ``lu``)."""

    def __init__(self, jac, mu, scale):
        self.jac, self.mu, self.scale = jac, mu, scale

    def factor(self):
        return _Scaledsolve(self.jac.factor(self.mu), self.scale)


class _Scaledsolve:
    def __init__(self, fact, scale):
        self.fact, self.scale = fact, scale

    def solve(self, r):
        return self.fact.solve(r / self.scale if self.scale != 1.0 else r)


class _Structured:
    """Common part: shape, scalar multiplication, matvec / dense / factor interface."""

    __array_ufunc__ = None

    def __rmul__(self, c):
        return _Scaled(self, c)

    __mul__ = __rmul__

    @property
    def shape(self):
        return (self.n, self.n)

    def _lam(self, mu):
        """lambda = mu - delta: a scalar when delta is the same for every feature."""
        if self.const:
            return mu - self.delta[0]
        return mu - self.delta


# -- below XI_SWITCH: state (y, omega) --------------------------------------------------------

class Jacobian0(_Structured):
    """J of ``_kernels.flow.rhs`` for z = (y, omega):  J_yy = diag(delta) + U Vᵀ with
    U = [diag(b) Xtᵀ | b g] and V = [-diag(v) Xtᵀ diag(p) | r2], r2 = g v - lS; J_ww = jww."""

    def __init__(self, Xt, delta, b, v, p, bg, r2, jww, n):
        self.Xt, self.delta, self.b, self.v, self.p, self.bg, self.r2 = Xt, delta, b, v, p, bg, r2
        self.jww, self.n = jww, n
        self.d = Xt.shape[1]
        self.const = bool(np.all(delta == delta[0]))
        self._cache = None

    @classmethod
    def at(cls, sigma, z, Xt, D, A):
        return cls(Xt, *K.jac_factors(sigma, z, Xt, D, A), z.shape[0])

    def dense(self):
        return K.dense_jac0(self.Xt, self.delta, self.b, self.v, self.p, self.bg, self.r2,
                            self.jww, self.n)

    def matvec(self, x):
        d, Xt = self.d, self.Xt
        y = x[:d]
        out = np.empty_like(x, dtype=np.result_type(x, float))
        out[:d] = (self.delta * y - self.b * _xtt(Xt, self.p * _xt(Xt, self.v * y))
                   + self.bg * np.dot(self.r2, y))
        if self.n > d:
            out[d] = self.jww * x[d]
        return out

    def _products(self, lam):
        """Gram block Xt diag(v b/lam) Xtᵀ and the columns Xt (v b g/lam), Xt (r2 b/lam)."""
        Xt, vb = self.Xt, self.v * self.b
        if self.const:  # everything scales with 1/lam: form once per Jacobian
            if self._cache is None:
                cols = Xt @ np.column_stack([self.v * self.bg, self.r2 * self.b])
                self._cache = (_gram(Xt, vb), cols[:, 0], cols[:, 1])
            G, c1, c2 = self._cache
            return G / lam, c1 / lam, c2 / lam
        cols = _xt(Xt, np.column_stack([self.v * self.bg / lam, self.r2 * self.b / lam]))
        return _gram(Xt, vb / lam), cols[:, 0], cols[:, 1]

    def factor(self, mu):
        N = self.Xt.shape[0]
        lam = self._lam(mu)
        G, c1, c2 = self._products(lam)
        dtype = np.result_type(G, float)
        Kc = np.empty((N + 1, N + 1), dtype=dtype)
        Kc[:N, :N] = self.p[:, None] * G
        Kc[np.arange(N), np.arange(N)] += 1.0
        Kc[:N, N] = self.p * c1
        Kc[N, :N] = -c2
        Kc[N, N] = 1.0 - np.sum(self.r2 * self.bg / lam)
        return _Woodbury0(self, lam, _getrf(Kc), mu)


class _Woodbury0:
    def __init__(self, jac, lam, LU, mu):
        self.jac, self.lam, self.LU, self.mu = jac, lam, LU, mu

    def solve(self, r):
        J, lam = self.jac, self.lam
        d, N, Xt = J.d, J.Xt.shape[0], J.Xt
        t = r[:d] / lam
        rhs = np.empty(N + 1, dtype=np.result_type(t, self.LU[0]))
        rhs[:N] = -J.p * _xt(Xt, J.v * t)
        rhs[N] = np.dot(J.r2, t)
        k = _getrs(self.LU, rhs)
        x = np.empty(r.shape, dtype=np.result_type(r, k))
        x[:d] = t + (J.b * _xtt(Xt, k[:N]) + J.bg * k[N]) / lam
        if J.n > d:
            x[d] = r[d] / (self.mu - J.jww)
        return x


# -- past XI_SWITCH: state (y, xi[, omega]) ----------------------------------------------------

class JacobianXi(_Structured):
    """J of ``_kernels.flow.xi_rhs`` (see ``xi_jac_factors``):

        J_yy = diag(delta) - bg lSyᵀ,   J_yxi = -diag(b) Xtᵀ diag(p) + bg e1ᵀ,
        J_xiy = Xt diag(h) - u lSyᵀ,    J_xixi = Jxx,   J_ww = jww (with omega)."""

    def __init__(self, Xt, delta, b, p, bg, lSy, e1, h, u, Jxx, jww, n):
        self.Xt, self.delta, self.b, self.p, self.bg, self.lSy = Xt, delta, b, p, bg, lSy
        self.e1, self.h, self.u, self.Jxx, self.jww, self.n = e1, h, u, Jxx, jww, n
        self.N, self.d = Xt.shape
        self.const = bool(np.all(delta == delta[0]))
        self._cache = None

    @classmethod
    def at(cls, sigma, z, Xt, D, A):
        return cls(Xt, *K.xi_jac_factors(sigma, z, Xt, D, A), z.shape[0])

    def dense(self):
        return K.dense_xi_jac(self.Xt, self.delta, self.b, self.p, self.bg, self.lSy, self.e1,
                              self.h, self.u, self.Jxx, self.jww, self.n)

    def matvec(self, x):
        d, N, Xt = self.d, self.N, self.Xt
        y, xi = x[:d], x[d:d + N]
        out = np.empty_like(x, dtype=np.result_type(x, float))
        ly = np.dot(self.lSy, y)
        out[:d] = (self.delta * y - self.bg * ly - self.b * _xtt(Xt, self.p * xi)
                   + self.bg * np.dot(self.e1, xi))
        out[d:d + N] = _xt(Xt, self.h * y) - self.u * ly + self.Jxx @ xi
        if self.n > d + N:
            out[-1] = self.jww * x[-1]
        return out

    def _products(self, lam):
        """Gram Xt diag(h b/lam) Xtᵀ and the columns Xt (lSy b/lam), Xt (h b g/lam)."""
        Xt, hb = self.Xt, self.h * self.b
        if self.const:  # everything scales with 1/lam: form once per Jacobian
            if self._cache is None:
                cols = Xt @ np.column_stack([self.lSy * self.b, self.h * self.bg])
                self._cache = (_gram(Xt, hb), cols[:, 0], cols[:, 1])
            G, c1, c2 = self._cache
            return G / lam, c1 / lam, c2 / lam
        cols = _xt(Xt, np.column_stack([self.lSy * self.b / lam, self.h * self.bg / lam]))
        return _gram(Xt, hb / lam), cols[:, 0], cols[:, 1]

    def factor(self, mu):
        """Schur complement of the y block in A = mu I - J (module docstring):

            A_yy = Lambda + bg lSyᵀ,  A_yxi = diag(b) Xtᵀ diag(p) - bg e1ᵀ,
            A_xiy = -Xt diag(h) + u lSyᵀ,  A_xixi = mu I - Jxx,
            S = A_xixi + G diag(p) - x2 e1ᵀ - u t1ᵀ + t2 t1ᵀ / den,

        G = Xt diag(h b/lambda) Xtᵀ, x1 = Xt (lSy b/lambda), x2 = Xt (h b g/lambda),
        ib = b g/lambda, den = 1 + lSy·ib, t1 = p x1 - (lSy·ib) e1, t2 = -x2 + (lSy·ib) u."""
        N = self.N
        lam = self._lam(mu)
        G, x1, x2 = self._products(lam)
        ib = self.bg / lam
        li = np.sum(self.lSy * ib)
        den = 1.0 + li
        t1 = self.p * x1 - li * self.e1
        t2 = -x2 + li * self.u
        S = G * self.p[None, :] - self.Jxx
        S[np.arange(N), np.arange(N)] += mu
        S -= np.outer(x2, self.e1) + np.outer(self.u - t2 / den, t1)
        return _SchurXi(self, lam, ib, den, _getrf(S), mu)


class _SchurXi:
    def __init__(self, jac, lam, ib, den, LU, mu):
        self.jac, self.lam, self.ib, self.den, self.LU, self.mu = jac, lam, ib, den, LU, mu

    def _m(self, r):
        """A_yy^{-1} r (Sherman-Morrison)."""
        t = r / self.lam
        return t - self.ib * (np.dot(self.jac.lSy, t) / self.den)

    def solve(self, r):
        J = self.jac
        d, N, Xt = J.d, J.N, J.Xt
        t = self._m(r[:d])
        s = r[d:d + N] + _xt(Xt, J.h * t) - J.u * np.dot(J.lSy, t)
        z = _getrs(self.LU, s)
        x = np.empty(r.shape, dtype=np.result_type(r, z))
        x[d:d + N] = z
        x[:d] = self._m(r[:d] - J.b * _xtt(Xt, J.p * z) + J.bg * np.dot(J.e1, z))
        if J.n > d + N:
            x[-1] = r[-1] / (self.mu - J.jww)
        return x


# -- scipy's implicit solvers on structured Jacobians -----------------------------------------

class _StructuredSolver:
    """Mixin for scipy's Radau and BDF: ``jac(t, y)`` returns a ``_Structured`` Jacobian.

    The parent's __init__ is handed an empty sparse placeholder for J, so that it takes its
    sparse branch (an O(n) sparse identity instead of a dense n x n one -- 0.8 GB at
    d = 10,000); ``J``, ``I``, ``lu`` and ``solve_lu`` are then replaced."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.J = self._structured_J
        self.I = IDENTITY

        def lu(A):
            self.nlu += 1
            return A.factor()

        def solve_lu(LU, b):
            return LU.solve(b)

        self.lu, self.solve_lu = lu, solve_lu

    def _validate_jac(self, jac, sparsity):
        if not callable(jac):
            raise TypeError("a structured solver needs a callable jac(t, y)")
        self._structured_J = jac(self.t, self.y)
        self.njev = 1

        def jac_wrapped(t, y, _=None):
            self.njev += 1
            return jac(t, y)

        return jac_wrapped, csc_matrix((self.n, self.n))


class StructuredRadau(_StructuredSolver, Radau):
    """scipy's Radau IIA with structured linear algebra (module docstring)."""


class StructuredBDF(_StructuredSolver, BDF):
    """scipy's BDF with structured linear algebra (module docstring)."""
