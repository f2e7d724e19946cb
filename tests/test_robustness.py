"""The robustness battery's quick subset (benchmarks/robustness.py): 29 runs drawn from every
dataset family and across D x alpha, to gamma~ <= 1e6, with defaults.  Each must finish,
report consistent invariants and, where an independent reference runs, agree with it."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import robustness as R  # noqa: E402

CASES = [c for c in R.cases(24, 2, seed=1) if c[4] <= 1e6]


def test_the_subset_spans_the_battery():
    assert len(CASES) >= 25
    assert {c[0] for c in CASES} == set(R.FAMILIES)
    assert {c[2] for c in CASES} == set(R.DEPTHS)
    assert {c[3] for c in CASES} == set(R.ALPHAS)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}-D{c[2]}-a{c[3]:g}-g{c[4]:g}")
def test_battery_case(case):
    row = R.run_case(case, reference=True)
    assert row["status"] == "ok", row.get("why")
    if "error" in row:
        assert row["error"] <= R.TOL, row
