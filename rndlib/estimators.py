"""The estimates that Claims 1 and 2 are checked on, each beside its analytic value.

:func:`ensemble_variance` and :func:`rnd_variance` run Claim 1's experiment on a data
set (Cor. 5.4): trained estimates, the same initial draws pushed through the lemma
instead of trained, and the analytic variance ``S_T[kappa](x, x)``;
:func:`bayesian_rnd_errors` runs Claim 2's (Prop. 5.7): Bayesian-RND errors beside the
covariance ``S_T[Theta]`` they should have.
"""

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from rndlib import models, optimizers, rnd, schedule, theory, train, validate
from rndlib.data import Dataset
from rndlib.optimizers import GD, Optimizer


class Estimate(NamedTuple):
    """Draws from trained networks, beside their lemma twins and the analytic law (Claims 1, 2).

    One type for every estimator here, with one axis order, (seeds, dof, n_test):

    - ``draws`` (seeds, dof, n_test): ``dof`` draws per seed from the trained networks
      whose mean square is ``constant`` times the analytic variance: standard RND's errors
      (``dof`` heads), Bayesian RND's errors ``g(x) - u_T(x)`` (Claim 2), and for an
      ensemble the Helmert contrasts of its members (``dof = members - 1`` orthonormal
      contrasts of i.i.d. members are i.i.d. N(0, S_T[kappa]) draws, whatever the mean).
    - ``lemma`` (seeds, dof, n_test): the same initial draws pushed through the lemma
      instead of trained, so that ``draws - lemma`` is the finite-width gap with the
      Monte-Carlo noise cancelled.
    - ``analytic``: what the draws estimate, ``S_T[kappa](x, x)`` (n_test,) for Claim 1,
      ``S_T[Theta + noise at X]`` (n_test, n_test) for Claim 2 (at convergence the noisy
      NTK-GP posterior covariance).
    - ``variance`` and ``lemma_variance`` (seeds, n_test): Claim 1's estimate of the
      analytic variance from each seed's draws (their mean square divided by
      ``constant``; an ensemble's is its sample variance over members), trained and lemma.
    - ``constant``: 2 for standard RND with the predictor's architecture as target, else 1.
    - ``lr`` and ``steps``: the schedule used. ``residual`` (seeds,): the fraction of the
      squared training residual left, ``||r_T(X)||^2 / ||r_0(X)||^2`` (members or heads
      pooled). ``draw_gap`` (seeds,): ``||e - e_lemma|| / ||e_lemma||`` over members or
      heads and test inputs, ``e`` the networks' outputs (RND: errors).
    - ``path`` (seeds, steps + 1, n_record, heads): RND's errors (not divided by the
      constant) at the recorded test inputs after 0, 1, ..., ``steps`` steps, if asked for.
    """

    draws: np.ndarray
    lemma: np.ndarray
    analytic: np.ndarray
    variance: np.ndarray
    lemma_variance: np.ndarray
    constant: float
    lr: float
    steps: int
    residual: np.ndarray
    draw_gap: np.ndarray
    path: np.ndarray | None = None

    @property
    def dof(self) -> int:
        """Draws per seed: the degrees of freedom of each seed's variance estimate."""
        return self.draws.shape[1]


def _by_seed(shape: tuple[int, int], f: np.ndarray) -> np.ndarray:
    return f.reshape(*shape, -1)


def _residual_left(end: np.ndarray, start: np.ndarray) -> np.ndarray:
    """``||end||^2 / ||start||^2`` over all axes but the first (seeds)."""
    axes = tuple(range(1, np.ndim(end)))
    return np.sum(np.square(end), axis=axes) / np.sum(np.square(start), axis=axes)


def _reference_steps(optimizer: Optimizer, steps: int, ridge: float) -> int | None:
    """Steps of the closed form a run is compared with: ``None`` (the converged end point)
    for minibatch SGD and Adam, whose paths have no closed form."""
    if optimizer.name == "gd":
        return steps
    if ridge <= 0.0:
        raise ValueError(
            f"optimizer '{optimizer.name}' has a closed-form end point only with ridge > 0"
        )
    return None


