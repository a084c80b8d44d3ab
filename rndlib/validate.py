"""Parameter checks that stop a notebook at once, naming the parameter at fault.

Notebook parameters arrive either as Python literals (the parameters cell, ``-y`` of
papermill) or as text (``-p`` of papermill passes ``True``/``False``, integers and
floats typed, everything else as a string). The list checks therefore also take a
JSON list written as text, ``-p widths "[256, 1024]"``, and say so when they meet
anything else.
"""

import json
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from functools import partial
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


def increasing(name: str, values: object, *, at_least: int = 1) -> list[int]:
    """Check ``values`` with :func:`integers`; also refuse fewer than ``at_least`` or a repeat."""
    found = integers(name, values)
    if len(found) < at_least or found != sorted(set(found)):
        raise ValueError(f"{name} must be {at_least} or more increasing integers, got {found}")
    return found


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


#: A parameter's check: ``rule(name, value)`` returns the value as used, or raises ValueError.
Rule = Callable[[str, object], object]
_count, _counts = partial(integer, minimum=2), partial(integers, minimum=2)
#: The notebooks' parameters that :class:`rndlib.models.ArchSpec` checks when the spec is built.
ARCHITECTURE = frozenset(
    {"activation", "W_std", "b_std", "target_activation", "target_W_std", "target_b_std"}
)
#: The check of every other notebook parameter, by name (one name, one meaning, every notebook).
RULES: dict[str, Rule] = {
    "seed": partial(integer, minimum=0),
    "quick": flag,
    "check_seeds": partial(integers, minimum=0),
    **dict.fromkeys(
        (
            "depth width width_2d time_width heads_width cost_width compare_width law_width "
            "step_width long_width noise_width steps long_steps optimizer_steps "
            "record_every batch_size digits_train digits_test digits_steps sweep_heads "
            "compare_max_steps first check_history check_contexts check_width"
        ).split(),
        integer,
    ),
    **dict.fromkeys(
        (
            "heads n_seeds n_networks sweep_seeds head_seeds standard_seeds n_splits "
            "sweep_n n_train n_test contexts bandit_seeds tune_bandits check_histories "
            "check_heads pool_bandits"
        ).split(),
        _count,
    ),
    **dict.fromkeys(
        (
            "widths depths wide_widths variant_widths optimizer_widths sweep_widths "
            "time_steps cost_heads"
        ).split(),
        integers,
    ),
    **dict.fromkeys(("law_heads", "cost_sizes", "scaling_sizes"), _counts),
    "heads_sweep": increasing,
    **dict.fromkeys(("power_sets", "null_sets"), partial(integer, minimum=100)),
    "null_repeats": partial(integer, minimum=20),
    "ratio_images": partial(integer, minimum=10),
    **dict.fromkeys(
        ("level", "fall_level", "test_fraction", "heads_per_width", "interval", "tol"),
        partial(finite, above=0.0, below=1.0),
    ),
    **dict.fromkeys(("lr_fraction", "sweep_fraction"), partial(finite, above=0.0, below=2.0)),
    "lr_fractions": partial(finites, above=0.0, below=2.0),
    "levels": partial(finites, above=0.0, below=1.0),
    "noise": partial(finite, above=0.0),
    "reward_scale": partial(finite, above=0.0),
    **dict.fromkeys(("tune_delta", "check_delta"), partial(finite, above=0.0, below=1.0)),
    "deltas": partial(finites, above=0.0, below=1.0),
    "bonus_scales": partial(finites, at_least=0.0),
    **dict.fromkeys(("noise_levels", "adam_lrs"), partial(finites, above=0.0)),
    **dict.fromkeys(("rhos", "compare_rhos"), partial(finites, above=1.0)),
    "optimizer": partial(choice, options=("nesterov", "gd")),
}


def parameters(namespace: Mapping[str, object], **rules: Rule) -> dict[str, object]:
    """Check every notebook parameter in ``namespace`` at once; return them as checked.

    Each name of :data:`RULES` found in ``namespace`` (a notebook's ``globals()``) is checked
    with its rule, or with the rule passed here under its name (a notebook's own, stricter
    one); the values come back as used (lists read from papermill's JSON text, integers as
    ``int``). Then the parameters that constrain each other are checked together.

    Raises:
        ValueError: naming the first parameter at fault.
    """
    rules = RULES | rules
    checked = {
        name: rule(name, namespace[name]) for name, rule in rules.items() if name in namespace
    }
    _check_together(checked)
    return checked


def _check_together(p: Mapping[str, object]) -> None:
    """The relations between parameters that :func:`parameters` checks."""
    if {"widths", "wide_widths"} <= p.keys() and max(p["widths"]) >= min(p["wide_widths"]):
        raise ValueError(f"wide_widths must all exceed widths, got {p['wide_widths']}")
    if {"variant_widths", "widths", "wide_widths"} <= p.keys() and not set(
        p["variant_widths"]
    ) <= set(p["widths"] + p["wide_widths"]):
        raise ValueError(
            f"variant_widths must be among widths + wide_widths, got {p['variant_widths']}"
        )
    if {"heads", "heads_per_width", "width"} <= p.keys() and p["heads"] > p["heads_per_width"] * p[
        "width"
    ]:
        raise ValueError(
            f"heads={p['heads']} is more than heads_per_width * width = "
            f"{p['heads_per_width'] * p['width']:g}: RND's heads would leave the kernel regime "
            "(notebook 05); raise width"
        )
    if {"first", "contexts"} <= p.keys() and p["first"] >= p["contexts"]:
        raise ValueError(f"first must be below contexts ({p['contexts']}), got {p['first']}")
    if "rhos" in p and len(p["rhos"]) < 3:
        raise ValueError(
            f"rhos must hold at least 3 condition numbers to fit a slope, got {p['rhos']}"
        )
    if {"heads", "n_seeds"} <= p.keys():
        draws = p["heads"] * p["n_seeds"]
        if draws < 16:
            raise ValueError(f"heads x n_seeds must be at least 16 samples, got {draws}")
        for m in p.get("law_heads", ()):
            if draws % m or draws // m < 2:
                raise ValueError(
                    f"law_heads must divide heads x n_seeds = {draws} at least twice, got {m}"
                )
