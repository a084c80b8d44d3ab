"""The wheel bandit, its agents and their limit: analytic results against Monte Carlo."""

import itertools

import jax
import numpy as np
import pytest
import scipy.stats

from rndlib import agents, bandit, limits, models, theory

SPEC = models.ArchSpec(activation="erf", W_std=1.5, b_std=0.5, width=256)
NOISE = 0.3


def history(n: int = 48, delta: float = 0.9, seed: int = 3):
    wheel = bandit.wheel(n + 20, delta, seed)
    arms = bandit.uniform_start(n + 20, n, seed)
    seen = bandit.Observed(wheel.contexts[:n], arms, wheel.rewards[np.arange(n), arms] / 10)
    return wheel, seen


def test_wheel_is_uniform_on_the_disk_with_the_published_rewards():
    wheel = bandit.wheel(4000, 0.5, 0)
    r2 = np.sum(wheel.contexts**2, axis=1)
    assert scipy.stats.kstest(r2, "uniform").pvalue > 1e-3  # |x|^2 is uniform on the disk
    far = np.sqrt(r2) > 0.5
    jackpot = bandit.quadrant_arm(wheel.contexts)
    assert np.all(wheel.means[far, jackpot[far]] == bandit.JACKPOT[0])
    assert np.all(wheel.means[:, 0] == bandit.SAFE[0])
    assert np.all(np.sort(wheel.means[~far], axis=1)[:, :-1] == bandit.PLAIN[0])
    z = (wheel.rewards - wheel.means)[:, 1:][~far] / bandit.PLAIN[1]
    assert abs(z.mean()) < 4 / np.sqrt(z.size) and abs(z.std() - 1) < 0.05


def test_quadrant_arms_turn_counter_clockwise():
    corners = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]]) / 2
    assert bandit.quadrant_arm(corners).tolist() == [1, 2, 3, 4]


def test_one_seed_shares_contexts_and_noise_across_radii():
    a, b = bandit.wheel(300, 0.5, 7), bandit.wheel(300, 0.95, 7)
    assert np.array_equal(a.contexts, b.contexts)
    inside = np.linalg.norm(a.contexts, axis=1) <= 0.5  # the same rewards' laws at both radii
    assert np.array_equal(a.rewards[inside], b.rewards[inside])
    assert not np.array_equal(a.contexts, bandit.wheel(300, 0.5, 8).contexts)


def test_retraining_points_double_and_refuse_a_late_start():
    assert bandit.retraining_points(1000, 32) == [32, 64, 128, 256, 512, 1000]
    with pytest.raises(ValueError, match="first must be below contexts"):
        bandit.retraining_points(10, 10)
    with pytest.raises(ValueError, match="delta must be"):
        bandit.wheel(10, 1.0, 0)


def test_play_shares_the_start_scales_the_rewards_and_checks_the_agent():
    wheel = bandit.wheel(100, 0.5, 1)
    seen_by = []

    def spy(seen, contexts, seed):
        seen_by.append(seen)
        return np.zeros(len(contexts), int)

    arms = bandit.play(spy, wheel, 16, 5, reward_scale=10.0)
    assert np.array_equal(arms[:16], bandit.uniform_start(100, 16, 5))
    assert [len(s.arms) for s in seen_by] == [16, 32, 64]
    last = seen_by[-1]
    assert np.allclose(last.rewards * 10, wheel.rewards[np.arange(64), last.arms])
    with pytest.raises(ValueError, match="the agent must return"):
        bandit.play(lambda s, c, seed: np.full(len(c), 5), wheel, 16, 5)


def test_regret_is_zero_for_the_oracle_and_100_for_uniform_play():
    wheel = bandit.wheel(2000, 0.7, 2)
    oracle = bandit.regret(wheel, wheel.means.argmax(axis=1))
    assert oracle[-1] == 0.0
    scores = [
        bandit.normalised(bandit.regret(w, bandit.play(agents.uniform(), w, 8, s)), w)
        for s in range(20)
        for w in [bandit.wheel(500, 0.7, s)]
    ]
    assert abs(np.mean(scores) - 100) < 4 * np.std(scores, ddof=1) / np.sqrt(len(scores))


def test_sign_flip_pvalue_is_exact_and_holds_its_level():
    d = np.array([0.3, -1.2, 2.0, 0.7, 1.1])
    means = [np.mean(np.array(s) * np.abs(d)) for s in itertools.product((-1, 1), repeat=5)]
    brute = np.mean(np.abs(means) >= abs(d.mean()) - 1e-12)
    assert bandit.sign_flip_pvalue(d) == pytest.approx(brute)
    assert bandit.sign_flip_pvalue(np.arange(1.0, 7.0), "less") == 1.0
    assert bandit.sign_flip_pvalue(-np.arange(1.0, 7.0), "less") == pytest.approx(2**-6)
    null = np.random.default_rng(0).standard_t(3, size=(4000, 10))  # symmetric, heavy-tailed
    p = bandit.sign_flip_pvalue(null)
    assert p.shape == (4000,) and np.mean(p <= 0.05) <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 4000)
    shifted = bandit.sign_flip_pvalue(null + 2.0)
    assert np.mean(shifted <= 0.05) > 0.85
    with pytest.raises(ValueError, match="differences must hold 2 to 200"):
        bandit.sign_flip_pvalue(np.ones(201))


