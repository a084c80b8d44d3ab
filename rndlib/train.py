"""One training engine: the regularised squared loss, by a fixed number of steps or to a tolerance.

Every network of the suite minimises

    L(theta) = 1/2 ||u(X; theta) - y||^2 + ridge/2 ||theta - theta_0||^2,

the pull towards the initialisation being the "Observation noise" section's (``ridge =
sigma^2``). Linearised around ``theta_0`` it is a quadratic whose Hessian has its
eigenvalues in ``[ridge, lambda_max + ridge]``, ``lambda_max`` the largest of the empirical
NTK on ``X`` (:mod:`rndlib.schedule`). An :class:`Optimizer` names the method; two jitted
programs run it:

- :func:`gradient_descent`: ``steps`` steps (``lax.scan``), of one network or of stacked
  ones (``vmap``), optionally recording the outputs at some inputs after every step. This
  is the lemma's setting (notebook 01): full-batch gradient descent with a constant step,
  or Nesterov's momentum, or minibatch SGD and Adam as practice trains.
- :func:`train_to_convergence`: until the stopping ratio
  ``r(theta) = ||grad L(theta)|| / (ridge ||theta - theta_0||)`` falls to ``tol``
  (``lax.while_loop``). For the quadratic, ``||grad L|| >= ridge ||theta - theta*||``, so
  ``r`` bounds the error of the trained displacement relative to the displacement; the
  rule is the same for every optimizer, so their step counts compare (notebook 07).
  ``chunk`` sums the gradient over chunks of the training inputs, so memory grows with
  the chunk and not with ``N``; ``linearised`` trains the network's linearisation.

Gradient descent converges in ``O(rho)`` steps, ``rho = (lambda_max + ridge) / ridge``,
Nesterov's and Polyak's momentum in ``O(sqrt(rho))`` (Nesterov 2004, Thm. 2.2.3).
"""

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rndlib import models, optimizers, validate
from rndlib.optimizers import GD, Optimizer

Params = Any


class TrainResult(NamedTuple):
    """Final parameters and the loss before each step, shape (steps,) or (members, steps).

    ``path``: the outputs at recorded inputs before each step, (steps, n_record, outputs),
    when inputs to record were given (else None).
    """

    params: Params
    losses: jax.Array
    path: jax.Array | None = None


class Converged(NamedTuple):
    """Trained parameters, the steps taken and the stopping ratio ``r`` they ended at: for
    stacked networks ``steps``, ``ratio`` and ``converged`` have one entry per network."""

    params: Params
    steps: np.ndarray
    ratio: np.ndarray
    converged: np.ndarray