def _analytic_variance(
    kernel_fn, dataset: Dataset, lr: float, steps: int | None, ridge: float, covariances=None
):
    # diag S_T[C] and B_T, B_T from kernel_fn's NTK, C the sum of the NNGP kernels of
    # ``covariances`` (kernel functions; kernel_fn's own if None)
    blocks = [
        theory.kernel_blocks(k, dataset.x_train, dataset.x_test, "nngp")
        for k in (covariances or [kernel_fn])
    ]
    nngp = sum(blocks[1:], blocks[0])
    ntk = theory.kernel_blocks(kernel_fn, dataset.x_train, dataset.x_test, "ntk")
    op = theory.training_operator(ntk, lr=lr, steps=steps, ridge=ridge).matrix
    return np.diag(theory.sandwich(nngp, op)), op


def ensemble_variance(
    spec: models.ArchSpec,
    dataset: Dataset,
    *,
    members: int,
    seeds: int,
    steps: int,
    lr_fraction: float,
    seed: int,
    lr: float | None = None,
) -> Estimate:
    """Predictive variance of ``seeds`` deep ensembles of ``members`` networks each.

    Every network (architecture ``spec``, one output) is trained on the data for
    ``steps`` steps of ``lr_fraction / lambda_max``, ``lambda_max`` the largest over
    all networks; the sample variance over each ensemble's members estimates
    ``S_T[kappa](x, x)`` (the deep ensemble of Lee et al. 2019) with ``members - 1``
    degrees of freedom. A given ``lr`` replaces the rule, so that a width sweep can
    hold the step, and with it the training time, fixed.

    Raises:
        ValueError: if a given ``lr`` is at or past the stability limit ``2 / lambda_max``
            or training diverged, for ``members`` below 2 (a sample variance needs two), or
            a negative or non-integer ``seed``.
    """
    validate.integer("members", members, minimum=2)
    validate.integer("seed", seed, minimum=0)
    x_train, y_train = jnp.asarray(dataset.x_train), jnp.asarray(dataset.y_train)
    init_fn, apply_fn, kernel_fn = models.network(spec.replace(heads=1))
    params = models.init_params(init_fn, seed, seeds * members, x_train.shape[1])
    lr = schedule.stable_step(apply_fn, params, x_train, lr, 0.0, lr_fraction)
    analytic, op = _analytic_variance(kernel_fn, dataset, lr, steps, 0.0)
    trained = train.gradient_descent(
        apply_fn, params, x_train, y_train, lr=lr, steps=steps, members=True
    )
    f0_train = np.asarray(models.apply_members(apply_fn, params, x_train))
    f0_test = np.asarray(models.apply_members(apply_fn, params, dataset.x_test))
    f_lemma = theory.linearised_prediction(op, f0_test, f0_train, dataset.y_train)
    f_trained = np.asarray(models.apply_members(apply_fn, trained.params, dataset.x_test))
    fT_train = np.asarray(models.apply_members(apply_fn, trained.params, x_train))

    y = dataset.y_train
    by_seed = partial(_by_seed, (seeds, members))
    residual = _residual_left(by_seed(fT_train - y), by_seed(f0_train - y))
    draw_gap = np.sqrt(_residual_left(by_seed(f_trained - f_lemma), by_seed(f_lemma)))
    helmert = partial(np.einsum, "km,smn->snk", scipy.linalg.helmert(members))
    variances = [by_seed(f[..., 0]).var(axis=1, ddof=1) for f in (f_trained, f_lemma)]
    draws = [helmert(by_seed(f)).transpose(0, 2, 1) for f in (f_trained, f_lemma)]
    return Estimate(*draws, analytic, *variances, 1.0, lr, steps, residual, draw_gap)


