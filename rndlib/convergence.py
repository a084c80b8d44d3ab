"""Training to convergence in about sqrt(kappa) steps, with a stopping rule that measures it.

The sampler of notebook 04 (Cor. 5.9) needs only the end point of its trainings: with
observation noise ``sigma^2 > 0`` each network minimises

    L(theta) = 1/2 ||u(X; theta) - t||^2 + sigma^2/2 ||theta - theta_0||^2,

which, linearised, is a quadratic whose Hessian ``J_0^T J_0 + sigma^2 I`` has its
eigenvalues in ``[sigma^2, lambda_max + sigma^2]``: condition number
``kappa = (lambda_max + sigma^2) / sigma^2``, ``lambda_max`` the largest eigenvalue of the
empirical NTK on ``X``. Gradient descent needs ``O(kappa)`` steps, Nesterov momentum
``O(sqrt(kappa))`` (Nesterov 2004, Thm. 2.2.3). Notebook 07 derives both and measures them.

**Stopping rule.** For that quadratic, ``||grad L(theta)|| >= sigma^2 ||theta - theta*||``,
so the ratio

    r(theta) = ||grad L(theta)|| / (sigma^2 ||theta - theta_0||)

bounds the error of the trained displacement relative to the displacement,
``||theta - theta*|| / ||theta - theta_0|| <= r``: training stops once ``r <= tol``. The
rule is the same for every optimizer, so their step counts compare.

**Large training sets.** ``chunk`` splits the training inputs: the gradient is summed
over chunks (``lax.scan``), so memory grows with the chunk, not with ``N``, and the
gradient, hence the path, is the full-batch one.
"""

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rndlib import validate

Params = Any

#: The optimizers compared in notebook 07.
METHODS = ("gd", "nesterov", "restart", "heavy_ball", "adam")

#: Adam's step: Kingma & Ba (2015)'s default. Adam rescales each coordinate, so the
#: step sizes set from ``lambda_max`` do not apply to it.
ADAM_LR = 1e-3


class Converged(NamedTuple):
    """Trained parameters, the steps taken, and the stopping ratio ``r`` they ended at.

    For stacked networks ``steps``, ``ratio`` and ``converged`` have one entry per network.
    """

    params: Params
    steps: np.ndarray
    ratio: np.ndarray
    converged: np.ndarray


def condition_number(lambda_max: float, ridge: float) -> float:
    """``kappa = (lambda_max + sigma^2) / sigma^2`` of the linearised loss's Hessian."""
    lambda_max = validate.finite("lambda_max", lambda_max, above=0.0)
    ridge = validate.finite("ridge", ridge, above=0.0)
    return (lambda_max + ridge) / ridge


def optimizer(method: str, lambda_max: float, ridge: float) -> optax.GradientTransformation:
    """The optax transform of ``method`` with its step set from the Hessian's spectrum.

    With ``L = lambda_max + sigma^2``, ``mu = sigma^2`` and ``kappa = L / mu``:

    - ``"gd"``: step ``1/L``; the slowest direction shrinks by ``1 - 1/kappa`` per step.
    - ``"nesterov"``: step ``1/L``, momentum ``(sqrt(kappa) - 1) / (sqrt(kappa) + 1)``
      (Nesterov 2004, scheme 2.2.19): it shrinks by about ``1 - 1/sqrt(kappa)``.
    - ``"heavy_ball"``: Polyak's parameters, optimal for a quadratic: step
      ``4 / (sqrt(L) + sqrt(mu))^2``, momentum ``((sqrt(kappa) - 1) / (sqrt(kappa) + 1))^2``.
    - ``"adam"``: ``optax.adam(ADAM_LR)``.
    - ``"restart"``: Nesterov's scheme with gradient restart, stepped by hand in
      :func:`train_to_convergence`; it has no transform here (``ValueError``).

    Raises:
        ValueError: naming the parameter, for an unknown method or a bad spectrum.
    """
    validate.choice("method", method, METHODS)
    if method == "restart":
        raise ValueError("method 'restart' has no optax transform: train_to_convergence runs it")
    condition_number(lambda_max, ridge)
    return _transform(method, lambda_max, ridge)


def _transform(method: str, lambda_max, ridge) -> optax.GradientTransformation:
    # optimizer() without the checks: lambda_max and ridge may be traced.
    big, small = lambda_max + ridge, ridge
    root = jnp.sqrt(big / small)
    if method == "gd":
        return optax.sgd(1.0 / big)
    if method == "nesterov":
        return optax.sgd(1.0 / big, momentum=(root - 1) / (root + 1), nesterov=True)
    if method == "heavy_ball":
        lr = 4.0 / (jnp.sqrt(big) + jnp.sqrt(small)) ** 2
        return optax.sgd(lr, momentum=((root - 1) / (root + 1)) ** 2)
    return optax.adam(ADAM_LR)


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


