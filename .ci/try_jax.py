"""Run the tests against another jax than the locked one: `make test-jax JAX=0.12.0.1`.

rndlib admits a range of jax versions (pyproject.toml), so that it can be installed into an
environment a user already has; the lock pins one of them. This script checks another
version of the range: it builds a throwaway virtual environment with the Python it runs
under (``build/jax-<version>-py<major.minor>``), installs that jax with the newest releases
of pyproject.toml's other direct requirements (neural-tangents with --no-deps, as in the
lock), and runs pytest there (the unit tests; add ``--notebooks`` for the quick suite too).

    python3.12 .ci/try_jax.py 0.12.0.1 --notebooks
"""

import argparse
import re
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPLACED = {"jax", "jaxlib"}  # the version under test takes their place
WITHOUT_DEPS = {"neural-tangents"}


def name_of(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip().lower()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("jax", help="the jax version to test, e.g. 0.10.2")
    parser.add_argument("--notebooks", action="store_true", help="run the quick suite too")
    args = parser.parse_args()
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    where = ROOT / "build" / f"jax-{args.jax}-py{python}"
    direct = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    others = [r for r in direct if name_of(r) not in REPLACED]
    venv.create(where, clear=True, with_pip=True)
    pip = [str(where / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    pip += ["--disable-pip-version-check"]
    resolved = [r for r in others if name_of(r) not in WITHOUT_DEPS]
    subprocess.run([*pip, f"jax[cpu]=={args.jax}", *resolved], check=True)
    subprocess.run(
        [*pip, "--no-deps", *(r for r in others if name_of(r) in WITHOUT_DEPS)], check=True
    )
    subprocess.run([*pip, "--no-deps", "--no-build-isolation", "-e", str(ROOT)], check=True)
    versions = subprocess.run(
        [
            str(where / "bin" / "python"),
            "-c",
            "import rndlib, jax, jaxlib, numpy, sys; "
            "print('python', sys.version.split()[0], 'jax', jax.__version__, "
            "'jaxlib', jaxlib.__version__, 'numpy', numpy.__version__)",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    print(versions.strip(), flush=True)
    marker = [] if args.notebooks else ["-m", "not notebooks"]
    return subprocess.run(
        [str(where / "bin" / "python"), "-m", "pytest", *marker], cwd=ROOT
    ).returncode


if __name__ == "__main__":
    sys.exit(main())
