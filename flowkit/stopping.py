"""When to stop: the three stopping rules of ``flowkit.integrate``, all mapped to a
target training accuracy gamma~ = -log L (math.md, "Model and loss").

* ``gamma``: gamma~ itself;
* ``loss``: L as a number or a decimal string ("1e-8700", "3.2e-4000000"), parsed
  exactly with :mod:`decimal` so losses far below the float64 range are fine;
* ``mu``: the paper's stopping function eps(alpha) = exp(-alpha^D / mu), i.e.
  gamma~ = alpha^D / mu (Theorem 6), formed in log space.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation, localcontext

import numpy as np

from .exceptions import NumericalRangeError, StoppingRuleError
from .problem import positive_float

__all__ = ["StoppingRule", "resolve_stopping_rule", "gamma_from_loss", "MAX_GAMMA"]

# The margin-offset rates gamma~ (a - pᵀa + Lambda) are computed in double-double
# (_kernels/xi_rates.py) with an error of ~1e-31 gamma~; past gamma~ ~ 1e30 that error
# reaches O(0.1) of the O(1) rates, as float64's did at the old cap of 1e15.
MAX_GAMMA = 1e30
# The flow starts at gamma~ = 1e-14 (flow.GAMMA_START); targets must lie well above it.
MIN_GAMMA = 1e-10


@dataclass(frozen=True)
class StoppingRule:
    kind: str       # "gamma", "loss" or "mu"
    value: object   # as given (str kept for exact losses)
    gamma: float    # the target gamma~

    def describe(self):
        return f"{self.kind}={self.value}"


def gamma_from_loss(loss):
    """gamma~ = -ln(L) for L given as a number or decimal string, computed exactly."""
    if isinstance(loss, (bool, np.bool_)):
        raise StoppingRuleError(f"loss must be a number or a decimal string; got {loss!r}")
    text = repr(float(loss)) if isinstance(loss, (float, np.floating)) else str(loss).strip()
    try:
        dec = Decimal(text)
    except (InvalidOperation, ValueError):
        raise StoppingRuleError(f"loss must be a number or a decimal string like '1e-8700'; got {loss!r}") from None
    if not dec.is_finite() or dec <= 0:
        raise StoppingRuleError(f"loss must be a positive finite number; got {loss!r}")
    if dec >= 1:
        raise StoppingRuleError(f"loss {loss!r} >= 1 = L(w=0): target gamma~ = -log L would be <= 0")
    _, digits, exponent = dec.as_tuple()
    mantissa = int("".join(map(str, digits)))
    with localcontext() as ctx:
        ctx.prec = 50
        g = -(Decimal(mantissa).ln() + Decimal(exponent) * Decimal(10).ln())
    return float(g)


def resolve_stopping_rule(*, gamma=None, loss=None, mu=None, log_alpha_D):
    """Check that exactly one rule is given and return it with its target gamma~."""
    given = {k: v for k, v in (("gamma", gamma), ("loss", loss), ("mu", mu)) if v is not None}
    if len(given) != 1:
        names = ", ".join(given) or "none"
        raise StoppingRuleError(f"give exactly one stopping rule (gamma, loss or mu); got {names}")
    (kind, value), = given.items()
    if kind == "gamma":
        target = positive_float("gamma", value, StoppingRuleError)
    elif kind == "loss":
        target = gamma_from_loss(value)
    else:
        target = math.exp(min(log_alpha_D - math.log(positive_float("mu", value, StoppingRuleError)), 709.0))
    if target < MIN_GAMMA:
        raise NumericalRangeError(
            f"target gamma~ = {target:.3g} (from {kind}={value}) is below {MIN_GAMMA:.0e}, "
            "where the flow has not left w = 0 (it starts at gamma~ = 1e-14)")
    if target > MAX_GAMMA:
        raise NumericalRangeError(
            f"target gamma~ = {target:.3g} (from {kind}={value}) exceeds {MAX_GAMMA:.0e}: the "
            "double-double margin offsets no longer resolve the O(1) gaps that drive the flow")
    return StoppingRule(kind=kind, value=value, gamma=target)
