"""Agents for the wheel bandit: networks with one output per arm, and their NTK-GP limit.

**Masking.** A network of the suite's architecture maps a context ``x`` to ``ARMS * K``
outputs, ``K`` per arm. An observation ``(x, a, r)`` enters as the row ``z = [x, e_a]``
(``e_a`` one-hot): the network reads ``x`` only, and its output at ``z`` is arm ``a``'s
block of ``K`` outputs (:func:`arm_network`), so the loss ``1/2 sum_i ||u(z_i) - t_i||^2``
touches only the arm played: the other arms' readout weights get no gradient from that
row, and their outputs move only through the shared hidden layer, by a cross-output NTK
of order ``width^-1/2``. Rows of zeros (padding to a power of two, so that a handful of
programs compile) select nothing. At infinite width that cross-output NTK is zero, so
each arm's outputs train as a network fitted on that arm's data alone: the arms'
posteriors are independent NTK-GPs with the kernel ``Theta`` of a single-output network.

Every network is trained to convergence (Nesterov's momentum for
``optimizers.steps_to_convergence`` steps, as the sampler of notebook 07) on
``1/2 ||u(Z) - t||^2 + sigma^2/2 ||theta - theta_0||^2``, ``sigma^2 = noise``, and
retrained from its initialisation at each retraining point of :mod:`rndlib.bandit`.
What each agent reads from its networks, at the contexts ``x`` it decides on:

- greedy: the centred mean network ``mu(x) = B Y``, the posterior mean (notebook 04);
- UCB: ``mu + c b`` with the bonus ``b = sqrt(mean_k eps_k^2 / 2)`` of a standard RND
  with ``K`` heads per arm, or the standard deviation of an ensemble of ``K + 1``
  networks trained on the rewards: the same quantity by Cor. 5.4 and Thm. 5.6;
- Thompson sampling: ``mu + eps_k`` from a Bayesian RND (Cor. 5.9), one head per
  decision in turn; or a member of an ensemble with randomised priors (each member's
  own initial function is its prior, trained on the rewards plus its own noise
  ``sigma zeta``; Osband et al. 2018, Pearce et al. 2020); or a draw of the exact
  NTK-GP posterior (:func:`rndlib.limits.exact_posterior`), the limit of the first;
- NeuralLinear (Riquelme et al. 2018): Bayesian linear regression per arm on the mean
  network's last hidden layer, with the readout's own prior and known noise ``sigma^2``.
"""

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from rndlib import limits, models, optimizers, rnd, schedule, train, validate
from rndlib.bandit import ARMS, Agent, Observed

#: Context dimension of the wheel bandit.
DIM = 2
#: The spread of the overconfident decoy sampler, as a fraction of the posterior's.
OVERCONFIDENT = 0.1
#: What a UCB agent adds to the mean, and what a Thompson agent draws from.
BONUSES = ("rnd", "ensemble", "exact", "sampled")
SAMPLERS = ("bayesian_rnd", "ensemble", "exact", "overconfident")
#: The networks' precision: they train as networks are trained in practice, 3 to 4 times
#: faster on a CPU than in float64; every kernel computation (:mod:`rndlib.limits`) is float64.
DTYPE = "float32"
#: Power iterations for the step size: from below, within the margin Nesterov's step allows.
POWER_ITERS = 20


@functools.cache
def arm_network(spec: models.ArchSpec, heads: int) -> tuple[Callable, Callable]:
    """``(init_fn, apply_fn)`` of a network with ``heads`` outputs per arm, masked by arm.

    ``apply_fn(params, z)`` takes rows ``z = [x, e_a]`` (n, 2 + ARMS) and returns arm
    ``a``'s ``heads`` outputs at ``x``, (n, heads); a row of zeros returns zeros.
    Cached, so that the jitted training loops compile once per spec and shape.
    """
    validate.integer("heads", heads)
    init_fn, apply_fn, _ = models.network(spec.replace(heads=ARMS * heads))

    def apply(params, z):
        out = apply_fn(params, z[:, :DIM]).reshape(len(z), ARMS, heads)
        return jnp.einsum("nah,na->nh", out, z[:, DIM:])

    return init_fn, apply


def _padded(n: int) -> int:
    return 1 << max(n - 1, 0).bit_length()


def observed_rows(seen: Observed) -> np.ndarray:
    """The rows ``[x, e_a]`` of what was seen, padded with zero rows to a power of two."""
    z = np.zeros((_padded(len(seen.arms)), DIM + ARMS))
    z[: len(seen.arms), :DIM] = seen.contexts
    z[np.arange(len(seen.arms)), DIM + np.asarray(seen.arms)] = 1.0
    return z


