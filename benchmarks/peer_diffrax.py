"""flowkit against a JIT-compiled peer (compiled-step issue): the same flow written in JAX
and solved with diffrax's Kvaerno5 (ESDIRK, autodiff Jacobians, PID controller), against
flowkit's Radau with the compiled step and with scipy's Python step, rtol 1e-10 for all.

The peer's ODE is the flow in log-parameter coordinates against log-loss time:
psi = delta+ - delta- per feature, sigma = log gamma~,

    d psi/d sigma = gamma~ (e^{a delta+} + e^{a delta-}) g / (D alpha^D S),  a = D - 2,
    S = Σ_i (e^{(2D-2) delta+_i} + e^{(2D-2) delta-_i}) g_i²,   g = Xtᵀ softmax(-Xt w),

(flowkit/flow.py's docstring; delta± from psi by the conservation law, as
_kernels/flow.offsets), from flowkit's own state at gamma~ = 1e-3 to the target.  Each
error is max |w_hat - w_hat_ref| with the reference flowkit's scipy step at rtol 1e-13.
Times are warm (each solver compiled first), the median of ``--repeats`` interleaved calls;
diffrax's atol is its rtol, its step budget 200,000 ("failed": the budget ran out).

Needs the optional extra ``pip install -e ".[peer]"`` (jax, diffrax), which neither the
core install nor CI has.  Writes peer_diffrax.md, peer_diffrax.json and
peer_diffrax.png/.pdf; ``--redraw`` remakes the table and plot from the JSON.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from compiled_step import bars, machine  # noqa: E402

START = 1e-3
RTOL = 1e-10


def cases():
    import flowkit

    fig4a, kink = flowkit.datasets.load("fig4a"), flowkit.datasets.load("kink")
    X, y = flowkit.datasets.planted_sparse(20, 50, 5, seed=0)
    return [
        ("fig4a, D = 2, alpha = 1, gamma~ = 1e4", fig4a, 2, 1.0, 1e4),
        ("fig4a, D = 3, alpha = 100, gamma~ = 1e3", fig4a, 3, 100.0, 1e3),
        ("kink, D = 2, alpha = 1e3, gamma~ = 5e6", kink, 2, 1e3, 5e6),
        ("kink, D = 2, alpha = 1e5, gamma~ = 5e10", kink, 2, 1e5, 5e10),
        ("planted 20 x 50, D = 2, alpha = 1, gamma~ = 1e6", (X, y), 2, 1.0, 1e6),
    ]


def peer(Xt, depth):
    """A jitted diffrax solve of the flow for the data Xt and depth: f(psi0, A, s0, s1)."""
    import jax
    import jax.numpy as jnp
    import diffrax

    jax.config.update("jax_enable_x64", True)
    D = float(depth)
    a = D - 2.0
    Xt = jnp.asarray(Xt)

    def half_log(x):  # log((1 + e^x)/2)
        return jnp.logaddexp(0.0, x) - math.log(2.0)

    def deltas(psi):
        if a == 0.0:
            return 0.5 * psi, -0.5 * psi
        return half_log(a * psi) / a, half_log(-a * psi) / a

    def field(sigma, psi, A):
        dp, dm = deltas(psi)
        w = jnp.exp(A) * (jnp.expm1(D * dp) - jnp.expm1(D * dm))
        p = jax.nn.softmax(-(Xt @ w))
        g = Xt.T @ p
        c = 2.0 * D - 2.0
        M = c * jnp.maximum(jnp.max(dp), jnp.max(dm))
        S = jnp.sum((jnp.exp(c * dp - M) + jnp.exp(c * dm - M)) * g * g)
        num = jnp.exp(a * dp) + jnp.exp(a * dm)
        return jnp.exp(sigma - A - M - math.log(D)) * num * g / S

    term = diffrax.ODETerm(lambda s, psi, A: field(s, psi, A))
    solver = diffrax.Kvaerno5()
    # atol = rtol on psi (O(1) to O(30)): with atol = rtol/100 Kvaerno5 ran out of its
    # 200,000 steps on the kink and planted cases; flowkit's atol on its scaled state is
    # rtol/100 of the state's size
    ctrl = diffrax.PIDController(rtol=RTOL, atol=RTOL)

    @jax.jit
    def solve(psi0, A, s0, s1):
        sol = diffrax.diffeqsolve(term, solver, s0, s1, None, psi0, args=A, stepsize_controller=ctrl,
                                  max_steps=200_000, throw=False)
        return sol.ys[-1], sol.stats["num_accepted_steps"], sol.result == diffrax.RESULTS.successful

    return solve


def start_state(X, y, depth, alpha):
    """psi at gamma~ = START from flowkit's own run (the shared initial condition)."""
    import flowkit
    from flowkit._kernels import flow as K

    tr = flowkit.integrate(X, y, depth=depth, alpha=alpha, gamma=START, rtol=1e-13)
    P = flowkit.Problem.build(X, y, depth, alpha)
    logphi = K._scales(math.log(START), P.log_alpha_D)[0]
    return tr.state[-1, :X.shape[1]] * math.exp(logphi), P


def w_hat_of(psi, P):
    from flowkit._kernels import flow as K

    w = K.psi_to_w(np.asarray(psi, dtype=float), float(P.depth), P.log_alpha_D)
    return w / np.min(P.Xt @ w)


