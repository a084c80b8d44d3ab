"""One architecture spec, and the neural-tangents stax triple it stands for."""

import dataclasses
from dataclasses import dataclass

from neural_tangents import stax

from rndlib import validate

ACTIVATIONS = {"erf": stax.Erf, "relu": stax.Relu}
PARAMETERIZATIONS = ("ntk", "standard")


@dataclass(frozen=True)
class ArchSpec:
    """A fully connected network: ``depth`` hidden layers of ``width`` units, ``heads`` outputs.

    Every layer is ``stax.Dense(., W_std, b_std, parameterization)``; in the NTK
    parameterization the infinite-width NNGP kernel K and NTK Theta of THEORY.md
    are the ``nngp`` and ``ntk`` of the spec's ``kernel_fn``, the same for every head.

    Raises:
        ValueError: naming the argument, for a non-positive depth, width or number of
            heads, more heads than the width, an unknown activation or
            parameterization, or a weight or bias scale that is not finite.
    """

    depth: int = 2
    width: int = 512
    activation: str = "relu"
    W_std: float = 1.5
    b_std: float = 0.5
    parameterization: str = "ntk"
    heads: int = 1

    def __post_init__(self) -> None:
        validate.positive_int("depth", self.depth)
        validate.positive_int("width", self.width)
        validate.choice("activation", self.activation, ACTIVATIONS)
        validate.finite("W_std", self.W_std, above=0.0)
        validate.finite("b_std", self.b_std, at_least=0.0)
        validate.choice("parameterization", self.parameterization, PARAMETERIZATIONS)
        validate.positive_int("heads", self.heads)
        if self.heads > self.width:
            raise ValueError(
                f"heads must not exceed width ({self.width}): the heads share the last hidden "
                f"layer and leave the kernel regime as heads/width grows, got heads={self.heads}"
            )

    def replace(self, **changes: object) -> "ArchSpec":
        """A copy with some fields changed, checked again."""
        return dataclasses.replace(self, **changes)


def network(spec: ArchSpec) -> tuple:
    """The stax triple ``(init_fn, apply_fn, kernel_fn)`` of an architecture spec."""
    dense = {"W_std": spec.W_std, "b_std": spec.b_std, "parameterization": spec.parameterization}
    hidden = []
    for _ in range(spec.depth):
        hidden += [stax.Dense(spec.width, **dense), ACTIVATIONS[spec.activation]()]
    return stax.serial(*hidden, stax.Dense(spec.heads, **dense))
