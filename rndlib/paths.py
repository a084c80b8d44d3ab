"""Every path the notebooks read or write: notebooks never build paths themselves.

Outputs (figures and results files) go under the project root, unless the
environment variable ``RNDLIB_OUTPUT_DIR`` names another folder: the quick suite
sets it to a scratch folder so that committed figures and results stay untouched.
"""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
NOTEBOOKS = ROOT / "notebooks"

OUTPUT = Path(os.environ.get("RNDLIB_OUTPUT_DIR", ROOT)).resolve()
FIGURES = OUTPUT / "figures"
RESULTS = OUTPUT / "data" / "results"


def results_file(notebook: str) -> Path:
    """The results file of a notebook, ``data/results/<notebook>.json``."""
    return RESULTS / f"{Path(notebook).stem}.json"
