"""Checks with teeth: statistics of Gaussian draws against their simulated null, and decoys.

A claim of the form "these draws are N(0, C)" (or "this variance profile was estimated
from draws of N(0, C)") is checked by statistics that weigh every test input fairly:

* ``mean_z`` and ``mean_z2``: the mean and the mean square, over test inputs, of the
  per-input variance z-scores (:func:`rndlib.metrics.variance_zscores`). Each input counts
  alike, whether its variance is 1e-4 (next to the data) or 10 (far from it). ``mean_z``
  sees a bias of the whole profile (two-sided); ``mean_z2``, a profile of the wrong shape.
* ``whitened_lrt`` (when the draws themselves are given): the Gaussian likelihood-ratio
  statistic ``tr S - log det S - k`` of the sample covariance ``S`` of the draws at
  ``k`` decorrelated inputs (:func:`rndlib.metrics.decorrelated_points`), whitened by
  C there: the spectrum of the estimated against the claimed covariance. It sees
  wrong correlations, which per-input variances cannot, and, the inputs being nearly
  uncorrelated, C restricted to them is well conditioned, so whitening amplifies no
  small error. Beside it, ``whitened_scale``: the mean square of those whitened draws
  (1 under the claim, two-sided), the most powerful test of a variance that is off by
  one factor everywhere, since the whitened coordinates are independent.
* ``leading_scale`` (opt-in, ``leading=True``): the same mean square in the leading
  eigendirections of C (eigenvalues above ``LEADING_FLOOR`` times the largest, at most an
  eighth as many as the draws), whitened there. A smooth covariance on a grid has few
  decorrelated inputs (8 on notebook 04's grid), which leaves ``whitened_scale`` a
  standard error of ``sqrt(2 / (8 draws))``, 0.031 with 256 draws: too coarse to reject
  a variance 10% too large at every seed. Its 22 leading directions give 0.019.

``whitened_scale`` and ``leading_scale`` have an exact law: under the claim the whitened
coordinates are independent N(0, 1), so their mean square over ``m`` of them is
chi^2(m) / m, and they are held against it. The others have no textbook null here: the
test inputs share their draws, so their z-scores are correlated. Their null is
simulated: ``repeats`` sets of exact draws of N(0, C), of the same size, give each
statistic's distribution under the claim; a normal fit to it (``mean_z``, two-sided) or,
for the upper tails, a Pearson type III fit to its logarithm (a log-normal with the logs'
own skew where that skew is positive, never a lighter tail than the log-normal's) gives
p-values in its far tail. Moment-matched gamma upper tails and a normal
``whitened_scale`` were anti-conservative: on notebook 02's general-target covariance,
128 draws at level 8.3e-4, they rejected 1.0e-3 to 1.8e-3 of 20,000 exact sets at each of
four null seeds. A plain log-normal still let through about twice its level on notebook
03's S_T[Theta] (``mean_z2``, 128 draws: 1.8 times a level of 2e-4 to 2e-3, fitted on
1,000 and tested on 19,000 null sets, ten times), the skewed one 0.05 to 0.5 times.
Where the null is cheap enough to simulate far beyond the level (:func:`chi2_law_check`),
p-values are counts among the simulated sets instead of a fitted tail.
A check passes when its smallest p-value, Bonferroni-corrected for its
number of statistics, is above its ``level``; its false-alarm rate is then at most
``level``. A check is only a check if it rejects plausible wrong answers (decoys) at
the same level; each check's ``report()`` records the verdict, and
:mod:`rndlib.power` simulates how often it rejects each decoy, and the truth.

Every check refuses what it cannot judge, with a ValueError naming the argument:
non-finite draws or estimates, a covariance that is not symmetric positive
semi-definite (within ``SYMMETRY_RTOL`` and ``PSD_RTOL``), labels that are not binary,
an empty set of statistics, a level outside (0, 1).
"""

import dataclasses
import hashlib
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import scipy.special
import scipy.stats

from rndlib import metrics, validate

