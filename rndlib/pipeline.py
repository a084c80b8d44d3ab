"""Run the notebooks headlessly with papermill.

``python -m rndlib.pipeline --full NOTEBOOK...`` executes each notebook with its
own (full) parameters and writes it back in place, with its figures in figures/
and its results in data/results/. ``--quick --output DIR`` passes ``quick=True``
and sends the executed copy, the figures and the results under DIR instead
(through ``RNDLIB_OUTPUT_DIR``, read by :mod:`rndlib.paths`), leaving the
committed files untouched. A notebook is written only when every cell ran: a
failing one is kept under build/failed/ for reading, and the run stops. Figures
and results reach their folders only from a notebook whose checks passed (see
:mod:`rndlib.paths`); those of a failed run stay under build/staging/ of its output.
Volatile metadata (papermill's timestamps and durations, cell timings) is
stripped, so an executed notebook changes only where its outputs do.

``--timings`` (``make timings``) runs each notebook twice, one after the other:
quick into build/timings/, then in full, in place (as ``--full``); it writes the
wall time of each run, with a description of the machine, to
``data/results/timings.json``, which the README's map and data/ENVIRONMENT.md quote.
After full runs, the verdicts the README and data/RESULTS.md write from the results
files are rewritten (:mod:`rndlib.tables`).

``--seeds 100-119`` (``make seeds``) runs each notebook quick at each of those seeds
(``-p seed S``), into build/seeds/, and records in ``data/results/seeds.json``, per seed
and notebook, whether its checks passed and its smallest decoy margin
``log10(level / p)`` over the decoys of its results file (the reports under a key that
names decoys; ``None`` where it has none or failed). Entries already there are kept, so
an interrupted study resumes where it stopped. Its table in data/RESULTS.md is rewritten
from the file at the end of each study (:mod:`rndlib.tables`).
"""

import argparse
import contextlib
import json
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import papermill

from rndlib import paths, report, tables

FAILED = paths.ROOT / "build" / "failed"
TIMINGS = paths.committed_results("timings")
SEEDS = paths.committed_results("seeds")


