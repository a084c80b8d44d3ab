"""The posterior sampler's parts against their closed forms."""

import jax
import numpy as np
import pytest

from rndlib import benchmark, data, estimators, metrics, models, optimizers, sampling, theory


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
        return errors._replace(draws=np.full_like(errors.draws, np.nan))

    monkeypatch.setattr(estimators, "bayesian_rnd_errors", diverged)
    spec = models.ArchSpec(depth=1, width=64, heads=2)
    with pytest.raises(FloatingPointError, match="diverged at width 64"):
        sampling.posterior_samples(
            spec, toy, heads=2, seeds=1, noise=0.5, lr_fraction=1.0, seed=0, steps=5
        )


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


@pytest.fixture(scope="module")
def small():
    return data.make_friedman(60, 25, seed=0)


def test_converged_sampler_reports_its_steps_and_converges(small):
    spec = benchmark.SPEC.replace(width=256, heads=4)
    found = sampling.converged_posterior_samples(
        spec, small, heads=4, seeds=2, noise=0.25, seed=0, tol=1e-2
    )
    assert found.samples.shape == (8, len(small.x_test)) and found.converged
    assert found.steps.shape == (3,) and all(s > 1 for s in found.steps)
    short = sampling.converged_posterior_samples(
        spec, small, heads=4, seeds=2, noise=0.25, seed=0, tol=1e-2, max_steps=2
    )
    assert not short.converged and list(short.steps) == [2, 2, 2]


def test_linearised_sampler_mean_is_kernel_regression_with_the_empirical_ntk(small):
    """Its mean network, linearised, ends at ``Theta_0(x, X) (Theta_0(X, X) + sigma^2 I)^-1 Y``.

    ``Theta_0`` is the empirical NTK of the mean network at its initialisation (seed + 7);
    float32 training agrees with float64. The decoy, the network itself at width 256,
    ends farther from it than the stopping rule's tolerance.
    """
    spec, noise = benchmark.SPEC.replace(width=256, heads=2), 0.25
    common = {"heads": 2, "seeds": 1, "noise": noise, "seed": 0, "tol": 1e-5}
    one = spec.replace(heads=1)
    theta0 = models.network(one)[0](jax.random.PRNGKey(7), (-1, data.FRIEDMAN_DIM))[1]
    gram = models.empirical_ntk(one, theta0, small.x_train, small.x_train)
    cross = models.empirical_ntk(one, theta0, small.x_test, small.x_train)
    gram = np.asarray(gram, np.float64) + noise * np.eye(len(gram))
    expected = np.asarray(cross, np.float64) @ np.linalg.solve(gram, small.y_train[:, 0])
    f64 = sampling.converged_posterior_samples(spec, small, linearised=True, **common)
    f32 = sampling.converged_posterior_samples(
        spec, small, linearised=True, dtype="float32", **common
    )
    assert f64.converged and f32.converged
    assert metrics.relative_error(f64.mean, expected) < 1e-4
    assert metrics.relative_error(f32.mean, expected) < 1e-3
    assert metrics.relative_error(f32.samples, f64.samples) < 1e-3
    network = sampling.converged_posterior_samples(spec, small, **common)
    assert metrics.relative_error(network.mean, expected) > 1e-2
    with pytest.raises(ValueError, match="dtype must be one of"):
        sampling.converged_posterior_samples(spec, small, dtype="float16", **common)
