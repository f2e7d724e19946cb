"""Stopping rules map exactly onto the target gamma~ (checked against mpmath)."""
import math

import mpmath
import pytest

import flowkit
from flowkit.integrator import save_grid
from flowkit.stopping import resolve_stopping_rule


@pytest.mark.parametrize("text", ["1e-8700", "3.2e-4000000", "0.5", "7.25E-12", "1e-300", "2e-400"])
def test_loss_string_parsed_exactly(text):
    mpmath.mp.dps = 40
    expected = -mpmath.log(mpmath.mpf(text))
    got = flowkit.gamma_from_loss(text)
    assert abs(got - float(expected)) <= 2e-16 * float(expected)


def test_paper_accuracy_examples():
    # math.md: alpha=100, D=2, mu=0.5 -> eps = e^-20000 ~ 10^-8686; mu=1e-3 -> 10^-(4.34e6)
    lad = 2 * math.log(100.0)
    assert resolve_stopping_rule(mu=0.5, log_alpha_D=lad).gamma == pytest.approx(20000.0, rel=1e-14)
    g = resolve_stopping_rule(mu=1e-3, log_alpha_D=lad).gamma
    assert g / math.log(10) == pytest.approx(4.342944819e6, rel=1e-9)
    g = resolve_stopping_rule(mu=1e-3, log_alpha_D=0.0).gamma
    assert round(g / math.log(10)) == 434


def test_loss_as_float_and_string_agree():
    assert flowkit.gamma_from_loss(1e-5) == flowkit.gamma_from_loss("1e-5")


def test_save_grid_density_and_extras():
    grid = save_grid(1e6, 20, extra=[123.456])
    assert grid[-1] == 1e6 and grid[0] == pytest.approx(1e-3)
    assert 123.456 in grid
    decades = math.log10(1e6 / 1e-3)
    assert len(grid) >= 20 * decades
    assert max(__import__("numpy").diff(__import__("numpy").log10(grid))) <= 1 / 20 + 1e-12
