"""rndlib.pipeline's seed study: margins read from results files, runs recorded and resumed."""

import json
import math

import pytest

from rndlib import paths, pipeline


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


def test_notebooks_are_named_by_path_or_number(capsys):
    first = sorted(paths.NOTEBOOKS.glob("01_*.ipynb"))[0]
    assert pipeline._notebook("01") == first == pipeline._notebook(str(first))
    with pytest.raises(SystemExit):
        pipeline.main(["--quick", "--output", "build/x", "0"])  # every notebook starts with 0
    assert "no single notebook matches '0'; choose from 01_ntk_regime" in capsys.readouterr().err
