"""Each arm's NTK-GP limit on the wheel bandit, and how often a sampler picks each arm.

The agents of :mod:`rndlib.agents` train networks; as their width grows they tend to what
this module computes from Gram matrices in float64: each arm's NTK-GP posterior given the
contexts where it was played (the limit of the mean network plus Bayesian RND, Cor. 5.9),
and each arm's ``S[kappa]`` (the limit of an ensemble's variance and of half an RND's
squared error, Cor. 5.4). Arms are independent in the limit (different outputs have zero
NTK), so each is conditioned on its own observations.
"""

import numpy as np

from rndlib import models, theory
from rndlib.bandit import ARMS, Observed


def ntk_gram(spec: models.ArchSpec, contexts: np.ndarray) -> np.ndarray:
    """The infinite-width NTK of a single-output network of ``spec`` on ``contexts``, float64."""
    kernel_fn = models.network(spec.replace(heads=1))[2]
    return np.asarray(kernel_fn(contexts, None, "ntk"), np.float64)


def exact_posterior(
    ntk: np.ndarray, seen: Observed, new: np.ndarray, noise: float
) -> list[theory.GaussianPrediction]:
    """Each arm's NTK-GP posterior at the contexts ``new``, with noise ``sigma^2``.

    Args:
        ntk: the NTK Gram matrix of a list of contexts whose first ``len(seen.arms)``
            are those seen (:func:`ntk_gram`).
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
