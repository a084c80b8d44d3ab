"""The wheel bandit of Riquelme, Tucker & Snoek (2018) and the loop that plays it.

A context ``x`` is uniform on the unit disk in R^2 and there are :data:`ARMS` arms. Arm 0
pays N(1.2, 0.05^2) everywhere. Inside the radius ``delta`` arms 1 to 4 pay N(1.0, 0.05^2);
outside it, the arm of the context's quadrant pays N(50, 0.01^2) and the other three
N(1.0, 0.05^2). The larger ``delta``, the rarer (and the more valuable) the contexts where
exploring pays: a greedy agent that never tries arms 1 to 4 far out settles for 1.2.

Every agent of one seed meets the same contexts and, for each (context, arm), the same
reward draw (common random numbers), so that differences between agents are paired.
Agents are retrained at :func:`retraining_points` (the first after a uniform start,
which all agents share, then each time the data have doubled) and decide in between
with what they learned last. Regret is the expected one, ``max_a E[r_a | x] - E[r_{a_t}
| x]``, summed over the contexts; normalised so that uniform play scores 100, as Riquelme
et al. report it.
"""

from collections.abc import Callable
from itertools import pairwise, product
from typing import NamedTuple

import numpy as np

from rndlib import validate

#: Number of arms; arm 0 is the safe one, arm ``q + 1`` pays 50 in quadrant ``q``.
ARMS = 5
#: Mean and standard deviation of each kind of reward: (safe, plain, far-out jackpot).
SAFE, PLAIN, JACKPOT = (1.2, 0.05), (1.0, 0.05), (50.0, 0.01)
#: NeuralLinear's normalised cumulative regret at :data:`PUBLISHED_CONTEXTS` contexts, by
#: ``delta``, from Riquelme et al. (2018) as tabulated by Ravi & Beatson (2019, Table 1);
#: not checked here against Riquelme et al.'s own table, and at 80,000 contexts, far more
#: than the notebook plays: quoted beside ours for scale, never compared.
PUBLISHED_NEURAL_LINEAR = {0.5: 0.95, 0.7: 1.60, 0.9: 4.65, 0.95: 9.56, 0.99: 49.63}
PUBLISHED_CONTEXTS = 80_000


class Wheel(NamedTuple):
    """One wheel bandit: contexts (n, 2), expected rewards (n, ARMS) and one draw of each."""

    contexts: np.ndarray
    means: np.ndarray
    rewards: np.ndarray
    delta: float


class Observed(NamedTuple):
    """What an agent has seen: contexts (t, 2), the arms it played (t,) and their rewards (t,)."""

    contexts: np.ndarray
    arms: np.ndarray
    rewards: np.ndarray


#: An agent: (what it has seen, the contexts to decide on, a seed) -> one arm per context.
Agent = Callable[[Observed, np.ndarray, int], np.ndarray]


def quadrant_arm(contexts: np.ndarray) -> np.ndarray:
    """The arm that pays 50 far out at each context: 1 + its quadrant (counter-clockwise)."""
    x, y = contexts[:, 0], contexts[:, 1]
    quadrant = np.where(x >= 0, np.where(y >= 0, 0, 3), np.where(y >= 0, 1, 2))
    return 1 + quadrant


def wheel(contexts: int, delta: float, seed: int) -> Wheel:
    """The wheel bandit with radius ``delta``: ``contexts`` draws at ``seed``.

    The contexts and the standard-normal reward noise depend on ``seed`` only, so that
    bandits of one seed with different ``delta`` share them too.

    Raises:
        ValueError: naming the argument, for fewer than 2 contexts, a ``delta`` outside
            (0, 1) or a bad ``seed``.
    """
    n = validate.integer("contexts", contexts, minimum=2)
    delta = validate.finite("delta", delta, above=0.0, below=1.0)
    rng = np.random.default_rng(validate.integer("seed", seed, minimum=0))
    radius, angle = np.sqrt(rng.uniform(size=n)), rng.uniform(0.0, 2 * np.pi, size=n)
    x = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    noise = rng.standard_normal((n, ARMS))
    means = np.full((n, ARMS), PLAIN[0])
    sds = np.full((n, ARMS), PLAIN[1])
    means[:, 0], sds[:, 0] = SAFE
    far = np.flatnonzero(radius > delta)
    means[far, quadrant_arm(x[far])], sds[far, quadrant_arm(x[far])] = JACKPOT
    return Wheel(x, means, means + sds * noise, delta)


def retraining_points(contexts: int, first: int) -> list[int]:
    """Where agents retrain: ``first``, then each time the data double, up to ``contexts``.

    Returns the segment boundaries ``[first, 2 first, 4 first, ..., contexts]``.

    Raises:
        ValueError: naming the argument, unless ``1 <= first < contexts``.
    """
    n = validate.integer("contexts", contexts, minimum=2)
    first = validate.integer("first", first)
    if first >= n:
        raise ValueError(f"first must be below contexts ({n}), got {first}")
    points = [first]
    while 2 * points[-1] < n:
        points.append(2 * points[-1])
    return [*points, n]


