"""Simulated nulls and p-values, and the :class:`Check` that every check returns.

A statistic of a run is held against its law under the claim (:mod:`rndlib.checks` and
:mod:`rndlib.scores` name the statistics). ``whitened_scale`` and ``leading_scale`` have an
exact law: under the claim the whitened coordinates are independent N(0, 1), so their mean
square over ``m`` of them is chi^2(m) / m, and they are held against it. The others have no
textbook null here: the test inputs share their draws, so their z-scores are correlated.
Their null is simulated: ``repeats`` sets of exact draws of N(0, C), of the same size, give
each statistic's distribution under the claim; a normal fit to it (``mean_z``, two-sided)
or, for the upper tails, a Pearson type III fit to its logarithm (a log-normal with the
logs' own skew where that skew is positive, never a lighter tail than the log-normal's)
gives p-values in its far tail. Moment-matched gamma upper tails and a normal
``whitened_scale`` were anti-conservative: on notebook 02's general-target covariance, 128
draws at level 8.3e-4, they rejected 1.0e-3 to 1.8e-3 of 20,000 exact sets at each of four
null seeds. A plain log-normal still let through about twice its level on notebook 03's
S_T[Theta] (``mean_z2``, 128 draws: 1.8 times a level of 2e-4 to 2e-3, fitted on 1,000 and
tested on 19,000 null sets, ten times), the skewed one 0.05 to 0.5 times. Where the null is
cheap enough to simulate far beyond the level (:func:`rndlib.checks.chi2_law_check`),
p-values are counts among the simulated sets instead of a fitted tail (:func:`counted_test`;
its bound, :func:`counted_bound_test`, holds the level for the one null a run draws).
A mean over many inputs, whose null is nearly normal, is read by a prediction interval
(:func:`prediction_test`, exact for a normal null of any size).

A :class:`Check` holds one check's statistics and its verdict (Bonferroni over the
statistics, as :mod:`rndlib.checks` says). Covariances, their square roots and the
simulated nulls are cached by what they depend on (:func:`memo`): a notebook checks several
estimates and decoys against one covariance, and :mod:`rndlib.power` checks thousands.
"""

import dataclasses
import hashlib
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import scipy.special
import scipy.stats

from rndlib import metrics, validate

#: A covariance (symmetric within ``validate.SYMMETRY_RTOL``) is positive semi-definite if no
#: eigenvalue is below ``-PSD_RTOL`` times the largest (float64 round-off of an
#: ill-conditioned posterior covariance stays far below it).
PSD_RTOL = 1e-6


class NullTest(NamedTuple):
    """One statistic, its p-value under the simulated null, and that null's mean and 99%."""

    statistic: float
    pvalue: float
    null_mean: float
    q99: float


@dataclasses.dataclass(frozen=True)
class Check:
    """Statistics of one set of estimates against one reference covariance.

    ``scale`` is the constant the reference was multiplied by (1 unless fitted: the
    most favourable constant for a decoy such as ``c * S_T[kappa]``).

    Raises:
        ValueError: for no statistics (``tests``), a statistic or p-value that is not
            finite (naming it), or a level outside (0, 1).
    """

    tests: dict[str, NullTest]
    level: float
    scale: float = 1.0

    def __post_init__(self):
        if not self.tests:
            raise ValueError("tests must hold at least one statistic, got none")
        for name, t in self.tests.items():
            if not (np.isfinite(t.statistic) and np.isfinite(t.pvalue)):
                raise ValueError(f"tests[{name!r}] is not finite: {t.statistic}, p = {t.pvalue}")
        check_level(self.level)

    @property
    def pvalue(self) -> float:
        """The smallest p-value, Bonferroni-corrected for the number of statistics."""
        return min(1.0, len(self.tests) * min(t.pvalue for t in self.tests.values()))

    @property
    def passed(self) -> bool:
        """True if no statistic rejects the reference at the check's level."""
        return self.pvalue > self.level

    def report(self) -> dict:
        """A JSON-ready summary: each statistic with its null's mean and 99% quantile."""
        return {
            "passed": self.passed,
            "rejected": not self.passed,
            "pvalue": self.pvalue,
            "level": self.level,
            "scale": self.scale,
            **{
                name: {
                    "statistic": t.statistic,
                    "pvalue": t.pvalue,
                    "null_mean": t.null_mean,
                    "q99": t.q99,
                }
                for name, t in self.tests.items()
            },
        }


