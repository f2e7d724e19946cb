"""flowkit: exact gradient-flow trajectories of depth-D diagonal linear networks on
separable data with the exp-loss, to any training accuracy (Moroshko et al., 2020).

Entry point: :func:`integrate` (``model="linearized"``: the tangent-kernel model).
Discrete baselines (GD, the paper's normalised GD): :mod:`flowkit.baselines`.  The solutions trajectories tend to: :func:`max_margin`
and :func:`q_path`; where a trajectory stands: :mod:`flowkit.diagnostics`.  Many runs:
:func:`open_store` (HDF5) and :mod:`flowkit.sweep` (``flowkit sweep CONFIG --out FILE.h5``).
Math: math.md of the project's reference.
"""
from . import baselines, datasets, diagnostics, potentials
from ._version import __version__
from .exceptions import (DataError, FlowkitError, NotSeparableError, NumericalRangeError,
                         ParameterError, StoppingRuleError)
from .flow import METHODS, IntegrationError
from .integrator import integrate
from .maxmargin import L1Face, MaxMargin, max_margin
from .problem import Problem
from .qpath import Kink, QPath, q_path
from .stopping import gamma_from_loss
from .store import StoreError, StoreLockedError, open_store
from .trajectory import Trajectory

__all__ = [
    "integrate", "baselines", "Trajectory", "Problem", "datasets", "gamma_from_loss", "METHODS",
    "max_margin", "MaxMargin", "L1Face", "q_path", "QPath", "Kink", "diagnostics", "potentials",
    "open_store", "StoreError", "StoreLockedError",
    "FlowkitError", "DataError", "NotSeparableError", "ParameterError", "StoppingRuleError",
    "NumericalRangeError", "IntegrationError", "__version__",
]