def test_sign_flip_pvalue_above_the_exact_pairs_counts_random_patterns():
    """18 pairs: the random patterns' p-value is within Monte-Carlo error of the exact one."""
    d = np.random.default_rng(2).normal(0.5, 1.0, size=(3, bandit.EXACT_PAIRS + 2))
    signs = np.array(list(itertools.product((-1.0, 1.0), repeat=d.shape[1])))
    means = np.abs(d) @ signs.T / d.shape[1]
    exact = {"two-sided": np.mean(np.abs(means) >= np.abs(d.mean(1, keepdims=True)) - 1e-12, 1),
             "less": np.mean(-means <= -d.mean(1, keepdims=True) + 1e-12, 1)}  # fmt: skip
    for alternative, flipped in (("two-sided", d), ("less", -d)):
        found = bandit.sign_flip_pvalue(flipped, alternative)
        se = np.sqrt(exact[alternative] * (1 - exact[alternative]) / bandit.SIGN_PATTERNS)
        assert np.all(np.abs(found - exact[alternative]) <= 5 * se + 2 / bandit.SIGN_PATTERNS)
    assert bandit.sign_flip_pvalue(-np.ones(40), "less") == 1 / (1 + bandit.SIGN_PATTERNS)


def test_thompson_pick_probabilities_match_monte_carlo():
    rng = np.random.default_rng(1)
    mean, sd = rng.normal(size=(6, 5)), rng.uniform(0.1, 1.0, size=(6, 5))
    exact = limits.thompson_pick_probabilities(mean, sd)
    draws = 100_000
    mc = limits.pick_frequencies(mean + sd * rng.standard_normal((draws, 6, 5)))
    se = np.sqrt(exact * (1 - exact) / draws)
    assert np.all(np.abs(mc - exact) <= 5 * se + 1e-4)
    assert np.allclose(exact.sum(axis=1), 1.0)


def test_ucb_pick_probabilities_follow_the_bonus_law():
    mean, var = np.array([[1.0, 0.0, 0.0, 0.0, 0.0]]), np.array([[0.0, 1.0, 0.0, 0.0, 0.0]])
    p = limits.ucb_pick_probabilities(mean, var, 1.0, 4, 40_000, 0)
    # arm 1 wins when sqrt(chi^2_4 / 4) > 1, i.e. chi^2_4 > 4
    assert p[0, 1] == pytest.approx(scipy.stats.chi2.sf(4, 4), abs=0.01)
    assert p[0, 0] == pytest.approx(1 - p[0, 1])


def test_exact_posterior_conditions_each_arm_on_its_own_rewards():
    wheel, seen = history()
    x = wheel.contexts
    ntk = limits.gram(SPEC, x)
    new = np.arange(48, 68)
    posteriors = limits.exact_posterior(ntk, seen, new, NOISE)
    for arm, post in enumerate(posteriors):
        rows = np.flatnonzero(seen.arms == arm)
        kernel_fn = models.network(SPEC)[2]
        blocks = theory.kernel_blocks(kernel_fn, x[rows], x[new], "ntk")
        expected = theory.gp_posterior(blocks, seen.rewards[rows, None], NOISE)
        assert np.allclose(post.mean, expected.mean) and np.allclose(post.cov, expected.cov)
    unplayed = bandit.Observed(seen.contexts, np.zeros(48, int), seen.rewards)
    prior = limits.exact_posterior(ntk, unplayed, new, NOISE)[3]
    assert np.all(prior.mean == 0) and np.array_equal(prior.cov, ntk[np.ix_(new, new)])


def test_ensemble_covariance_is_the_variance_of_converged_limit_networks():
    wheel, seen = history()
    x = wheel.contexts
    ntk, nngp = limits.gram(SPEC, x), limits.gram(SPEC, x, "nngp")
    new = np.arange(48, 68)
    arm = 0
    rows = np.flatnonzero(seen.arms == arm)
    every = np.concatenate([rows, new])
    f0 = np.random.default_rng(0).multivariate_normal(
        np.zeros(len(every)), nngp[np.ix_(every, every)], size=20_000, method="eigh"
    )
    a = ntk[np.ix_(rows, rows)] + NOISE * np.eye(len(rows))
    b = ntk[np.ix_(new, rows)] @ np.linalg.inv(a)
    trained = f0[:, len(rows) :] + (seen.rewards[rows] - f0[:, : len(rows)]) @ b.T  # the lemma
    expected = limits.ensemble_covariance(ntk, nngp, seen, new, NOISE)[arm]
    sd = np.sqrt(2 / 20_000) * np.diag(expected)
    assert np.all(np.abs(trained.var(axis=0) - np.diag(expected)) <= 5 * sd)


