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

A check passes when its smallest p-value, Bonferroni-corrected for its
number of statistics, is above its ``level``; its false-alarm rate is then at most
``level``. A check is only a check if it rejects plausible wrong answers (decoys) at
the same level; each check's ``report()`` records the verdict, and
:mod:`rndlib.power` simulates how often it rejects each decoy, and the truth.

Every check refuses what it cannot judge, with a ValueError naming the argument:
non-finite draws or estimates, a covariance that is not symmetric positive
semi-definite (within ``validate.SYMMETRY_RTOL`` and ``nulls.PSD_RTOL``), an empty set of
statistics, a level outside (0, 1). The p-values, their simulated nulls and the
:class:`rndlib.nulls.Check` they make live in :mod:`rndlib.nulls`; the checks of uncertainty
scores (notebook 06), in :mod:`rndlib.scores`.
"""

import numpy as np

from rndlib import nulls, validate

#: Inputs of the whitened test: pairwise squared correlations under C below this.
DECORRELATED_R2 = 0.1


#: Directions of ``leading_scale``: eigenvalues of C above this times the largest. Below
#: about 1e-3 an eigenvalue of a finite network's covariance is within its kernel's
#: finite-width fluctuation, which whitening would then amplify.
LEADING_FLOOR = 1e-3


def _profile_tests(estimate, cov, dof: int, repeats: int, seed: int):
    """Scale -> the profile statistics' tests, against a null simulated once."""
    dof = validate.integer("dof", dof)
    repeats = validate.integer("repeats", repeats, minimum=50)
    cov, spectrum = nulls.spectrum("cov", cov)
    root = spectrum.root
    estimate = np.asarray(estimate, np.float64)
    if estimate.shape != (len(root),):
        raise ValueError(f"estimate must have shape ({len(root)},), got {estimate.shape}")
    if not np.all(np.isfinite(estimate)) or np.any(estimate <= 0):
        raise ValueError("estimate must be finite and positive")
    var = np.diag(cov)
    null = nulls.profile_null(spectrum.key, root, dof, repeats, seed)

    def tests(scale: float | np.ndarray) -> dict[str, nulls.NullTest]:
        stats = nulls.profile_statistics(estimate, np.asarray(scale)[..., None] * var, dof)
        return {
            "mean_z": nulls.null_test(stats[..., 0], null[:, 0], two_sided=True),
            "mean_z2": nulls.null_test(stats[..., 1], null[:, 1], two_sided=False),
        }

    return tests, float(np.mean(estimate / var))


def _fitted(tests, level: float, guess: float, fit_scale: bool) -> nulls.Check:
    """The check at scale 1, or at the scale with the largest p-value (log grid, refined).

    ``tests`` takes one scale or an array of them: a grid is tried in one call.
    """
    if not fit_scale:
        return nulls.Check(tests(1.0), level, 1.0)

    def best(scales: np.ndarray) -> float:
        pvalues = np.min([t.pvalue for t in tests(scales).values()], axis=0)
        return float(scales[np.argmax(pvalues)])

    scale = best(best(guess * np.geomspace(0.2, 5.0, 41)) * np.geomspace(0.92, 1.08, 21))
    return nulls.Check(tests(scale), level, scale)


def variance_check(
    estimate: np.ndarray,
    cov: np.ndarray,
    dof: int,
    *,
    level: float,
    repeats: int = 1000,
    seed: int = 0,
    fit_scale: bool = False,
) -> nulls.Check:
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
    level = nulls.check_level(level)
    tests, guess = _profile_tests(estimate, cov, dof, repeats, seed)
    return _fitted(tests, level, guess, fit_scale)


