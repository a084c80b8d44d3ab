"""How networks are trained: one vocabulary of optimizers, their transforms and step counts.

An :class:`Optimizer` names the method; :mod:`rndlib.train` runs it, by a fixed number
of steps of a given size (:func:`fixed_steps_transform`) or to a tolerance with the step
set from the spectrum of the loss's Hessian, ``[ridge, lambda_max + ridge]``
(:func:`spectral_transform`).
"""

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
import optax

from rndlib import validate

#: Every optimizer. ``heavy_ball`` and ``restart`` train to a tolerance only (their step is
#: set from the spectrum); ``sgd`` (minibatch) trains by a fixed number of steps only.
OPTIMIZERS = ("gd", "nesterov", "heavy_ball", "restart", "sgd", "adam")
FULL_BATCH = ("gd", "nesterov", "heavy_ball", "restart")
FIXED_STEPS = ("gd", "nesterov", "sgd", "adam")
TO_TOLERANCE = ("gd", "nesterov", "heavy_ball", "restart", "adam")

#: Adam's step when training to a tolerance: Kingma & Ba (2015)'s default. Adam rescales
#: each coordinate, so the step sizes set from ``lambda_max`` do not apply to it.
ADAM_LR = 1e-3


@dataclass(frozen=True)
class Optimizer:
    """How networks are trained: the theory's gradient descent, or what practice uses.

    - ``"gd"``: full-batch gradient descent with a constant step: the lemma's setting.
    - ``"nesterov"``: full-batch, with Nesterov's momentum ``(1 - sqrt(q)) / (1 + sqrt(q))``,
      ``q = lr * ridge`` (it needs ``ridge > 0``): the momentum optimal for a quadratic
      whose Hessian has its eigenvalues in ``[ridge, 1 / lr]`` (Nesterov 2004, sec. 2.2,
      scheme 2.2.19). It fits the slowest direction in about ``1 / sqrt(q)`` steps where
      gradient descent needs ``1 / q``; its path differs from gradient descent's, its end
      point does not.
    - ``"heavy_ball"``: Polyak's parameters, optimal for a quadratic: step
      ``4 / (sqrt(L) + sqrt(mu))^2``, momentum ``((sqrt(rho) - 1) / (sqrt(rho) + 1))^2``,
      ``L = lambda_max + ridge``, ``mu = ridge``, ``rho = L / mu`` (the condition number).
    - ``"restart"``: Nesterov's scheme with O'Donoghue & Candes (2015)'s gradient restart:
      the momentum is dropped whenever a step goes uphill.
    - ``"sgd"``: minibatch SGD (``optax.sgd``) of ``batch_size`` inputs.
    - ``"adam"``: ``optax.adam``, minibatch if a ``batch_size`` is given.

    Minibatches are drawn without replacement each epoch, in an order fixed by ``seed``;
    the minibatch loss is scaled by ``N / batch_size`` so that its gradient is unbiased,
    and SGD's and Adam's steps decay by a cosine schedule to 1% over a fixed-steps run, so
    that they converge. Their paths differ from the lemma's: only their end point, the
    minimiser of the loss with ``ridge > 0``, has a closed form.

    Raises:
        ValueError: naming the field, for an unknown name, a batch size given to a
            full-batch optimizer or missing for ``"sgd"``, or a negative seed.
    """

    name: str = "gd"
    batch_size: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        validate.choice("optimizer", self.name, OPTIMIZERS)
        if self.name in FULL_BATCH and self.batch_size is not None:
            raise ValueError(f"batch_size must be None for full-batch '{self.name}'")
        if self.name == "sgd" or self.batch_size is not None:
            validate.integer("batch_size", self.batch_size)
        validate.integer("seed", self.seed, minimum=0)


GD = Optimizer()
NESTEROV = Optimizer("nesterov")


def supported(optimizer: Optimizer, names: tuple[str, ...], engine: str) -> Optimizer:
    """``optimizer``, checked to be an :class:`Optimizer` that one of ``names`` names.

    Raises:
        ValueError: naming ``optimizer``, saying what it does not train (``engine``).
    """
    if not isinstance(optimizer, Optimizer):
        raise ValueError(f"optimizer must be an optimizers.Optimizer, got {optimizer!r}")
    if optimizer.name not in names:
        raise ValueError(
            f"optimizer '{optimizer.name}' does not train {engine}; use one of {names}"
        )
    return optimizer


def fixed_steps_transform(
    optimizer: Optimizer, lr, ridge, steps: int
) -> optax.GradientTransformation:
    """The optax transform of ``steps`` steps of size ``lr`` (see :class:`Optimizer`).

    Built inside jitted programs, where ``lr`` and ``ridge`` are tracers: the caller
    validates them (:func:`rndlib.train.check_schedule`).
    """
    if optimizer.name == "gd":
        return optax.sgd(lr)
    if optimizer.name == "nesterov":
        root = jnp.sqrt(lr * ridge)
        return optax.sgd(lr, momentum=(1.0 - root) / (1.0 + root), nesterov=True)
    schedule = optax.cosine_decay_schedule(lr, max(steps, 1), alpha=0.01)
    return optax.sgd(schedule) if optimizer.name == "sgd" else optax.adam(schedule)


def spectral_transform(method: str, lambda_max, ridge) -> optax.GradientTransformation:
    """The optax transform of ``method`` with its step set from the spectrum ``[ridge, L]``.

    ``L = lambda_max + ridge``: step ``1 / L`` for ``"gd"`` and ``"nesterov"`` (momentum
    ``(sqrt(rho) - 1) / (sqrt(rho) + 1)``, ``rho = L / ridge``), Polyak's for
    ``"heavy_ball"`` and :data:`ADAM_LR` for ``"adam"`` (see :class:`Optimizer`; ``"restart"``
    is stepped by hand in :mod:`rndlib.train`). Built inside jitted programs, where
    ``lambda_max`` and ``ridge`` are tracers: the caller validates them.
    """
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
