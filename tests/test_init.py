"""The package: its public surface is the one listed, and the library stays readable."""

import ast
import importlib
import pathlib

import pytest

import rndlib

LIBRARY = pathlib.Path(rndlib.__file__).parent
MODULES = sorted(p.stem for p in LIBRARY.glob("*.py") if p.stem != "__init__")


def _tree(module: str) -> ast.Module:
    return ast.parse((LIBRARY / f"{module}.py").read_text())


def _public_names(module: str) -> list[str]:
    names = []
    for node in _tree(module).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and not node.name.startswith("_"):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [
                t.id
                for t in node.targets
                if isinstance(t, ast.Name) and t.id.isupper() and not t.id.startswith("_")
            ]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            name = node.target.id
            names += [name] if name.isupper() and not name.startswith("_") else []
    return names


def test_every_module_is_listed_with_its_public_names():
    assert sorted(rndlib.API) == MODULES
    for module, names in rndlib.API.items():
        assert list(names) == _public_names(module), module
        imported = importlib.import_module(f"rndlib.{module}")
        assert all(hasattr(imported, name) for name in names), module


@pytest.mark.parametrize("module", MODULES)
def test_modules_stay_short_and_use_no_private_name_of_another(module):
    """No module over 400 lines, no function over 60, no ``other._name`` across modules."""
    source = (LIBRARY / f"{module}.py").read_text()
    assert len(source.splitlines()) <= 400
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef):
            assert node.end_lineno - node.lineno + 1 <= 60, f"{module}.{node.name}"
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            private = node.attr.startswith("_") and not node.attr.startswith("__")
            assert not (private and node.value.id in MODULES), (
                f"{module}: {node.value.id}.{node.attr}"
            )
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rndlib"):
            assert not any(a.name.startswith("_") for a in node.names), module
