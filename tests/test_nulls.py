"""The simulated nulls and their p-values hold their level; a Check refuses what it cannot judge."""

import gaussians
import numpy as np
import pytest
import scipy.stats

from rndlib import checks, nulls


def test_law_statistics_match_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.chisquare(4, 50), rng.chisquare(4, 70) * 1.2
    known = {"df": 4, "loc": 0, "scale": 1}
    ad = scipy.stats.goodness_of_fit(
        scipy.stats.chi2, a, known_params=known, statistic="ad", n_mc_samples=10
    ).statistic
    assert nulls.ad_chi2(a, 4) == pytest.approx(ad)
    assert nulls.ks_two_sample(a, b) == pytest.approx(scipy.stats.ks_2samp(a, b).statistic)


def test_counted_pvalues_count_the_sorted_null():
    """The lookup on a sorted null gives the direct count and numpy's 99% quantile."""
    null = np.sort(np.random.default_rng(0).gamma(2.0, size=1001))
    for value in (-1.0, 0.5, null[500], null[-1], 99.0):
        found = nulls.counted_test(value, null)
        assert found.pvalue == (1 + np.sum(null >= value)) / (1 + len(null))
        assert found.q99 == pytest.approx(np.quantile(null, 0.99), rel=1e-12)


def _false_alarm_rate_given_the_null(test, null, level):
    """P(reject) for a fresh uniform statistic, given one sorted uniform null: exact."""
    top = len(null) - 4 * int(level * len(null))  # the threshold lies among the top sets
    pvalues = np.array([test(v, null).pvalue for v in null[top:]])  # at null[j]: n - j reach it
    j = top + np.flatnonzero(pvalues <= level)[0]  # rejected from here, and down to null[j - 1]
    assert j > top
    return 1.0 - null[j - 1]


def test_counted_bound_holds_the_level_for_the_null_drawn():
    """Given one null, a plain count's false-alarm rate exceeds the level about half the
    time; the 99% bound's, in at most about 1% of the nulls (uniform statistics, whose
    tail is known exactly)."""
    rng, level, nulls_drawn = np.random.default_rng(0), 0.01, 1000
    above = {"count": 0, "bound": 0}
    for _ in range(nulls_drawn):
        null = np.sort(rng.random(2000))
        above["count"] += _false_alarm_rate_given_the_null(nulls.counted_test, null, level) > level
        bound = _false_alarm_rate_given_the_null(
            lambda v, n: nulls.counted_bound_test(v, n, two_sided=False), null, level
        )
        above["bound"] += bound > level
    assert 0.3 < above["count"] / nulls_drawn < 0.7
    assert above["bound"] / nulls_drawn <= 0.02  # 1% expected; 0.02 is 3 standard errors above
    with pytest.raises(ValueError, match="confidence"):
        nulls.counted_bound_test(0.5, null, two_sided=False, confidence=1.0)


def test_counted_bound_two_sided_is_twice_the_smaller_tail():
    null = np.sort(np.random.default_rng(1).normal(size=999))
    for value in (-2.5, -0.1, 0.0, 1.7, 3.5):
        upper = nulls.counted_bound_test(value, null, two_sided=False).pvalue
        lower = nulls.counted_bound_test(-value, -null[::-1], two_sided=False).pvalue
        both = nulls.counted_bound_test(value, null, two_sided=True).pvalue
        assert both == pytest.approx(min(1.0, 2 * min(upper, lower)), rel=1e-12)
        assert upper >= nulls.counted_test(value, null).pvalue  # a bound, never below the count


