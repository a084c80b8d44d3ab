"""Discrepancies, fitted rates and Monte-Carlo floors: the numbers the checks assert on."""

import time
from typing import NamedTuple

import jax
import numpy as np
import scipy.spatial.distance
import scipy.special
import scipy.stats

from rndlib import conditioning, validate


class PowerLaw(NamedTuple):
    """``error ~ scale * width**slope``, fitted by least squares on log-log axes.

    ``dof`` is the fit's residual degrees of freedom (points - 2), those of its t test.
    """

    slope: float
    slope_stderr: float
    scale: float
    dof: int

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.scale * np.asarray(x, np.float64) ** self.slope

    def slope_pvalue(self, slope: float, alternative: str) -> float:
        """The t test's p-value of the fitted slope against ``slope``.

        Exact when the log errors scatter normally, with one variance, about the law.

        Args:
            slope: the slope of the null hypothesis.
            alternative: ``"less"`` (the fitted slope falls below ``slope``) or
                ``"two-sided"``.
        """
        validate.finite("slope", slope)
        validate.choice("alternative", alternative, ("less", "two-sided"))
        if self.dof < 1 or not self.slope_stderr > 0:
            raise ValueError(f"a slope's t test needs dof >= 1 and a stderr > 0, got {self}")
        t = (self.slope - slope) / self.slope_stderr
        if alternative == "less":
            return float(scipy.stats.t.cdf(t, self.dof))
        return float(2 * scipy.stats.t.sf(abs(t), self.dof))


def _paired(estimate: object, reference: object) -> tuple[np.ndarray, np.ndarray]:
    """Both as finite float64 arrays of the reference's shape, else ValueError naming one."""
    ndim = np.ndim(reference)
    reference = validate.array("reference", reference, tuple(f"n{i}" for i in range(ndim)))
    return np.asarray(validate.array("estimate", estimate, reference.shape)), np.asarray(reference)


def relative_error(estimate: np.ndarray, reference: np.ndarray) -> float:
    """``||estimate - reference|| / ||reference||`` in the Frobenius norm.

    Raises:
        ValueError: naming the argument, for arrays of different shapes, non-finite
            entries or a reference that is all zero.
    """
    estimate, reference = _paired(estimate, reference)
    norm = np.linalg.norm(reference)
    if not norm > 0:
        raise ValueError("reference must not be all zero (the error is relative to it)")
    return float(np.linalg.norm(estimate - reference) / norm)


def power_law_fit(x: np.ndarray, y: np.ndarray) -> PowerLaw:
    """Fit ``log y = slope log x + log scale`` (``scipy.stats.linregress``).

    Two points are fitted exactly, with a standard error of 0: a standard error that
    means something needs three.

    Raises:
        ValueError: naming the argument, for ``x`` and ``y`` that are not 1-D of one
            length, hold fewer than two points, or are not finite and positive.
    """
    n = len(validate.array("x", x, ("n",)))
    validate.array("y", y, (n,))
    if n < 2:
        raise ValueError(f"x and y must hold at least 2 points to fit a slope, got {n}")
    for name, values in (("x", x), ("y", y)):
        if np.min(values) <= 0:
            raise ValueError(f"{name} must be positive (log-log axes), got {np.min(values):.3g}")
    fit = scipy.stats.linregress(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)))
    return PowerLaw(float(fit.slope), float(fit.stderr), float(np.exp(fit.intercept)), n - 2)


def variance_zscores(estimate: np.ndarray, exact: np.ndarray, dof: int) -> np.ndarray:
    """z-scores of variance estimates from ``dof`` Gaussian degrees of freedom.

    Under the null, ``dof * estimate / exact`` is chi-square with ``dof`` degrees of
    freedom: its relative standard deviation is ``sqrt(2 / dof)``, the Monte-Carlo
    floor of notebook 02. Mapping it through the chi-square CDF and the normal
    quantile gives an exactly N(0, 1) score, without the chi-square's skew that
    ``(estimate / exact - 1) / sqrt(2 / dof)`` keeps at small ``dof``.

    ``estimate`` and ``exact`` broadcast against each other (numpy's rules).

    Raises:
        ValueError: naming the argument, if ``dof`` is not a positive integer, or
            ``estimate`` and ``exact`` do not broadcast, are not finite, or hold a
            negative estimate or a variance that is not positive.
    """
    validate.integer("dof", dof)
    estimate, exact = np.asarray(estimate, np.float64), np.asarray(exact, np.float64)
    try:
        np.broadcast_shapes(estimate.shape, exact.shape)
    except ValueError:
        raise ValueError(
            f"estimate {estimate.shape} and exact {exact.shape} must broadcast together"
        ) from None
    for name, values in (("estimate", estimate), ("exact", exact)):
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{name} must be finite")
    if np.any(exact <= 0):
        raise ValueError(f"exact must be positive (variances), got minimum {np.min(exact):.3g}")
    if np.any(estimate < 0):
        raise ValueError(f"estimate must be non-negative, got minimum {np.min(estimate):.3g}")
    ratio = estimate / exact
    chi2, upper = dof * ratio, ratio > 1
    # Each tail through its own survival function keeps its digits far into the tail.
    z = np.asarray(scipy.special.ndtri(scipy.special.chdtr(dof, np.where(upper, 0.0, chi2))))
    z[upper] = -scipy.special.ndtri(scipy.special.chdtrc(dof, chi2[upper]))
    return z


