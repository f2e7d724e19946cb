"""`flowkit run`: text and JSON output, data files, and errors with exit status 2."""
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import flowkit
from flowkit.cli import main

DATA = Path(__file__).resolve().parents[1] / "data"


def test_json_output(capsys):
    assert main(["run", "--dataset", "fig4a", "--depth", "2", "--alpha", "100",
                 "--loss", "1e-8700", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["gamma"] == pytest.approx(8700 * math.log(10), rel=1e-15)
    assert out["log10_loss"] == pytest.approx(-8700, rel=1e-15)
    X, _ = flowkit.datasets.load("fig4a")
    assert min(X @ np.array(out["w_hat"])) == pytest.approx(1.0, rel=1e-12)
    for key in ("nfev", "njev", "steps", "seconds", "invariants", "method", "rtol"):
        assert key in out["stats"]


def test_text_output(capsys):
    assert main(["run", "--dataset", "kink", "--depth", "3", "--alpha", "1", "--mu", "0.5"]) == 0
    text = capsys.readouterr().out
    for word in ("gamma~", "margin", "w_hat", "nfev", "invariants"):
        assert word in text


@pytest.mark.parametrize("name", ["fig4a", "fig4b", "kink"])
def test_shipped_csv_equals_builtin(name):
    X, y = flowkit.datasets.load_file(DATA / f"{name}.csv")
    Xb, yb = flowkit.datasets.load(name)
    np.testing.assert_array_equal(X, Xb)
    np.testing.assert_array_equal(y, yb)


def test_data_file_npz(tmp_path, capsys):
    X, y = flowkit.datasets.load("fig4b")
    np.savez(tmp_path / "d.npz", X=X, y=y)
    assert main(["run", "--data", str(tmp_path / "d.npz"), "--depth", "2", "--alpha", "1",
                 "--gamma", "50", "--json"]) == 0
    from_file = json.loads(capsys.readouterr().out)["w_hat"]
    direct = flowkit.integrate(X, y, depth=2, alpha=1.0, gamma=50.0).w_hat[-1]
    np.testing.assert_allclose(from_file, direct, rtol=1e-14)


def test_errors_exit_2(capsys, tmp_path):
    assert main(["run", "--dataset", "fig4a", "--depth", "1", "--alpha", "1", "--gamma", "3"]) == 2
    assert "depth" in capsys.readouterr().err
    bad = tmp_path / "ns.csv"
    bad.write_text("1,0,1\n-1,0,1\n")
    assert main(["run", "--data", str(bad), "--depth", "2", "--alpha", "1", "--gamma", "3"]) == 2
    assert "not linearly separable" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: two stopping rules
        main(["run", "--dataset", "fig4a", "--depth", "2", "--alpha", "1", "--gamma", "3", "--mu", "1"])


def test_console_script_installed():
    out = subprocess.run([sys.executable, "-m", "flowkit.cli", "run", "--dataset", "fig4a", "--depth",
                          "2", "--alpha", "1", "--gamma", "10", "--json"],
                         capture_output=True, text=True, check=True).stdout
    assert json.loads(out)["gamma"] == 10.0


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"flowkit {flowkit.__version__}"
