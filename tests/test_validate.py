"""Parameters and arrays: what is accepted, and what stops at once with a message naming it."""

from functools import partial

import jax
import numpy as np
import pytest

from rndlib import (
    conditioning,
    data,
    estimators,
    metrics,
    models,
    optimizers,
    rnd,
    sampling,
    theory,
    train,
    validate,
)


def test_quick_must_be_a_boolean():
    assert validate.flag("quick", True) is True
    assert validate.flag("quick", False) is False
    for wrong in ["false", "True", 0, 1, None]:
        with pytest.raises(ValueError, match=r"quick must be True or False"):
            validate.flag("quick", wrong)


def test_lists_take_json_text_from_papermill():
    assert validate.integers("widths", "[256, 1024]") == [256, 1024]
    assert validate.integers("widths", (4, 8)) == [4, 8]
    assert validate.finites("noise_levels", "[0.01]", above=0.0) == [0.01]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1024, r"widths must be a list"),
        (1024.0, r"widths must be a list"),
        ("1024, 2048", r"widths must be a list.*got the text"),
        ("[1024", r"widths must be a list.*got the text"),
        ('{"a": 1}', r"widths must be a list"),
        ([], r"widths must not be empty"),
        ("[]", r"widths must not be empty"),
        ([4, -4], r"widths\[1\] must be an integer >= 1"),
        ([4, 8.5], r"widths\[1\] must be an integer"),
        ([4, True], r"widths\[1\] must be an integer"),
        ("[4, null]", r"widths\[1\] must be an integer"),
    ],
)
def test_bad_lists_name_the_parameter(value, message):
    with pytest.raises(ValueError, match=message):
        validate.integers("widths", value)


def test_numbers_in_range_and_finite():
    assert validate.finite("x", 0.5, above=0.0, below=1.0) == 0.5
    with pytest.raises(ValueError, match=r"x must be less than 1\.0"):
        validate.finite("x", 1.0, below=1.0)
    with pytest.raises(ValueError, match=r"x must be greater than 0\.0"):
        validate.finite("x", 0.0, above=0.0)
    with pytest.raises(ValueError, match=r"x must be at least 2"):
        validate.finite("x", 1.5, at_least=2)
    for wrong in [float("nan"), float("inf"), "0.5", [0.5], True, None]:
        with pytest.raises(ValueError, match=r"x must be a finite number"):
            validate.finite("x", wrong)
    with pytest.raises(ValueError, match=r"levels\[1\] must be a finite number"):
        validate.finites("levels", [0.1, float("nan")])
    with pytest.raises(ValueError, match=r"levels\[0\] must be less than 1"):
        validate.finites("levels", "[1.5]", below=1.0)


def test_choices():
    assert validate.choice("activation", "erf", ("relu", "erf")) == "erf"
    for wrong in ["tanh", ["relu"], None]:
        with pytest.raises(ValueError, match=r"activation must be one of \['erf', 'relu'\]"):
            validate.choice("activation", wrong, ("relu", "erf"))


def test_arrays_have_their_shape_and_are_finite():
    assert validate.array("x", [[1.0], [2.0]], ("n", 1)).dtype == np.float64
    with pytest.raises(ValueError, match=r"x must have shape \(n, 1\), got \(2,\)"):
        validate.array("x", [1.0, 2.0], ("n", 1))
    with pytest.raises(ValueError, match=r"x must be finite: 1 of its 2 entries"):
        validate.array("x", [[1.0], [np.nan]], ("n", 1))
    with pytest.raises(ValueError, match=r"x must be an array of numbers, got str"):
        validate.array("x", "abc", ("n",))


@pytest.fixture(scope="module")
def toy():
    return data.load_dataset("toy_1d")


@pytest.mark.parametrize(
    ("field", "change", "message"),
    [
        ("y_train", lambda d: d.y_train[:, 0], r"y_train must have shape \(20, k\), got \(20,\)"),
        ("y_train", lambda d: d.y_train[:5], r"y_train must have shape \(20, k\), got \(5, 1\)"),
        ("x_test", lambda d: np.full_like(d.x_test, np.nan), r"x_test must be finite"),
        ("x_test", lambda d: np.ones((5, 2)), r"x_test must have shape \(m, 1\), got \(5, 2\)"),
        ("x_train", lambda d: d.x_train[:, 0], r"x_train must have shape \(n, d\)"),
    ],
)
def test_a_dataset_is_checked_when_made(toy, field, change, message):
    fields = toy._asdict() | {field: change(toy)}
    with pytest.raises(ValueError, match=message):
        data.Dataset(**fields)


