"""savefig: PNG and PDF, byte-identical for the same figure."""

import matplotlib.pyplot as plt
import numpy as np
import PIL.Image
import pytest

from rndlib import paths, plotting


def draw():
    plotting.use_style()
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1, 2], [1, 0, 1], label="a line")
    ax.legend()
    return fig


def test_savefig_writes_both_formats_deterministically(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "FIGURES", tmp_path / "figures")
    monkeypatch.setattr(paths, "STAGING", tmp_path / "staging")
    plotting.savefig(draw(), "example")
    paths.publish()
    first = {p.name: p.read_bytes() for p in (tmp_path / "figures").iterdir()}
    plotting.savefig(draw(), "example")
    paths.publish()
    second = {p.name: p.read_bytes() for p in (tmp_path / "figures").iterdir()}
    assert sorted(first) == ["example.pdf", "example.png"]
    assert first == second  # no temporary files left, no timestamps inside
    assert b"CreationDate" not in first["example.pdf"]
    plt.close("all")


def test_head_correlation_plots_each_step_as_a_ratio_to_its_null():
    from rndlib import checks

    rng = np.random.default_rng(0)
    cov = np.eye(6)
    by_width = {
        w: checks.head_independence_over_time(
            rng.standard_normal((4, 3, 6, 3)), {0: cov, 2: cov}, level=0.01
        )
        for w in (64, 256)
    }
    _, ax = plt.subplots()
    plotting.plot_head_correlation(ax, by_width, [0, 2], "title")
    solid = [line for line in ax.get_lines() if line.get_linestyle() == "-"]
    assert [line.get_label() for line in solid[:2]] == ["t = 0", "t = 2"]
    test = by_width[256].tests["t=2 mean_head_corr2"]
    assert solid[1].get_ydata()[1] == test.statistic / test.null_mean
    plt.close("all")


@pytest.mark.parametrize("saved_dpi", [150, "figure"])
def test_savefig_in_a_notebook_shows_the_saved_png_and_closes_the_figure(
    tmp_path, monkeypatch, saved_dpi
):
    monkeypatch.setattr(paths, "FIGURES", tmp_path / "figures")
    monkeypatch.setattr(paths, "STAGING", tmp_path / "staging")
    monkeypatch.setattr(plotting.matplotlib, "get_backend", lambda: "inline")
    shown = []
    monkeypatch.setattr(plotting.IPython.display, "display", shown.append)
    fig = draw()
    monkeypatch.setitem(plt.rcParams, "savefig.dpi", saved_dpi)  # "figure": matplotlib's default
    plotting.savefig(fig, "example")
    assert not plt.fignum_exists(fig.number)  # the notebook will not draw it again
    (image,) = shown
    staged_png = paths.staged(tmp_path / "figures" / "example.png")
    assert image.data == staged_png.read_bytes()
    assert 0 < image.width < fig.get_figwidth() * fig.dpi * 1.1  # the figure's size on screen
    paths.publish()  # leaves no staged file behind for other tests


class _Shell:
    def __init__(self, history):
        self.user_ns = {"In": history}


PARAMETERS = "seed = 0\nquick = False  # the CI smoke run\nwidths = [512, 2048]\nname = 'relu'\n"


@pytest.mark.parametrize(
    ("injected", "suffix"),
    [
        (None, ""),  # not run by papermill
        ("# Parameters\nseed = 0\n", ""),  # the defaults again
        ("# Parameters\nquick = True\nseed = 3\n", ".quick-True_seed-3"),
        ("# Parameters\nwidths = [512, 8192]\nname = 'erf'\n", ".name-erf_widths-512-8192"),
    ],
)
def test_variant_runs_name_their_figures_after_the_parameters_they_changed(
    tmp_path, monkeypatch, injected, suffix
):
    history = ["", PARAMETERS] + ([injected] if injected else []) + ["x = 1"]
    monkeypatch.setattr(plotting.IPython, "get_ipython", lambda: _Shell(history))
    assert plotting.variant_suffix() == suffix
    monkeypatch.setattr(paths, "FIGURES", tmp_path / "figures")
    monkeypatch.setattr(paths, "STAGING", tmp_path / "staging")
    plotting.savefig(draw(), "example")
    assert {p.name for p in paths.publish()} == {f"example{suffix}.{f}" for f in ("png", "pdf")}
    plt.close("all")


def test_a_long_variant_is_named_by_a_hash(monkeypatch):
    injected = "# Parameters\nwidths = [" + ", ".join(["16384"] * 20) + "]\n"
    monkeypatch.setattr(plotting.IPython, "get_ipython", lambda: _Shell([PARAMETERS, injected]))
    suffix = plotting.variant_suffix()
    assert len(suffix) == 13 and suffix.startswith(".")


#: The widest figure that reads at GitHub's width (about 900 px): 12 in at 150 dpi.
MAX_WIDTH_PX = 1800


def test_every_committed_figure_reads_at_githubs_width():
    """A figure wider than 12 in is shown at under half its size: its labels do not read."""
    wide = {}
    for png in sorted((paths.ROOT / "figures").glob("*.png")):
        with PIL.Image.open(png) as opened:
            if opened.width > MAX_WIDTH_PX:
                wide[png.name] = opened.width
    assert not wide, f"wider than {MAX_WIDTH_PX} px: {wide}"


def test_check_names_read_as_mathematics_in_figures():
    assert plotting.math_label("he: S_T[Theta] at 2T") == r"he: $S_T[\Theta]$ at $2T$"
    assert (
        plotting.math_label("other target: S_T[2 kappa_u]") == r"other target: $S_T[2\,\kappa_u]$"
    )
    assert plotting.math_label("sigma2 0.3: NNGP posterior") == r"$\sigma^2 = 0.3$: NNGP posterior"
    assert plotting.math_label("rnd: not halved") == "rnd: not halved"
