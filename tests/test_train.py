"""The training engine: fixed steps against the lemma, and training to a tolerance against the
quadratic's minimiser, its stopping rule, rates, chunks and linearisation."""

import jax
import jax.numpy as jnp
import neural_tangents as nt
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from rndlib import metrics, models, optimizers, rnd, schedule, theory, train


def trained_vs_lemma(toy, width: int, *, ridge: float = 0.0, steps: int = 300) -> np.ndarray:
    """Relative error of trained networks against the lemma, one per network."""
    spec = models.ArchSpec(depth=1, width=width)
    init_fn, apply_fn, kernel_fn = models.network(spec)
    params = models.init_params(init_fn, seed=0, members=4, input_dim=1)
    lam = models.largest_ntk_eigenvalue(apply_fn, params, toy.x_train, members=True)
    lr = schedule.step_size(lam + ridge)
    result = train.gradient_descent(
        apply_fn, params, toy.x_train, toy.y_train, lr=lr, steps=steps, ridge=ridge, members=True
    )
    ntk = theory.kernel_blocks(kernel_fn, toy.x_train, toy.x_test, "ntk")
    op = theory.training_operator(ntk, lr=lr, steps=steps, ridge=ridge).matrix
    f0_test = np.asarray(models.apply_members(apply_fn, params, toy.x_test))
    f0_train = np.asarray(models.apply_members(apply_fn, params, toy.x_train))
    predicted = theory.linearised_prediction(op, f0_test, f0_train, toy.y_train)
    trained = np.asarray(models.apply_members(apply_fn, result.params, toy.x_test))
    return np.array(
        [
            metrics.relative_error(t - f, p - f)
            for t, p, f in zip(trained, predicted, f0_test, strict=True)
        ]
    )


@pytest.mark.parametrize("ridge", [0.0, 1.0])
def test_wide_networks_follow_the_lemma(toy, ridge):
    """Trained networks approach f_0 + B_T (Y - f_0(X)) as width grows (notebook 01, the lemma)."""
    narrow = trained_vs_lemma(toy, 64, ridge=ridge)
    wide = trained_vs_lemma(toy, 16384, ridge=ridge)
    assert wide.mean() < 0.02
    assert wide.mean() < narrow.mean() / 3  # 1/sqrt(16384/64) = 1/16 in theory


def test_members_train_as_if_alone(toy):
    init_fn, apply_fn, _ = models.network(models.ArchSpec(depth=1, width=128))
    params = models.init_params(init_fn, seed=3, members=3, input_dim=1)
    targets = jnp.stack([toy.y_train, -toy.y_train, 2 * toy.y_train])
    together = train.gradient_descent(
        apply_fn, params, toy.x_train, targets, lr=1e-3, steps=50, members=True
    )
    for m in range(3):
        alone = train.gradient_descent(
            apply_fn,
            jax.tree_util.tree_map(lambda a, m=m: a[m], params),
            toy.x_train,
            targets[m],
            lr=1e-3,
            steps=50,
        )
        np.testing.assert_allclose(together.losses[m], alone.losses, rtol=1e-12)
    assert together.losses.shape == (3, 50)
    assert np.all(np.diff(np.asarray(together.losses), axis=1) < 0)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"lr": 0.0}, "lr"),
        ({"lr": float("inf")}, "lr"),
        ({"steps": -5}, "steps"),
        ({"steps": 2.5}, "steps"),
        ({"ridge": -1.0}, "ridge"),
    ],
)
def test_gradient_descent_rejects_bad_schedules(toy, kwargs, name):
    init_fn, apply_fn, _ = models.network(models.ArchSpec(depth=1, width=16))
    _, params = init_fn(jax.random.PRNGKey(0), (-1, 1))
    schedule = {"lr": 1e-3, "steps": 10, **kwargs}
    with pytest.raises(ValueError, match=name):
        train.gradient_descent(apply_fn, params, toy.x_train, toy.y_train, **schedule)


@pytest.mark.parametrize("name, lr", [("sgd", None), ("adam", 0.01)])
def test_minibatch_optimizers_reach_the_ridge_minimiser(toy, name, lr):
    """With ridge > 0, minibatch SGD and Adam end where gradient descent does (lemma, T = inf)."""
    spec = models.ArchSpec(width=4096)
    init_fn, apply_fn, kernel_fn = models.network(spec)
    _, params = init_fn(jax.random.PRNGKey(1), (-1, 1))
    lam = models.largest_ntk_eigenvalue(apply_fn, params, toy.x_train)
    optimizer = optimizers.Optimizer(name, batch_size=5, seed=2)
    result = train.gradient_descent(
        apply_fn,
        params,
        toy.x_train,
        toy.y_train,
        lr=lr or schedule.step_size(lam + 1.0),
        steps=2000,
        ridge=1.0,
        optimizer=optimizer,
    )
    ntk = theory.kernel_blocks(kernel_fn, toy.x_train, toy.x_test, "ntk")
    op = theory.training_operator(ntk, lr=1.0, ridge=1.0).matrix
    f0_test, f0_train = apply_fn(params, toy.x_test), apply_fn(params, toy.x_train)
    predicted = theory.linearised_prediction(op, f0_test, f0_train, toy.y_train)
    trained = apply_fn(result.params, toy.x_test)
    assert metrics.relative_error(trained - f0_test, predicted - f0_test) < 0.05


