"""Exceptions raised by flowkit.

Every error caused by bad input derives from :class:`FlowkitError`, itself a
``ValueError``, so ``except ValueError`` keeps working for callers that do not
care which input was wrong.  Errors are raised before any work is done.

:class:`IntegrationError` is not an input error: the solver itself failed on valid input
(a defect to report, with the gamma~ where it happened).
"""


class FlowkitError(ValueError):
    """Base class of all flowkit input errors."""


class DataError(FlowkitError):
    """The data (X, y) are malformed: shapes, NaN/inf, labels, empty."""


class NotSeparableError(DataError):
    """The data are not linearly separable, so the exp-loss has no zero limit."""


class ParameterError(FlowkitError):
    """A model or solver parameter is out of range (depth, alpha, tolerances, method)."""


class StoppingRuleError(FlowkitError):
    """Zero or several stopping rules, or a target accuracy that is not positive."""


class NumericalRangeError(FlowkitError):
    """The request lies outside what float64 coordinates can represent faithfully."""


class IntegrationError(RuntimeError):
    """The ODE solver failed (step size collapsed or step budget exhausted)."""
