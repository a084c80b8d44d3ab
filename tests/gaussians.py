"""Gaussian test data shared by the tests of the checks, their nulls and the score checks."""

import numpy as np


def cov(n: int = 40) -> np.ndarray:
    """A smooth covariance whose variances span two orders of magnitude, like S_T[C]."""
    x = np.linspace(-3, 3, n)
    scale = 0.1 + x**2
    return np.exp(-0.5 * (x[:, None] - x[None, :]) ** 2) * np.outer(scale, scale) + 1e-6 * np.eye(n)


def draws(cov: np.ndarray, n: int, seed: int) -> np.ndarray:
    """(n, len(cov)) exact draws of N(0, cov)."""
    return np.random.default_rng(seed).multivariate_normal(np.zeros(len(cov)), cov, n)


def estimates(cov: np.ndarray, networks: int, dof: int, seed: int) -> np.ndarray:
    """(networks, n): each network's mean of dof squared exact draws."""
    found = np.random.default_rng(seed).multivariate_normal(
        np.zeros(len(cov)), cov, (networks, dof)
    )
    return np.mean(found**2, axis=1)
