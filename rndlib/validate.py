"""Parameter checks that stop a notebook at once, naming the parameter at fault.

Notebook parameters arrive either as Python literals (the parameters cell, ``-y`` of
papermill) or as text (``-p`` of papermill passes ``True``/``False``, integers and
floats typed, everything else as a string). The list checks therefore also take a
JSON list written as text, ``-p widths "[256, 1024]"``, and say so when they meet
anything else.
"""

import json
import math
from collections.abc import Collection, Sequence
from numbers import Integral, Real

import jax
import jax.numpy as jnp
import numpy as np

#: The asymmetry :func:`square` tolerates in a symmetric matrix, relative to its largest entry.
SYMMETRY_RTOL = 1e-6


def flag(name: str, value: object) -> bool:
    """Return ``value`` if it is ``True`` or ``False``, else raise ValueError.

    A string such as ``"false"`` (``-p quick false``) is refused rather than read as
    true, which is what ``if "false":`` would do.
    """
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False (papermill: -p {name} True), got {value!r}")
    return value


def listed(name: str, value: object) -> list:
    """Return ``value`` as a list: a list or tuple, or a JSON list given as text."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(
                f"{name} must be a list, e.g. -p {name} '[1, 2]', got the text {value!r}"
            ) from None
    if not isinstance(value, list | tuple):
        raise ValueError(f"{name} must be a list, e.g. -p {name} '[1, 2]', got {value!r}")
    if not value:
        raise ValueError(f"{name} must not be empty")
    return list(value)


def integer(name: str, value: object, *, minimum: int = 1) -> int:
    """Return ``value`` if it is an integer of at least ``minimum``, else raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def integers(name: str, values: object, *, minimum: int = 1) -> list[int]:
    """Check every entry of a non-empty list (see :func:`listed`) with :func:`integer`."""
    return [integer(f"{name}[{i}]", v, minimum=minimum) for i, v in enumerate(listed(name, values))]


def indices(name: str, values: object, size: int) -> np.ndarray:
    """Distinct integer indices into ``size`` items, as an array, else raise ValueError."""
    found = integers(name, list(np.asarray(values).tolist()), minimum=0)
    if max(found) >= size or len(set(found)) != len(found):
        raise ValueError(f"{name} must hold distinct indices below {size}, got {found}")
    return np.asarray(found)


def finite(
    name: str,
    value: object,
    *,
    above: float | None = None,
    at_least: float | None = None,
    below: float | None = None,
) -> float:
    """Return ``value`` as a float if it is finite and within the bounds given."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if above is not None and value <= above:
        raise ValueError(f"{name} must be greater than {above}, got {value!r}")
    if at_least is not None and value < at_least:
        raise ValueError(f"{name} must be at least {at_least}, got {value!r}")
    if below is not None and value >= below:
        raise ValueError(f"{name} must be less than {below}, got {value!r}")
    return float(value)


def finites(name: str, values: object, **bounds: float) -> list[float]:
    """Check every entry of a non-empty list (see :func:`listed`) with :func:`finite`."""
    return [finite(f"{name}[{i}]", v, **bounds) for i, v in enumerate(listed(name, values))]


def choice(name: str, value: object, options: Collection[str]) -> str:
    """Return ``value`` if it is one of ``options``, else raise ValueError listing them."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {sorted(options)}, got {value!r}")
    return value


def array(name: str, value: object, shape: Sequence[int | str]) -> np.ndarray | jax.Array:
    """Return ``value`` as a finite float64 array of the given shape, else raise ValueError.

    Args:
        name: the argument's name, for the message.
        value: anything numpy reads as an array of numbers (a JAX array included).
        shape: the expected shape: a length, or a letter that accepts any length
            (``("n", "d")``: any 2-D array).

    A traced JAX value (inside ``jit``, ``vmap`` or ``scan``) has no numbers yet: only
    its shape is checked, and it is returned as it is.
    """
    if isinstance(value, jax.core.Tracer):
        a = value
    else:
        try:
            a = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            kind = type(value).__name__
            raise ValueError(f"{name} must be an array of numbers, got {kind}") from None
    wanted = "(" + ", ".join(str(s) for s in shape) + ")"
    if a.ndim != len(shape) or any(
        s != n for s, n in zip(shape, a.shape, strict=True) if not isinstance(s, str)
    ):
        raise ValueError(f"{name} must have shape {wanted}, got {a.shape}")
    if isinstance(a, jax.core.Tracer):
        return a
    if not np.all(np.isfinite(a)):
        bad = int(np.sum(~np.isfinite(a)))
        raise ValueError(f"{name} must be finite: {bad} of its {a.size} entries are NaN or inf")
    return a


def square(name: str, value: object, *, symmetric: bool = False) -> np.ndarray | jax.Array:
    """Return ``value`` as a finite float64 (n, n) array (see :func:`array`), else raise ValueError.

    With ``symmetric``, also refuse a matrix whose largest ``|value - value.T|`` exceeds
    :data:`SYMMETRY_RTOL` times its largest ``|value|`` (round-off of a computed covariance
    passes; a wrong matrix does not). A traced value is checked for its shape only.
    """
    a = array(name, value, ("n", "n"))
    if a.shape[0] != a.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {a.shape}")
    if symmetric and not isinstance(a, jax.core.Tracer):
        gap = float(np.max(np.abs(a - a.T), initial=0.0))
        scale = float(np.max(np.abs(a), initial=0.0))
        if gap > SYMMETRY_RTOL * scale:
            raise ValueError(
                f"{name} must be symmetric: |{name} - {name}.T| reaches {gap:.3g}, "
                f"more than {SYMMETRY_RTOL:g} of its largest entry {scale:.3g}"
            )
    return a


def all_finite(tree: object) -> bool:
    """Whether every entry of every array in a pytree (parameters, outputs) is finite.

    A pytree holding a traced value (inside ``jit``, ``vmap`` or ``scan``) has no numbers
    yet: it counts as finite.
    """
    leaves = jax.tree_util.tree_leaves(tree)
    if any(isinstance(leaf, jax.core.Tracer) for leaf in leaves):
        return True
    return all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in leaves)
