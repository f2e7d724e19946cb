"""flowkit.analysis.fits: the OLS intervals recover known slopes at their nominal coverage, and
agree with scipy.stats.linregress (an independent implementation)."""
import numpy as np
import pytest
from scipy import stats

from flowkit.analysis.fits import linear_fit, loglog_fit


def test_matches_linregress():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 5, 30)
    y = 1.7 * x - 0.3 + rng.normal(0, 0.2, 30)
    f = linear_fit(x, y)
    ref = stats.linregress(x, y)
    assert f["slope"] == pytest.approx(ref.slope, rel=1e-12)
    assert f["intercept"] == pytest.approx(ref.intercept, rel=1e-12)
    assert f["slope_se"] == pytest.approx(ref.stderr, rel=1e-10)
    assert f["intercept_se"] == pytest.approx(ref.intercept_stderr, rel=1e-10)


def test_coverage_of_known_slope():
    # synthetic data with slope 1 and Gaussian noise: the 95% interval covers the truth
    # in ~95% of 400 replicates (binomial sd ~1.1%)
    rng = np.random.default_rng(1)
    x = np.log(np.logspace(0, 4, 9))
    hits_a = hits_b = 0
    for _ in range(400):
        y = 1.0 * x + 2.5 + rng.normal(0, 0.3, x.size)
        f = linear_fit(x, y)
        hits_a += f["slope_ci"][0] <= 1.0 <= f["slope_ci"][1]
        hits_b += f["intercept_ci"][0] <= 2.5 <= f["intercept_ci"][1]
    assert 0.91 <= hits_a / 400 <= 0.99 and 0.91 <= hits_b / 400 <= 0.99


def test_loglog_exact_power_law():
    x = np.logspace(-1, 3, 7)
    f = loglog_fit(x, 3.0 * x ** 0.5)
    assert f["slope"] == pytest.approx(0.5, abs=1e-12)
    assert f["intercept"] == pytest.approx(np.log(3.0), abs=1e-12)
    assert f["slope_ci"][1] - f["slope_ci"][0] < 1e-10


def test_too_few_points():
    with pytest.raises(ValueError, match=">= 3"):
        linear_fit([1, 2], [1, 2])
    with pytest.raises(ValueError, match="equal"):
        linear_fit([1, 1, 1], [1, 2, 3])
