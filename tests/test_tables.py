"""The README's generated tables: each equals its table written from its results file."""

import json

import pytest

from rndlib import paths, tables


@pytest.mark.parametrize("name", sorted(tables.BLOCKS))
def test_each_page_quotes_its_generated_tables_as_recorded(name):
    """The README and the pages beside it quote each block as its results files write it."""
    assert tables.quoted(name) == tables.block(name)


def test_write_block_rewrites_only_its_block(tmp_path, monkeypatch):
    page = tmp_path / "page.md"
    first, last = tables.markers("timings")
    page.write_text(f"before\n{first}\nstale\n{last}\nafter\n")
    files, table, command, _ = tables.BLOCKS["timings"]
    monkeypatch.setitem(tables.BLOCKS, "timings", (files, table, command, page))
    tables.write_block("timings")
    text = page.read_text()
    assert text.startswith(f"before\n{first}\n| notebook |") and text.endswith(f"{last}\nafter\n")
    assert "stale" not in text and tables.quoted("timings") == tables.block("timings")


def test_bench_table_shows_every_sampler_and_marks_projections():
    """Every sampler of the study is a column; a projected run says so; a missing one is a dash."""
    scaling = json.loads(paths.committed_results("bench_scaling").read_text())
    cost = json.loads(paths.committed_results("bench").read_text())
    table = tables.bench_table(cost, scaling)
    for method in scaling["scaling"]:
        assert f" {method} " in table
    assert ("projected" in table) == any(
        r.get("projected") for runs in scaling["scaling"].values() for r in runs
    )


def test_seeds_table_counts_runs_passes_and_margins():
    record = {
        "100": {
            "02_x": {"passed": True, "min_margin": 3.0},
            "01_y": {"passed": True, "min_margin": None},
        },
        "101": {"02_x": {"passed": False, "min_margin": None, "error": "  x = 1\nValueError: e\n"}},
        "102": {"02_x": {"passed": True, "min_margin": 5.0}},
    }
    rows = tables.seeds_table(record).splitlines()
    assert rows[2] == "| 01_y | 1 of 20 | 1 | — | — | none |"
    assert rows[3] == "| 02_x | 3 of 20 | 2 | 3.00 | 4.00 | 101 |"
    assert rows[-1] == "- 02_x at seed 101: `ValueError: e`"


def test_timings_table_sums_and_marks_runs_over_budget():
    timings = {
        "quick_s": {"01_a": 38.2, "02_b": 95.0},
        "full_s": {"01_a": 104.4},
        "machine": {"system": "Linux", "processor": "x86_64", "cpu_count": 2, "python": "3.12.1"},
    }
    rows = tables.timings_table(timings).splitlines()
    assert rows[2] == "| 01_a | 38 s | 1 min 44 s |"
    assert rows[3] == "| 02_b | 1 min 35 s (over budget) | — |"
    assert rows[4] == "| all | 2 min 13 s | 1 min 44 s |"
    assert "2 CPUs and Python 3.12.1" in rows[-1]


def test_check_names_a_stale_block_and_fails(tmp_path, monkeypatch, capsys):
    page = tmp_path / "page.md"
    first, last = tables.markers("timings")
    page.write_text(f"{first}\nstale\n{last}\n")
    files, table, command, _ = tables.BLOCKS["timings"]
    monkeypatch.setattr(tables, "BLOCKS", {"timings": (files, table, command, page)})
    assert tables.main(["--check"]) == 1
    assert "block 'timings' differs" in capsys.readouterr().out
    assert tables.main([]) == 0 and tables.main(["--check"]) == 0
