"""Start-up (issue 6 §5, benchmarks/startup.py): what ``import flowkit`` and ``flowkit run``
load, and that runs compile each numba kernel for one argument-type signature only
(another dtype, contiguity or readonly flag at a call site would be one more full
compile on every first run).  One fresh interpreter serves both checks."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("sympy", "pandas", "xarray", "dask", "distributed", "h5py", "h5netcdf", "matplotlib", "tqdm")

PROBE = f"""
import json, sys
import flowkit
bare = sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'scipy', 'numba'))
import flowkit.cli
flowkit.cli._parser()
X, y = flowkit.datasets.load('kink')
# every regime of the flow (state y; y, xi, omega; y, xi) and Trajectory.at
t = flowkit.integrate(X, y, depth=3, alpha=1.0, gamma=1e6, points_per_decade=2)
t.at([5.0, 2e5])
heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))
import numba
from flowkit._kernels import fields, flow, initial
sigs = {{}}
for K in (flow, fields, initial):
    for name in dir(K):
        f = getattr(K, name)
        if isinstance(f, numba.core.registry.CPUDispatcher) and f.signatures:
            sigs[name] = sorted({{str(tuple(numba.types.unliteral(a) for a in s)) for s in f.signatures}})
print(json.dumps(dict(bare=bare, heavy=heavy, solvers='flowkit.maxmargin' in sys.modules, sigs=sigs)))
"""


@pytest.fixture(scope="module")
def probe():
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_and_run_load_no_heavy_dependency(probe):
    assert probe["bare"] == []       # import flowkit alone: not even numpy, scipy or numba
    assert probe["heavy"] == []      # a run: none of the sweep/store/figure stack
    assert not probe["solvers"]      # nor the max-margin solvers


def test_one_specialisation_per_kernel(probe):
    sigs = probe["sigs"]
    # called from Python on every run: the flow's evaluators, the Trajectory's fields, the
    # initial state's root and the driver's maps
    assert {"_common0", "_common_xi", "fields", "root", "log_kappa", "margin_offsets"} <= set(sigs)
    several = {name: s for name, s in sigs.items() if len(s) != 1}
    assert not several, f"kernels compiled for more than one argument-type signature: {several}"


def test_public_names_resolve_lazily():
    import flowkit

    for name in flowkit.__all__:
        assert getattr(flowkit, name) is not None, name
    assert set(flowkit.__all__) <= set(dir(flowkit))