def variance_mc_floor(dof: int) -> float:
    """``E|estimate / exact - 1|`` of a variance estimate from ``dof`` Gaussian draws.

    The mean absolute relative error that Monte-Carlo noise alone produces: the
    floor under any measured discrepancy of that estimate.

    Raises:
        ValueError: if ``dof`` is not a positive integer.
    """
    validate.integer("dof", dof)
    return float(scipy.stats.chi2(dof).expect(lambda x: abs(x / dof - 1.0)))


def decorrelated_points(cov: np.ndarray, max_r2: float = 0.1) -> np.ndarray:
    """Indices of points whose variance estimates are nearly uncorrelated.

    For Gaussian draws, the variance estimates at two points have correlation
    ``rho^2``, ``rho`` the correlation of the draws. Greedily keep points (largest
    variance first) whose ``rho^2`` with every kept point is below ``max_r2``, so
    that z-scores pooled over them are nearly independent and a KS test on them
    means what it says.

    Raises:
        ValueError: naming the argument, for a ``cov`` that is not a finite square matrix
            or a ``max_r2`` that is not a positive number.
    """
    validate.square("cov", cov)
    validate.finite("max_r2", max_r2, above=0.0)
    sd = np.sqrt(np.diag(cov))
    r2 = (cov / np.outer(sd, sd)) ** 2
    kept: list[int] = []
    for i in np.argsort(-sd, kind="stable"):
        if all(r2[i, j] < max_r2 for j in kept):
            kept.append(int(i))
    return np.sort(np.array(kept))


def mean_relative_discrepancy(estimate: np.ndarray, reference: np.ndarray) -> float:
    """``mean_x |estimate(x) / reference(x) - 1|``: the discrepancy of a variance profile.

    Raises:
        ValueError: naming the argument, for arrays of different shapes, non-finite
            entries or a reference that is not positive everywhere.
    """
    estimate, reference = _paired(estimate, reference)
    if np.any(reference <= 0):
        raise ValueError(f"reference must be positive, got minimum {np.min(reference):.3g}")
    return float(np.mean(np.abs(estimate / reference - 1.0)))


def variance_discrepancy_null(
    cov: np.ndarray, draws: int, repeats: int = 200, seed: int = 0
) -> np.ndarray:
    """:func:`mean_relative_discrepancy` of variances from exact draws: its Monte-Carlo null.

    ``repeats`` times, ``draws`` vectors are drawn from N(0, cov) and the mean of
    their squares at each input compared with ``diag(cov)``. The inputs share their
    draws, so the discrepancy scatters more than one input's would; its mean is
    :func:`variance_mc_floor` of ``draws``, and its quantiles are the tolerance.

    Raises:
        ValueError: naming the argument, for a ``cov`` that is not a finite symmetric
            square matrix, ``draws`` or ``repeats`` not a positive integer, or a negative or
            non-integer ``seed``.
    """
    n = len(validate.square("cov", cov, symmetric=True))
    validate.integer("draws", draws)
    validate.integer("repeats", repeats)
    sets = conditioning.gaussian_samples(np.zeros(n), cov, (repeats, draws), seed, root="eigen")
    return np.array([mean_relative_discrepancy(np.mean(x**2, axis=0), np.diag(cov)) for x in sets])


def _predictive(y: np.ndarray, mean: np.ndarray, var: np.ndarray, *, zero_var: bool) -> None:
    """Check targets and a Gaussian prediction: finite, of one shape, ``var >= 0`` (``> 0``
    unless ``zero_var``)."""
    shape = np.shape(y)
    validate.array("y", y, shape)
    validate.array("mean", mean, shape)
    lowest = np.min(validate.array("var", var, shape), initial=np.inf)
    if lowest < 0 or (lowest == 0 and not zero_var):
        bound = "non-negative" if zero_var else "positive"
        raise ValueError(f"var must be {bound}, got {lowest:.3g}")


