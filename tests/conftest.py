import os

import numpy as np
import pytest
from hypothesis import settings

import flowkit

# The same examples on every run: a landing must not depend on which random cases
# hypothesis happens to draw (explore with HYPOTHESIS_PROFILE=explore).
settings.register_profile("deterministic", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))


@pytest.fixture(scope="session")
def fig4a():
    return flowkit.datasets.load("fig4a")


@pytest.fixture(scope="session")
def kink():
    return flowkit.datasets.load("kink")


def planted_data(rng, n, d, margin=0.05):
    """Random separable data: Gaussian features labelled by a planted separator, with
    points closer than ``margin`` to its hyperplane pushed out of the slab."""
    w_star = rng.standard_normal(d)
    w_star /= np.linalg.norm(w_star)
    X = rng.standard_normal((n, d))
    s = X @ w_star
    X += np.outer(np.where(np.abs(s) < margin, np.sign(s + 1e-300) * margin - s, 0.0), w_star)
    y = np.where(X @ w_star > 0, 1.0, -1.0)
    return X, y
