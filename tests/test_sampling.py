"""The posterior sampler's parts against their closed forms."""

import numpy as np
import pytest
import scipy.stats

from rndlib import metrics, models, sampling, theory, train


def test_gaussian_samples_have_the_requested_moments():
    """Cholesky draws against the eigendecomposition-based Monte-Carlo null of metrics."""
    x = np.linspace(-1, 1, 12)
    cov = np.exp(-((x[:, None] - x[None, :]) ** 2)) + 0.01 * np.eye(12)
    mean = np.sin(x)
    draws = sampling.gaussian_samples(mean, cov, 1000, seed=0)
    centred = draws - mean
    error = metrics.relative_error(centred.T @ centred / len(draws), cov)
    assert error < np.quantile(metrics.covariance_error_null(cov, 1000, repeats=200), 0.99)
    assert np.all(np.abs(centred.mean(axis=0)) < 4 * np.sqrt(np.diag(cov) / len(draws)))
    assert scipy.stats.kstest(centred[:, 3] / np.sqrt(cov[3, 3]), "norm").pvalue > 0.01


def test_centred_network_mean_follows_the_noisy_lemma(toy):
    """A wide centred network trained with the pull ends at B_T Y (ridge operator)."""
    spec = models.ArchSpec(depth=1, width=8192)
    steps, noise = 200, 0.5
    mean = sampling.centred_network_mean(
        spec, toy, steps=steps, lr_fraction=1.0, seed=0, noise=noise
    )
    ntk = theory.kernel_blocks(models.network(spec)[2], toy.x_train, toy.x_test, "ntk")
    # The same step rule as the network's, from the analytic lambda_max (within a few percent).
    lam = np.linalg.eigvalsh(ntk.train_train)[-1]
    predicted = [
        theory.training_operator(ntk, lr=1.0 / (lam * f + noise), steps=steps, ridge=noise).matrix
        @ toy.y_train[:, 0]
        for f in (1.0, 1.05)
    ]
    assert min(metrics.relative_error(mean, p) for p in predicted) < 0.05


def test_posterior_samples_need_noise_to_converge(toy):
    with pytest.raises(ValueError, match="noise > 0"):
        sampling.posterior_samples(
            models.ArchSpec(depth=1, width=16),
            toy,
            heads=2,
            seeds=1,
            noise=0.0,
            lr_fraction=1.0,
            seed=0,
        )


def test_energy_distance_separates_distributions():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((300, 5)), rng.standard_normal((300, 5))
    shifted = b + 0.5
    assert metrics.energy_distance(a, b) < metrics.energy_distance(a, shifted)
    assert metrics.energy_distance(a, a) == pytest.approx(0.0, abs=1e-12)


def test_posterior_samples_take_either_bayesian_rnd_target(toy):
    common = {"heads": 2, "seeds": 2, "noise": 0.5, "lr_fraction": 1.0, "seed": 0, "steps": 3}
    spec = models.ArchSpec(depth=1, width=32)
    he, paper = (sampling.posterior_samples(spec, toy, target=k, **common) for k in ("he", "paper"))
    np.testing.assert_array_equal(he.mean, paper.mean)  # the same mean network
    assert he.samples.shape == paper.samples.shape == (4, len(toy.x_test))
    assert not np.allclose(he.samples, paper.samples)
    with pytest.raises(ValueError, match="target"):
        sampling.posterior_samples(spec, toy, target="full", **common)


def test_posterior_samples_say_when_training_diverged(toy, monkeypatch):
    real = train.bayesian_rnd_errors

    def diverged(*args, **kwargs):
        errors = real(*args, **kwargs)
        return errors._replace(trained=np.full_like(errors.trained, np.nan))

    monkeypatch.setattr(train, "bayesian_rnd_errors", diverged)
    spec = models.ArchSpec(depth=1, width=64, heads=2)
    with pytest.raises(FloatingPointError, match="diverged at width 64"):
        sampling.posterior_samples(
            spec, toy, heads=2, seeds=1, noise=0.5, lr_fraction=1.0, seed=0, steps=5
        )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m, c: (m, np.diag(c)), r"cov must have shape \(n, n\), got \(12,\)"),
        (lambda m, c: (m, c[:, :-1]), r"cov must be a square matrix"),
        (lambda m, c: (m, c + np.triu(np.full_like(c, 1e-3), 1)), r"cov must be symmetric"),
        (lambda m, c: (m, np.where(np.eye(12) > 0, np.nan, c)), r"cov must be finite"),
        (lambda m, c: (np.where(np.arange(12) == 3, np.nan, m), c), r"mean must be finite"),
        (lambda m, c: (m[:-1], c), r"mean must have shape \(12\), got \(11,\)"),
        (lambda m, c: (m[:, None], c), r"mean must have shape \(12\), got \(12, 1\)"),
    ],
)
def test_gaussian_samples_refuse_a_bad_covariance_or_mean(change, message):
    x = np.linspace(-1, 1, 12)
    cov = np.exp(-((x[:, None] - x[None, :]) ** 2)) + 0.01 * np.eye(12)
    with pytest.raises(ValueError, match=message):
        sampling.gaussian_samples(*change(np.sin(x), cov), 10, seed=0)
    with pytest.raises(ValueError, match="draws"):
        sampling.gaussian_samples(np.sin(x), cov, 0, seed=0)
    # round-off asymmetry (1e-9 of the largest entry) is a symmetric covariance
    rough = cov + np.triu(np.full_like(cov, 1e-9), 1)
    assert sampling.gaussian_samples(np.sin(x), rough, 3, seed=0).shape == (3, 12)
