"""One architecture spec, the neural-tangents stax triple it stands for, and many networks at once.

Networks of one spec are stacked along a leading axis (:func:`init_params`) and applied
together (:func:`apply_members`); their empirical NTK is measured without being formed
(:func:`largest_ntk_eigenvalue`) or compared before and after training
(:func:`relative_ntk_change`).
"""

import dataclasses
import functools
from dataclasses import dataclass
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import neural_tangents as nt
import numpy as np
from neural_tangents import stax

from rndlib import validate

ACTIVATIONS = {"erf": stax.Erf, "relu": stax.Relu}
PARAMETERIZATIONS = ("ntk", "standard")

Params = Any


@dataclass(frozen=True)
class ArchSpec:
    """A fully connected network: ``depth`` hidden layers of ``width`` units, ``heads`` outputs.

    Every layer is ``stax.Dense(., W_std, b_std, parameterization)``; in the NTK
    parameterization the infinite-width NNGP kernel K and NTK Theta of the notebooks
    are the ``nngp`` and ``ntk`` of the spec's ``kernel_fn``, the same for every head.

    Raises:
        ValueError: naming the argument, for a non-positive depth, width or number of
            heads, more heads than the width, an unknown activation or
            parameterization, or a weight or bias scale that is not finite.
    """

    depth: int = 1
    width: int = 512
    activation: str = "relu"
    W_std: float = 1.5
    b_std: float = 0.5
    parameterization: str = "ntk"
    heads: int = 1

    def __post_init__(self) -> None:
        validate.integer("depth", self.depth)
        validate.integer("width", self.width)
        validate.choice("activation", self.activation, ACTIVATIONS)
        validate.finite("W_std", self.W_std, above=0.0)
        validate.finite("b_std", self.b_std, at_least=0.0)
        validate.choice("parameterization", self.parameterization, PARAMETERIZATIONS)
        validate.integer("heads", self.heads)
        if self.heads > self.width:
            raise ValueError(
                f"heads must not exceed width ({self.width}): the heads share the last hidden "
                f"layer and leave the kernel regime as heads/width grows, got heads={self.heads}"
            )

    def replace(self, **changes: object) -> "ArchSpec":
        """A copy with some fields changed, checked again."""
        return dataclasses.replace(self, **changes)


def _dense(spec: ArchSpec, out_dim: int) -> tuple:
    return stax.Dense(out_dim, spec.W_std, spec.b_std, parameterization=spec.parameterization)


def _hidden_layers(spec: ArchSpec) -> list[tuple]:
    layers = []
    for _ in range(spec.depth):
        layers += [_dense(spec, spec.width), ACTIVATIONS[spec.activation]()]
    return layers


@functools.cache
def network(spec: ArchSpec) -> tuple:
    """The stax triple ``(init_fn, apply_fn, kernel_fn)`` of an architecture spec.

    Cached: one spec gives the same functions every time, so that the jitted training
    loops, keyed on ``apply_fn``, compile once per spec and shape.
    """
    return stax.serial(*_hidden_layers(spec), _dense(spec, spec.heads))


def empirical_nngp(spec: ArchSpec, params: tuple, x1: jnp.ndarray, x2: jnp.ndarray) -> jnp.ndarray:
    """NNGP kernel of a finite network given its hidden layers: ``E[f(x1) f(x2)]`` over the readout.

    With ``phi`` the last hidden layer's activations, the readout weights and bias
    drawn afresh give ``W_std^2 phi(x1) . phi(x2) / width + b_std^2``: a kernel that
    tends to the infinite-width NNGP K as ``width`` grows, with O(width^-1/2)
    fluctuations (neural-tangents' ``empirical_nngp_fn`` instead returns the single
    draw ``f(x1) f(x2)``, which does not converge with width).
    """
    phi1, phi2 = hidden_features(spec, params, x1), hidden_features(spec, params, x2)
    return spec.W_std**2 * phi1 @ phi2.T / spec.width + spec.b_std**2


def hidden_features(spec: ArchSpec, params: tuple, x: jnp.ndarray) -> jnp.ndarray:
    """The last hidden layer's activations ``phi(x)``, (n, width), of a network of ``spec``."""
    return stax.serial(*_hidden_layers(spec))[1](params[:-1], x)