def measure(repeats):
    import flowkit

    rows = []
    for name, (X, y), depth, alpha, gamma in cases():
        ref = flowkit.integrate(X, y, depth=depth, alpha=alpha, gamma=gamma, rtol=1e-13).w_hat[-1]
        psi0, P = start_state(X, y, depth, alpha)
        solve = peer(P.Xt, depth)
        s0, s1 = math.log(START), math.log(gamma)
        out = solve(psi0, P.log_alpha_D, s0, s1)  # compile
        times = {"diffrax": [], "compiled": [], "scipy": []}
        for step in ("compiled", "scipy"):
            flowkit.integrate(X, y, depth=depth, alpha=alpha, gamma=gamma, step=step, linalg="dense")
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = solve(psi0, P.log_alpha_D, s0, s1)
            out[0].block_until_ready()
            times["diffrax"].append(time.perf_counter() - t0)
            for step in ("compiled", "scipy"):
                t0 = time.perf_counter()
                tr = flowkit.integrate(X, y, depth=depth, alpha=alpha, gamma=gamma, step=step, linalg="dense")
                times[step].append(time.perf_counter() - t0)
                if step == "compiled":
                    fk = tr
        ok = bool(out[2])
        err_peer = float(np.max(np.abs(w_hat_of(out[0], P) - ref))) if ok else float("nan")
        rows.append({"case": name, "diffrax_s": statistics.median(times["diffrax"]),
                     "compiled_s": statistics.median(times["compiled"]),
                     "scipy_s": statistics.median(times["scipy"]), "diffrax_ok": ok,
                     "diffrax_steps": int(out[1]), "flowkit_steps": fk.stats["steps"],
                     "diffrax_error": err_peer,
                     "flowkit_error": float(np.max(np.abs(fk.w_hat[-1] - ref)))})
        print(name, rows[-1], file=sys.stderr)
    rows.append(sweep())
    return rows


def sweep(n=32):
    """32 alpha on fig4a, D = 2, gamma~ = 1e4: seconds per trajectory."""
    import flowkit

    X, y = flowkit.datasets.load("fig4a")
    alphas = np.logspace(-1, 3, n)
    starts = [start_state(X, y, 2, float(a)) for a in alphas]
    solve = peer(starts[0][1].Xt, 2)
    s0, s1 = math.log(START), math.log(1e4)
    solve(starts[0][0], starts[0][1].log_alpha_D, s0, s1)
    flowkit.integrate(X, y, depth=2, alpha=1.0, gamma=1e4, step="compiled")
    t0 = time.perf_counter()
    for psi0, P in starts:
        solve(psi0, P.log_alpha_D, s0, s1)[0].block_until_ready()
    t_peer = (time.perf_counter() - t0) / n
    res = {}
    for step in ("compiled", "scipy"):
        t0 = time.perf_counter()
        for a in alphas:
            flowkit.integrate(X, y, depth=2, alpha=float(a), gamma=1e4, step=step)
        res[step] = (time.perf_counter() - t0) / n
    return {"case": f"fig4a, D = 2, {n} alpha in [0.1, 1e3], gamma~ = 1e4 (per trajectory)",
            "diffrax_s": t_peer, "compiled_s": res["compiled"], "scipy_s": res["scipy"],
            "diffrax_ok": True, "diffrax_steps": 0, "flowkit_steps": 0,
            "diffrax_error": float("nan"), "flowkit_error": float("nan")}


def table(rows, info):
    lines = ["# flowkit against diffrax (Kvaerno5, PID controller), rtol 1e-10", "",
             f"Machine: {info['machine']}; jax {info['jax']}, diffrax {info['diffrax']}. Median of "
             f"{info['repeats']} warm calls, interleaved. Errors: max |Δŵ| at the target against "
             "flowkit's scipy step at rtol 1e-13. *compiled*: `integrate(step=\"compiled\")`; "
             "*scipy*: the default step.", "",
             "| case | diffrax | flowkit compiled | flowkit scipy | compiled / diffrax | steps diffrax / flowkit "
             "| diffrax error | flowkit error |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        fail = "" if r["diffrax_ok"] else " (failed)"
        steps = f"{r['diffrax_steps']} / {r['flowkit_steps']}" if r["flowkit_steps"] else "—"
        e1 = "—" if math.isnan(r["diffrax_error"]) else f"{r['diffrax_error']:.1e}"
        e2 = "—" if math.isnan(r["flowkit_error"]) else f"{r['flowkit_error']:.1e}"
        lines.append(f"| {r['case']} | {1e3 * r['diffrax_s']:.1f} ms{fail} | {1e3 * r['compiled_s']:.1f} ms "
                     f"| {1e3 * r['scipy_s']:.1f} ms | {r['compiled_s'] / r['diffrax_s']:.2f} | {steps} "
                     f"| {e1} | {e2} |")
    return "\n".join(lines) + "\n"


def plot(rows, stem):
    rows = [dict(r, case=r["case"] + ("" if r["diffrax_ok"] else " [diffrax: out of steps]")) for r in rows]
    bars(rows, [(lambda r: r["diffrax_s"], "diffrax Kvaerno5"), (lambda r: r["compiled_s"], "flowkit, compiled step"),
                (lambda r: r["scipy_s"], "flowkit, scipy step")], stem,
         "wall time of one solve (ms, median, warm)", "rtol 1e-10: flowkit and a JIT-compiled peer")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--redraw", action="store_true", help="table and plot from peer_diffrax.json")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    stem = HERE / "peer_diffrax"
    if args.redraw:
        data = json.loads(Path(f"{stem}.json").read_text())
    else:
        import diffrax
        import jax

        data = {"info": {"machine": machine(), "repeats": args.repeats, "jax": jax.__version__,
                         "diffrax": diffrax.__version__}, "rows": measure(args.repeats)}
        Path(f"{stem}.json").write_text(json.dumps(data, indent=1))
    text = table(data["rows"], data["info"])
    Path(f"{stem}.md").write_text(text)
    plot(data["rows"], stem)
    print(text)


if __name__ == "__main__":
    main()
