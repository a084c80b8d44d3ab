"""What the results files say, in words: the front page's verdicts and the results page.

Every number here is read from a committed results file (``data/results/<notebook>.json``)
when the page is written; nothing is typed. :func:`claims_table` is the README's table of
statements and verdicts (:data:`LESSONS` feeds its map of the notebooks), :func:`verdict`
each notebook's closing cell, and :func:`results_page` lists, notebook by notebook, every check
of a true answer and every wrong answer (decoy) it rejected, with the simulated power and
false-alarm rate. :mod:`rndlib.tables` writes them into their pages.
"""

from collections.abc import Callable
from typing import Any

LESSONS = {
    "01_ntk_regime": (
        "the NTK regime: wide networks train as their linearisation (the lemma)",
        "—",
    ),
    "02_rnd_equals_ensemble_variance": (
        "Claim 1: RND's error is the deep-ensemble variance; its χ² law; independent heads",
        "01",
    ),
    "03_bayesian_rnd_posterior": (
        "Claim 2: Bayesian RND's error is the NTK-GP posterior, with two targets and with noise",
        "01, 02",
    ),
    "04_posterior_sampling": (
        "Claim 3: multi-headed Bayesian RND samples that posterior; five tests of samples",
        "03",
    ),
    "05_beyond_the_kernel_regime": (
        "where the claims bend: width × depth, activation, optimizer, step size, heads",
        "02, 03",
    ),
    "06_real_data_uncertainty": (
        "what they buy on real data: regression and out-of-distribution detection",
        "02, 04",
    ),
    "07_sampling_at_scale": (
        "the sampler at scale: Nesterov's √ρ steps, a stopping rule, exact and pathwise rivals",
        "04",
    ),
    "08_decisions": (
        "what they buy in decisions: RND as a UCB bonus, Bayesian RND as a Thompson sampler",
        "02, 04",
    ),
}

Results = dict[str, dict[str, Any]]


def checks_in(tree: Any, name: str = "") -> list[tuple[str, dict]]:
    """Every recorded check below ``tree``: (its path, its dict with ``passed`` and ``pvalue``)."""
    if isinstance(tree, dict) and "passed" in tree and "pvalue" in tree:
        return [(name, tree)]
    if isinstance(tree, dict):
        return [c for k, v in tree.items() for c in checks_in(v, f"{name}/{k}".strip("/"))]
    return []


def _p(value: float) -> str:
    return f"{value:.2g}" if value >= 1e-300 else "< 1e-300"


def _decoys(results: dict) -> dict:
    """A results file's decoy checks, those of its noisy runs included."""
    return results.get("decoys", {}) | results.get("noise_decoys", {})


def check_summary(results: dict, truths: list[Any], decoys: list[str]) -> str:
    """``n checks pass (smallest p ...); m wrong answers rejected (largest p ...), power ...``.

    ``truths``: subtrees of ``results`` holding checks of the true answer; ``decoys``:
    names in ``results["decoys"]`` (or ``noise_decoys``) whose rejection is quoted.
    """
    passed = [c for tree in truths for _, c in checks_in(tree)]
    rejected = [_decoys(results)[name] for name in decoys]
    if not all(c["passed"] for c in passed) or any(c["passed"] for c in rejected):
        return "**fails**: a check of the truth rejects it, or a decoy escapes"
    smallest = _p(min(c["pvalue"] for c in passed))
    words = [f"{_count(len(passed), 'check')} {'pass' if len(passed) > 1 else 'passes'} "
             f"(smallest p {smallest})"]  # fmt: skip
    if rejected:
        largest = _p(max(c["pvalue"] for c in rejected))
        power = [results["power"][n]["value"] for n in decoys if n in results.get("power", {})]
        least = "" if min(power, default=1) == max(power, default=1) else "at least "
        against = f"; simulated power {least}{min(power):.3f} against each" if power else ""
        words.append(
            f"{_count(len(rejected), 'wrong answer')} rejected (largest p {largest}{against})"
        )
    return "; ".join(words)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _lemma(r: Results) -> str:
    a = r["01_ntk_regime"]
    outcomes = "; ".join(f"a step of {k}/λ_max: {v}" for k, v in a["past_limit_outcome"].items())
    return (
        f"holds: kernels reach their limits as n^{a['ntk_fitted_slope']:.2f} ± "
        f"{a['ntk_fitted_slope_stderr']:.2f} (NTK), trained networks the lemma as "
        f"n^{a['trained_fitted_slope']:.2f} ± {a['trained_fitted_slope_stderr']:.2f}; "
        f"past the stability limit 2/λ_max, {outcomes}"
    )


