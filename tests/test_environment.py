"""The environment: environment.yml and the pip lock pin the same set; the code imports."""

import re
import tomllib

from rndlib import paths

LOCK = paths.ROOT / ".ci" / "requirements.lock"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lines: list[str]) -> dict[str, str]:
    found = {}
    for line in lines:
        line = line.split("#")[0].strip().removeprefix("- ").strip()
        if "==" in line:
            name, version = line.split("==")
            found[canonical(name)] = version
    return found


def test_environment_yml_and_lock_agree():
    locked = pins(LOCK.read_text().splitlines())
    conda_lines = (paths.ROOT / "environment.yml").read_text().splitlines()
    pip_section = conda_lines[[line.strip() for line in conda_lines].index("- pip:") + 1 :]
    assert pins(pip_section) == locked
    assert "  - python=3.11" in conda_lines


def test_every_direct_requirement_is_locked_at_a_version_it_allows():
    locked = pins(LOCK.read_text().splitlines())
    direct = tomllib.loads((paths.ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for requirement in direct:
        name = canonical(re.split(r"[<>=!~; ]", requirement, maxsplit=1)[0])
        assert name in locked, f"{name} is not in the lock"
        if "==" in requirement:
            assert requirement.split("==")[1].strip() == locked[name], name


def test_installed_versions_are_the_locked_ones():
    from importlib.metadata import version

    locked = pins(LOCK.read_text().splitlines())
    for name in ("jax", "jaxlib", "neural-tangents", "tensorflow-cpu", "numpy", "papermill"):
        assert version(name) == locked[name]
