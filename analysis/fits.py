"""Scaling-law fits: ordinary least squares of y = a x + b with t-based confidence intervals.

Fig. 5(b) fits log γ̃_5% = a log α^D + b (the paper: a = 1, b falling with depth); the
theorem checks fit log distance = rate · log α + c; the depth law fits log(1/μ) against
1/δ (D = 2) or log(1/δ) (D > 2).  With n points, residual variance s² = RSS/(n-2) and
Sxx = Σ(x - x̄)², the standard errors are se(a) = s/√Sxx and se(b) = s √(1/n + x̄²/Sxx),
and the intervals are estimate ± t_{n-2, (1+level)/2} · se (exact under Gaussian errors).
"""
from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["linear_fit", "loglog_fit"]


def linear_fit(x, y, level=0.95):
    """OLS fit of y = slope x + intercept with ``level`` confidence intervals (module
    docstring).  Returns a dict of floats: slope, slope_ci [lo, hi], intercept,
    intercept_ci, slope_se, intercept_se, r2, n."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = x.size
    if n < 3:
        raise ValueError(f"a fit with confidence intervals needs >= 3 finite points; got {n}")
    xm, ym = x.mean(), y.mean()
    sxx = float(np.sum((x - xm) ** 2))
    if sxx == 0:
        raise ValueError("all x are equal: the slope is undefined")
    slope = float(np.sum((x - xm) * (y - ym)) / sxx)
    intercept = float(ym - slope * xm)
    resid = y - (slope * x + intercept)
    s2 = float(np.sum(resid ** 2)) / (n - 2)
    se_a = (s2 / sxx) ** 0.5
    se_b = (s2 * (1.0 / n + xm * xm / sxx)) ** 0.5
    t = float(stats.t.ppf(0.5 + level / 2, n - 2))
    tss = float(np.sum((y - ym) ** 2))
    return dict(slope=slope, slope_ci=[slope - t * se_a, slope + t * se_a], slope_se=se_a,
                intercept=intercept, intercept_ci=[intercept - t * se_b, intercept + t * se_b],
                intercept_se=se_b, r2=1.0 - float(np.sum(resid ** 2)) / tss if tss > 0 else 1.0,
                n=int(n), level=level)


def loglog_fit(x, y, level=0.95):
    """``linear_fit`` of log y against log x (natural logs): y = e^b x^a."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = (x > 0) & (y > 0)
    return linear_fit(np.log(x[ok]), np.log(y[ok]), level)
