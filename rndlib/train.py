"""Training many networks at once, RND, and the estimates that Claims 1 and 2 are checked on.

Training minimises the notebooks' loss ``1/2 sum ||f(X) - Y||^2`` (plus
``ridge/2 ||theta - theta_0||^2``, the pull towards the initialisation of the
"Observation noise" section), jitted, with ``lax.scan`` over steps and ``vmap`` over
ensemble members. The default is the theory's full-batch gradient descent; an
:class:`Optimizer` swaps in minibatch SGD or Adam (optax), as practice trains.
Multi-headed networks are one network with ``heads`` outputs: their losses add up.
:func:`ensemble_variance` and :func:`rnd_variance` run Claim 1's experiment on a
data set: trained estimates, the same draws pushed through the lemma, and the
analytic variance; :func:`bayesian_rnd_errors` runs Claim 2's. RND is written in the
paper's notation (Zanger et al. 2026, ch. 5 of Zanger's dissertation): the predictor
``u(x; theta)`` is trained to match the fixed target ``g(x; psi)``, and its error is
``eps = g - u``.
"""

from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import neural_tangents as nt
import numpy as np
import optax
import scipy.linalg

from rndlib import models, theory, validate
from rndlib.data import Dataset

Params = Any


OPTIMIZERS = ("gd", "nesterov", "sgd", "adam")
FULL_BATCH = ("gd", "nesterov")


@dataclass(frozen=True)
class Optimizer:
    """How networks are trained: the theory's gradient descent, or what practice uses.

    ``name`` is ``"gd"`` (full-batch gradient descent with a constant step: the
    lemma's setting), ``"nesterov"`` (full-batch gradient descent with Nesterov
    momentum, ``optax.sgd(lr, momentum, nesterov=True)``; it needs ``ridge > 0``),
    ``"sgd"`` (minibatch SGD, ``optax.sgd``) or ``"adam"`` (minibatch ``optax.adam``).
    Nesterov's momentum is the one that is optimal for a quadratic loss whose Hessian
    has its eigenvalues in ``[ridge, 1 / lr]``, ``(1 - sqrt(q)) / (1 + sqrt(q))`` with
    ``q = lr * ridge`` (Nesterov 2004, sec. 2.2): it fits the slowest direction in
    about ``1 / sqrt(q)`` steps where gradient descent needs ``1 / q``
    (:func:`steps_to_convergence`); its path differs from gradient descent's, its end
    point does not. The minibatch optimizers draw ``batch_size`` inputs
    without replacement each epoch, in an order fixed by ``seed``, scale the minibatch
    loss by ``N / batch_size`` so that its gradient is unbiased, and decay the step by
    a cosine schedule to 1% over the run, so that they converge. Their paths differ
    from the lemma's: only their end point, the minimiser of the loss with
    ``ridge > 0``, has a closed form.

    Raises:
        ValueError: naming the field, for an unknown name, a batch size given to
            ``"gd"`` or ``"nesterov"`` or missing for the others, or a negative seed.
    """

    name: str = "gd"
    batch_size: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        validate.choice("optimizer", self.name, OPTIMIZERS)
        if self.name in FULL_BATCH and self.batch_size is not None:
            raise ValueError(f"batch_size must be None for full-batch '{self.name}'")
        if self.name not in FULL_BATCH:
            validate.integer("batch_size", self.batch_size)
        validate.integer("seed", self.seed, minimum=0)


GD = Optimizer()


class TrainResult(NamedTuple):
    """Final parameters and the loss before each step, shape (steps,) or (members, steps).

    ``path``: the outputs at recorded inputs before each step, (steps, n_record, outputs),
    when inputs to record were given (else None).
    """

    params: Params
    losses: jax.Array
    path: jax.Array | None = None


def init_params(init_fn, seed: int, members: int, input_dim: int) -> Params:
    """Parameters of ``members`` independent networks, stacked along a leading axis.

    Raises:
        ValueError: naming the argument, for a negative or non-integer ``seed``, or
            ``members`` or ``input_dim`` not a positive integer.
    """
    validate.integer("seed", seed, minimum=0)
    validate.integer("members", members)
    validate.integer("input_dim", input_dim)
    return _init_stacked(init_fn, jax.random.PRNGKey(seed), members, input_dim)


