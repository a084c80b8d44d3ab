"""Claim 3: samples of the NTK-GP posterior from trained networks, and exact ones to compare.

The sampler of notebook 04 (Cor. 5.9 of the paper): a centred network ``g - g_0`` trained
on the data gives the posterior mean ``mu``; a Bayesian RND with K heads gives K errors
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

from rndlib import estimators, models, optimizers, rnd, schedule, train, validate
from rndlib.data import Dataset
from rndlib.optimizers import GD, Optimizer


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
    optimizer: Optimizer = GD,
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
    lam = models.largest_ntk_eigenvalue(apply_fn, params, x_train)
    lr = schedule.step_size(lam + noise, lr_fraction)
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
    optimizer: Optimizer = GD,
    target: str = "he",
) -> PosteriorSamples:
    """``heads * seeds`` posterior samples: one mean network plus Bayesian-RND errors (Cor. 5.9).

    Both networks have the architecture ``spec``, the observation noise ``noise`` and
    the pull towards their initialisation; ``steps=None`` trains to convergence, by
    ``optimizer``: gradient descent (``5 (lambda_max + noise) / noise`` steps) or
    Nesterov momentum (``10 sqrt((lambda_max + noise) / noise)`` steps), which reach
    the same minimiser. ``target``: the Bayesian-RND target, He et al.'s (``"he"``) or
    the paper's Prop. 5.7 (``"paper"``; see :func:`rndlib.rnd.bayesian_rnd_target`).

    Raises:
        ValueError: naming the argument, for a negative or non-integer ``seed``.
        FloatingPointError: if training diverged (a sample is not finite).
    """
    validate.integer("seed", seed, minimum=0)
    errors = estimators.bayesian_rnd_errors(
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
    flat = errors.draws.reshape(-1, errors.draws.shape[-1])
    if not (np.all(np.isfinite(flat)) and np.all(np.isfinite(mean))):
        raise FloatingPointError(
            f"the sampler's training diverged at width {spec.width} ({errors.steps} steps of "
            f"{optimizer.name}, noise={noise}): its samples are not finite; a larger noise or a "
            "smaller lr_fraction keeps the finite network closer to its linearisation"
        )
    return PosteriorSamples(mean + flat, mean, errors.lr, errors.steps)


class EnsembleOutputs(NamedTuple):
    """Trained members' outputs at the test inputs, (members, n_test, outputs), and the schedule."""

    test: np.ndarray
    lr: float
    steps: int


def trained_ensemble(
    spec: models.ArchSpec,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    *,
    members: int,
    steps: int | None,
    lr_fraction: float,
    seed: int,
    ridge: float = 0.0,
    optimizer: Optimizer = GD,
) -> EnsembleOutputs:
    """A deep ensemble: ``members`` networks trained on ``y_train`` and evaluated at ``x_test``.

    Each network has the architecture ``spec`` with one output per column of
    ``y_train``, and takes ``steps`` gradient-descent steps of
    ``lr_fraction / (lambda_max + ridge)`` (``lambda_max`` the largest over the members)
    with the pull ``ridge/2 ||theta - theta_0||^2``; ``steps=None`` trains to
    convergence (:func:`rndlib.optimizers.steps_to_convergence`). ``optimizer`` is gradient
    descent or, to converge in fewer steps when ``ridge > 0``, Nesterov momentum.

    Raises:
        ValueError: naming the argument, for a negative or non-integer ``seed``, or
            ``lr`` if training diverged.
    """
    validate.integer("seed", seed, minimum=0)
    x_train, y_train = jnp.asarray(x_train), jnp.asarray(y_train)
    init_fn, apply_fn, _ = models.network(spec.replace(heads=y_train.shape[1]))
    params = models.init_params(init_fn, seed, members, x_train.shape[1])
    lr = schedule.stable_step(apply_fn, params, x_train, None, ridge, lr_fraction)
    steps = optimizers.steps_to_convergence(lr, ridge, optimizer) if steps is None else steps
    trained = train.gradient_descent(
        apply_fn,
        params,
        x_train,
        y_train,
        lr=lr,
        steps=steps,
        ridge=ridge,
        optimizer=optimizer,
        members=True,
    ).params
    return EnsembleOutputs(
        np.asarray(models.apply_members(apply_fn, trained, jnp.asarray(x_test))), lr, steps
    )


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
    linearised: bool = False,
    dtype: str = "float64",
    optimizer: Optimizer = optimizers.NESTEROV,
    tol: float = 1e-2,
    max_steps: int = 100_000,
    chunk: int | None = None,
) -> ConvergedSamples:
    """:func:`posterior_samples` trained until the stopping rule holds (notebook 07).

    The same sampler (Cor. 5.9: the centred mean network plus a Bayesian RND with He et
    al.'s target, noisy targets and the pull), each network trained by
    :func:`rndlib.train.train_to_convergence` with ``optimizer`` until
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
            (:func:`rndlib.train.train_to_convergence`).
        FloatingPointError: if a sample is not finite after training.
    """
    validate.integer("seed", seed, minimum=0)
    noise = validate.finite("noise", noise, above=0.0)
    cast = partial(models.astype, validate.choice("dtype", dtype, ("float32", "float64")))
    settings = {"optimizer": optimizer, "tol": tol, "max_steps": max_steps, "chunk": chunk}
    settings |= {"ridge": noise, "linearised": linearised}
    mean, mean_run = _converged_mean(spec, dataset, seed + 7, cast, settings)
    errors, rnd_run = _converged_errors(spec, dataset, heads, seeds, seed, cast, settings)
    if not (np.all(np.isfinite(errors)) and np.all(np.isfinite(mean))):
        raise FloatingPointError(
            f"the sampler's training diverged at width {spec.width} ({optimizer.name}, "
            f"noise={noise}): its samples are not finite"
        )
    return ConvergedSamples(
        mean + errors,
        mean,
        np.concatenate([mean_run[0].steps, rnd_run[0].steps]),
        bool(mean_run[0].converged.all() and rnd_run[0].converged.all()),
        (mean_run[1], rnd_run[1]),
        (mean_run[2], rnd_run[2]),
    )


