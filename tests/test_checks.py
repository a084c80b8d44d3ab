"""The checks hold their level, reject wrong answers and refuse what they cannot judge."""

import gaussians
import numpy as np
import pytest

from rndlib import checks, scores


def test_covariance_check_false_alarm_rate_is_at_most_its_level():
    cov = gaussians.cov()
    level = 0.1
    rejected = [
        not checks.covariance_check(
            gaussians.draws(cov, 64, r), cov, level=level, repeats=200
        ).passed
        for r in range(60)
    ]
    # Bonferroni makes it conservative: at most `level`, up to binomial noise (3 sd).
    assert np.mean(rejected) <= level + 3 * np.sqrt(level * (1 - level) / 60)


def test_variance_check_false_alarm_rate_is_at_most_its_level():
    cov = gaussians.cov()
    level = 0.1
    rejected = [
        not checks.variance_check(
            np.mean(gaussians.draws(cov, 32, r) ** 2, axis=0), cov, 32, level=level, repeats=200
        ).passed
        for r in range(60)
    ]
    assert np.mean(rejected) <= level + 3 * np.sqrt(level * (1 - level) / 60)


@pytest.mark.parametrize(
    "wrong",
    [
        lambda c: 1.3 * c,  # a constant off
        lambda c: c * np.outer(np.linspace(0.7, 1.3, len(c)), np.linspace(0.7, 1.3, len(c))),
        lambda c: np.diag(np.diag(c)),  # the right variances, no correlations
    ],
)
def test_covariance_check_rejects_wrong_covariances_it_would_pass(wrong):
    cov = gaussians.cov()
    samples = gaussians.draws(cov, 256, 1)
    assert checks.covariance_check(samples, cov, level=0.01, repeats=300).passed
    assert not checks.covariance_check(samples, wrong(cov), level=0.01, repeats=300).passed


def test_fitted_scale_finds_the_constant_and_passes_a_multiple():
    cov = gaussians.cov()
    samples = gaussians.draws(cov, 256, 2)
    fitted = checks.covariance_check(samples, 3.0 * cov, level=0.01, fit_scale=True, repeats=300)
    assert fitted.passed
    assert fitted.scale == pytest.approx(1 / 3, rel=0.1)
    # ... and no constant turns a covariance of another shape into this one.
    other = cov * np.outer(np.linspace(0.5, 1.5, 40), np.linspace(0.5, 1.5, 40))
    assert not checks.covariance_check(
        samples, other, level=0.01, fit_scale=True, repeats=300
    ).passed


def test_variance_check_sees_a_profile_wrong_only_where_the_variance_is_small():
    cov = gaussians.cov()
    estimate = np.mean(gaussians.draws(cov, 64, 3) ** 2, axis=0)
    assert checks.variance_check(estimate, cov, 64, level=0.01, repeats=300).passed
    small = np.diag(cov) < 0.1 * np.median(np.diag(cov))
    assert small.any()
    bent = estimate * np.where(small, 2.0, 1.0)
    assert not checks.variance_check(bent, cov, 64, level=0.01, repeats=300).passed


def test_report_is_json_ready_and_names_every_statistic():
    cov = gaussians.cov()
    report = checks.covariance_check(
        gaussians.draws(cov, 64, 4), cov, level=0.01, repeats=300
    ).report()
    assert set(report) >= {"passed", "rejected", "pvalue", "mean_z", "whitened_lrt"}
    assert report["rejected"] == (not report["passed"])
    assert set(report["mean_z"]) == {"statistic", "pvalue", "null_mean", "q99"}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda c: checks.variance_check(np.ones(39), c, 8, level=0.01, repeats=300),
            "estimate must have shape",
        ),
        (
            lambda c: checks.variance_check(np.ones(40), c, 0, level=0.01, repeats=300),
            "dof must be",
        ),
        (lambda c: checks.variance_check(np.ones(40), c, 8, level=1.5), "level must be less"),
        (
            lambda c: checks.covariance_check(np.ones((4, 40)), c, level=0.01, repeats=300),
            "at least 8 draws",
        ),
        (
            lambda c: checks.covariance_check(np.ones((9, 39)), c, level=0.01, repeats=300),
            "samples must have",
        ),
        (
            lambda c: checks.covariance_check(np.full((9, 40), np.nan), c, level=0.01, repeats=300),
            "samples must be finite",
        ),
    ],
)
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call(gaussians.cov())


def test_leading_scale_rejects_a_variance_ten_percent_too_large():
    """``leading=True`` adds the whitened mean square in C's leading eigendirections."""
    cov = gaussians.cov()
    for r in range(6):
        check = checks.covariance_check(
            gaussians.draws(1.1 * cov, 1024, 10 + r), cov, level=0.01, repeats=300, leading=True
        )
        assert check.tests["leading_scale"].pvalue < 0.01 / len(check.tests)
    assert (
        "leading_scale"
        not in checks.covariance_check(gaussians.draws(cov, 64, 0), cov, level=0.01).tests
    )


