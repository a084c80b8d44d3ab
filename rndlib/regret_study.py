"""The regret study of notebook 08 and of ``make bench``: every agent on the same wheel bandits.

:func:`roster` is the set of agents; :func:`bonus_scale` chooses the UCB agents' shared
bonus scale once, by the regret of their limit (the exact posterior mean plus
``c sqrt(S[kappa])``) on bandits of its own; :func:`play_all` plays every agent on the
same bandits at each radius (the bandits of one seed share their contexts and reward
draws across radii, and each agent's own randomness differs by radius); :func:`summary`
gives the mean, standard error and per-bandit values of a score.

``python -m rndlib.regret_study`` (``make bench``) plays the agents at all five radii of
Riquelme et al. (2018) with :data:`BENCH`'s sizes, writes ``data/results/bench_decisions.json``
and ``figures/bench_regret.png``, and rewrites the table of ``data/BENCHMARKS.md``;
notebook 08 reads the results file when it is there.
"""

import sys
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np

from rndlib import agents, bandit, benchmark, data, limits, models, plotting, tables, validate
from rndlib.report import AGENT_LABELS

#: The agents, in the order the tables list them.
AGENTS = (
    "uniform", "greedy", "ucb_rnd", "ucb_ensemble", "ts_bayesian_rnd", "ts_ensemble",
    "ts_exact", "ts_overconfident", "neural_linear",
)  # fmt: skip
#: Each agent's colour in the figures (uniform play, 100 by construction, is not drawn).
AGENT_COLOURS = {
    "greedy": "0.35", "ucb_rnd": "tab:blue", "ucb_ensemble": "tab:cyan",
    "ts_bayesian_rnd": "tab:red", "ts_ensemble": "tab:purple", "ts_exact": "tab:orange",
    "ts_overconfident": "tab:pink", "neural_linear": "tab:green",
}  # fmt: skip
#: The paired regret tests: name -> (agent, its reference, smallest radius, alternative).
TESTS = {
    "ucb: rnd vs ensemble bonus": ("ucb_rnd", "ucb_ensemble", 0.0, "two-sided"),
    "thompson: bayesian_rnd vs exact": ("ts_bayesian_rnd", "ts_exact", 0.0, "two-sided"),
    "ucb_rnd beats greedy": ("ucb_rnd", "greedy", 0.9, "less"),
    "ts_bayesian_rnd beats greedy": ("ts_bayesian_rnd", "greedy", 0.9, "less"),
}
#: ``make bench``'s study: notebook 08's architecture and agents (a test holds them equal)
#: at every radius of Riquelme et al., with more bandits and contexts.
BENCH = {
    "W_std": 1.5, "b_std": 0.5, "width": 128, "heads": 8, "noise": 0.3, "reward_scale": 10.0,
    "first": 32, "seed": 0, "contexts": 2000, "deltas": [0.5, 0.7, 0.9, 0.95, 0.99],
    "bandits": 10, "tune_delta": 0.9, "bonus_scales": [0.5, 1.0, 2.0, 4.0, 8.0], "tune_bandits": 4,
}  # fmt: skip


class Study(NamedTuple):
    """What :func:`play_all` played: by agent and radius, one entry per bandit."""

    curves: dict[str, dict[float, list[np.ndarray]]]  # cumulative expected regret, (contexts,)
    normalised: dict[str, dict[float, list[float]]]  # final regret, uniform play = 100
    played: dict[tuple[str, float, int], np.ndarray]  # (agent, radius, bandit) -> arms
    bandits: dict[tuple[float, int], bandit.Wheel]  # (radius, bandit) -> the bandit
    seconds: dict[str, float]  # each agent's time over all its bandits