@partial(jax.jit, static_argnames=("apply_fn", "method", "linearised"))
def _train(
    apply_fn, params0, xs, ys, mask, ridge, lambda_max, tol, method: str, max_steps, linearised
):
    if linearised:  # one chunk: u(X; theta_0) and its Jacobian's products, computed once
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

    def running(state):
        return (state[2] < max_steps) & (state[3] > tol)

    def body(state, transform):
        params, opt_state, step, _, grads = state
        updates, opt_state = transform.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        grads, ratio = gradient(params)
        return params, opt_state, step + 1, ratio, grads

    def restarted(state):
        # Nesterov's scheme written out, with O'Donoghue & Candes (2015)'s gradient restart:
        # the momentum is dropped whenever the step goes uphill.
        params, previous, step, _, _ = state
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
        return new, previous, step + 1, ratio, ahead

    grads, ratio = gradient(params0)
    if method == "restart":
        state = (params0, params0, 0, ratio, params0)
        _, _, steps, ratio, params = jax.lax.while_loop(running, restarted, state)
        return params, steps, ratio
    transform = _transform(method, lambda_max, ridge)
    state = (params0, transform.init(params0), 0, ratio, grads)
    params, _, steps, ratio, _ = jax.lax.while_loop(
        running, partial(body, transform=transform), state
    )
    return params, steps, ratio


def train_to_convergence(
    apply_fn,
    params0: Params,
    x: np.ndarray,
    y: np.ndarray,
    *,
    ridge: float,
    lambda_max: float,
    method: str = "nesterov",
    tol: float = 1e-2,
    max_steps: int = 100_000,
    chunk: int | None = None,
    members: bool = False,
    linearised: bool = False,
) -> Converged:
    """Minimise ``1/2 ||u(X) - y||^2 + ridge/2 ||theta - theta_0||^2`` until ``r <= tol``.

    Args:
        apply_fn: the network's apply function (neural-tangents' stax).
        params0: its initial parameters ``theta_0`` (stacked if ``members``).
        x: training inputs, (N, d).
        y: targets, (N, outputs), or (members, N, outputs) if ``members``.
        ridge: ``sigma^2 > 0``, the pull towards ``theta_0``.
        lambda_max: the NTK's largest eigenvalue on ``x`` (largest over the members), which
            sets the step (see :func:`optimizer`).
        method: one of :data:`METHODS`.
        tol: the stopping ratio ``r`` (module docstring).
        max_steps: steps after which training stops unconverged.
        chunk: training inputs per gradient chunk; ``None`` takes them all at once.
        members: ``params0`` and ``y`` are stacked along a leading axis (``vmap``).
        linearised: train the network's linearisation around ``params0``,
            ``u(X; theta_0) + J_0 (theta - theta_0)`` (the kernel regime: the quadratic
            above, exactly), with ``jax.linearize``: the forward pass and the activations'
            derivatives on ``X`` are computed once and kept (memory grows as ``N`` times
            the width), so each step costs matrix products only. Not with ``chunk``.
            Predict with ``neural_tangents.linearize(apply_fn, params0)``.

    Returns:
        :class:`Converged`; ``converged`` is false where ``max_steps`` ran out first.

    Raises:
        ValueError: naming the parameter, for a bad shape or setting, and naming
            ``lambda_max`` if training diverged (the final parameters are not finite):
            a ``lambda_max`` below the network's sets a step past its stability limit.
    """
    n = len(validate.array("x", x, ("n", "d")))
    validate.array("y", y, ("members", n, "k") if members else (n, "k"))
    ridge = validate.finite("ridge", ridge, above=0.0)
    tol = validate.finite("tol", tol, above=0.0)
    validate.integer("max_steps", max_steps)
    if chunk is not None:
        validate.integer("chunk", chunk)
        if linearised:
            raise ValueError("chunk must be None when linearised: the linearisation is kept whole")
    lambda_max = validate.finite("lambda_max", lambda_max, above=0.0)
    validate.choice("method", method, METHODS)
    xs, _, mask = _chunked(jnp.asarray(x), jnp.asarray(y[0] if members else y), chunk)

    def one(p, t):
        ys = _chunked(jnp.asarray(x), t, chunk)[1]
        return _train(
            apply_fn, p, xs, ys, mask, ridge, lambda_max, tol, method, max_steps, linearised
        )

    run = jax.vmap(one) if members else one
    params, steps, ratio = run(params0, jnp.asarray(y))
    if not validate.all_finite(params):
        step = (
            f"Adam's lr={ADAM_LR}"
            if method == "adam"
            else f"the lr that lambda_max={lambda_max:.4g} sets ('{method}')"
        )
        raise ValueError(
            f"{step} diverged: the step is past the stability limit 2 / lambda_max of this "
            "network's NTK; lambda_max must be the NTK's largest eigenvalue on x (see "
            "train.largest_ntk_eigenvalue)"
        )
    steps, ratio = np.atleast_1d(np.asarray(steps)), np.atleast_1d(np.asarray(ratio))
    return Converged(params, steps, ratio, ratio <= tol)