def gaussian_nll(y: np.ndarray, mean: np.ndarray, var: np.ndarray) -> float:
    """Mean over points of ``-log N(y; mean, var)`` (``scipy.stats.norm``).

    Raises:
        ValueError: naming the argument, for ``y``, ``mean`` and ``var`` that are not
            finite arrays of one shape, or a ``var`` that is not positive.
    """
    _predictive(y, mean, var, zero_var=False)
    y, mean, var = (np.ravel(np.asarray(a, np.float64)) for a in (y, mean, var))
    return float(-np.mean(scipy.stats.norm.logpdf(y, mean, np.sqrt(var))))


def interval_coverage(y: np.ndarray, mean: np.ndarray, var: np.ndarray, level: float) -> float:
    """Fraction of ``y`` inside the central ``level`` interval of ``N(mean, var)``.

    A calibrated predictive distribution covers a fraction ``level``; the
    calibration curve is this fraction against ``level``.

    Raises:
        ValueError: naming the argument, for ``y``, ``mean`` and ``var`` that are not
            finite arrays of one shape, a negative ``var``, or a ``level`` outside (0, 1).
    """
    validate.finite("level", level, above=0.0, below=1.0)
    _predictive(y, mean, var, zero_var=True)
    y, mean, var = (np.ravel(np.asarray(a, np.float64)) for a in (y, mean, var))
    half_width = scipy.stats.norm.ppf(0.5 + level / 2) * np.sqrt(var)
    return float(np.mean(np.abs(y - mean) <= half_width))


def auroc(scores: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """AUROC of ``scores`` (..., n) for the inputs marked ``positive`` (n,), over the last axis.

    The Mann-Whitney U of the positives' scores against the others', over their number of
    pairs (``scipy.stats.mannwhitneyu``): ``sklearn.metrics.roc_auc_score`` for one score,
    vectorised over leading axes.

    Raises:
        ValueError: for a ``positive`` that is not one flag per score of the last axis, or
            that marks none or all of them (an AUROC needs both groups).
    """
    scores, positive = np.asarray(scores, np.float64), np.asarray(positive, bool)
    if scores.ndim == 0 or positive.shape != scores.shape[-1:]:
        raise ValueError(
            f"positive must hold one flag per score on the last axis of scores {scores.shape}, "
            f"got shape {positive.shape}"
        )
    if positive.all() or not positive.any():
        raise ValueError(f"positive must mark some inputs and not all, got {positive.sum()}")
    u = scipy.stats.mannwhitneyu(
        scores[..., positive], scores[..., ~positive], axis=-1, method="asymptotic"
    ).statistic
    return u / (positive.sum() * (~positive).sum())


def auroc_null_sd(n_negative: int, n_positive: int) -> float:
    """Standard deviation of the AUROC of an uninformative score (Mann-Whitney under H0).

    ``sqrt((n0 + n1 + 1) / (12 n0 n1))``: an AUROC further than a few of these
    above 0.5 separates the two groups by more than chance.

    Raises:
        ValueError: naming the argument, if a group size is not a positive integer.
    """
    validate.integer("n_negative", n_negative)
    validate.integer("n_positive", n_positive)
    return float(np.sqrt((n_negative + n_positive + 1) / (12 * n_negative * n_positive)))


def energy_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Energy distance ``2 E|A - B| - E|A - A'| - E|B - B'|`` between two samples (draws, dim).

    Zero only when the two distributions agree (Szekely & Rizzo 2013); computed from
    all pairs, so two finite samples of the same distribution give a small positive
    value, whose size a baseline of two exact samples shows.

    Raises:
        ValueError: naming the argument, for samples that are not finite 2-D arrays of
            one dimension.
    """
    a = validate.array("a", a, ("draws", "dim"))
    b = validate.array("b", b, ("draws", a.shape[1]))
    cross = scipy.spatial.distance.cdist(a, b).mean()
    within_a = scipy.spatial.distance.cdist(a, a).mean()
    within_b = scipy.spatial.distance.cdist(b, b).mean()
    return float(2 * cross - within_a - within_b)


def median_wall_time(fn, repeats: int = 3) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls, after one warm-up call.

    The warm-up compiles whatever ``fn`` jits; every call is waited for with
    ``jax.block_until_ready``, since JAX dispatches asynchronously.

    Raises:
        ValueError: if ``repeats`` is not a positive integer.
    """
    validate.integer("repeats", repeats)
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return float(np.median(times))