def uniform_start(contexts: int, first: int, seed: int) -> np.ndarray:
    """The arms every agent plays before its first retraining: uniform, from ``seed``."""
    return np.random.default_rng([seed, 1]).integers(ARMS, size=min(first, contexts))


def play(
    agent: Agent, bandit: Wheel, first: int, seed: int, reward_scale: float = 1.0
) -> np.ndarray:
    """The arms ``agent`` plays on ``bandit``, (n,): the shared uniform start, then its own.

    The agent sees the rewards divided by ``reward_scale``, the unit of its prior: a
    network's outputs start of order one, and one trained to fit 50 leaves the kernel
    regime at the widths used here. Decisions are the same at any scale for an agent
    whose prior and noise scale with the rewards; regret is in the rewards' own units.

    Before each segment of :func:`retraining_points` the agent sees the contexts, arms and
    rewards so far and decides the whole segment with the seed ``seed * 1_000_003 + t``
    (``t`` the segment's start), so that two agents of one seed get one stream each.
    """
    n = len(bandit.contexts)
    scale = validate.finite("reward_scale", reward_scale, above=0.0)
    arms = np.zeros(n, dtype=int)
    points = retraining_points(n, first)
    arms[:first] = uniform_start(n, first, seed)
    for start, stop in pairwise(points):
        seen = Observed(
            bandit.contexts[:start],
            arms[:start],
            bandit.rewards[np.arange(start), arms[:start]] / scale,
        )
        chosen = np.asarray(agent(seen, bandit.contexts[start:stop], seed * 1_000_003 + start))
        if chosen.shape != (stop - start,) or not np.all((chosen >= 0) & (chosen < ARMS)):
            raise ValueError(f"the agent must return {stop - start} arms in 0..{ARMS - 1}")
        arms[start:stop] = chosen
    return arms


def regret(bandit: Wheel, arms: np.ndarray) -> np.ndarray:
    """Cumulative expected regret after each context, (n,)."""
    chosen = bandit.means[np.arange(len(arms)), arms]
    return np.cumsum(bandit.means.max(axis=1) - chosen)


def uniform_regret(bandit: Wheel) -> np.ndarray:
    """Cumulative expected regret of uniform play (the mean over arms, not one draw), (n,)."""
    return np.cumsum(bandit.means.max(axis=1) - bandit.means.mean(axis=1))


def normalised(regrets: np.ndarray, bandit: Wheel) -> np.ndarray:
    """Final cumulative regret as a percentage of uniform play's (Riquelme et al.'s scale)."""
    return 100.0 * np.asarray(regrets)[..., -1] / uniform_regret(bandit)[-1]


#: Random sign patterns of the sign-flip test above :data:`EXACT_PAIRS` pairs.
SIGN_PATTERNS = 2**16 - 1
#: Up to this many pairs the sign-flip test enumerates all 2^n sign patterns.
EXACT_PAIRS = 16


def sign_flip_pvalue(differences: np.ndarray, alternative: str = "two-sided") -> np.ndarray:
    """P-values of the paired sign-flip (permutation) test of a zero mean difference.

    Under the null each paired difference is as likely negative as positive; the p-value
    is the share of sign patterns whose mean is at least as extreme as the observed one
    (``"less"``: at least as negative). Up to :data:`EXACT_PAIRS` pairs all ``2^n``
    patterns are enumerated (exact; the smallest attainable p-value is ``2^-n``, ``2^(1-n)``
    two-sided); above, the observed pattern and :data:`SIGN_PATTERNS` random ones (a fixed
    stream) are counted, ``(1 + #) / (1 + SIGN_PATTERNS)`` (Phipson & Smyth 2010), never
    below ``1 / (1 + SIGN_PATTERNS)``.
    ``differences`` is (..., n): one test per leading index, all at once.

    Raises:
        ValueError: for fewer than 2 or more than 200 pairs, or a bad ``alternative``.
    """
    d = np.asarray(differences, float)
    if d.ndim < 1 or not 2 <= d.shape[-1] <= 200 or not np.all(np.isfinite(d)):
        raise ValueError(f"differences must hold 2 to 200 finite pairs, got shape {d.shape}")
    validate.choice("alternative", alternative, ("two-sided", "less"))
    n = d.shape[-1]
    if n <= EXACT_PAIRS:
        signs = np.array(list(product((-1.0, 1.0), repeat=n)))  # (2^n, n), the observed among them
    else:
        signs = np.random.default_rng(0).choice((-1.0, 1.0), (SIGN_PATTERNS, n))
    own = int(n > EXACT_PAIRS)  # the observed pattern, counted once beside random ones
    means = np.abs(d) @ signs.T / n  # (..., patterns)
    observed, slack = d.mean(axis=-1, keepdims=True), 1e-12 * (1 + np.abs(d).sum(-1, keepdims=True))
    if alternative == "less":
        extreme = np.sum(means <= observed + slack, axis=-1)
    else:
        extreme = np.sum(np.abs(means) >= np.abs(observed) - slack, axis=-1)
    return (own + extreme) / (own + len(signs))
