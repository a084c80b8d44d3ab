"""One architecture spec, and the neural-tangents stax triple it stands for."""

import dataclasses
import functools
from dataclasses import dataclass

import jax.numpy as jnp
import neural_tangents as nt
from neural_tangents import stax

from rndlib import validate

ACTIVATIONS = {"erf": stax.Erf, "relu": stax.Relu}
PARAMETERIZATIONS = ("ntk", "standard")


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
    _, hidden_fn = stax.serial(*_hidden_layers(spec))[:2]
    phi1, phi2 = hidden_fn(params[:-1], x1), hidden_fn(params[:-1], x2)
    return spec.W_std**2 * phi1 @ phi2.T / spec.width + spec.b_std**2


def empirical_ntk(spec: ArchSpec, params: tuple, x1: jnp.ndarray, x2: jnp.ndarray) -> jnp.ndarray:
    """NTK of a finite network at ``params``: ``J(x1) J(x2)^T``, outputs traced.

    neural-tangents' ``empirical_ntk_fn`` for the network ``spec``, told that inputs
    do not interact (``vmap_axes=0``; without it, every output's Jacobian is taken with
    respect to all inputs at once: 2.3 GB of memory against 0.5 GB for 4 networks of
    width 4096 on 70 inputs, vmapped over the networks). It tends to the
    infinite-width NTK as ``width`` grows, with O(width^-1/2) fluctuations.
    """
    return nt.empirical_ntk_fn(network(spec)[1], vmap_axes=0)(x1, x2, params)
