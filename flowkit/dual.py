"""The dual formulation: the flow as an ODE in N unknowns, for d >> N.

math.md ("Gradient flow", closed form through the dual variable): the whole trajectory is
w = W(s) with s = Xtᵀ nu, nu(t) in R^N.  In flow.py's coordinates the primal state
y = psi/phi (d numbers) is, feature by feature, a fixed function of

    ytil = Xtᵀ zeta,    zeta = 2 D alpha^{D-2} nu / phi   (N numbers):

D = 2: y = ytil exactly (psi = 4 s);  D > 2: t = a phi ytil / 2 = c s = tanh(a psi / 2),
a = D - 2.  So the flow can be integrated in zeta instead of y.  With p = softmax(-xi),
g = Xtᵀ p, E1 = e^{(2D-2) delta+} + e^{(2D-2) delta-}, E2 = e^{(3D-4) delta+} -
e^{(3D-4) delta-} (delta± = log(u±/alpha), functions of ytil), S~ = Σ E1 g², v = Xt (E1 g):

    d zeta/dsigma = 2 (1 + R) p / (D S~) - zeta / (1 + R)             (dnu/dgamma~ = p/kappa)
    d xi/dsigma   = gamma~ (a_v - pᵀa_v + Lambda),  a_v = v / S~        (as flow.py)
    d omega/dsigma = gamma~ expm1(-omega) + (2D-2) R B / (D S~²) + lSxᵀ xi',
                     B = Σ E2 g³,  lSx = 2 p (1 - a_v)                (= d log kappa/dsigma)

(kappa = D² alpha^{2D-2} S~; the B term is d log S~ along zeta, since dE1/dytil =
(D-1) phi E2.)  The Jacobian, with h = (D-1) phi, a1 = Xt (E2 g²), e1 = p - lSx,
K1 = Xt diag(E1) Xtᵀ, K2 = Xt diag(E2 g) Xtᵀ and c = 2 (1 + R) / D:

    J_zz = -(c/S~) p (h a1/S~)ᵀ - I/(1+R)        J_zx = (c/S~) (-diag p + p e1ᵀ)
    J_xz = gamma~ (h K2/S~ - a_v (h a1/S~)ᵀ)      J_xx = gamma~ (-K1 diag(p)/S~ + a_v e1ᵀ - 1 pᵀ)

and J_omega,omega = -gamma~ e^{-omega}; the omega row's other entries are left out, as
in flow.py (omega drives nothing, so Newton still converges).

Cost.  One right-hand side reads the N x d data once (``_kernels.dual.dual_pass``; Radau's
three stages share the read); the (2N+1)-sized linear algebra goes by block elimination
to one N x N LU (``DualBlockLU``); a Jacobian is two N x N Gram matrices, O(N² d), one
float32 BLAS product.  The pass is split by features, and the two Gram matrices go one
each, between ``THREADS`` threads.  flow.py's primal state needs O(d) unknowns and several
passes per step even with structured linear algebra (structured.py).  Measured at N = 200,
d = 10,000, gamma~ = 1e6 (benchmarks/RESULTS.md): 3.7x (D = 2) and 4.3x (D = 3) faster
than the structured primal path at rtol 1e-8, in the same process (3.0x and 3.4x on one
thread).

Precision.  D = 2 maps zeta to y without loss.  For D > 2 the map goes through
1 - |t| = e^{-a delta}, which float64 holds to relative eps, so w carries relative
error ~(D/a) eps (w/alpha^D)^{a/D}: 7e-14 at D = 3, w = 1e6 alpha^D; 2e-11 at D = 10.
``select.dual_pays`` uses the dual form only where this stays below rtol/10.

States are saved in flow.py's layout (y, omega, xi), so a DualFlow's Trajectory, its
store records and ``at()`` are those of a Flow; y -> zeta (``_import``) is a least-squares
solve with a QR of Xtᵀ, exact for any y on the flow (y lies in the image of the map).
"""
from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numpy as np
from scipy.linalg import qr, solve_triangular
from scipy.linalg.lapack import dgetrf, dgetrs, zgetrf, zgetrs
from threadpoolctl import threadpool_limits

from ._kernels import flow as K_
from ._kernels.dual import TINY as _TINY, dual_pass, dual_to_psi, finish, prepare
from .exceptions import ParameterError
from .system import METHODS, TIME_SWITCH, XI_ATOL_MIN, System
from .flow import initial_state
from .linalg import DenseLU
from .radau import ThetaRadau