def _init_stacked(init_fn, key: jax.Array, members: int, input_dim: int) -> Params:
    # Not jitted: each new architecture would compile anew (1.5 to 3 s), while the
    # random primitives run eagerly are compiled once per shape and the draws are the same.
    keys = jax.random.split(key, members)
    return jax.vmap(lambda k: init_fn(k, (-1, input_dim))[1])(keys)


@partial(jax.jit, static_argnames=("apply_fn", "batch_size"))
def apply_members(apply_fn, params: Params, x: jax.Array, batch_size: int = 8) -> jax.Array:
    """Outputs of stacked networks on shared inputs, shape (members, n, outputs).

    Mapped over the members ``batch_size`` at a time, so that the hidden
    activations of all members on all inputs are never held at once.
    """
    return jax.lax.map(lambda p: apply_fn(p, x), params, batch_size=batch_size)


def _power_iteration(matvec, shape: tuple[int, ...], iters: int, dtype) -> jax.Array:
    def body(_, v):
        w = matvec(v)
        return w / jnp.linalg.norm(w)

    v = jax.lax.fori_loop(0, iters, body, jnp.full(shape, 1.0 / np.sqrt(np.prod(shape)), dtype))
    return jnp.vdot(v, matvec(v))


def largest_ntk_eigenvalue(
    apply_fn, params: Params, x: jax.Array, *, members: bool = False, iters: int = 100
) -> float:
    """Largest eigenvalue of the empirical NTK on ``x``, all outputs (heads) together.

    Power iteration on neural-tangents' NTK-vector product (``empirical_ntk_vp_fn``),
    so the (N * heads)^2 kernel is never formed. With ``members=True``, ``params``
    are stacked networks and the largest over the members is returned: the step
    size must be stable for every one of them.
    """
    validate.integer("iters", iters)
    return float(_largest_eigenvalue(apply_fn, params, jnp.asarray(x), members, iters))


@partial(jax.jit, static_argnames=("apply_fn", "members", "iters"))
def _largest_eigenvalue(apply_fn, params: Params, x: jax.Array, members: bool, iters: int):
    def one(p):
        out = jax.eval_shape(apply_fn, p, x)
        vp = nt.empirical_ntk_vp_fn(apply_fn, x, x, p)
        return _power_iteration(vp, out.shape, iters, out.dtype)

    return jnp.max(jax.lax.map(one, params)) if members else one(params)


def step_size(lambda_max: float, fraction: float = 1.0) -> float:
    """Step ``fraction / lambda_max``: gradient descent on the squared loss is stable below 2."""
    lambda_max = validate.finite("lambda_max", lambda_max, above=0.0)
    return validate.finite("lr_fraction", fraction, above=0.0, below=2.0) / lambda_max


def _optax_transform(optimizer: Optimizer, lr, ridge, steps: int) -> optax.GradientTransformation:
    if optimizer.name == "gd":
        return optax.sgd(lr)
    if optimizer.name == "nesterov":
        root = jnp.sqrt(lr * ridge)
        return optax.sgd(lr, momentum=(1.0 - root) / (1.0 + root), nesterov=True)
    schedule = optax.cosine_decay_schedule(lr, max(steps, 1), alpha=0.01)
    return optax.sgd(schedule) if optimizer.name == "sgd" else optax.adam(schedule)


@partial(jax.jit, static_argnames=("apply_fn", "steps", "optimizer"))
def _descend(
    apply_fn, params0: Params, x, y, lr, ridge, steps: int, optimizer: Optimizer, x_record=None
) -> TrainResult:
    transform = _optax_transform(optimizer, lr, ridge, steps)
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


