"""Claim 3: samples of the NTK-GP posterior from trained networks, and exact ones to compare.

The sampler of notebook 04 (Cor. 5.9 of the paper): a centred network ``g - g_0`` trained
on the data gives the posterior mean ``mu``; a Bayesian RND with M heads gives M errors
``eps_m`` with the posterior covariance; ``mu + eps_m`` are the samples. With
observation noise ``sigma^2`` (noisy targets and the pull towards ``theta_0`` in both
networks) and training to convergence they are, as the width grows, i.i.d. draws of
``N(Theta_xX (Theta_XX + sigma^2 I)^-1 Y, Theta_xx - Theta_xX (Theta_XX + sigma^2 I)^-1 Theta_Xx)``.
"""

import time
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import neural_tangents as nt
import numpy as np
import scipy.linalg

from rndlib import convergence, models, train, validate
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

    Raises:
        ValueError: naming the argument, for a negative or non-integer ``seed``.
    """
    validate.integer("seed", seed, minimum=0)
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
        ValueError: naming the argument, for a negative or non-integer ``seed``.
        FloatingPointError: if training diverged (a sample is not finite).
    """
    validate.integer("seed", seed, minimum=0)
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

    Raises:
        ValueError: naming the argument, for a ``cov`` that is not a finite symmetric
            (n, n) matrix (asymmetry up to ``validate.SYMMETRY_RTOL`` of its largest entry
            is round-off), a ``mean`` that is not finite of shape (n,), ``draws`` not a
            positive integer, or a negative or non-integer ``seed``.
    """
    n = len(validate.square("cov", cov, symmetric=True))
    validate.array("mean", mean, (n,))
    validate.integer("draws", draws)
    validate.integer("seed", seed, minimum=0)
    jitter = 1e-9 * np.mean(np.diag(cov))
    factor = scipy.linalg.cholesky(cov + jitter * np.eye(len(cov)), lower=True)
    return mean + np.random.default_rng(seed).standard_normal((draws, len(cov))) @ factor.T


class ConvergedSamples(NamedTuple):
    """Samples (draws, n_test) and the mean (n_test,) of :func:`converged_posterior_samples`.

    ``steps``: the mean network's, then each Bayesian-RND network's steps; ``converged``:
    whether every training met the stopping rule; ``lambda_max``: the NTK's largest
    eigenvalue that set the steps, mean network first; ``seconds``: the wall time of each
    training, mean network first.
    """

    samples: np.ndarray
    mean: np.ndarray
    steps: np.ndarray
    converged: bool
    lambda_max: tuple[float, float]
    seconds: tuple[float, float]


def converged_posterior_samples(
    spec: models.ArchSpec,
    dataset: Dataset,
    *,
    heads: int,
    seeds: int,
    noise: float,
    seed: int,
    method: str = "nesterov",
    tol: float = 1e-2,
    max_steps: int = 100_000,
    chunk: int | None = None,
    linearised: bool = False,
    dtype: str = "float64",
) -> ConvergedSamples:
    """:func:`posterior_samples` trained until the stopping rule holds (notebook 07).

    The same sampler (Cor. 5.9: the centred mean network plus a Bayesian RND with He et
    al.'s target, noisy targets and the pull), each network trained by
    :func:`rndlib.convergence.train_to_convergence` with ``method`` until
    ``||grad L|| <= tol * noise * ||theta - theta_0||``, instead of for a fixed multiple
    of the condition number; ``chunk`` bounds the memory of a gradient for large ``N``.
    With ``linearised`` every network is replaced by its linearisation around its
    initialisation, trained and evaluated as such: the sampler of the kernel regime,
    whose samples are exact draws of the posterior under each network's empirical NTK.
    ``dtype`` is the precision the networks are trained in (the targets are drawn in
    float64).

    Raises:
        ValueError: naming the parameter, for an unknown ``dtype`` or a negative or
            non-integer ``seed``, and naming ``lambda_max`` if a training diverged
            (:func:`rndlib.convergence.train_to_convergence`).
        FloatingPointError: if a sample is not finite after training.
    """
    validate.integer("seed", seed, minimum=0)
    noise = validate.finite("noise", noise, above=0.0)
    cast = partial(_cast, validate.choice("dtype", dtype, ("float32", "float64")))
    x_train, x_test = cast(dataset.x_train), cast(dataset.x_test)
    schedule = {"method": method, "tol": tol, "max_steps": max_steps, "chunk": chunk}
    schedule["linearised"] = linearised

    def predict(apply_fn, start, params, x):
        if linearised:
            return nt.linearize(apply_fn, start)(params, x)
        return apply_fn(params, x)

    init_1, apply_1, _ = models.network(spec.replace(heads=1))
    theta0 = cast(init_1(jax.random.PRNGKey(seed + 7), (-1, x_train.shape[1]))[1])
    lam_mean = train.largest_ntk_eigenvalue(apply_1, theta0, x_train)
    target = cast(dataset.y_train) + apply_1(theta0, x_train)
    start = time.perf_counter()
    fitted = convergence.train_to_convergence(
        apply_1, theta0, x_train, target, ridge=noise, lambda_max=lam_mean, **schedule
    )
    seconds = [time.perf_counter() - start]
    moved = predict(apply_1, theta0, fitted.params, x_test) - apply_1(theta0, x_test)
    mean = np.asarray(moved, np.float64)[:, 0]

    init_m, apply_m, _ = models.network(spec.replace(heads=heads))
    predictors = train.init_params(init_m, seed, seeds, x_train.shape[1])
    keys = jax.random.split(jax.random.PRNGKey(seed + 1), seeds)
    x_both = jnp.concatenate([jnp.asarray(dataset.x_train), jnp.asarray(dataset.x_test)])
    g_both = np.asarray(train._bayesian_rnd_targets(apply_m, predictors, keys, x_both, "he"))
    predictors = cast(predictors)
    lam_rnd = train.largest_ntk_eigenvalue(apply_m, predictors, x_train, members=True)
    n_train = len(x_train)
    zeta = np.random.default_rng(seed).standard_normal((seeds, n_train, heads))
    g_train = cast(g_both[:, :n_train] + np.sqrt(noise) * zeta)
    start = time.perf_counter()
    rnd = convergence.train_to_convergence(
        apply_m,
        predictors,
        x_train,
        g_train,
        ridge=noise,
        lambda_max=lam_rnd,
        members=True,
        **schedule,
    )
    seconds.append(time.perf_counter() - start)
    u_test = jax.lax.map(
        lambda both: predict(apply_m, *both, x_test), (predictors, rnd.params), batch_size=8
    )
    errors = g_both[:, n_train:] - np.asarray(u_test, np.float64)
    errors = errors.transpose(0, 2, 1).reshape(-1, len(x_test))
    if not (np.all(np.isfinite(errors)) and np.all(np.isfinite(mean))):
        raise FloatingPointError(
            f"the sampler's training diverged at width {spec.width} ({method}, noise={noise}): "
            "its samples are not finite"
        )
    return ConvergedSamples(
        mean + errors,
        mean,
        np.concatenate([fitted.steps, rnd.steps]),
        bool(fitted.converged.all() and rnd.converged.all()),
        (lam_mean, lam_rnd),
        (seconds[0], seconds[1]),
    )


def _cast(dtype: str, tree):
    return jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), tree)
