"""One figure style for the suite, and a staged, deterministic ``savefig``."""

import ast
import hashlib
import itertools
import re

import IPython
import IPython.display
import matplotlib
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import PIL.Image
import seaborn as sns

from rndlib import paths

#: Metadata that would otherwise carry the matplotlib version and the time of writing.
_METADATA = {
    "png": {"Software": None},
    "pdf": {"Creator": None, "Producer": None, "CreationDate": None, "ModDate": None},
}


def use_style() -> None:
    """The suite's seaborn style: white grid, colour-blind palette, readable sizes."""
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    plt.rcParams.update(
        {
            "figure.dpi": 100,
            "figure.constrained_layout.use": True,
            "savefig.dpi": 150,
            "savefig.bbox": "tight",
        }
    )


def _literals(source: str) -> dict[str, object]:
    """The ``name = literal`` assignments of a cell's source."""
    found = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                try:
                    found[target.id] = ast.literal_eval(node.value)
                except ValueError:
                    continue
    return found


def variant_suffix() -> str:
    """``.name-value...`` for the parameters papermill set to other values than the notebook's.

    papermill runs its injected cell (headed ``# Parameters``) right after the notebook's
    ``parameters`` cell; the parameters whose injected values differ from that cell's name
    a variant run, so that its figures do not take the names of the default run's. Empty
    outside IPython, without injected parameters, or when they repeat the defaults.
    """
    shell = IPython.get_ipython()
    history = shell.user_ns.get("In", []) if shell is not None else []
    for before, cell in itertools.pairwise(history):
        if cell.startswith("# Parameters\n"):
            defaults, injected = _literals(before), _literals(cell)
            changed = {k: v for k, v in injected.items() if defaults.get(k, ...) != v}
            words = [
                re.sub(r"[^A-Za-z0-9.]+", "-", f"{k}-{v}").strip("-") for k, v in changed.items()
            ]
            suffix = "_".join(sorted(words))
            if len(suffix) > 60:
                suffix = hashlib.sha256(suffix.encode()).hexdigest()[:12]
            return f".{suffix}" if suffix else ""
    return ""


def savefig(fig: plt.Figure, name: str) -> None:
    """Stage ``figures/<name>.png`` and ``figures/<name>.pdf`` for publishing.

    A run with parameters other than the notebook's (set by papermill) adds them to the
    name (:func:`variant_suffix`), e.g. ``01_trained_vs_analytic.seed-3.png``, so that
    variant runs do not replace each other's figures.

    The files are written to the staging folder (:func:`rndlib.paths.staged`) and
    reach ``figures/`` only when the notebook publishes its outputs after its checks
    passed (:func:`rndlib.data.write_results`). They carry no timestamps: the same
    figure gives the same bytes. In a notebook (matplotlib's inline backend) the
    staged PNG is shown as the cell's figure and the figure is closed, so that it is
    drawn once for the PNG rather than once more for the notebook.
    """
    name += variant_suffix()
    files = {fmt: paths.staged(paths.FIGURES / f"{name}.{fmt}") for fmt in _METADATA}
    for fmt, metadata in _METADATA.items():
        fig.savefig(files[fmt], format=fmt, metadata=metadata)
    if "inline" in matplotlib.get_backend():
        with PIL.Image.open(files["png"]) as image:  # shown at the figure's own size on screen
            saved_dpi = plt.rcParams["savefig.dpi"]  # a number, or "figure" for fig.dpi
            width = round(image.width * fig.dpi / (fig.dpi if saved_dpi == "figure" else saved_dpi))
        IPython.display.display(IPython.display.Image(filename=files["png"], width=width))
        plt.close(fig)


def plot_band(
    ax: plt.Axes, x: np.ndarray, mean: np.ndarray, var: np.ndarray, *, label: str, color=None
) -> None:
    """A mean line and its ``mean +- 2 sd`` band (about 95% of a Gaussian)."""
    x, mean, sd = np.ravel(x), np.ravel(mean), np.sqrt(np.clip(np.ravel(var), 0.0, None))
    (line,) = ax.plot(x, mean, color=color, label=label)
    ax.fill_between(x, mean - 2 * sd, mean + 2 * sd, color=line.get_color(), alpha=0.2, lw=0)


