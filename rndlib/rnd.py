"""Random network distillation: targets and errors, standard and Bayesian.

In the paper's notation (Zanger et al. 2026, ch. 5 of Zanger's dissertation): the
predictor ``u(x; theta)`` is trained by :func:`rndlib.train.descend` to match a fixed
target ``g(x; psi)`` at the training inputs, and its error is ``eps = g - u``. Standard
RND's target is a network of its own; Bayesian RND's is the predictor's tangent
``u(x; theta_0) + J_0(x) psi`` (He et al. 2020) or the paper's ``J_0(x) psi*``
(Prop. 5.7), ``psi ~ N(0, I)``.
"""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from rndlib import train, validate
from rndlib.models import Params
from rndlib.optimizers import GD, Optimizer


def draw_psi(params: Params, seed: int | jax.Array) -> Params:
    """``psi ~ N(0, I)``, the weights of a Bayesian-RND target, with the structure of ``params``.

    ``seed`` is an integer or a ``jax.random.PRNGKey``.

    Raises:
        ValueError: for a ``seed`` that is neither a non-negative integer nor a JAX array
            (a key, or a traced integer).
    """
    if not isinstance(seed, jax.Array):
        validate.integer("seed", seed, minimum=0)
    leaves, tree = jax.tree_util.tree_flatten(params)
    key = jax.random.PRNGKey(seed) if jnp.ndim(seed) == 0 else seed
    keys = jax.random.split(key, len(leaves))
    draws = [
        jax.random.normal(k, leaf.shape, leaf.dtype) for k, leaf in zip(keys, leaves, strict=True)
    ]
    return jax.tree_util.tree_unflatten(tree, draws)


#: Bayesian-RND targets: He et al. (2020)'s ``u(x; theta_0) + J_0(x) psi`` and the paper's
#: Prop. 5.7, ``J_0(x) psi*`` with the readout of ``psi*`` zeroed.
BAYESIAN_TARGETS = ("he", "paper")


def bayesian_rnd_target(
    apply_fn, params0: Params, psi: Params, x: jax.Array, kind: str = "he"
) -> jax.Array:
    """A Bayesian-RND target at ``x`` for the predictor ``u`` at ``params0``, by one ``jax.jvp``.

    ``kind="he"`` (He et al. 2020): ``g(x) = u(x; theta_0) + J_0(x) psi``, so that the
    initial error ``g - u(.; theta_0) = J_0 psi ~ GP(0, Theta_0)`` for ``psi ~ N(0, I)``.
    ``kind="paper"`` (Prop. 5.7 of Zanger et al. 2026): ``g(x) = J_0(x) psi*``, ``psi*``
    being ``psi`` with the readout's weights and bias set to zero; its kernel is the
    NTK without the readout's part, and with the predictor's own initial function
    (whose kernel is the readout's part) the initial error again has kernel Theta_0.
    Both tend to the analytic Theta with width.
    """
    validate.choice("kind", kind, BAYESIAN_TARGETS)
    if kind == "paper":
        psi = type(psi)([*psi[:-1], jax.tree_util.tree_map(jnp.zeros_like, psi[-1])])
    u0, j0_psi = jax.jvp(lambda p: apply_fn(p, x), (params0,), (psi,))
    return j0_psi if kind == "paper" else u0 + j0_psi


@partial(jax.jit, static_argnames=("apply_fn", "kind"))
def _stacked_targets(apply_fn, predictors, keys, x, kind: str) -> jax.Array:
    def one(args):
        predictor, key = args
        return bayesian_rnd_target(apply_fn, predictor, draw_psi(predictor, key), x, kind)

    return jax.lax.map(one, (predictors, keys))


def bayesian_rnd_targets(
    apply_fn, predictors: Params, seed: int, x: jax.Array, kind: str = "he"
) -> jax.Array:
    """:func:`bayesian_rnd_target` of stacked predictors at ``x``: (members, n, heads).

    Each predictor's ``psi`` is drawn from its own key of
    ``jax.random.split(PRNGKey(seed), members)``.

    Raises:
        ValueError: naming the argument, for a negative or non-integer ``seed``, an
            unknown ``kind`` or inputs ``x`` that are not a finite (n, d) array.
    """
    validate.integer("seed", seed, minimum=0)
    validate.choice("kind", kind, BAYESIAN_TARGETS)
    validate.array("x", x, ("n", "d"))
    members = len(jax.tree_util.tree_leaves(predictors)[0])
    keys = jax.random.split(jax.random.PRNGKey(seed), members)
    return _stacked_targets(apply_fn, predictors, keys, jnp.asarray(x), kind)


