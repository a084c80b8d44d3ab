"""neural-tangents 0.6.5 without TensorFlow.

neural-tangents' last release (0.6.5, December 2023) imports its TensorFlow bridge,
``neural_tangents.experimental`` (``empirical_ntk_fn_tf``: NTKs of Keras models), when the
package is imported, and with it TensorFlow and tf2jax: a 2.3 GB environment and 5 s of
every import, for a module this project never calls. :func:`install` puts a stand-in for
that subpackage into ``sys.modules`` before neural-tangents is imported, when TensorFlow is
not installed; everything else of neural-tangents is untouched. Calling the stand-in
raises an ImportError that says why.

The module is top-level, outside ``rndlib``, and imports nothing but the standard library,
so that it can run at interpreter start-up: :func:`enable` puts an import hook on
``sys.meta_path`` that does all of the above the first time ``neural_tangents`` is imported,
in whatever order a script or notebook imports things. ``make env`` writes a one-line
``neural_tangents_compat.pth`` into the environment (``python -m neural_tangents_compat``)
that calls :func:`enable` at start-up; ``import rndlib`` calls :func:`install`, which does
the same at once, for environments without that file.

neural-tangents 0.6.5 also imports names that newer jax moved or dropped: ``Jaxpr``,
``JaxprEqn``, ``Literal``, ``Primitive`` and ``Var`` from ``jax.core`` (now in
``jax.extend.core``), ``jax.util.safe_map``/``safe_zip``, and ``jax.interpreters.ad.zeros_like_p``
(a primitive it keys a rule on). :func:`install` imports neural-tangents itself, with any
missing name put back for the time of the import (:func:`_moved_jax_names`) and taken away
again after it. Under jax 0.5.3, the version the suite is locked to and tested on, every
name is where neural-tangents looks and nothing is put back.
"""

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import sysconfig
import types
from collections.abc import Iterator
from pathlib import Path

#: jax.core names neural-tangents imports that newer jax keeps in jax.extend.core only.
MOVED_TO_EXTEND_CORE = ("Jaxpr", "JaxprEqn", "Literal", "Primitive", "Var")

BRIDGE = "neural_tangents.experimental"


class _TensorFlowBridge(types.ModuleType):
    """``neural_tangents.experimental`` where TensorFlow is not installed."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        raise ImportError(
            f"{BRIDGE}.{name} is neural-tangents' TensorFlow bridge, which needs tensorflow "
            "and tf2jax; they are not installed in this environment (rndlib does not use "
            "them). Install both to use it."
        )


@contextlib.contextmanager
def _moved_jax_names() -> Iterator[list[str]]:
    """Put back the jax names neural-tangents imports where they are missing; yield them."""
    import jax
    import jax.core
    import jax.interpreters.ad

    added: list[tuple[object, str]] = []
    if any(not hasattr(jax.core, name) for name in MOVED_TO_EXTEND_CORE):
        import jax.extend.core

        for name in MOVED_TO_EXTEND_CORE:
            if not hasattr(jax.core, name):
                setattr(jax.core, name, getattr(jax.extend.core, name))
                added.append((jax.core, name))
    util = None
    if importlib.util.find_spec("jax.util") is None:
        from jax._src import util as private_util

        util = types.ModuleType("jax.util")
        util.safe_map, util.safe_zip = private_util.safe_map, private_util.safe_zip
        sys.modules["jax.util"] = util
    if not hasattr(jax.interpreters.ad, "zeros_like_p"):
        from jax.extend.core import Primitive

        jax.interpreters.ad.zeros_like_p = Primitive("zeros_like")
        added.append((jax.interpreters.ad, "zeros_like_p"))
    try:
        yield [f"{module.__name__}.{name}" for module, name in added] + (
            ["jax.util"] if util else []
        )
    finally:
        for module, name in added:
            delattr(module, name)
        if util is not None:
            sys.modules.pop("jax.util", None)  # no jax.util existed before


class _Loader(importlib.abc.Loader):
    """neural-tangents' own loader, run with the moved jax names put back."""

    def __init__(self, loader: importlib.abc.Loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        with _moved_jax_names():
            self.loader.exec_module(module)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds ``neural_tangents`` once, with the bridge's stand-in and the moved names."""

    def find_spec(self, name, path=None, target=None):
        if name != "neural_tangents":
            return None
        sys.meta_path.remove(self)  # once: neural-tangents' submodules are found as usual
        if importlib.util.find_spec("tensorflow") is not None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return None
        sys.modules[BRIDGE] = _TensorFlowBridge(BRIDGE)
        spec.loader = _Loader(spec.loader)
        return spec


def enable() -> None:
    """Let the next ``import neural_tangents`` run without TensorFlow (an import hook).

    Imports nothing itself; does nothing if neural-tangents is imported already or the hook
    is in place.
    """
    if "neural_tangents" not in sys.modules and not any(
        isinstance(f, _Finder) for f in sys.meta_path
    ):
        sys.meta_path.insert(0, _Finder())


def install() -> bool:
    """Import neural-tangents, standing in for its TensorFlow bridge if TensorFlow is missing.

    Returns:
        True if the stand-in is in place (now or from an earlier call or import), False if
        TensorFlow is installed or neural-tangents was imported before without it, in
        which case nothing is changed.
    """
    enable()
    import neural_tangents  # noqa: F401

    return isinstance(sys.modules.get(BRIDGE), _TensorFlowBridge)


#: The start-up file :func:`write_startup_file` puts into an environment's site-packages.
STARTUP_FILE = "neural_tangents_compat.pth"


def write_startup_file(site_packages: Path | None = None) -> Path:
    """Write the ``.pth`` file that calls :func:`enable` at every interpreter start-up.

    Args:
        site_packages: where to write it; the running interpreter's ``purelib`` if None.

    Returns:
        The path written.
    """
    where = Path(site_packages or sysconfig.get_path("purelib")) / STARTUP_FILE
    where.write_text("import neural_tangents_compat; neural_tangents_compat.enable()\n")
    return where


if __name__ == "__main__":
    print(f"wrote {write_startup_file()}")