def test_training_and_theory_refuse_a_flat_target(toy):
    """A target of shape (N,) would broadcast the loss into an N x N residual: refused."""
    spec = models.ArchSpec(width=64)
    init_fn, apply_fn, kernel_fn = models.network(spec)
    _, params = init_fn(jax.random.PRNGKey(0), (-1, 1))
    with pytest.raises(ValueError, match=r"y must have shape \(20, k\), got \(20,\)"):
        train.gradient_descent(apply_fn, params, toy.x_train, toy.y_train[:, 0], lr=0.01, steps=1)
    with pytest.raises(ValueError, match=r"y must have shape \(members, 20, k\)"):
        train.gradient_descent(
            apply_fn, params, toy.x_train, np.zeros((2, 19, 1)), lr=0.01, steps=1, members=True
        )
    ntk = theory.kernel_blocks(kernel_fn, toy.x_train, toy.x_test[:5], "ntk")
    with pytest.raises(ValueError, match=r"y_train must have shape \(20, k\), got \(20,\)"):
        theory.gp_posterior(ntk, toy.y_train[:, 0], noise=0.1)
    with pytest.raises(ValueError, match=r"y_train must be finite"):
        theory.gp_posterior(ntk, np.full_like(toy.y_train, np.nan), noise=0.1)
    with pytest.raises(ValueError, match=r"x_test must be finite"):
        theory.kernel_blocks(kernel_fn, toy.x_train, np.full((3, 1), np.inf), "ntk")
    with pytest.raises(ValueError, match=r"x_test must have shape \(n, 1\), got \(3, 2\)"):
        theory.kernel_blocks(kernel_fn, toy.x_train, np.zeros((3, 2)), "ntk")


def test_traced_arrays_are_checked_for_their_shape_only():
    def f(x):
        validate.array("x", x, ("n", 1))
        return x.sum()

    assert jax.jit(f)(np.ones((3, 1))) == 3.0
    with pytest.raises(ValueError, match=r"x must have shape \(n, 1\), got \(3,\)"):
        jax.jit(f)(np.ones(3))


def test_indices_are_distinct_and_in_range():
    assert validate.indices("record", [3, 0], 4).tolist() == [3, 0]
    for bad in ([4], [1, 1], [-1], [0.5]):
        with pytest.raises(ValueError, match="record"):
            validate.indices("record", bad, 4)


def test_square_and_symmetric_matrices():
    a = np.array([[2.0, 1.0], [1.0, 2.0]])
    assert validate.square("cov", a, symmetric=True).shape == (2, 2)
    with pytest.raises(ValueError, match=r"cov must be a square matrix, got shape \(2, 3\)"):
        validate.square("cov", np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"cov must be symmetric"):
        validate.square("cov", np.array([[2.0, 1.00001], [1.0, 2.0]]), symmetric=True)
    validate.square("cov", np.array([[2.0, 1.0000001], [1.0, 2.0]]), symmetric=True)  # round-off


def test_all_finite_looks_at_every_leaf():
    assert validate.all_finite({"w": jax.numpy.ones(3), "b": np.zeros(2)})
    assert not validate.all_finite({"w": jax.numpy.ones(3), "b": np.array([0.0, np.nan])})
    assert not validate.all_finite((np.inf,))
    assert jax.jit(lambda x: x if validate.all_finite(x) else -x)(np.ones(2)).sum() == 2.0


def _tiny():
    return models.ArchSpec(width=8)