def width_axis(ax: plt.Axes, widths) -> None:
    """A log x axis labelled at the widths themselves (``1024``, not ``10^3``), no minor labels."""
    widths = sorted({float(w) for w in np.ravel(widths)})
    ax.set_xscale("log")
    ax.set_xticks(widths, [f"{w:g}" for w in widths])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())


def plot_rate(
    ax: plt.Axes, widths: np.ndarray, errors: np.ndarray, fit, *, label: str, color=None
) -> None:
    """Errors against width on log-log axes: each repeat, their mean, and the fitted law.

    ``errors`` has shape (len(widths), repeats), or (len(widths),) for one value per
    width; ``fit`` is a :class:`rndlib.metrics.PowerLaw`.
    """
    widths = np.asarray(widths, float)
    errors = np.asarray(errors, float).reshape(len(widths), -1)
    (means,) = ax.plot(
        widths,
        errors.mean(axis=1),
        "o",
        color=color,
        label=f"{label}: slope {fit.slope:.2f} ± {fit.slope_stderr:.2f}",
    )
    if errors.shape[1] > 1:
        repeats = np.broadcast_to(widths[:, None], errors.shape)
        ax.plot(repeats.ravel(), errors.ravel(), ".", color=means.get_color(), alpha=0.25, ms=4)
    ax.plot(widths, fit(widths), color=means.get_color(), lw=1)
    ax.set(yscale="log")
    width_axis(ax, widths)
    # Label a few minor ticks where the errors span less than two decades (else one label).
    ax.yaxis.set_minor_formatter(
        matplotlib.ticker.LogFormatterSciNotation(labelOnlyBase=False, minor_thresholds=(2, 0.5))
    )


def plot_spread(
    ax: plt.Axes, x: np.ndarray, samples: np.ndarray, *, label: str, color=None
) -> None:
    """The mean over repeats (axis 0) and a band of +- 2 standard errors of that mean."""
    samples = np.asarray(samples, float)
    mean = samples.mean(axis=0)
    err = 2 * samples.std(axis=0, ddof=1) / np.sqrt(len(samples))
    (line,) = ax.plot(np.ravel(x), mean, color=color, label=label)
    ax.fill_between(np.ravel(x), mean - err, mean + err, color=line.get_color(), alpha=0.2, lw=0)


def math_label(name: str) -> str:
    """A check's name as a figure shows it: ``S_T[Theta] at 2T`` as $S_T[\\Theta]$ at $2T$."""

    def term(match: re.Match) -> str:
        inner = match.group(0).replace("Theta", r"\Theta").replace("kappa", r"\kappa")
        return "$" + inner.replace(" ", r"\,") + "$"

    name = re.sub(r"S_[Tt]\[[^\]]*\]", term, name)
    name = re.sub(r"\bsigma2 ([\d.]+)", r"$\\sigma^2 = \1$", name)
    return re.sub(r"(?<![\w$])(2T|T/2)(?![\w$])", r"$\1$", name)


def plot_pvalues(ax: plt.Axes, pvalues: dict[str, float], threshold: float, *, truth: set) -> None:
    """``-log10 p`` of each check as a horizontal bar, with the rejection threshold drawn.

    ``truth`` names the checks of the claimed answer (drawn in blue: they must stay
    left of the line); the others are decoys (drawn in red: they must cross it).
    """
    names = list(pvalues)
    scores = [-np.log10(max(pvalues[n], 1e-300)) for n in names]
    colors = ["C0" if n in truth else "C3" for n in names]
    ax.barh(range(len(names)), scores, color=colors)
    ax.axvline(-np.log10(threshold), color="k", ls="--", lw=1)
    ax.text(  # above the bars, so that it hides none of them
        -np.log10(threshold),
        -0.7,
        f" reject right of this line (p < {threshold:.2g})",
        fontsize=8,
        va="bottom",
    )
    ax.set_yticks(range(len(names)), [math_label(n) for n in names])
    ax.set_ylim(len(names) - 0.5, -1.3)  # inverted: the first check on top
    ax.set(xscale="symlog", xlabel=r"$-\log_{10}$ p-value (Bonferroni over the statistics)")
    ax.margins(x=0.1)