__all__ = ["DualFlow", "DualBlockLU"]



# Threads for the pass over the data and the Gram matrices: each thread takes a block of
# features (the pass's sums are over features) or one of the two Gram matrices.  Measured
# on the 2-core machine of benchmarks/RESULTS.md, N = 200, d = 10,000: a three-stage pass
# 1.63 -> 1.07-1.3 ms (run to run), a 400 x 10,000 x 200 float32 product 12.8 -> 6.6 ms.
# At most the CPUs this process may use; a DualFlow splits its work as THREADS says when
# it is built (or unpickled).
# Below _MIN_PER_THREAD entries of the data per thread, one thread is faster.
_CPUS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
THREADS = min(2, _CPUS)
_MIN_PER_THREAD = 250_000
_POOL = (None, 0, None)   # (process id, size, executor)
_POOL_LOCK = threading.Lock()


def _pool():
    """The module's thread pool of THREADS workers, one per process: a forked child (a
    sweep's worker) inherits the executor object but not its threads, so it makes its own
    rather than rely on how the executor copes with that; a changed THREADS gets a new one."""
    global _POOL
    with _POOL_LOCK:
        if _POOL[:2] != (os.getpid(), THREADS):
            _POOL = (os.getpid(), THREADS, ThreadPoolExecutor(THREADS, thread_name_prefix="flowkit-dual"))
        return _POOL[2]


class _BlockLU:
    """mu I - J for the dual Jacobian (module docstring) by block elimination: the zeta block
    is lambda I + u wᵀ (lambda = mu + 1/(1+R), u = c p / S~, w = h a1 / S~) and the
    zeta-xi block is diag(u) - u e1ᵀ, so the Schur complement on xi,

        S = A_xx - A_xz A_zz⁻¹ A_zx = A_xx - (A_xz diag(u) - (A_xz u) rᵀ) / lambda,
        r = e1 + (w ⊙ u - (wᵀu) e1) / (lambda + wᵀu),

    costs O(N²) and one N x N LU, where the whole matrix would need a (2N+1) x (2N+1) LU:
    8x fewer flops (the omega row is diagonal: it decouples)."""

    def __init__(self, A, parts):
        N = parts[0].size
        u, w, e1 = parts
        self.N, self.u = N, u
        self.lam = A[0, 0] - u[0] * w[0]
        self.den = self.lam + np.dot(w, u)
        self.w = w
        self.r = e1 + (w * u - np.dot(w, u) * e1) / self.den
        self.Axz = A[N:2 * N, :N].copy()
        S = A[N:2 * N, N:2 * N] - (self.Axz * u - np.outer(self.Axz @ u, self.r)) / self.lam
        self.lu = (zgetrf if S.dtype.kind == "c" else dgetrf)(S, overwrite_a=True)[:2]
        self.a33 = A[-1, -1] if A.shape[0] > 2 * N else None

    def _inv11(self, b):  # A_zz⁻¹ b by Sherman-Morrison
        return (b - self.u * (np.dot(self.w, b) / self.den)) / self.lam

    def solve(self, b):
        N = self.N
        y1 = self._inv11(b[:N])
        rhs = b[N:2 * N] - self.Axz @ y1
        x2 = (zgetrs if self.lu[0].dtype.kind == "c" else dgetrs)(self.lu[0], self.lu[1], rhs)[0]
        x = np.empty(b.shape, dtype=np.result_type(b, x2))
        x[N:2 * N] = x2
        x[:N] = y1 - (self.u * x2 - self.u * np.dot(self.r, x2)) / self.lam
        if self.a33 is not None:
            x[-1] = b[-1] / self.a33
        return x


class DualBlockLU:
    """The linear-algebra operator (flowkit.linalg) of the dual form: ``_BlockLU`` for the
    Jacobian whose zeta-row factors ``parts()`` holds (the newest, tied to that very matrix:
    Radau may still be factoring an older one after a refresh inside a step) where the
    elimination is well conditioned, else ``fallback`` on the whole matrix."""

    structured = False

    def __init__(self, parts, fallback):
        self.parts, self.fallback = parts, fallback

    def factor(self, J, mu, c=1.0):
        parts = self.parts()
        if parts is not None and parts[0] is J and c == 1.0:
            block = _BlockLU(self.fallback.newton_matrix(J, mu), parts[1:])
            if abs(block.den) > 1e-8 * abs(block.lam) and abs(block.lam) > 0:
                return block
        return self.fallback.factor(J, mu, c)

    def solve(self, F, b):
        return F.solve(b) if isinstance(F, _BlockLU) else self.fallback.solve(F, b)


