"""The closed forms of rndlib.theory against Monte-Carlo and against neural-tangents."""

import gaussians
import neural_tangents as nt
import numpy as np
import pytest
import scipy.stats

from rndlib import metrics, models, theory


def joint_draws(cov: theory.KernelBlocks, draws: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Draws of h ~ GP(0, C) at the training and test inputs together."""
    joint = np.block([[cov.train_train, cov.test_train.T], [cov.test_train, cov.test_test]])
    evals, evecs = np.linalg.eigh(joint)
    root = evecs * np.sqrt(np.clip(evals, 0, None))
    h = np.random.default_rng(seed).standard_normal((draws, len(joint))) @ root.T
    n_train = len(cov.train_train)
    return h[:, :n_train], h[:, n_train:]


@pytest.mark.parametrize("which", ["nngp", "ntk"])
def test_sandwich_matches_monte_carlo(kernels, lr, which):
    """h(x) - B_T h(X) for h ~ GP(0, C) has covariance S_T[C], within Monte-Carlo error."""
    cov = dict(zip(["nngp", "ntk"], kernels, strict=True))[which]
    op = theory.training_operator(kernels[1], lr=lr, steps=300).matrix
    h_train, h_test = joint_draws(cov, draws=4000, seed=1)
    residual = h_test - h_train @ op.T
    exact = theory.sandwich(cov, op)
    z = gaussians.covariance_zscores(residual, exact)
    assert np.abs(z).max() < 5.0
    assert 0.7 < np.mean(z**2) < 1.3
    # The same criterion rejects a covariance 10% off: the check can fail.
    assert np.mean(gaussians.covariance_zscores(residual, 1.1 * exact) ** 2) > 1.3


@pytest.mark.parametrize("time", [10.0, 300.0, None])
def test_ensemble_prediction_matches_neural_tangents(toy, spec, kernels, lr, time):
    """Mean B_T Y and covariance S_T[kappa] equal nt.predict.gradient_descent_mse_ensemble.

    neural-tangents minimises 1/(2 |Y|) sum (f - y)^2, so its time is lr * time * |Y|.
    """
    nngp, ntk = kernels
    ours = theory.ensemble_prediction(nngp, ntk, toy.y_train, lr=lr, time=time)
    predict = nt.predict.gradient_descent_mse_ensemble(
        models.network(spec)[2], toy.x_train, toy.y_train
    )
    t = None if time is None else lr * time * toy.y_train.size
    mean, cov = predict(x_test=toy.x_test[::4], get="ntk", compute_cov=True, t=t)
    np.testing.assert_allclose(ours.mean, mean, rtol=0, atol=1e-9 * np.abs(mean).max())
    np.testing.assert_allclose(ours.cov, cov, rtol=0, atol=1e-9 * np.abs(cov).max())


@pytest.mark.parametrize("noise", [0.0, 0.01, 0.5])
def test_gp_posterior_matches_neural_tangents(toy, kernels, noise):
    """The (noisy) NTK-GP posterior equals nt.predict.gp_inference with an absolute diag_reg."""
    ntk = kernels[1]
    ours = theory.gp_posterior(ntk, toy.y_train, noise)
    predict = nt.predict.gp_inference(
        ntk.train_train, toy.y_train, diag_reg=noise, diag_reg_absolute_scale=True
    )
    mean, cov = predict(get="nngp", k_test_train=ntk.test_train, k_test_test=ntk.test_test)
    np.testing.assert_allclose(ours.mean, mean, rtol=0, atol=1e-9 * np.abs(mean).max())
    np.testing.assert_allclose(ours.cov, cov, rtol=0, atol=1e-9 * np.abs(cov).max())
    assert ours.condition_number > 1


@pytest.mark.parametrize("noise", [0.0, 0.1])
def test_bayesian_rnd_error_is_the_ntk_posterior(kernels, noise):
    """S_inf[Theta + noise at X] with the ridge operator is the (noisy) NTK-GP posterior."""
    ntk = kernels[1]
    op = theory.training_operator(ntk, lr=1e-3, ridge=noise).matrix
    np.testing.assert_allclose(
        theory.sandwich(ntk.with_noise(noise), op),
        theory.gp_posterior(ntk, np.zeros((len(op.T), 1)), noise).cov,
        atol=1e-8 * np.abs(ntk.test_test).max(),
    )


def test_centred_and_standard_rnd_constants(kernels, lr):
    """S_T[2kappa] = 2 S_T[kappa]: standard RND's error is twice the ensemble variance."""
    nngp, ntk = kernels
    op = theory.training_operator(ntk, lr=lr, steps=100).matrix
    np.testing.assert_allclose(theory.sandwich(2 * nngp, op), 2 * theory.sandwich(nngp, op))
    np.testing.assert_allclose(
        theory.sandwich(nngp + nngp, op), theory.sandwich(2 * nngp, op), rtol=1e-12
    )


def test_small_steps_approach_gradient_flow(kernels, lr):
    ntk = kernels[1]
    discrete = theory.training_operator(ntk, lr=lr / 100, steps=30_000).matrix
    flow = theory.training_operator(ntk, lr=lr / 100, time=30_000).matrix
    assert metrics.relative_error(discrete, flow) < 1e-3


def test_operator_converges_in_steps(kernels, lr):
    """With a ridge the problem is well conditioned and B_T reaches B_inf."""
    ntk = kernels[1]
    limit = theory.training_operator(ntk, lr=lr, ridge=1.0)
    finite = theory.training_operator(ntk, lr=lr * 0.9, steps=20_000, ridge=1.0)
    assert metrics.relative_error(finite.matrix, limit.matrix) < 1e-10


def test_zero_steps_leave_the_function_untrained(kernels, lr):
    assert np.abs(theory.training_operator(kernels[1], lr=lr, steps=0).matrix).max() == 0.0


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"lr": 2.5, "steps": 10}, "lr"),
        ({"lr": -1.0, "steps": 10}, "lr"),
        ({"lr": float("nan"), "steps": 10}, "lr"),
        ({"lr": 1e-3, "steps": -1}, "steps"),
        ({"lr": 1e-3, "time": float("inf")}, "time"),
        ({"lr": 1e-3, "ridge": -0.1}, "ridge"),
        ({"lr": 1e-3, "steps": 1, "time": 1.0}, "steps"),
    ],
)
def test_training_operator_rejects_bad_schedules(kernels, lr, kwargs, name):
    if "lr" in kwargs and kwargs["lr"] == 2.5:
        kwargs = {**kwargs, "lr": 2.5 * lr}  # past the stability limit 2 / lambda_max
    with pytest.raises(ValueError, match=name):
        theory.training_operator(kernels[1], **kwargs)