def test_whitened_names_the_statistics_at_decorrelated_inputs():
    """``whitened`` keeps both statistics, the likelihood ratio alone, or neither."""
    cov = gaussians.cov()
    draws = gaussians.draws(cov, 64, 0)
    found = {
        w: set(checks.covariance_check(draws, cov, level=0.01, whitened=w).tests)
        for w in ("all", "lrt", "none")
    }
    assert found["all"] - found["lrt"] == {"whitened_scale"}
    assert found["lrt"] - found["none"] == {"whitened_lrt"}
    assert not found["none"] & {"whitened_scale", "whitened_lrt"}
    with pytest.raises(ValueError, match="whitened must be one of"):
        checks.covariance_check(draws, cov, level=0.01, whitened=False)


def test_leading_scale_false_alarm_rate_is_at_most_its_level():
    cov = gaussians.cov()
    level = 0.1
    rejected = [
        not checks.covariance_check(
            gaussians.draws(cov, 64, r), cov, level=level, repeats=200, leading=True
        ).passed
        for r in range(60)
    ]
    assert np.mean(rejected) <= level + 3 * np.sqrt(level * (1 - level) / 60)


def test_chi2_law_check_holds_its_level_and_rejects_the_unhalved_error():
    cov, level = gaussians.cov(), 0.1
    rejected = []
    for r in range(40):
        est, other = gaussians.estimates(cov, 8, 4, r), gaussians.estimates(cov, 8, 4, 100 + r)
        rejected.append(
            not checks.chi2_law_check(est, cov, 4, other=other, level=level, repeats=200).passed
        )
    assert np.mean(rejected) <= level + 3 * np.sqrt(level * (1 - level) / 40)
    est, other = gaussians.estimates(cov, 8, 4, 1), gaussians.estimates(cov, 8, 4, 2)
    check = checks.chi2_law_check(est, cov, 4, other=other, level=0.01)
    assert check.passed and set(check.tests) == {"ad_chi2", "ks_two_sample"}
    doubled = checks.chi2_law_check(2 * est, cov, 4, other=other, level=0.01)
    assert doubled.tests["ad_chi2"].pvalue < 1e-3 and doubled.tests["ks_two_sample"].pvalue < 1e-2
    # a law with the right mean and the wrong shape: one chi^2(1) draw per "network", 4 apart
    lumped = gaussians.estimates(cov, 32, 1, 3).reshape(8, 4, -1).mean(axis=1)
    assert checks.chi2_law_check(lumped, cov, 4, level=0.01).passed
    wrong_dof = checks.chi2_law_check(gaussians.estimates(cov, 8, 1, 4), cov, 4, level=0.01)
    assert not wrong_dof.passed
    with pytest.raises(ValueError, match="estimates"):
        checks.chi2_law_check(est[:, :3], cov, 4, level=0.01)
    with pytest.raises(ValueError, match="max_r2"):
        checks.chi2_law_check(est, cov, 4, level=0.01, max_r2=1.0)


def test_head_independence_check_holds_its_level_and_sees_shared_components():
    cov, level = gaussians.cov(8), 0.1
    root = np.linalg.cholesky(cov)
    rng = np.random.default_rng(0)

    def heads(shared: float) -> np.ndarray:  # (networks, n, heads), heads correlated `shared`
        z = rng.standard_normal((8, 8, 4))
        common = rng.standard_normal((8, 8, 1))
        mixed = np.sqrt(1 - shared) * z + np.sqrt(shared) * common
        return np.einsum("nm,smk->snk", root, mixed)

    rejected = [
        not checks.head_independence_check(heads(0.0), cov, level=level, repeats=300).passed
        for _ in range(40)
    ]
    assert np.mean(rejected) <= level + 3 * np.sqrt(level * (1 - level) / 40)
    assert not checks.head_independence_check(heads(0.5), cov, level=0.01).passed
    with pytest.raises(ValueError, match="errors"):
        checks.head_independence_check(heads(0.0)[..., :1], cov, level=0.01)


def test_head_independence_over_time_names_each_step_and_corrects_for_all():
    cov = gaussians.cov(8)
    rng = np.random.default_rng(1)
    paths = np.einsum("nm,sjmk->sjnk", np.linalg.cholesky(cov), rng.standard_normal((8, 3, 8, 4)))
    check = checks.head_independence_over_time(paths, {0: cov, 2: cov}, level=0.01)
    assert set(check.tests) == {
        f"t={t} {s}" for t in (0, 2) for s in ("max_head_corr", "mean_head_corr2")
    }
    single = checks.head_independence_check(paths[:, 2], cov, level=0.01)
    assert check.tests["t=2 mean_head_corr2"] == single.tests["mean_head_corr2"]
    assert check.pvalue == min(1.0, 4 * min(t.pvalue for t in check.tests.values()))