def relative_ntk_change(apply_fn, params0: Params, params: Params, x: jax.Array) -> float:
    """``||Theta_T - Theta_0||_F / ||Theta_0||_F``: how far training moved the empirical NTK.

    The empirical NTKs (neural-tangents' ``empirical_ntk_fn``, outputs traced) of
    the networks ``params0`` before and ``params`` after training, on ``x``. The
    lemma assumes it is zero; in the kernel regime it falls as width^-1/2 (Lee et
    al. 2019), and it is of order one when a network learns features.
    """
    ntk_fn = nt.empirical_ntk_fn(apply_fn)
    before = np.asarray(ntk_fn(x, None, params0), np.float64)
    after = np.asarray(ntk_fn(x, None, params), np.float64)
    return float(np.linalg.norm(after - before) / np.linalg.norm(before))


def analytic_step(
    spec: models.ArchSpec, x_train: np.ndarray, fraction: float = 1.0, ridge: float = 0.0
) -> float:
    """``fraction / (lambda_max + ridge)``, ``lambda_max`` of the infinite-width NTK on ``x_train``.

    The same at every width of an architecture (NTK parameterization), so that a width
    sweep that trains with it changes the width and nothing else, the training time
    ``eta T`` included.
    """
    kernel_fn = models.network(spec)[2]
    ntk = theory.kernel_blocks(kernel_fn, x_train, x_train, "ntk").train_train
    ridge = validate.finite("ridge", ridge, at_least=0.0)
    return step_size(float(np.linalg.eigvalsh(ntk)[-1]) + ridge, fraction)


#: Power iterations when the largest NTK eigenvalue only checks a given step. Its estimate,
#: a Rayleigh quotient, never exceeds lambda_max; on the notebooks' networks 30 iterations
#: came within 2.5% of it (the 100 that set a step: within 0.2%, for 16 heads at depth 3).
CHECK_ITERS = 30


def _members_step(
    apply_fn, params: Params, x, lr: float | None, ridge: float, lr_fraction: float, check: bool
) -> float:
    """The step of stacked networks: ``lr_fraction / (lambda_max + ridge)`` if ``lr`` is None.

    A given ``lr`` is returned, checked against ``2 / (lambda_max + ridge)`` unless
    ``check`` is false.
    """
    if lr is None:
        lam = largest_ntk_eigenvalue(apply_fn, params, x, members=True)
        return step_size(lam + ridge, lr_fraction)
    lr = validate.finite("lr", lr, above=0.0)
    if check:
        lam = largest_ntk_eigenvalue(apply_fn, params, x, members=True, iters=CHECK_ITERS)
        if lr * (lam + ridge) >= 2.0:
            limit = 2 / (lam + ridge)
            raise ValueError(f"lr={lr:.4g} is past the stability limit 2/lambda_max = {limit:.4g}")
    return lr


def _check_schedule(
    lr: float, steps: int, ridge: float, optimizer: Optimizer, n_train: int
) -> tuple[float, int, float]:
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


def _diverged(lr: float) -> str:
    return (
        f"lr={lr:.4g} diverged: the step is past the stability limit 2 / lambda_max of this "
        "network's NTK (see train.step_size)"
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
    allow_divergence: bool = False,
) -> TrainResult:
    """Train one network by ``steps`` gradient steps of size ``lr`` (full-batch by default).

    Minimises ``1/2 sum ||f(X) - y||^2 + ridge/2 ||theta - theta_0||^2``; with the
    default full-batch gradient descent, in the kernel regime, the result is
    the lemma of notebook 01, ``f_0 + B_T (y - f_0(X))``. ``optimizer`` swaps in minibatch
    SGD or Adam (see :class:`Optimizer`); ``lr`` is then their initial step.

    A run that diverges (a step past the stability limit) is refused, unless
    ``allow_divergence``: then its result, losses not finite, is returned, so that a run
    past the limit can be studied (notebook 01, section 4).

    Raises:
        ValueError: naming the argument, for a bad shape or schedule, or naming ``lr`` if
            training diverged (the final parameters or losses are not finite) and
            ``allow_divergence`` is False.
    """
    validate.array("y", y, (len(validate.array("x", x, ("n", "d"))), "k"))
    lr, steps, ridge = _check_schedule(lr, steps, ridge, optimizer, len(x))
    allow_divergence = validate.flag("allow_divergence", allow_divergence)
    result = _descend(apply_fn, params, jnp.asarray(x), jnp.asarray(y), lr, ridge, steps, optimizer)
    if not (allow_divergence or _finite(result)):
        raise ValueError(_diverged(lr))
    return result


