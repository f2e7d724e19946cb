"""flowkit: exact gradient-flow trajectories of depth-D diagonal linear networks on
separable data with the exp-loss, to any training accuracy (Moroshko et al., 2020).

Entry point: :func:`integrate` (``model="linearized"``: the tangent-kernel model).
Discrete baselines (GD, the paper's normalised GD): :mod:`flowkit.baselines`.  The
solutions trajectories tend to: :func:`max_margin` and :func:`q_path` (classification),
:func:`min_potential` and, as alpha -> 0, :func:`saddles` (squared-loss regression);
where a trajectory stands: :mod:`flowkit.diagnostics`.  Many runs:
:func:`open_store` (HDF5) and :mod:`flowkit.sweep` (``flowkit sweep CONFIG --out FILE.h5``).
Math: math.md of the project's reference.
"""
import importlib

from ._version import __version__
from .exceptions import (DataError, FlowkitError, IntegrationError, NotSeparableError,
                         NumericalRangeError, ParameterError, StoppingRuleError)

# Everything else is imported on first use (PEP 562 ``__getattr__``): ``import flowkit``
# and ``flowkit run`` then load neither h5py/h5netcdf (store), the max-margin solvers
# nor the potentials' kernels unless they are used (benchmarks/startup.py).
_LAZY = {
    "integrate": "integrator", "Trajectory": "trajectory", "Problem": "problem",
    "gamma_from_loss": "stopping", "METHODS": "flow", "CompiledRadau": "compiled",
    "max_margin": "maxmargin", "MaxMargin": "maxmargin", "L1Face": "maxmargin",
    "q_path": "qpath", "QPath": "qpath", "Kink": "qpath",
    "min_potential": "minpotential", "Interpolator": "minpotential", "NoInterpolatorError": "minpotential",
    "saddles": "saddle_to_saddle", "SaddlePath": "saddle_to_saddle",
    "open_store": "store", "StoreError": "store", "StoreLockedError": "store",
}
_SUBMODULES = {"baselines", "linearized", "datasets", "diagnostics", "potentials", "events", "symbolic",
               "store", "sweep", "maxmargin", "minpotential", "saddle_to_saddle", "qpath", "integrator",
               "trajectory", "problem", "stopping", "flow", "cli", "exceptions", "compiled"}

__all__ = [
    "integrate", "baselines", "Trajectory", "Problem", "datasets", "gamma_from_loss", "METHODS", "CompiledRadau",
    "max_margin", "MaxMargin", "L1Face", "q_path", "QPath", "Kink", "diagnostics", "potentials",
    "min_potential", "Interpolator", "NoInterpolatorError", "saddles", "SaddlePath",
    "open_store", "StoreError", "StoreLockedError",
    "FlowkitError", "DataError", "NotSeparableError", "ParameterError", "StoppingRuleError",
    "NumericalRangeError", "IntegrationError", "__version__",
]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__) | _SUBMODULES)
