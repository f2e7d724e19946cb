"""`flowkit reproduce` on a reduced grid: every figure as PNG and PDF, summary.json with the
issue's schema, REPORT.md, and `--reuse` redrawing from the stored files alone."""
import json
from decimal import Decimal, getcontext

import numpy as np
import pytest

import flowkit
from flowkit.analysis import reproduce as rp
from flowkit.analysis.plan import REDUCED
from flowkit.cli import main
from _reference_maxmargin import q_mu_max_margin

FIGURES = ("fig3", "fig4", "fig5a", "fig5b", "theorems", "depth_law")


@pytest.fixture(scope="module")
def outdir(tmp_path_factory):
    out = tmp_path_factory.mktemp("repro")
    rp.reproduce(out, grid=REDUCED, workers=2, progress=False, log=lambda *a: None)
    return out


def test_files(outdir):
    for name in FIGURES:
        for ext in ("png", "pdf"):
            f = outdir / f"{name}.{ext}"
            assert f.exists() and f.stat().st_size > 10_000, f
    report = (outdir / "REPORT.md").read_text()
    for name in FIGURES:
        assert f"({name}.png)" in report
    assert "10^-8700" in report and "| D | points | a |" in report


def _numbers(x):
    return isinstance(x, (int, float)) or x is None


def test_summary_schema(outdir):
    s = json.loads((outdir / "summary.json").read_text())
    assert set(s) == {"accuracy", "fig5b", "kink_mu0", "theorems", "depth_law", "depth_law_dataset"}
    for row in s["accuracy"]:
        assert set(row) == {"alpha", "depth", "mu", "log10_loss"}
    for D in map(str, REDUCED.fig5_depths):
        row = s["fig5b"][D]
        for k in ("alpha_D", "gamma_5pct", "slope", "slope_ci", "intercept", "intercept_ci"):
            assert k in row
        assert len(row["alpha_D"]) == len(row["gamma_5pct"]) == len(REDUCED.fig5b_alpha_D)
        assert row["slope_ci"][0] <= row["slope"] <= row["slope_ci"][1]
    for k in ("sublinear_l2", "linear_qmu", "superlinear_l1"):
        assert all(_numbers(v) for v in s["theorems"][k]["distance"]) and _numbers(s["theorems"][k]["rate"])
    for D in map(str, REDUCED.depth_law_depths):
        assert set(s["depth_law"][D]) >= {"delta", "mu"}


def test_fig5b_meets_theorem_6_asymptote(outdir):
    # γ̃_5% -> α^D/μ_5%, μ_5% from the Q solver (not from the runs): the ratio falls
    # towards 1 like 1/α^D (1.006-1.015 at α^D = 100 on the full grid)
    s = json.loads((outdir / "summary.json").read_text())
    for D in map(str, REDUCED.fig5_depths):
        ratio = np.array(s["fig5b"][D]["theory"]["ratio"])
        assert np.all(np.diff(ratio) < 0) and np.all(ratio > 1.0) and ratio[-1] < 1.03
        assert set(s["fig5b"][D]["asymptotic"]) >= {"slope", "slope_ci", "intercept", "intercept_ci"}


def test_theorem_rates_match_their_predictions(outdir):
    # -1, -2 and -2(1 - rho_max) = -4/3 on fig3b (rho_max = 1/3 from the ℓ1 LP dual)
    th = json.loads((outdir / "summary.json").read_text())["theorems"]
    assert th["superlinear_l1"]["theory_rate"] == pytest.approx(-4.0 / 3.0, rel=1e-9)
    for key in ("sublinear_l2", "linear_qmu", "superlinear_l1"):
        assert th[key]["rate"] == pytest.approx(th[key]["theory_rate"], abs=0.1), key


def test_accuracy_examples_exact(outdir):
    # log10 eps = -alpha^D / (mu ln 10), against 40-digit decimal arithmetic
    getcontext().prec = 40
    s = json.loads((outdir / "summary.json").read_text())
    for row in s["accuracy"]:
        exact = -(Decimal(row["alpha"]) ** row["depth"] / Decimal(repr(row["mu"]))) / Decimal(10).ln()
        assert row["log10_loss"] == pytest.approx(float(exact), rel=1e-14)
    paper = {(100.0, 0.5): -8700, (100.0, 0.001): -4.34e6, (1.0, 0.001): -434}
    for row in s["accuracy"]:
        assert row["log10_loss"] == pytest.approx(paper[(row["alpha"], row["mu"])], rel=0.002)


def test_kink_of_fig3d(outdir):
    s = json.loads((outdir / "summary.json").read_text())
    mu0 = s["kink_mu0"]["fig3d"]
    X, y = flowkit.datasets.load("fig3d")
    Xt = y[:, None] * X
    above = q_mu_max_margin(Xt, mu0 * (1 + 1e-5), 2)[2]
    below = q_mu_max_margin(Xt, mu0 * (1 - 1e-5), 2)[2]
    assert above != below


def test_reuse_redraws_without_integrating(outdir, monkeypatch):
    before = json.loads((outdir / "summary.json").read_text())
    for name in FIGURES:
        (outdir / f"{name}.png").unlink()

    def forbidden(*a, **k):
        raise AssertionError("--reuse must not integrate or solve")
    monkeypatch.setattr(rp, "run_sweep", forbidden)
    monkeypatch.setattr(rp.solutions, "compute", forbidden)
    monkeypatch.setattr(flowkit, "integrate", forbidden)
    assert main(["reproduce", "--out", str(outdir), "--reuse", "--reduced", "--no-progress"]) == 0
    assert json.loads((outdir / "summary.json").read_text()) == before
    assert all((outdir / f"{name}.png").exists() for name in FIGURES)


def test_reuse_without_results_is_an_error(tmp_path, capsys):
    assert main(["reproduce", "--out", str(tmp_path), "--reuse"]) == 2
    assert "missing" in capsys.readouterr().err


def test_accuracy_command(capsys):
    assert main(["accuracy", "--alpha", "100", "--depth", "2", "--mu", "0.5"]) == 0
    assert "10^-8685.89" in capsys.readouterr().out