#: The cache of :func:`memo`: results by what they depend on (see the module's docstring).
_MEMO: dict[tuple, object] = {}


def digest(*arrays: np.ndarray) -> str:
    """A cache key for arrays: the SHA-256 of their bytes and shapes."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes() + str(a.shape).encode())
    return h.hexdigest()


def memo(key: tuple, compute: Callable[[], object]):
    """``compute()``, once per ``key``; arrays are made read-only."""
    if key not in _MEMO:
        value = compute()
        for a in value if isinstance(value, tuple) else (value,):  # NamedTuples too
            if isinstance(a, np.ndarray):
                a.setflags(write=False)
        _MEMO[key] = value
    return _MEMO[key]


class Spectrum(NamedTuple):
    """A covariance's digest (its cache key), eigenvalues, eigenvectors and square root."""

    key: str
    evals: np.ndarray
    evecs: np.ndarray
    root: np.ndarray


def spectrum(name: str, cov: object) -> tuple[np.ndarray, Spectrum]:
    """``cov`` as a float64 array, and its spectrum (cached).

    Raises:
        ValueError: naming ``name``, if ``cov`` is not a finite square matrix, not
            symmetric within ``validate.SYMMETRY_RTOL`` or not PSD within ``PSD_RTOL``.
    """
    cov = np.asarray(validate.square(name, cov, symmetric=True))
    if len(cov) == 0:
        raise ValueError(f"{name} must be a square matrix, got shape {cov.shape}")

    def compute():
        evals, evecs = np.linalg.eigh((cov + cov.T) / 2)
        keep = evals > 1e-12 * evals[-1]
        return Spectrum(key, evals, evecs, evecs[:, keep] * np.sqrt(evals[keep]))

    key = digest(cov)
    spectrum = memo(("spectrum", key), compute)
    evals = spectrum.evals
    if evals[-1] <= 0 or evals[0] < -PSD_RTOL * evals[-1]:
        raise ValueError(
            f"{name} must be positive semi-definite: eigenvalues {evals[0]:.3g} to {evals[-1]:.3g}"
        )
    return cov, spectrum


def square_root(cov: np.ndarray) -> np.ndarray:
    """A low-rank square root of a PSD matrix (float64): ``root @ root.T`` is ``cov``."""
    return spectrum("cov", cov)[1].root


def decorrelated(cov: np.ndarray, key: str, max_r2: float) -> np.ndarray:
    """:func:`rndlib.metrics.decorrelated_points` of ``cov`` (digest ``key``; cached)."""
    return memo(
        ("decorrelated", key, max_r2), lambda: metrics.decorrelated_points(cov, max_r2=max_r2)
    )


def profile_statistics(estimate: np.ndarray, var: np.ndarray, dof: int) -> np.ndarray:
    """(..., 2): mean and mean square over inputs of the variance z-scores."""
    z = np.clip(metrics.variance_zscores(estimate, var, dof), -40.0, 40.0)
    return np.stack([z.mean(axis=-1), (z**2).mean(axis=-1)], axis=-1)


def lrt(samples: np.ndarray) -> np.ndarray:
    """``tr S - log det S - k`` of the known-mean sample covariance of (..., draws, k)."""
    s = np.swapaxes(samples, -1, -2) @ samples / samples.shape[-2]
    _, log_det = np.linalg.slogdet(s)
    return np.trace(s, axis1=-2, axis2=-1) - log_det - samples.shape[-1]


def _number(x) -> float | np.ndarray:
    """A float, or an array of them when a check tries many scales at once."""
    return float(x) if np.ndim(x) == 0 else np.asarray(x, np.float64)


def _pvalue(value: float, null: np.ndarray, two_sided: bool) -> float:
    """Tail p-value from a normal (two-sided) or skewed log-normal (upper tail) fit to the null."""
    if two_sided:
        mean, sd = float(np.mean(null)), float(np.std(null, ddof=1))
        return _number(2 * scipy.stats.norm.sf(np.abs(value - mean) / sd))
    logs = np.log(null)  # a log-normal, with the logs' skew where it widens the upper tail
    centred = logs - np.mean(logs)  # (a Pearson type III law of the logs)
    skew = max(0.0, float(np.mean(centred**3) / np.mean(centred**2) ** 1.5))
    sf = scipy.stats.pearson3.sf(np.log(value), skew, np.mean(logs), np.std(logs, ddof=1))
    return _number(sf)