def rnd_variance(
    spec: models.ArchSpec,
    dataset: Dataset,
    *,
    heads: int,
    seeds: int,
    steps: int,
    lr_fraction: float,
    seed: int,
    centred: bool = False,
    lr: float | None = None,
    ridge: float = 0.0,
    optimizer: Optimizer = GD,
    target_spec: models.ArchSpec | None = None,
    record: list[int] | None = None,
) -> Estimate:
    """Mean over heads of RND's squared error, for ``seeds`` RNDs with ``heads`` heads.

    The predictor u (architecture ``spec`` with ``heads`` outputs; centred at its
    initialisation if ``centred``) is trained on the target g's values at the training
    inputs for ``steps`` steps of ``lr_fraction / lambda_max``, ``lambda_max`` that of
    all heads together. With a target of the predictor's architecture (the default),
    standard RND's error is divided by its constant 2 (Cor. 5.4), so that both estimate
    ``S_T[kappa](x, x)`` (notebook 02), with ``heads`` degrees of freedom. A
    ``target_spec`` of its own gives g that architecture (Prop. 5.3's general case):
    the estimate is then ``E[eps^2] = S_T[kappa_u + kappa_g](x, x)`` itself (``S_T[kappa_g]`` if
    ``centred``), constant 1. A given ``lr`` replaces the step rule (to compare several
    numbers of heads at one step size). ``ridge`` adds the pull towards the predictor's
    initialisation; ``optimizer`` trains by minibatch SGD or Adam instead (``lr`` is
    then their initial step, and the closed form is the converged one, which needs
    ``ridge > 0``). ``record``: indices of test inputs whose errors are kept after
    every step (``path``; Prop. 5.5).

    Raises:
        ValueError: if a given ``lr`` is at or past the stability limit ``2 / lambda_max``
            (Adam aside), for minibatch SGD or Adam without a ridge, or for a negative or
            non-integer ``seed``.
    """
    validate.integer("seed", seed, minimum=0)
    x_train = jnp.asarray(dataset.x_train)
    init_fn, apply_fn, kernel_fn = models.network(spec.replace(heads=heads))
    predictors = models.init_params(init_fn, seed, seeds, x_train.shape[1])
    target_net = models.network((target_spec or spec).replace(heads=heads))
    targets = models.init_params(target_net[0], seed + 1, seeds, x_train.shape[1])
    reference_steps = _reference_steps(optimizer, steps, ridge)
    check = optimizer.name != "adam"
    lr = schedule.stable_step(apply_fn, predictors, x_train, lr, ridge, lr_fraction, check)
    kernels = None if target_spec is None else [target_net[2]] + ([] if centred else [kernel_fn])
    analytic, op = _analytic_variance(kernel_fn, dataset, lr, reference_steps, ridge, kernels)
    constant = (1.0 if centred else 2.0) if target_spec is None else 1.0
    g_train, g_both = (
        models.apply_members(target_net[1], targets, x) for x in (x_train, _inputs(dataset))
    )
    fixed = (lr, ridge, steps, centred, optimizer, record)
    found = _distil(apply_fn, predictors, dataset, g_train, g_both, op, fixed)
    return _estimate(found, analytic, constant, lr, steps)


def bayesian_rnd_errors(
    spec: models.ArchSpec,
    dataset: Dataset,
    *,
    heads: int,
    seeds: int,
    steps: int | None,
    lr_fraction: float,
    seed: int,
    noise: float = 0.0,
    lr: float | None = None,
    optimizer: Optimizer = GD,
    target: str = "he",
    record: list[int] | None = None,
) -> Estimate:
    """Train ``seeds`` Bayesian RNDs with ``heads`` heads; return their errors (notebook 03).

    Each predictor ``u`` (architecture ``spec`` with ``heads`` outputs) gets a target
    from :func:`rndlib.rnd.bayesian_rnd_target` (``target``: ``"he"``, ``u(.; theta_0) + J_0 psi``,
    or the paper's ``"paper"``, ``J_0 psi*``) with ``psi ~ N(0, I)`` drawn once, plus
    ``sqrt(noise) * zeta`` at the training inputs, and is trained on it for ``steps``
    steps with the pull ``noise/2 ||theta - theta_0||^2``; the step is
    ``lr_fraction / (lambda_max + noise)``, ``lambda_max`` that of all heads together.
    ``steps=None`` trains to convergence (:func:`rndlib.optimizers.steps_to_convergence`;
    it needs ``noise > 0``). A given ``lr`` replaces the rule; ``optimizer`` trains by
    Nesterov momentum, minibatch SGD or Adam instead (``lr`` is then their initial step,
    and the closed form is the converged posterior, which needs ``noise > 0``; SGD and
    Adam need ``steps``). ``record``: indices of test inputs whose errors are kept after
    every step (``path``; Prop. 5.5).

    Raises:
        ValueError: naming the argument, for a bad ``noise``, ``target``, schedule or
            ``seed``, or a given ``lr`` past the stability limit (Adam aside).
    """
    validate.integer("seed", seed, minimum=0)
    validate.choice("target", target, rnd.BAYESIAN_TARGETS)
    init_fn, apply_fn, kernel_fn = models.network(spec.replace(heads=heads))
    n_train, dim = dataset.x_train.shape
    predictors = models.init_params(init_fn, seed, seeds, dim)
    lr, steps = _bayesian_schedule(
        apply_fn, predictors, jnp.asarray(dataset.x_train), lr, steps, noise, lr_fraction, optimizer
    )
    ntk = theory.kernel_blocks(kernel_fn, dataset.x_train, dataset.x_test, "ntk")
    reference_steps = _reference_steps(optimizer, steps, noise)
    op = theory.training_operator(ntk, lr=lr, steps=reference_steps, ridge=noise).matrix
    zeta = np.random.default_rng(seed).standard_normal((seeds, n_train, heads))
    g_both = rnd.bayesian_rnd_targets(apply_fn, predictors, seed + 1, _inputs(dataset), target)
    g_both = g_both.at[:, :n_train].add(jnp.asarray(np.sqrt(noise) * zeta))  # noisy targets at X
    fixed = (lr, noise, steps, False, optimizer, record)
    found = _distil(apply_fn, predictors, dataset, g_both[:, :n_train], g_both, op, fixed)
    return _estimate(found, theory.sandwich(ntk.with_noise(noise), op), 1.0, lr, steps)