def test_masked_rows_train_only_the_arm_played():
    """Rows of arm 2 give no gradient to the other arms' readout; those arms' outputs move
    only through the shared hidden layer, by a cross-output NTK of order width^-1/2."""
    _, seen = history()
    only_arm_2 = bandit.Observed(seen.contexts, np.full(48, 2), seen.rewards)
    z, q = agents.observed_rows(only_arm_2), agents.query_rows(seen.contexts[:5])
    assert len(z) == 64 and np.all(z[48:] == 0)  # padded to a power of two with zeros
    leak = {}
    for width in (256, 4096):
        init_fn, apply = agents.arm_network(SPEC.replace(width=width), 2)
        params = agents.init_networks(init_fn, 0, 1)
        trained = agents.fit(apply, params, z, np.ones((1, 64, 2)) * (z[:, 4:5] > 0), NOISE)
        w0, w1 = (np.asarray(p[-1][0][0]).reshape(width, bandit.ARMS, 2) for p in (params, trained))
        assert np.array_equal(np.delete(w0, 2, axis=1), np.delete(w1, 2, axis=1))
        before, after = (
            agents.by_arm(agents.outputs(apply, p, q), 5)[0] for p in (params, trained)
        )
        moved = np.abs(after - before).max(axis=(0, 1))
        leak[width] = np.delete(moved, 2).max() / moved[2]
        assert np.all(agents.outputs(apply, trained, np.zeros((3, 7))) == 0.0)
    assert leak[4096] < leak[256] / 2, leak  # 16 times the width: about a quarter


def test_agents_refuse_missing_grams_and_unknown_kinds():
    with pytest.raises(ValueError, match="grams"):
        agents.ucb(SPEC, NOISE, bonus="exact", scale=1.0, heads=4)
    with pytest.raises(ValueError, match="ntk"):
        agents.thompson(SPEC, NOISE, sampler="exact", heads=4)
    with pytest.raises(ValueError, match="sampler must be one of"):
        agents.thompson(SPEC, NOISE, sampler="dropout", heads=4)
    with pytest.raises(ValueError, match="bonus must be one of"):
        agents.ucb(SPEC, NOISE, bonus="count", scale=1.0, heads=4)


def test_wide_networks_reach_their_limits():
    """Mean network -> posterior mean; half RND's squared error -> S[kappa] (Cor. 5.4); the
    Bayesian-RND heads' spread -> the posterior's (Thm. 5.8), within tolerances from the
    heads' chi-square noise; an un-halved RND bonus is outside them."""
    wide = SPEC.replace(width=2048)
    wheel, seen = history()
    fresh, new, heads = wheel.contexts[48:], np.arange(48, 68), 32
    ntk, nngp = limits.gram(wide, wheel.contexts), limits.gram(wide, wheel.contexts, "nngp")
    post = limits.exact_posterior(ntk, seen, new, NOISE)
    mu = np.stack([p.mean[:, 0] for p in post], axis=1)
    var = np.stack([np.diag(p.cov) for p in post], axis=1)
    s = np.stack([np.diag(c) for c in limits.ensemble_covariance(ntk, nngp, seen, new, NOISE)], 1)
    mean = agents.mean_network(wide, seen, fresh, NOISE, 0)
    assert np.max(np.abs(mean - mu) / np.sqrt(var)) < 0.5
    tolerance = 4 * np.sqrt(2 / heads / mu.size)  # a mean of chi^2_K / K over the inputs
    ratio = np.mean(agents.rnd_bonus(wide, seen, fresh, NOISE, heads, 1) ** 2 / s)
    assert abs(ratio - 1) < 3 * tolerance and abs(2 * ratio - 1) > 3 * tolerance
    eps = agents.bayesian_rnd_errors(wide, seen, fresh, NOISE, heads, 2)
    assert abs(np.mean(eps**2 / var) - 1) < 3 * tolerance


def test_every_agent_plays_valid_arms_reproducibly():
    wheel = bandit.wheel(48, 0.9, 4)
    ntk, nngp = limits.gram(SPEC, wheel.contexts), limits.gram(SPEC, wheel.contexts, "nngp")
    small = SPEC.replace(width=64)
    roster = [
        agents.greedy(small, NOISE),
        agents.ucb(small, NOISE, bonus="ensemble", scale=1.0, heads=2),
        agents.ucb(SPEC, NOISE, bonus="sampled", scale=1.0, heads=2, grams=(ntk, nngp)),
        agents.thompson(small, NOISE, sampler="ensemble", heads=2),
        agents.thompson(SPEC, NOISE, sampler="overconfident", heads=2, ntk=ntk),
        agents.neural_linear(small, NOISE),
    ]
    for agent in roster:
        first, again = (bandit.play(agent, wheel, 16, 1, 10.0) for _ in range(2))
        assert np.array_equal(first, again) and first.min() >= 0 and first.max() < bandit.ARMS
    assert jax.config.jax_enable_x64