def _not_psd() -> np.ndarray:
    """A symmetric matrix with correlation 2 between two inputs: eigenvalues -1 and 3."""
    return np.array([[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def _every_check(cov, *, level=0.01, value=1.0, labels=(0, 1, 1)):
    """Every check (the per-step one and the two score checks too) with ``cov`` on 3 inputs."""
    n = len(cov)
    good = np.eye(n)
    ok = good if cov is None else cov
    draws = np.full((16, n), value)
    return [
        lambda: checks.variance_check(np.full(n, value), ok, 8, level=level, repeats=60),
        lambda: checks.covariance_check(draws, ok, level=level, repeats=60),
        lambda: checks.chi2_law_check(np.full((4, n), value), ok, 2, level=level, repeats=60),
        lambda: checks.head_independence_check(
            np.full((4, n, 3), value), ok, level=level, repeats=60
        ),
        lambda: checks.head_independence_over_time(
            np.full((4, 2, n, 3), value), {1: ok}, level=level
        ),
        lambda: scores.auroc_gap_check(
            [np.full(n, value)],
            [np.ones(n)],
            [ok],
            [np.asarray(labels)],
            4,
            4,
            level=level,
            repeats=60,
        ),
        lambda: scores.log_ratio_check(
            [np.full(n, value)], [np.ones(n)], [ok], 4, 4, level=level, repeats=60
        ),
    ]


@pytest.mark.parametrize("index", range(7))
def test_no_check_takes_a_covariance_that_is_not_psd(index):
    with pytest.raises(ValueError, match=r"(cov|covs\[0\]) must be positive semi-definite"):
        _every_check(_not_psd())[index]()


@pytest.mark.parametrize("index", range(7))
def test_no_check_takes_an_asymmetric_covariance(index):
    cov = np.eye(3) + np.triu(np.full((3, 3), 0.1), 1)
    with pytest.raises(ValueError, match=r"must be symmetric"):
        _every_check(cov)[index]()


@pytest.mark.parametrize("index", range(7))
def test_no_check_takes_nan_draws_or_estimates(index):
    """All-NaN errors once passed the heads' check with p = 1 (min(1, k * nan) is 1)."""
    with pytest.raises(ValueError, match=r"finite"):
        _every_check(np.eye(3), value=np.nan)[index]()


@pytest.mark.parametrize("level", [0.0, 1.0, -0.1, 1.5, np.nan])
@pytest.mark.parametrize("index", range(7))
def test_no_check_takes_a_level_outside_0_1(index, level):
    with pytest.raises(ValueError, match=r"level must"):
        _every_check(np.eye(3), level=level)[index]()


def test_no_check_takes_a_non_finite_or_mismatched_covariance():
    with pytest.raises(ValueError, match=r"cov must be finite"):
        checks.variance_check(np.ones(2), np.array([[1.0, np.nan], [np.nan, 1.0]]), 4, level=0.01)
    with pytest.raises(ValueError, match=r"cov must be a square matrix"):
        checks.variance_check(np.ones(2), np.ones((2, 3)), 4, level=0.01)


def test_covariance_check_takes_a_finite_mean_of_the_right_shape():
    cov = np.eye(3)
    draws = np.random.default_rng(0).standard_normal((16, 3))
    with pytest.raises(ValueError, match=r"mean must be finite"):
        checks.covariance_check(draws, cov, np.array([0.0, np.nan, 0.0]), level=0.01)
    with pytest.raises(ValueError, match=r"mean must have shape"):
        checks.covariance_check(draws, cov, np.zeros(4), level=0.01)


@pytest.mark.parametrize("labels", [(0, 1, 2), (0.5, 1, 0), (True, True, True)])
def test_auroc_gap_check_takes_only_binary_labels_of_both_classes(labels):
    with pytest.raises(ValueError, match=r"labels\[0\] must"):
        _every_check(np.eye(3), labels=labels)[5]()


def test_head_independence_over_time_needs_steps_it_has():
    with pytest.raises(ValueError, match=r"covariances must name at least one step"):
        checks.head_independence_over_time(np.zeros((4, 2, 3, 3)), {}, level=0.01)
    with pytest.raises(ValueError, match=r"covariances names step 5"):
        checks.head_independence_over_time(np.zeros((4, 2, 3, 3)), {5: np.eye(3)}, level=0.01)
