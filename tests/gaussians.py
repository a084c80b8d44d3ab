"""Gaussian test data and tools shared by the tests: covariances, exact draws, their statistics."""

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


def covariance_zscores(samples: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Entrywise z-scores of the sample covariance of zero-mean ``samples`` (draws, n).

    ``S_ij = mean_m x_mi x_mj`` has variance ``(C_ij^2 + C_ii C_jj) / M`` for Gaussian
    draws, so the z-scores are close to N(0, 1) entrywise when ``cov`` is right.
    """
    samples = np.asarray(samples, np.float64)
    estimate = samples.T @ samples / len(samples)
    var = np.diag(cov)
    return (estimate - cov) / np.sqrt((cov**2 + np.outer(var, var)) / len(samples))


def covariance_error_null(cov: np.ndarray, n: int, repeats: int = 200, seed: int = 0):
    """Relative Frobenius errors of the sample covariances of ``repeats`` sets of ``n`` draws."""
    found = [x.T @ x / n for x in (draws(cov, n, seed + r) for r in range(repeats))]
    return np.array([np.linalg.norm(s - cov) / np.linalg.norm(cov) for s in found])
