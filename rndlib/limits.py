"""Each arm's NTK-GP limit on the wheel bandit, and how often a sampler picks each arm.

The agents of :mod:`rndlib.agents` train networks; as their width grows they tend to what
this module computes from Gram matrices in float64: each arm's NTK-GP posterior given the
contexts where it was played (the limit of the mean network plus Bayesian RND, Cor. 5.9),
and each arm's ``S[kappa]`` (the limit of an ensemble's variance and of half an RND's
squared error, Cor. 5.4). Arms are independent in the limit (different outputs have zero
NTK), so each is conditioned on its own observations.
"""

import numpy as np
import scipy.integrate
import scipy.stats

from rndlib import models, theory, validate
from rndlib.bandit import ARMS, Observed


def gram(spec: models.ArchSpec, contexts: np.ndarray, get: str = "ntk") -> np.ndarray:
    """The infinite-width ``get`` kernel ('ntk' or 'nngp') of a one-output network of ``spec``
    on ``contexts`` (neural-tangents' analytic ``kernel_fn``), as float64."""
    validate.choice("get", get, ("ntk", "nngp"))
    kernel_fn = models.network(spec.replace(heads=1))[2]
    return np.asarray(kernel_fn(validate.array("contexts", contexts, ("n", 2)), None, get), float)


def exact_posterior(
    ntk: np.ndarray, seen: Observed, new: np.ndarray, noise: float
) -> list[theory.GaussianPrediction]:
    """Each arm's NTK-GP posterior at the contexts ``new``, with noise ``sigma^2``.

    Args:
        ntk: the NTK Gram matrix of a list of contexts whose first ``len(seen.arms)``
            are those seen (:func:`gram`).
        seen: the arms played and rewards received at those contexts.
        new: indices into that list of the contexts to predict at.
        noise: ``sigma^2``.

    Returns:
        One :class:`rndlib.theory.GaussianPrediction` per arm: mean (n, 1), covariance
        (n, n) and the condition number of ``Theta_XX + sigma^2 I`` met (1 for an arm
        never played, whose posterior is its prior).
    """
    new = np.asarray(new)
    out = []
    for arm in range(ARMS):
        rows = np.flatnonzero(np.asarray(seen.arms) == arm)
        if not len(rows):
            out.append(
                theory.GaussianPrediction(np.zeros((len(new), 1)), ntk[np.ix_(new, new)], 1.0)
            )
            continue
        blocks = _blocks(ntk, rows, new)
        y = np.asarray(seen.rewards)[rows, None]
        out.append(theory.gp_posterior(blocks, y, noise))
    return out


def _blocks(gram: np.ndarray, rows: np.ndarray, new: np.ndarray) -> theory.KernelBlocks:
    return theory.KernelBlocks(
        gram[np.ix_(rows, rows)], gram[np.ix_(new, rows)], gram[np.ix_(new, new)]
    )


def ensemble_covariance(
    ntk: np.ndarray, nngp: np.ndarray, seen: Observed, new: np.ndarray, noise: float
) -> list[np.ndarray]:
    """Each arm's ``S[kappa]`` at ``new``: the limit covariance of an ensemble trained on the
    rewards with the pull ``sigma^2`` (Prop. 5.2), and of half an RND's squared error
    (Cor. 5.4). ``ntk``, ``nngp``: Gram matrices as in :func:`exact_posterior`."""
    new, out = np.asarray(new), []
    for arm in range(ARMS):
        rows = np.flatnonzero(np.asarray(seen.arms) == arm)
        if not len(rows):
            out.append(nngp[np.ix_(new, new)])
            continue

        # at convergence the operator is Theta_xX (Theta_XX + sigma^2 I)^-1; lr is not used
        b = theory.training_operator(_blocks(ntk, rows, new), lr=1.0, ridge=noise).matrix
        out.append(theory.sandwich(_blocks(nngp, rows, new), b))
    return out


def pick_frequencies(values: np.ndarray) -> np.ndarray:
    """How often each arm has the largest value over draws: (draws, n, ARMS) -> (n, ARMS)."""
    best = np.argmax(values, axis=-1)
    return np.stack([np.mean(best == arm, axis=0) for arm in range(ARMS)], axis=-1)


def decision_distance(frequencies: np.ndarray, reference: np.ndarray) -> float:
    """Mean over contexts of the total-variation distance between two pick distributions."""
    return float(np.mean(0.5 * np.abs(np.asarray(frequencies) - reference).sum(axis=-1)))


def thompson_pick_probabilities(mean: np.ndarray, sd: np.ndarray, points: int = 4001) -> np.ndarray:
    """P(arm a has the largest draw) for independent ``N(mean_a, sd_a^2)``, (n, ARMS).

    By quadrature of ``int phi_a(t) prod_{b != a} Phi_b(t) dt`` on ``points`` points over
    ``mean -+ 8 sd``: the exact decision law of Thompson sampling at each context.
    """
    mean, sd = np.asarray(mean, float), np.asarray(sd, float)
    low = np.min(mean - 8 * sd, axis=1, keepdims=True)
    high = np.max(mean + 8 * sd, axis=1, keepdims=True)
    t = low + (high - low) * np.linspace(0.0, 1.0, points)  # (n, points)
    z = (t[:, :, None] - mean[:, None, :]) / sd[:, None, :]  # (n, points, ARMS)
    log_cdf = scipy.stats.norm.logcdf(z)
    others = np.sum(log_cdf, axis=2, keepdims=True) - log_cdf
    density = scipy.stats.norm.pdf(z) / sd[:, None, :] * np.exp(others)
    p = scipy.integrate.trapezoid(density, t[:, :, None], axis=1)
    return p / p.sum(axis=1, keepdims=True)


def ucb_pick_probabilities(
    mean: np.ndarray, var: np.ndarray, scale: float, dof: int, draws: int, seed: int
) -> np.ndarray:
    """P(UCB plays arm a), (n, ARMS), when each bonus is a ``dof``-draw estimate of ``sqrt(var)``.

    The bonus is ``sqrt(var chi^2_dof / dof)`` at each context and arm, independently: the
    law of an RND's ``sqrt(mean_k eps_k^2 / 2)`` over ``dof`` heads and of the standard
    deviation of ``dof + 1`` ensemble members (Thm. 5.6). Estimated from ``draws`` draws.
    """
    rng = np.random.default_rng(validate.integer("seed", seed, minimum=0))
    chi2 = rng.chisquare(
        validate.integer("dof", dof), (validate.integer("draws", draws), *np.shape(var))
    )
    values = mean + scale * np.sqrt(np.clip(var, 0.0, None) * chi2 / dof)
    return pick_frequencies(values)