def test_training_past_the_stability_limit_says_so(toy):
    """lr = 10 is far past 2 / lambda_max (lambda_max about 140): the run ends in NaN."""
    init_fn, apply_fn, _ = models.network(models.ArchSpec(width=16))
    params = models.init_params(init_fn, 0, 2, 1)
    one = jax.tree_util.tree_map(lambda a: a[0], params)
    schedule = {"lr": 10.0, "steps": 20}
    with pytest.raises(ValueError, match=r"lr=10 diverged.*stability limit"):
        train.gradient_descent(apply_fn, one, toy.x_train, toy.y_train, **schedule)
    # allowed on request, so that a run past the limit can be studied (notebook 01)
    studied = {"allow_divergence": True} | schedule
    result = train.gradient_descent(apply_fn, one, toy.x_train, toy.y_train, **studied)
    assert not np.isfinite(result.losses[-1])
    with pytest.raises(ValueError, match="allow_divergence"):
        train.gradient_descent(
            apply_fn, one, toy.x_train, toy.y_train, allow_divergence="yes", **schedule
        )
    with pytest.raises(ValueError, match=r"lr=10 diverged.*stability limit"):
        train.gradient_descent(apply_fn, params, toy.x_train, toy.y_train, members=True, **schedule)
    g = init_fn(jax.random.PRNGKey(1), (-1, 1))[1]
    x, xt = toy.x_train, toy.x_test
    args = (apply_fn, one, x, xt, apply_fn(g, x), apply_fn(g, xt))
    with pytest.raises(ValueError, match=r"lr=10 diverged.*stability limit"):
        rnd.rnd_error(*args, **schedule)
    assert np.all(np.isfinite(rnd.rnd_error(*args, lr=1e-3, steps=20)))  # a stable step


