"""The notebooks: the quick suite runs and passes its checks; the committed ones are clean."""

import ast
import json
import os
import re
import subprocess
import sys
import time

import nbformat
import pytest
from conftest import QUICK_SUITE_SECONDS

from rndlib import paths, pipeline, validate

NOTEBOOKS = sorted(paths.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def ids(notebook):
    return notebook.stem


@pytest.fixture(scope="session")
def quick_suite(tmp_path_factory, pytestconfig):
    """Every notebook run once with quick=True into a scratch folder, and its time."""
    output = tmp_path_factory.mktemp("quick")
    seconds = pytestconfig.stash.setdefault(QUICK_SUITE_SECONDS, {})
    for notebook in NOTEBOOKS:
        start = time.perf_counter()
        pipeline.run_notebook(notebook, quick=True, output_dir=output)
        seconds[notebook.stem] = time.perf_counter() - start
    return output, seconds


@pytest.mark.notebooks
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_quick_run_writes_its_results_and_figures(quick_suite, notebook):
    output, _ = quick_suite
    results = json.loads((output / "data" / "results" / f"{notebook.stem}.json").read_text())
    assert results["quick"] is True
    pngs = sorted((output / "figures").glob(f"{notebook.stem[:2]}_*.png"))
    assert pngs, "the notebook saved no figure"
    for png in pngs:
        assert png.with_suffix(".pdf").exists()


@pytest.mark.notebooks
@pytest.mark.parametrize(
    "stem",
    [
        "02_rnd_equals_ensemble_variance",
        "03_bayesian_rnd_posterior",
        "04_posterior_sampling",
        "05_beyond_the_kernel_regime",
        "06_real_data_uncertainty",
        "07_sampling_at_scale",
        "08_decisions",
    ],
)
def test_quick_run_passes_its_claim_and_rejects_every_decoy(quick_suite, stem):
    output, _ = quick_suite
    results = json.loads((output / "data" / "results" / f"{stem}.json").read_text())
    assert results["decoys"], "no decoys were checked"
    assert all(decoy["rejected"] for decoy in results["decoys"].values()), results["decoys"]
    assert all(decoy["pvalue"] <= decoy["level"] for decoy in results["decoys"].values())
    check = results["check"] if "check" in results else results["checks"]
    assert all(r["passed"] for r in (check.values() if "passed" not in check else [check]))
    if "seed_pass" in results:
        assert all(all(by.values()) for by in results["seed_pass"].values()), results["seed_pass"]
    if stem.startswith("04"):
        assert set(results["variance_ratio"]) == {"value", "se"}
    if stem.startswith("08"):  # the layout a reader's own check of the bandit study reads
        for by in (results["regret"], results["normalised_regret"]):
            cells = [v for agent in by.values() for v in agent.values()]
            assert all(set(v) == {"mean", "se", "per_seed"} for v in cells)
        assert all({"statistic", "pvalue", "passed"} <= set(c) for c in results["checks"].values())
        assert set(results["published"]) == {"0.5", "0.7", "0.9", "0.95", "0.99"}
        assert all({"neural_linear", "ours"} <= set(v) for v in results["published"].values())
    # simulated power against every decoy, and false alarms within the per-check level
    assert set(results["power"]) == set(results["decoys"]) | set(results.get("noise_decoys", {}))
    assert all(r["value"] >= 0.999 and r["sets"] >= 1000 for r in results["power"].values())
    level = next(iter(results["decoys"].values()))["level"]
    assert results["false_alarm"]["low"] <= level and results["false_alarm"]["sets"] >= 1000


@pytest.mark.notebooks
def test_two_quick_runs_write_identical_files(quick_suite, tmp_path):
    """Seeds come from the parameters: the results and figures are reproduced byte for byte."""
    output, _ = quick_suite
    notebook = paths.NOTEBOOKS / "01_ntk_regime.ipynb"
    pipeline.run_notebook(notebook, quick=True, output_dir=tmp_path)
    for folder, pattern in (("data/results", "01_*.json"), ("figures", "01_*")):
        again = sorted((tmp_path / folder).glob(pattern))
        assert again
        for path in again:
            assert path.read_bytes() == (output / folder / path.name).read_bytes(), path.name


QUICK = ("-p", "quick", "True")


@pytest.mark.notebooks
@pytest.mark.parametrize(
    ("stem", "parameter", "value", "message", "extra"),
    [
        ("01_ntk_regime", "width", "-1", "width must be an integer >= 1, got -1", ()),
        ("01_ntk_regime", "quick", "false", "quick must be True or False", ()),
        ("01_ntk_regime", "widths", "1024", "widths must be a list, e.g. -p widths '[1, 2]'", ()),
        ("01_ntk_regime", "activation", "tanh", "activation must be one of", ()),
        # a JSON list given to -p is read as a list: its second entry is the one at fault
        ("03_bayesian_rnd_posterior", "noise_levels", "[0.1, -1]", "noise_levels[1] must be", ()),
        # quick mode replaces these, but only after the values as given are checked
        ("05_beyond_the_kernel_regime", "widths", "[]", "widths must not be empty", QUICK),
        ("06_real_data_uncertainty", "heads", "1", "heads must be an integer >= 2, got 1", QUICK),
    ],
)
def test_bad_parameter_stops_at_once_naming_it(tmp_path, stem, parameter, value, message, extra):
    """papermill's -p as a user types it: the run stops in the parameter checks, nothing written.

    ``extra``: further -p pairs (quick mode, which replaces the parameter given).
    """
    committed = {p.name: p.read_bytes() for p in (paths.ROOT / "figures").glob("*")}
    env = {k: v for k, v in os.environ.items() if k != "RNDLIB_OUTPUT_DIR"}
    command = [
        sys.executable,
        "-m",
        "papermill",
        "--no-progress-bar",
        str(paths.NOTEBOOKS / f"{stem}.ipynb"),
        str(tmp_path / "out.ipynb"),
        "-p",
        parameter,
        value,
        *extra,
    ]
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode != 0
    assert f"ValueError: {message}" in run.stdout + run.stderr
    assert {p.name: p.read_bytes() for p in (paths.ROOT / "figures").glob("*")} == committed


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_committed_notebook_is_executed_and_clean(notebook):
    """Users read the committed notebooks on GitHub: executed in full, no volatile metadata."""
    nb = nbformat.read(notebook, as_version=4)
    text = notebook.read_text()
    assert "papermill" not in nb.metadata
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    assert sum("parameters" in c.metadata.get("tags", []) for c in code) == 1
    assert "parameters" in code[0].metadata["tags"]
    for cell in code:
        assert not {"execution", "papermill"} & set(cell.metadata)
        assert "injected-parameters" not in cell.metadata.get("tags", [])
        assert all(o.output_type != "error" for o in cell.outputs)
    assert str(paths.ROOT) not in text and "/tmp/" not in text
    results = json.loads((paths.ROOT / "data" / "results" / f"{notebook.stem}.json").read_text())
    assert results["quick"] is False
    for name in re.findall(r'savefig\(fig, "([^"]+)"\)', text):
        for suffix in (".png", ".pdf"):
            assert (paths.ROOT / "figures" / f"{name}{suffix}").exists(), name


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_every_parameter_is_visible_to_papermill(notebook):
    """Each line of the parameters cell is a literal papermill can read and override."""
    from papermill.translators import PythonTranslator

    cell = nbformat.read(notebook, as_version=4).cells
    params = next(c for c in cell if "parameters" in c.metadata.get("tags", []))
    assignments = [line for line in params.source.splitlines() if re.match(r"^\w+ = ", line)]
    parsed = PythonTranslator.inspect(params)
    assert [p.name for p in parsed] == [line.split(" = ")[0] for line in assignments]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_cells_are_short_and_exercises_have_hints_and_solutions(notebook):
    """Cells a lecturer can adapt (at most 45 lines); each exercise with both folds."""
    cells = nbformat.read(notebook, as_version=4).cells
    long = [len(c.source.splitlines()) for c in cells if c.cell_type == "code"]
    assert max(long) <= 45, f"a code cell of {max(long)} lines"
    exercises = next(c.source for c in cells if c.source.startswith("## Exercises"))
    count = len(re.findall(r"^\d+\. \*\*", exercises, flags=re.MULTILINE))
    assert count >= 3
    assert exercises.count("<summary>Hint</summary>") == count
    assert exercises.count("<summary>Solution</summary>") == count
    assert exercises.count("<details>") == exercises.count("</details>") == 2 * count


#: Numbers the notebooks' prose may quote that no run produces: a convention of the checks.
CONVENTIONS = {"95%"}  # the level of the exact binomial intervals around simulated rates
_NUMBER = re.compile(r"(?<![\w.\-/^])-?\d+(?:,\d{3})*(?:\.\d+)?(?:e-?\d+)?%?")
_NAMED = re.compile(  # statement and section numbers, years, identifiers
    r"(?:Thm|Prop|Cor|Lemma|Claims?|[Ss]ection|[Nn]otebooks?|arXiv:)\.?\s*[\d.]+(?:,\s*[\d.]+)*"
    r"|\b(?:19|20)\d\d\b"
)


def _recorded(tree) -> list[float]:
    """Every number in a results file: values, keys and numbers inside strings."""
    if isinstance(tree, dict):
        return [x for k, v in tree.items() for x in _recorded(v) + _recorded(k)]
    if isinstance(tree, list):
        return [x for v in tree for x in _recorded(v)]
    if isinstance(tree, bool) or tree is None:
        return []
    if isinstance(tree, int | float):
        return [float(tree)]
    return [float(t) for t in re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", str(tree))]


def _shown_as(value: float, token: str) -> bool:
    """Whether ``value`` rounds to ``token`` at the token's precision (``%``: hundredths)."""
    digits = token.replace(",", "").rstrip("%")
    scale = 100 if token.endswith("%") else 1
    mantissa = digits.split("e")[0]
    places = len(mantissa.split(".")[1]) if "." in mantissa else 0
    quoted = float(digits)
    if "e" in digits:
        return value != 0 and abs(value - quoted) <= 0.5 * abs(quoted) * 10.0**-places
    return abs(value * scale - quoted) <= 0.5 * 10.0**-places * (1 + 1e-9)


def _quoted_numbers(notebook: nbformat.NotebookNode) -> list[tuple[int, str]]:
    """The numbers a notebook's markdown quotes: decimals, percentages and large counts."""
    found = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "markdown":
            continue
        text = re.sub(r"`[^`]*`|\]\([^)]*\)", "", cell.source)
        for token in _NUMBER.findall(_NAMED.sub("", text)):
            plain = token.replace(",", "").rstrip("%")
            if "." in plain or "e" in plain or token.endswith("%") or abs(float(plain)) >= 1000:
                found.append((index, token))
    return found


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_parameters_are_literals_checked_in_one_call(notebook):
    """The parameters cell: one literal per line with its comment, each name with a rule.

    The next cell checks them all with one call of :func:`rndlib.validate.parameters`; no
    other cell calls a check of :mod:`rndlib.validate` on a parameter.
    """
    cells = nbformat.read(notebook, as_version=4).cells
    at = next(i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
    for node in ast.parse(cells[at].source).body:
        assert isinstance(node, ast.Assign), ast.unparse(node)
        ast.literal_eval(node.value)
        name = node.targets[0].id
        assert name in validate.RULES or name in validate.ARCHITECTURE, name
    assert all("#" in line for line in cells[at].source.splitlines())
    assert cells[at + 1].source.count("validate.parameters(globals()") == 1
    assert not any("validate." in c.source for c in cells[at + 2 :] if c.cell_type == "code")


def _sections(cells) -> list[tuple[str, list]]:
    """The numbered sections (``## 1. ...``): each heading with the cells up to the next."""
    starts = [
        (i, c.source.splitlines()[0])
        for i, c in enumerate(cells)
        if c.cell_type == "markdown" and c.source.startswith("## ")
    ]
    bounds = zip(starts, [i for i, _ in starts[1:]] + [len(cells)], strict=True)
    return [(title, cells[i:end]) for (i, title), end in bounds if re.match(r"## \d", title)]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_each_section_ends_with_its_conclusion(notebook):
    """A numbered section ends in prose: a markdown cell, or Markdown rendered from the run.

    The checks section ends in its assertions; the verdict after it is its conclusion.
    """
    for title, cells in _sections(nbformat.read(notebook, as_version=4).cells):
        last = cells[-1]
        if title.endswith("Checks") or len(cells) == 1:
            continue
        rendered = last.cell_type == "code" and "Markdown(" in last.source
        assert last.cell_type == "markdown" or rendered, f"{title!r} ends in code"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_prose_quotes_only_numbers_its_run_recorded(notebook):
    """A number typed in a notebook's markdown is in its committed results or parameters.

    Prose that quotes a result goes stale on the next run; quoting one that the committed
    results file does not hold (at the precision shown) fails here. The parameters cell's
    literals and :data:`CONVENTIONS` are allowed.
    """
    nb = nbformat.read(notebook, as_version=4)
    recorded = _recorded(json.loads(paths.committed_results(notebook.stem).read_text()))
    for cell in nb.cells:
        if "parameters" in cell.metadata.get("tags", []):
            recorded += [float(t) for t in re.findall(r"(?<![\w.])\d+(?:\.\d+)?", cell.source)]
    stale = [
        (index, token)
        for index, token in _quoted_numbers(nb)
        if token not in CONVENTIONS and not any(_shown_as(v, token) for v in recorded)
    ]
    assert not stale, f"{notebook.name}: markdown quotes numbers no results file holds: {stale}"
