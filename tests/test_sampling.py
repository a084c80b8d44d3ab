"""The posterior sampler's parts against their closed forms."""

import gaussians
import numpy as np
import pytest
import scipy.stats

from rndlib import estimators, metrics, models, optimizers, sampling, theory


def test_gaussian_samples_have_the_requested_moments():
    """Cholesky draws against the eigendecomposition-based Monte-Carlo null of metrics."""
    x = np.linspace(-1, 1, 12)
    cov = np.exp(-((x[:, None] - x[None, :]) ** 2)) + 0.01 * np.eye(12)
    mean = np.sin(x)
    draws = sampling.gaussian_samples(mean, cov, 1000, seed=0)
    centred = draws - mean
    error = metrics.relative_error(centred.T @ centred / len(draws), cov)
    assert error < np.quantile(gaussians.covariance_error_null(cov, 1000, repeats=200), 0.99)
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
    real = estimators.bayesian_rnd_errors

    def diverged(*args, **kwargs):
        errors = real(*args, **kwargs)
        return errors._replace(trained=np.full_like(errors.trained, np.nan))

    monkeypatch.setattr(estimators, "bayesian_rnd_errors", diverged)
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


def test_trained_ensemble_converges_with_a_ridge(toy):
    def ensemble(optimizer):
        data = (toy.x_train, toy.y_train, toy.x_test)
        common = dict(members=3, steps=None, lr_fraction=1.0, seed=0, ridge=1.0)
        return sampling.trained_ensemble(
            models.ArchSpec(width=128), *data, **common, optimizer=optimizer
        )

    ens = ensemble(optimizers.GD)
    assert ens.test.shape == (3, len(toy.x_test), 1)
    assert ens.steps == optimizers.steps_to_convergence(ens.lr, 1.0) == int(np.ceil(5 / ens.lr))
    fast = ensemble(optimizers.Optimizer("nesterov"))
    assert fast.steps == int(np.ceil(10 / np.sqrt(fast.lr))) < ens.steps
    assert metrics.relative_error(fast.test, ens.test) < 0.01  # the same minimiser
    with pytest.raises(ValueError, match="ridge > 0"):
        optimizers.steps_to_convergence(0.01, 0.0)