# measured on the contract case (N = 200, d = 10,000, rtol 1e-8): Radau's jac_theta 0.1
# against 3e-2 trades ~15% more right-hand sides for ~40% fewer Jacobians, 10% less time
# (D = 2, 3): a Jacobian costs two N x N Gram matrices over d features, O(N² d), as much as
# ~40 right-hand sides at N = 200 (``flowkit.radau``)
JAC_THETA = 0.1


class DualFlow(System):
    """The flow in the dual state (zeta, xi[, omega]) (module docstring), on the same driver
    as flow.Flow (driver.py): same methods, tolerances, save points, switches and saved
    states; it starts where the primal flow starts (``flow.initial_state``)."""

    # precision of the Jacobian's Gram matrices (``_grams``)
    gram_dtype = np.float32
    # no plateau clock: no mode 0 here (xi from the start), and the clock runs on the primal state
    linalg = "dual"

    def __init__(self, problem, *, method="Radau", rtol=1e-10, atol=None, max_steps=50_000):
        if atol is not None and np.ndim(atol) != 0 and np.shape(atol) != (problem.n_samples + 1,):
            raise ParameterError("the dual form takes a scalar atol, or its own resolved vector "
                                 "(length N + 1, as in Trajectory.stats['atol']): its state is not y")
        super().__init__(problem, method=method, rtol=rtol, max_steps=max_steps)
        self._distinct = None  # every copy carried (system.py; select.dual_pays keeps copies off)
        self._caches()
        self.sigma0, self.z0 = initial_state(problem)
        self.atol = self._resolve_atol(atol)

    _CACHED = ("_XtT", "_xscale", "_Xt32", "_XtT32", "_buf", "_gram_buf", "_jac_parts", "_qr", "_chunks")

    def _caches(self):
        """Copies of the data in the layouts the kernels read, and work buffers: rebuilt, not
        pickled (they would make a pickled Trajectory ~5x the data)."""
        P = self.problem
        N, d = P.n_samples, P.n_features
        self._XtT = np.ascontiguousarray(P.Xt.T)
        # float32 Gram matrices (``_grams``) of Xt / max|Xt|: any float64 data fit
        self._xscale = float(np.max(np.abs(P.Xt))) or 1.0
        self._Xt32 = (P.Xt / self._xscale).astype(np.float32)
        self._XtT32 = np.ascontiguousarray(self._Xt32.T)
        self._buf = (np.empty(d), np.empty(d), np.empty(N))
        self._gram_buf = (np.empty((2 * N, d), np.float32), np.empty((2 * N, N), np.float32))
        self._jac_parts = None
        self._qr = None
        n = THREADS if N * d >= THREADS * _MIN_PER_THREAD else 1
        cuts = [d * k // n for k in range(n + 1)]
        self._chunks = list(zip(cuts[:-1], cuts[1:]))

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k not in self._CACHED}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._caches()

    @property
    def _ny(self):
        return self.problem.n_samples

    def advance(self, sigma_from, z_from, sigma_to):
        """System.advance, with BLAS on one thread: its only BLAS work here is the Gram
        matrices and the (2N+1)-sized LUs, and on the 2-core machine of
        benchmarks/RESULTS.md two OpenBLAS threads made the contract case (N = 200,
        d = 10,000, D = 2, rtol 1e-8) take 47.5 s instead of 24.9 s: the idle thread's
        spinning competes with the single-threaded pass over the data."""
        with threadpool_limits(limits=1, user_api="blas"):
            return super().advance(sigma_from, z_from, sigma_to)

    @staticmethod
    def _mode(sigma):
        # xi is carried from the start: p then costs no pass over the data (flow.py needs
        # mode 0 to keep its d-sized Jacobian small; here xi adds only N unknowns)
        return 1 if sigma < math.log(TIME_SWITCH) else 2

    # -- y <-> zeta --------------------------------------------------------------
    def _ytil_scale(self, sigma):
        logphi, _, _ = K_._scales(sigma, self.problem.log_alpha_D)
        return math.exp(logphi)

    def _import(self, sigma, y):
        """zeta with Xtᵀ zeta = ytil(y), by least squares (QR of Xtᵀ, computed once)."""
        D = float(self.problem.depth)
        if D == 2:
            ytil = y
        else:
            ha = 0.5 * (D - 2.0) * self._ytil_scale(sigma)
            ytil = np.tanh(ha * y) / ha
        if self._qr is None:
            self._qr = qr(self._XtT, mode="economic")
        Q, R = self._qr
        diag = np.abs(np.diag(R))
        if not np.min(diag) > 1e-12 * np.max(diag):  # rank-deficient data (e.g. a repeated sample)
            return np.linalg.lstsq(self._XtT, ytil, rcond=None)[0]
        return solve_triangular(R, Q.T @ ytil)

    def _export(self, sigma, zeta):
        if self.problem.depth == 2:
            return self._XtT @ zeta
        phi = self._ytil_scale(sigma)
        return dual_to_psi(self._XtT, zeta, phi, float(self.problem.depth)) / phi

    def _resolve_atol(self, atol):
        N = self.problem.n_samples
        if atol is None:
            zeta0 = self._import(self.sigma0, self.z0[:self.problem.n_features])
            arr = np.concatenate([np.full(N, 1e-2 * self.rtol * max(np.max(np.abs(zeta0)), 1e-300)),
                                  [self.rtol]])
        else:
            arr = np.broadcast_to(np.asarray(atol, dtype=float), (N + 1,)).copy()
            if not (np.all(np.isfinite(arr)) and np.all(arr > 0)):
                raise ParameterError(f"atol must be positive; got {atol!r}")
        self.atol_xi = np.concatenate([arr[:N], np.full(N, max(self.rtol, XI_ATOL_MIN))])
        return arr

    # -- what ---------------------------------------------------------------------
    def _evaluate(self, sigmas, Z, jac=False):
        """Right-hand sides F (K x n) at the K states Z = (zeta, xi[, omega]) at sigmas
        (module docstring), and the parts the Jacobian needs (K = 1) or None."""
        P = self.problem
        N, D, A = P.n_samples, float(P.depth), P.log_alpha_D
        K, n = Z.shape
        sig = np.asarray(sigmas, dtype=float)
        phi, Pw, Lam = np.empty(K), np.empty((K, N)), np.empty(K)
        prepare(sig, Z, N, A, phi, Pw, Lam)
        V, St, B = np.empty((K, N)), np.empty(K), np.empty(K)
        if not self._pass(np.ascontiguousarray(Z[:, :N]), Pw, phi, D, jac, V, St, B):
            # a trial state outside the map's domain: the solver shrinks its step
            return np.full((K, n), np.nan), None
        F = np.empty((K, n))
        finish(sig, Z, Pw, Lam, V, St, B, D, A, F)
        if not jac:
            return F, None
        _, beta, log1pR = K_._scales(sig[0], A)
        p, av = Pw[0], V[0] / St[0]
        parts = (St[0], p, av, 2.0 * p * (1.0 - av), 2.0 * math.exp(log1pR) / D, beta,
                 math.exp(sig[0]), phi[0], n > 2 * N)
        return F, parts

    def _pass(self, zeta, Pw, phi, D, jac, V, St, B):
        """``dual_pass`` over all features, split between THREADS threads by features."""
        E1, E2g, a1 = self._buf
        if len(self._chunks) == 1:
            return dual_pass(self._XtT, zeta, Pw, phi, D, jac, E1, E2g, a1, V, St, B)

        def part(chunk):
            lo, hi = chunk
            out = (np.empty(a1.size), np.empty(V.shape), np.empty(St.size), np.empty(B.size))
            dual_pass(self._XtT[lo:hi], zeta, Pw, phi, D, jac, E1[lo:hi], E2g[lo:hi], *out)
            return out

        parts = list(_pool().map(part, self._chunks))
        for dst, src in zip((a1, V, St, B), zip(*parts)):
            np.sum(src, axis=0, out=dst)
        # dual_pass's own test, on the sums (a block of zero features has S~ = 0)
        return bool(np.all(np.isfinite(St)) and np.all(np.isfinite(B)) and np.all(St > 0.0))

    def fun_xi(self, sigma, z):
        return self._evaluate((sigma,), z[None, :])[0][0]

    def fun_stages(self, sigmas, Z):
        """``fun_xi`` at Radau's three stages, in one pass over the data."""
        return self._evaluate(sigmas, Z)[0]

    def jac_xi(self, sigma, z):
        _, parts = self._evaluate((sigma,), z[None, :], jac=True)
        n, N = z.size, self.problem.n_samples
        if parts is None:
            return np.full((n, n), np.nan)
        St, p, av, lSx, c, beta, gam, phi, timed = parts
        E1, E2g, a1 = self._buf
        h = (float(self.problem.depth) - 1.0) * phi
        K1, K2 = self._grams(E1, E2g)
        la1 = (h / St) * a1                     # d log S~ / d zeta
        e1 = p - lSx
        J = np.zeros((n, n))
        J[:N, :N] = -(c / St) * np.outer(p, la1)
        J[np.arange(N), np.arange(N)] -= beta
        J[:N, N:2 * N] = (c / St) * np.outer(p, e1)
        J[np.arange(N), N + np.arange(N)] -= (c / St) * p
        J[N:2 * N, :N] = gam * ((h / St) * K2 - np.outer(av, la1))
        J[N:2 * N, N:2 * N] = gam * (-(K1 * p) / St + np.outer(av, e1) - p)
        if timed:
            J[-1, -1] = -gam * math.exp(-z[-1])
        # no subnormals into the LU (_kernels.dual.TINY); relative, as the data set J's scale
        J[np.abs(J) < max(_TINY * np.max(np.abs(J)), np.finfo(float).tiny)] = 0.0
        # the factors of the zeta rows (DualBlockLU), tied to this very matrix
        self._jac_parts = (J, (c / St) * p, la1, e1)
        return J

    def _grams(self, e1, e2):
        """Xt diag(e1) Xtᵀ and Xt diag(e2) Xtᵀ, single-precision products (each scaled by its
        max|e|, so any float64 weights fit), one per thread when the pass has several.

        The data are taken as Xt / max|Xt| (self._Xt32), so their scale cannot overflow
        float32.  The Jacobian only steers Newton's iteration and filters the error estimate: with
        float32 Gram matrices the contract case takes the same steps and right-hand sides
        as with float64 ones (33,240 against 33,238 at D = 3), and the one O(N² d) cost of
        a Jacobian halves.  The buffers are preallocated: a fresh 16 MB temporary per
        Jacobian costs more in page faults than the product."""
        N = self.problem.n_samples
        scales = [float(np.max(np.abs(e))) or 1.0 for e in (e1, e2)]
        if self.gram_dtype == np.float64:
            return tuple((self.problem.Xt * e) @ self._XtT for e in (e1, e2))
        work, out = self._gram_buf

        def gram(k):  # numpy releases the GIL in both calls: the two matrices in two threads
            rows = slice(k * N, (k + 1) * N)
            np.multiply(self._Xt32, ((e1, e2)[k] / scales[k]).astype(np.float32), out=work[rows])
            np.matmul(work[rows], self._XtT32, out=out[rows])

        if len(self._chunks) > 1:
            list(_pool().map(gram, (0, 1)))
        else:
            gram(0)
            gram(1)
        x2 = self._xscale ** 2
        return out[:N].astype(float) * (scales[0] * x2), out[N:].astype(float) * (scales[1] * x2)

    def _solver(self, mode):
        # one right-hand side in every mode (no double-double variant of the dual pass)
        if self.method != "Radau":
            return METHODS[self.method], self.fun_xi, self.jac_xi, None
        cls = partial(ThetaRadau, fun_stages=self.fun_stages, jac_theta=JAC_THETA)
        return cls, self.fun_xi, self.jac_xi, DualBlockLU(lambda: self._jac_parts,
                                                    self._dense_lu(mode) or DenseLU())

    # -- helpers the driver calls with the internal state --------------------------
    def _offsets(self, sigma, zeta):
        return K_.margin_offsets(sigma, self._export(sigma, zeta), *self._args)

    def _omega_asymptotic(self, sigma, zeta, xi):
        f = self.fun_xi(sigma, np.concatenate([zeta, xi, [0.0]]))
        return math.log1p(f[-1] / math.exp(sigma))