def _finite(result: TrainResult) -> bool:
    return validate.all_finite((result.params, result.losses))


def gradient_descent_members(
    apply_fn,
    params: Params,
    x: jax.Array,
    y: jax.Array,
    *,
    lr: float,
    steps: int,
    ridge: float = 0.0,
    optimizer: Optimizer = GD,
) -> TrainResult:
    """:func:`gradient_descent` for stacked networks at once (``vmap`` over members).

    ``y`` is either shared, shape (n, outputs), or one target per member,
    shape (members, n, outputs).

    Raises:
        ValueError: naming the argument, for a bad shape or schedule, or naming ``lr`` if
            training diverged (the final parameters or losses are not finite).
    """
    n = len(validate.array("x", x, ("n", "d")))
    validate.array("y", y, ("members", n, "k") if np.ndim(y) == 3 else (n, "k"))
    lr, steps, ridge = _check_schedule(lr, steps, ridge, optimizer, len(x))
    y = jnp.asarray(y)
    y_axis = 0 if y.ndim == 3 else None
    descend = jax.vmap(
        lambda p, t: _descend(apply_fn, p, jnp.asarray(x), t, lr, ridge, steps, optimizer),
        in_axes=(0, y_axis),
    )
    result = descend(params, y)
    if not _finite(result):
        raise ValueError(_diverged(lr))
    return result