def grams(spec: models.ArchSpec, contexts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The NTK and NNGP Gram matrices of ``contexts`` rows [x, e_a] (:func:`limits.gram`)."""
    return limits.gram(spec, contexts, "ntk"), limits.gram(spec, contexts, "nngp")


def roster(
    spec: models.ArchSpec, noise: float, heads: int, ucb_scale: float, ntk: np.ndarray
) -> dict[str, bandit.Agent]:
    """The agents of :data:`AGENTS`; the exact ones condition on the Gram matrix ``ntk``."""
    ucb = dict(scale=ucb_scale, heads=heads)
    return {
        "uniform": agents.uniform(),
        "greedy": agents.greedy(spec, noise),
        "ucb_rnd": agents.ucb(spec, noise, bonus="rnd", **ucb),
        "ucb_ensemble": agents.ucb(spec, noise, bonus="ensemble", **ucb),
        "ts_bayesian_rnd": agents.thompson(spec, noise, sampler="bayesian_rnd", heads=heads),
        "ts_ensemble": agents.thompson(spec, noise, sampler="ensemble", heads=heads),
        "ts_exact": agents.thompson(spec, noise, sampler="exact", heads=heads, ntk=ntk),
        "ts_overconfident": agents.thompson(
            spec, noise, sampler="overconfident", heads=heads, ntk=ntk
        ),
        "neural_linear": agents.neural_linear(spec, noise),
    }


def bonus_scale(
    spec: models.ArchSpec,
    noise: float,
    heads: int,
    scales: Sequence[float],
    contexts: int,
    delta: float,
    bandits: int,
    first: int,
    seed: int,
    reward_scale: float,
) -> tuple[float, dict[float, list[float]]]:
    """The UCB bonus scale of least mean normalised regret, and each scale's regrets.

    Each of ``bandits`` bandits (seeds ``seed + 1000`` on, not played elsewhere) is played
    by the limit agent (:func:`rndlib.agents.ucb` with ``bonus="exact"``) at every scale.
    """
    regrets = {float(c): [] for c in validate.finites("scales", scales)}
    for b in range(validate.integer("bandits", bandits, minimum=1)):
        tune = bandit.wheel(contexts, delta, seed + 1000 + b)
        pair = grams(spec, tune.contexts)
        for c in regrets:
            agent = agents.ucb(spec, noise, bonus="exact", scale=c, heads=heads, grams=pair)
            arms = bandit.play(agent, tune, first, seed + 1000 + b, reward_scale)
            regrets[c].append(float(bandit.normalised(bandit.regret(tune, arms), tune)))
    return min(regrets, key=lambda c: np.mean(regrets[c])), regrets


def play_all(
    spec: models.ArchSpec,
    noise: float,
    heads: int,
    ucb_scale: float,
    contexts: int,
    deltas: Sequence[float],
    bandits: int,
    first: int,
    seed: int,
    reward_scale: float,
    log: Callable[[str], None] | None = None,
) -> Study:
    """Every agent of :func:`roster` on ``bandits`` bandits (seeds ``seed`` on) per radius.

    On bandit ``b`` at the ``i``-th radius every agent plays with the seed
    ``10 (seed + b) + i``. ``log``, if given, gets a line after each bandit.
    """

    def by_radius() -> dict:
        return {a: {d: [] for d in deltas} for a in AGENTS}

    study = Study(by_radius(), by_radius(), {}, {}, dict.fromkeys(AGENTS, 0.0))
    for b in range(validate.integer("bandits", bandits, minimum=1)):
        ntk = grams(spec, bandit.wheel(contexts, deltas[0], seed + b).contexts)[0]
        for i, delta in enumerate(deltas):
            began = time.perf_counter()
            wheel = study.bandits[(delta, b)] = bandit.wheel(contexts, delta, seed + b)
            for name, agent in roster(spec, noise, heads, ucb_scale, ntk).items():
                start = time.perf_counter()
                arms = bandit.play(agent, wheel, first, 10 * (seed + b) + i, reward_scale)
                study.seconds[name] += time.perf_counter() - start
                study.played[(name, delta, b)] = arms
                study.curves[name][delta].append(bandit.regret(wheel, arms))
                study.normalised[name][delta].append(
                    float(bandit.normalised(study.curves[name][delta][-1], wheel))
                )
            if log:
                log(f"bandit {b}, delta = {delta}: {time.perf_counter() - began:.0f} s")
    return study


def summary(values: Sequence[float]) -> dict:
    """``{"mean", "se", "per_seed"}`` of one score over bandits (s.e.: sample sd / sqrt n)."""
    v = np.asarray(values, float)
    return {"mean": float(v.mean()), "se": float(v.std(ddof=1) / np.sqrt(len(v))),
            "per_seed": v.tolist()}  # fmt: skip


def regret_tests(normalised: dict[str, dict[float, list[float]]]) -> dict[str, dict]:
    """The :data:`TESTS` at each radius and pooled over the radii each covers (``"all"``):
    sign-flip p-values over the paired bandits (:func:`rndlib.bandit.sign_flip_pvalue`)."""
    found = {}
    for name, (a, b, smallest, alternative) in TESTS.items():
        radii = [d for d in normalised[a] if d >= smallest]
        diffs = {str(d): np.subtract(normalised[a][d], normalised[b][d]) for d in radii}
        diffs["all"] = np.concatenate(list(diffs.values()))
        found[name] = {
            key: {"mean_difference": float(diff.mean()), "pairs": len(diff),
                  "pvalue": float(bandit.sign_flip_pvalue(diff, alternative))}
            for key, diff in diffs.items()
        }  # fmt: skip
    return found


def run_bench(setting: dict = BENCH, log: Callable[[str], None] = print) -> dict:
    """``make bench``'s regret study at ``setting`` (:data:`BENCH`): the results file's dict."""
    start = time.perf_counter()
    spec = models.ArchSpec(activation="erf", W_std=setting["W_std"], b_std=setting["b_std"],
                           width=setting["width"])  # fmt: skip
    common = dict(spec=spec, noise=setting["noise"], heads=setting["heads"],
                  contexts=setting["contexts"], first=setting["first"], seed=setting["seed"],
                  reward_scale=setting["reward_scale"])  # fmt: skip
    scale, tuned = bonus_scale(scales=setting["bonus_scales"], delta=setting["tune_delta"],
                               bandits=setting["tune_bandits"], **common)  # fmt: skip
    log(f"bonus scale {scale}: " + ", ".join(f"{c}: {np.mean(r):.1f}" for c, r in tuned.items()))
    study = play_all(ucb_scale=scale, deltas=setting["deltas"], bandits=setting["bandits"],
                     log=log, **common)  # fmt: skip
    runs = setting["bandits"] * len(setting["deltas"])
    ours = {d: summary(study.normalised["neural_linear"][d]) for d in setting["deltas"]}
    return {
        "machine": benchmark.machine(),
        "setting": setting,
        "ucb_scale": scale,
        "tune_regret": {str(c): summary(r) for c, r in tuned.items()},
        "normalised_regret": {
            a: {str(d): summary(v) for d, v in by.items()} for a, by in study.normalised.items()
        },
        "seconds_per_bandit": {a: s / runs for a, s in study.seconds.items()},
        "regret_tests": regret_tests(study.normalised),
        "published": {
            str(d): {
                "neural_linear": v,
                "contexts": bandit.PUBLISHED_CONTEXTS,
                "ours": ours[d]["mean"],
                "ours_contexts": setting["contexts"],
            }
            for d, v in bandit.PUBLISHED_NEURAL_LINEAR.items()
        },
        "wall_s": time.perf_counter() - start,
    }


def plot_bench(results: dict, name: str = "bench_regret") -> None:
    """``figures/<name>``: the bench's normalised regret by radius, each agent's mean ± s.e.,
    with NeuralLinear's published values."""
    plotting.use_style()
    fig, ax = plt.subplots(figsize=(8, 4.6), layout="constrained")
    deltas = results["setting"]["deltas"]
    x = np.arange(len(deltas))
    names = [a for a in AGENTS if a != "uniform"]
    for k, agent in enumerate(names):
        by = results["normalised_regret"][agent]
        mean, se = (np.array([by[str(d)][key] for d in deltas]) for key in ("mean", "se"))
        shift = (k - (len(names) - 1) / 2) * 0.07
        ax.errorbar(x + shift, mean, se, fmt="o", ms=3, lw=1, capsize=0, label=AGENT_LABELS[agent],
                    color=AGENT_COLOURS[agent])  # fmt: skip
    published = [results["published"][str(d)]["neural_linear"] for d in deltas]
    ax.plot(x, published, "x", color="k", label=f"NeuralLinear, published "
            f"({bandit.PUBLISHED_CONTEXTS:,} contexts)")  # fmt: skip
    ax.set(xticks=x, xticklabels=[f"{d}" for d in deltas], yscale="log", xlabel="radius $\\delta$",
           ylabel="normalised regret, mean ± s.e.\n(uniform play = 100)",
           title=f"{results['setting']['contexts']:,} contexts, "
                 f"{results['setting']['bandits']} bandits per radius")  # fmt: skip
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=3, fontsize=7)
    plotting.savefig(fig, name)
    plt.close(fig)


def main() -> int:
    """``make bench``'s regret study: results, figure and the table of data/BENCHMARKS.md."""
    results = run_bench()
    plot_bench(results)
    print(data.write_results("bench_decisions", results))
    tables.write_block("bench_decisions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
