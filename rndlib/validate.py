"""Parameter checks that stop a notebook at once, naming the parameter at fault."""

import math
from collections.abc import Collection, Iterable
from numbers import Integral, Real


def positive_int(name: str, value: object, *, minimum: int = 1) -> int:
    """Return ``value`` if it is an integer of at least ``minimum``, else raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def positive_ints(name: str, values: Iterable[object], *, minimum: int = 1) -> list[int]:
    """Check every entry of a non-empty list with :func:`positive_int`."""
    values = list(values)
    if not values:
        raise ValueError(f"{name} must not be empty")
    return [positive_int(f"{name}[{i}]", v, minimum=minimum) for i, v in enumerate(values)]


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


def choice(name: str, value: object, options: Collection[str]) -> str:
    """Return ``value`` if it is one of ``options``, else raise ValueError listing them."""
    if value not in options:
        raise ValueError(f"{name} must be one of {sorted(options)}, got {value!r}")
    return str(value)
