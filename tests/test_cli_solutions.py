"""`flowkit maxmargin` and `flowkit path`: text and JSON output and errors (exit 2)."""
import json

import numpy as np
import pytest

import flowkit
from flowkit.cli import main
from _reference_maxmargin import q_mu_max_margin


def _json(capsys, argv):
    assert main(argv + ["--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_maxmargin_q_json(capsys):
    out = _json(capsys, ["maxmargin", "--kind", "Q", "--mu", "0.5", "--depth", "3", "--dataset", "kink"])
    X, y = flowkit.datasets.load("kink")
    w, nu, S = q_mu_max_margin(y[:, None] * X, 0.5, 3)
    np.testing.assert_allclose(out["w"], w, rtol=1e-9)
    assert out["support"] == list(S) and out["kkt_residual"] <= 1e-9 and out["unique"] is True


def test_maxmargin_l1_face_text(capsys):
    assert main(["maxmargin", "--kind", "l1", "--dataset", "kink"]) == 0
    text = capsys.readouterr().out
    assert "unique        False" in text and "optimal face  dimension 1" in text
    assert "[0.   0.25 1.  ]" in text


def test_maxmargin_l2d_lists_kkt_points(capsys, tmp_path):
    X, y = flowkit.datasets.load("fig4a")
    path = tmp_path / "d.csv"
    np.savetxt(path, np.column_stack([X, y]), delimiter=",")
    out = _json(capsys, ["maxmargin", "--kind", "l2/D", "--depth", "3", "--data", str(path)])
    objs = [p["objective"] for p in out["kkt_points"]]
    assert objs == sorted(objs) and out["objective"] == objs[0]


def test_path_json_and_text(capsys):
    out = _json(capsys, ["path", "--dataset", "kink", "--mu-range", "10", "0.01"])
    assert [k["support_below"] for k in out["kinks"]] == [[1, 2]]
    assert out["mu"][0] == 10 and out["mu"][-1] == 0.01
    assert main(["path", "--dataset", "kink"]) == 0
    assert "kink          mu* = 0.4053458404" in capsys.readouterr().out


@pytest.mark.parametrize("argv, text", [
    (["maxmargin", "--kind", "Q", "--dataset", "kink"], "needs mu"),
    (["maxmargin", "--kind", "l1", "--mu", "1", "--dataset", "kink"], "applies to kind='Q' only"),
    (["maxmargin", "--kind", "Q", "--mu", "1e9", "--dataset", "kink"], "outside the range"),
    (["path", "--dataset", "kink", "--mu-range", "0.1", "10"], "large to small"),
    (["path", "--dataset", "kink", "--depth", "1"], "depth"),
])
def test_errors_exit_2(capsys, argv, text):
    assert main(argv) == 2
    assert text in capsys.readouterr().err