def rnd_error(
    apply_fn,
    predictor: Params,
    x_train: jax.Array,
    x_test: jax.Array,
    target_train: jax.Array,
    target_test: jax.Array,
    *,
    lr: float,
    steps: int,
    centred: bool = False,
    ridge: float = 0.0,
    optimizer: Optimizer = GD,
) -> jax.Array:
    """RND error ``g(x) - u_T(x)`` at ``x_test`` after distilling the target ``g`` into ``u``.

    In the paper's notation: the predictor ``u`` (all heads at once, parameters
    ``predictor``) is trained by gradient descent on ``x_train`` to match the fixed
    target values ``target_train = g(X)``. With ``centred=True`` the predictor is
    ``u(.; theta) - u(.; theta_0)``, which starts at zero: its error covariance is
    ``S_T[kappa_g]`` instead of ``S_T[kappa_u + kappa_g]`` (notebook 02).
    Returns the errors, shape (n_test, heads).

    Raises:
        ValueError: naming the argument, for a bad shape or schedule, or naming ``lr`` if
            training diverged (the errors are not finite, or gradient descent's loss grew).
    """
    validate.array("target_train", target_train, (len(x_train), "k"))
    lr, steps, ridge = train.check_schedule(lr, steps, ridge, optimizer, len(x_train))
    rule = (lr, ridge, steps, centred, optimizer, None)
    error, losses = _distilled(
        apply_fn, predictor, x_train, x_test, target_train, target_test, rule, with_losses=True
    )
    train.refuse_divergence(lr, error, losses=losses if optimizer.name == "gd" else None)
    return error


def _distilled(
    apply_fn, predictor, x_train, x_test, target_train, target_test, rule, with_losses=False
) -> jax.Array | tuple[jax.Array, jax.Array]:
    # rnd_error's computation; ``rule``: (lr, ridge, steps, centred, optimizer, record)
    lr, ridge, steps, centred, optimizer, record = rule
    offset_train = apply_fn(predictor, x_train) if centred else 0.0
    offset_test = apply_fn(predictor, x_test) if centred else 0.0
    target = target_train + offset_train
    x_record = None if record is None else x_test[record]
    trained = train.descend(
        apply_fn, predictor, x_train, target, lr, ridge, steps, optimizer, x_record
    )
    error = target_test - (apply_fn(trained.params, x_test) - offset_test)
    if with_losses:
        return error, trained.losses
    if record is None:
        return error
    # the error at the recorded inputs before each step, then after the last one
    path = (target_test + offset_test)[record] - trained.path
    return error, jnp.concatenate([path, error[record][None]])


@partial(jax.jit, static_argnames=("apply_fn", "steps", "centred", "optimizer"))
def _stacked_errors(
    apply_fn,
    predictors,
    x_train,
    x_test,
    targets_train,
    targets_test,
    lr,
    ridge,
    steps: int,
    centred: bool,
    optimizer: Optimizer,
    record: jax.Array | None = None,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    # _distilled of stacked predictors, each with its own targets, one at a time (lax.map).
    # Jitted at module level with the step as an argument: RND and Bayesian RND of one
    # architecture, schedule and shape share one compiled program. With indices ``record``
    # into x_test, also the errors there after every step (Prop. 5.5's heads over time).
    def one(args):
        predictor, target_train, target_test = args
        rule = (lr, ridge, steps, centred, optimizer, record)
        return _distilled(apply_fn, predictor, x_train, x_test, target_train, target_test, rule)

    return jax.lax.map(one, (predictors, targets_train, targets_test))


def rnd_errors(
    apply_fn,
    predictors: Params,
    x_train: jax.Array,
    x_both: jax.Array,
    targets_train: jax.Array,
    targets_both: jax.Array,
    *,
    centred: bool = False,
    record: list[int] | None = None,
    lr: float,
    steps: int,
    ridge: float = 0.0,
    optimizer: Optimizer = GD,
) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`rnd_error` of stacked predictors, each with its own targets: (members, n, heads).

    The errors are taken at every input of ``x_both``, the training inputs first, so that
    the residual left on them is measured too. ``record``: indices of the test inputs
    (those after the training ones) whose errors are also kept after every step: the
    path, (members, steps + 1, n_record, heads) (Prop. 5.5's heads over time), or None.
    One jitted program with the step as an argument: RND and Bayesian RND of one
    architecture, schedule and shape share it.

    Raises:
        ValueError: naming the argument, for a bad shape, schedule or index, or naming
            ``lr`` if training diverged.
    """
    n_train = len(validate.array("x_train", x_train, ("n", "d")))
    n_both = len(validate.array("x_both", x_both, ("n", x_train.shape[1])))
    validate.array("targets_train", targets_train, ("members", n_train, "k"))
    validate.array("targets_both", targets_both, (len(targets_train), n_both, "k"))
    lr, steps, ridge = train.check_schedule(lr, steps, ridge, optimizer, n_train)
    kept = None
    if record is not None:
        kept = n_train + validate.indices("record", record, n_both - n_train)
    schedule = (lr, ridge, steps, validate.flag("centred", centred), optimizer)
    out = _stacked_errors(
        apply_fn, predictors, x_train, x_both, targets_train, targets_both, *schedule, kept
    )
    errors, path = (out, None) if record is None else out
    train.refuse_divergence(lr, errors)
    return np.asarray(errors), None if path is None else np.asarray(path)