def empirical_ntk(spec: ArchSpec, params: tuple, x1: jnp.ndarray, x2: jnp.ndarray) -> jnp.ndarray:
    """NTK of a finite network at ``params``: ``J(x1) J(x2)^T``, outputs traced.

    neural-tangents' ``empirical_ntk_fn`` for the network ``spec``, told that inputs
    do not interact (``vmap_axes=0``; without it, every output's Jacobian is taken with
    respect to all inputs at once: 2.3 GB of memory against 0.5 GB for 4 networks of
    width 4096 on 70 inputs, vmapped over the networks). It tends to the
    infinite-width NTK as ``width`` grows, with O(width^-1/2) fluctuations.
    """
    return nt.empirical_ntk_fn(network(spec)[1], vmap_axes=0)(x1, x2, params)


def init_params(init_fn, seed: int, members: int, input_dim: int) -> Params:
    """Parameters of ``members`` independent networks, stacked along a leading axis.

    Raises:
        ValueError: naming the argument, for a negative or non-integer ``seed``, or
            ``members`` or ``input_dim`` not a positive integer.
    """
    validate.integer("seed", seed, minimum=0)
    validate.integer("members", members)
    validate.integer("input_dim", input_dim)
    return _init_stacked(init_fn, jax.random.PRNGKey(seed), members, input_dim)


def _init_stacked(init_fn, key: jax.Array, members: int, input_dim: int) -> Params:
    # Not jitted: each new architecture would compile anew (1.5 to 3 s), while the
    # random primitives run eagerly are compiled once per shape and the draws are the same.
    keys = jax.random.split(key, members)
    return jax.vmap(lambda k: init_fn(k, (-1, input_dim))[1])(keys)


@partial(jax.jit, static_argnames=("apply_fn", "batch_size"))
def apply_members(apply_fn, params: Params, x: jax.Array, batch_size: int = 8) -> jax.Array:
    """Outputs of stacked networks on shared inputs, shape (members, n, outputs).

    Mapped over the members ``batch_size`` at a time, so that the hidden
    activations of all members on all inputs are never held at once.
    """
    return jax.lax.map(lambda p: apply_fn(p, x), params, batch_size=batch_size)


def _power_iteration(matvec, shape: tuple[int, ...], iters: int, dtype) -> jax.Array:
    def body(_, v):
        w = matvec(v)
        return w / jnp.linalg.norm(w)

    v = jax.lax.fori_loop(0, iters, body, jnp.full(shape, 1.0 / np.sqrt(np.prod(shape)), dtype))
    return jnp.vdot(v, matvec(v))


def largest_ntk_eigenvalue(
    apply_fn, params: Params, x: jax.Array, *, members: bool = False, iters: int = 100
) -> float:
    """Largest eigenvalue of the empirical NTK on ``x``, all outputs (heads) together.

    Power iteration on neural-tangents' NTK-vector product (``empirical_ntk_vp_fn``),
    so the (N * heads)^2 kernel is never formed. With ``members=True``, ``params``
    are stacked networks and the largest over the members is returned: the step
    size must be stable for every one of them.
    """
    validate.integer("iters", iters)
    return float(_largest_eigenvalue(apply_fn, params, jnp.asarray(x), members, iters))


@partial(jax.jit, static_argnames=("apply_fn", "members", "iters"))
def _largest_eigenvalue(apply_fn, params: Params, x: jax.Array, members: bool, iters: int):
    def one(p):
        out = jax.eval_shape(apply_fn, p, x)
        vp = nt.empirical_ntk_vp_fn(apply_fn, x, x, p)
        return _power_iteration(vp, out.shape, iters, out.dtype)

    return jnp.max(jax.lax.map(one, params)) if members else one(params)


def relative_ntk_change(apply_fn, params0: Params, params: Params, x: jax.Array) -> float:
    """``||Theta_T - Theta_0||_F / ||Theta_0||_F``: how far training moved the empirical NTK.

    The empirical NTKs (neural-tangents' ``empirical_ntk_fn``, outputs traced) of
    the networks ``params0`` before and ``params`` after training, on ``x``. The
    lemma assumes it is zero; in the kernel regime it falls as width^-1/2 (Lee et
    al. 2019), and it is of order one when a network learns features.
    """
    ntk_fn = nt.empirical_ntk_fn(apply_fn)
    before = np.asarray(ntk_fn(x, None, params0), np.float64)
    after = np.asarray(ntk_fn(x, None, params), np.float64)
    return float(np.linalg.norm(after - before) / np.linalg.norm(before))


def astype(dtype: str, tree: Params) -> Params:
    """Every array of ``tree`` (parameters, inputs, targets) as a JAX array of ``dtype``.

    Raises:
        ValueError: naming ``dtype``, unless it is ``"float32"`` or ``"float64"``.
    """
    validate.choice("dtype", dtype, ("float32", "float64"))
    return jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), tree)
