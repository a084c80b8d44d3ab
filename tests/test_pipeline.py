"""rndlib.pipeline's seed study: margins read from results files, runs recorded and resumed."""

import json
import math

import pytest

from rndlib import pipeline


def _report(pvalue, level=0.01, rejected=True):
    return {"pvalue": pvalue, "level": level, "rejected": rejected, "passed": not rejected}


def test_decoy_margin_reads_only_reports_under_decoy_keys():
    results = {
        "check": _report(0.5, rejected=False),  # the truth: not a decoy
        "decoys": {"a": _report(1e-5), "b": _report(1e-9)},
        "noise_decoys": {"sigma2 0.3": {"c": _report(1e-4)}},
        "power": {"a": {"value": 1.0}},
    }
    assert pipeline.decoy_margin(results) == pytest.approx(math.log10(0.01 / 1e-4))
    assert pipeline.decoy_margin({"check": _report(0.5, rejected=False)}) is None
    assert pipeline.decoy_margin({"decoys": {"a": _report(0.0)}}) == pytest.approx(298.0)


def test_seed_runs_record_passes_failures_and_resume(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "SEEDS", tmp_path / "seeds.json")
    monkeypatch.setattr(pipeline.paths, "ROOT", tmp_path)
    calls = []

    def run_notebook(notebook, *, quick, output_dir, parameters):
        calls.append((notebook.stem, parameters["seed"]))
        assert quick
        if parameters["seed"] == 2:
            raise RuntimeError("the check does not reject these wrong answers: ['x']")
        results = output_dir / "data" / "results"
        results.mkdir(parents=True)
        (results / f"{notebook.stem}.json").write_text(json.dumps({"decoys": {"x": _report(1e-6)}}))

    monkeypatch.setattr(pipeline, "run_notebook", run_notebook)
    notebook = tmp_path / "02_x.ipynb"
    record = pipeline.seed_runs([notebook], [1, 2])
    assert record["1"]["02_x"] == {"passed": True, "min_margin": pytest.approx(4.0)}
    assert (
        record["2"]["02_x"]["passed"] is False and "wrong answers" in record["2"]["02_x"]["error"]
    )
    assert json.loads((tmp_path / "seeds.json").read_text()) == record
    pipeline.seed_runs([notebook], [1, 2, 3])  # resumes: only seed 3 runs again
    assert calls == [("02_x", 1), ("02_x", 2), ("02_x", 3)]


def test_seed_range():
    assert pipeline._seed_range("100-103") == [100, 101, 102, 103]
    assert pipeline._seed_range("7") == [7]


@pytest.mark.parametrize(
    ("record", "first", "last", "table"),
    [
        (pipeline.SEEDS, pipeline.SEEDS_START, pipeline.SEEDS_END, pipeline.seeds_table),
        (pipeline.TIMINGS, pipeline.TIMINGS_START, pipeline.TIMINGS_END, pipeline.timings_table),
    ],
    ids=["seeds", "timings"],
)
def test_the_readme_quotes_its_generated_tables_as_recorded(record, first, last, table):
    readme = pipeline.README.read_text()
    block = readme[readme.index(first) : readme.index(last)]
    assert block.strip().endswith(table(json.loads(record.read_text())))


def test_seeds_table_counts_runs_passes_and_margins():
    record = {
        "100": {
            "02_x": {"passed": True, "min_margin": 3.0},
            "01_y": {"passed": True, "min_margin": None},
        },
        "101": {"02_x": {"passed": False, "min_margin": None, "error": "  x = 1\nValueError: e\n"}},
        "102": {"02_x": {"passed": True, "min_margin": 5.0}},
    }
    rows = pipeline.seeds_table(record).splitlines()
    assert rows[2] == "| 01_y | 1 of 20 | 1 | — | — | none |"
    assert rows[3] == "| 02_x | 3 of 20 | 2 | 3.00 | 4.00 | 101 |"
    assert rows[-1] == "- 02_x at seed 101: `ValueError: e`"


def test_timings_table_sums_and_marks_runs_over_budget():
    timings = {
        "quick_s": {"01_a": 38.2, "02_b": 95.0},
        "full_s": {"01_a": 104.4},
        "machine": {"system": "Linux", "processor": "x86_64", "cpu_count": 2, "python": "3.12.1"},
    }
    rows = pipeline.timings_table(timings).splitlines()
    assert rows[2] == "| 01_a | 38 s | 1 min 44 s |"
    assert rows[3] == "| 02_b | 1 min 35 s (over budget) | — |"
    assert rows[4] == "| all | 2 min 13 s | 1 min 44 s |"
    assert "2 CPUs and Python 3.12.1" in rows[-1]
