"""rndlib.power: simulated rejection rates against the binomial law and the checks' own nulls."""

import numpy as np
import pytest
import scipy.stats

from rndlib import checks, power


def _cov(n: int = 40) -> np.ndarray:
    """A smooth covariance whose variances span two orders of magnitude, like S_T[C]."""
    x = np.linspace(-3, 3, n)
    scale = 0.1 + x**2
    return np.exp(-0.5 * (x[:, None] - x[None, :]) ** 2) * np.outer(scale, scale) + 1e-6 * np.eye(n)


def test_draws_have_the_covariance_and_estimates_the_chi2_law():
    cov = _cov(6)
    rng = np.random.default_rng(0)
    draws = power.gaussian_draws(cov, (20_000,), rng)
    assert draws.shape == (20_000, 6)
    np.testing.assert_allclose(np.cov(draws.T), cov, atol=0.05 * np.max(cov))
    estimates = power.variance_estimates(cov, (20_000,), 4, rng)
    normalised = 4 * estimates[:, 2] / cov[2, 2]
    assert scipy.stats.kstest(normalised, scipy.stats.chi2(4).cdf).pvalue > 1e-3


def test_false_alarm_rate_is_within_the_level():
    """The truth checked against itself: rejected at about the level, and within its interval."""
    cov, level = _cov(), 0.05
    sims = power.variance_estimates(cov, (1000,), 16, np.random.default_rng(1))
    rate = power.rejection_rate(
        lambda e: checks.variance_check(e, cov, 16, level=level, repeats=400), sims
    )
    assert rate.sets == 1000 and rate.low <= rate.value <= rate.high
    assert power.within_level(rate, level) and rate.value < 2 * level
    ci = scipy.stats.binomtest(round(rate.value * 1000), 1000).proportion_ci(method="exact")
    assert (rate.low, rate.high) == pytest.approx((ci.low, ci.high))


def test_power_against_a_doubled_variance_and_none_against_the_truth():
    """Notebook 02's check of draws: z-scores and the leading directions' whitened scale."""
    cov, level = _cov(), 0.001
    sims = power.gaussian_draws(cov, (300, 64), np.random.default_rng(2))

    def rate(factor):
        return power.rejection_rate(
            lambda d: checks.covariance_check(
                np.sqrt(factor) * d, cov, level=level, repeats=400, leading=True, whitened="none"
            ),
            sims,
        )

    doubled, truth = rate(2.0), rate(1.0)
    assert doubled.value > 0.99 and doubled.low > 0.95
    assert truth.value < 0.02
    assert not power.within_level(doubled, level)  # a rate far above the level is not "within"


def test_a_rate_needs_a_hundred_sets():
    with pytest.raises(ValueError, match=r"simulated sets must be an integer >= 100"):
        power.rejection_rate(lambda e: None, np.zeros((99, 3)))


def test_rate_counts_rejections_and_refuses_what_is_not_one_per_set():
    r = power.rate(np.arange(200) < 50)
    assert r.value == 0.25 and r.sets == 200 and r.low < 0.25 < r.high
    with pytest.raises(ValueError, match=r"rejected must be a 1-D boolean array"):
        power.rate(np.zeros(200))
    with pytest.raises(ValueError, match=r"simulated sets must be an integer >= 100"):
        power.rate(np.zeros(50, bool))


def test_report_and_shortfalls_of_rates():
    good, weak = power.Rate(1.0, 0.996, 1.0, 1000), power.Rate(0.99, 0.98, 0.995, 1000)
    calm, loud = power.Rate(0.001, 0.0, 0.0056, 1000), power.Rate(0.02, 0.012, 0.03, 1000)
    lines = power.report({"twice": good}, {"truth": calm}).splitlines()
    assert lines == [
        "power        twice 1.0000 (95%: 0.9960 to 1.0000)",
        "false alarms truth 0.0010 (95%: 0.0000 to 0.0056)",
    ]
    assert power.shortfalls({"twice": good}, {"truth": calm}, 0.01) == []
    found = power.shortfalls({"twice": good, "half": weak}, {"truth": loud}, 0.01)
    assert len(found) == 2 and "against half" in found[0] and found[1].endswith(": truth")
    with pytest.raises(ValueError, match="level must be"):
        power.shortfalls({"twice": good}, {"truth": calm}, 1.5)
    with pytest.raises(ValueError, match="at least one rate"):
        power.shortfalls({}, {"truth": calm}, 0.01)