def steps_to_convergence(lr: float, ridge: float, optimizer: Optimizer = GD) -> int:
    """Steps that fit every direction of ``Theta_XX + ridge I`` to within ``e^-5``.

    Gradient descent shrinks the slowest direction (eigenvalue ``ridge``) by
    ``1 - lr * ridge`` per step: ``ceil(5 / (lr * ridge))`` steps. Nesterov momentum
    shrinks it by about ``1 - sqrt(lr * ridge)`` per step, and its error oscillates on
    the way: ``ceil(10 / sqrt(lr * ridge))`` steps, twice the rate's own count.
    """
    ridge = validate.finite("ridge", ridge, at_least=0.0)
    if ridge == 0.0:
        raise ValueError("training to convergence needs ridge > 0: Theta_XX is ill-conditioned")
    q = validate.finite("lr", lr, above=0.0) * ridge
    if optimizer.name == "nesterov":
        return int(np.ceil(10.0 / np.sqrt(q)))
    if optimizer.name != "gd":
        raise ValueError(f"optimizer '{optimizer.name}' has no convergence rule; give steps")
    return int(np.ceil(5.0 / q))


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
    convergence (:func:`steps_to_convergence`). ``optimizer`` is gradient descent or,
    to converge in fewer steps when ``ridge > 0``, Nesterov momentum.

    Raises:
        ValueError: naming the argument, for a negative or non-integer ``seed``, or
            ``lr`` if training diverged.
    """
    validate.integer("seed", seed, minimum=0)
    x_train, y_train = jnp.asarray(x_train), jnp.asarray(y_train)
    init_fn, apply_fn, _ = models.network(spec.replace(heads=y_train.shape[1]))
    params = init_params(init_fn, seed, members, x_train.shape[1])
    lr = _members_step(apply_fn, params, x_train, None, ridge, lr_fraction, check=True)
    steps = steps_to_convergence(lr, ridge, optimizer) if steps is None else steps
    trained = gradient_descent_members(
        apply_fn, params, x_train, y_train, lr=lr, steps=steps, ridge=ridge, optimizer=optimizer
    ).params
    return EnsembleOutputs(
        np.asarray(apply_members(apply_fn, trained, jnp.asarray(x_test))), lr, steps
    )


def tangent_draw(params: Params, seed: int | jax.Array) -> Params:
    """``psi ~ N(0, I)`` with the structure of ``params`` (notebook 03, the Bayesian-RND target).

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
    ``S_T[K_g]`` instead of ``S_T[K_u + K_g]`` (notebook 02).
    Returns the errors, shape (n_test, heads).

    Raises:
        ValueError: naming the argument, for a bad shape or schedule, or naming ``lr`` if
            training diverged (the errors are not finite).
    """
    validate.array("target_train", target_train, (len(x_train), "k"))
    lr, steps, ridge = _check_schedule(lr, steps, ridge, optimizer, len(x_train))
    error = _rnd_error(
        apply_fn,
        predictor,
        x_train,
        x_test,
        target_train,
        target_test,
        lr,
        ridge,
        steps,
        centred,
        optimizer,
    )
    if not validate.all_finite(error):
        raise ValueError(_diverged(lr))
    return error


def _rnd_error(
    apply_fn,
    predictor,
    x_train,
    x_test,
    target_train,
    target_test,
    lr,
    ridge,
    steps: int,
    centred: bool,
    optimizer: Optimizer,
    record: jax.Array | None = None,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    offset_train = apply_fn(predictor, x_train) if centred else 0.0
    offset_test = apply_fn(predictor, x_test) if centred else 0.0
    target = target_train + offset_train
    x_record = None if record is None else x_test[record]
    trained = _descend(apply_fn, predictor, x_train, target, lr, ridge, steps, optimizer, x_record)
    error = target_test - (apply_fn(trained.params, x_test) - offset_test)
    if record is None:
        return error
    # the error at the recorded inputs before each step, then after the last one
    path = (target_test + offset_test)[record] - trained.path
    return error, jnp.concatenate([path, error[record][None]])


@partial(jax.jit, static_argnames=("apply_fn", "steps", "centred", "optimizer"))
def _rnd_errors(
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
    # rnd_error of stacked predictors, each with its own targets, one at a time (lax.map).
    # Jitted at module level with the step as an argument: RND and Bayesian RND of one
    # architecture, schedule and shape share one compiled program. With indices ``record``
    # into x_test, also the errors there after every step (Prop. 5.5's heads over time).
    def one(args):
        predictor, target_train, target_test = args
        return _rnd_error(
            apply_fn,
            predictor,
            x_train,
            x_test,
            target_train,
            target_test,
            lr,
            ridge,
            steps,
            centred,
            optimizer,
            record,
        )

    return jax.lax.map(one, (predictors, targets_train, targets_test))


def _errors_and_path(
    apply_fn, predictors, x_train, x_both, g_train, g_both, schedule, centred, optimizer, record
) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`_rnd_errors` at every input of ``x_both`` (training inputs first), and with
    ``record`` (indices of the inputs after the training ones) the errors there after
    every step; ``schedule`` is ``(lr, ridge, steps)``."""
    lr, ridge, steps = schedule
    n_train = len(x_train)
    kept = None
    if record is not None:
        kept = n_train + validate.indices("record", record, len(x_both) - n_train)
    out = _rnd_errors(
        apply_fn,
        predictors,
        x_train,
        x_both,
        g_train,
        g_both,
        lr,
        ridge,
        steps,
        centred,
        optimizer,
        kept,
    )
    if record is None:
        return np.asarray(out), None
    return np.asarray(out[0]), np.asarray(out[1])


@partial(jax.jit, static_argnames=("apply_fn", "kind"))
def _bayesian_rnd_targets(apply_fn, predictors, keys, x, kind: str) -> jax.Array:
    # bayesian_rnd_target of stacked predictors at x, psi drawn from one key each.
    def one(args):
        predictor, key = args
        return bayesian_rnd_target(apply_fn, predictor, tangent_draw(predictor, key), x, kind)

    return jax.lax.map(one, (predictors, keys))