def _timed_training(apply_fn, start, x_train, target, lambda_max, settings, members=False):
    clock = time.perf_counter()
    run = train.train_to_convergence(
        apply_fn, start, x_train, target, lambda_max=lambda_max, members=members, **settings
    )
    return run, lambda_max, time.perf_counter() - clock


def _converged_mean(spec, dataset: Dataset, seed: int, cast, settings: dict):
    # The centred mean network at the test inputs, (n_test,), trained to convergence.
    x_train, x_test = cast(dataset.x_train), cast(dataset.x_test)
    init_fn, apply_fn, _ = models.network(spec.replace(heads=1))
    theta0 = cast(init_fn(jax.random.PRNGKey(seed), (-1, x_train.shape[1]))[1])
    lam = models.largest_ntk_eigenvalue(apply_fn, theta0, x_train)
    target = cast(dataset.y_train) + apply_fn(theta0, x_train)
    report = _timed_training(apply_fn, theta0, x_train, target, lam, settings)
    fitted = report[0]
    predicted = _predict(apply_fn, theta0, fitted.params, x_test, settings["linearised"])
    return np.asarray(predicted - apply_fn(theta0, x_test), np.float64)[:, 0], report


def _converged_errors(spec, dataset: Dataset, heads: int, seeds: int, seed: int, cast, settings):
    # Bayesian-RND errors at the test inputs, (seeds * heads, n_test), trained to convergence.
    x_train, x_test = cast(dataset.x_train), cast(dataset.x_test)
    init_fn, apply_fn, _ = models.network(spec.replace(heads=heads))
    predictors = models.init_params(init_fn, seed, seeds, x_train.shape[1])
    x_both = jnp.concatenate([jnp.asarray(dataset.x_train), jnp.asarray(dataset.x_test)])
    g_both = np.asarray(rnd.bayesian_rnd_targets(apply_fn, predictors, seed + 1, x_both, "he"))
    predictors = cast(predictors)
    lam = models.largest_ntk_eigenvalue(apply_fn, predictors, x_train, members=True)
    n_train = len(x_train)
    zeta = np.random.default_rng(seed).standard_normal((seeds, n_train, heads))
    g_train = cast(g_both[:, :n_train] + np.sqrt(settings["ridge"]) * zeta)
    report = _timed_training(apply_fn, predictors, x_train, g_train, lam, settings, True)
    fitted = report[0]
    u_test = jax.lax.map(
        lambda both: _predict(apply_fn, *both, x_test, settings["linearised"]),
        (predictors, fitted.params),
        batch_size=8,
    )
    errors = g_both[:, n_train:] - np.asarray(u_test, np.float64)
    return errors.transpose(0, 2, 1).reshape(-1, len(x_test)), report


def _predict(apply_fn, start, params, x, linearised: bool):
    if linearised:
        return nt.linearize(apply_fn, start)(params, x)
    return apply_fn(params, x)
