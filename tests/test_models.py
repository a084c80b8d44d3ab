"""Architecture specs: bad arguments are named; the stax triple has the spec's shape."""

import jax
import neural_tangents as nt
import numpy as np
import pytest

from rndlib import models, schedule, train


@pytest.mark.parametrize(
    ("change", "name"),
    [
        ({"width": -1}, "width"),
        ({"width": 0}, "width"),
        ({"width": 64.0}, "width"),
        ({"depth": 0}, "depth"),
        ({"heads": 0}, "heads"),
        ({"heads": 65, "width": 64}, "heads"),
        ({"activation": "tanh"}, "activation"),
        ({"parameterization": "mup"}, "parameterization"),
        ({"W_std": float("nan")}, "W_std"),
        ({"W_std": 0.0}, "W_std"),
        ({"b_std": -0.1}, "b_std"),
        ({"b_std": float("inf")}, "b_std"),
        ({"width": True}, "width"),
    ],
)
def test_bad_arguments_are_named(change, name):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        models.ArchSpec(**change)


def test_replace_checks_again():
    with pytest.raises(ValueError, match="width"):
        models.ArchSpec().replace(width=-3)


@pytest.mark.parametrize("depth", [1, 2])
@pytest.mark.parametrize("heads", [1, 4])
def test_network_shapes(depth, heads):
    spec = models.ArchSpec(depth=depth, width=32, heads=heads, activation="erf")
    init_fn, apply_fn, kernel_fn = models.network(spec)
    out_shape, params = init_fn(jax.random.PRNGKey(0), (-1, 2))
    assert out_shape == (-1, heads)
    x = np.ones((5, 2))
    assert apply_fn(params, x).shape == (5, heads)
    assert kernel_fn(x, None, "ntk").shape == (5, 5)


def test_empirical_nngp_tends_to_the_analytic_kernel():
    x = np.linspace(-2, 2, 9)[:, None]
    errors = []
    for width in (64, 16384):
        spec = models.ArchSpec(depth=1, width=width)
        init_fn, _, kernel_fn = models.network(spec)
        _, params = init_fn(jax.random.PRNGKey(0), (-1, 1))
        analytic = np.asarray(kernel_fn(x, None, "nngp"))
        empirical = np.asarray(models.empirical_nngp(spec, params, x, x))
        errors.append(np.linalg.norm(empirical - analytic) / np.linalg.norm(analytic))
    assert errors[1] < errors[0] / 4  # 1/sqrt(16384/64) = 1/16 expected


def test_empirical_ntk_is_the_jacobians_inner_product():
    spec = models.ArchSpec(width=32, depth=2)
    init_fn, apply_fn, _ = models.network(spec)
    _, params = init_fn(jax.random.PRNGKey(3), (-1, 1))
    x = np.linspace(-2, 2, 5)[:, None]
    jac = jax.jacobian(lambda p: apply_fn(p, x)[:, 0])(params)
    flat = np.concatenate([j.reshape(len(x), -1) for j in jax.tree_util.tree_leaves(jac)], axis=1)
    np.testing.assert_allclose(models.empirical_ntk(spec, params, x, x), flat @ flat.T, rtol=1e-12)


def test_largest_ntk_eigenvalue_matches_dense_kernel(toy):
    """Power iteration on the NTK-vector product agrees with the dense NTK of all heads."""
    init_fn, apply_fn, _ = models.network(models.ArchSpec(depth=1, width=256, heads=3))
    _, params = init_fn(jax.random.PRNGKey(0), (-1, 1))
    dense = nt.empirical_ntk_fn(apply_fn, trace_axes=())(toy.x_train, None, params)
    n, heads = dense.shape[0], dense.shape[2]
    flat = np.asarray(dense).transpose(0, 2, 1, 3).reshape(n * heads, n * heads)
    lam = models.largest_ntk_eigenvalue(apply_fn, params, toy.x_train, iters=500)
    assert lam == pytest.approx(np.linalg.eigvalsh(flat)[-1], rel=1e-6)


def test_relative_ntk_change_falls_with_width(toy):
    def change(width: int) -> float:
        init_fn, apply_fn, _ = models.network(models.ArchSpec(width=width))
        _, params = init_fn(jax.random.PRNGKey(0), (-1, 1))
        lr = schedule.step_size(models.largest_ntk_eigenvalue(apply_fn, params, toy.x_train))
        trained = train.gradient_descent(
            apply_fn, params, toy.x_train, toy.y_train, lr=lr, steps=100
        ).params
        return models.relative_ntk_change(apply_fn, params, trained, toy.x_train)

    init_fn, apply_fn, _ = models.network(models.ArchSpec(width=64))
    _, params = init_fn(jax.random.PRNGKey(0), (-1, 1))
    assert models.relative_ntk_change(apply_fn, params, params, toy.x_train) == 0.0
    narrow, wide = change(64), change(4096)
    assert 0.0 < wide < narrow / 4  # width^-1/2: 1/8 in theory


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"input_dim": 0}, "input_dim"),
        ({"members": 0}, "members"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.0}, "seed"),
    ],
)
def test_init_params_refuses_bad_sizes_and_seeds(kwargs, name):
    init_fn = models.network(models.ArchSpec(width=16))[0]
    arguments = {"seed": 0, "members": 2, "input_dim": 1} | kwargs
    with pytest.raises(ValueError, match=name):
        models.init_params(init_fn, **arguments)