def upper_tail_pvalue(value: float, null: np.ndarray) -> float:
    """P(null >= value) for a positive statistic, from the fitted upper tail of the checks.

    The tail that ``mean_z2``, ``whitened_lrt`` and the heads' statistics are read against.

    It is the skewed log-normal of this module's docstring, so a p-value far below
    ``1 / len(null)`` is an extrapolation of that fit, not a count.

    Raises:
        ValueError: for a ``value`` that is not finite and positive, or a ``null`` that is
            not at least 20 finite positive values.
    """
    value = validate.finite("value", value, above=0.0)
    null = np.asarray(null, dtype=float)
    if null.ndim != 1 or len(null) < 20 or not np.all(np.isfinite(null)) or np.any(null <= 0):
        raise ValueError(f"null must be at least 20 finite positive values, got {null.shape}")
    return float(_pvalue(value, null, two_sided=False))


def null_test(value: float, null: np.ndarray, two_sided: bool) -> NullTest:
    """``value`` against the fitted tail of its simulated ``null`` (normal if two-sided)."""
    return NullTest(
        _number(value),
        _pvalue(value, null, two_sided),
        float(np.mean(null)),
        float(np.quantile(np.abs(null) if two_sided else null, 0.99)),
    )


def scale_test(value: float, dof: int) -> NullTest:
    """A mean of ``dof`` independent chi^2_1 against its exact law chi^2(dof) / dof, two-sided."""
    half, x = dof / 2, dof * np.asarray(value) / 2  # chi^2(dof) / 2 is Gamma(dof / 2)
    tail = np.minimum(scipy.special.gammainc(half, x), scipy.special.gammaincc(half, x))
    q99 = 2 * scipy.special.gammaincinv(half, 0.99) / dof
    return NullTest(_number(value), _number(np.minimum(1.0, 2 * tail)), 1.0, float(q99))


def check_level(level: float) -> float:
    """``level`` if it is in (0, 1), else a ValueError naming it."""
    return validate.finite("level", level, above=0.0, below=1.0)


