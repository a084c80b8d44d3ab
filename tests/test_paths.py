"""Outputs: staged until published, written atomically, and never in place by default."""

import os
import subprocess
import sys

import matplotlib.pyplot as plt
import nbformat
import pytest

from rndlib import data, paths, pipeline, plotting


@pytest.fixture
def output(tmp_path, monkeypatch):
    """Send outputs and the staging folder to a scratch folder."""
    monkeypatch.setattr(paths, "OUTPUT", tmp_path / "out")
    monkeypatch.setattr(paths, "FIGURES", tmp_path / "out" / "figures")
    monkeypatch.setattr(paths, "RESULTS", tmp_path / "out" / "data" / "results")
    monkeypatch.setattr(paths, "STAGING", tmp_path / "staging")
    yield tmp_path / "out"
    paths.publish()  # leave no staged file to a later test


def figure():
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    return fig


def test_figures_wait_in_staging_until_the_results_are_written(output):
    plotting.savefig(figure(), "99_example")
    assert not (output / "figures").exists()
    assert len(list(paths.STAGING.rglob("*.png"))) == 1
    plotting.savefig(figure(), "99_example")  # written twice: the last version is published
    data.write_results("99_example", {"x": 1.0})
    assert sorted(p.name for p in (output / "figures").iterdir()) == [
        "99_example.pdf",
        "99_example.png",
    ]
    assert (output / "data" / "results" / "99_example.json").read_text() == '{\n  "x": 1.0\n}\n'
    assert list(paths.STAGING.iterdir()) == []  # the staging folder is removed
    assert paths.publish() == []  # nothing is published twice
    plt.close("all")


def test_default_output_is_under_build():
    env = {k: v for k, v in os.environ.items() if k != "RNDLIB_OUTPUT_DIR"}
    command = [sys.executable, "-c", "from rndlib import paths; print(paths.OUTPUT)"]
    run = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    assert run.stdout.strip() == str(paths.ROOT / "build" / "out")


def test_a_run_elsewhere_stages_in_its_own_output(tmp_path):
    """With RNDLIB_OUTPUT_DIR set, nothing is staged in the repository."""
    env = os.environ | {"RNDLIB_OUTPUT_DIR": str(tmp_path)}
    command = [sys.executable, "-c", "from rndlib import paths; print(paths.STAGING)"]
    run = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    assert run.stdout.strip() == str(tmp_path.resolve() / "build" / "staging")


def notebook(path, checks):
    """A two-cell notebook: it saves a figure, then runs its checks and writes its results."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import matplotlib.pyplot as plt\nfrom rndlib import data, plotting\n"
            'fig = plt.figure()\nplotting.savefig(fig, "99_example")'
        ),
        nbformat.v4.new_code_cell(f'assert {checks}\ndata.write_results("99_example", {{}})'),
    ]
    nbformat.write(nb, path)
    return path


@pytest.mark.notebooks
def test_a_failed_check_publishes_nothing(tmp_path):
    with pytest.raises(Exception, match="AssertionError"):
        pipeline.run_notebook(
            notebook(tmp_path / "99_fails.ipynb", "1 == 2"), quick=False, output_dir=tmp_path
        )
    assert not (tmp_path / "figures").exists() and not (tmp_path / "data").exists()
    passed = notebook(tmp_path / "99_passes.ipynb", "1 == 1")
    pipeline.run_notebook(passed, quick=False, output_dir=tmp_path)
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == [
        "99_example.pdf",
        "99_example.png",
    ]
    assert (tmp_path / "data" / "results" / "99_example.json").exists()
