"""An independent integrator of squared-loss gradient flow on a diagonal network, for the
tests: u± themselves in log coordinates θ± = log u±, L = ½‖Xw − y‖², w = u+^D − u−^D,

    dθ±/dt = ∓D e^{(D−2)θ±} Xᵀ(Xw − y),

by scipy's Radau with a hand-written Jacobian, in plain time t from u±(0) = α·1, until
the gradient ‖Xᵀr‖ falls below ``stop`` times its start.  Nothing of flowkit is used."""
import numpy as np
from scipy.integrate import solve_ivp


def flow_limit(X, y, depth, alpha, *, rtol=1e-12, stop=1e-12, t_max=1e9):
    """(w at the end, scipy's solution) of the flow from u± = alpha (a scalar, or one
    scale per feature)."""
    X, y = np.asarray(X, float), np.asarray(y, float)
    D, d = depth, X.shape[1]
    G = X.T @ X

    def parts(th):
        tp, tm = th[:d], th[d:]
        w = np.exp(D * tp) - np.exp(D * tm)
        return tp, tm, w, X.T @ (X @ w - y)

    def f(t, th):
        tp, tm, _, g = parts(th)
        return np.concatenate([-D * np.exp((D - 2) * tp) * g, D * np.exp((D - 2) * tm) * g])

    def jac(t, th):
        tp, tm, _, g = parts(th)
        ep, em = np.exp((D - 2) * tp), np.exp((D - 2) * tm)
        dwp, dwm = D * np.exp(D * tp), -D * np.exp(D * tm)  # ∂w/∂θ±
        J = np.empty((2 * d, 2 * d))
        J[:d, :d] = -D * ep[:, None] * G * dwp[None, :] - np.diag(D * (D - 2) * ep * g)
        J[:d, d:] = -D * ep[:, None] * G * dwm[None, :]
        J[d:, :d] = D * em[:, None] * G * dwp[None, :]
        J[d:, d:] = D * em[:, None] * G * dwm[None, :] + np.diag(D * (D - 2) * em * g)
        return J

    th0 = np.tile(np.broadcast_to(np.log(alpha), (d,)), 2)  # alpha: a scalar or one per feature
    g0 = np.linalg.norm(parts(th0)[3])

    def done(t, th):
        return np.log(np.linalg.norm(parts(th)[3]) / g0) - np.log(stop)

    done.terminal = True
    sol = solve_ivp(f, (0.0, t_max), th0, method="Radau", jac=jac, rtol=rtol, atol=1e-14, events=done)
    assert sol.status == 1, sol.message  # ended at the event
    return parts(sol.y[:, -1])[2], sol
