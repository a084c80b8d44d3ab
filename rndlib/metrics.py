"""Discrepancies, fitted rates and Monte-Carlo floors: the numbers the checks assert on."""

import time
from typing import NamedTuple

import jax
import numpy as np
import scipy.spatial.distance
import scipy.special
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


def variance_zscores(estimate: np.ndarray, exact: np.ndarray, dof: int) -> np.ndarray:
    """z-scores of variance estimates from ``dof`` Gaussian degrees of freedom.

    Under the null, ``dof * estimate / exact`` is chi-square with ``dof`` degrees of
    freedom: its relative standard deviation is ``sqrt(2 / dof)``, the Monte-Carlo
    floor of notebook 02. Mapping it through the chi-square CDF and the normal
    quantile gives an exactly N(0, 1) score, without the chi-square's skew that
    ``(estimate / exact - 1) / sqrt(2 / dof)`` keeps at small ``dof``.
    """
    ratio = np.asarray(estimate, np.float64) / np.asarray(exact, np.float64)
    chi2, upper = dof * ratio, ratio > 1
    # Each tail through its own survival function keeps its digits far into the tail.
    z = np.asarray(scipy.special.ndtri(scipy.special.chdtr(dof, np.where(upper, 0.0, chi2))))
    z[upper] = -scipy.special.ndtri(scipy.special.chdtrc(dof, chi2[upper]))
    return z


def variance_mc_floor(dof: int) -> float:
    """``E|estimate / exact - 1|`` of a variance estimate from ``dof`` Gaussian draws.

    The mean absolute relative error that Monte-Carlo noise alone produces: the
    floor under any measured discrepancy of that estimate.
    """
    return float(scipy.stats.chi2(dof).expect(lambda x: abs(x / dof - 1.0)))


def decorrelated_points(cov: np.ndarray, max_r2: float = 0.1) -> np.ndarray:
    """Indices of points whose variance estimates are nearly uncorrelated.

    For Gaussian draws, the variance estimates at two points have correlation
    ``rho^2``, ``rho`` the correlation of the draws. Greedily keep points (largest
    variance first) whose ``rho^2`` with every kept point is below ``max_r2``, so
    that z-scores pooled over them are nearly independent and a KS test on them
    means what it says.
    """
    sd = np.sqrt(np.diag(cov))
    r2 = (cov / np.outer(sd, sd)) ** 2
    kept: list[int] = []
    for i in np.argsort(-sd, kind="stable"):
        if all(r2[i, j] < max_r2 for j in kept):
            kept.append(int(i))
    return np.sort(np.array(kept))


def mean_relative_discrepancy(estimate: np.ndarray, reference: np.ndarray) -> float:
    """``mean_x |estimate(x) / reference(x) - 1|``: the discrepancy of a variance profile."""
    return float(np.mean(np.abs(np.asarray(estimate) / np.asarray(reference) - 1.0)))


def _exact_draws(cov: np.ndarray, draws: int, repeats: int, seed: int):
    """``repeats`` sets of ``draws`` exact N(0, cov) vectors, shape (draws, n) each."""
    evals, evecs = np.linalg.eigh(cov)
    root = evecs * np.sqrt(np.clip(evals, 0.0, None))
    rng = np.random.default_rng(seed)
    for _ in range(repeats):
        yield rng.standard_normal((draws, len(cov))) @ root.T


def covariance_error_null(
    cov: np.ndarray, draws: int, repeats: int = 200, seed: int = 0
) -> np.ndarray:
    """Relative Frobenius errors of sample covariances of exact draws: the Monte-Carlo null.

    ``repeats`` times, ``draws`` vectors are drawn from N(0, cov) and their sample
    covariance (known zero mean) compared with ``cov``. A covariance estimated from
    the same number of draws is consistent with ``cov`` when its error lies within
    this distribution; its mean is the Monte-Carlo floor.
    """
    return np.array(
        [relative_error(x.T @ x / draws, cov) for x in _exact_draws(cov, draws, repeats, seed)]
    )


def variance_discrepancy_null(
    cov: np.ndarray, draws: int, repeats: int = 200, seed: int = 0
) -> np.ndarray:
    """:func:`mean_relative_discrepancy` of variances from exact draws: its Monte-Carlo null.

    ``repeats`` times, ``draws`` vectors are drawn from N(0, cov) and the mean of
    their squares at each input compared with ``diag(cov)``. The inputs share their
    draws, so the discrepancy scatters more than one input's would; its mean is
    :func:`variance_mc_floor` of ``draws``, and its quantiles are the tolerance.
    """
    var = np.diag(cov)
    return np.array(
        [
            mean_relative_discrepancy(np.mean(x**2, axis=0), var)
            for x in _exact_draws(cov, draws, repeats, seed)
        ]
    )


def gaussian_nll(y: np.ndarray, mean: np.ndarray, var: np.ndarray) -> float:
    """Mean over points of ``-log N(y; mean, var)`` (``scipy.stats.norm``)."""
    y, mean, var = (np.ravel(np.asarray(a, np.float64)) for a in (y, mean, var))
    return float(-np.mean(scipy.stats.norm.logpdf(y, mean, np.sqrt(var))))


def interval_coverage(y: np.ndarray, mean: np.ndarray, var: np.ndarray, level: float) -> float:
    """Fraction of ``y`` inside the central ``level`` interval of ``N(mean, var)``.

    A calibrated predictive distribution covers a fraction ``level``; the
    calibration curve is this fraction against ``level``.
    """
    y, mean, var = (np.ravel(np.asarray(a, np.float64)) for a in (y, mean, var))
    half_width = scipy.stats.norm.ppf(0.5 + level / 2) * np.sqrt(var)
    return float(np.mean(np.abs(y - mean) <= half_width))


def auroc(scores: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """AUROC of ``scores`` (..., n) for the inputs marked ``positive`` (n,), over the last axis.

    The Mann-Whitney U of the positives' scores against the others', over their number of
    pairs (``scipy.stats.mannwhitneyu``): ``sklearn.metrics.roc_auc_score`` for one score,
    vectorised over leading axes.
    """
    scores, positive = np.asarray(scores, np.float64), np.asarray(positive, bool)
    u = scipy.stats.mannwhitneyu(
        scores[..., positive], scores[..., ~positive], axis=-1, method="asymptotic"
    ).statistic
    return u / (positive.sum() * (~positive).sum())


def auroc_null_sd(n_negative: int, n_positive: int) -> float:
    """Standard deviation of the AUROC of an uninformative score (Mann-Whitney under H0).

    ``sqrt((n0 + n1 + 1) / (12 n0 n1))``: an AUROC further than a few of these
    above 0.5 separates the two groups by more than chance.
    """
    return float(np.sqrt((n_negative + n_positive + 1) / (12 * n_negative * n_positive)))


def energy_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Energy distance ``2 E|A - B| - E|A - A'| - E|B - B'|`` between two samples (draws, dim).

    Zero only when the two distributions agree (Szekely & Rizzo 2013); computed from
    all pairs, so two finite samples of the same distribution give a small positive
    value, whose size a baseline of two exact samples shows.
    """
    cross = scipy.spatial.distance.cdist(a, b).mean()
    within_a = scipy.spatial.distance.cdist(a, a).mean()
    within_b = scipy.spatial.distance.cdist(b, b).mean()
    return float(2 * cross - within_a - within_b)


def median_wall_time(fn, repeats: int = 3) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls, after one warm-up call.

    The warm-up compiles whatever ``fn`` jits; every call is waited for with
    ``jax.block_until_ready``, since JAX dispatches asynchronously.
    """
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return float(np.median(times))