def strip_volatile_metadata(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop papermill's and nbclient's timing metadata from a notebook and its cells."""
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    return nb


@contextlib.contextmanager
def _kernel_environment(output: Path) -> Iterator[None]:
    """The environment the kernel inherits: the output folder."""
    saved = dict(os.environ)
    os.environ["RNDLIB_OUTPUT_DIR"] = str(output)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_notebook(
    notebook: Path,
    *,
    quick: bool,
    output_dir: Path | None = None,
    parameters: dict[str, Any] | None = None,
) -> Path:
    """Execute one notebook; return the path of the executed copy.

    Args:
        notebook: the notebook to run.
        quick: pass ``quick=True`` (small widths, few draws).
        output_dir: where the executed copy, figures and results go; ``None`` means
            in place (the notebook itself, figures/ and data/results/).
        parameters: further papermill parameters, overriding the notebook's.
    """
    notebook = Path(notebook).resolve()
    parameters = {**({"quick": True} if quick else {}), **(parameters or {})}
    if output_dir is None:
        target, output = notebook, paths.ROOT
    else:
        output = Path(output_dir).resolve()
        target = output / "notebooks" / notebook.name
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, scratch = tempfile.mkstemp(prefix=f".{notebook.stem}.", suffix=".ipynb", dir=target.parent)
    os.close(fd)
    try:
        with _kernel_environment(output):
            papermill.execute_notebook(
                str(notebook),
                scratch,
                parameters=parameters or None,
                kernel_name="python3",
                cwd=str(paths.NOTEBOOKS),
                progress_bar=False,
            )
    except BaseException:
        FAILED.mkdir(parents=True, exist_ok=True)
        os.replace(scratch, FAILED / notebook.name)
        raise
    nb = strip_volatile_metadata(nbformat.read(scratch, as_version=4))
    nbformat.write(nb, scratch)
    os.chmod(scratch, 0o644)
    os.replace(scratch, target)
    return target


def timed_runs(notebooks: list[Path]) -> dict[str, Any]:
    """Each notebook quick (into build/timings/), then in full (in place), timed alone.

    The times are merged into ``data/results/timings.json`` after every run, so that a
    run of some notebooks updates theirs and keeps the others.
    """
    timings = json.loads(TIMINGS.read_text()) if TIMINGS.exists() else {}
    timings["machine"] = {
        "cpu_count": os.cpu_count(),
        "processor": platform.machine(),
        "python": platform.python_version(),
        "system": platform.system(),
    }
    for notebook in notebooks:
        for mode, output in (("quick_s", paths.ROOT / "build" / "timings"), ("full_s", None)):
            start = time.perf_counter()
            run_notebook(notebook, quick=mode == "quick_s", output_dir=output)
            seconds = round(time.perf_counter() - start, 1)
            timings.setdefault(mode, {})[Path(notebook).stem] = seconds
            TIMINGS.write_text(json.dumps(timings, indent=2, sort_keys=True) + "\n")
            print(f"{Path(notebook).name} {mode[:-2]}: {seconds} s", flush=True)
    return timings


def decoy_margin(results: dict[str, Any]) -> float | None:
    """Smallest ``log10(level / p)`` over the check reports under keys that name decoys."""
    margins = [
        math.log10(check["level"] / max(check["pvalue"], 1e-300))
        for name, check in report.checks_in(results)
        if "decoy" in name
    ]
    return min(margins) if margins else None


def seed_runs(notebooks: list[Path], seeds: list[int]) -> dict[str, Any]:
    """Each notebook quick at each seed (build/seeds/SEED), recorded in seeds.json as it goes."""
    record = json.loads(SEEDS.read_text()) if SEEDS.exists() else {}
    for seed in seeds:
        for notebook in map(Path, notebooks):
            if notebook.stem in record.get(str(seed), {}):
                continue
            output = paths.ROOT / "build" / "seeds" / str(seed)
            start = time.perf_counter()
            try:
                run_notebook(notebook, quick=True, output_dir=output, parameters={"seed": seed})
            except Exception as error:  # a failed check: recorded, and the study goes on
                entry = {"passed": False, "min_margin": None, "error": str(error)[-300:]}
            else:
                results = json.loads(
                    (output / "data" / "results" / f"{notebook.stem}.json").read_text()
                )
                entry = {"passed": True, "min_margin": decoy_margin(results)}
            record.setdefault(str(seed), {})[notebook.stem] = entry
            SEEDS.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
            seconds = time.perf_counter() - start
            print(f"seed {seed} {notebook.name}: {entry} ({seconds:.0f} s)", flush=True)
    return record


def _seed_range(text: str) -> list[int]:
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def _notebook(text: str) -> Path:
    """A notebook's path, or its number or stem (``02``, ``02_rnd``) among paths.NOTEBOOKS."""
    if Path(text).is_file():
        return Path(text)
    found = sorted(paths.NOTEBOOKS.glob(f"{Path(text).stem}*.ipynb"))
    if len(found) != 1:
        names = ", ".join(p.stem for p in sorted(paths.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")))
        raise argparse.ArgumentTypeError(
            f"no single notebook matches {text!r}; choose from {names}"
        )
    return found[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--full", action="store_true", help="full parameters, in place")
    mode.add_argument("--quick", action="store_true", help="quick parameters, into --output")
    mode.add_argument("--timings", action="store_true", help="both, timed: " + str(TIMINGS.name))
    mode.add_argument("--seeds", type=_seed_range, help="quick at seeds FIRST-LAST: seeds.json")
    parser.add_argument("--output", type=Path, help="folder for the executed copies (quick runs)")
    parser.add_argument("notebooks", nargs="+", type=_notebook, help="paths, or numbers: 01 07")
    args = parser.parse_args(argv)
    if args.quick and args.output is None:
        parser.error("--quick needs --output: quick runs never overwrite the committed notebooks")
    if args.seeds:
        record = seed_runs(args.notebooks, args.seeds)
        tables.write_block("seeds")
        runs = [e for s in map(str, args.seeds) for e in record[s].values()]
        print(f"{sum(e['passed'] for e in runs)} of {len(runs)} runs passed; wrote {SEEDS.name}")
        return 0
    if args.timings:
        timed_runs(args.notebooks)
    else:
        for notebook in args.notebooks:
            start = time.perf_counter()
            target = run_notebook(notebook, quick=args.quick, output_dir=args.output)
            print(f"{notebook.name}: {time.perf_counter() - start:.1f} s -> {target}", flush=True)
    if not args.quick:  # full runs rewrote results files: the pages that quote them follow
        for name in ("claims", "results", *(("timings", "map") if args.timings else ())):
            tables.write_block(name)
        print("rewrote the generated tables of the README and data/*.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
