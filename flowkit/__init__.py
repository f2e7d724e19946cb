"""flowkit: exact gradient-flow trajectories of depth-D diagonal linear networks on
separable data with the exp-loss, to any training accuracy (Moroshko et al., 2020).

Entry point: :func:`integrate`.  Math: math.md of the project's reference.
"""
from . import datasets
from ._version import __version__
from .exceptions import (DataError, FlowkitError, NotSeparableError, NumericalRangeError,
                         ParameterError, StoppingRuleError)
from .flow import METHODS, IntegrationError
from .integrator import integrate
from .problem import Problem
from .stopping import gamma_from_loss
from .trajectory import Trajectory

__all__ = [
    "integrate", "Trajectory", "Problem", "datasets", "gamma_from_loss", "METHODS",
    "FlowkitError", "DataError", "NotSeparableError", "ParameterError", "StoppingRuleError",
    "NumericalRangeError", "IntegrationError", "__version__",
]