def _leading_whitened(centred: np.ndarray, spectrum: nulls.Spectrum) -> np.ndarray:
    """(draws, r): draws whitened in the r leading eigendirections of the covariance.

    r counts the eigenvalues above ``LEADING_FLOOR`` times the largest, at most an eighth
    as many as the draws (at least one).
    """
    evals, evecs = spectrum.evals, spectrum.evecs
    n_dirs = max(1, min(int(np.sum(evals > LEADING_FLOOR * evals[-1])), len(centred) // 8))
    return centred @ (evecs[:, -n_dirs:] / np.sqrt(evals[-n_dirs:]))


def _decorrelated_whitened(centred, cov, spectrum: nulls.Spectrum, repeats: int, seed: int):
    """The draws whitened at decorrelated inputs of ``cov``, and ``whitened_lrt``'s null there.

    The inputs: squared correlations below ``DECORRELATED_R2``, at most a quarter as many as
    the draws.
    """
    draws = len(centred)
    keep = nulls.decorrelated(cov, spectrum.key, DECORRELATED_R2)
    keep = keep[:: -(-len(keep) // (draws // 4))]
    evals, evecs = np.linalg.eigh(cov[np.ix_(keep, keep)])
    lrt_null = nulls.memo(
        ("whitened", draws, len(keep), repeats, seed),
        lambda: nulls.lrt_null(draws, len(keep), repeats, seed),
    )
    return centred[:, keep] @ (evecs / np.sqrt(evals)), lrt_null


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
) -> nulls.Check:
    """Are ``samples`` (draws, n) i.i.d. draws of N(mean, cov)? Mean known (zero if not given).

    The profile statistics of :func:`variance_check` on the mean of the squared
    deviations, plus ``whitened_scale`` and ``whitened_lrt`` at the inputs whose
    correlations under ``cov`` have squares below ``DECORRELATED_R2`` (at most a quarter
    as many as the draws, so that the sample covariance there is well determined), and
    with ``leading=True`` also ``leading_scale`` (see the module's docstring; its exact
    law, :mod:`rndlib.nulls`).
    ``whitened`` names the statistics at decorrelated inputs: ``"all"`` (both), ``"lrt"``
    or ``"none"``. On a smooth profile those inputs include some next to the data, where a
    finite network's variance departs most from the kernel's (notebooks 02 and 03), and
    ``whitened_scale`` reads exactly that variance; ``whitened_lrt`` reads mostly the
    correlations (a common factor c moves it only by about ``k (c - 1)^2 / 2``), and
    ``leading_scale`` reads the directions that carry the variance.
    """
    level = nulls.check_level(level)
    whitened = validate.choice("whitened", whitened, ("all", "lrt", "none"))
    cov, spectrum = nulls.spectrum("cov", cov)
    samples = validate.array("samples", samples, ("draws", len(cov)))
    draws = samples.shape[0]
    if draws < 8:
        raise ValueError(f"samples must hold at least 8 draws, got {draws}")
    centred = samples - (0.0 if mean is None else validate.array("mean", mean, (len(cov),)))
    profile, guess = _profile_tests(np.mean(centred**2, axis=0), cov, draws, repeats, seed)
    if whitened != "none":
        white, lrt_null = _decorrelated_whitened(centred, cov, spectrum, repeats, seed)
    top = _leading_whitened(centred, spectrum) if leading else None

    def tests(scale: float | np.ndarray) -> dict[str, nulls.NullTest]:
        found = profile(scale)
        if whitened != "none":
            rescaled = white / np.sqrt(np.asarray(scale))[..., None, None]
        if whitened == "all":
            found["whitened_scale"] = nulls.scale_test(
                np.mean(rescaled**2, axis=(-2, -1)), white.size
            )
        if whitened != "none":
            found["whitened_lrt"] = nulls.null_test(nulls.lrt(rescaled), lrt_null, two_sided=False)
        if leading:
            found["leading_scale"] = nulls.scale_test(np.mean(top**2) / scale, top.size)
        return found

    return _fitted(tests, level, guess, fit_scale)


def _normalised_estimates(estimates, cov, key: str, dof: int, name: str, max_r2: float):
    """``dof * estimate / variance`` at the decorrelated inputs of ``cov``, and those inputs."""
    estimates = validate.array(name, estimates, ("networks", len(cov)))
    keep = nulls.decorrelated(cov, key, max_r2)
    return dof * estimates[:, keep] / np.diag(cov)[keep], keep


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
) -> nulls.Check:
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
    level = nulls.check_level(level)
    dof = validate.integer("dof", dof)
    repeats = validate.integer("repeats", repeats, minimum=50)
    max_r2 = validate.finite("max_r2", max_r2, above=0.0, below=1.0)
    cov, spectrum = nulls.spectrum("cov", cov)
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
            null = nulls.exact_estimates(cov_kept, len(values), dof, size, rng)
            ad[start : start + size] = nulls.ad_chi2(null, dof)
            if others is not None:
                null_other = nulls.exact_estimates(cov_kept, len(others), dof, size, rng)
                ks[start : start + size] = nulls.ks_two_sample(null, null_other)
        return np.sort(ad), (None if others is None else np.sort(ks))

    n_other = 0 if others is None else len(others)
    key = ("law", nulls.digest(cov_kept), len(values), n_other, dof, repeats, seed)
    ad_null, ks_null = nulls.memo(key, simulate)
    tests = {"ad_chi2": nulls.counted_test(nulls.ad_chi2(values.ravel(), dof), ad_null)}
    if others is not None:
        statistic = nulls.ks_two_sample(values.ravel(), others.ravel())
        tests["ks_two_sample"] = nulls.counted_test(statistic, ks_null)
    return nulls.Check(tests, level)


def _whitened_heads(errors: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """(networks * r, heads): errors in the r leading eigendirections of cov, standardised.

    Each direction is scaled by its root mean square over networks and heads, the same
    for every head: a variance that is off in one direction (a finite network's kernel)
    then neither dominates the correlations nor makes two heads look alike.
    """
    cov, spectrum = nulls.spectrum("cov", cov)
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
) -> nulls.Check:
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
    level = nulls.check_level(level)
    repeats = validate.integer("repeats", repeats, minimum=50)
    white = _whitened_heads(errors, cov)
    networks, heads = np.shape(errors)[0], np.shape(errors)[2]

    def simulate():
        rng = np.random.default_rng(seed)
        shape = (repeats, networks, len(white) // networks, heads)
        corr = _offdiagonal_correlations(_standardised(rng.standard_normal(shape)))
        return np.max(np.abs(corr), axis=-1), np.mean(corr**2, axis=-1)

    null_max, null_mean = nulls.memo(
        ("heads", len(white), networks, heads, repeats, seed), simulate
    )
    found = _offdiagonal_correlations(white[None])[0]
    tests = {
        "max_head_corr": nulls.null_test(np.max(np.abs(found)), null_max, two_sided=False),
        "mean_head_corr2": nulls.null_test(np.mean(found**2), null_mean, two_sided=False),
    }
    return nulls.Check(tests, level)


def head_independence_over_time(
    paths: np.ndarray, covariances: dict[int, np.ndarray], *, level: float, seed: int = 0
) -> nulls.Check:
    """Prop. 5.5 at every recorded step: :func:`head_independence_check` at each ``t``.

    ``paths`` (networks, steps + 1, n, heads): errors after 0, 1, ... steps (``path`` of
    :func:`rndlib.estimators.rnd_variance` or :func:`rndlib.estimators.bayesian_rnd_errors`);
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
    return nulls.Check(tests, nulls.check_level(level))
