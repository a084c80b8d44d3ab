"""The benchmark's computations (not its timings): each returns the uncertainty it claims to."""

import numpy as np
import pytest

from rndlib import bench, models, theory


def test_gp_task_is_the_ntk_posterior_variance():
    variance = bench._task("gp", 50, 8)()
    d = bench._problem(50)
    kernel_fn = models.network(models.ArchSpec(width=bench.WIDTH))[2]
    ntk = theory.kernel_blocks(kernel_fn, d.x_train, d.x_test, "ntk")
    exact = np.diag(theory.gp_posterior(ntk, d.y_train, bench.GP_NOISE).cov)
    np.testing.assert_allclose(variance, exact, rtol=1e-8)


@pytest.mark.parametrize("method", ["rnd", "ensemble"])
def test_network_tasks_estimate_the_ensemble_variance(method):
    """RND and the ensemble give a positive variance at every test point, on the analytic scale."""
    variance = np.asarray(bench._task(method, 50, 16)())
    assert variance.shape == (bench.N_TEST,) and np.all(variance > 0)
    d = bench._problem(50)
    kernel_fn = models.network(models.ArchSpec(width=bench.WIDTH))[2]
    ntk = theory.kernel_blocks(kernel_fn, d.x_train, d.x_test, "ntk")
    nngp = theory.kernel_blocks(kernel_fn, d.x_train, d.x_test, "nngp")
    lr = 1.0 / np.linalg.eigvalsh(ntk.train_train)[-1]
    op = theory.training_operator(ntk, lr=lr, steps=bench.STEPS).matrix
    cov = theory.sandwich(nngp, op)
    analytic = np.diag(cov)
    # The null of mean_x(estimate / analytic) for 16 exact draws at the same (correlated) points.
    evals, evecs = np.linalg.eigh(cov)
    root = evecs * np.sqrt(np.clip(evals, 0.0, None))
    rng = np.random.default_rng(0)
    null = [
        np.mean(np.mean((rng.standard_normal((16, len(cov))) @ root.T) ** 2, 0) / analytic)
        for _ in range(200)
    ]
    low, high = np.quantile(null, [0.005, 0.995])
    assert low < np.mean(variance / analytic) < high


def test_one_measurement_reports_time_and_memory():
    result = bench.measure_one("gp", 30, 8)
    assert result["wall_s"] > 0 and result["peak_rss_mb"] >= result["rss_before_mb"] > 0