def query_rows(contexts: np.ndarray) -> np.ndarray:
    """Rows for every arm at each context, context-major, padded: ``(pad(n * ARMS), 2 + ARMS)``."""
    n = len(contexts)
    z = np.zeros((_padded(n * ARMS), DIM + ARMS))
    z[: n * ARMS, :DIM] = np.repeat(contexts, ARMS, axis=0)
    z[np.arange(n * ARMS), DIM + np.tile(np.arange(ARMS), n)] = 1.0
    return z


def by_arm(out: np.ndarray, n: int) -> np.ndarray:
    """Outputs at :func:`query_rows` of ``n`` contexts, (members, pad, heads), as
    (members, heads, n, ARMS)."""
    out = np.asarray(out)[:, : n * ARMS]
    return out.reshape(len(out), n, ARMS, -1).transpose(0, 3, 1, 2)


def init_networks(init_fn, seed: int, members: int):
    """``members`` networks of an :func:`arm_network`, stacked, in :data:`DTYPE`."""
    return models.astype(DTYPE, models.init_params(init_fn, seed, members, DIM))


def fit(apply, params0, z: np.ndarray, targets: np.ndarray, noise: float):
    """Stacked networks trained on their targets (members, pad, heads) by Nesterov momentum,
    for at least ``optimizers.steps_to_convergence`` steps of ``1 / (lambda_max + sigma^2)``."""
    z, targets = jnp.asarray(z, DTYPE), jnp.asarray(targets, DTYPE)
    lam = models.largest_ntk_eigenvalue(apply, params0, z, members=True, iters=POWER_ITERS)
    lr = schedule.step_size(lam + noise, 1.0)
    # rounded up to a power of 2^(1/4): the step count is a static argument of the jitted
    # loop, so that a run compiles a handful of programs instead of one per fit
    needed = optimizers.steps_to_convergence(lr, noise, optimizers.NESTEROV)
    steps = int(np.ceil(2 ** (np.ceil(4 * np.log2(needed)) / 4)))
    settings = dict(lr=lr, steps=steps, ridge=noise, optimizer=optimizers.NESTEROV)
    return train.gradient_descent(apply, params0, z, targets, members=True, **settings).params


def outputs(apply, params, z: np.ndarray) -> np.ndarray:
    """Stacked networks' outputs at rows ``z``, (members, rows, heads), as float64."""
    return np.asarray(models.apply_members(apply, params, jnp.asarray(z, DTYPE)), np.float64)


def _rewards(seen: Observed, rows: int) -> np.ndarray:
    y = np.zeros((rows, 1))
    y[: len(seen.rewards)] = np.asarray(seen.rewards)[:, None]
    return y


def mean_network(
    spec: models.ArchSpec, seen: Observed, contexts: np.ndarray, noise: float, seed: int
) -> np.ndarray:
    """The centred mean network's prediction for every arm, (n, ARMS): ``B Y`` at convergence."""
    return _mean_and_features(spec, seen, contexts, noise, seed)[0]


def _mean_and_features(spec, seen, contexts, noise, seed):
    init_fn, apply = arm_network(spec, 1)
    params0 = init_networks(init_fn, seed, 1)
    z, q = observed_rows(seen), query_rows(contexts)
    target = _rewards(seen, len(z))[None] + outputs(apply, params0, z)
    trained = fit(apply, params0, z, target, noise)
    mu = by_arm(outputs(apply, trained, q) - outputs(apply, params0, q), len(contexts))
    return mu[0, 0], trained


def rnd_bonus(
    spec: models.ArchSpec,
    seen: Observed,
    contexts: np.ndarray,
    noise: float,
    heads: int,
    seed: int,
) -> np.ndarray:
    """``sqrt(mean_k eps_k^2 / 2)`` of a standard RND with ``heads`` heads per arm, (n, ARMS).

    The target ``g(.; psi)`` is a network of the predictor's architecture; the predictor
    is trained on ``g`` at the rows seen, with the pull ``sigma^2``. By Cor. 5.4 half
    the mean squared error is the variance of an ensemble trained the same way.
    """
    init_fn, apply = arm_network(spec, heads)
    predictor, target = (init_networks(init_fn, s, 1) for s in (seed, seed + 1))
    z, q = observed_rows(seen), query_rows(contexts)
    trained = fit(apply, predictor, z, outputs(apply, target, z), noise)
    errors = outputs(apply, target, q) - outputs(apply, trained, q)
    return np.sqrt(np.mean(by_arm(errors, len(contexts))[0] ** 2 / 2, axis=0))