def _bayesian_schedule(apply_fn, predictors, x_train, lr, steps, noise, lr_fraction, optimizer):
    # (lr, steps) of bayesian_rnd_errors: steps=None trains to convergence, which needs noise
    noise = validate.finite("noise", noise, at_least=0.0)
    if steps is None and noise == 0.0:
        raise ValueError("steps=None (to convergence) needs noise > 0: Theta_XX is ill-conditioned")
    if steps is None and optimizer.name not in optimizers.FULL_BATCH:
        raise ValueError(f"optimizer '{optimizer.name}' needs a given number of steps")
    check = optimizer.name != "adam"
    lr = schedule.stable_step(apply_fn, predictors, x_train, lr, noise, lr_fraction, check)
    if steps is None:
        steps = optimizers.steps_to_convergence(lr, noise, optimizer)
    return lr, steps


def _inputs(dataset: Dataset) -> jax.Array:
    """The training inputs, then the test inputs: (n_train + n_test, d)."""
    return jnp.concatenate([jnp.asarray(dataset.x_train), jnp.asarray(dataset.x_test)])


class _Distilled(NamedTuple):
    errors: np.ndarray  # (seeds, n_test, heads), trained
    lemma: np.ndarray  # the same draws through the lemma
    residual: np.ndarray  # (seeds,)
    draw_gap: np.ndarray  # (seeds,)
    path: np.ndarray | None


def _distil(apply_fn, predictors, dataset: Dataset, g_train, g_both, op, fixed) -> _Distilled:
    """Train stacked predictors on their targets (``fixed``: ``(lr, ridge, steps, centred,
    optimizer, record)``); their errors at the test inputs beside the lemma's, from the same
    initial draws, the residual left at the training inputs and the finite-width gap."""
    lr, ridge, steps, centred, optimizer, record = fixed
    x_train, x_both, n_train = jnp.asarray(dataset.x_train), _inputs(dataset), len(dataset.x_train)
    settings = {"lr": lr, "steps": steps, "ridge": ridge, "optimizer": optimizer}
    eps_both, path = rnd.rnd_errors(
        apply_fn,
        predictors,
        x_train,
        x_both,
        g_train,
        g_both,
        centred=centred,
        record=record,
        **settings,
    )
    h = np.asarray(g_both)
    if not centred:
        h = h - np.asarray(models.apply_members(apply_fn, predictors, x_both))
    eps, h_train = eps_both[:, n_train:], h[:, :n_train]
    eps_lemma = h[:, n_train:] - op @ h_train
    residual = _residual_left(eps_both[:, :n_train], h_train)
    gap = np.sqrt(_residual_left(eps - eps_lemma, eps_lemma))
    return _Distilled(eps, eps_lemma, residual, gap, path)


def _estimate(found: _Distilled, analytic: np.ndarray, constant: float, lr, steps) -> Estimate:
    """The :class:`Estimate` of distilled errors divided by ``constant``."""
    means = [np.mean(e**2, axis=-1) / constant for e in (found.errors, found.lemma)]
    draws = [e.transpose(0, 2, 1) for e in (found.errors, found.lemma)]
    return Estimate(
        *draws, analytic, *means, constant, lr, steps, found.residual, found.draw_gap, found.path
    )
