"""The benchmark's computations (not its timings), its fitted laws and its runner."""

import json

import numpy as np
import pytest

from rndlib import benchmark, data, models, theory


def test_crossover_of_two_power_laws():
    n = np.array([10.0, 100.0, 1000.0, 10000.0])
    cubic = [{"n_train": k, "wall_s": 1e-6 * k**3} for k in n]
    linear = [{"n_train": k, "wall_s": 1e-3 * k**1.5} for k in n]
    assert benchmark.crossover(cubic, linear) == pytest.approx(100.0)
    assert benchmark.crossover(linear, cubic) is None
    faster = [{"n_train": k, "wall_s": 1e-6 * k**1.5} for k in n]  # faster from the start
    assert benchmark.crossover(cubic, faster) is None


def test_projected_steps_follow_the_fitted_law():
    runs = [
        {"n_train": k, "steps": [int(2 * k**0.5), int(k**0.5), int(k**0.5)]} for k in (100, 400)
    ]
    got = benchmark.projected_steps(runs, 1600)  # 80 and 40, rounded up after a log-log fit
    assert got[0] in (80, 81) and got[1] in (40, 41)
    with pytest.raises(ValueError, match="two sizes"):
        benchmark.projected_steps(runs[:1], 1600)


def test_gp_task_is_the_ntk_posterior_variance():
    variance = benchmark.cost_task("gp", 50, 8)()
    d = data.make_sine(50, benchmark.COST["n_test"])
    kernel_fn = models.network(models.ArchSpec(width=benchmark.COST["width"]))[2]
    ntk = theory.kernel_blocks(kernel_fn, d.x_train, d.x_test, "ntk")
    exact = np.diag(theory.gp_posterior(ntk, d.y_train, benchmark.COST["gp_noise"]).cov)
    np.testing.assert_allclose(variance, exact, rtol=1e-8)


@pytest.mark.parametrize("method", ["rnd", "ensemble"])
def test_network_tasks_estimate_the_ensemble_variance(method):
    """RND and the ensemble give a positive variance at every test point, on the analytic scale."""
    variance = np.asarray(benchmark.cost_task(method, 50, 16)())
    assert variance.shape == (benchmark.COST["n_test"],) and np.all(variance > 0)
    d = data.make_sine(50, benchmark.COST["n_test"])
    kernel_fn = models.network(models.ArchSpec(width=benchmark.COST["width"]))[2]
    ntk = theory.kernel_blocks(kernel_fn, d.x_train, d.x_test, "ntk")
    nngp = theory.kernel_blocks(kernel_fn, d.x_train, d.x_test, "nngp")
    lr = 1.0 / np.linalg.eigvalsh(ntk.train_train)[-1]
    op = theory.training_operator(ntk, lr=lr, steps=benchmark.COST["steps"]).matrix
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
    result = benchmark.measure_cost("gp", 30, 8)
    assert result["wall_s"] > 0 and result["peak_rss_mb"] >= result["rss_before_mb"] > 0
    assert set(benchmark.machine()) >= {"backend", "cpu_count", "python", "jax"}
    with pytest.raises(ValueError, match="method"):
        benchmark.cost_task("svgp", 30, 8)


def test_a_sampler_measured_in_a_fresh_process_reports_and_saves(tmp_path):
    """The runner's own path: a fresh process, its report, its saved moments, their accuracy."""
    setting = benchmark.SETTING | {"n_test": 20, "draws": 4, "width": 64, "train_sizes": [40]}
    found = {}
    for method in ("exact", "pathwise_float32"):
        found[method] = benchmark.in_fresh_process(
            ["scaling", method, "40", "--setting", json.dumps(setting), "--out", str(tmp_path)]
        )
    assert found["pathwise_float32"]["iterations"] > 0 and found["exact"]["wall_s"] > 0
    accuracy = benchmark.accuracy("pathwise_float32", 40, tmp_path)
    assert accuracy["mean_error"] < 0.2 and 0.2 < accuracy["variance_ratio"] < 5
    failed = benchmark.in_fresh_process(["scaling", "svgp", "40", "--out", str(tmp_path)])
    assert "method must be one of" in failed["failed"]