def test_singular_kernel_is_reported(toy):
    x = np.repeat(toy.x_train[:3], 2, axis=0)  # duplicated inputs: a singular Theta_XX
    ntk = theory.kernel_blocks(models.network(models.ArchSpec())[2], x, x, "ntk")
    with pytest.raises(ValueError, match="singular"), pytest.warns(RuntimeWarning, match="inf"):
        theory.training_operator(ntk, lr=1e-3)
    with pytest.warns(RuntimeWarning, match="condition number inf"):
        assert theory.training_operator(ntk, lr=1e-3, steps=10).condition_number == np.inf


def test_log_marginal_likelihood_and_its_noise(kernels):
    """The evidence is the Gaussian log density; maximising it recovers the noise of a GP draw."""
    cov = kernels[1].train_train
    rng = np.random.default_rng(0)
    y = rng.standard_normal((len(cov), 1))
    exact = scipy.stats.multivariate_normal(cov=cov + 0.3 * np.eye(len(cov))).logpdf(y[:, 0])
    assert theory.log_marginal_likelihood(cov, y, 0.3) == pytest.approx(exact, rel=1e-10)
    root = np.linalg.cholesky(cov + 1e-9 * np.eye(len(cov)))
    draws = root @ rng.standard_normal((len(cov), 400)) + np.sqrt(0.5) * rng.standard_normal(
        (len(cov), 400)
    )
    assert theory.gp_noise_by_evidence(cov, draws) == pytest.approx(0.5, rel=0.1)
    for bounds, message in [
        ((0.0, 1.0), r"bounds\[0\] must be greater than 0"),
        ((1.0, 0.5), r"bounds\[1\] must be greater than 1"),
        ((1e-3, np.inf), r"bounds\[1\] must be a finite number"),
        ((1e-3,), r"bounds must be \(low, high\)"),
    ]:
        with pytest.raises(ValueError, match=message):
            theory.gp_noise_by_evidence(cov, draws, bounds)


