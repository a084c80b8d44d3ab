"""Checks of uncertainty scores: do two scores, input by input, estimate one variance?

Notebook 06 scores real images by the ensemble's variance and by RND's error. If both are
variance estimates of one law (Cor. 5.4 of Zanger et al. 2026), the gap between their
AUROCs (:func:`auroc_gap_check`) and the mean log ratio of the two scores
(:func:`log_ratio_check`) are held against nulls simulated from the scores' Wishart laws,
with the inputs' correlations. Each returns a :class:`rndlib.nulls.Check` and refuses, with
a ValueError naming the argument, what it cannot judge (each docstring lists it): scores
that are not finite, splits of different lengths, a covariance that is not symmetric
positive semi-definite, a level outside (0, 1).
"""

import numpy as np

from rndlib import metrics, nulls, validate


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

    key = ("auroc", nulls.digest(*roots, *labels), dof_a, dof_b, repeats, seed)
    return nulls.memo(key, simulate)


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
) -> nulls.Check:
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
    level = nulls.check_level(level)
    dof_a, dof_b = validate.integer("dof_a", dof_a), validate.integer("dof_b", dof_b)
    repeats = validate.integer("repeats", repeats, minimum=50)
    if not len(scores_a) == len(scores_b) == len(covs) == len(labels) > 0:
        raise ValueError("scores_a, scores_b, covs and labels must have one entry per split")
    roots, positives, gap = [], [], 0.0
    for s, (a, b, cov, positive) in enumerate(zip(scores_a, scores_b, covs, labels, strict=True)):
        roots.append(nulls.spectrum(f"covs[{s}]", cov)[1].root)
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
    return nulls.Check({"auroc_gap": nulls.null_test(gap / len(covs), null, two_sided=True)}, level)


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
) -> nulls.Check:
    """Are two scores, image by image, estimates of one variance from ``dof_a`` and ``dof_b`` draws?

    For each split s, ``scores_a[s]`` and ``scores_b[s]`` (n_s,) score the same inputs,
    and the claim is that ``scores_a[s] / ratio`` and ``scores_b[s]`` are independent
    variance estimates of ``diag(covs[s])`` from ``dof_a`` and ``dof_b`` Gaussian draws.
    Then ``log(a / (ratio b))`` at each input is a difference of two log chi^2 variables,
    free of the variance there. Its mean over all inputs of all splits
    (``log_ratio_mean``) is tested two-sided against a null simulated from the
    estimates' Wishart laws with the inputs' correlations (nearly normal: a mean over
    many inputs), by the prediction interval of :func:`rndlib.nulls.prediction_test`. A scale off by
    a factor moves it by the log of that factor at every input; unlike an AUROC, which
    only ranks, it sees that.

    Raises:
        ValueError: naming the argument, for splits of different lengths or shapes,
            non-finite or non-positive scores, or a ``ratio`` that is not positive.
    """
    level = nulls.check_level(level)
    dof_a, dof_b = validate.integer("dof_a", dof_a), validate.integer("dof_b", dof_b)
    repeats = validate.integer("repeats", repeats, minimum=50)
    ratio = validate.finite("ratio", ratio, above=0.0)
    if not len(scores_a) == len(scores_b) == len(covs) > 0:
        raise ValueError("scores_a, scores_b and covs must have one entry per split")
    roots, found = [], []
    for s, (a, b, cov) in enumerate(zip(scores_a, scores_b, covs, strict=True)):
        roots.append(nulls.spectrum(f"covs[{s}]", cov)[1].root)
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

    null = nulls.memo(("log_ratio", nulls.digest(*roots), dof_a, dof_b, repeats, seed), simulate)
    return nulls.Check(
        {"log_ratio_mean": nulls.prediction_test(np.concatenate(found).mean(), null)}, level
    )
