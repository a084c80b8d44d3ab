"""The scaling study's methods against closed forms, and its fitted laws."""

import gaussians
import jax
import numpy as np
import pytest

from rndlib import metrics, models, sampling, scaling, theory


@pytest.fixture(scope="module")
def small():
    return scaling.regression_problem(60, 25, seed=0)


def test_regression_problem_is_reproducible_and_standardised():
    a, b = scaling.regression_problem(2000, 10, 3), scaling.regression_problem(2000, 10, 3)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    assert a.x_train.shape == (2000, scaling.INPUT_DIM) and a.y_test.shape == (10, 1)
    assert abs(np.mean(np.sum(a.x_train**2, axis=1)) - 1.0) < 0.05  # unit mean square norm
    assert abs(np.var(a.y_train) - (1 + 0.25) * (4.8 / 4.8) ** 2) < 0.4


def test_exact_samples_have_the_gp_posterior_mean_and_variance(small):
    spec = scaling.SPEC.replace(width=64)
    ntk = theory.kernel_blocks(models.network(spec)[2], small.x_train, small.x_test, "ntk")
    posterior = theory.gp_posterior(ntk, small.y_train, noise=0.25)
    samples, mean, var = scaling.exact_samples(spec, small, 0.25, draws=2000, seed=0)
    np.testing.assert_allclose(mean, posterior.mean[:, 0], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(var, np.diag(posterior.cov), rtol=1e-8, atol=1e-10)
    z = (samples.mean(axis=0) - mean) / np.sqrt(var / 2000)
    assert np.max(np.abs(z)) < 4.5  # 25 inputs, a Gaussian z each


def test_pathwise_samples_condition_the_empirical_ntk_prior(small):
    """Mean: the empirical-NTK GP posterior mean; variance: its posterior variance (MC)."""
    spec = scaling.SPEC.replace(width=128)
    samples, mean, iterations = scaling.pathwise_samples(spec, small, 0.25, 400, 0, tol=1e-10)
    init_fn = models.network(spec.replace(heads=1))[0]
    params = init_fn(jax.random.PRNGKey(0), (-1, small.x_train.shape[1]))[1]
    blocks = theory.KernelBlocks(
        *(
            np.asarray(models.empirical_ntk(spec.replace(heads=1), params, a, b))
            for a, b in [
                (small.x_train, small.x_train),
                (small.x_test, small.x_train),
                (small.x_test, small.x_test),
            ]
        )
    )
    posterior = theory.gp_posterior(blocks, small.y_train, noise=0.25)
    np.testing.assert_allclose(mean, posterior.mean[:, 0], rtol=1e-7, atol=1e-9)
    cov = posterior.cov
    null = gaussians.covariance_error_null(cov, 400, repeats=100)
    error = metrics.relative_error(np.cov(samples.T, bias=True), cov)
    assert error < np.quantile(null, 0.99)
    assert error > 0 and iterations > 1
    # a decoy: the prior's own covariance, which conditioning must have shrunk
    assert metrics.relative_error(np.cov(samples.T), blocks.test_test) > np.quantile(null, 0.99)


def test_crossover_of_two_power_laws():
    n = np.array([10.0, 100.0, 1000.0, 10000.0])
    cubic = [{"n_train": k, "wall_s": 1e-6 * k**3} for k in n]
    linear = [{"n_train": k, "wall_s": 1e-3 * k**1.5} for k in n]
    assert scaling.crossover(cubic, linear) == pytest.approx(100.0)
    assert scaling.crossover(linear, cubic) is None
    faster = [{"n_train": k, "wall_s": 1e-6 * k**1.5} for k in n]  # faster from the start
    assert scaling.crossover(cubic, faster) is None


def test_projected_steps_follow_the_fitted_law():
    runs = [
        {"n_train": k, "steps": [int(2 * k**0.5), int(k**0.5), int(k**0.5)]} for k in (100, 400)
    ]
    got = scaling.projected_steps(runs, 1600)  # 80 and 40, rounded up after a log-log fit
    assert got[0] in (80, 81) and got[1] in (40, 41)
    with pytest.raises(ValueError, match="two sizes"):
        scaling.projected_steps(runs[:1], 1600)


def test_converged_sampler_reports_its_steps_and_converges(small):
    spec = scaling.SPEC.replace(width=256, heads=4)
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
    spec, noise = scaling.SPEC.replace(width=256, heads=2), 0.25
    common = {"heads": 2, "seeds": 1, "noise": noise, "seed": 0, "tol": 1e-5}
    one = spec.replace(heads=1)
    theta0 = models.network(one)[0](jax.random.PRNGKey(7), (-1, scaling.INPUT_DIM))[1]
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