def _claim_1(r: Results) -> str:
    b = r["02_rnd_equals_ensemble_variance"]
    names = [n for n in b["decoys"] if n.split(":")[0] in b["check"] and "(law)" not in n]
    slope, se = b["gap_fitted_slope"]["rnd"], b["gap_fitted_slope_stderr"]["rnd"]
    return (
        f"holds: {check_summary(b, [b['check'], b['check_2d']], names)}; "
        f"finite-width gap ∝ n^{slope:.2f} ± {se:.2f}"
    )


def _chi2_law(r: Results) -> str:
    b = r["02_rnd_equals_ensemble_variance"]
    return "holds: " + check_summary(b, [b["law_check"]], ["rnd: not halved (law)"])


def _heads(r: Results) -> str:
    b = r["02_rnd_equals_ensemble_variance"]
    pooled = [v for k, v in b["head_correlation"].items() if k.startswith("largest_width")]
    return "holds: " + check_summary(b, pooled, ["heads share one target head"])


def _general_target(r: Results) -> str:
    b = r["02_rnd_equals_ensemble_variance"]
    names = [n for n in b["decoys"] if n.startswith("other target")]
    return "holds: " + check_summary(b, [b["general_target"]["S_T[kappa_u + kappa_g]"]], names)


def _claim_2(r: Results) -> str:
    c = r["03_bayesian_rnd_posterior"]
    names = [*c["decoys"], *c["noise_decoys"]]
    slope, se = c["gap_fitted_slope"], c["gap_fitted_slope_stderr"]
    return (
        f"holds: {check_summary(c, [c['check'], c['noise_check']], names)}; "
        f"finite-width gap ∝ n^{slope:.2f} ± {se:.2f}"
    )


def _claim_3(r: Results) -> str:
    d = r["04_posterior_sampling"]
    ratio = d["variance_ratio"]
    return (
        f"holds: {check_summary(d, [d['check']], list(d['decoys']))}; sample variance over "
        f"posterior variance {ratio['value']:.3f} ± {ratio['se']:.3f}"
    )


def _bends(r: Results) -> str:
    e = r["05_beyond_the_kernel_regime"]
    depths = sorted(e["width_depth"], key=lambda d: int(d.split("_")[1]))
    slopes = [e["width_depth"][d]["gap_fitted_slope"]["claim_1"] for d in depths]
    deep, layers = e["width_depth"][depths[-1]], depths[-1].split("_")[1]
    bent = deep["ratio_1"][-1] > deep["q99_1"][-1] or deep["ratio_2"][-1] > deep["q99_2"][-1]
    parts = [
        ("bends with depth" if bent else "holds at every depth measured")
        + ": Claim 1's gap falls as "
        + ", ".join(f"n^{slope:.2f}" for slope in slopes)
        + f" with {', '.join(d.split('_')[1] for d in depths)} hidden layers",
        f"at {layers} layers and width {deep['widths'][-1]} the variance ratio R is "
        f"{deep['ratio_1'][-1]:.2f} and {deep['ratio_2'][-1]:.2f} against tolerances "
        f"{deep['q99_1'][-1]:.2f} and {deep['q99_2'][-1]:.2f}",
        f"one hidden layer at width {max(e['width_depth']['depth_1']['widths'])}: "
        + check_summary(e, [e["check"]], list(e["decoys"])),
    ]
    return "; ".join(parts)


