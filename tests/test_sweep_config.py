"""Sweep configuration (TOML): the grid it expands to and errors that name key and line."""
from pathlib import Path

import numpy as np
import pytest

import flowkit
from flowkit.sweep import ConfigError, load_config, parse_config

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sweep.toml"

GOOD = """\
[sweep]
datasets = ["fig4a"]
depths = [2, 3]
alphas = [0.5, 2.0]

[[stop]]
gamma = [1e3, 1e4]

[[stop]]
mu = 0.5
"""


def test_grid_expansion():
    specs = parse_config(GOOD)
    assert len(specs) == 1 * 2 * 2 * 3
    assert {(s.depth, s.alpha) for s in specs} == {(2, 0.5), (2, 2.0), (3, 0.5), (3, 2.0)}
    assert [s.stop for s in specs[:3]] == [{"gamma": 1e3}, {"gamma": 1e4}, {"mu": 0.5}]
    assert specs[0].method == "Radau" and specs[0].rtol == 1e-10


def test_example_config_is_documented_size():
    specs = load_config(EXAMPLE)
    assert len(specs) >= 20
    kinds = {next(iter(s.stop)) for s in specs}
    assert kinds == {"gamma", "mu", "excess_l1"}
    np.testing.assert_allclose(sorted({s.alpha for s in specs}), [0.1, 1, 10, 100])


def test_relative_data_path(tmp_path):
    X, y = flowkit.datasets.load("kink")
    np.savetxt(tmp_path / "k.csv", np.column_stack([X, y]), delimiter=",")
    cfg = tmp_path / "s.toml"
    cfg.write_text(GOOD.replace('"fig4a"', '"k.csv"'))
    specs = load_config(cfg)
    np.testing.assert_array_equal(specs[0].X, X)


@pytest.mark.parametrize("text, key, line", [
    (GOOD.replace("depths = [2, 3]", "depth = [2, 3]"), "sweep.depth", 3),
    (GOOD.replace("depths = [2, 3]", "depths = [1, 3]"), "sweep.depths", 3),
    (GOOD.replace("alphas = [0.5, 2.0]", "alphas = [0.5, -2.0]"), "sweep.alphas", 4),
    (GOOD.replace("gamma = [1e3, 1e4]", "gama = 1e3"), "stop.gama", 7),
    (GOOD.replace("mu = 0.5", 'mu = "big"'), "stop.mu", 10),
    (GOOD.replace('"fig4a"', '"nosuch.csv"'), "sweep.datasets", 2),
    (GOOD + "\n[solver]\nmethod = \"Euler\"\n", "solver.method", 13),
    (GOOD + "\n[solver]\ntol = 1e-3\n", "solver.tol", 13),
    (GOOD + "\n[[stop]]\nexcess_l1 = 0.05\n", "stop.excess_l1", 13),
])
def test_errors_name_key_and_line(text, key, line):
    with pytest.raises(ConfigError) as err:
        parse_config(text, source="cfg.toml")
    msg = str(err.value)
    assert f"key '{key}'" in msg and f"line {line}" in msg


def test_syntax_error_names_line():
    with pytest.raises(ConfigError, match=r"not valid TOML.*line 4"):  # where tomllib notices
        parse_config(GOOD.replace("depths = [2, 3]", "depths = [2, 3"), source="cfg.toml")


@pytest.mark.parametrize("text, match", [
    ("[sweep]\ndatasets=['fig4a']\ndepths=[2]\nalphas=[1.0]\n", "no \\[\\[stop\\]\\]"),
    ("[[stop]]\ngamma=1.0\n", "missing \\[sweep\\]"),
    ("[sweep]\ndatasets=['fig4a']\ndepths=[2]\n[[stop]]\ngamma=1.0\n", "missing the key 'alphas'"),
    (GOOD + "\n[[stop]]\ngamma = 1.0\nmu = 2.0\n", "exactly one of"),
])
def test_structural_errors(text, match):
    with pytest.raises(ConfigError, match=match):
        parse_config(text)


def test_unreadable_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")
