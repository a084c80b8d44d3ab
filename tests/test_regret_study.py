"""The regret study: notebook 08's agents, played on shared bandits, summarised and tested."""

import ast
import json

import nbformat
import numpy as np
import pytest

from rndlib import bandit, models, paths, regret_study, report


def _notebook_parameters() -> dict:
    cell = next(
        c
        for c in nbformat.read(paths.NOTEBOOKS / "08_decisions.ipynb", as_version=4).cells
        if "parameters" in c.metadata.get("tags", [])
    )
    found = {}
    for node in ast.parse(cell.source).body:
        found[node.targets[0].id] = ast.literal_eval(node.value)
    return found


def test_the_bench_plays_notebook_08s_agents_and_architecture():
    nb = _notebook_parameters()
    same = ("W_std", "b_std", "width", "heads", "noise", "reward_scale", "first", "tune_delta")
    assert {k: regret_study.BENCH[k] for k in same} == {k: nb[k] for k in same}
    assert set(nb["bonus_scales"]) <= set(regret_study.BENCH["bonus_scales"])
    assert set(regret_study.BENCH["deltas"]) == set(bandit.PUBLISHED_NEURAL_LINEAR)
    assert regret_study.BENCH["bandits"] >= 10


def test_summary_and_paired_tests_by_radius():
    assert regret_study.summary([1.0, 2.0, 6.0]) == {
        "mean": 3.0,
        "se": pytest.approx(np.std([1, 2, 6], ddof=1) / np.sqrt(3)),
        "per_seed": [1.0, 2.0, 6.0],
    }
    rng = np.random.default_rng(0)
    base = {d: rng.normal(50, 10, 6).tolist() for d in (0.5, 0.9)}
    scores = {a: base for a in regret_study.AGENTS}
    scores = scores | {"ucb_rnd": {d: (np.array(v) - 5).tolist() for d, v in base.items()}}
    found = regret_study.regret_tests(scores)
    assert set(found["ucb_rnd beats greedy"]) == {"0.9", "all"}  # one-sided tests from 0.9 only
    assert found["ucb_rnd beats greedy"]["all"]["pvalue"] == pytest.approx(2**-6)
    assert found["ucb: rnd vs ensemble bonus"]["all"]["pairs"] == 12
    assert found["ucb: rnd vs ensemble bonus"]["all"]["pvalue"] == pytest.approx(2**-11)
    # every pair 5 lower: of 2^6 sign patterns only the observed one is as negative
    assert found["ucb_rnd beats greedy"]["0.9"]["pvalue"] == pytest.approx(2**-6)
    assert found["ucb: rnd vs ensemble bonus"]["0.5"]["pvalue"] == pytest.approx(2**-5)
    assert found["thompson: bayesian_rnd vs exact"]["0.5"]["pvalue"] == 1.0  # equal scores


def test_play_all_shares_the_bandits_across_radii_and_agents():
    spec = models.ArchSpec(activation="erf", W_std=1.5, b_std=0.5, width=32)
    study = regret_study.play_all(spec, 0.3, 2, 1.0, 40, [0.5, 0.9], 1, 32, 0, 10.0)
    assert list(study.normalised) == list(regret_study.AGENTS)
    inner, outer = study.bandits[(0.5, 0)], study.bandits[(0.9, 0)]
    assert np.array_equal(inner.contexts, outer.contexts)  # one seed, one set of contexts
    for name in regret_study.AGENTS:  # the shared uniform start, then each agent's own arms
        first = [study.played[(name, d, 0)][:32] for d in (0.5, 0.9)]
        assert np.array_equal(first[0], bandit.uniform_start(40, 32, 10 * 0 + 0))
        assert np.array_equal(first[1], bandit.uniform_start(40, 32, 10 * 0 + 1))
        for d, wheel in ((0.5, inner), (0.9, outer)):
            expected = bandit.normalised(bandit.regret(wheel, study.played[(name, d, 0)]), wheel)
            assert study.normalised[name][d] == [pytest.approx(float(expected))]


def test_bench_table_quotes_every_agent_radius_and_test():
    bench = json.loads(paths.committed_results("bench_decisions").read_text())
    table = report.bench_regret_table(bench).splitlines()
    deltas = bench["setting"]["deltas"]
    assert all(f"δ = {d}" in table[2] for d in deltas)
    for name, label in report.AGENT_LABELS.items():
        row = next(r for r in table if r.startswith(f"| {label} |"))
        by = bench["normalised_regret"][name]
        assert row.count("±") == len(deltas) and f"{by[str(deltas[-1])]['mean']:.1f}" in row
    published = next(r for r in table if r.startswith("| NeuralLinear, published"))
    assert published.endswith(f"| {bandit.PUBLISHED_NEURAL_LINEAR[deltas[-1]]:.2f} |")
    for test in regret_study.TESTS:
        row = next(r for r in table if r.startswith(f"| {test} |"))
        assert row.endswith(f"({bench['regret_tests'][test]['all']['pairs']} pairs) |")


def test_plot_bench_writes_the_figure_it_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "FIGURES", tmp_path / "figures")
    monkeypatch.setattr(paths, "STAGING", tmp_path / "staging")
    bench = json.loads(paths.committed_results("bench_decisions").read_text())
    regret_study.plot_bench(bench, "bench_example")
    paths.publish()
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == [
        "bench_example.pdf",
        "bench_example.png",
    ]
