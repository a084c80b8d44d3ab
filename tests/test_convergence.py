"""Training to convergence: the stopping rule's certificate, the rates, and the parameters."""

import jax
import jax.numpy as jnp
import neural_tangents as nt
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from rndlib import convergence, models, train


@pytest.fixture(scope="module")
def problem():
    """A small erf network, its linearisation, data and the closed-form minimiser."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 3)) / np.sqrt(3)
    y = np.sin(2 * x[:, :1]) + 0.1 * rng.standard_normal((40, 1))
    init_fn, apply_fn, _ = models.network(models.ArchSpec(activation="erf", width=64))
    theta0 = init_fn(jax.random.PRNGKey(0), (-1, 3))[1]
    linear = nt.linearize(apply_fn, theta0)
    lam = train.largest_ntk_eigenvalue(linear, theta0, x)
    return x, y, theta0, linear, apply_fn, lam


def _flat(params) -> np.ndarray:
    return np.concatenate([np.ravel(a) for a in jax.tree_util.tree_leaves(params)])


def _minimiser(problem, ridge) -> np.ndarray:
    """``theta* - theta_0 = (J'J + ridge I)^-1 J'(y - f_0)`` of the linearised loss."""
    x, y, theta0, linear, _, _ = problem
    flat0, unravel = ravel_pytree(theta0)
    jac = jax.jacobian(lambda v: linear(unravel(v), x)[:, 0])(flat0)
    residual = y[:, 0] - np.asarray(linear(theta0, x))[:, 0]
    hessian = jac.T @ jac + ridge * np.eye(len(flat0))
    return np.linalg.solve(hessian, jac.T @ residual)


@pytest.mark.parametrize("method", ["gd", "nesterov", "restart"])
def test_stopping_rule_certifies_the_displacement_on_the_quadratic(problem, method):
    """On the linearised loss ||theta - theta*|| <= tol ||theta - theta_0|| once r <= tol."""
    x, y, theta0, linear, _, lam = problem
    ridge, tol = lam / 200, 1e-3
    fit = convergence.train_to_convergence(
        linear, theta0, x, y, ridge=ridge, lambda_max=lam, method=method, tol=tol
    )
    assert fit.converged[0] and fit.ratio[0] <= tol
    moved = _flat(fit.params) - _flat(theta0)
    error = np.linalg.norm(moved - _minimiser(problem, ridge)) / np.linalg.norm(moved)
    assert error <= tol
    # a decoy: ten times fewer steps than it took leaves an error the rule would refuse
    early = convergence.train_to_convergence(
        linear,
        theta0,
        x,
        y,
        ridge=ridge,
        lambda_max=lam,
        method=method,
        tol=tol,
        max_steps=max(1, int(fit.steps[0]) // 10),
    )
    moved = _flat(early.params) - _flat(theta0)
    assert not early.converged[0]
    assert np.linalg.norm(moved - _minimiser(problem, ridge)) / np.linalg.norm(moved) > tol


def test_nesterov_needs_about_sqrt_kappa_steps_and_gradient_descent_kappa(problem):
    """Steps against kappa = 30 ... 3000 on the linearised loss: slopes near 1/2 and 1."""
    x, y, theta0, linear, _, lam = problem
    kappas = np.array([30.0, 300.0, 3000.0])
    steps = {}
    for method in ("nesterov", "gd"):
        steps[method] = [
            convergence.train_to_convergence(
                linear, theta0, x, y, ridge=lam / (k - 1), lambda_max=lam, method=method
            ).steps[0]
            for k in kappas
        ]
    slopes = {m: np.polyfit(np.log(kappas), np.log(s), 1)[0] for m, s in steps.items()}
    assert 0.4 <= slopes["nesterov"] <= 0.6, slopes
    assert 0.9 <= slopes["gd"] <= 1.2, slopes


def test_chunks_and_members_change_nothing_but_memory(problem):
    """Summing the gradient over chunks (padded) and vmapping members give the same path."""
    x, y, theta0, _, apply_fn, lam = problem
    common = {"ridge": lam / 100, "lambda_max": lam, "tol": 1e-2}
    whole = convergence.train_to_convergence(apply_fn, theta0, x, y, **common)
    chunked = convergence.train_to_convergence(apply_fn, theta0, x, y, chunk=16, **common)
    assert whole.steps[0] == chunked.steps[0]
    np.testing.assert_allclose(_flat(chunked.params), _flat(whole.params), rtol=1e-9, atol=1e-12)
    stacked = jax.tree_util.tree_map(lambda a: jnp.stack([a, a]), theta0)
    both = convergence.train_to_convergence(
        apply_fn, stacked, x, np.stack([y, 2 * y]), members=True, **common
    )
    assert both.steps[0] == whole.steps[0] and both.steps.shape == (2,)
    first = jax.tree_util.tree_map(lambda a: a[0], both.params)
    np.testing.assert_allclose(_flat(first), _flat(whole.params), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"method": "lbfgs"}, "method must be one of"),
        ({"ridge": 0.0}, "ridge must be"),
        ({"tol": -1.0}, "tol must be"),
        ({"lambda_max": float("nan")}, "lambda_max must be"),
        ({"max_steps": 0}, "max_steps must be"),
        ({"chunk": 2.5}, "chunk must be"),
    ],
)
def test_bad_parameters_stop_naming_them(problem, changes, message):
    x, y, theta0, _, apply_fn, lam = problem
    arguments = {"ridge": 0.1, "lambda_max": lam} | changes
    with pytest.raises(ValueError, match=message):
        convergence.train_to_convergence(apply_fn, theta0, x, y, **arguments)


def test_optimizer_sets_nesterov_momentum_from_kappa():
    """One step from zero velocity is a gradient step of 1/L; the second carries momentum."""
    transform = convergence.optimizer("nesterov", lambda_max=99.0, ridge=1.0)
    params = jnp.zeros(1)
    state = transform.init(params)
    first, state = transform.update(jnp.ones(1), state, params)
    second, _ = transform.update(jnp.ones(1), state, params)
    beta = (10.0 - 1.0) / (10.0 + 1.0)  # sqrt(kappa) = 10
    np.testing.assert_allclose(first, -(1 + beta) / 100.0)  # optax's Nesterov: g + beta * v
    np.testing.assert_allclose(second, -(1 + beta + beta**2) / 100.0)
    assert convergence.condition_number(99.0, 1.0) == 100.0


def test_linearised_training_reaches_the_quadratic_minimiser_in_the_same_steps(problem):
    """``linearised=True`` trains ``u(X; theta_0) + J_0 (theta - theta_0)``: the closed form."""
    x, y, theta0, linear, apply_fn, lam = problem
    common = {"ridge": lam / 200, "lambda_max": lam, "tol": 1e-3}
    kept = convergence.train_to_convergence(apply_fn, theta0, x, y, linearised=True, **common)
    again = convergence.train_to_convergence(linear, theta0, x, y, **common)
    assert kept.converged[0] and kept.steps[0] == again.steps[0]
    target = _minimiser(problem, common["ridge"])
    moved = _flat(kept.params) - _flat(theta0)
    assert np.linalg.norm(moved - target) / np.linalg.norm(moved) <= common["tol"]
    # a decoy: the network itself, trained to the same rule, ends elsewhere at width 64
    network = convergence.train_to_convergence(apply_fn, theta0, x, y, **common)
    moved = _flat(network.params) - _flat(theta0)
    assert np.linalg.norm(moved - target) / np.linalg.norm(moved) > 10 * common["tol"]


def test_linearised_training_keeps_the_whole_set(problem):
    x, y, theta0, _, apply_fn, lam = problem
    with pytest.raises(ValueError, match="chunk must be None when linearised"):
        convergence.train_to_convergence(
            apply_fn, theta0, x, y, ridge=0.1, lambda_max=lam, chunk=8, linearised=True
        )


def test_a_step_past_the_stability_limit_is_refused(problem):
    """A lambda_max 1000 times too small sets a step that diverges: refused, naming it."""
    x, y, theta0, linear, _, lam = problem
    with pytest.raises(ValueError, match=r"lambda_max=.*diverged.*stability limit"):
        convergence.train_to_convergence(
            linear, theta0, x, y, ridge=lam / 200, lambda_max=lam / 1000, method="gd", max_steps=500
        )