#: Inputs of the whitened test: pairwise squared correlations under C below this.
DECORRELATED_R2 = 0.1
#: Directions of ``leading_scale``: eigenvalues of C above this times the largest. Below
#: about 1e-3 an eigenvalue of a finite network's covariance is within its kernel's
#: finite-width fluctuation, which whitening would then amplify.
LEADING_FLOOR = 1e-3
#: A covariance is symmetric if ``max |C - C^T|`` is at most this times ``max |C|`` (a
#: noise-free posterior at condition number 1e10 is asymmetric by about 1e-10 in float64)
SYMMETRY_RTOL = validate.SYMMETRY_RTOL
#: ... and positive semi-definite if no eigenvalue is below ``-PSD_RTOL`` times the largest
#: (float64 round-off of an ill-conditioned posterior covariance stays far below it).
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
    most favourable constant for a decoy such as ``c * S_T[K]``).

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
        _check_level(self.level)

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


#: Results computed from a covariance (square roots, eigendecompositions) and simulated
#: nulls, by what they depend on: a notebook checks several estimates and decoys against one
#: covariance, and :mod:`rndlib.power` checks thousands; the costly part is the same each time.
_MEMO: dict[tuple, object] = {}


def _digest(*arrays: np.ndarray) -> str:
    digest = hashlib.sha256()
    for a in arrays:
        digest.update(np.ascontiguousarray(a).tobytes() + str(a.shape).encode())
    return digest.hexdigest()


def _memo(key: tuple, compute: Callable[[], object]):
    """``compute()``, once per ``key``; arrays are made read-only."""
    if key not in _MEMO:
        value = compute()
        for a in value if isinstance(value, tuple) else (value,):  # NamedTuples too
            if isinstance(a, np.ndarray):
                a.setflags(write=False)
        _MEMO[key] = value
    return _MEMO[key]


class _Spectrum(NamedTuple):
    """A covariance's digest (its cache key), eigenvalues, eigenvectors and square root."""

    key: str
    evals: np.ndarray
    evecs: np.ndarray
    root: np.ndarray


def _spectrum(name: str, cov: object) -> tuple[np.ndarray, _Spectrum]:
    """``cov`` as a float64 array, and its spectrum (cached).

    Raises:
        ValueError: naming ``name``, if ``cov`` is not a finite square matrix, not
            symmetric within ``SYMMETRY_RTOL`` or not PSD within ``PSD_RTOL``.
    """
    cov = np.asarray(validate.square(name, cov, symmetric=True))
    if len(cov) == 0:
        raise ValueError(f"{name} must be a square matrix, got shape {cov.shape}")

    def compute():
        evals, evecs = np.linalg.eigh((cov + cov.T) / 2)
        keep = evals > 1e-12 * evals[-1]
        return _Spectrum(key, evals, evecs, evecs[:, keep] * np.sqrt(evals[keep]))

    key = _digest(cov)
    spectrum = _memo(("spectrum", key), compute)
    evals = spectrum.evals
    if evals[-1] <= 0 or evals[0] < -PSD_RTOL * evals[-1]:
        raise ValueError(
            f"{name} must be positive semi-definite: eigenvalues {evals[0]:.3g} to {evals[-1]:.3g}"
        )
    return cov, spectrum


def square_root(cov: np.ndarray) -> np.ndarray:
    """A low-rank square root of a PSD matrix (float64): ``root @ root.T`` is ``cov``."""
    return _spectrum("cov", cov)[1].root


def _decorrelated(cov: np.ndarray, key: str, max_r2: float) -> np.ndarray:
    """:func:`rndlib.metrics.decorrelated_points` of ``cov`` (digest ``key``; cached)."""
    return _memo(
        ("decorrelated", key, max_r2), lambda: metrics.decorrelated_points(cov, max_r2=max_r2)
    )


def _profile_statistics(estimate: np.ndarray, var: np.ndarray, dof: int) -> np.ndarray:
    """(..., 2): mean and mean square over inputs of the variance z-scores."""
    z = np.clip(metrics.variance_zscores(estimate, var, dof), -40.0, 40.0)
    return np.stack([z.mean(axis=-1), (z**2).mean(axis=-1)], axis=-1)


