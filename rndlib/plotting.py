"""One figure style for the suite, and an atomic, deterministic ``savefig``."""

import os
import tempfile

import matplotlib.pyplot as plt
import seaborn as sns

from rndlib import paths

#: Metadata that would otherwise carry the matplotlib version and the time of writing.
_METADATA = {
    "png": {"Software": None},
    "pdf": {"Creator": None, "Producer": None, "CreationDate": None, "ModDate": None},
}


def use_style() -> None:
    """The suite's seaborn style: white grid, colour-blind palette, readable sizes."""
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 150, "savefig.bbox": "tight"})


def savefig(fig: plt.Figure, name: str) -> list[str]:
    """Write ``figures/<name>.png`` and ``figures/<name>.pdf``, each atomically.

    Each file is written to a temporary file in the same folder, then renamed over
    the old one, so a reader never sees half a figure and a failed run leaves the
    previous figure in place. The files carry no timestamps: the same figure gives
    the same bytes. Returns the paths written.
    """
    paths.FIGURES.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt, metadata in _METADATA.items():
        target = paths.FIGURES / f"{name}.{fmt}"
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=f".{fmt}", dir=paths.FIGURES)
        try:
            with os.fdopen(fd, "wb") as handle:
                fig.savefig(handle, format=fmt, metadata=metadata)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            os.unlink(tmp)
            raise
        written.append(str(target.relative_to(paths.OUTPUT)))
    return written
