"""Discrepancies, fitted rates and Monte-Carlo floors: the numbers the checks assert on."""

from typing import NamedTuple

import numpy as np
import scipy.stats


class PowerLaw(NamedTuple):
    """``error ~ scale * width**slope``, fitted by least squares on log-log axes."""

    slope: float
    slope_stderr: float
    scale: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.scale * np.asarray(x, np.float64) ** self.slope


def relative_error(estimate: np.ndarray, reference: np.ndarray) -> float:
    """``||estimate - reference|| / ||reference||`` in the Frobenius norm."""
    estimate, reference = np.asarray(estimate), np.asarray(reference)
    return float(np.linalg.norm(estimate - reference) / np.linalg.norm(reference))


def power_law_fit(x: np.ndarray, y: np.ndarray) -> PowerLaw:
    """Fit ``log y = slope log x + log scale`` (``scipy.stats.linregress``)."""
    fit = scipy.stats.linregress(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)))
    return PowerLaw(float(fit.slope), float(fit.stderr), float(np.exp(fit.intercept)))


def covariance_zscores(
    samples: np.ndarray, cov: np.ndarray, mean: np.ndarray | None = None
) -> np.ndarray:
    """Entrywise z-scores of the sample covariance of ``samples`` (draws, n) against ``cov``.

    For Gaussian draws with known mean (zero unless given), the estimate
    ``S_ij = mean_m x_mi x_mj`` has variance ``(C_ij^2 + C_ii C_jj) / M``, so
    ``z_ij = (S_ij - C_ij) / sqrt((C_ij^2 + C_ii C_jj) / M)`` is close to N(0, 1)
    entrywise when ``cov`` is right.
    """
    samples = np.asarray(samples, np.float64)
    centred = samples - (0.0 if mean is None else mean)
    draws = len(samples)
    estimate = centred.T @ centred / draws
    var = np.diag(cov)
    sd = np.sqrt((cov**2 + np.outer(var, var)) / draws)
    return (estimate - cov) / sd
