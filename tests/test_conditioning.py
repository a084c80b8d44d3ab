"""Exact and pathwise posterior draws against the closed-form GP posterior."""

import gaussians
import jax
import numpy as np
import pytest
import scipy.stats

from rndlib import benchmark, conditioning, data, metrics, models, theory


@pytest.fixture(scope="module")
def small():
    return data.make_friedman(60, 25, seed=0)


def test_exact_samples_have_the_gp_posterior_mean_and_variance(small):
    spec = benchmark.SPEC.replace(width=64)
    ntk = theory.kernel_blocks(models.network(spec)[2], small.x_train, small.x_test, "ntk")
    exact = theory.gp_posterior(ntk, small.y_train, noise=0.25)
    samples, mean, var = conditioning.exact_samples(spec, small, 0.25, draws=2000, seed=0)
    np.testing.assert_allclose(mean, exact.mean[:, 0], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(var, np.diag(exact.cov), rtol=1e-8, atol=1e-10)
    z = (samples.mean(axis=0) - mean) / np.sqrt(var / 2000)
    assert np.max(np.abs(z)) < 4.5  # 25 inputs, a Gaussian z each


def test_pathwise_samples_condition_the_empirical_ntk_prior(small):
    """Mean: the empirical-NTK GP posterior mean; variance: its posterior variance (MC)."""
    spec = benchmark.SPEC.replace(width=128)
    samples, mean, iterations = conditioning.pathwise_samples(spec, small, 0.25, 400, 0, tol=1e-10)
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
    exact = theory.gp_posterior(blocks, small.y_train, noise=0.25)
    np.testing.assert_allclose(mean, exact.mean[:, 0], rtol=1e-7, atol=1e-9)
    cov = exact.cov
    null = gaussians.covariance_error_null(cov, 400, repeats=100)
    error = metrics.relative_error(np.cov(samples.T, bias=True), cov)
    assert error < np.quantile(null, 0.99)
    assert error > 0 and iterations > 1
    # a decoy: the prior's own covariance, which conditioning must have shrunk
    assert metrics.relative_error(np.cov(samples.T), blocks.test_test) > np.quantile(null, 0.99)


@pytest.mark.parametrize("root", conditioning.ROOTS)
def test_gaussian_samples_have_the_requested_moments(root):
    """Draws through either root against a Monte-Carlo null of the covariance error."""
    x = np.linspace(-1, 1, 12)
    cov = np.exp(-((x[:, None] - x[None, :]) ** 2)) + 0.01 * np.eye(12)
    mean = np.sin(x)
    draws = conditioning.gaussian_samples(mean, cov, 1000, seed=0, root=root)
    centred = draws - mean
    error = metrics.relative_error(centred.T @ centred / len(draws), cov)
    assert error < np.quantile(gaussians.covariance_error_null(cov, 1000, repeats=200), 0.99)
    assert np.all(np.abs(centred.mean(axis=0)) < 4 * np.sqrt(np.diag(cov) / len(draws)))
    assert scipy.stats.kstest(centred[:, 3] / np.sqrt(cov[3, 3]), "norm").pvalue > 0.01


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
        conditioning.gaussian_samples(*change(np.sin(x), cov), 10, seed=0)
    with pytest.raises(ValueError, match="draws"):
        conditioning.gaussian_samples(np.sin(x), cov, 0, seed=0)
    # round-off asymmetry (1e-9 of the largest entry) is a symmetric covariance
    rough = cov + np.triu(np.full_like(cov, 1e-9), 1)
    assert conditioning.gaussian_samples(np.sin(x), rough, 3, seed=0).shape == (3, 12)


def test_gaussian_samples_in_sets_and_through_a_singular_covariance():
    """A tuple of counts continues one stream; the eigen root draws a rank-1 covariance as is."""
    x = np.linspace(-1, 1, 12)
    cov = np.exp(-((x[:, None] - x[None, :]) ** 2)) + 0.01 * np.eye(12)
    sets = conditioning.gaussian_samples(np.zeros(12), cov, (3, 5), seed=4, root="eigen")
    flat = conditioning.gaussian_samples(np.zeros(12), cov, 15, seed=4, root="eigen")
    assert sets.shape == (3, 5, 12)
    np.testing.assert_allclose(sets.reshape(15, 12), flat, rtol=1e-12, atol=1e-14)
    # a rank-1 covariance: the eigen root keeps each draw on v's direction to the square
    # root of round-off, the Cholesky factor leaves its jitter's sqrt(1e-9) off it
    v = np.sin(3 * x)
    for root, (low, high) in {"eigen": (0, 1e-6), "cholesky": (1e-6, 1e-3)}.items():
        draws = conditioning.gaussian_samples(np.zeros(12), np.outer(v, v), 50, seed=0, root=root)
        off = draws - np.outer(draws @ v / (v @ v), v)
        assert low < np.max(np.abs(off)) / np.max(np.abs(draws)) < high, root
    with pytest.raises(ValueError, match="root"):
        conditioning.gaussian_samples(np.zeros(12), cov, 5, seed=0, root="svd")
    with pytest.raises(ValueError, match=r"draws\[1\]"):
        conditioning.gaussian_samples(np.zeros(12), cov, (3, 0), seed=0)


def test_pathwise_samples_in_float32_solve_the_same_systems(small):
    """float32 CG: the same mean to float32's precision; a bad dtype is named."""
    spec = benchmark.SPEC.replace(width=128)
    double = conditioning.pathwise_samples(spec, small, 0.25, 8, 0, tol=1e-6)
    single = conditioning.pathwise_samples(spec, small, 0.25, 8, 0, tol=1e-6, dtype="float32")
    assert single[0].dtype == np.float64 and single[0].shape == double[0].shape
    np.testing.assert_allclose(single[1], double[1], rtol=1e-3, atol=1e-4)
    # a decoy: the float32 mean differs from the float64 one, at float32's precision only
    assert 0 < metrics.relative_error(single[1], double[1]) < 1e-3
    with pytest.raises(ValueError, match="dtype"):
        conditioning.pathwise_samples(spec, small, 0.25, 8, 0, tol=1e-6, dtype="float16")
