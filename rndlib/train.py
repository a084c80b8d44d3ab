"""Full-batch gradient descent for many networks at once, and the RND targets.

Training minimises THEORY.md's loss ``1/2 sum ||f(X) - Y||^2`` (plus
``ridge/2 ||theta - theta_0||^2``, the pull towards the initialisation of the
"Observation noise" section) with plain gradient descent (``optax.sgd``), jitted,
with ``lax.scan`` over steps and ``vmap`` over ensemble members. Multi-headed
networks are one network with ``heads`` outputs: their losses add up.
"""

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import neural_tangents as nt
import numpy as np
import optax

from rndlib import validate

Params = Any


class TrainResult(NamedTuple):
    """Final parameters and the loss before each step, shape (steps,) or (members, steps)."""

    params: Params
    losses: jax.Array


def init_params(init_fn, seed: int, members: int, input_dim: int) -> Params:
    """Parameters of ``members`` independent networks, stacked along a leading axis."""
    validate.positive_int("members", members)
    keys = jax.random.split(jax.random.PRNGKey(seed), members)
    return jax.vmap(lambda key: init_fn(key, (-1, input_dim))[1])(keys)


def apply_members(apply_fn, params: Params, x: jax.Array) -> jax.Array:
    """Outputs of stacked networks on shared inputs, shape (members, n, outputs)."""
    return jax.vmap(apply_fn, in_axes=(0, None))(params, x)


def _power_iteration(matvec, shape: tuple[int, ...], iters: int) -> jax.Array:
    def body(_, v):
        w = matvec(v)
        return w / jnp.linalg.norm(w)

    v = jax.lax.fori_loop(0, iters, body, jnp.ones(shape) / np.sqrt(np.prod(shape)))
    return jnp.vdot(v, matvec(v))


def largest_ntk_eigenvalue(
    apply_fn, params: Params, x: jax.Array, *, members: bool = False, iters: int = 200
) -> float:
    """Largest eigenvalue of the empirical NTK on ``x``, all outputs (heads) together.

    Power iteration on neural-tangents' NTK-vector product (``empirical_ntk_vp_fn``),
    so the (N * heads)^2 kernel is never formed. With ``members=True``, ``params``
    are stacked networks and the largest over the members is returned: the step
    size must be stable for every one of them.
    """
    validate.positive_int("iters", iters)

    def one(p):
        shape = jax.eval_shape(apply_fn, p, x).shape
        return _power_iteration(nt.empirical_ntk_vp_fn(apply_fn, x, x, p), shape, iters)

    return float(jnp.max(jax.lax.map(one, params)) if members else one(params))


def step_size(lambda_max: float, fraction: float = 1.0) -> float:
    """Step ``fraction / lambda_max``: gradient descent on the squared loss is stable below 2."""
    lambda_max = validate.finite("lambda_max", lambda_max, above=0.0)
    return validate.finite("lr_fraction", fraction, above=0.0, below=2.0) / lambda_max


@partial(jax.jit, static_argnames=("apply_fn", "steps"))
def _descend(apply_fn, params0: Params, x, y, lr, ridge, steps: int) -> TrainResult:
    optimizer = optax.sgd(lr)

    def loss(params):
        fit = 0.5 * jnp.sum((apply_fn(params, x) - y) ** 2)
        moved = jax.tree_util.tree_map(lambda a, b: jnp.sum((a - b) ** 2), params, params0)
        pull = sum(jax.tree_util.tree_leaves(moved))
        return fit + 0.5 * ridge * pull

    def step(state, _):
        params, opt_state = state
        value, grads = jax.value_and_grad(loss)(params)
        updates, opt_state = optimizer.update(grads, opt_state)
        return (optax.apply_updates(params, updates), opt_state), value

    (params, _), losses = jax.lax.scan(step, (params0, optimizer.init(params0)), length=steps)
    return TrainResult(params, losses)


def _check_schedule(lr: float, steps: int, ridge: float) -> tuple[float, int, float]:
    return (
        validate.finite("lr", lr, above=0.0),
        validate.positive_int("steps", steps, minimum=0),
        validate.finite("ridge", ridge, at_least=0.0),
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
) -> TrainResult:
    """Train one network by ``steps`` full-batch gradient-descent steps of size ``lr``.

    Minimises ``1/2 sum ||f(X) - y||^2 + ridge/2 ||theta - theta_0||^2``; in the
    kernel regime the result is THEORY.md's lemma ``f_0 + B_T (y - f_0(X))``.
    """
    lr, steps, ridge = _check_schedule(lr, steps, ridge)
    return _descend(apply_fn, params, jnp.asarray(x), jnp.asarray(y), lr, ridge, steps)


def gradient_descent_members(
    apply_fn,
    params: Params,
    x: jax.Array,
    y: jax.Array,
    *,
    lr: float,
    steps: int,
    ridge: float = 0.0,
) -> TrainResult:
    """:func:`gradient_descent` for stacked networks at once (``vmap`` over members).

    ``y`` is either shared, shape (n, outputs), or one target per member,
    shape (members, n, outputs).
    """
    lr, steps, ridge = _check_schedule(lr, steps, ridge)
    y = jnp.asarray(y)
    y_axis = 0 if y.ndim == 3 else None
    descend = jax.vmap(
        lambda p, t: _descend(apply_fn, p, jnp.asarray(x), t, lr, ridge, steps), in_axes=(0, y_axis)
    )
    return descend(params, y)


def tangent_draw(params: Params, seed: int) -> Params:
    """``psi ~ N(0, I)`` with the structure of ``params`` (THEORY.md, "Bayesian RND")."""
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
    draws = [
        jax.random.normal(k, leaf.shape, leaf.dtype) for k, leaf in zip(keys, leaves, strict=True)
    ]
    return jax.tree_util.tree_unflatten(tree, draws)


def bayesian_rnd_target(apply_fn, params0: Params, psi: Params, x: jax.Array) -> jax.Array:
    """The Bayesian-RND target ``u(x) = g(x; theta_0) + J_0(x) psi``, by one ``jax.jvp``.

    ``u - g(.; theta_0) = J_0 psi ~ GP(0, Theta_0)`` for ``psi ~ N(0, I)``: the
    empirical NTK at initialisation, which tends to the analytic Theta with width.
    """
    g0, j0_psi = jax.jvp(lambda p: apply_fn(p, x), (params0,), (psi,))
    return g0 + j0_psi
