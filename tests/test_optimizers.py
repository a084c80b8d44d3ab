"""The optimizers: bad fields are named, momentum is set from rho, Nesterov converges faster."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rndlib import metrics, models, optimizers, schedule, train


def test_optimizer_names_its_bad_field():
    with pytest.raises(ValueError, match="optimizer"):
        optimizers.Optimizer("lbfgs")
    with pytest.raises(ValueError, match="batch_size"):
        optimizers.Optimizer("gd", batch_size=5)
    with pytest.raises(ValueError, match="batch_size"):
        optimizers.Optimizer("sgd")
    with pytest.raises(ValueError, match="batch_size"):
        optimizers.Optimizer("heavy_ball", batch_size=5)
    assert optimizers.Optimizer("adam").batch_size is None  # full-batch Adam
    with pytest.raises(ValueError, match="batch_size"):
        optimizers.Optimizer("nesterov", batch_size=5)
    init_fn, apply_fn, _ = models.network(models.ArchSpec(width=16))
    _, params = init_fn(jax.random.PRNGKey(0), (-1, 1))
    x, y = np.zeros((4, 1)), np.zeros((4, 1))
    with pytest.raises(ValueError, match="batch_size"):
        train.gradient_descent(
            apply_fn, params, x, y, lr=0.1, steps=1, optimizer=optimizers.Optimizer("sgd", 5)
        )
    with pytest.raises(ValueError, match=r"nesterov.*ridge > 0"):
        train.gradient_descent(
            apply_fn, params, x, y, lr=0.1, steps=1, optimizer=optimizers.Optimizer("nesterov")
        )
    for name in ("restart", "heavy_ball"):  # their step is set from the spectrum
        with pytest.raises(ValueError, match=f"optimizer '{name}' does not train by a fixed"):
            train.gradient_descent(
                apply_fn, params, x, y, lr=0.1, steps=1, optimizer=optimizers.Optimizer(name)
            )
    with pytest.raises(ValueError, match=r"optimizer must be an optimizers\.Optimizer"):
        train.gradient_descent(apply_fn, params, x, y, lr=0.1, steps=1, optimizer="gd")


def test_nesterov_reaches_gradient_descents_end_point_in_far_fewer_steps(toy):
    """Same minimiser (ridge > 0), in 10 / sqrt(q) steps against 5 / q, q = lr * ridge."""
    init_fn, apply_fn, _ = models.network(models.ArchSpec(width=4096))
    _, params = init_fn(jax.random.PRNGKey(1), (-1, 1))
    lr = schedule.step_size(models.largest_ntk_eigenvalue(apply_fn, params, toy.x_train) + 0.3)
    nesterov = optimizers.Optimizer("nesterov")
    steps = optimizers.steps_to_convergence(lr, 0.3, nesterov)
    assert steps == int(np.ceil(10 / np.sqrt(lr * 0.3)))
    gd_steps = optimizers.steps_to_convergence(lr, 0.3)
    assert 5 * steps < gd_steps  # sqrt(rho) / 2 times fewer

    def change(optimizer, n):
        result = train.gradient_descent(
            apply_fn,
            params,
            toy.x_train,
            toy.y_train,
            lr=lr,
            steps=n,
            ridge=0.3,
            optimizer=optimizer,
        )
        return apply_fn(result.params, toy.x_test) - apply_fn(params, toy.x_test)

    end = change(optimizers.GD, gd_steps)
    gap = metrics.relative_error(change(nesterov, steps), end)
    assert gap < 1e-3  # 4e-4 here
    assert metrics.relative_error(change(nesterov, steps // 5), end) > 10 * gap
    assert metrics.relative_error(change(optimizers.GD, steps), end) > 5 * gap
    with pytest.raises(ValueError, match="no convergence rule"):
        optimizers.steps_to_convergence(lr, 0.3, optimizers.Optimizer("adam", batch_size=5))


def test_optimizer_sets_nesterov_momentum_from_rho():
    """One step from zero velocity is a gradient step of 1/L; the second carries momentum."""
    transform = optimizers.spectral_transform("nesterov", lambda_max=99.0, ridge=1.0)
    params = jnp.zeros(1)
    state = transform.init(params)
    first, state = transform.update(jnp.ones(1), state, params)
    second, _ = transform.update(jnp.ones(1), state, params)
    beta = (10.0 - 1.0) / (10.0 + 1.0)  # sqrt(rho) = 10
    np.testing.assert_allclose(first, -(1 + beta) / 100.0)  # optax's Nesterov: g + beta * v
    np.testing.assert_allclose(second, -(1 + beta + beta**2) / 100.0)
