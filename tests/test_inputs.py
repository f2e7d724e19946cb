"""Bad input: a flowkit error (a ValueError) naming the problem, raised before any work."""
import numpy as np
import pytest

import flowkit
from flowkit import (DataError, FlowkitError, NotSeparableError, NumericalRangeError,
                     ParameterError, StoppingRuleError)

X0 = [[0.6, 0.7, 0.8], [0.7, 0.6, 0.6], [1.0, 0.5, 0.5]]
Y0 = [1, 1, 1]


def run(X=X0, y=Y0, **kw):
    kw.setdefault("depth", 2)
    kw.setdefault("alpha", 1.0)
    if not {"gamma", "loss", "mu"} & set(kw):
        kw["gamma"] = 10.0
    return flowkit.integrate(X, y, **kw)


@pytest.mark.parametrize("exc", [DataError, NotSeparableError, ParameterError,
                                 StoppingRuleError, NumericalRangeError])
def test_hierarchy(exc):
    assert issubclass(exc, FlowkitError) and issubclass(exc, ValueError)


@pytest.mark.parametrize("X, y, exc, words", [
    ([[0.6, np.nan, 0.8]], [1], DataError, "NaN or inf"),
    ([[0.6, np.inf, 0.8]], [1], DataError, "NaN or inf"),
    (X0, [1, 0, 1], DataError, r"labels must be -1 or \+1; found \[0.0\]"),
    (X0, [1, 2, 1], DataError, "labels"),
    (X0, [1, 1], DataError, "shape mismatch"),
    ([0.6, 0.7], [1, 1], DataError, "2-d"),
    (X0, [[1, 1, 1]], DataError, "1-d"),
    (np.zeros((0, 3)), [], DataError, "N = 0"),
    ([["a", "b"]], [1], DataError, "numeric"),
    ([[1.0, 0.0], [-1.0, 0.0]], [1, 1], NotSeparableError, "not linearly separable"),
    ([[1.0], [2.0]], [1, -1], NotSeparableError, "not linearly separable"),
    ([[0.0, 0.0]], [1], NotSeparableError, "not linearly separable"),
])
def test_bad_data(X, y, exc, words):
    with pytest.raises(exc, match=words):
        run(X, y)


@pytest.mark.parametrize("kw, exc, words", [
    ({"depth": 1}, ParameterError, "depth"),
    ({"depth": 2.5}, ParameterError, "depth"),
    ({"depth": "3"}, ParameterError, "depth"),
    ({"depth": True}, ParameterError, "depth"),
    ({"alpha": 0.0}, ParameterError, "alpha"),
    ({"alpha": -1.0}, ParameterError, "alpha"),
    ({"alpha": np.nan}, ParameterError, "alpha"),
    ({"alpha": 1e-300, "depth": 3}, NumericalRangeError, "alpha\\^depth"),
    ({"gamma": 0.0}, StoppingRuleError, "positive"),
    ({"gamma": -3.0}, StoppingRuleError, "positive"),
    ({"gamma": 1e31}, NumericalRangeError, "exceeds"),
    ({"gamma": 1.0, "mu": 0.5}, StoppingRuleError, "exactly one"),
    ({"gamma": 1.0, "loss": "1e-5"}, StoppingRuleError, "exactly one"),
    ({"gamma": None, "loss": "1.5"}, StoppingRuleError, "<= 0"),
    ({"gamma": None, "loss": "abc"}, StoppingRuleError, "decimal"),
    ({"gamma": None, "loss": -1e-3}, StoppingRuleError, "positive"),
    ({"gamma": None, "mu": 0.0}, StoppingRuleError, "mu"),
    ({"method": "Euler"}, ParameterError, "unknown method"),
    ({"rtol": 0.5}, ParameterError, "rtol"),
    ({"atol": [1.0, 2.0]}, ParameterError, "atol"),
    ({"save_at": [100.0]}, StoppingRuleError, "save_at"),
    ({"save_at": [np.nan]}, StoppingRuleError, "save_at"),
    ({"points_per_decade": 0}, StoppingRuleError, "points_per_decade"),
])
def test_bad_parameters(kw, exc, words):
    with pytest.raises(exc, match=words):
        run(**kw)


def test_no_stopping_rule():
    with pytest.raises(StoppingRuleError, match="got none"):
        flowkit.integrate(X0, Y0, depth=2, alpha=1.0)


def test_errors_come_before_any_integration(monkeypatch):
    # the driver must not be reached: validation happens first
    from flowkit import flow

    def boom(*a, **k):
        raise AssertionError("integration started")
    monkeypatch.setattr(flow.Flow, "advance", boom)
    with pytest.raises(StoppingRuleError):
        flowkit.integrate(X0, Y0, depth=2, alpha=1.0, gamma=1.0, mu=1.0)
    with pytest.raises(NotSeparableError):
        flowkit.integrate([[1.0], [1.0]], [1, -1], depth=2, alpha=1.0, gamma=1.0)


def test_bad_files(tmp_path):
    bad = tmp_path / "x.csv"
    bad.write_text("1,2,1\n3,oops,1\n")
    with pytest.raises(DataError, match="x.csv"):
        flowkit.datasets.load_file(bad)
    corrupt = tmp_path / "x.npz"
    corrupt.write_bytes(b"not a zip file at all")
    with pytest.raises(DataError, match="x.npz"):
        flowkit.datasets.load_file(corrupt)
    wrong = tmp_path / "w.npz"
    np.savez(wrong, A=np.ones((2, 2)))
    with pytest.raises(DataError, match="'X' and 'y'"):
        flowkit.datasets.load_file(wrong)
    with pytest.raises(DataError, match="not found"):
        flowkit.datasets.load_file(tmp_path / "missing.csv")
    (tmp_path / "x.txt").write_text("1 2 1\n")
    with pytest.raises(DataError, match="unsupported"):
        flowkit.datasets.load_file(tmp_path / "x.txt")
    with pytest.raises(DataError, match="unknown dataset"):
        flowkit.datasets.load("fig9z")


@pytest.mark.parametrize("kw", [{"gamma": True}, {"gamma": None, "mu": True}, {"alpha": True},
                                {"alpha": "2"}, {"gamma": "5"}, {"gamma": None, "loss": True}])
def test_bools_and_strings_are_not_numbers(kw):
    with pytest.raises(FlowkitError):
        run(**kw)


@pytest.mark.parametrize("X, y", [(X0, ["1", "1", "1"]), (np.array(X0) * (1 + 1j), Y0)])
def test_non_real_data_rejected(X, y):
    with pytest.raises(DataError, match="real numeric"):
        run(X, y)


def test_target_below_start_rejected():
    for kw in ({"gamma": 1e-16}, {"gamma": None, "loss": "0.99999999999999999999"},
               {"gamma": None, "mu": 1.0, "depth": 10, "alpha": 1e-3}):
        with pytest.raises(NumericalRangeError, match="below"):
            run(**kw)


def test_numpy_scalars_accepted():
    tr = run(gamma=None, loss=np.float64(1e-5), rtol=np.float32(1e-8), alpha=np.float64(1.0))
    assert tr.gamma[-1] == pytest.approx(5 * np.log(10), rel=1e-15)


@pytest.mark.parametrize("kw", [{"save_at": [[1.0, 2.0]]}, {"points_per_decade": 10**9}])
def test_save_options_bounded(kw):
    with pytest.raises(StoppingRuleError):
        run(**kw)
