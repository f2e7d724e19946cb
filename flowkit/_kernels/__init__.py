"""Every numba kernel of flowkit lives in this package, one file per concern:

* ``flow``: right-hand sides and analytic Jacobians of the gradient flow (math.md,
  "Log-loss time"), in both coordinate sets used by :mod:`flowkit.flow`;
* ``flow_step``: the same flow in the compiled step's calling convention f(t, z, args);
* ``radau``: Radau IIA's step (scipy 1.17's, in numba) as a machine that asks for a
  system's functions, and ``specialise``, which binds it to them (:mod:`flowkit.compiled`);
* ``xi_rates``: the margin-offset rates in double-double, on ``dd`` (double-double
  arithmetic: error-free sums and products, exp, log);
* ``dual``: the one pass over the data of the flow's dual form (:mod:`flowkit.dual`);
* ``linearized``: the tangent-kernel model's right-hand sides (:mod:`flowkit.linearized`);
* ``baselines``: gradient descent and normalised GD (:mod:`flowkit.baselines`);
* ``potentials``: h_D, h_D', H_D, q_D and h_D^{-1} (math.md, "Implicit-bias potentials"),
  generated from sympy by :mod:`flowkit.symbolic`; do not edit it by hand.
"""