def _real_data(r: Results) -> str:
    f = r["06_real_data_uncertainty"]
    auroc = {k: f["auroc"][k]["mean"] for k in ("rnd", "ensemble", "bayes_rnd")}
    return (
        f"holds: {check_summary(f, [f['check']], list(f['decoys']))}; out-of-distribution "
        f"AUROC {auroc['rnd']:.3f} (RND), {auroc['ensemble']:.3f} (ensemble), "
        f"{auroc['bayes_rnd']:.3f} (Bayesian RND)"
    )


def _scale(r: Results) -> str:
    g = r["07_sampling_at_scale"]
    slope = g["steps_slope"]
    crossover = g["crossover_n"]["linearised_vs_pathwise_float32"]
    beyond = f"past N ≈ {crossover:,.0f}" if crossover else "at no N measured"
    return (
        f"holds: {check_summary(g, [g['check']], list(g['decoys']))}; steps grow as the "
        f"condition number of Θ to the power {slope['nesterov_linearised']:.2f} with Nesterov, "
        f"{slope['gd_width_1024']:.2f} with gradient descent; the linearised sampler overtakes "
        f"pathwise conditioning (both float32) {beyond}"
    )


#: The agents of notebook 08's regret table (uniform play is 100 by definition).
AGENT_LABELS = {
    "greedy": "greedy",
    "ucb_rnd": "UCB, RND bonus",
    "ucb_ensemble": "UCB, ensemble bonus",
    "ts_bayesian_rnd": "Thompson, Bayesian RND",
    "ts_ensemble": "Thompson, randomised priors",
    "ts_exact": "Thompson, exact NTK-GP",
    "ts_overconfident": "Thompson, overconfident (wrong answer)",
    "neural_linear": "NeuralLinear",
}


def _decisions(r: Results) -> str:
    h = r["08_decisions"]
    delta = max([d for d in h["deltas"] if d <= 0.9] or h["deltas"][:1])
    regret = {k: h["normalised_regret"][k][str(delta)]["mean"] for k in ("ts_bayesian_rnd",
              "ts_exact", "ucb_rnd", "ucb_ensemble", "greedy")}  # fmt: skip
    weak = h["regret_tests"]["thompson: bayesian_rnd vs exact"]["power"]["overconfident"]["value"]
    ensemble = h["ensemble_bonus_check"]
    return (
        f"holds at a shared history: {check_summary(h, [h['checks']], list(h['decoys']))}; "
        f"the ensemble's own bonus {'passes' if ensemble['passed'] else 'fails'} the same check "
        f"at width {h['check_width']} (p {_p(ensemble['pvalue'])}); "
        f"normalised regret at δ = {delta} (uniform = 100): Thompson "
        f"{regret['ts_bayesian_rnd']:.1f} (Bayesian RND) and {regret['ts_exact']:.1f} (exact), "
        f"UCB {regret['ucb_rnd']:.1f} (RND) and {regret['ucb_ensemble']:.1f} (ensemble), "
        f"greedy {regret['greedy']:.1f}; a paired "
        f"regret test rejects the overconfident sampler with power only {weak:.3f}"
        + _bench_regret(h)
    )


def _bench_regret(h: dict) -> str:
    """``make bench``'s pooled regret tests as notebook 08 read them, if it did."""
    if not h["bench"]["read"]:
        return ""
    tests, setting, level = h["bench"]["regret_tests"], h["bench"]["setting"], h["level"]
    pooled = {k: v["all"] for k, v in tests.items()}
    greedy = [pooled["ucb_rnd beats greedy"], pooled["ts_bayesian_rnd beats greedy"]]
    same = [pooled["ucb: rnd vs ensemble bonus"], pooled["thompson: bayesian_rnd vs exact"]]
    explored = min(float(d) for d in tests["ucb_rnd beats greedy"] if d != "all")
    return (
        f"; in `make bench` ({setting['contexts']:,} contexts, {setting['bandits']} bandits at "
        f"each of {len(setting['deltas'])} radii) the two agents beat greedy at radii from "
        f"{explored} in {sum(t['pvalue'] <= level for t in greedy)} of 2 pooled tests (p "
        f"{_p(greedy[0]['pvalue'])} and {_p(greedy[1]['pvalue'])} over {greedy[0]['pairs']} "
        f"pairs) and differ in regret from their references in "
        f"{sum(t['pvalue'] <= level for t in same)} of 2 (p {_p(same[0]['pvalue'])} and "
        f"{_p(same[1]['pvalue'])} over {same[0]['pairs']} pairs)"
    )