@pytest.fixture(scope="module")
def problem():
    """A small erf network, its linearisation, data and the closed-form minimiser."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 3)) / np.sqrt(3)
    y = np.sin(2 * x[:, :1]) + 0.1 * rng.standard_normal((40, 1))
    init_fn, apply_fn, _ = models.network(models.ArchSpec(activation="erf", width=64))
    theta0 = init_fn(jax.random.PRNGKey(0), (-1, 3))[1]
    linear = nt.linearize(apply_fn, theta0)
    lam = models.largest_ntk_eigenvalue(linear, theta0, x)
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
    fit = train.train_to_convergence(
        linear,
        theta0,
        x,
        y,
        ridge=ridge,
        lambda_max=lam,
        optimizer=optimizers.Optimizer(method),
        tol=tol,
    )
    assert fit.converged[0] and fit.ratio[0] <= tol
    moved = _flat(fit.params) - _flat(theta0)
    error = np.linalg.norm(moved - _minimiser(problem, ridge)) / np.linalg.norm(moved)
    assert error <= tol
    # a decoy: ten times fewer steps than it took leaves an error the rule would refuse
    early = train.train_to_convergence(
        linear,
        theta0,
        x,
        y,
        ridge=ridge,
        lambda_max=lam,
        optimizer=optimizers.Optimizer(method),
        tol=tol,
        max_steps=max(1, int(fit.steps[0]) // 10),
    )
    moved = _flat(early.params) - _flat(theta0)
    assert not early.converged[0]
    assert np.linalg.norm(moved - _minimiser(problem, ridge)) / np.linalg.norm(moved) > tol


def test_nesterov_needs_about_sqrt_rho_steps_and_gradient_descent_rho(problem):
    """Steps against rho = 30 ... 3000 on the linearised loss: slopes near 1/2 and 1."""
    x, y, theta0, linear, _, lam = problem
    rhos = np.array([30.0, 300.0, 3000.0])
    steps = {}
    for method in ("nesterov", "gd"):
        steps[method] = [
            train.train_to_convergence(
                linear,
                theta0,
                x,
                y,
                ridge=lam / (k - 1),
                lambda_max=lam,
                optimizer=optimizers.Optimizer(method),
            ).steps[0]
            for k in rhos
        ]
    slopes = {m: np.polyfit(np.log(rhos), np.log(s), 1)[0] for m, s in steps.items()}
    assert 0.4 <= slopes["nesterov"] <= 0.6, slopes
    assert 0.9 <= slopes["gd"] <= 1.2, slopes


def test_chunks_and_members_change_nothing_but_memory(problem):
    """Summing the gradient over chunks (padded) and vmapping members give the same path."""
    x, y, theta0, _, apply_fn, lam = problem
    common = {"ridge": lam / 100, "lambda_max": lam, "tol": 1e-2}
    whole = train.train_to_convergence(apply_fn, theta0, x, y, **common)
    chunked = train.train_to_convergence(apply_fn, theta0, x, y, chunk=16, **common)
    assert whole.steps[0] == chunked.steps[0]
    np.testing.assert_allclose(_flat(chunked.params), _flat(whole.params), rtol=1e-9, atol=1e-12)
    stacked = jax.tree_util.tree_map(lambda a: jnp.stack([a, a]), theta0)
    both = train.train_to_convergence(
        apply_fn, stacked, x, np.stack([y, 2 * y]), members=True, **common
    )
    assert both.steps[0] == whole.steps[0] and both.steps.shape == (2,)
    first = jax.tree_util.tree_map(lambda a: a[0], both.params)
    np.testing.assert_allclose(_flat(first), _flat(whole.params), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"optimizer": "lbfgs"}, "optimizer must be an optimizers.Optimizer"),
        ({"optimizer": optimizers.Optimizer("sgd", batch_size=8)}, "does not train to a tolerance"),
        ({"optimizer": optimizers.Optimizer("adam", batch_size=8)}, "batch_size must be None"),
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
        train.train_to_convergence(apply_fn, theta0, x, y, **arguments)


def test_linearised_training_reaches_the_quadratic_minimiser_in_the_same_steps(problem):
    """``linearised=True`` trains ``u(X; theta_0) + J_0 (theta - theta_0)``: the closed form."""
    x, y, theta0, linear, apply_fn, lam = problem
    common = {"ridge": lam / 200, "lambda_max": lam, "tol": 1e-3}
    kept = train.train_to_convergence(apply_fn, theta0, x, y, linearised=True, **common)
    again = train.train_to_convergence(linear, theta0, x, y, **common)
    assert kept.converged[0] and kept.steps[0] == again.steps[0]
    target = _minimiser(problem, common["ridge"])
    moved = _flat(kept.params) - _flat(theta0)
    assert np.linalg.norm(moved - target) / np.linalg.norm(moved) <= common["tol"]
    # a decoy: the network itself, trained to the same rule, ends elsewhere at width 64
    network = train.train_to_convergence(apply_fn, theta0, x, y, **common)
    moved = _flat(network.params) - _flat(theta0)
    assert np.linalg.norm(moved - target) / np.linalg.norm(moved) > 10 * common["tol"]


def test_linearised_training_keeps_the_whole_set(problem):
    x, y, theta0, _, apply_fn, lam = problem
    with pytest.raises(ValueError, match="chunk must be None when linearised"):
        train.train_to_convergence(
            apply_fn, theta0, x, y, ridge=0.1, lambda_max=lam, chunk=8, linearised=True
        )


def test_a_step_past_the_stability_limit_is_refused(problem):
    """A lambda_max 1000 times too small sets a step that diverges: refused, naming it."""
    x, y, theta0, linear, _, lam = problem
    with pytest.raises(ValueError, match=r"lambda_max=.*stability limit"):
        train.train_to_convergence(
            linear,
            theta0,
            x,
            y,
            ridge=lam / 200,
            lambda_max=lam / 1000,
            optimizer=optimizers.GD,
            max_steps=500,
        )


def test_a_step_past_the_limit_is_refused_before_it_overflows(toy):
    """4 steps of 3 / lambda_max stay finite, but the loss grows: refused, naming lr.

    (Longer runs at this width may come back down, the catapult of Lewkowycz et al. 2020.)
    """
    init_fn, apply_fn, _ = models.network(models.ArchSpec(width=64))
    params = models.init_params(init_fn, 0, 2, 1)
    one = jax.tree_util.tree_map(lambda a: a[1], params)  # the member with the largest NTK
    lam = models.largest_ntk_eigenvalue(apply_fn, params, toy.x_train, members=True)
    assert lam == pytest.approx(models.largest_ntk_eigenvalue(apply_fn, one, toy.x_train))
    past = {"lr": 3.0 / lam, "steps": 4}  # |1 - 3| = 2: the top mode doubles each step
    for p, members in ((one, False), (params, True)):
        with pytest.raises(ValueError, match=r"lr=.* past the stability limit.*loss grew"):
            train.gradient_descent(apply_fn, p, toy.x_train, toy.y_train, members=members, **past)
    studied = train.gradient_descent(
        apply_fn, one, toy.x_train, toy.y_train, allow_divergence=True, **past
    )
    assert np.all(np.isfinite(studied.losses)) and studied.losses[-1] > studied.losses[0]
    # the decoy's opposite: a stable step of 1.9 / lambda_max passes
    train.gradient_descent(apply_fn, one, toy.x_train, toy.y_train, lr=1.9 / lam, steps=10)
    with pytest.raises(ValueError, match=r"lambda_max=.* below the largest eigenvalue"):
        train.train_to_convergence(
            apply_fn, one, toy.x_train, toy.y_train, ridge=0.1, lambda_max=lam / 3, max_steps=10
        )