def _lrt(samples: np.ndarray) -> np.ndarray:
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
    """P(null >= value) for a positive statistic, from the upper-tail fit every check uses.

    The fit is the skewed log-normal of this module's docstring, so a p-value far below
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


def _null_test(value: float, null: np.ndarray, two_sided: bool) -> NullTest:
    return NullTest(
        _number(value),
        _pvalue(value, null, two_sided),
        float(np.mean(null)),
        float(np.quantile(np.abs(null) if two_sided else null, 0.99)),
    )


def _scale_test(value: float, dof: int) -> NullTest:
    """A mean of ``dof`` independent chi^2_1 against its exact law chi^2(dof) / dof, two-sided."""
    half, x = dof / 2, dof * np.asarray(value) / 2  # chi^2(dof) / 2 is Gamma(dof / 2)
    tail = np.minimum(scipy.special.gammainc(half, x), scipy.special.gammaincc(half, x))
    q99 = 2 * scipy.special.gammaincinv(half, 0.99) / dof
    return NullTest(_number(value), _number(np.minimum(1.0, 2 * tail)), 1.0, float(q99))


def _check_level(level: float) -> float:
    return validate.finite("level", level, above=0.0, below=1.0)


def _profile_null(key: str, root, dof: int, repeats: int, seed: int):
    """(repeats, 2) profile statistics of exact draws, in batches to bound memory (cached)."""

    def simulate():
        var = np.sum(root**2, axis=1)
        rng = np.random.default_rng(seed)
        out, batch = [], max(1, 2_000_000 // (dof * root.shape[1]))
        for start in range(0, repeats, batch):
            size = min(batch, repeats - start)
            draws = rng.standard_normal((size, dof, root.shape[1])) @ root.T
            out.append(_profile_statistics(np.mean(draws**2, axis=1), var, dof))
        return np.concatenate(out)

    return _memo(("profile", key, dof, repeats, seed), simulate)


def _profile_tests(estimate, cov, dof: int, repeats: int, seed: int):
    """Scale -> the profile statistics' tests, against a null simulated once."""
    dof = validate.integer("dof", dof)
    repeats = validate.integer("repeats", repeats, minimum=50)
    cov, spectrum = _spectrum("cov", cov)
    root = spectrum.root
    estimate = np.asarray(estimate, np.float64)
    if estimate.shape != (len(root),):
        raise ValueError(f"estimate must have shape ({len(root)},), got {estimate.shape}")
    if not np.all(np.isfinite(estimate)) or np.any(estimate <= 0):
        raise ValueError("estimate must be finite and positive")
    var = np.diag(cov)
    null = _profile_null(spectrum.key, root, dof, repeats, seed)

    def tests(scale: float | np.ndarray) -> dict[str, NullTest]:
        stats = _profile_statistics(estimate, np.asarray(scale)[..., None] * var, dof)
        return {
            "mean_z": _null_test(stats[..., 0], null[:, 0], two_sided=True),
            "mean_z2": _null_test(stats[..., 1], null[:, 1], two_sided=False),
        }

    return tests, float(np.mean(estimate / var))


def _fitted(tests, level: float, guess: float, fit_scale: bool) -> Check:
    """The check at scale 1, or at the scale with the largest p-value (log grid, refined).

    ``tests`` takes one scale or an array of them: a grid is tried in one call.
    """
    if not fit_scale:
        return Check(tests(1.0), level, 1.0)

    def best(scales: np.ndarray) -> float:
        pvalues = np.min([t.pvalue for t in tests(scales).values()], axis=0)
        return float(scales[np.argmax(pvalues)])

    scale = best(best(guess * np.geomspace(0.2, 5.0, 41)) * np.geomspace(0.92, 1.08, 21))
    return Check(tests(scale), level, scale)


def variance_check(
    estimate: np.ndarray,
    cov: np.ndarray,
    dof: int,
    *,
    level: float,
    repeats: int = 1000,
    seed: int = 0,
    fit_scale: bool = False,
) -> Check:
    """Is a variance profile, estimated from ``dof`` Gaussian draws, the diagonal of ``cov``?

    ``estimate`` (n,) is a mean of ``dof`` squared zero-mean draws per input (or a
    sample variance with ``dof`` degrees of freedom: the same law). ``cov`` (n, n) is
    the full reference covariance, so that the simulated null has the inputs'
    correlations. Statistics ``mean_z`` (two-sided) and ``mean_z2`` (upper tail).
    ``fit_scale=True`` multiplies ``cov`` by the constant most favourable to it (a grid
    search on the p-value): the check then asks whether *any* multiple of ``cov`` fits.

    Raises:
        ValueError: naming the argument, for mismatched shapes, non-finite or
            non-positive values, or a level outside (0, 1).
    """
    level = _check_level(level)
    tests, guess = _profile_tests(estimate, cov, dof, repeats, seed)
    return _fitted(tests, level, guess, fit_scale)


