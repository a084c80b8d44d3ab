"""Claim 3: samples of the NTK-GP posterior from trained networks, and exact ones to compare.

The sampler of notebook 04 (Cor. 5.9 of the paper): a centred network ``g - g_0`` trained
on the data gives the posterior mean ``mu``; a Bayesian RND with M heads gives M errors
``eps_m`` with the posterior covariance; ``mu + eps_m`` are the samples. With
observation noise ``sigma^2`` (noisy targets and the pull towards ``theta_0`` in both
networks) and training to convergence they are, as the width grows, i.i.d. draws of
``N(Theta_xX (Theta_XX + sigma^2 I)^-1 Y, Theta_xx - Theta_xX (Theta_XX + sigma^2 I)^-1 Theta_Xx)``.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from rndlib import models, train, validate
from rndlib.data import Dataset


class PosteriorSamples(NamedTuple):
    """Samples (draws, n_test), the mean network's prediction (n_test,) and the schedule."""

    samples: np.ndarray
    mean: np.ndarray
    lr: float
    steps: int


def centred_network_mean(
    spec: models.ArchSpec,
    dataset: Dataset,
    *,
    steps: int,
    lr_fraction: float,
    seed: int,
    noise: float = 0.0,
    optimizer: train.Optimizer = train.GD,
) -> np.ndarray:
    """Prediction of a centred network ``g - g_0`` trained on the data: ``B_T Y`` (the lemma).

    At convergence this is the NTK-GP posterior mean ``Theta_xX (Theta_XX + noise I)^-1 Y``.
    ``optimizer`` is gradient descent or, to converge in fewer steps, Nesterov momentum.
    """
    x_train, x_test = jnp.asarray(dataset.x_train), jnp.asarray(dataset.x_test)
    init_fn, apply_fn, _ = models.network(spec.replace(heads=1))
    params = init_fn(jax.random.PRNGKey(seed), (-1, x_train.shape[1]))[1]
    lam = train.largest_ntk_eigenvalue(apply_fn, params, x_train)
    lr = train.step_size(lam + noise, lr_fraction)
    target = jnp.asarray(dataset.y_train) + apply_fn(params, x_train)
    trained = train.gradient_descent(
        apply_fn, params, x_train, target, lr=lr, steps=steps, ridge=noise, optimizer=optimizer
    ).params
    return np.asarray(apply_fn(trained, x_test) - apply_fn(params, x_test))[:, 0]


def posterior_samples(
    spec: models.ArchSpec,
    dataset: Dataset,
    *,
    heads: int,
    seeds: int,
    noise: float,
    lr_fraction: float,
    seed: int,
    steps: int | None = None,
    optimizer: train.Optimizer = train.GD,
    target: str = "he",
) -> PosteriorSamples:
    """``heads * seeds`` posterior samples: one mean network plus Bayesian-RND errors (Cor. 5.9).

    Both networks have the architecture ``spec``, the observation noise ``noise`` and
    the pull towards their initialisation; ``steps=None`` trains to convergence, by
    ``optimizer``: gradient descent (``5 (lambda_max + noise) / noise`` steps) or
    Nesterov momentum (``10 sqrt((lambda_max + noise) / noise)`` steps), which reach
    the same minimiser. ``target``: the Bayesian-RND target, He et al.'s (``"he"``) or
    the paper's Prop. 5.7 (``"paper"``; see :func:`rndlib.train.bayesian_rnd_target`).

    Raises:
        FloatingPointError: if training diverged (a sample is not finite).
    """
    errors = train.bayesian_rnd_errors(
        spec,
        dataset,
        heads=heads,
        seeds=seeds,
        steps=steps,
        lr_fraction=lr_fraction,
        seed=seed,
        noise=noise,
        optimizer=optimizer,
        target=target,
    )
    mean = centred_network_mean(
        spec,
        dataset,
        steps=errors.steps,
        lr_fraction=lr_fraction,
        seed=seed + 7,
        noise=noise,
        optimizer=optimizer,
    )
    flat = errors.trained.reshape(-1, errors.trained.shape[-1])
    if not (np.all(np.isfinite(flat)) and np.all(np.isfinite(mean))):
        raise FloatingPointError(
            f"the sampler's training diverged at width {spec.width} ({errors.steps} steps of "
            f"{optimizer.name}, noise={noise}): its samples are not finite; a larger noise or a "
            "smaller lr_fraction keeps the finite network closer to its linearisation"
        )
    return PosteriorSamples(mean + flat, mean, errors.lr, errors.steps)


def gaussian_samples(mean: np.ndarray, cov: np.ndarray, draws: int, seed: int) -> np.ndarray:
    """Exact draws of N(mean, cov), shape (draws, n), by a Cholesky factor.

    A jitter of 1e-9 times the mean variance is added to the diagonal: posterior
    covariances on dense test grids are singular to working precision.
    """
    validate.positive_int("draws", draws)
    jitter = 1e-9 * np.mean(np.diag(cov))
    factor = scipy.linalg.cholesky(cov + jitter * np.eye(len(cov)), lower=True)
    return mean + np.random.default_rng(seed).standard_normal((draws, len(cov))) @ factor.T
