"""integrate's ``step`` through the layers that name a run: the sweep config
([solver] step), the run ids and stored settings, the sweep runner, the store's replay
and the CLI (``flowkit run --step``)."""
import json
import subprocess
import sys

import numpy as np
import pytest

import flowkit
from flowkit.store._ids import canonical_settings, run_id
from flowkit.sweep import ConfigError, parse_config, run_sweep

CONFIG = """\
[sweep]
datasets = ["fig4a"]
depths = [2]
alphas = [1.0, 100.0]

[[stop]]
gamma = 1e3

[solver]
step = "{step}"
"""


def test_default_step_keeps_the_run_ids():
    X, y = flowkit.datasets.load("fig4a")
    base = dict(depth=2, alpha=1.0, stopping={"gamma": 1e3})
    assert "step" not in canonical_settings(**base)
    assert run_id(X, y, **base) == run_id(X, y, step="scipy", **base)
    assert run_id(X, y, **base) != run_id(X, y, step="compiled", **base)


def test_config_step_and_its_errors():
    specs = parse_config(CONFIG.format(step="compiled"))
    assert {s.step for s in specs} == {"compiled"} and specs[0].settings["step"] == "compiled"
    assert {s.step for s in parse_config(CONFIG.replace('step = "{step}"\n', ""))} == {"scipy"}
    with pytest.raises(ConfigError, match="line 10.*solver.step"):
        parse_config(CONFIG.format(step="numba"))
    with pytest.raises(ConfigError, match="solver.step"):
        parse_config(CONFIG.format(step="compiled") + 'method = "BDF"\n')


def test_sweep_on_the_compiled_step_stores_and_replays_it(tmp_path):
    out = tmp_path / "runs.h5"
    rep = run_sweep(parse_config(CONFIG.format(step="compiled")), out, workers=1, progress=False)
    assert rep.failed == 0 and rep.pending == 0
    X, y = flowkit.datasets.load("fig4a")
    with flowkit.open_store(out) as st:
        rid = run_id(X, y, depth=2, alpha=100.0, stopping={"gamma": 1e3}, step="compiled")
        tr = st.load(rid)
    assert tr.stats["step"] == "compiled"
    ref = flowkit.integrate(X, y, depth=2, alpha=100.0, gamma=1e3)  # the scipy step
    np.testing.assert_allclose(tr.w_hat[-1], ref.w_hat[-1], rtol=0, atol=1e-13)
    mid = float(np.sqrt(tr.gamma[3] * tr.gamma[4]))
    again = tr.at(mid)  # on the run's own step
    assert again.stats["step"] == "compiled"
    np.testing.assert_allclose(again.w[-1], ref.at(mid).w[-1], rtol=1e-11)


def test_cli_run_step(tmp_path):
    cmd = [sys.executable, "-m", "flowkit.cli", "run", "--dataset", "fig4a", "--depth", "2",
           "--alpha", "100", "--gamma", "1e3"]
    a = json.loads(subprocess.run(cmd + ["--json", "--step", "compiled"], capture_output=True,
                                  text=True, check=True).stdout)
    b = json.loads(subprocess.run(cmd + ["--json"], capture_output=True, text=True, check=True).stdout)
    assert a["stats"]["step"] == "compiled" and b["stats"]["step"] == "scipy"
    np.testing.assert_allclose(a["w_hat"], b["w_hat"], rtol=0, atol=1e-13)
    text = subprocess.run(cmd + ["--step", "compiled"], capture_output=True, text=True, check=True).stdout
    assert "Radau (compiled step)" in text
