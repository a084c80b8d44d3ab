"""neural-tangents through rndlib.compat: the functions we use give the values they gave.

The reference values in ``tests/reference/neural_tangents.npz`` were computed once, in
float64, with the locked environment (jax 0.5.3, neural-tangents 0.6.5, no TensorFlow):
analytic NNGP and NTK kernels of the default ReLU network and of a 3-layer erf network,
an empirical NTK and an NTK-vector product of a width-64 network whose weights come from
numpy (so that jax's random streams do not enter), and the predictions of
``predict.gradient_descent_mse_ensemble`` and ``predict.gp_inference``. Any change of
jax, neural-tangents or the compatibility module that moves them by more than 1e-10
(relative) fails here. Regenerate with ``python tests/test_compat.py`` only on purpose.
"""

import sys
from pathlib import Path

import jax
import numpy as np

# isort: off
import rndlib  # noqa: F401  (before neural_tangents: the compatibility module)
import neural_tangents as nt

# isort: on
from rndlib import data, models

REFERENCE = Path(__file__).parent / "reference" / "neural_tangents.npz"


def numpy_params(spec: models.ArchSpec, seed: int = 0):
    """Parameters with the structure stax gives ``spec``, drawn by numpy (N(0, 1) entries)."""
    init_fn = models.network(spec)[0]
    _, params = init_fn(jax.random.PRNGKey(0), (-1, 1))
    rng = np.random.default_rng(seed)
    leaves, tree = jax.tree_util.tree_flatten(params)
    return jax.tree_util.tree_unflatten(tree, [rng.standard_normal(leaf.shape) for leaf in leaves])


def values() -> dict[str, np.ndarray]:
    """Everything the reference file holds, computed now."""
    toy = data.load_dataset("toy_1d")
    x_train, y_train, x_test = toy.x_train, toy.y_train, toy.x_test[::20]
    out = {}
    for label, spec in [
        ("relu1", models.ArchSpec()),
        ("erf3", models.ArchSpec(depth=3, activation="erf")),
    ]:
        kernel_fn = models.network(spec)[2]
        for get in ("nngp", "ntk"):
            out[f"{label}_{get}"] = np.asarray(kernel_fn(x_train, x_test, get), np.float64)
    small = models.ArchSpec(width=64, heads=2)
    _, apply_fn, _ = models.network(small)
    params = numpy_params(small)
    out["empirical_ntk"] = np.asarray(
        nt.empirical_ntk_fn(apply_fn, trace_axes=())(x_train, x_test, params), np.float64
    )
    v = np.random.default_rng(1).standard_normal((len(x_train), 2))
    out["ntk_vp"] = np.asarray(nt.empirical_ntk_vp_fn(apply_fn, x_train, x_train, params)(v))
    kernel_fn = models.network(models.ArchSpec())[2]
    ensemble = nt.predict.gradient_descent_mse_ensemble(
        kernel_fn, x_train, y_train, learning_rate=0.01, diag_reg=0.0
    )(t=100.0, x_test=x_test, get="ntk", compute_cov=True)
    out["ensemble_mean"], out["ensemble_cov"] = map(np.asarray, ensemble)
    k = {
        name: np.asarray(kernel_fn(a, b, "nngp"))
        for name, (a, b) in {
            "train_train": (x_train, x_train),
            "test_train": (x_test, x_train),
            "test_test": (x_test, x_test),
        }.items()
    }
    gp = nt.predict.gp_inference(
        k["train_train"], y_train, diag_reg=0.01, diag_reg_absolute_scale=True
    )(get="nngp", k_test_train=k["test_train"], k_test_test=k["test_test"])
    out["gp_mean"], out["gp_cov"] = map(np.asarray, gp)
    return out


def test_neural_tangents_gives_its_reference_values():
    stored = np.load(REFERENCE)
    now = values()
    assert sorted(stored.files) == sorted(now)
    for name, value in now.items():
        np.testing.assert_allclose(value, stored[name], rtol=1e-10, atol=0, err_msg=name)


def test_the_ntk_vector_product_is_the_dense_kernel_times_the_vector():
    """empirical_ntk_vp_fn and empirical_ntk_fn agree with each other (our own closed form)."""
    stored = np.load(REFERENCE)
    toy = data.load_dataset("toy_1d")
    small = models.ArchSpec(width=64, heads=2)
    _, apply_fn, _ = models.network(small)
    dense = nt.empirical_ntk_fn(apply_fn, trace_axes=())(toy.x_train, None, numpy_params(small))
    v = np.random.default_rng(1).standard_normal((len(toy.x_train), 2))
    np.testing.assert_allclose(np.einsum("ijab,jb->ia", dense, v), stored["ntk_vp"], rtol=1e-10)


if __name__ == "__main__":
    REFERENCE.parent.mkdir(exist_ok=True)
    np.savez_compressed(REFERENCE, **values())
    print(f"wrote {REFERENCE}", file=sys.stderr)
