"""Regression tests for the defects of the adversarial pass (hardening issue): each bad
input gets a flowkit error (a ValueError) naming what is wrong, before any work and
before any file exists; none of these passed before the fix."""
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import flowkit
from flowkit.sweep import ConfigError, load_config, parse_config
from flowkit.sweep.runner import SchedulerError, run_sweep

FIG4A = flowkit.datasets.load("fig4a")
BASE = '[sweep]\ndatasets = ["fig4a"]\ndepths = [2]\nalphas = [1.0]\n'


def _cli(*args, cwd=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "flowkit.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


# 2 -------------------------------------------------------------------- ragged data
@pytest.mark.parametrize("X", [[[1, 2], [3]], [[1.0, 2.0], [3.0, [4.0]]]])
def test_ragged_X_is_a_data_error(X):
    with pytest.raises(flowkit.DataError, match="rectangular"):
        flowkit.integrate(X, [1, 1], depth=2, alpha=1, gamma=10)


# 3 -------------------------------------------------------------------- q_path's work bounded
@pytest.mark.parametrize("kw, words", [(dict(max_step=1e-16), "max_step"),
                                       (dict(max_angle=1e-300), "max_angle")])
def test_q_path_refuses_endless_settings(kw, words):
    X, y = FIG4A
    t0 = time.perf_counter()
    with pytest.raises(flowkit.ParameterError, match=words):
        flowkit.q_path(X, y, mu_range=(10, 1), **kw)
    assert time.perf_counter() - t0 < 5


def test_q_path_stops_at_its_work_bound(monkeypatch):
    from flowkit import qpath
    monkeypatch.setattr(qpath, "MAX_POINTS", 50)
    X, y = FIG4A
    with pytest.raises(flowkit.ParameterError, match="more than 50 solves"):
        flowkit.q_path(X, y, mu_range=(10, 1), max_angle=1e-6, max_step=0.05)


# 4 and smaller items ----------------------------------------------------- data files
def test_one_column_csv_is_not_one_sample(tmp_path):
    f = tmp_path / "one.csv"
    f.write_text("1\n-1\n")
    with pytest.raises(flowkit.DataError, match="1 column"):
        flowkit.datasets.load_file(f)
    r = _cli("run", "--data", str(f), "--depth", "2", "--alpha", "1", "--gamma", "10")
    assert r.returncode == 2 and "1 column" in r.stderr


def test_empty_csv_and_non_zip_npz_give_our_message_only(tmp_path):
    empty, npz = tmp_path / "empty.csv", tmp_path / "bad.npz"
    empty.write_text("")
    npz.write_text("not a zip")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's UserWarning would fail here
        with pytest.raises(flowkit.DataError, match="needs >= 1 row"):
            flowkit.datasets.load_file(empty)
    with pytest.raises(flowkit.DataError, match="not a .npz archive") as info:
        flowkit.datasets.load_file(npz)
    assert "pickle" not in str(info.value)


def test_not_separable_message_names_the_threshold():
    X = np.array([[1.0, 0.0], [-1.0, 1e-12]])
    with pytest.raises(flowkit.NotSeparableError, match=r"not above 1e-09") as info:
        flowkit.integrate(X, [1, 1], depth=2, alpha=1, gamma=10)
    assert "is -0" not in str(info.value)


# 5-9, 12 ------------------------------------------------------------------ sweep configs
def test_non_utf8_config_names_the_line(tmp_path):
    f = tmp_path / "latin.toml"
    f.write_bytes('[sweep]\ndatasets = ["fig4a"] # caf\xe9\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match=r"line 2: not UTF-8"):
        load_config(f)


@pytest.mark.parametrize("extra, key, line, words", [
    ('[[stop]]\ngamma = 10\n[solver]\nrtol = [1e-8, 1e-9]\n', "solver.rtol", 8, "one number"),
    ('[[stop]]\nexcess_l1 = [0.05, 0.1]\ngamma_max = 1e4\n', "stop.excess_l1", 6, "one number"),
    ('[[stop]]\nexcess_l1 = 0.05\ngamma_max = [1e4, 1e5]\n', "stop.gamma_max", 7, "one number"),
    ('[[stop]]\nloss = "abc"\n', "stop.loss", 6, "decimal string"),
    ('[[stop]]\nloss = ["1e-5", "2"]\n', "stop.loss", 6, ">= 1"),
    ('[[stop]]\nloss = []\n', "stop.loss", 6, "empty list"),
    ('[[stop]]\ngamma = 1e300\n', "stop.gamma", 6, "exceeds"),
    ('[[stop]]\nexcess_l1 = 0.05\ngamma_max = 1e300\n', "stop.gamma_max", 7, "exceeds"),
    ('[[stop]]\ngamma = 10\n[solver]\nrtol = 1\n', "solver.rtol", 8, r"\[1e-14, 0.1\)"),
])
def test_config_values_that_cannot_run_are_refused(extra, key, line, words):
    with pytest.raises(ConfigError, match=rf"line {line}: key '{key}': .*{words}"):
        parse_config(BASE + extra)


@pytest.mark.parametrize("sweep, words", [
    ('alphas = [1e300]', "outside the float64 range"),
    ('alphas = {logspace = [0, 400], num = 2}', r"exponents must lie in \[-300, 300\]"),
    ('alphas = {logspace = [0, 4], num = 100000000}', "num must be an integer in"),
])
def test_alphas_that_cannot_run_are_refused(sweep, words):
    text = f'[sweep]\ndatasets = ["fig4a"]\ndepths = [2]\n{sweep}\n[[stop]]\ngamma = 10\n'
    with pytest.raises(ConfigError, match=rf"line 4: key 'sweep.alphas': .*{words}"):
        parse_config(text)


def test_depth_alpha_pairs_checked_together():
    # alpha = 10 is fine at D = 2 and D = 100, but 10^1000 at D = 1000 is not
    text = '[sweep]\ndatasets = ["fig4a"]\ndepths = [2, 1000]\nalphas = [10.0]\n[[stop]]\ngamma = 10\n'
    with pytest.raises(ConfigError, match="alpha = 10.0 at depth 1000"):
        parse_config(text)


def test_non_separable_data_file_refused_before_any_run(tmp_path):
    (tmp_path / "nonsep.csv").write_text("1,0,1\n1,0,-1\n")
    cfg = tmp_path / "c.toml"
    cfg.write_text('[sweep]\ndatasets = ["nonsep.csv"]\ndepths = [2]\nalphas = [1.0]\n[[stop]]\ngamma = 10\n')
    r = _cli("sweep", str(cfg), "--out", str(tmp_path / "o.h5"), "--no-progress")
    assert r.returncode == 2 and "line 2: key 'sweep.datasets'" in r.stderr and "separable" in r.stderr
    assert not any(p.name.startswith("o.h5") for p in tmp_path.iterdir())


def test_too_many_runs_refused_at_once():
    text = ('[sweep]\ndatasets = ["fig4a"]\ndepths = [2, 3]\nalphas = {logspace = [0, 2], num = 600000}\n'
            '[[stop]]\ngamma = 10\n')
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match="1200000 runs"):
        parse_config(text)
    assert time.perf_counter() - t0 < 5


# 10 ---------------------------------------------------------------------- no scheduler
def test_no_scheduler_is_one_line_and_creates_nothing(tmp_path):
    out = tmp_path / "x.h5"
    specs = parse_config(BASE + "[[stop]]\ngamma = 10\n")
    t0 = time.perf_counter()
    with pytest.raises(SchedulerError, match="no Dask scheduler answered at 'tcp://127.0.0.1:1'"):
        run_sweep(specs, out, scheduler="tcp://127.0.0.1:1", progress=False)
    assert time.perf_counter() - t0 < 30
    assert not os.listdir(tmp_path)


# smaller ------------------------------------------------------------------ store check
def test_store_check_of_a_missing_file_errs_on_stderr(tmp_path):
    r = _cli("store", "check", str(tmp_path / "missing.h5"))
    assert r.returncode == 2 and r.stdout == "" and "no such" in r.stderr


# 1 ---------------------------------------------------------------------- data scale
@pytest.mark.parametrize("c", [1e200, 1e150, 1e-7, 1e-20, 1e-200])
@pytest.mark.parametrize("D", [2, 3])
def test_integrate_at_any_data_scale_is_the_covariant_flow(c, D):
    """The flow on (cX, alpha) is the flow on (X, alpha c^(1/D)) with w -> w/c and
    t -> t c^(-2/D) (an identity of the equations): flowkit integrates the former on its
    data scaled by a power of two.  Before, 1e150 and 1e200 failed, 1e-200 raised scipy's
    error, and 1e-20 returned w_hat 1e-2 off with gamma~-consistency 17.7."""
    X, y = FIG4A
    a = flowkit.integrate(X * c, y, depth=D, alpha=2.0, gamma=1e4)
    b = flowkit.integrate(X, y, depth=D, alpha=2.0 * c ** (1.0 / D), gamma=1e4)
    np.testing.assert_allclose(a.w_hat * c, b.w_hat, rtol=1e-10, atol=1e-12 * np.max(np.abs(b.w_hat)))
    np.testing.assert_allclose(a.w * c, b.w, rtol=1e-10, atol=1e-12 * np.max(np.abs(b.w)))
    np.testing.assert_allclose(a.margin, b.margin, rtol=1e-10)
    np.testing.assert_allclose(a.log_time + (2.0 / D) * np.log(c), b.log_time, rtol=0, atol=1e-9)
    np.testing.assert_allclose(a.theta, b.theta - np.log(c) / D, rtol=0, atol=1e-9)
    assert a.stats["invariants"]["gamma_consistency"] < 1e-8
    # the caller's data: margins from X itself, and dense output through the scaled flow
    assert np.min((y[:, None] * X * c) @ a.w[-1]) == pytest.approx(a.margin[-1], rel=1e-10)
    mid = a.at([50.0])
    np.testing.assert_allclose(mid.w_hat[0] * c, b.at([50.0]).w_hat[0], rtol=1e-9)


def test_a_scaled_run_stores_and_loads_with_its_scale(tmp_path):
    X, y = FIG4A
    c = 1e-30
    s = dict(depth=2, alpha=1.0, stopping={"gamma": 1e3})
    a = flowkit.integrate(X * c, y, depth=2, alpha=1.0, gamma=1e3)
    with flowkit.open_store(tmp_path / "s.h5", mode="a") as store:
        rid = store.write(a, X=X * c, y=y, dataset="tiny", settings=s)
    back = flowkit.open_store(tmp_path / "s.h5").load(rid)
    np.testing.assert_array_equal(back.w, a.w)
    np.testing.assert_allclose(back.at([20.0]).w, a.at([20.0]).w, rtol=1e-12)
    assert flowkit.diagnostics.normalized_margins(back)[-1].min() == pytest.approx(1.0, rel=1e-10)


def test_models_that_do_not_scale_refuse_with_the_recipe():
    X, y = FIG4A
    with pytest.raises(flowkit.NumericalRangeError, match=r"max \|x\| = .* outside \[1e-06, 1e\+40\].*covariant"):
        flowkit.integrate(X * 1e-10, y, depth=2, alpha=1, gamma=10, model="linearized")
    # the network flow's range is that of alpha^D times the data's scale
    with pytest.raises(flowkit.NumericalRangeError, match=r"alpha\^depth x max \|x\| ~ 2\^-665"):
        flowkit.integrate(X * 1e-200, y, depth=2, alpha=1e-100, gamma=10)
    a = flowkit.integrate(X * 1e200, y, depth=2, alpha=1e-150, gamma=1e3)  # 1e-300 x 1e200
    b = flowkit.integrate(X, y, depth=2, alpha=1e-50, gamma=1e3)
    np.testing.assert_allclose(a.w_hat * 1e200, b.w_hat, rtol=1e-10, atol=1e-12 * np.max(np.abs(b.w_hat)))


@pytest.mark.parametrize("kind, kw", [("l2", {}), ("l1", {}), ("Q", dict(mu=0.1)),
                                      ("l2/D", dict(depth=3, starts=4))])
@pytest.mark.parametrize("c", [1e200, 1e-200, 1e25, 1e-25])
def test_max_margin_at_any_data_scale(kind, kw, c):
    """Solved on the data scaled by a power of two: w(cX) = w(X)/c exactly up to rounding,
    the certificate recomputed on the caller's data."""
    from flowkit.maxmargin import l1 as L1, l2 as L2, l2d as L2D, q as Q
    X, y = FIG4A
    base = flowkit.max_margin(X, y, kind, **kw)
    kw_c = dict(kw, mu=kw["mu"] / c) if kind == "Q" else kw
    r = flowkit.max_margin(X * c, y, kind, **kw_c)
    np.testing.assert_allclose(r.w * c, base.w, rtol=1e-12, atol=1e-14 * np.max(np.abs(base.w)))
    Xt = y[:, None] * X * c
    # l2's ν ~ 1/c² leaves float64 at c = 1e±200 (inf, or 0 on the support)
    if np.all(np.isfinite(r.dual)) and np.all(r.dual[r.support] > 0):
        res = {"l2": lambda: L2._kkt(Xt, r.w, r.dual), "l1": lambda: L1._kkt(Xt, r.w, r.dual),
               "Q": lambda: Q.kkt_residual(Xt, r.mu, 2, r.w, r.dual),
               "l2/D": lambda: L2D._kkt(Xt, r.w, r.dual, 3)}[kind]()
        assert res <= 1e-9
    assert r.kkt_residual <= 1e-9