def bayesian_rnd_errors(
    spec: models.ArchSpec,
    seen: Observed,
    contexts: np.ndarray,
    noise: float,
    heads: int,
    seed: int,
) -> np.ndarray:
    """Errors of a Bayesian RND with ``heads`` heads per arm, (heads, n, ARMS) (Thm. 5.8).

    The target is He et al.'s ``u(.; theta_0) + J_0 psi`` (:func:`rndlib.rnd.bayesian_rnd_targets`)
    plus ``sigma zeta`` at the rows seen; in the limit each head's error is a draw of the
    centred NTK-GP posterior with noise ``sigma^2``.
    """
    init_fn, apply = arm_network(spec, heads)
    predictor = init_networks(init_fn, seed, 1)
    z, q = observed_rows(seen), query_rows(contexts)
    g_z = np.array(
        rnd.bayesian_rnd_targets(apply, predictor, seed + 1, jnp.asarray(z, DTYPE)), np.float64
    )
    zeta = np.random.default_rng(seed).standard_normal((len(seen.arms), heads))
    g_z[0, : len(seen.arms)] += np.sqrt(noise) * zeta
    trained = fit(apply, predictor, z, g_z, noise)
    g_q = np.asarray(
        rnd.bayesian_rnd_targets(apply, predictor, seed + 1, jnp.asarray(q, DTYPE)), np.float64
    )
    return by_arm(g_q - outputs(apply, trained, q), len(contexts))[0]


def ensemble_outputs(
    spec: models.ArchSpec,
    seen: Observed,
    contexts: np.ndarray,
    noise: float,
    members: int,
    seed: int,
    *,
    randomised: bool,
) -> np.ndarray:
    """Outputs of ``members`` independently initialised networks, (members, n, ARMS).

    Each is trained on the rewards (``randomised``: plus its own ``sigma zeta``, a
    randomised-prior member) with the pull ``sigma^2`` towards its own initialisation.
    """
    init_fn, apply = arm_network(spec, 1)
    params0 = init_networks(init_fn, seed, validate.integer("members", members))
    z, q = observed_rows(seen), query_rows(contexts)
    y = np.repeat(_rewards(seen, len(z))[None], members, axis=0)
    if randomised:
        zeta = np.random.default_rng(seed).standard_normal((members, len(seen.arms)))
        y[:, : len(seen.arms), 0] += np.sqrt(noise) * zeta
    trained = fit(apply, params0, z, y, noise)
    return by_arm(outputs(apply, trained, q), len(contexts))[:, 0]


def _segment(seen: Observed, contexts: np.ndarray) -> np.ndarray:
    return len(seen.arms) + np.arange(len(contexts))


def _means(posteriors) -> np.ndarray:
    return np.stack([p.mean[:, 0] for p in posteriors], axis=1)


def _draws(posteriors, rng: np.random.Generator, spread: float = 1.0) -> np.ndarray:
    # one independent draw per context and arm of each arm's marginal posterior: (n, ARMS)
    mean = _means(posteriors)
    sd = np.sqrt(np.clip(np.stack([np.diag(p.cov) for p in posteriors], axis=1), 0.0, None))
    return mean + spread * sd * rng.standard_normal(mean.shape)


def _in_turn(values: np.ndarray) -> np.ndarray:
    # decision j reads sample j mod K: values (K, n, ARMS) -> (n, ARMS)
    return values[np.arange(values.shape[1]) % len(values), np.arange(values.shape[1])]


def uniform() -> Agent:
    """Uniform play: each arm with probability 1/ARMS."""
    return lambda seen, contexts, seed: np.random.default_rng(seed).integers(
        ARMS, size=len(contexts)
    )


def greedy(spec: models.ArchSpec, noise: float) -> Agent:
    """The arm of the largest posterior mean, from the centred mean network."""

    def choose(seen, contexts, seed):
        return np.argmax(mean_network(spec, seen, contexts, noise, seed), axis=1)

    return choose


