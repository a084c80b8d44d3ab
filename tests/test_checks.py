"""The checks' nulls hold their false-alarm rate, and the checks reject wrong answers."""

import numpy as np
import pytest
import scipy.stats

from rndlib import checks


def _cov(n: int = 40) -> np.ndarray:
    """A smooth covariance whose variances span two orders of magnitude, like S_T[C]."""
    x = np.linspace(-3, 3, n)
    scale = 0.1 + x**2
    return np.exp(-0.5 * (x[:, None] - x[None, :]) ** 2) * np.outer(scale, scale) + 1e-6 * np.eye(n)


def _draws(cov: np.ndarray, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).multivariate_normal(np.zeros(len(cov)), cov, n)


def test_covariance_check_false_alarm_rate_is_at_most_its_level():
    cov = _cov()
    level = 0.1
    rejected = [
        not checks.covariance_check(_draws(cov, 64, r), cov, level=level, repeats=200).passed
        for r in range(60)
    ]
    # Bonferroni makes it conservative: at most `level`, up to binomial noise (3 sd).
    assert np.mean(rejected) <= level + 3 * np.sqrt(level * (1 - level) / 60)


def test_variance_check_false_alarm_rate_is_at_most_its_level():
    cov = _cov()
    level = 0.1
    rejected = [
        not checks.variance_check(
            np.mean(_draws(cov, 32, r) ** 2, axis=0), cov, 32, level=level, repeats=200
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
    cov = _cov()
    samples = _draws(cov, 256, 1)
    assert checks.covariance_check(samples, cov, level=0.01, repeats=300).passed
    assert not checks.covariance_check(samples, wrong(cov), level=0.01, repeats=300).passed


def test_fitted_scale_finds_the_constant_and_passes_a_multiple():
    cov = _cov()
    samples = _draws(cov, 256, 2)
    fitted = checks.covariance_check(samples, 3.0 * cov, level=0.01, fit_scale=True, repeats=300)
    assert fitted.passed
    assert fitted.scale == pytest.approx(1 / 3, rel=0.1)
    # ... and no constant turns a covariance of another shape into this one.
    other = cov * np.outer(np.linspace(0.5, 1.5, 40), np.linspace(0.5, 1.5, 40))
    assert not checks.covariance_check(
        samples, other, level=0.01, fit_scale=True, repeats=300
    ).passed


def test_variance_check_sees_a_profile_wrong_only_where_the_variance_is_small():
    cov = _cov()
    estimate = np.mean(_draws(cov, 64, 3) ** 2, axis=0)
    assert checks.variance_check(estimate, cov, 64, level=0.01, repeats=300).passed
    small = np.diag(cov) < 0.1 * np.median(np.diag(cov))
    assert small.any()
    bent = estimate * np.where(small, 2.0, 1.0)
    assert not checks.variance_check(bent, cov, 64, level=0.01, repeats=300).passed


def test_report_is_json_ready_and_names_every_statistic():
    cov = _cov()
    report = checks.covariance_check(_draws(cov, 64, 4), cov, level=0.01, repeats=300).report()
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
        call(_cov())


def test_leading_scale_rejects_a_variance_ten_percent_too_large():
    """``leading=True`` adds the whitened mean square in C's leading eigendirections."""
    cov = _cov()
    for r in range(6):
        check = checks.covariance_check(
            _draws(1.1 * cov, 1024, 10 + r), cov, level=0.01, repeats=300, leading=True
        )
        assert check.tests["leading_scale"].pvalue < 0.01 / len(check.tests)
    assert "leading_scale" not in checks.covariance_check(_draws(cov, 64, 0), cov, level=0.01).tests


def test_whitened_names_the_statistics_at_decorrelated_inputs():
    """``whitened`` keeps both statistics, the likelihood ratio alone, or neither."""
    cov = _cov()
    draws = _draws(cov, 64, 0)
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
    cov = _cov()
    level = 0.1
    rejected = [
        not checks.covariance_check(
            _draws(cov, 64, r), cov, level=level, repeats=200, leading=True
        ).passed
        for r in range(60)
    ]
    assert np.mean(rejected) <= level + 3 * np.sqrt(level * (1 - level) / 60)


def _estimates(cov: np.ndarray, networks: int, dof: int, seed: int) -> np.ndarray:
    """(networks, n): each network's mean of dof squared exact draws."""
    draws = np.random.default_rng(seed).multivariate_normal(
        np.zeros(len(cov)), cov, (networks, dof)
    )
    return np.mean(draws**2, axis=1)


def test_law_statistics_match_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.chisquare(4, 50), rng.chisquare(4, 70) * 1.2
    known = {"df": 4, "loc": 0, "scale": 1}
    ad = scipy.stats.goodness_of_fit(
        scipy.stats.chi2, a, known_params=known, statistic="ad", n_mc_samples=10
    ).statistic
    assert checks._ad_chi2(a, 4) == pytest.approx(ad)
    assert checks._ks_two_sample(a, b) == pytest.approx(scipy.stats.ks_2samp(a, b).statistic)


def test_counted_pvalues_count_the_sorted_null():
    """The lookup on a sorted null gives the direct count and numpy's 99% quantile."""
    null = np.sort(np.random.default_rng(0).gamma(2.0, size=1001))
    for value in (-1.0, 0.5, null[500], null[-1], 99.0):
        found = checks._counted_test(value, null)
        assert found.pvalue == (1 + np.sum(null >= value)) / (1 + len(null))
        assert found.q99 == pytest.approx(np.quantile(null, 0.99), rel=1e-12)


def test_chi2_law_check_holds_its_level_and_rejects_the_unhalved_error():
    cov, level = _cov(), 0.1
    rejected = []
    for r in range(40):
        est, other = _estimates(cov, 8, 4, r), _estimates(cov, 8, 4, 100 + r)
        rejected.append(
            not checks.chi2_law_check(est, cov, 4, other=other, level=level, repeats=200).passed
        )
    assert np.mean(rejected) <= level + 3 * np.sqrt(level * (1 - level) / 40)
    est, other = _estimates(cov, 8, 4, 1), _estimates(cov, 8, 4, 2)
    check = checks.chi2_law_check(est, cov, 4, other=other, level=0.01)
    assert check.passed and set(check.tests) == {"ad_chi2", "ks_two_sample"}
    doubled = checks.chi2_law_check(2 * est, cov, 4, other=other, level=0.01)
    assert doubled.tests["ad_chi2"].pvalue < 1e-3 and doubled.tests["ks_two_sample"].pvalue < 1e-2
    # a law with the right mean and the wrong shape: one chi^2(1) draw per "network", 4 apart
    lumped = _estimates(cov, 32, 1, 3).reshape(8, 4, -1).mean(axis=1)
    assert checks.chi2_law_check(lumped, cov, 4, level=0.01).passed
    wrong_dof = checks.chi2_law_check(_estimates(cov, 8, 1, 4), cov, 4, level=0.01)
    assert not wrong_dof.passed
    with pytest.raises(ValueError, match="estimates"):
        checks.chi2_law_check(est[:, :3], cov, 4, level=0.01)
    with pytest.raises(ValueError, match="max_r2"):
        checks.chi2_law_check(est, cov, 4, level=0.01, max_r2=1.0)


def test_head_independence_check_holds_its_level_and_sees_shared_components():
    cov, level = _cov(8), 0.1
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
    cov = _cov(8)
    rng = np.random.default_rng(1)
    paths = np.einsum("nm,sjmk->sjnk", np.linalg.cholesky(cov), rng.standard_normal((8, 3, 8, 4)))
    check = checks.head_independence_over_time(paths, {0: cov, 2: cov}, level=0.01)
    assert set(check.tests) == {
        f"t={t} {s}" for t in (0, 2) for s in ("max_head_corr", "mean_head_corr2")
    }
    single = checks.head_independence_check(paths[:, 2], cov, level=0.01)
    assert check.tests["t=2 mean_head_corr2"] == single.tests["mean_head_corr2"]
    assert check.pvalue == min(1.0, 4 * min(t.pvalue for t in check.tests.values()))


def test_nulls_are_simulated_once_per_covariance_and_reused_unchanged():
    cov = _cov()
    estimate = np.mean(_draws(cov, 32, 5) ** 2, axis=0)
    checks._MEMO.clear()

    def profiles():
        return [k for k in checks._MEMO if k[0] == "profile"]

    first = checks.variance_check(estimate, cov, 32, level=0.01, repeats=100)
    assert len(profiles()) == 1
    cached = dict(checks._MEMO)
    again = checks.variance_check(1.5 * estimate, cov, 32, level=0.01, repeats=100)
    assert checks._MEMO.keys() == cached.keys()  # nothing recomputed
    assert all(checks._MEMO[k] is v for k, v in cached.items())
    assert first.tests["mean_z"].null_mean == again.tests["mean_z"].null_mean
    checks._MEMO.clear()
    fresh = checks.variance_check(1.5 * estimate, cov, 32, level=0.01, repeats=100)
    assert fresh == again  # the same null, simulated anew
    checks.variance_check(estimate, 2 * cov, 32, level=0.01, repeats=100)
    assert len(profiles()) == 2
    with pytest.raises(ValueError, match="read-only"):
        checks._MEMO[profiles()[0]][0, 0] = 0.0


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
    return np.mean(_draws(cov, dof, seed) ** 2, axis=0)


def test_auroc_gap_check_holds_its_level_and_rejects_another_variance():
    """Two estimates of one variance pass; one of a variance less raised on positives does not."""
    covs, labels = _ood_splits()
    level, rejected = 0.1, []
    for r in range(30):
        a = [_scores(c, 40, 1000 + 2 * r + s) for s, c in enumerate(covs)]
        b = [_scores(c, 36, 2000 + 2 * r + s) for s, c in enumerate(covs)]
        check = checks.auroc_gap_check(a, b, covs, labels, 40, 36, level=level, repeats=200)
        rejected.append(not check.passed)
        if r < 3:  # the decoy: positives' variance lowered by a quarter, same draws
            lower = [np.where(positive, 0.75**0.5, 1.0) for positive in labels]
            wrong = [
                _scores(c * np.outer(w, w), 40, 7 + r) for c, w in zip(covs, lower, strict=True)
            ]
            decoy = checks.auroc_gap_check(wrong, b, covs, labels, 40, 36, level=0.01, repeats=200)
            assert not decoy.passed, decoy.report()
    assert np.mean(rejected) <= level + 3 * np.sqrt(level * (1 - level) / 30)


def test_auroc_gap_check_names_bad_arguments():
    covs, labels = _ood_splits(splits=1)
    good = [np.ones(len(covs[0]))]
    with pytest.raises(ValueError, match="one entry per split"):
        checks.auroc_gap_check(good, good + good, covs, labels, 4, 4, level=0.01)
    with pytest.raises(ValueError, match=r"labels\[0\] must mark both classes"):
        checks.auroc_gap_check(good, good, covs, [np.ones(len(covs[0]), bool)], 4, 4, level=0.01)
    with pytest.raises(ValueError, match=r"scores_b\[0\] must be"):
        checks.auroc_gap_check(good, [good[0][:-1]], covs, labels, 4, 4, level=0.01)
    with pytest.raises(ValueError, match="dof_a"):
        checks.auroc_gap_check(good, good, covs, labels, 0, 4, level=0.01)


def _not_psd() -> np.ndarray:
    """A symmetric matrix with correlation 2 between two inputs: eigenvalues -1 and 3."""
    return np.array([[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def _every_check(cov, *, level=0.01, value=1.0, labels=(0, 1, 1)):
    """Each of the five checks (and the per-step one) called with ``cov`` on 3 inputs."""
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
        lambda: checks.auroc_gap_check(
            [np.full(n, value)],
            [np.ones(n)],
            [ok],
            [np.asarray(labels)],
            4,
            4,
            level=level,
            repeats=60,
        ),
    ]


@pytest.mark.parametrize("index", range(6))
def test_no_check_takes_a_covariance_that_is_not_psd(index):
    with pytest.raises(ValueError, match=r"(cov|covs\[0\]) must be positive semi-definite"):
        _every_check(_not_psd())[index]()


@pytest.mark.parametrize("index", range(6))
def test_no_check_takes_an_asymmetric_covariance(index):
    cov = np.eye(3) + np.triu(np.full((3, 3), 0.1), 1)
    with pytest.raises(ValueError, match=r"must be symmetric"):
        _every_check(cov)[index]()


@pytest.mark.parametrize("index", range(6))
def test_no_check_takes_nan_draws_or_estimates(index):
    """All-NaN errors once passed the heads' check with p = 1 (min(1, k * nan) is 1)."""
    with pytest.raises(ValueError, match=r"finite"):
        _every_check(np.eye(3), value=np.nan)[index]()


@pytest.mark.parametrize("level", [0.0, 1.0, -0.1, 1.5, np.nan])
@pytest.mark.parametrize("index", range(6))
def test_no_check_takes_a_level_outside_0_1(index, level):
    with pytest.raises(ValueError, match=r"level must"):
        _every_check(np.eye(3), level=level)[index]()


def test_no_check_takes_a_non_finite_or_mismatched_covariance():
    with pytest.raises(ValueError, match=r"cov must be finite"):
        checks.variance_check(np.ones(2), np.array([[1.0, np.nan], [np.nan, 1.0]]), 4, level=0.01)
    with pytest.raises(ValueError, match=r"cov must be a square matrix"):
        checks.variance_check(np.ones(2), np.ones((2, 3)), 4, level=0.01)


@pytest.mark.parametrize("labels", [(0, 1, 2), (0.5, 1, 0), (True, True, True)])
def test_auroc_gap_check_takes_only_binary_labels_of_both_classes(labels):
    with pytest.raises(ValueError, match=r"labels\[0\] must"):
        _every_check(np.eye(3), labels=labels)[5]()


def test_covariance_check_takes_a_finite_mean_of_the_right_shape():
    cov = np.eye(3)
    draws = np.random.default_rng(0).standard_normal((16, 3))
    with pytest.raises(ValueError, match=r"mean must be finite"):
        checks.covariance_check(draws, cov, np.array([0.0, np.nan, 0.0]), level=0.01)
    with pytest.raises(ValueError, match=r"mean must have shape"):
        checks.covariance_check(draws, cov, np.zeros(4), level=0.01)


def test_a_check_has_tests_and_finite_ones():
    with pytest.raises(ValueError, match=r"tests must hold at least one"):
        checks.Check({}, 0.01)
    with pytest.raises(ValueError, match=r"covariances must name at least one step"):
        checks.head_independence_over_time(np.zeros((4, 2, 3, 3)), {}, level=0.01)
    nan = checks.NullTest(np.nan, np.nan, 1.0, 2.0)
    with pytest.raises(ValueError, match=r"tests\['x'\] is not finite"):
        checks.Check({"x": nan}, 0.01)
    with pytest.raises(ValueError, match=r"covariances names step 5"):
        checks.head_independence_over_time(np.zeros((4, 2, 3, 3)), {5: np.eye(3)}, level=0.01)


def test_the_upper_tail_fit_is_conservative_where_a_gamma_fit_is_not():
    """The Anderson-Darling null's far tail: skewed log-normal (used) against a gamma fit."""
    cov = _cov()
    keep = checks._decorrelated(cov, checks._digest(cov), 0.5)
    rng = np.random.default_rng(3)
    null = checks._ad_chi2(checks._exact_estimates(cov[np.ix_(keep, keep)], 80, 4, 21000, rng), 4)
    fitted, held_out = null[:1000], null[1000:]
    level = 2e-4
    mean, var = fitted.mean(), fitted.var(ddof=1)
    gamma = scipy.stats.gamma(mean**2 / var, scale=var / mean)
    tail = np.sort(held_out)[-60:]  # the tail holds every exceedance of either fit
    used = np.array([checks._pvalue(v, fitted, two_sided=False) for v in tail])
    assert np.sum(used < level) / len(held_out) <= level < np.mean(gamma.sf(held_out) < level)


def test_scale_statistics_hold_their_exact_level():
    """whitened_scale against chi^2(m) / m: rejects 5% of exact white sets at level 0.05."""
    rng = np.random.default_rng(4)
    values = np.mean(rng.standard_normal((20000, 64)) ** 2, axis=1)
    pvalues = np.array([checks._scale_test(v, 64).pvalue for v in values])
    rate = np.mean(pvalues < 0.05)
    assert abs(rate - 0.05) < 4 * np.sqrt(0.05 * 0.95 / len(values)), rate
    assert checks._scale_test(1.0, 64).pvalue > 0.9


def test_log_ratio_check_holds_its_level_and_rejects_a_scale_and_another_shape():
    """Two estimates of one variance pass at the level's rate; doubled or reshaped do not."""
    covs, _ = _ood_splits()
    level, rejected = 0.1, []
    for r in range(200):
        a = [3.0 * _scores(c, 40, 1000 + 2 * r + s) for s, c in enumerate(covs)]
        b = [_scores(c, 36, 5000 + 2 * r + s) for s, c in enumerate(covs)]
        check = checks.log_ratio_check(a, b, covs, 40, 36, ratio=3.0, level=level, repeats=200)
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
        decoy = checks.log_ratio_check(wrong, b, covs, 40, 36, ratio=3.0, level=0.01, repeats=200)
        assert not decoy.passed, (name, decoy.report())


def test_prediction_test_is_exact_for_a_normal_null():
    """Fitted to 50 draws, the t prediction interval rejects 5% of new draws at 0.05."""
    rng = np.random.default_rng(0)
    rates = [
        np.mean([checks._prediction_test(x, null).pvalue <= 0.05 for x in rng.normal(size=200)])
        for null in rng.normal(size=(400, 50))
    ]
    assert abs(np.mean(rates) - 0.05) < 0.004, np.mean(rates)


def test_log_ratio_check_names_bad_arguments():
    covs, _ = _ood_splits(splits=1)
    good = [np.ones(len(covs[0]))]
    with pytest.raises(ValueError, match="one entry per split"):
        checks.log_ratio_check(good, good + good, covs, 4, 4, level=0.01)
    with pytest.raises(ValueError, match=r"scores_a\[0\] must be"):
        checks.log_ratio_check([-good[0]], good, covs, 4, 4, level=0.01)
    with pytest.raises(ValueError, match="ratio"):
        checks.log_ratio_check(good, good, covs, 4, 4, ratio=0.0, level=0.01)


def test_upper_tail_pvalue_matches_a_known_tail_and_names_bad_arguments():
    """For a log-normal null the fitted tail is the exact one, to the fit's noise."""
    null = np.exp(np.random.default_rng(0).normal(0.0, 0.5, 4000))
    for z in (1.0, 2.0, 3.0):
        exact = scipy.stats.norm.sf(z)
        assert abs(checks.upper_tail_pvalue(np.exp(0.5 * z), null) / exact - 1) < 0.25
    with pytest.raises(ValueError, match="value"):
        checks.upper_tail_pvalue(-1.0, null)
    with pytest.raises(ValueError, match="null must be"):
        checks.upper_tail_pvalue(1.0, null[:10])
    with pytest.raises(ValueError, match="null must be"):
        checks.upper_tail_pvalue(1.0, np.append(null, np.nan))