class VarianceEstimate(NamedTuple):
    """A variance estimated from trained networks, beside its analytic value (Claim 1).

    ``trained`` (seeds, n_test): one estimate per seed from ``dof`` Gaussian degrees
    of freedom at infinite width. ``lemma`` (seeds, n_test): the same statistic of
    the same initial draws pushed through the lemma instead of trained, so that
    ``trained / lemma - 1`` is the finite-width gap with the Monte-Carlo noise
    cancelled. ``analytic`` (n_test,): ``S_T[K](x, x)`` at the step size ``lr`` used.
    ``residual`` (seeds,): the fraction of the squared training residual left after
    training, ``||r_T(X)||^2 / ||r_0(X)||^2`` (ensemble members or RND heads pooled).
    ``draw_gap`` (seeds,): the finite-width gap draw by draw, ``||e - e_lemma|| / ||e_lemma||``
    over members or heads and test inputs, ``e`` the networks' outputs (RND: errors).
    ``path`` (seeds, steps + 1, n_record, heads): RND's errors (not divided by the
    constant) at the recorded test inputs after 0, 1, ..., ``steps`` steps, if asked for.
    ``errors`` (seeds, n_test, dof): draws whose mean square is ``trained`` times the
    constant: RND's errors themselves after training, and for ensembles the Helmert
    contrasts of each ensemble's members (``dof = members - 1`` orthonormal contrasts of
    i.i.d. members are i.i.d. N(0, S_T[K]) draws, whatever the mean).
    """

    analytic: np.ndarray
    trained: np.ndarray
    lemma: np.ndarray
    dof: int
    lr: float
    residual: np.ndarray
    draw_gap: np.ndarray
    path: np.ndarray | None = None
    errors: np.ndarray | None = None


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
) -> VarianceEstimate:
    """Predictive variance of ``seeds`` deep ensembles of ``members`` networks each.

    Every network (architecture ``spec``, one output) is trained on the data for
    ``steps`` steps of ``lr_fraction / lambda_max``, ``lambda_max`` the largest over
    all networks; the sample variance over each ensemble's members estimates
    ``S_T[K](x, x)`` (the deep ensemble of Lee et al. 2019) with ``members - 1``
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
    params = init_params(init_fn, seed, seeds * members, x_train.shape[1])
    lr = _members_step(apply_fn, params, x_train, lr, 0.0, lr_fraction, check=True)
    analytic, op = _analytic_variance(kernel_fn, dataset, lr, steps, 0.0)
    trained = gradient_descent_members(apply_fn, params, x_train, y_train, lr=lr, steps=steps)
    f0_train = np.asarray(apply_members(apply_fn, params, x_train))
    f0_test = np.asarray(apply_members(apply_fn, params, dataset.x_test))
    f_lemma = theory.linearised_prediction(op, f0_test, f0_train, dataset.y_train)
    f_trained = np.asarray(apply_members(apply_fn, trained.params, dataset.x_test))
    fT_train = np.asarray(apply_members(apply_fn, trained.params, x_train))

    def variance(f: np.ndarray) -> np.ndarray:
        return f[..., 0].reshape(seeds, members, -1).var(axis=1, ddof=1)

    def by_seed(r: np.ndarray) -> np.ndarray:
        return r.reshape(seeds, members, -1)

    residual = _residual_left(
        by_seed(fT_train - dataset.y_train), by_seed(f0_train - dataset.y_train)
    )
    draw_gap = np.sqrt(_residual_left(by_seed(f_trained - f_lemma), by_seed(f_lemma)))
    contrasts = np.einsum("km,smn->snk", scipy.linalg.helmert(members), by_seed(f_trained))
    return VarianceEstimate(
        analytic,
        variance(f_trained),
        variance(f_lemma),
        members - 1,
        lr,
        residual,
        draw_gap,
        errors=contrasts,
    )


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
) -> VarianceEstimate:
    """Mean over heads of RND's squared error, for ``seeds`` RNDs with ``heads`` heads.

    The predictor u (architecture ``spec`` with ``heads`` outputs; centred at its
    initialisation if ``centred``) is trained on the target g's values at the training
    inputs for ``steps`` steps of ``lr_fraction / lambda_max``, ``lambda_max`` that of
    all heads together. With a target of the predictor's architecture (the default),
    standard RND's error is divided by its constant 2 (Cor. 5.4), so that both estimate
    ``S_T[K](x, x)`` (notebook 02), with ``heads`` degrees of freedom. A
    ``target_spec`` of its own gives g that architecture (Prop. 5.3's general case):
    the estimate is then ``E[eps^2] = S_T[K_u + K_g](x, x)`` itself (``S_T[K_g]`` if
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
    x_train, x_test = jnp.asarray(dataset.x_train), jnp.asarray(dataset.x_test)
    init_fn, apply_fn, kernel_fn = models.network(spec.replace(heads=heads))
    predictors = init_params(init_fn, seed, seeds, x_train.shape[1])
    target_net = models.network((target_spec or spec).replace(heads=heads))
    targets = init_params(target_net[0], seed + 1, seeds, x_train.shape[1])
    reference_steps = _reference_steps(optimizer, steps, ridge)
    lr = _members_step(
        apply_fn, predictors, x_train, lr, ridge, lr_fraction, check=optimizer.name != "adam"
    )
    if target_spec is None:
        analytic, op = _analytic_variance(kernel_fn, dataset, lr, reference_steps, ridge)
        constant = 1.0 if centred else 2.0
    else:
        kernels = [target_net[2]] + ([] if centred else [kernel_fn])
        analytic, op = _analytic_variance(kernel_fn, dataset, lr, reference_steps, ridge, kernels)
        constant = 1.0
    x_both = jnp.concatenate([x_train, x_test])
    g_train, g_both = (apply_members(target_net[1], targets, x) for x in (x_train, x_both))
    lr, steps, ridge = _check_schedule(lr, steps, ridge, optimizer, len(x_train))
    n_train = len(x_train)
    eps_both, path = _errors_and_path(
        apply_fn,
        predictors,
        x_train,
        x_both,
        g_train,
        g_both,
        (lr, ridge, steps),
        centred,
        optimizer,
        record,
    )
    h_both = np.asarray(g_both)
    if not centred:
        h_both = h_both - np.asarray(apply_members(apply_fn, predictors, x_both))
    eps, h_train, h_test = eps_both[:, n_train:], h_both[:, :n_train], h_both[:, n_train:]
    eps_lemma = h_test - op @ h_train
    return VarianceEstimate(
        analytic,
        np.mean(eps**2, axis=-1) / constant,
        np.mean(eps_lemma**2, axis=-1) / constant,
        heads,
        lr,
        _residual_left(eps_both[:, :n_train], h_train),
        np.sqrt(_residual_left(eps - eps_lemma, eps_lemma)),
        path,
        eps,
    )


class ErrorDraws(NamedTuple):
    """Bayesian-RND errors on the test inputs, beside the covariance they should have (Claim 2).

    ``trained`` (seeds, heads, n_test): the errors ``g(x) - u_T(x)``. ``lemma``: the same
    draws of ``h = J_0 psi`` (plus noise) pushed through the lemma instead of trained.
    ``analytic`` (n_test, n_test): ``S_T[Theta + noise at X]``, which at convergence is the
    (noisy) NTK-GP posterior covariance. ``lr`` and ``steps``: the schedule used.
    ``residual`` (seeds,): the fraction of the squared training residual left,
    ``||g(X) - u_T(X)||^2 / ||g(X) - u_0(X)||^2`` (heads pooled). ``draw_gap`` (seeds,):
    ``||trained - lemma|| / ||lemma||`` over heads and test inputs. ``path`` (seeds,
    steps + 1, n_record, heads): the errors at the recorded test inputs after 0, 1, ...,
    ``steps`` steps, if asked for.
    """

    trained: np.ndarray
    lemma: np.ndarray
    analytic: np.ndarray
    lr: float
    steps: int
    residual: np.ndarray
    draw_gap: np.ndarray
    path: np.ndarray | None = None


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
) -> ErrorDraws:
    """Train ``seeds`` Bayesian RNDs with ``heads`` heads; return their errors (notebook 03).

    Each predictor ``u`` (architecture ``spec`` with ``heads`` outputs) gets a target
    from :func:`bayesian_rnd_target` (``target``: ``"he"``, ``u(.; theta_0) + J_0 psi``,
    or the paper's ``"paper"``, ``J_0 psi*``) with ``psi ~ N(0, I)`` drawn once, plus
    ``sqrt(noise) * zeta`` at the training inputs, and is trained on it for ``steps``
    steps with the pull ``noise/2 ||theta - theta_0||^2``; the step is
    ``lr_fraction / (lambda_max + noise)``, ``lambda_max`` that of all heads together.
    ``steps=None`` trains to convergence (:func:`steps_to_convergence`: ``5 / (lr * noise)``
    steps of gradient descent fit every direction of ``Theta_XX + noise I`` to within
    ``e^-5``; it needs ``noise > 0``). A given ``lr`` replaces the rule; ``optimizer``
    trains by Nesterov momentum, minibatch SGD or Adam instead (``lr`` is then their
    initial step, and the closed form is the converged posterior, which needs
    ``noise > 0``; SGD and Adam need a given number of ``steps``). ``record``: indices
    of test inputs whose errors are kept after every step (``path``; Prop. 5.5).

    Raises:
        ValueError: naming the argument, for a bad ``noise``, ``target`` or schedule, a
            given ``lr`` at or past the stability limit (Adam aside), or a negative or
            non-integer ``seed``.
    """
    validate.integer("seed", seed, minimum=0)
    validate.finite("noise", noise, at_least=0.0)
    validate.choice("target", target, BAYESIAN_TARGETS)
    if steps is None and noise == 0.0:
        raise ValueError("steps=None (to convergence) needs noise > 0: Theta_XX is ill-conditioned")
    x_train, x_test = jnp.asarray(dataset.x_train), jnp.asarray(dataset.x_test)
    init_fn, apply_fn, kernel_fn = models.network(spec.replace(heads=heads))
    predictors = init_params(init_fn, seed, seeds, x_train.shape[1])
    if steps is None and optimizer.name not in FULL_BATCH:
        raise ValueError(f"optimizer '{optimizer.name}' needs a given number of steps")
    lr = _members_step(
        apply_fn, predictors, x_train, lr, noise, lr_fraction, check=optimizer.name != "adam"
    )
    if steps is None:
        steps = steps_to_convergence(lr, noise, optimizer)
    reference_steps = _reference_steps(optimizer, steps, noise)
    ntk = theory.kernel_blocks(kernel_fn, dataset.x_train, dataset.x_test, "ntk")
    op = theory.training_operator(ntk, lr=lr, steps=reference_steps, ridge=noise).matrix
    zeta = np.random.default_rng(seed).standard_normal((seeds, len(dataset.x_train), heads))
    noise_train = jnp.asarray(np.sqrt(noise) * zeta)

    n_train = len(x_train)
    x_both = jnp.concatenate([x_train, x_test])
    keys = jax.random.split(jax.random.PRNGKey(seed + 1), seeds)
    g_both = _bayesian_rnd_targets(apply_fn, predictors, keys, x_both, target)
    g_both = g_both.at[:, :n_train].add(noise_train)  # the noise is part of the targets at X
    lr, steps, noise = _check_schedule(lr, steps, noise, optimizer, n_train)
    eps, path = _errors_and_path(
        apply_fn,
        predictors,
        x_train,
        x_both,
        g_both[:, :n_train],
        g_both,
        (lr, noise, steps),
        False,
        optimizer,
        record,
    )
    h = np.asarray(g_both) - np.asarray(apply_members(apply_fn, predictors, x_both))
    h_train = h[:, :n_train]
    eps_lemma = h[:, n_train:] - op @ h_train
    return ErrorDraws(
        eps[:, n_train:].transpose(0, 2, 1),
        eps_lemma.transpose(0, 2, 1),
        theory.sandwich(ntk.with_noise(noise), op),
        lr,
        steps,
        _residual_left(eps[:, :n_train], h_train),
        np.sqrt(_residual_left(eps[:, n_train:] - eps_lemma, eps_lemma)),
        path,
    )
