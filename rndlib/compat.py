"""neural-tangents 0.6.5 without TensorFlow.

neural-tangents' last release (0.6.5, December 2023) imports its TensorFlow bridge,
``neural_tangents.experimental`` (``empirical_ntk_fn_tf``: NTKs of Keras models), when the
package is imported, and with it TensorFlow and tf2jax: a 2.3 GB environment and 5 s of
every import, for a module this project never calls. :func:`install` puts a stand-in for
that subpackage into ``sys.modules`` before neural-tangents is imported, when TensorFlow is
not installed; everything else of neural-tangents is untouched. Calling the stand-in
raises an ImportError that says why. rndlib calls :func:`install` on import, so import
rndlib before neural_tangents.

neural-tangents 0.6.5 also imports names that newer jax moved or dropped: ``Jaxpr``,
``JaxprEqn``, ``Literal``, ``Primitive`` and ``Var`` from ``jax.core`` (now in
``jax.extend.core``), ``jax.util.safe_map``/``safe_zip``, and ``jax.interpreters.ad.zeros_like_p``
(a primitive it keys a rule on). :func:`install` imports neural-tangents itself, with any
missing name put back for the time of the import (:func:`_moved_jax_names`) and taken away
again after it. Under jax 0.5.3, the version the suite is locked to and tested on, every
name is where neural-tangents looks and nothing is put back.
"""

import contextlib
import importlib.util
import sys
import types
from collections.abc import Iterator

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


def install() -> bool:
    """Import neural-tangents, standing in for its TensorFlow bridge if TensorFlow is missing.

    Returns:
        True if the stand-in is in place (now or from an earlier call), False if
        TensorFlow is installed or neural-tangents was imported already, in which
        case nothing is changed.
    """
    if isinstance(sys.modules.get(BRIDGE), _TensorFlowBridge):
        return True
    if "neural_tangents" in sys.modules or importlib.util.find_spec("tensorflow") is not None:
        return False
    sys.modules[BRIDGE] = _TensorFlowBridge(BRIDGE)
    with _moved_jax_names():
        import neural_tangents  # noqa: F401
    return True