def ucb(
    spec: models.ArchSpec,
    noise: float,
    *,
    bonus: str,
    scale: float,
    heads: int,
    grams: tuple[np.ndarray, np.ndarray] | None = None,
) -> Agent:
    """The arm of the largest ``mu + scale * b``: ``b`` from an RND (``heads`` heads per arm),
    an ensemble of ``heads + 1`` networks (standard deviation, ``ddof=1``), ``"exact"``:
    ``sqrt(S[kappa])``, their limit, from ``grams``, the NTK and NNGP Gram matrices of
    the bandit's contexts, with the exact posterior mean; or ``"sampled"``: the limit of
    a ``heads``-head estimate, ``sqrt(S[kappa] chi^2_K / K)`` at each context (Thm. 5.6).
    ``scale=0`` with ``"exact"`` is the limit of the greedy agent."""
    validate.choice("bonus", bonus, BONUSES)
    scale = validate.finite("scale", scale, at_least=0.0)
    if bonus in ("exact", "sampled") and grams is None:
        raise ValueError(f"grams (the NTK and NNGP Gram matrices) are needed by bonus={bonus!r}")

    def choose(seen, contexts, seed):
        if bonus in ("exact", "sampled"):
            new = _segment(seen, contexts)
            mu = _means(limits.exact_posterior(grams[0], seen, new, noise))
            spread = limits.ensemble_covariance(*grams, seen, new, noise)
            b2 = np.clip(np.stack([np.diag(c) for c in spread], axis=1), 0.0, None)
            if bonus == "sampled":  # Thm. 5.6: the K-head estimate's law, S chi^2_K / K
                b2 = b2 * np.random.default_rng(seed).chisquare(heads, b2.shape) / heads
            b = np.sqrt(b2)
        elif bonus == "rnd":
            mu = mean_network(spec, seen, contexts, noise, seed)
            b = rnd_bonus(spec, seen, contexts, noise, heads, seed + 1)
        else:
            mu = mean_network(spec, seen, contexts, noise, seed)
            members = ensemble_outputs(
                spec, seen, contexts, noise, heads + 1, seed + 1, randomised=False
            )
            b = members.std(axis=0, ddof=1)
        return np.argmax(mu + scale * b, axis=1)

    return choose


def thompson(
    spec: models.ArchSpec,
    noise: float,
    *,
    sampler: str,
    heads: int,
    ntk: np.ndarray | None = None,
) -> Agent:
    """Thompson sampling: the arm of the largest posterior sample, one sample per decision.

    ``sampler``: ``"bayesian_rnd"`` (the mean network plus a Bayesian RND's heads, used in
    turn: Cor. 5.9), ``"ensemble"`` (``heads`` randomised-prior members in turn),
    ``"exact"`` (an independent draw of the NTK-GP posterior at each context, from the
    Gram matrix ``ntk`` of the bandit's contexts) or ``"overconfident"`` (a decoy: the
    exact mean plus :data:`OVERCONFIDENT` times the exact spread).
    """
    validate.choice("sampler", sampler, SAMPLERS)
    if sampler in ("exact", "overconfident") and ntk is None:
        raise ValueError(f"ntk (the NTK Gram matrix) is needed by sampler={sampler!r}")

    def choose(seen, contexts, seed):
        if sampler in ("exact", "overconfident"):
            posteriors = limits.exact_posterior(ntk, seen, _segment(seen, contexts), noise)
            spread = 1.0 if sampler == "exact" else OVERCONFIDENT
            values = _draws(posteriors, np.random.default_rng(seed), spread)
        elif sampler == "bayesian_rnd":
            mu = mean_network(spec, seen, contexts, noise, seed)
            values = mu + _in_turn(
                bayesian_rnd_errors(spec, seen, contexts, noise, heads, seed + 1)
            )
        else:
            members = ensemble_outputs(spec, seen, contexts, noise, heads, seed, randomised=True)
            values = _in_turn(members)
        return np.argmax(values, axis=1)

    return choose


def neural_linear(spec: models.ArchSpec, noise: float) -> Agent:
    """NeuralLinear (Riquelme et al. 2018): Thompson sampling from a Bayesian linear
    regression per arm on the mean network's last hidden layer ``phi``, with features
    ``[W_std phi / sqrt(width), b_std]``, a standard-normal prior (the readout's own)
    and known noise ``sigma^2``; one weight draw per decision."""
    full = spec.replace(heads=ARMS)

    def choose(seen, contexts, seed):
        trained = jax.tree_util.tree_map(
            lambda a: a[0], _mean_and_features(spec, seen, contexts, noise, seed)[1]
        )

        def features(x):
            phi = np.asarray(
                models.hidden_features(full, trained, jnp.asarray(x, DTYPE)), np.float64
            )
            return np.hstack(
                [spec.W_std * phi / np.sqrt(spec.width), np.full((len(x), 1), spec.b_std)]
            )

        phi_seen, phi_new = features(seen.contexts), features(contexts)
        rng, values = np.random.default_rng(seed), np.empty((len(contexts), ARMS))
        for arm in range(ARMS):
            rows = np.asarray(seen.arms) == arm
            precision = np.eye(phi_seen.shape[1]) + phi_seen[rows].T @ phi_seen[rows] / noise
            chol = np.linalg.cholesky(precision)
            mean = np.linalg.solve(
                precision, phi_seen[rows].T @ np.asarray(seen.rewards)[rows] / noise
            )
            xi = rng.standard_normal((len(contexts), len(mean)))
            offsets = np.linalg.solve(chol.T, xi.T).T  # rows ~ N(0, precision^-1)
            values[:, arm] = phi_new @ mean + np.sum(phi_new * offsets, axis=1)
        return np.argmax(values, axis=1)

    return choose