def _lrt_null(draws: int, k: int, repeats: int, seed: int) -> np.ndarray:
    """The null of ``whitened_lrt``: the statistic of ``repeats`` sets of white draws."""
    rng = np.random.default_rng(seed + 1)
    return np.concatenate(
        [_lrt(rng.standard_normal((100, draws, k))) for _ in range(0, repeats, 100)]
    )


def covariance_check(
    samples: np.ndarray,
    cov: np.ndarray,
    mean: np.ndarray | None = None,
    *,
    level: float,
    repeats: int = 1000,
    seed: int = 0,
    fit_scale: bool = False,
    leading: bool = False,
    whitened: str = "all",
) -> Check:
    """Are ``samples`` (draws, n) i.i.d. draws of N(mean, cov)? Mean known (zero if not given).

    The profile statistics of :func:`variance_check` on the mean of the squared
    deviations, plus ``whitened_scale`` and ``whitened_lrt`` at the inputs whose
    correlations under ``cov`` have squares below ``DECORRELATED_R2`` (at most a quarter
    as many as the draws, so that the sample covariance there is well determined), and
    with ``leading=True`` also ``leading_scale`` (see the module's docstring).
    ``whitened`` names the statistics at decorrelated inputs: ``"all"`` (both), ``"lrt"``
    or ``"none"``. On a smooth profile those inputs include some next to the data, where a
    finite network's variance departs most from the kernel's (notebooks 02 and 03), and
    ``whitened_scale`` reads exactly that variance; ``whitened_lrt`` reads mostly the
    correlations (a common factor c moves it only by about ``k (c - 1)^2 / 2``), and
    ``leading_scale`` reads the directions that carry the variance.
    """
    level = _check_level(level)
    whitened = validate.choice("whitened", whitened, ("all", "lrt", "none"))
    cov, spectrum = _spectrum("cov", cov)
    samples = validate.array("samples", samples, ("draws", len(cov)))
    draws = samples.shape[0]
    if draws < 8:
        raise ValueError(f"samples must hold at least 8 draws, got {draws}")
    centred = samples - (0.0 if mean is None else validate.array("mean", mean, (len(cov),)))
    profile, guess = _profile_tests(np.mean(centred**2, axis=0), cov, draws, repeats, seed)
    keep = _decorrelated(cov, spectrum.key, DECORRELATED_R2)
    keep = keep[:: -(-len(keep) // (draws // 4))]  # at most a quarter as many as the draws
    evals, evecs = np.linalg.eigh(cov[np.ix_(keep, keep)])
    white = centred[:, keep] @ (evecs / np.sqrt(evals))
    if leading:
        evals, evecs = spectrum.evals, spectrum.evecs
        n_dirs = max(1, min(int(np.sum(evals > LEADING_FLOOR * evals[-1])), draws // 8))
        top = centred @ (evecs[:, -n_dirs:] / np.sqrt(evals[-n_dirs:]))
    lrt_null = _memo(
        ("whitened", draws, len(keep), repeats, seed),
        lambda: _lrt_null(draws, len(keep), repeats, seed),
    )

    def tests(scale: float | np.ndarray) -> dict[str, NullTest]:
        found = profile(scale)
        rescaled = white / np.sqrt(np.asarray(scale))[..., None, None]
        if whitened == "all":
            found["whitened_scale"] = _scale_test(np.mean(rescaled**2, axis=(-2, -1)), white.size)
        if whitened != "none":
            found["whitened_lrt"] = _null_test(_lrt(rescaled), lrt_null, two_sided=False)
        if leading:
            found["leading_scale"] = _scale_test(np.mean(top**2) / scale, top.size)
        return found

    return _fitted(tests, level, guess, fit_scale)


def _ad_chi2(values: np.ndarray, dof: int) -> np.ndarray:
    """Anderson-Darling statistic of (..., n) values against chi^2(dof), vectorised."""
    values = np.sort(values, axis=-1)
    n = values.shape[-1]
    cdf = np.clip(scipy.stats.chi2.cdf(values, dof), 1e-300, 1.0 - 1e-16)
    weights = 2 * np.arange(1, n + 1) - 1
    tails = np.log(cdf) + np.log1p(-cdf[..., ::-1])
    return -n - np.mean(weights * tails, axis=-1)


def _ks_two_sample(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two-sample Kolmogorov-Smirnov distance of (..., n) and (..., m), vectorised."""
    both = np.concatenate([a, b], axis=-1)
    order = np.argsort(both, axis=-1, kind="stable")
    from_a = np.take_along_axis(
        np.concatenate([np.ones(a.shape), np.zeros(b.shape)], axis=-1), order, axis=-1
    )
    ecdf_a = np.cumsum(from_a, axis=-1) / a.shape[-1]
    ecdf_b = np.cumsum(1 - from_a, axis=-1) / b.shape[-1]
    return np.max(np.abs(ecdf_a - ecdf_b), axis=-1)


def _normalised_estimates(estimates, cov, key: str, dof: int, name: str, max_r2: float):
    """``dof * estimate / variance`` at the decorrelated inputs of ``cov``, and those inputs."""
    estimates = validate.array(name, estimates, ("networks", len(cov)))
    keep = _decorrelated(cov, key, max_r2)
    return dof * estimates[:, keep] / np.diag(cov)[keep], keep


def _exact_estimates(cov_kept: np.ndarray, networks: int, dof: int, repeats: int, rng):
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


def _counted_test(value: float, null: np.ndarray) -> NullTest:
    """Upper tail by counting: ``(1 + #null >= value) / (1 + len(null))``, valid at any level.

    ``null`` is sorted (ascending), so that the count and the 99% quantile cost a lookup:
    a power study calls this once per simulated set.
    """
    n = len(null)
    pvalue = (1 + n - np.searchsorted(null, value, side="left")) / (1 + n)
    at = 0.99 * (n - 1)  # numpy's default (linear) quantile
    low = int(at)
    q99 = null[low] + (at - low) * (null[min(low + 1, n - 1)] - null[low])
    return NullTest(float(value), float(pvalue), float(np.mean(null)), float(q99))


def chi2_law_check(
    estimates: np.ndarray,
    cov: np.ndarray,
    dof: int,
    *,
    other: np.ndarray | None = None,
    level: float,
    repeats: int = 100_000,
    seed: int = 0,
    max_r2: float = 0.5,
) -> Check:
    """Thm. 5.6 of Zanger et al. (2026): is each network's estimate ``sigma^2 chi^2(dof) / dof``?

    ``estimates`` (networks, n): one variance estimate per network and input, each a
    mean of ``dof`` squared zero-mean draws (RND's ``1/2`` mean squared error over
    ``dof`` heads) or a sample variance with ``dof`` degrees of freedom (an ensemble of
    ``dof + 1``); ``cov`` (n, n) the claimed covariance. At inputs whose pairwise squared
    correlations under ``cov`` are below ``max_r2``, ``dof * estimate / variance``
    pooled over networks and inputs is held against chi^2(dof) by its Anderson-Darling
    statistic (``ad_chi2``), not only by its mean. With ``other`` (networks', n),
    estimates of a second method, also the two-sample Kolmogorov-Smirnov distance
    between the two (``ks_two_sample``). The inputs are not independent, so both nulls
    are simulated from exact draws of ``cov`` there. They are cheap (a few draws per
    network and input), so ``repeats`` sets are many and each p-value is a count among
    them, valid at any level (Phipson and Smyth 2010), down to ``1 / (repeats + 1)``.
    (The fitted tail of the other checks is conservative this far out, which costs power.)
    """
    level = _check_level(level)
    dof = validate.integer("dof", dof)
    repeats = validate.integer("repeats", repeats, minimum=50)
    max_r2 = validate.finite("max_r2", max_r2, above=0.0, below=1.0)
    cov, spectrum = _spectrum("cov", cov)
    values, keep = _normalised_estimates(estimates, cov, spectrum.key, dof, "estimates", max_r2)
    others = None
    if other is not None:
        others = _normalised_estimates(other, cov, spectrum.key, dof, "other", max_r2)[0]
    cov_kept = cov[np.ix_(keep, keep)]

    def simulate():  # in batches of sets: only the statistics are kept
        rng = np.random.default_rng(seed)
        ad, ks = np.empty(repeats), np.empty(repeats)
        batch = max(1, 2_000_000 // (len(values) * dof * len(cov_kept)))
        for start in range(0, repeats, batch):
            size = min(batch, repeats - start)
            null = _exact_estimates(cov_kept, len(values), dof, size, rng)
            ad[start : start + size] = _ad_chi2(null, dof)
            if others is not None:
                null_other = _exact_estimates(cov_kept, len(others), dof, size, rng)
                ks[start : start + size] = _ks_two_sample(null, null_other)
        return np.sort(ad), (None if others is None else np.sort(ks))

    n_other = 0 if others is None else len(others)
    key = ("law", _digest(cov_kept), len(values), n_other, dof, repeats, seed)
    ad_null, ks_null = _memo(key, simulate)
    tests = {"ad_chi2": _counted_test(_ad_chi2(values.ravel(), dof), ad_null)}
    if others is not None:
        statistic = _ks_two_sample(values.ravel(), others.ravel())
        tests["ks_two_sample"] = _counted_test(statistic, ks_null)
    return Check(tests, level)


def _whitened_heads(errors: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """(networks * r, heads): errors in the r leading eigendirections of cov, standardised.

    Each direction is scaled by its root mean square over networks and heads, the same
    for every head: a variance that is off in one direction (a finite network's kernel)
    then neither dominates the correlations nor makes two heads look alike.
    """
    cov, spectrum = _spectrum("cov", cov)
    errors = validate.array("errors", errors, ("networks", len(cov), "heads"))
    if errors.shape[2] < 2:
        raise ValueError(f"errors must have at least 2 heads, got shape {errors.shape}")
    evals, evecs = spectrum.evals, spectrum.evecs
    keep = evals > LEADING_FLOOR * evals[-1]
    return _standardised(np.einsum("snk,nm->smk", errors, evecs[:, keep]))


def _standardised(projected: np.ndarray) -> np.ndarray:
    """(..., networks, r, heads) -> (..., networks * r, heads), each direction of unit RMS."""
    scale = np.sqrt(np.mean(projected**2, axis=(-3, -1), keepdims=True))
    flat = projected / scale
    return flat.reshape(*flat.shape[:-3], -1, flat.shape[-1])


def _offdiagonal_correlations(samples: np.ndarray) -> np.ndarray:
    """(repeats, pairs): uncentred correlations between the columns of (repeats, draws, heads)."""
    gram = np.swapaxes(samples, -1, -2) @ samples
    norms = np.sqrt(np.diagonal(gram, axis1=-2, axis2=-1))
    corr = gram / norms[..., :, None] / norms[..., None, :]
    return corr[..., ~np.eye(samples.shape[-1], dtype=bool)]


def head_independence_check(
    errors: np.ndarray, cov: np.ndarray, *, level: float, repeats: int = 1000, seed: int = 0
) -> Check:
    """Prop. 5.5 of Zanger et al. (2026): are the heads' errors independent, each N(0, cov)?

    ``errors`` (networks, n, heads) at n inputs whose covariance (each head's) is claimed
    to be ``cov`` (n, n). In the r leading eigendirections of ``cov`` (eigenvalues above
    ``LEADING_FLOOR`` times the largest, so that whitening amplifies no small error),
    whitened, each head's errors are networks x r independent N(0, 1) draws under the
    claim; the uncentred correlation between two heads is then about N(0, 1 / (networks r))
    if the heads are independent. Two statistics: ``max_head_corr``, the largest
    ``|corr|`` between two heads (one pair of heads that moves together), and
    ``mean_head_corr2``, the mean squared correlation over all pairs (every pair a little:
    a component that all heads share). Their null, exact independent heads, is simulated
    with the same numbers of networks, directions and heads, standardised the same way.
    """
    level = _check_level(level)
    repeats = validate.integer("repeats", repeats, minimum=50)
    white = _whitened_heads(errors, cov)
    networks, heads = np.shape(errors)[0], np.shape(errors)[2]

    def simulate():
        rng = np.random.default_rng(seed)
        shape = (repeats, networks, len(white) // networks, heads)
        corr = _offdiagonal_correlations(_standardised(rng.standard_normal(shape)))
        return np.max(np.abs(corr), axis=-1), np.mean(corr**2, axis=-1)

    null_max, null_mean = _memo(("heads", len(white), networks, heads, repeats, seed), simulate)
    found = _offdiagonal_correlations(white[None])[0]
    tests = {
        "max_head_corr": _null_test(np.max(np.abs(found)), null_max, two_sided=False),
        "mean_head_corr2": _null_test(np.mean(found**2), null_mean, two_sided=False),
    }
    return Check(tests, level)


def head_independence_over_time(
    paths: np.ndarray, covariances: dict[int, np.ndarray], *, level: float, seed: int = 0
) -> Check:
    """Prop. 5.5 at every recorded step: :func:`head_independence_check` at each ``t``.

    ``paths`` (networks, steps + 1, n, heads): errors after 0, 1, ... steps (``path`` of
    :func:`rndlib.train.rnd_variance` or :func:`rndlib.train.bayesian_rnd_errors`);
    ``covariances``: step ``t`` -> the claimed covariance (n, n) of each head's errors
    then. One check, Bonferroni-corrected over both statistics at every step; its tests
    are named ``"t=<t> <statistic>"``.
    """
    if not covariances:
        raise ValueError("covariances must name at least one step, got none")
    paths = validate.array("paths", paths, ("networks", "steps", "n", "heads"))
    tests = {}
    for t, cov in covariances.items():
        if not 0 <= t < paths.shape[1]:
            raise ValueError(f"covariances names step {t}, but paths has {paths.shape[1]} steps")
        found = head_independence_check(paths[:, t], cov, level=level, seed=seed)
        tests |= {f"t={t} {name}": test for name, test in found.tests.items()}
    return Check(tests, _check_level(level))


def _variance_scores(root: np.ndarray, dof: int, size: int, rng) -> np.ndarray:
    """(size, n) variance estimates from ``dof`` draws of N(0, root root^T) each (Wishart).

    The draws are formed in float32 (enough for a rank or a mean of logs), in batches to bound
    memory.
    """
    out = np.empty((size, len(root)))
    root32 = root.T.astype(np.float32)
    batch = max(1, 4_000_000 // (dof * root.shape[1]))
    for start in range(0, size, batch):
        shape = (min(batch, size - start), dof, root.shape[1])
        draws = rng.standard_normal(shape, dtype=np.float32) @ root32
        out[start : start + len(draws)] = np.mean(np.square(draws, dtype=np.float64), axis=1)
    return out


def _auroc_gap_null(roots, labels, dof_a: int, dof_b: int, repeats: int, seed: int):
    """(repeats,) mean over splits of AUROC(a) - AUROC(b) for exact variance estimates."""

    def simulate():
        rng = np.random.default_rng(seed)
        null = np.zeros(repeats)
        for root, positive in zip(roots, labels, strict=True):
            null += metrics.auroc(_variance_scores(root, dof_a, repeats, rng), positive)
            null -= metrics.auroc(_variance_scores(root, dof_b, repeats, rng), positive)
        return null / len(roots)

    key = ("auroc", _digest(*roots, *labels), dof_a, dof_b, repeats, seed)
    return _memo(key, simulate)


def auroc_gap_check(
    scores_a: list[np.ndarray],
    scores_b: list[np.ndarray],
    covs: list[np.ndarray],
    labels: list[np.ndarray],
    dof_a: int,
    dof_b: int,
    *,
    level: float,
    repeats: int = 400,
    seed: int = 0,
) -> Check:
    """Do two uncertainty scores rank alike, split by split, as two estimates of one variance?

    For each split s, ``scores_a[s]`` and ``scores_b[s]`` (n_s,) score the same test
    inputs, ``labels[s]`` (n_s,) marks the positives (out of distribution), and the claim
    is that both scores are variance estimates of ``diag(covs[s])`` from ``dof_a`` and
    ``dof_b`` Gaussian draws (a mean of squares, or a sample variance with that many
    degrees of freedom). The statistic is the paired gap: the mean over splits of
    AUROC(a) - AUROC(b), in which the split itself cancels. Its null is simulated (once
    for given covariances, labels and dofs; decoys reuse it): ``repeats`` times, both
    scores are drawn from their Wishart laws, with the inputs' correlations, on every
    split. Two-sided, from a normal fit to the null.

    Raises:
        ValueError: naming the argument, for splits of different lengths or shapes,
            labels that are not both classes, or non-finite values.
    """
    level = _check_level(level)
    dof_a, dof_b = validate.integer("dof_a", dof_a), validate.integer("dof_b", dof_b)
    repeats = validate.integer("repeats", repeats, minimum=50)
    if not len(scores_a) == len(scores_b) == len(covs) == len(labels) > 0:
        raise ValueError("scores_a, scores_b, covs and labels must have one entry per split")
    roots, positives, gap = [], [], 0.0
    for s, (a, b, cov, positive) in enumerate(zip(scores_a, scores_b, covs, labels, strict=True)):
        roots.append(_spectrum(f"covs[{s}]", cov)[1].root)
        positive = np.asarray(positive)
        if positive.shape != (len(cov),) or not np.all((positive == 0) | (positive == 1)):
            raise ValueError(f"labels[{s}] must be {len(cov)} binary labels (0/1 or bool)")
        positives.append(positive.astype(bool))
        if positives[-1].all() or not positives[-1].any():
            raise ValueError(f"labels[{s}] must mark both classes among {len(cov)} inputs")
        for name, x in (("scores_a", a), ("scores_b", b)):
            if np.shape(x) != (len(cov),) or not np.all(np.isfinite(x)):
                raise ValueError(f"{name}[{s}] must be {len(cov)} finite values")
        gap += metrics.auroc(a, positives[-1]) - metrics.auroc(b, positives[-1])
    null = _auroc_gap_null(roots, positives, dof_a, dof_b, repeats, seed)
    return Check({"auroc_gap": _null_test(gap / len(covs), null, two_sided=True)}, level)


def _prediction_test(value: float, null: np.ndarray) -> NullTest:
    """Two-sided: is ``value`` one more draw of the normal law that ``null`` was drawn from?

    With the null's mean and standard deviation estimated from its R draws,
    ``(value - mean) / (sd sqrt(1 + 1/R))`` has Student's t law with R - 1 degrees of
    freedom (a prediction interval), so the p-value holds its level for any R.
    """
    t = (value - np.mean(null)) / (np.std(null, ddof=1) * np.sqrt(1 + 1 / len(null)))
    pvalue = 2 * scipy.stats.t.sf(abs(t), len(null) - 1)
    q99 = float(np.quantile(np.abs(null), 0.99))
    return NullTest(float(value), float(pvalue), float(np.mean(null)), q99)


def log_ratio_check(
    scores_a: list[np.ndarray],
    scores_b: list[np.ndarray],
    covs: list[np.ndarray],
    dof_a: int,
    dof_b: int,
    *,
    ratio: float = 1.0,
    level: float,
    repeats: int = 1000,
    seed: int = 0,
) -> Check:
    """Are two scores, image by image, estimates of one variance from ``dof_a`` and ``dof_b`` draws?

    For each split s, ``scores_a[s]`` and ``scores_b[s]`` (n_s,) score the same inputs,
    and the claim is that ``scores_a[s] / ratio`` and ``scores_b[s]`` are independent
    variance estimates of ``diag(covs[s])`` from ``dof_a`` and ``dof_b`` Gaussian draws.
    Then ``log(a / (ratio b))`` at each input is a difference of two log chi^2 variables,
    free of the variance there. Its mean over all inputs of all splits
    (``log_ratio_mean``) is tested two-sided against a null simulated from the
    estimates' Wishart laws with the inputs' correlations (nearly normal: a mean over
    many inputs), by the prediction interval of :func:`_prediction_test`. A scale off by
    a factor moves it by the log of that factor at every input; unlike an AUROC, which
    only ranks, it sees that.

    Raises:
        ValueError: naming the argument, for splits of different lengths or shapes,
            non-finite or non-positive scores, or a ``ratio`` that is not positive.
    """
    level = _check_level(level)
    dof_a, dof_b = validate.integer("dof_a", dof_a), validate.integer("dof_b", dof_b)
    repeats = validate.integer("repeats", repeats, minimum=50)
    ratio = validate.finite("ratio", ratio, above=0.0)
    if not len(scores_a) == len(scores_b) == len(covs) > 0:
        raise ValueError("scores_a, scores_b and covs must have one entry per split")
    roots, found = [], []
    for s, (a, b, cov) in enumerate(zip(scores_a, scores_b, covs, strict=True)):
        roots.append(_spectrum(f"covs[{s}]", cov)[1].root)
        for name, x in (("scores_a", a), ("scores_b", b)):
            if np.shape(x) != (len(cov),) or not np.all(np.isfinite(x)) or np.any(x <= 0):
                raise ValueError(f"{name}[{s}] must be {len(cov)} finite positive values")
        found.append(np.log(a) - np.log(ratio * np.asarray(b)))

    def simulate():
        rng = np.random.default_rng(seed)
        logs = [
            np.log(_variance_scores(root, dof_a, repeats, rng))
            - np.log(_variance_scores(root, dof_b, repeats, rng))
            for root in roots
        ]
        return np.concatenate(logs, axis=-1).mean(axis=-1)

    null = _memo(("log_ratio", _digest(*roots), dof_a, dof_b, repeats, seed), simulate)
    return Check({"log_ratio_mean": _prediction_test(np.concatenate(found).mean(), null)}, level)
