"""Monte-Carlo floors and z-scores against simulation; fitted rates against known laws."""

import numpy as np
import pytest
import scipy.stats

from rndlib import metrics


@pytest.mark.parametrize("dof", [4, 16, 128])
def test_variance_zscores_are_standard_normal_under_the_null(dof):
    rng = np.random.default_rng(dof)
    estimates = 2.5 * rng.chisquare(dof, size=20_000) / dof  # true variance 2.5
    z = metrics.variance_zscores(estimates, 2.5, dof)
    assert scipy.stats.kstest(z, "norm").pvalue > 0.01
    # ... and reject a variance 10% off.
    assert scipy.stats.kstest(metrics.variance_zscores(estimates, 2.75, dof), "norm").pvalue < 1e-6


@pytest.mark.parametrize("dof", [8, 64])
def test_mc_floor_matches_simulation(dof):
    ratios = np.random.default_rng(0).chisquare(dof, size=200_000) / dof
    assert metrics.variance_mc_floor(dof) == pytest.approx(np.mean(np.abs(ratios - 1)), rel=0.01)
    assert metrics.variance_mc_floor(dof) < np.sqrt(2 / dof)


def test_decorrelated_points_respect_the_threshold():
    x = np.linspace(0, 10, 60)
    cov = np.exp(-((x[:, None] - x[None, :]) ** 2)) * (1 + x)[:, None] * (1 + x)[None, :]
    keep = metrics.decorrelated_points(cov, max_r2=0.1)
    sd = np.sqrt(np.diag(cov))
    r2 = (cov / np.outer(sd, sd))[np.ix_(keep, keep)] ** 2
    assert np.all(r2[~np.eye(len(keep), dtype=bool)] < 0.1)
    assert 59 in keep  # the largest variance is kept first
    assert 5 < len(keep) < 30


def test_power_law_fit_recovers_a_known_rate():
    widths = np.array([64, 256, 1024, 4096])
    fit = metrics.power_law_fit(widths, 3.0 * widths**-0.5)
    assert fit.slope == pytest.approx(-0.5) and fit.scale == pytest.approx(3.0)
    assert fit(16.0) == pytest.approx(0.75)


def test_slope_pvalue_holds_its_level_on_simulated_power_laws():
    # log errors scattered normally about n^-1/2: the t test's p-values are uniform
    rng = np.random.default_rng(0)
    widths = np.repeat([64, 256, 1024, 4096], 8)
    fits = [
        metrics.power_law_fit(widths, widths**-0.5 * np.exp(0.3 * rng.standard_normal(32)))
        for _ in range(4000)
    ]
    assert fits[0].dof == 30
    two = np.array([f.slope_pvalue(-0.5, "two-sided") for f in fits])
    less = np.array([f.slope_pvalue(-0.5, "less") for f in fits])
    for p in (two, less):  # 0.05 within 4 binomial standard errors (0.0034)
        assert abs(np.mean(p < 0.05) - 0.05) < 0.014
    wrong = [f.slope_pvalue(0.0, "less") for f in fits]  # a fall, against "no fall"
    assert np.mean(np.array(wrong) < 1e-3) > 0.99


def test_slope_pvalue_refuses_what_it_cannot_test():
    exact = metrics.power_law_fit([64.0, 256.0], [1.0, 0.5])
    with pytest.raises(ValueError, match=r"dof >= 1"):
        exact.slope_pvalue(-0.5, "less")
    fit = metrics.power_law_fit([64.0, 256.0, 1024.0], [1.0, 0.6, 0.2])
    with pytest.raises(ValueError, match=r"alternative must be one of"):
        fit.slope_pvalue(-0.5, "greater")
    with pytest.raises(ValueError, match=r"slope must be a finite number"):
        fit.slope_pvalue(np.nan, "less")


def test_relative_errors():
    assert metrics.relative_error(np.array([1.0, 1.0]), np.array([1.0, 0.0])) == pytest.approx(1.0)
    assert metrics.mean_relative_discrepancy([1.1, 0.8], [1.0, 1.0]) == pytest.approx(0.15)


def test_median_wall_time_warms_up_and_waits():
    calls = []

    def work():
        calls.append(1)
        return np.ones(3)

    seconds = metrics.median_wall_time(work, repeats=3)
    assert len(calls) == 4  # one warm-up call, then the three timed ones
    assert np.isfinite(seconds) and seconds >= 0


def test_gaussian_nll_and_coverage_of_exact_draws():
    rng = np.random.default_rng(0)
    mean, var = rng.standard_normal(20000), rng.uniform(0.5, 2.0, 20000)
    y = mean + np.sqrt(var) * rng.standard_normal(20000)
    expected = 0.5 * np.mean(np.log(2 * np.pi * var) + (y - mean) ** 2 / var)
    assert metrics.gaussian_nll(y, mean, var) == pytest.approx(expected, rel=1e-12)
    for level in (0.5, 0.9):
        sd = np.sqrt(level * (1 - level) / len(y))
        assert abs(metrics.interval_coverage(y, mean, var, level) - level) < 4 * sd
    assert metrics.interval_coverage(y, mean, var / 100, 0.9) < 0.3  # overconfident


def test_auroc_null_sd_matches_random_scores():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1], [40, 60])
    aucs = [roc_auc_score(labels, rng.standard_normal(100)) for _ in range(2000)]
    assert np.std(aucs) == pytest.approx(metrics.auroc_null_sd(40, 60), rel=0.1)