def _regret_rows(normalised: dict, deltas: list[float]) -> list[str]:
    """Markdown rows of normalised regret, mean ± s.e.: one per agent, a column per radius."""
    rows = [
        "| agent | " + " | ".join(f"δ = {d}" for d in deltas) + " |",
        "|---" * (len(deltas) + 1) + "|",
    ]
    for name, label in AGENT_LABELS.items():
        cells = [f"{normalised[name][str(d)]['mean']:.1f} ± {normalised[name][str(d)]['se']:.1f}"
                 for d in deltas]  # fmt: skip
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    return rows


def regret_table(results: dict) -> str:
    """The README's regret table: normalised regret (uniform = 100), mean ± s.e., by radius."""
    return "\n".join([
        f"On the wheel bandit (notebook 08: {results['contexts']:,} contexts, "
        f"{results['bandit_seeds']} bandits per radius), regret as a percentage of uniform play's:",
        "",
        *_regret_rows(results["normalised_regret"], results["deltas"]),
    ])  # fmt: skip


def bench_regret_table(bench: dict) -> str:
    """``make bench``'s regret study: the regret table at every radius, NeuralLinear's
    published values beside it, and the paired sign-flip tests' p-values by radius."""
    setting, deltas = bench["setting"], bench["setting"]["deltas"]
    published = [f"{bench['published'][str(d)]['neural_linear']:.2f}" for d in deltas]
    horizon = bench["published"][str(deltas[0])]["contexts"]
    rows = [
        f"{setting['contexts']:,} contexts, {setting['bandits']} bandits per radius, "
        f"UCB bonus scale {bench['ucb_scale']}; {bench['wall_s'] / 60:.0f} min on "
        f"{bench['machine']['cpu_count']} CPU cores. Normalised regret (uniform = 100), "
        "mean ± s.e.:",
        "",
        *_regret_rows(bench["normalised_regret"], deltas),
        f"| NeuralLinear, published ({horizon:,} contexts) | " + " | ".join(published) + " |",
        "",
        "Paired sign-flip p-values over the bandits, by radius (exact) and pooled over the radii "
        "each test covers (random sign patterns above 16 pairs); beating greedy is one-sided:",
        "",
        "| test | " + " | ".join(f"δ = {d}" for d in deltas) + " | pooled |",
        "|---" * (len(deltas) + 2) + "|",
    ]
    for name, by in sorted(bench["regret_tests"].items(), key=lambda test: "beats" in test[0]):
        cells = [f"{by[str(d)]['pvalue']:.2g}" if str(d) in by else "—" for d in deltas]
        cells.append(f"{by['all']['pvalue']:.2g} ({by['all']['pairs']} pairs)")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


