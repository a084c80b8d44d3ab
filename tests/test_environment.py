"""The environment: environment.yml and the pip lock pin the same set; the code imports."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from rndlib import compat, paths

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
    pyproject = tomllib.loads((paths.ROOT / "pyproject.toml").read_text())
    for requirement in map(Requirement, pyproject["project"]["dependencies"]):
        name = canonical(requirement.name)
        assert name in locked, f"{name} is not in the lock"
        assert requirement.specifier.contains(locked[name]), (name, locked[name])
    for requirement in map(Requirement, pyproject["tool"]["rndlib"]["lock-at"]):
        assert str(requirement.specifier) == f"=={locked[canonical(requirement.name)]}"


def test_the_ranges_admit_what_the_lock_does_not_pin():
    """jax's range reaches past the locked version, for environments users already have."""
    pyproject = tomllib.loads((paths.ROOT / "pyproject.toml").read_text())
    jax = next(r for r in map(Requirement, pyproject["project"]["dependencies"]) if r.name == "jax")
    assert jax.specifier.contains("0.12.0.1") and not jax.specifier.contains("0.5.2")
    assert pyproject["project"]["requires-python"] == ">=3.11"


def test_installed_versions_are_the_locked_ones():
    from importlib.metadata import version

    if Path(sys.prefix).resolve() != (paths.ROOT / ".venv").resolve():
        pytest.skip(f"{sys.prefix} is not the locked environment (make env builds .venv)")
    locked = pins(LOCK.read_text().splitlines())
    for name in ("jax", "jaxlib", "neural-tangents", "optax", "numpy", "scipy", "papermill"):
        assert version(name) == locked[name]


def test_the_lock_has_no_tensorflow():
    locked = pins(LOCK.read_text().splitlines())
    assert not {"tensorflow", "tensorflow-cpu", "tf2jax", "keras"} & set(locked)


def test_neural_tangents_imports_without_tensorflow():
    code = (
        "import sys, rndlib, neural_tangents as nt; "
        "print(nt.__version__, 'tensorflow' in sys.modules, 'tf2jax' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0.6.5", "False", "False"]


def test_the_tensorflow_bridge_stand_in_says_what_is_missing():
    import neural_tangents as nt

    if not compat.install():
        pytest.skip("tensorflow is installed: neural-tangents' own bridge is in place")
    with pytest.raises(ImportError, match=r"TensorFlow bridge, which needs tensorflow"):
        nt.experimental.empirical_ntk_fn_tf(lambda x: x)
    assert not hasattr(nt.experimental, "__wrapped__")  # introspection sees a plain module


def test_the_lab_lock_adds_jupyterlab_on_top_of_the_lock():
    """`make lab` installs .ci/lab.lock with --no-deps over the lock: it re-pins nothing."""
    locked = pins(LOCK.read_text().splitlines())
    lab_lines = (paths.ROOT / ".ci" / "lab.lock").read_text().splitlines()
    lab = pins(lab_lines)
    assert "jupyterlab" in lab and not set(lab) & set(locked)
    assert all(line.startswith("#") or "==" in line for line in lab_lines if line.strip())
    extras = tomllib.loads((paths.ROOT / "pyproject.toml").read_text())["project"]
    assert extras["optional-dependencies"]["lab"] == ["jupyterlab"]


def test_no_jax_name_is_put_back_under_the_locked_jax():
    import jax

    if jax.__version__ != pins(LOCK.read_text().splitlines())["jax"]:
        pytest.skip(f"jax {jax.__version__} is not the locked version")
    with compat._moved_jax_names() as added:
        assert added == []


def test_names_newer_jax_moved_are_put_back_for_the_import_only(monkeypatch):
    """Simulate a jax without jax.core.Var, jax.util and ad.zeros_like_p (jax >= 0.6)."""
    import importlib.util

    import jax.core
    import jax.extend.core
    import jax.interpreters.ad

    if jax.__version__ != pins(LOCK.read_text().splitlines())["jax"]:
        pytest.skip(f"the simulation removes names from jax {jax.__version__}'s layout")
    served = jax.core.__getattr__  # jax 0.5.3 serves the moved names from here

    def without_var(name):
        if name == "Var":
            raise AttributeError(name)
        return served(name)

    monkeypatch.setattr(jax.core, "__getattr__", without_var)
    monkeypatch.delattr(jax.interpreters.ad, "zeros_like_p")
    monkeypatch.delitem(sys.modules, "jax.util")
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "jax.util" else find_spec(name, *a),
    )
    with compat._moved_jax_names() as added:
        assert added == ["jax.core.Var", "jax.interpreters.ad.zeros_like_p", "jax.util"]
        assert jax.core.Var is jax.extend.core.Var
        from jax.util import safe_map, safe_zip  # noqa: F401

        assert jax.interpreters.ad.zeros_like_p.name == "zeros_like"
    assert not hasattr(jax.core, "Var") and not hasattr(jax.interpreters.ad, "zeros_like_p")
    assert "jax.util" not in sys.modules
