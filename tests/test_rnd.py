"""RND targets and errors: Bayesian targets have the NTK as covariance; errors before training."""

import gaussians
import jax
import jax.numpy as jnp
import neural_tangents as nt
import numpy as np
import pytest

from rndlib import models, rnd


def test_bayesian_target_has_the_empirical_ntk_as_covariance(toy):
    """u - g(.; theta_0) = J_0 psi, psi ~ N(0, I), has covariance Theta_0 (notebook 03)."""
    spec = models.ArchSpec(depth=1, width=512)
    init_fn, apply_fn, kernel_fn = models.network(spec)
    _, params = init_fn(jax.random.PRNGKey(1), (-1, 1))
    x = toy.x_test[::20]
    draws = 4000
    targets = jax.vmap(
        lambda s: rnd.bayesian_rnd_target(apply_fn, params, rnd.draw_psi(params, s), x)
    )(jnp.arange(draws))
    residual = np.asarray(targets - apply_fn(params, x))[:, :, 0]
    theta0 = np.asarray(nt.empirical_ntk_fn(apply_fn)(x, None, params))
    z = gaussians.covariance_zscores(residual, theta0)
    assert np.abs(z).max() < 5.0
    assert 0.7 < np.mean(z**2) < 1.3
    # Against the infinite-width NTK the same check fails at this width: Theta_0 != Theta.
    theta = np.asarray(kernel_fn(x, None, "ntk"))
    assert np.mean(gaussians.covariance_zscores(residual, theta) ** 2) > 1.3


def test_paper_target_has_the_ntk_without_the_readout_as_covariance(toy):
    """Prop. 5.7: J_0 psi* (readout of psi zeroed) has covariance Theta_0 minus the readout's
    part, which is the network's own NNGP kernel given its hidden layer."""
    spec = models.ArchSpec(depth=1, width=512)
    init_fn, apply_fn, _ = models.network(spec)
    _, params = init_fn(jax.random.PRNGKey(1), (-1, 1))
    x = toy.x_test[::20]
    draws = 4000
    targets = jax.vmap(
        lambda s: rnd.bayesian_rnd_target(
            apply_fn, params, rnd.draw_psi(params, s), x, kind="paper"
        )
    )(jnp.arange(draws))
    targets = np.asarray(targets)[:, :, 0]
    theta0 = np.asarray(nt.empirical_ntk_fn(apply_fn)(x, None, params))
    below_readout = theta0 - np.asarray(models.empirical_nngp(spec, params, x, x))
    z = gaussians.covariance_zscores(targets, below_readout)
    assert np.abs(z).max() < 5.0
    assert 0.7 < np.mean(z**2) < 1.3
    # The decoy, He et al.'s covariance Theta_0 (the readout's part included), fails.
    assert np.mean(gaussians.covariance_zscores(targets, theta0) ** 2) > 1.3
    with pytest.raises(ValueError, match="kind"):
        rnd.bayesian_rnd_target(apply_fn, params, params, x, kind="full")


def test_rnd_error_before_training(toy):
    """With no step taken, RND's error is u - g_0, and u for a centred predictor."""
    init_fn, apply_fn, _ = models.network(models.ArchSpec(depth=1, width=64, heads=3))
    g = init_fn(jax.random.PRNGKey(0), (-1, 1))[1]
    u = init_fn(jax.random.PRNGKey(1), (-1, 1))[1]
    x, xt = toy.x_train, toy.x_test
    args = (apply_fn, g, x, xt, apply_fn(u, x), apply_fn(u, xt))
    standard = rnd.rnd_error(*args, lr=0.01, steps=0)
    centred = rnd.rnd_error(*args, lr=0.01, steps=0, centred=True)
    np.testing.assert_allclose(standard, apply_fn(u, xt) - apply_fn(g, xt))
    np.testing.assert_allclose(centred, apply_fn(u, xt))
    assert standard.shape == (len(xt), 3)


def test_rnd_error_refuses_a_step_past_the_limit_before_it_overflows(toy):
    init_fn, apply_fn, _ = models.network(models.ArchSpec(width=64))
    u0, g = (init_fn(jax.random.PRNGKey(k), (-1, 1))[1] for k in (0, 1))
    lam = models.largest_ntk_eigenvalue(apply_fn, u0, toy.x_train)
    x, xt = toy.x_train, toy.x_test
    args = (apply_fn, u0, x, xt, apply_fn(g, x), apply_fn(g, xt))
    with pytest.raises(ValueError, match=r"lr=.* past the stability limit.*loss grew"):
        rnd.rnd_error(*args, lr=3.0 / lam, steps=3)  # the loss grows 182 -> 203
    assert np.all(np.isfinite(rnd.rnd_error(*args, lr=1.9 / lam, steps=10)))