def plot_head_correlation(ax: plt.Axes, by_width: dict, times: list[int], title: str) -> None:
    """Prop. 5.5 against width: heads' mean squared correlation over its null mean, per step.

    ``by_width``: width -> the :func:`rndlib.checks.head_independence_over_time` check
    there. One line per recorded step ``t``; dotted, in the same colour, the null's 99%
    quantile on the same scale (1 is the null's mean: independent heads).
    """
    widths = sorted(by_width)
    for j, t in enumerate(times):
        tests = [by_width[w].tests[f"t={t} mean_head_corr2"] for w in widths]
        ratio = [v.statistic / v.null_mean for v in tests]
        ax.semilogx(widths, ratio, "o-", color=f"C{j}", label=f"t = {t}")
        ax.axhline(tests[0].q99 / tests[0].null_mean, color=f"C{j}", ls=":", lw=1)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set(xlabel="width $n$", title=title)
    ax.set_xticks(widths, [str(w) for w in widths])
    ax.minorticks_off()


def plot_bench_cost(results: dict) -> None:
    """``make bench``'s cost study: figures/bench_train_size.png and figures/bench_heads.png."""
    use_style()
    s = results["setting"]
    labels = {
        "rnd": "RND (1 network, K heads)",
        "ensemble": "ensemble (M = K networks)",
        "gp": "exact NTK-GP",
    }
    for name, key, xs, xlabel in [
        ("bench_train_size", "by_train_size", s["train_sizes"], "training points N"),
        ("bench_heads", "by_heads", s["heads"], "heads K = members M"),
    ]:
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
        for method, runs in results[key].items():
            color = f"C{list(labels).index(method)}"
            left.plot(xs, [r["wall_s"] for r in runs], "o-", color=color, label=labels[method])
            growth = [max(r["peak_rss_mb"] - r["rss_before_mb"], 0.0) for r in runs]
            right.plot(xs, growth, "o-", color=color, label=labels[method])
        left.set(xscale="log", yscale="log", xlabel=xlabel, ylabel="wall time (s, median)")
        left.set_title(f"uncertainty at {s['n_test']} test points, {results['machine']['backend']}")
        right.set(xscale="log", xlabel=xlabel, ylabel="peak memory growth (MB)")
        right.set_title("peak resident memory above the process's start")
        left.legend(fontsize=8)
        savefig(fig, name)


def plot_bench_scaling(results: dict, name: str = "bench_scaling_time_memory") -> plt.Figure:
    """``make bench``'s scaling study: wall time and peak memory against N, with crossovers."""
    use_style()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    labels = {
        "exact": "exact (Cholesky)",
        "pathwise": "pathwise CG (float64)",
        "sampler": "Bayesian-RND sampler",
        "linearised": f"sampler, linearised ({results['setting']['linearised_dtype']})",
        "pathwise_float32": "pathwise CG (float32)",
    }
    for method, runs in results["scaling"].items():
        i = list(labels).index(method)  # one colour per method, whatever the order of the file
        for projected in (False, True):
            kept = [r for r in runs if "failed" not in r and bool(r.get("projected")) == projected]
            if not kept:
                continue
            n = [r["n_train"] for r in kept]
            style = {"color": f"C{i}", "mfc": "w" if projected else f"C{i}"}
            style["ls"] = ":" if projected else "-"
            label = labels[method] + (", projected" if projected else "")
            left.plot(n, [r["wall_s"] for r in kept], "o", label=label, **style)
            right.plot(n, [r["peak_mb"] for r in kept], "o", label=label, **style)
    measured = max(r["n_train"] for runs in results["scaling"].values() for r in runs)
    for pair, n_cross in results["crossover_n"].items():
        if n_cross is not None and n_cross <= 2 * measured:  # farther ones: in the results only
            left.axvline(n_cross, color="grey", ls=":", lw=1)
            left.text(
                n_cross,
                0.03,
                pair.replace("_", " ") + " (fitted laws)",
                transform=left.get_xaxis_transform(),
                rotation=90,
                fontsize=7,
                va="bottom",
                ha="right",
            )
    s = results["setting"]
    left.set(
        xscale="log",
        yscale="log",
        xlabel="training points N",
        ylabel="wall time (s)",
        title=f"{s['draws']} joint samples at {s['n_test']} test inputs",
    )
    right.set(
        xscale="log",
        yscale="log",
        xlabel="training points N",
        ylabel="peak memory (MB)",
        title="peak resident memory of the process",
    )
    left.legend(fontsize=8)
    savefig(fig, name)
    return fig
