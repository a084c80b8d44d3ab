"""Architecture specs: bad arguments are named; the stax triple has the spec's shape."""

import jax
import numpy as np
import pytest

from rndlib import models


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