def test_auroc_is_sklearns_over_leading_axes():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(2)
    positive = rng.random(50) < 0.4
    scores = rng.standard_normal((3, 4, 50)) + positive
    expected = [[roc_auc_score(positive, s) for s in row] for row in scores]
    np.testing.assert_allclose(metrics.auroc(scores, positive), expected, rtol=1e-12)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"level": 1.5}, r"level must be less than 1"),
        ({"level": 0.0}, r"level must be greater than 0"),
        ({"var": -np.ones(5)}, r"var must be non-negative"),
        ({"var": np.full(5, np.inf)}, r"var must be finite"),
        ({"mean": np.zeros(4)}, r"mean must have shape \(5\), got \(4,\)"),
        ({"y": np.zeros((5, 1))}, r"mean must have shape \(5, 1\), got \(5,\)"),
    ],
)
def test_interval_coverage_refuses_bad_arguments(arguments, message):
    given = {"y": np.zeros(5), "mean": np.zeros(5), "var": np.ones(5), "level": 0.9} | arguments
    with pytest.raises(ValueError, match=message):
        metrics.interval_coverage(**given)
    assert metrics.interval_coverage(np.zeros(5), np.zeros(5), np.zeros(5), 0.9) == 1.0


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        ([64.0], [1.0], r"at least 2 points"),
        ([64.0, 256.0, 1024.0], [1.0, 0.5], r"y must have shape \(3\), got \(2,\)"),
        ([64.0, 256.0], [1.0, 0.0], r"y must be positive"),
        ([-64.0, 256.0], [1.0, 0.5], r"x must be positive"),
        ([64.0, 256.0], [1.0, np.nan], r"y must be finite"),
        ([[64.0, 256.0]], [1.0, 0.5], r"x must have shape \(n\), got \(1, 2\)"),
    ],
)
def test_power_law_fit_refuses_too_few_or_bad_points(x, y, message):
    with pytest.raises(ValueError, match=message):
        metrics.power_law_fit(x, y)
    two = metrics.power_law_fit([64.0, 256.0], [1.0, 0.5])  # exact through two points
    assert two.slope == pytest.approx(-0.5) and two.slope_stderr == 0.0


def test_other_metrics_name_their_bad_argument():
    cov = np.eye(4) + 0.5
    with pytest.raises(ValueError, match=r"var must be positive"):
        metrics.gaussian_nll(np.zeros(3), np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match=r"mean must have shape"):
        metrics.gaussian_nll(np.zeros(3), np.zeros(2), np.ones(3))
    with pytest.raises(ValueError, match=r"dof must be an integer >= 1"):
        metrics.variance_zscores(np.ones(3), 1.0, 0)
    with pytest.raises(ValueError, match=r"dof must be an integer >= 1"):
        metrics.variance_mc_floor(2.5)
    with pytest.raises(ValueError, match=r"cov must be a square matrix"):
        metrics.decorrelated_points(cov[:3])
    with pytest.raises(ValueError, match=r"max_r2 must be greater than 0"):
        metrics.decorrelated_points(cov, max_r2=0.0)
    for null in (metrics.variance_discrepancy_null,):
        with pytest.raises(ValueError, match=r"cov must have shape \(n, n\)"):
            null(np.ones(4), draws=10)
        with pytest.raises(ValueError, match=r"draws must be an integer >= 1"):
            null(cov, draws=0)
        with pytest.raises(ValueError, match=r"repeats must be an integer >= 1"):
            null(cov, draws=10, repeats=0)
    with pytest.raises(ValueError, match=r"positive must hold one flag per score"):
        metrics.auroc(np.ones((2, 5)), np.ones(4, bool))
    with pytest.raises(ValueError, match=r"positive must mark some inputs and not all"):
        metrics.auroc(np.ones((2, 5)), np.zeros(5, bool))
    with pytest.raises(ValueError, match=r"n_negative must be an integer >= 1"):
        metrics.auroc_null_sd(0, 10)
    with pytest.raises(ValueError, match=r"repeats must be an integer >= 1"):
        metrics.median_wall_time(lambda: None, repeats=0)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: metrics.relative_error(np.ones(3), np.ones(4)), r"estimate must have shape \(4\)"),
        (lambda: metrics.relative_error(np.ones((2, 2)), np.zeros((2, 2))), r"reference must not"),
        (lambda: metrics.relative_error([1.0, np.nan], [1.0, 1.0]), r"estimate must be finite"),
        (
            lambda: metrics.mean_relative_discrepancy(np.ones(3), np.ones(1)),
            r"estimate must have shape \(1\)",
        ),
        (lambda: metrics.mean_relative_discrepancy(np.ones(2), [1.0, 0.0]), r"reference must be"),
        (lambda: metrics.variance_zscores(np.ones(3), np.ones(4), 8), r"must broadcast together"),
        (lambda: metrics.variance_zscores([np.nan], np.ones(1), 8), r"estimate must be finite"),
        (lambda: metrics.variance_zscores(np.ones(2), [1.0, -1.0], 8), r"exact must be positive"),
        (lambda: metrics.variance_zscores([-1.0, 1.0], np.ones(2), 8), r"estimate must be non-neg"),
        (lambda: metrics.energy_distance(np.ones((4, 2)), np.ones((4, 3))), r"b must have shape"),
        (lambda: metrics.energy_distance(np.ones(4), np.ones((4, 1))), r"a must have shape"),
    ],
)
def test_paired_metrics_refuse_mismatched_or_invalid_arrays(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_variance_zscores_broadcast_estimates_against_variances():
    z = metrics.variance_zscores(np.ones((5, 2, 3)), np.ones(3), 8)
    assert z.shape == (5, 2, 3) and np.allclose(z, z[0, 0])
    scaled = metrics.variance_zscores(np.ones(3), np.array([[1.0], [2.0]]), 8)  # two scales
    assert scaled.shape == (2, 3) and np.all(scaled[1] < scaled[0])
