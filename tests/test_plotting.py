"""savefig: PNG and PDF, byte-identical for the same figure."""

import matplotlib.pyplot as plt

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