@partial(jax.jit, static_argnames=("apply_fn", "steps", "optimizer"))
def descend(
    apply_fn, params0: Params, x, y, lr, ridge, steps: int, optimizer: Optimizer, x_record=None
) -> TrainResult:
    """The jitted program of :func:`gradient_descent`, one network, for other jitted programs.

    Its arrays may be tracers, so it checks nothing: validate the schedule first with
    :func:`check_schedule`. ``x_record``: inputs whose outputs are kept before every step.
    """
    transform = optimizers.fixed_steps_transform(optimizer, lr, ridge, steps)
    n = x.shape[0]
    batch = optimizer.batch_size or n
    per_epoch = n // batch
    key = jax.random.PRNGKey(optimizer.seed)

    def loss(params, t):
        if optimizer.batch_size is None:
            xb, yb = x, y
        else:
            order = jax.random.permutation(jax.random.fold_in(key, t // per_epoch), n)
            index = jax.lax.dynamic_slice(order, ((t % per_epoch) * batch,), (batch,))
            xb, yb = x[index], y[index]
        fit = 0.5 * (n / batch) * jnp.sum((apply_fn(params, xb) - yb) ** 2)
        moved = jax.tree_util.tree_map(lambda a, b: jnp.sum((a - b) ** 2), params, params0)
        pull = sum(jax.tree_util.tree_leaves(moved))
        return fit + 0.5 * ridge * pull

    def step(state, t):
        params, opt_state = state
        value, grads = jax.value_and_grad(loss)(params, t)
        updates, opt_state = transform.update(grads, opt_state)
        recorded = None if x_record is None else apply_fn(params, x_record)
        return (optax.apply_updates(params, updates), opt_state), (value, recorded)

    start = (params0, transform.init(params0))
    (params, _), (losses, path) = jax.lax.scan(step, start, jnp.arange(steps))
    return TrainResult(params, losses, path)


def check_schedule(
    lr: float, steps: int, ridge: float, optimizer: Optimizer, n_train: int
) -> tuple[float, int, float]:
    """``(lr, steps, ridge)`` checked for a fixed-steps run of ``optimizer`` on ``n_train`` inputs.

    Raises:
        ValueError: naming the argument, for a step that is not positive and finite, a
            negative number of steps, a negative ridge, Nesterov's momentum without a
            ridge, an optimizer that does not train by fixed steps, or a minibatch larger
            than the training set.
    """
    optimizers.supported(optimizer, optimizers.FIXED_STEPS, "by a fixed number of steps")
    if optimizer.name == "nesterov" and not ridge > 0.0:
        raise ValueError(f"optimizer 'nesterov' needs ridge > 0 to set its momentum, got {ridge}")
    if optimizer.batch_size is not None and optimizer.batch_size > n_train:
        raise ValueError(
            f"batch_size must not exceed the {n_train} training inputs, got {optimizer.batch_size}"
        )
    return (
        validate.finite("lr", lr, above=0.0),
        validate.integer("steps", steps, minimum=0),
        validate.finite("ridge", ridge, at_least=0.0),
    )


def refuse_divergence(lr: float, *trees: object, losses: jax.Array | None = None) -> None:
    """Raise a ValueError naming ``lr`` if a run diverged: an array of ``trees`` is not finite,
    or ``losses`` (before each step; full-batch gradient descent's, which a stable step
    never lets grow) ended above where they started, for any member."""
    if not validate.all_finite(trees):
        raise ValueError(
            f"lr={lr:.4g} diverged: the step is past the stability limit 2 / lambda_max of this "
            "network's NTK (see schedule.step_size)"
        )
    if losses is not None and np.shape(losses)[-1] > 1:
        first, last = np.asarray(losses)[..., 0], np.asarray(losses)[..., -1]
        if np.any(last > first):
            raise ValueError(
                f"lr={lr:.4g} is past the stability limit 2 / lambda_max of this network's NTK: "
                f"gradient descent's loss grew from {np.max(first):.4g} to {np.max(last):.4g} "
                "(see schedule.step_size)"
            )


def gradient_descent(
    apply_fn,
    params: Params,
    x: jax.Array,
    y: jax.Array,
    *,
    lr: float,
    steps: int,
    ridge: float = 0.0,
    optimizer: Optimizer = GD,
    members: bool = False,
    allow_divergence: bool = False,
) -> TrainResult:
    """Train by ``steps`` steps of size ``lr`` (full-batch gradient descent by default).

    Minimises ``1/2 sum ||f(X) - y||^2 + ridge/2 ||theta - theta_0||^2``; with the
    default full-batch gradient descent, in the kernel regime, the result is
    the lemma of notebook 01, ``f_0 + B_T (y - f_0(X))``. ``optimizer`` swaps in Nesterov's
    momentum, minibatch SGD or Adam (see :class:`Optimizer`); ``lr`` is then their
    initial step. With ``members``, ``params`` are stacked networks trained at once
    (``vmap``), and ``y`` is either shared, (n, outputs), or one target per member,
    (members, n, outputs).

    A run that diverges (a step past the stability limit: results not finite, or, for
    gradient descent, a loss that grew) is refused, unless ``allow_divergence``: then its
    result is returned, so that a run past the limit can be studied (notebook 01, section 4).

    Raises:
        ValueError: naming the argument, for a bad shape or schedule, or naming ``lr`` if
            training diverged (the final parameters or losses are not finite) and
            ``allow_divergence`` is False.
    """
    n = len(validate.array("x", x, ("n", "d")))
    members = validate.flag("members", members)
    validate.array("y", y, ("members", n, "k") if members and np.ndim(y) == 3 else (n, "k"))
    lr, steps, ridge = check_schedule(lr, steps, ridge, optimizer, n)
    allow_divergence = validate.flag("allow_divergence", allow_divergence)
    x, y = jnp.asarray(x), jnp.asarray(y)
    if members:
        run = jax.vmap(
            lambda p, t: descend(apply_fn, p, x, t, lr, ridge, steps, optimizer),
            in_axes=(0, 0 if y.ndim == 3 else None),
        )
        result = run(params, y)
    else:
        result = descend(apply_fn, params, x, y, lr, ridge, steps, optimizer)
    if not allow_divergence:
        growth = result.losses if optimizer.name == "gd" else None
        refuse_divergence(lr, result.params, result.losses, losses=growth)
    return result


def _chunked(x: jax.Array, y: jax.Array, chunk: int | None):
    # (chunks, chunk, ...) arrays and a mask that is zero on the padding.
    n = x.shape[0]
    size = n if chunk is None else min(chunk, n)
    count = -(-n // size)
    pad = count * size - n
    mask = jnp.concatenate([jnp.ones(n), jnp.zeros(pad)]).reshape(count, size)
    x = jnp.concatenate([x, jnp.zeros((pad, *x.shape[1:]), x.dtype)])
    y = jnp.concatenate([y, jnp.zeros((pad, *y.shape[1:]), y.dtype)])
    return x.reshape(count, size, *x.shape[1:]), y.reshape(count, size, *y.shape[1:]), mask


def _norm(tree) -> jax.Array:
    return jnp.sqrt(sum(jnp.sum(leaf**2) for leaf in jax.tree_util.tree_leaves(tree)))


def _gradient_and_ratio(apply_fn, params0, xs, ys, mask, ridge, linearised: bool):
    # theta -> (grad L(theta), r(theta)), the fit's gradient summed over the chunks, or of the
    # linearisation (one chunk: u(X; theta_0) and its Jacobian's products, computed once).
    if linearised:
        x_all, y_all = xs[0], ys[0]
        u0, tangent = jax.linearize(lambda p: apply_fn(p, x_all), params0)
        transpose = jax.linear_transpose(tangent, params0)

    def fit_grad(params):
        if linearised:
            moved = jax.tree_util.tree_map(jnp.subtract, params, params0)
            return transpose(u0 + tangent(moved) - y_all)[0]

        def add(total, batch):
            xb, yb, mb = batch
            g = jax.grad(lambda p: 0.5 * jnp.sum(mb[:, None] * (apply_fn(p, xb) - yb) ** 2))(params)
            return jax.tree_util.tree_map(jnp.add, total, g), None

        zero = jax.tree_util.tree_map(jnp.zeros_like, params)
        return jax.lax.scan(add, zero, (xs, ys, mask))[0]

    def gradient(params):
        moved = jax.tree_util.tree_map(jnp.subtract, params, params0)
        grads = jax.tree_util.tree_map(lambda g, d: g + ridge * d, fit_grad(params), moved)
        ratio = _norm(grads) / (ridge * _norm(moved))
        return grads, jnp.where(jnp.isfinite(ratio), ratio, jnp.inf)

    return gradient


def _restarted_step(gradient, lambda_max, ridge):
    # One step of Nesterov's scheme written out, with O'Donoghue & Candes (2015)'s gradient
    # restart: the momentum is dropped whenever the step goes uphill.
    def step(state):
        params, previous, count, _, _ = state
        root = jnp.sqrt((lambda_max + ridge) / ridge)
        ahead = jax.tree_util.tree_map(
            lambda a, b: a + (root - 1) / (root + 1) * (a - b), params, previous
        )
        grads, ratio = gradient(ahead)
        new = jax.tree_util.tree_map(lambda a, g: a - g / (lambda_max + ridge), ahead, grads)
        uphill = sum(
            jnp.vdot(g, a - b)
            for g, a, b in zip(*map(jax.tree_util.tree_leaves, (grads, new, params)), strict=True)
        )
        previous = jax.tree_util.tree_map(lambda a, b: jnp.where(uphill > 0, a, b), new, params)
        return new, previous, count + 1, ratio, ahead

    return step


@partial(jax.jit, static_argnames=("apply_fn", "method", "linearised"))
def _until_tolerance(
    apply_fn, params0, xs, ys, mask, ridge, lambda_max, tol, method: str, max_steps, linearised
):
    gradient = _gradient_and_ratio(apply_fn, params0, xs, ys, mask, ridge, linearised)

    def running(state):
        return (state[2] < max_steps) & (state[3] > tol)

    def body(state, transform):
        params, opt_state, step, _, grads = state
        updates, opt_state = transform.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        grads, ratio = gradient(params)
        return params, opt_state, step + 1, ratio, grads

    grads, ratio = gradient(params0)
    if method == "restart":
        state = (params0, params0, 0, ratio, params0)
        step = _restarted_step(gradient, lambda_max, ridge)
        _, _, steps, ratio, params = jax.lax.while_loop(running, step, state)
        return params, steps, ratio
    transform = optimizers.spectral_transform(method, lambda_max, ridge)
    state = (params0, transform.init(params0), 0, ratio, grads)
    params, _, steps, ratio, _ = jax.lax.while_loop(
        running, partial(body, transform=transform), state
    )
    return params, steps, ratio


def _check_tolerance(x, y, members: bool, settings: dict) -> dict:
    n = len(validate.array("x", x, ("n", "d")))
    validate.array("y", y, ("members", n, "k") if members else (n, "k"))
    checked = {
        "ridge": validate.finite("ridge", settings["ridge"], above=0.0),
        "lambda_max": validate.finite("lambda_max", settings["lambda_max"], above=0.0),
        "tol": validate.finite("tol", settings["tol"], above=0.0),
        "max_steps": validate.integer("max_steps", settings["max_steps"]),
    }
    optimizer = optimizers.supported(
        settings["optimizer"], optimizers.TO_TOLERANCE, "to a tolerance"
    )
    if optimizer.batch_size is not None:
        raise ValueError("batch_size must be None: train_to_convergence is full-batch")
    if settings["chunk"] is not None:
        validate.integer("chunk", settings["chunk"])
        if settings["linearised"]:
            raise ValueError("chunk must be None when linearised: the linearisation is kept whole")
    return checked


def train_to_convergence(
    apply_fn,
    params0: Params,
    x: np.ndarray,
    y: np.ndarray,
    *,
    ridge: float,
    lambda_max: float,
    optimizer: Optimizer = optimizers.NESTEROV,
    tol: float = 1e-2,
    max_steps: int = 100_000,
    chunk: int | None = None,
    members: bool = False,
    linearised: bool = False,
) -> Converged:
    """Minimise ``1/2 ||u(X) - y||^2 + ridge/2 ||theta - theta_0||^2`` until ``r <= tol``.

    Args:
        apply_fn, params0: the network (neural-tangents' stax) and its ``theta_0``.
        x, y: training inputs, (N, d), and targets, (N, outputs) or, if ``members``,
            (members, N, outputs).
        ridge: ``sigma^2 > 0``, the pull towards ``theta_0``.
        lambda_max: the NTK's largest eigenvalue on ``x`` (largest over the members), which
            sets the step (see :class:`rndlib.optimizers.Optimizer`): ``1 / (lambda_max +
            ridge)`` for gradient descent and Nesterov.
        optimizer: full-batch, one of :data:`rndlib.optimizers.TO_TOLERANCE`.
        tol, max_steps: stop once ``r <= tol`` (module docstring), or unconverged after
            ``max_steps`` steps.
        chunk: training inputs per gradient chunk; ``None`` takes them all at once.
        members: ``params0`` and ``y`` are stacked along a leading axis (``vmap``).
        linearised: train ``u(X; theta_0) + J_0 (theta - theta_0)`` (the quadratic,
            exactly) by ``jax.linearize``: the forward pass on ``X`` is kept (memory grows
            as ``N`` times the width), so a step costs matrix products only. Not with
            ``chunk``. Predict with ``neural_tangents.linearize(apply_fn, params0)``.

    Returns:
        :class:`Converged`; ``converged`` is false where ``max_steps`` ran out first.

    Raises:
        ValueError: naming the parameter, for a bad shape or setting, and naming
            ``lambda_max`` if training diverged (the final parameters are not finite):
            a ``lambda_max`` below the network's sets a step past its stability limit.
    """
    settings = dict(ridge=ridge, lambda_max=lambda_max, tol=tol, max_steps=max_steps)
    settings |= dict(optimizer=optimizer, chunk=chunk, linearised=linearised)
    s = _check_tolerance(x, y, validate.flag("members", members), settings)
    _check_lambda_max(apply_fn, params0, x, s["lambda_max"], members)
    xs, _, mask = _chunked(jnp.asarray(x), jnp.asarray(y[0] if members else y), chunk)
    method = optimizer.name

    rule = (s["ridge"], s["lambda_max"], s["tol"], method, s["max_steps"], linearised)

    def one(p, t):
        return _until_tolerance(apply_fn, p, xs, _chunked(jnp.asarray(x), t, chunk)[1], mask, *rule)

    params, steps, ratio = (jax.vmap(one) if members else one)(params0, jnp.asarray(y))
    if not validate.all_finite(params):
        raise ValueError(_diverged_message(s["lambda_max"], method))
    steps, ratio = np.atleast_1d(np.asarray(steps)), np.atleast_1d(np.asarray(ratio))
    return Converged(params, steps, ratio, ratio <= s["tol"])


def _diverged_message(lambda_max: float, method: str) -> str:
    step = f"Adam's lr={optimizers.ADAM_LR}" if method == "adam" else f"the lr it sets ('{method}')"
    return (
        f"lambda_max={lambda_max:.4g}: {step} diverged, past the stability limit 2 / lambda_max "
        "of this network's NTK; lambda_max must be the NTK's largest eigenvalue on x (see "
        "models.largest_ntk_eigenvalue)"
    )


def _check_lambda_max(apply_fn, params0, x, lambda_max: float, members: bool) -> None:
    # The step is set from lambda_max: one below the NTK's sets a step past the stability
    # limit. A 30-iteration Rayleigh quotient never exceeds the largest eigenvalue and comes
    # within 2.5% of it on the notebooks' networks: a lambda_max 10% below it is refused.
    found = models.largest_ntk_eigenvalue(apply_fn, params0, x, members=members, iters=30)
    if lambda_max < 0.9 * found:
        raise ValueError(
            f"lambda_max={lambda_max:.4g} is below the largest eigenvalue of this network's "
            f"NTK on x (at least {found:.4g}): the step it sets is past the stability limit "
            "(see models.largest_ntk_eigenvalue)"
        )