#: Every public function of the library with a ``seed``, called with the seed given.
SEEDED = {
    "optimizers.Optimizer": lambda toy, s: optimizers.Optimizer(seed=s),
    "models.init_params": lambda toy, s: models.init_params(models.network(_tiny())[0], s, 2, 1),
    "rnd.draw_psi": lambda toy, s: rnd.draw_psi({"w": np.ones(2)}, s),
    "sampling.trained_ensemble": lambda toy, s: sampling.trained_ensemble(
        _tiny(), *toy[:3], members=2, steps=0, lr_fraction=1.0, seed=s
    ),
    "estimators.ensemble_variance": lambda toy, s: estimators.ensemble_variance(
        _tiny(), toy, members=2, seeds=1, steps=0, lr_fraction=1.0, seed=s
    ),
    "estimators.rnd_variance": lambda toy, s: estimators.rnd_variance(
        _tiny(), toy, heads=2, seeds=1, steps=0, lr_fraction=1.0, seed=s
    ),
    "estimators.bayesian_rnd_errors": lambda toy, s: estimators.bayesian_rnd_errors(
        _tiny(), toy, heads=2, seeds=1, steps=0, lr_fraction=1.0, seed=s
    ),
    "sampling.centred_network_mean": lambda toy, s: sampling.centred_network_mean(
        _tiny(), toy, steps=0, lr_fraction=1.0, seed=s
    ),
    "sampling.posterior_samples": lambda toy, s: sampling.posterior_samples(
        _tiny(), toy, heads=2, seeds=1, noise=0.5, lr_fraction=1.0, seed=s, steps=0
    ),
    "sampling.converged_posterior_samples": lambda toy, s: sampling.converged_posterior_samples(
        _tiny(), toy, heads=2, seeds=1, noise=0.5, seed=s
    ),
    "conditioning.gaussian_samples": lambda toy, s: conditioning.gaussian_samples(
        np.zeros(2), np.eye(2), 3, s
    ),
    "conditioning.exact_samples": lambda toy, s: conditioning.exact_samples(
        _tiny(), toy, 0.5, 3, s
    ),
    "conditioning.pathwise_samples": lambda toy, s: conditioning.pathwise_samples(
        _tiny(), toy, 0.5, 3, s, tol=0.1
    ),
    "rnd.bayesian_rnd_targets": lambda toy, s: rnd.bayesian_rnd_targets(
        models.network(_tiny())[1],
        models.init_params(models.network(_tiny())[0], 0, 2, 1),
        s,
        toy.x_test,
    ),
    "data.make_friedman": lambda toy, s: data.make_friedman(5, 5, s),
    "data.make_sine": lambda toy, s: data.make_sine(5, 5, s),
    "data.make_toy_1d": lambda toy, s: data.make_toy_1d(s),
    "data.make_toy_2d": lambda toy, s: data.make_toy_2d(s),
    "data.load_diabetes_split": lambda toy, s: data.load_diabetes_split(s),
    "data.load_digits_ood": lambda toy, s: data.load_digits_ood(s, 10, 10),
    "metrics.variance_discrepancy_null": lambda toy, s: metrics.variance_discrepancy_null(
        np.eye(2), 3, repeats=2, seed=s
    ),
}


@pytest.mark.parametrize("seed", [-1, 1.0, "0", True])
@pytest.mark.parametrize("function", sorted(SEEDED))
def test_every_seeded_function_refuses_a_bad_seed(toy, function, seed):
    """A negative or non-integer seed stops at once (JAX would take -1, numpy a float)."""
    with pytest.raises(ValueError, match=r"seed must be an integer >= 0"):
        SEEDED[function](toy, seed)


def test_seeded_functions_take_a_numpy_integer():
    assert data.make_toy_1d(np.int64(3)).x_train.shape == (20, 1)
    assert rnd.draw_psi({"w": np.ones(2)}, jax.random.PRNGKey(0))["w"].shape == (2,)


def test_notebook_parameters_are_checked_in_one_call():
    """Every rule applies by name; lists come back read from text; an override replaces a rule."""
    given = {"seed": 0, "quick": False, "widths": "[256, 1024]", "level": 0.01, "In": [], "x": 1}
    assert validate.parameters(given) == {
        "seed": 0,
        "quick": False,
        "widths": [256, 1024],
        "level": 0.01,
    }
    with pytest.raises(ValueError, match=r"level must be less than 1\.0, got 1\.5"):
        validate.parameters(given | {"level": 1.5})
    with pytest.raises(ValueError, match="widths must be 3 or more increasing integers"):
        validate.parameters(given, widths=partial(validate.increasing, at_least=3))
    with pytest.raises(ValueError, match="heads_sweep must be 1 or more increasing"):
        validate.parameters({"heads_sweep": [16, 8]})


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"widths": [64, 4096], "wide_widths": [2048]}, "wide_widths must all exceed widths"),
        (
            {"widths": [64], "wide_widths": [2048], "variant_widths": [128]},
            "variant_widths must be among widths",
        ),
        (
            {"heads": 64, "heads_per_width": 1 / 16, "width": 512},
            "heads=64 is more than heads_per_width \\* width = 32",
        ),
        ({"rhos": [30, 100]}, "rhos must hold at least 3"),
        ({"heads": 4, "n_seeds": 2}, "heads x n_seeds must be at least 16 samples, got 8"),
        (
            {"heads": 16, "n_seeds": 2, "law_heads": [8, 32]},
            "law_heads must divide heads x n_seeds = 32 at least twice, got 32",
        ),
    ],
)
def test_parameters_that_constrain_each_other_are_checked_together(given, message):
    with pytest.raises(ValueError, match=message):
        validate.parameters(given)
