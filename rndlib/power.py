"""How often a check rejects: its power against each decoy and its false-alarm rate.

A check (:mod:`rndlib.checks`) run once, on the numbers of one run, says whether that run
passed. Whether the check *can* tell the claim from a plausible wrong answer is a
property of the check at the run's size, and it is simulated: ``sets`` times, exact
Gaussian draws of the size and with the input correlations of the run are drawn under
the truth, summarised as the run summarises its networks, and checked against the decoy's
claim at the notebook's per-check level. The fraction rejected is the check's power
against that decoy; against the true claim, it is its false-alarm rate. Each rate comes
with its exact (Clopper-Pearson) 95% binomial interval.

The checks cache their nulls by covariance and size (:mod:`rndlib.nulls`), so that a
simulated set costs the statistics of one run, not a new null.
"""

from collections.abc import Callable, Mapping
from typing import NamedTuple

import numpy as np
import scipy.stats

from rndlib import nulls, validate

#: The power every check must have against each of its decoys.
MINIMUM_POWER = 0.999


class Rate(NamedTuple):
    """A simulated rejection rate, its exact 95% binomial interval and the number of sets."""

    value: float
    low: float
    high: float
    sets: int

    def report(self) -> dict:
        """A JSON-ready dict: ``value``, ``low``, ``high``, ``sets``."""
        return self._asdict()


def rejection_rate(check: Callable[[np.ndarray], nulls.Check], simulated: np.ndarray) -> Rate:
    """The fraction of simulated sets that ``check`` rejects, with its 95% interval.

    Args:
        check: returns the check (a :class:`rndlib.nulls.Check`) of one simulated set.
        simulated: the sets, stacked on the first axis (at least 100 of them), drawn at
            once by :func:`gaussian_draws` or :func:`variance_estimates`.
    """
    validate.integer("simulated sets", len(simulated), minimum=100)
    return rate(np.array([not check(one).passed for one in simulated]))


def rate(rejected: np.ndarray) -> Rate:
    """The fraction of simulated sets rejected, with its exact 95% binomial interval.

    Args:
        rejected: (sets,) booleans, one per simulated set (at least 100 of them).
    """
    rejected = np.asarray(rejected)
    if rejected.ndim != 1 or rejected.dtype != bool:
        raise ValueError(
            f"rejected must be a 1-D boolean array, got {rejected.dtype} {rejected.shape}"
        )
    sets = validate.integer("simulated sets", len(rejected), minimum=100)
    interval = scipy.stats.binomtest(int(rejected.sum()), sets).proportion_ci(0.95, method="exact")
    return Rate(float(rejected.mean()), float(interval.low), float(interval.high), sets)


def gaussian_draws(cov: np.ndarray, shape: tuple[int, ...], rng: np.random.Generator):
    """Exact draws of N(0, cov), shape ``(*shape, n)``, from ``rng``.

    They go through the low-rank root of the spectrum that the checks whiten with
    (:func:`rndlib.nulls.square_root`, cached per covariance), so that a simulated data
    set costs one product; :func:`rndlib.conditioning.gaussian_samples` draws the rest.
    """
    root = nulls.square_root(cov)
    return rng.standard_normal((*shape, root.shape[1])) @ root.T


def variance_estimates(
    cov: np.ndarray, shape: tuple[int, ...], dof: int, rng: np.random.Generator
) -> np.ndarray:
    """Means of ``dof`` squared draws of N(0, cov) per input, shape ``(*shape, n)``.

    The law of an RND network's mean squared error over ``dof`` heads, and of an
    ensemble's sample variance with ``dof`` degrees of freedom: ``diag(cov) chi^2(dof) / dof``
    at each input, with the inputs' correlations.
    """
    dof = validate.integer("dof", dof)
    return np.mean(gaussian_draws(cov, (*shape, dof), rng) ** 2, axis=-2)


def within_level(rate: Rate, level: float) -> bool:
    """Whether a false-alarm rate is consistent with ``level``: its interval reaches it."""
    return rate.low <= level


def report(power_of: Mapping[str, Rate], false_alarms: Mapping[str, Rate]) -> str:
    """The rates as the checks cells print them: power against each decoy, then false alarms.

    One line per rate, with its 95% interval.
    """
    width = max(map(len, [*power_of, *false_alarms]), default=0)
    return "\n".join(
        f"{kind:12s} {name:{width}s} {r.value:.4f} (95%: {r.low:.4f} to {r.high:.4f})"
        for kind, rates in (("power", power_of), ("false alarms", false_alarms))
        for name, r in rates.items()
    )


def shortfalls(
    power_of: Mapping[str, Rate], false_alarms: Mapping[str, Rate], level: float
) -> list[str]:
    """What the rates fail of the suite's standard; empty when they meet it.

    Each decoy must be rejected with power at least :data:`MINIMUM_POWER`, and each check
    of the truth must raise false alarms within ``level`` (:func:`within_level`).
    """
    level = validate.finite("level", level, above=0.0, below=1.0)
    if not power_of or not false_alarms:
        raise ValueError("power_of and false_alarms must each hold at least one rate")
    weak = [
        f"power {r.value:.4f} below {MINIMUM_POWER} against {name}"
        for name, r in power_of.items()
        if r.value < MINIMUM_POWER
    ]
    loud = [
        f"false alarms {r.value:.4f} (from {r.low:.4f}) above the level {level:.2g}: {name}"
        for name, r in false_alarms.items()
        if not within_level(r, level)
    ]
    return weak + loud
