"""Step sizes: how large a gradient step may be on the squared loss, from the NTK's spectrum.

Gradient descent on ``1/2 ||u(X) - y||^2 + ridge/2 ||theta - theta_0||^2`` is, in the
kernel regime, stable for steps below ``2 / (lambda_max + ridge)``, ``lambda_max`` the
largest eigenvalue of the NTK on ``X`` (notebook 01, section 4). Every step of the suite
is a fraction of ``1 / (lambda_max + ridge)``: of the empirical NTK's
(:func:`stable_step`) or of the infinite-width one (:func:`analytic_step`).
"""

import numpy as np

from rndlib import models, theory, validate
from rndlib.models import Params


def step_size(lambda_max: float, fraction: float = 1.0) -> float:
    """Step ``fraction / lambda_max``: gradient descent on the squared loss is stable below 2."""
    lambda_max = validate.finite("lambda_max", lambda_max, above=0.0)
    return validate.finite("lr_fraction", fraction, above=0.0, below=2.0) / lambda_max


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


def stable_step(
    apply_fn,
    params: Params,
    x,
    lr: float | None,
    ridge: float,
    lr_fraction: float,
    check: bool = True,
) -> float:
    """The step of stacked networks: ``lr_fraction / (lambda_max + ridge)`` if ``lr`` is None.

    ``lambda_max`` is the largest eigenvalue of the empirical NTK on ``x`` over the
    members. A given ``lr`` is returned, checked against ``2 / (lambda_max + ridge)``
    (by :data:`CHECK_ITERS` power iterations) unless ``check`` is false.

    Raises:
        ValueError: naming ``lr``, for a given step that is not positive and finite or is
            past the stability limit, and naming ``lr_fraction`` or ``ridge`` when bad.
    """
    if lr is None:
        lam = models.largest_ntk_eigenvalue(apply_fn, params, x, members=True)
        return step_size(lam + ridge, lr_fraction)
    lr = validate.finite("lr", lr, above=0.0)
    if check:
        lam = models.largest_ntk_eigenvalue(apply_fn, params, x, members=True, iters=CHECK_ITERS)
        if lr * (lam + ridge) >= 2.0:
            limit = 2 / (lam + ridge)
            raise ValueError(f"lr={lr:.4g} is past the stability limit 2/lambda_max = {limit:.4g}")
    return lr
