"""The score checks (notebook 06) hold their level and reject another variance or scale."""

import gaussians
import numpy as np
import pytest

from rndlib import scores


def _ood_splits(n: int = 120, splits: int = 2):
    """Covariances whose variances are larger, on average, on the inputs marked positive."""
    rng = np.random.default_rng(5)
    covs, labels = [], []
    for _ in range(splits):
        positive = rng.random(n) < 0.5
        scale = np.exp(0.4 * positive + 0.5 * rng.standard_normal(n))
        a = rng.standard_normal((n, n // 2))
        covs.append((a @ a.T / (n // 2) + np.eye(n)) * np.sqrt(np.outer(scale, scale)))
        labels.append(positive)
    return covs, labels


def _scores(cov: np.ndarray, dof: int, seed: int) -> np.ndarray:
    return np.mean(gaussians.draws(cov, dof, seed) ** 2, axis=0)


def test_auroc_gap_check_holds_its_level_and_rejects_another_variance():
    """Two estimates of one variance pass; one of a variance less raised on positives does not."""
    covs, labels = _ood_splits()
    level, rejected = 0.1, []
    for r in range(30):
        a = [_scores(c, 40, 1000 + 2 * r + s) for s, c in enumerate(covs)]
        b = [_scores(c, 36, 2000 + 2 * r + s) for s, c in enumerate(covs)]
        check = scores.auroc_gap_check(a, b, covs, labels, 40, 36, level=level, repeats=200)
        rejected.append(not check.passed)
        if r < 3:  # the decoy: positives' variance lowered by a quarter, same draws
            lower = [np.where(positive, 0.75**0.5, 1.0) for positive in labels]
            wrong = [
                _scores(c * np.outer(w, w), 40, 7 + r) for c, w in zip(covs, lower, strict=True)
            ]
            decoy = scores.auroc_gap_check(wrong, b, covs, labels, 40, 36, level=0.01, repeats=200)
            assert not decoy.passed, decoy.report()
    assert np.mean(rejected) <= level + 3 * np.sqrt(level * (1 - level) / 30)


def test_auroc_gap_check_names_bad_arguments():
    covs, labels = _ood_splits(splits=1)
    good = [np.ones(len(covs[0]))]
    with pytest.raises(ValueError, match="one entry per split"):
        scores.auroc_gap_check(good, good + good, covs, labels, 4, 4, level=0.01)
    with pytest.raises(ValueError, match=r"labels\[0\] must mark both classes"):
        scores.auroc_gap_check(good, good, covs, [np.ones(len(covs[0]), bool)], 4, 4, level=0.01)
    with pytest.raises(ValueError, match=r"scores_b\[0\] must be"):
        scores.auroc_gap_check(good, [good[0][:-1]], covs, labels, 4, 4, level=0.01)
    with pytest.raises(ValueError, match="dof_a"):
        scores.auroc_gap_check(good, good, covs, labels, 0, 4, level=0.01)


def test_log_ratio_check_holds_its_level_and_rejects_a_scale_and_another_shape():
    """Two estimates of one variance pass at the level's rate; doubled or reshaped do not."""
    covs, _ = _ood_splits()
    level, rejected = 0.1, []
    for r in range(200):
        a = [3.0 * _scores(c, 40, 1000 + 2 * r + s) for s, c in enumerate(covs)]
        b = [_scores(c, 36, 5000 + 2 * r + s) for s, c in enumerate(covs)]
        check = scores.log_ratio_check(a, b, covs, 40, 36, ratio=3.0, level=level, repeats=200)
        rejected.append(not check.passed)
    assert abs(np.mean(rejected) - level) < 3 * np.sqrt(level * (1 - level) / 200)
    tilt = [np.linspace(0.5, 2.0, len(c)) for c in covs]  # a variance of another shape
    decoys = {
        "doubled": [2 * 3.0 * x for x in a],
        "shape": [
            3.0 * _scores(c * np.outer(w, w), 40, 7) for c, w in zip(covs, tilt, strict=True)
        ],
    }
    for name, wrong in decoys.items():
        decoy = scores.log_ratio_check(wrong, b, covs, 40, 36, ratio=3.0, level=0.01, repeats=200)
        assert not decoy.passed, (name, decoy.report())


def test_log_ratio_check_names_bad_arguments():
    covs, _ = _ood_splits(splits=1)
    good = [np.ones(len(covs[0]))]
    with pytest.raises(ValueError, match="one entry per split"):
        scores.log_ratio_check(good, good + good, covs, 4, 4, level=0.01)
    with pytest.raises(ValueError, match=r"scores_a\[0\] must be"):
        scores.log_ratio_check([-good[0]], good, covs, 4, 4, level=0.01)
    with pytest.raises(ValueError, match="ratio"):
        scores.log_ratio_check(good, good, covs, 4, 4, ratio=0.0, level=0.01)
