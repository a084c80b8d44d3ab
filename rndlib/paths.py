"""Every path the notebooks read or write: notebooks never build paths themselves.

Outputs (figures and results files) go under ``RNDLIB_OUTPUT_DIR``. ``make figures``
and ``python -m rndlib.pipeline --full`` set it to the project root, so that a full
run replaces the committed files; the quick suite sets it to a scratch folder. A
notebook run any other way (papermill by hand, Jupyter) writes under
``build/out/`` unless the variable is set, so that no committed file is replaced
by surprise.

Outputs are staged: :func:`staged` hands out a path in this process's staging
folder under ``build/staging/`` of the output folder (``STAGING``: a scratch run
stages in its scratch folder, never in the repository), and :func:`publish` moves
everything staged into place at once. The notebooks publish in their last cell,
after their checks passed, so a run whose checks fail replaces nothing.
"""

import os
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
NOTEBOOKS = ROOT / "notebooks"

OUTPUT = Path(os.environ.get("RNDLIB_OUTPUT_DIR", ROOT / "build" / "out")).resolve()
FIGURES = OUTPUT / "figures"
RESULTS = OUTPUT / "data" / "results"
STAGING = OUTPUT / "build" / "staging"

_staged: dict[Path, Path] = {}  # final path -> its staged copy
_stage: Path | None = None


def results_file(notebook: str) -> Path:
    """The results file of a notebook, ``data/results/<notebook>.json``."""
    return RESULTS / f"{Path(notebook).stem}.json"


def committed_results(name: str) -> Path:
    """The committed results file ``data/results/<name>.json`` (``make bench``'s, for one),
    where a notebook reads it whatever its output folder."""
    return DATA / "results" / f"{Path(name).stem}.json"


def staged(target: Path) -> Path:
    """The staging path for an output whose final path is ``target``.

    Write the file there; :func:`publish` moves it to ``target``. Staging the same
    target twice hands out the same path, so the last version written wins.
    """
    global _stage
    target = Path(target).resolve()
    if target not in _staged:
        if _stage is None:
            STAGING.mkdir(parents=True, exist_ok=True)
            _stage = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=STAGING))
        _staged[target] = _stage / f"{len(_staged):03d}-{target.name}"
    return _staged[target]


def publish() -> list[Path]:
    """Move every staged output into place, each file atomically; return the paths written.

    Each file is copied next to its target under a temporary name and renamed over
    it, so a reader never sees half a file. The staging folder is then removed.
    """
    global _stage
    written = []
    for target, source in sorted(_staged.items()):
        if not source.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        os.close(fd)
        try:
            shutil.copyfile(source, tmp)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            os.unlink(tmp)
            raise
        written.append(target)
    if _stage is not None:
        shutil.rmtree(_stage, ignore_errors=True)
    _staged.clear()
    _stage = None
    return written