def profile_null(key: str, root, dof: int, repeats: int, seed: int):
    """(repeats, 2) profile statistics of exact draws, in batches to bound memory (cached)."""

    def simulate():
        var = np.sum(root**2, axis=1)
        rng = np.random.default_rng(seed)
        out, batch = [], max(1, 2_000_000 // (dof * root.shape[1]))
        for start in range(0, repeats, batch):
            size = min(batch, repeats - start)
            draws = rng.standard_normal((size, dof, root.shape[1])) @ root.T
            out.append(profile_statistics(np.mean(draws**2, axis=1), var, dof))
        return np.concatenate(out)

    return memo(("profile", key, dof, repeats, seed), simulate)


def lrt_null(draws: int, k: int, repeats: int, seed: int) -> np.ndarray:
    """The null of ``whitened_lrt``: the statistic of ``repeats`` sets of white draws."""
    rng = np.random.default_rng(seed + 1)
    return np.concatenate(
        [lrt(rng.standard_normal((100, draws, k))) for _ in range(0, repeats, 100)]
    )


def ad_chi2(values: np.ndarray, dof: int) -> np.ndarray:
    """Anderson-Darling statistic of (..., n) values against chi^2(dof), vectorised."""
    values = np.sort(values, axis=-1)
    n = values.shape[-1]
    cdf = np.clip(scipy.stats.chi2.cdf(values, dof), 1e-300, 1.0 - 1e-16)
    weights = 2 * np.arange(1, n + 1) - 1
    tails = np.log(cdf) + np.log1p(-cdf[..., ::-1])
    return -n - np.mean(weights * tails, axis=-1)


def ks_two_sample(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two-sample Kolmogorov-Smirnov distance of (..., n) and (..., m), vectorised."""
    both = np.concatenate([a, b], axis=-1)
    order = np.argsort(both, axis=-1, kind="stable")
    from_a = np.take_along_axis(
        np.concatenate([np.ones(a.shape), np.zeros(b.shape)], axis=-1), order, axis=-1
    )
    ecdf_a = np.cumsum(from_a, axis=-1) / a.shape[-1]
    ecdf_b = np.cumsum(1 - from_a, axis=-1) / b.shape[-1]
    return np.max(np.abs(ecdf_a - ecdf_b), axis=-1)


def exact_estimates(cov_kept: np.ndarray, networks: int, dof: int, repeats: int, rng):
    """(repeats, networks * k): ``dof * mean of dof squared exact draws / variance``.

    The draws are formed in float32 (a statistic of ranks and chi^2 tails), in batches.
    """
    root = square_root(cov_kept).T.astype(np.float32)
    out = np.empty((repeats, networks * len(cov_kept)))
    batch = max(1, 4_000_000 // (networks * dof * len(cov_kept)))
    for start in range(0, repeats, batch):
        size = min(batch, repeats - start)
        draws = rng.standard_normal((size, networks, dof, root.shape[0]), dtype=np.float32)
        squares = np.mean(np.square(draws @ root, dtype=np.float64), axis=2)
        out[start : start + size] = (dof * squares / np.diag(cov_kept)).reshape(size, -1)
    return out


def counted_test(value: float, null: np.ndarray) -> NullTest:
    """Upper tail by counting: ``(1 + #null >= value) / (1 + len(null))``, valid at any level.

    ``null`` is sorted (ascending), so that the count and the 99% quantile cost a lookup:
    a power study calls this once per simulated set.
    """
    n = len(null)
    pvalue = (1 + n - np.searchsorted(null, value, side="left")) / (1 + n)
    return NullTest(float(value), float(pvalue), float(np.mean(null)), _sorted_q99(null))


def counted_bound_test(
    value: float, null: np.ndarray, two_sided: bool, confidence: float = 0.99
) -> NullTest:
    """A counted p-value that holds its level for the null drawn, with ``confidence``.

    The count of :func:`counted_test` holds its level on average over simulated nulls, but
    given one null of R sets the tail probability of its rejection threshold is itself
    random, about sqrt(level / R) either side of the level: a run's false-alarm rate
    exceeds the level about as often as not. Here the p-value is the exact
    (Clopper-Pearson) ``confidence`` upper bound of P(T >= value), given that k of the R
    sets reach ``value``. A check at level alpha then raises false alarms at a rate of at
    most alpha for all but a fraction 1 - ``confidence`` of the nulls it might have drawn.
    Two-sided: twice the smaller of the two tails' bounds.

    ``null`` is sorted (ascending): a power study calls this once per simulated set.
    """
    confidence = validate.finite("confidence", confidence, above=0.0, below=1.0)
    n = len(null)
    counts = [n - np.searchsorted(null, value, side="left")]
    if two_sided:
        counts.append(np.searchsorted(null, value, side="right"))
    bounds = [1.0 if k >= n else scipy.stats.beta.ppf(confidence, k + 1, n - k) for k in counts]
    pvalue = min(1.0, len(counts) * min(bounds))
    return NullTest(float(value), float(pvalue), float(np.mean(null)), _sorted_q99(null))


def _sorted_q99(null: np.ndarray) -> float:
    """numpy's default (linear) 99% quantile of a sorted array, by lookup."""
    at = 0.99 * (len(null) - 1)
    low = int(at)
    return float(null[low] + (at - low) * (null[min(low + 1, len(null) - 1)] - null[low]))


def prediction_test(value: float, null: np.ndarray) -> NullTest:
    """Two-sided: is ``value`` one more draw of the normal law that ``null`` was drawn from?

    With the null's mean and standard deviation estimated from its R draws,
    ``(value - mean) / (sd sqrt(1 + 1/R))`` has Student's t law with R - 1 degrees of
    freedom (a prediction interval), so the p-value holds its level for any R.
    """
    t = (value - np.mean(null)) / (np.std(null, ddof=1) * np.sqrt(1 + 1 / len(null)))
    pvalue = 2 * scipy.stats.t.sf(abs(t), len(null) - 1)
    q99 = float(np.quantile(np.abs(null), 0.99))
    return NullTest(float(value), float(pvalue), float(np.mean(null)), q99)
