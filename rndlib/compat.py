"""neural-tangents 0.6.5 without TensorFlow.

neural-tangents' last release (0.6.5, December 2023) imports its TensorFlow bridge,
``neural_tangents.experimental`` (``empirical_ntk_fn_tf``: NTKs of Keras models), when the
package is imported, and with it TensorFlow and tf2jax: a 2.3 GB environment and 5 s of
every import, for a module this project never calls. :func:`install` puts a stand-in for
that subpackage into ``sys.modules`` before neural-tangents is imported, when TensorFlow is
not installed; everything else of neural-tangents is untouched. Calling the stand-in
raises an ImportError that says why. rndlib calls :func:`install` on import, so import
rndlib before neural_tangents.
"""

import importlib.util
import sys
import types

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


def install() -> bool:
    """Stand in for neural-tangents' TensorFlow bridge if TensorFlow is missing.

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
    return True
