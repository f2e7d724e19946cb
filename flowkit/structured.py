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

Cost: per Jacobian, the Gram matrices Xt diag(q) Xtᵀ (the xi-xi block) and Xt diag(rho) Xtᵀ
(the coupling terms above, with lambda replaced by its series in (delta - mid)/(mu - mid),
``_Structured._products``), O(N² d) by symmetric BLAS; per factorisation O(N³ + d); per
solve O(N d) (one product with Xt, one with Xtᵀ); memory O(N d).  When delta is the same
for every feature -- always for D = 2, where delta = -beta -- the series is one exact term;
otherwise it is cut at the relative accuracy SHIFT_RTOL of that term, the one place where
the factorised matrix is an approximation of mu I - J (a Newton-iteration matrix, which
Radau's stale Jacobians make approximate anyway); ``exact = True`` forms the Gram matrix
of rho / (mu - delta) per shift instead.

The solvers see these Jacobians through ``linalg.StructuredLU`` (``factor(J, mu)`` is
``J.factor(mu)``, a ``_Woodbury0`` or ``_SchurXi``), passed to radau.ThetaRadau or
bdf.OperatorBDF as ``linalg=``; the first-step selection uses only the right-hand side.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.linalg.blas import dsyrk
from scipy.linalg.lapack import dgetrf, dgetrs, zgetrf, zgetrs

from ._kernels import flow as K

__all__ = ["Jacobian0", "JacobianXi", "JAC_THETA", "gram", "structured_pays"]

# Radau's Jacobian refresh threshold (radau.ThetaRadau) on structured Jacobians: a Jacobian
# costs a Gram matrix, O(N² d), as much as ~20 right-hand sides at N = 200.  Measured on
# planted_sparse data, D = 2, N = 200, d = 10,000, gamma~ = 1e6: 3e-2 saves 2/3 of the
# Jacobians (282 instead of 894) for 12% more right-hand sides, 6% of the CPU time; at
# N = 100 (Jacobians 4x cheaper against a right-hand side) it is a tie, and 0.1 costs more
# right-hand sides than it saves.
JAC_THETA = 3e-2


def structured_pays(n_samples, n_features):
    """Whether the structured linear algebra (structured.py) beats dense LU for d features and
    N samples: a dense Jacobian costs ~N d² flops to assemble and ~(d+N)³ to factorise,
    O((d+N)²) per solve; a structured one ~N² d per Jacobian (Gram matrices), O(N³) per
    factorisation and O(N d) per solve.  Measured: at N = 20, d = 300 the structured path is
    3x faster, at N = 50, d = 1000 18x (benchmarks/RESULTS.md); below a few hundred unknowns
    the dense path's lower overhead per step wins."""
    return n_features >= 4 * (n_samples + 1) and n_features + n_samples >= 200


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


def gram(Xt, rho):
    """Xt diag(rho) Xtᵀ (N x N), O(N² d): the one d-sized matrix product of a Jacobian.

    Real rho: B = Xt diag(sqrt|rho|) and two symmetric rank-k updates (BLAS SYRK) over
    the features with positive and with negative weight, N² d flops in all -- half a GEMM's.
    Complex rho (a shift-specific Gram matrix): one GEMM for the real and imaginary parts."""
    N = Xt.shape[0]
    if np.iscomplexobj(rho):
        G = np.concatenate([Xt * rho.real, Xt * rho.imag]) @ Xt.T
        return G[:N] + 1j * G[N:]
    B = Xt * np.sqrt(np.abs(rho))
    pos = rho > 0
    npos = int(np.count_nonzero(pos))
    if npos == rho.shape[0]:
        U = dsyrk(1.0, B.T, trans=1)                 # BᵀᵀBᵀ = B Bᵀ without copying B
    elif npos == 0:
        U = dsyrk(-1.0, B.T, trans=1)
    else:
        U = dsyrk(1.0, B[:, pos].T, trans=1)
        U = dsyrk(-1.0, B[:, ~pos].T, beta=1.0, c=U, trans=1, overwrite_c=1)
    return np.triu(U) + np.triu(U, 1).T             # SYRK fills the upper triangle


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


class _Structured:
    """Common part: shape, matvec / dense / factor interface."""

    @property
    def shape(self):
        return (self.n, self.n)

    def _setup(self, delta, rho, cols):
        """The d-sized weights of the factorisation: the Gram matrix Xt diag(rho / lambda) Xtᵀ
        and the columns Xt (cols / lambda), lambda = mu - delta (``_products``)."""
        self.delta, self._rho, self._cols = delta, rho, cols
        lo, hi = float(np.min(delta)), float(np.max(delta))
        self._mid, self._half = 0.5 * (lo + hi), 0.5 * (hi - lo)
        self._terms = []
        self.exact = False

    def _term(self, k):
        """(Xt diag(rho eps^k) Xtᵀ, Xt (cols eps^k)) with eps = delta - mid, cached."""
        while len(self._terms) <= k:
            j = len(self._terms)
            eps_j = (self.delta - self._mid) ** j if j else None
            rho = self._rho if j == 0 else self._rho * eps_j
            cols = self._cols if j == 0 else self._cols * eps_j[:, None]
            self._terms.append((gram(self.Xt, rho), self.Xt @ cols))
        return self._terms[k]

    def _products(self, mu):
        """G = Xt diag(rho/lambda) Xtᵀ and Xt (cols/lambda) for lambda = mu - delta.

        With eps = delta - mid (mid: the midpoint of delta's range), 1/lambda =
        sum_k eps^k / (mu - mid)^{k+1}, a series with ratio r = max|eps| / |mu - mid|.
        Its terms do not depend on mu: they are formed once per Jacobian (``_term``), and a
        factorisation costs O(N³) instead of a Gram matrix, O(N² d), per shift.  The series
        stops at the first K with r^{K+1} <= SHIFT_RTOL (K = 0 and exact when delta is
        constant, as for D = 2).  In flows r is small -- below 1e-5 (state (y, omega)) and
        6e-4 (past XI_SWITCH) on random planted data, D = 3, because delta is O(1) while the
        shifts mu ~ 1/h are large -- so K = 0 mostly at the default SHIFT_RTOL.  When more than
        MAX_TERMS terms would be needed, or with ``exact = True`` or SHIFT_RTOL = 0, the Gram
        matrix of rho/lambda is formed for this mu."""
        lam_mid = mu - self._mid
        r = self._half / abs(lam_mid)
        K_ = 0
        if r > 0.0:   # terms needed: r^{K+1} <= SHIFT_RTOL; exact (below) when too many
            K_ = MAX_TERMS + 1 if (self.exact or SHIFT_RTOL <= 0.0 or r >= 1.0) else \
                max(0, math.ceil(math.log(SHIFT_RTOL) / math.log(r)) - 1)
        if K_ <= MAX_TERMS:
            G, cols = self._term(0)
            G, cols = G / lam_mid, cols / lam_mid
            for k in range(1, K_ + 1):
                Gk, ck = self._term(k)
                den = lam_mid ** (k + 1)
                G = G + Gk / den
                cols = cols + ck / den
            return G, cols
        lam = mu - self.delta
        return gram(self.Xt, self._rho / lam), _xt(self.Xt, self._cols / lam[:, None])


# Truncation of the shift series in ``_Structured._products``: the relative accuracy of the
# Gram term of the factorised Newton matrix.  The Newton iteration and the error estimate use
# that matrix only as an approximation -- Radau keeps a Jacobian until the Newton rate it
# causes exceeds JAC_THETA (3e-2), i.e. tolerates relative errors of a few
# percent from staleness -- so 1e-3 (mostly one term in flows, one Gram matrix per Jacobian)
# costs no Newton iterations; 0 forces the full series / exact Gram matrix.
SHIFT_RTOL = 1e-3
MAX_TERMS = 3


# -- below XI_SWITCH: state (y, omega) --------------------------------------------------------

class Jacobian0(_Structured):
    """J of ``_kernels.flow.rhs`` for z = (y, omega):  J_yy = diag(delta) + U Vᵀ with
    U = [diag(b) Xtᵀ | b g] and V = [-diag(v) Xtᵀ diag(p) | r2], r2 = g v - lS; J_ww = jww."""

    def __init__(self, Xt, delta, b, v, p, bg, r2, jww, n):
        self.Xt, self.b, self.v, self.p, self.bg, self.r2 = Xt, b, v, p, bg, r2
        self.jww, self.n = jww, n
        self.d = Xt.shape[1]
        # K's d-sized parts: Xt diag(v b/lambda) Xtᵀ, Xt (v b g/lambda), Xt (r2 b/lambda)
        self._setup(delta, v * b, np.column_stack([v * bg, r2 * b]))

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

    def factor(self, mu):
        N = self.Xt.shape[0]
        lam = mu - self.delta
        G, cols = self._products(mu)
        c1, c2 = cols[:, 0], cols[:, 1]
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
        self.Xt, self.b, self.p, self.bg, self.lSy = Xt, b, p, bg, lSy
        self.e1, self.h, self.u, self.Jxx, self.jww, self.n = e1, h, u, Jxx, jww, n
        self.N, self.d = Xt.shape
        # S's d-sized parts: Xt diag(h b/lambda) Xtᵀ, Xt (lSy b/lambda), Xt (h b g/lambda)
        self._setup(delta, h * b, np.column_stack([lSy * b, h * bg]))

    @classmethod
    def at(cls, sigma, z, Xt, D, A):
        delta, b, p, bg, lSy, e1, h, u, q, av, St, gam, jww = K.xi_jac_factors(sigma, z, Xt, D, A)
        Jxx = K.xi_block(gram(Xt, q), St, p, av, e1, gam)
        return cls(Xt, delta, b, p, bg, lSy, e1, h, u, Jxx, jww, z.shape[0])

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

    def factor(self, mu):
        """Schur complement of the y block in A = mu I - J (module docstring):

            A_yy = Lambda + bg lSyᵀ,  A_yxi = diag(b) Xtᵀ diag(p) - bg e1ᵀ,
            A_xiy = -Xt diag(h) + u lSyᵀ,  A_xixi = mu I - Jxx,
            S = A_xixi + G diag(p) - x2 e1ᵀ - u t1ᵀ + t2 t1ᵀ / den,

        G = Xt diag(h b/lambda) Xtᵀ, x1 = Xt (lSy b/lambda), x2 = Xt (h b g/lambda),
        ib = b g/lambda, den = 1 + lSy·ib, t1 = p x1 - (lSy·ib) e1, t2 = -x2 + (lSy·ib) u."""
        N = self.N
        lam = mu - self.delta
        G, cols = self._products(mu)
        x1, x2 = cols[:, 0], cols[:, 1]
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