def test_nulls_are_simulated_once_per_covariance_and_reused_unchanged():
    cov = gaussians.cov()
    estimate = np.mean(gaussians.draws(cov, 32, 5) ** 2, axis=0)
    nulls._MEMO.clear()

    def profiles():
        return [k for k in nulls._MEMO if k[0] == "profile"]

    first = checks.variance_check(estimate, cov, 32, level=0.01, repeats=100)
    assert len(profiles()) == 1
    cached = dict(nulls._MEMO)
    again = checks.variance_check(1.5 * estimate, cov, 32, level=0.01, repeats=100)
    assert nulls._MEMO.keys() == cached.keys()  # nothing recomputed
    assert all(nulls._MEMO[k] is v for k, v in cached.items())
    assert first.tests["mean_z"].null_mean == again.tests["mean_z"].null_mean
    nulls._MEMO.clear()
    fresh = checks.variance_check(1.5 * estimate, cov, 32, level=0.01, repeats=100)
    assert fresh == again  # the same null, simulated anew
    checks.variance_check(estimate, 2 * cov, 32, level=0.01, repeats=100)
    assert len(profiles()) == 2
    with pytest.raises(ValueError, match="read-only"):
        nulls._MEMO[profiles()[0]][0, 0] = 0.0


def test_a_check_has_tests_and_finite_ones():
    with pytest.raises(ValueError, match=r"tests must hold at least one"):
        nulls.Check({}, 0.01)
    nan = nulls.NullTest(np.nan, np.nan, 1.0, 2.0)
    with pytest.raises(ValueError, match=r"tests\['x'\] is not finite"):
        nulls.Check({"x": nan}, 0.01)


def test_the_upper_tail_fit_is_conservative_where_a_gamma_fit_is_not():
    """The Anderson-Darling null's far tail: skewed log-normal (used) against a gamma fit."""
    cov = gaussians.cov()
    keep = nulls.decorrelated(cov, nulls.digest(cov), 0.5)
    rng = np.random.default_rng(3)
    null = nulls.ad_chi2(nulls.exact_estimates(cov[np.ix_(keep, keep)], 80, 4, 21000, rng), 4)
    fitted, held_out = null[:1000], null[1000:]
    level = 2e-4
    mean, var = fitted.mean(), fitted.var(ddof=1)
    gamma = scipy.stats.gamma(mean**2 / var, scale=var / mean)
    tail = np.sort(held_out)[-60:]  # the tail holds every exceedance of either fit
    used = np.array([nulls._pvalue(v, fitted, two_sided=False) for v in tail])
    assert np.sum(used < level) / len(held_out) <= level < np.mean(gamma.sf(held_out) < level)


def test_scale_statistics_hold_their_exact_level():
    """whitened_scale against chi^2(m) / m: rejects 5% of exact white sets at level 0.05."""
    rng = np.random.default_rng(4)
    values = np.mean(rng.standard_normal((20000, 64)) ** 2, axis=1)
    pvalues = np.array([nulls.scale_test(v, 64).pvalue for v in values])
    rate = np.mean(pvalues < 0.05)
    assert abs(rate - 0.05) < 4 * np.sqrt(0.05 * 0.95 / len(values)), rate
    assert nulls.scale_test(1.0, 64).pvalue > 0.9


def test_prediction_test_is_exact_for_a_normal_null():
    """Fitted to 50 draws, the t prediction interval rejects 5% of new draws at 0.05."""
    rng = np.random.default_rng(0)
    rates = [
        np.mean([nulls.prediction_test(x, null).pvalue <= 0.05 for x in rng.normal(size=200)])
        for null in rng.normal(size=(400, 50))
    ]
    assert abs(np.mean(rates) - 0.05) < 0.004, np.mean(rates)


def test_upper_tail_pvalue_matches_a_known_tail_and_names_bad_arguments():
    """For a log-normal null the fitted tail is the exact one, to the fit's noise."""
    null = np.exp(np.random.default_rng(0).normal(0.0, 0.5, 4000))
    for z in (1.0, 2.0, 3.0):
        exact = scipy.stats.norm.sf(z)
        assert abs(nulls.upper_tail_pvalue(np.exp(0.5 * z), null) / exact - 1) < 0.25
    with pytest.raises(ValueError, match="value"):
        nulls.upper_tail_pvalue(-1.0, null)
    with pytest.raises(ValueError, match="null must be"):
        nulls.upper_tail_pvalue(1.0, null[:10])
    with pytest.raises(ValueError, match="null must be"):
        nulls.upper_tail_pvalue(1.0, np.append(null, np.nan))