def test_relu_ntk_diagonal_matches_its_closed_form(toy):
    """One ReLU layer: Theta(x, x) = W^2 (W^2 x^2 + b^2) + b^2 to float64 precision.

    The arc-cosine kernel loses digits near x = x' when computed carelessly (a jitted
    kernel_fn was 1.6e-9 off here); kernel_blocks must keep them.
    """
    spec = models.ArchSpec(depth=1, width=64)
    blocks = theory.kernel_blocks(models.network(spec)[2], toy.x_train, toy.x_test, "ntk")
    w2, b2 = spec.W_std**2, spec.b_std**2
    exact = w2 * (w2 * toy.x_test[:, 0] ** 2 + b2) + b2
    np.testing.assert_allclose(np.diag(blocks.test_test), exact, rtol=1e-13)


def test_linearised_prediction_refuses_a_flat_target(kernels, lr):
    """A target of shape (N,) would broadcast B_T (y - f_0(X)) into an (N, N) answer."""
    op = theory.training_operator(kernels[1], lr=lr, steps=10).matrix
    n_test, n_train = op.shape
    rng = np.random.default_rng(0)
    f0_test, f0_train = rng.standard_normal((3, n_test, 1)), rng.standard_normal((3, n_train, 1))
    y = rng.standard_normal((n_train, 1))
    assert theory.linearised_prediction(op, f0_test, f0_train, y).shape == (3, n_test, 1)
    with pytest.raises(ValueError, match=rf"y_train must have shape \({n_train}, k\), got"):
        theory.linearised_prediction(op, f0_test, f0_train, y[:, 0])
    with pytest.raises(ValueError, match=r"y_train must have shape"):
        theory.linearised_prediction(op, f0_test, f0_train, np.vstack([y, y]))
    with pytest.raises(ValueError, match=r"f0_train must have shape"):
        theory.linearised_prediction(op, f0_test, f0_train[..., 0], y)
    with pytest.raises(ValueError, match=r"f0_test must have shape"):
        theory.linearised_prediction(op, f0_test[:, :-1], f0_train, y)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda c, y: (c, np.concatenate([y, y]), 0.3),
            r"y must have shape \(20, k\), got \(40, 1\)",
        ),
        (
            lambda c, y: (c, np.concatenate([y, y])[:, 0], 0.3),
            r"y must have shape \(20\), got \(40,\)",
        ),
        (lambda c, y: (c[:, :-1], y, 0.3), r"cov must be a square matrix"),
        (lambda c, y: (np.diag(c), y, 0.3), r"cov must have shape"),
        (lambda c, y: (np.full_like(c, np.nan), y, 0.3), r"cov must be finite"),
        (lambda c, y: (c, np.full_like(y, np.inf), 0.3), r"y must be finite"),
        (lambda c, y: (c, y, -0.1), r"noise must be at least 0"),
        (lambda c, y: (c, y, float("nan")), r"noise must be a finite number"),
    ],
)
def test_log_marginal_likelihood_refuses_mismatched_arguments(kernels, change, message):
    cov = kernels[1].train_train
    y = np.random.default_rng(0).standard_normal((len(cov), 1))
    with pytest.raises(ValueError, match=message):
        theory.log_marginal_likelihood(*change(cov, y))
    # a flat y is one target column, and no noise is allowed
    both = (theory.log_marginal_likelihood(cov, y[:, 0], s) for s in (0.0, 0.3))
    assert list(both) == [theory.log_marginal_likelihood(cov, y, s) for s in (0.0, 0.3)]