#: The front page's statements: (statement, notebook, figure, verdict from the results).
CLAIMS: list[tuple[str, str, str, Callable[[Results], str]]] = [
    ("Wide networks train as their linearisation (the lemma)", "01_ntk_regime",
     "01_trained_vs_analytic", _lemma),
    ("Claim 1 (Cor. 5.4): RND's squared error, halved, is the deep-ensemble variance",
     "02_rnd_equals_ensemble_variance", "02_variance_1d", _claim_1),
    ("Thm. 5.6: with K heads, ½ε̄² has the law σ²_DE χ²_K / K",
     "02_rnd_equals_ensemble_variance", "02_chi2_law", _chi2_law),
    ("Prop. 5.5: the heads of one network are independent at every step",
     "02_rnd_equals_ensemble_variance", "02_head_independence", _heads),
    ("Prop. 5.3: a target of another architecture gives S_T[κ_u + κ_g]",
     "02_rnd_equals_ensemble_variance", "02_variance_1d", _general_target),
    ("Claim 2 (Thm. 5.8): Bayesian RND's error is the NTK-GP posterior",
     "03_bayesian_rnd_posterior", "03_width_sweep", _claim_2),
    ("Claim 3 (Cor. 5.9): multi-headed Bayesian RND samples that posterior",
     "04_posterior_sampling", "04_tests", _claim_3),
    ("Beyond the kernel regime: depth, activation, optimizer, step size, heads",
     "05_beyond_the_kernel_regime", "05_width_depth", _bends),
    ("On real data (diabetes, digits): RND against the ensemble",
     "06_real_data_uncertainty", "06_ood", _real_data),
    ("At scale: a faster sampler, still right", "07_sampling_at_scale", "07_fidelity", _scale),
    ("Claims 1 and 3 in decisions: an RND bonus and Bayesian-RND Thompson sampling decide as "
     "their limits", "08_decisions", "08_decision_checks", _decisions),
]  # fmt: skip


def verdict(stem: str, results: dict) -> str:
    """Notebook ``stem``'s statements with their verdicts on ``results``, as Markdown.

    The words of the README's table (:func:`claims_table`), written in the notebook's last
    cell from the results of the run that just finished, quick or full.

    Raises:
        ValueError: if ``stem`` is not one of :data:`LESSONS`.
    """
    if stem not in LESSONS:
        raise ValueError(f"stem must be one of {sorted(LESSONS)}, got {stem!r}")
    rows = [(s, v({stem: results})) for s, nb, _, v in CLAIMS if nb == stem]
    return "\n".join(f"- **{statement}**: {words}." for statement, words in rows)


def claims_table(*results: dict) -> str:
    """The README's table: each statement, its verdict read from the results, its figure."""
    r = dict(zip(LESSONS, results, strict=True))
    rows = ["| statement | verdict, from the committed full runs | notebook |", "|---|---|---|"]
    for statement, stem, figure, verdict in CLAIMS:
        link = f"[{stem[:2]}](notebooks/{stem}.ipynb) · [figure](figures/{figure}.png)"
        rows.append(f"| {statement} | {verdict(r)} | {link} |")
    return "\n".join(rows)


def results_page(*results: dict) -> str:
    """Every notebook's checks of the truth and its decoys, with power and false alarms."""
    out = []
    for stem, r in zip(LESSONS, results, strict=True):
        out += [f"### [{stem}](../notebooks/{stem}.ipynb)", ""]
        found = checks_in({k: v for k, v in r.items() if k not in ("decoys", "noise_decoys")})
        decoys = _decoys(r)
        if not found and not decoys:
            out += ["Its claims are fitted rates, not checks: see the notebook's conclusions.", ""]
            continue
        out += ["| check | p-value | level | outcome |", "|---|---|---|---|"]
        for name, c in found:
            level = f"{c['level']:.2g}" if "level" in c else "—"
            outcome = "passes" if c["passed"] else "rejected"
            out.append(f"| {name} | {_p(c['pvalue'])} | {level} | {outcome} |")
        out += [
            "",
            "| wrong answer (decoy) | p-value | rejected | simulated power (95% interval) |",
        ]
        out.append("|---|---|---|---|")
        for name, c in decoys.items():
            power = r.get("power", {}).get(name)
            shown = (
                f"{power['value']:.3f} ({power['low']:.3f} to {power['high']:.3f})"
                if power
                else "—"
            )
            out.append(
                f"| {name} | {_p(c['pvalue'])} | {'yes' if not c['passed'] else 'no'} | {shown} |"
            )
        alarm = r.get("false_alarm")
        if alarm:
            out += [
                "",
                f"False alarms of the checks of the truth: {alarm['value']:.4f} "
                f"({alarm['low']:.4f} to {alarm['high']:.4f}) on {alarm['sets']:,} simulated sets.",
            ]
        out.append("")
    return "\n".join(out).rstrip()
