"""rndlib: the theory and training code behind the rnd-equivalence notebooks.

One module per concept: ``paths``, ``data``, ``validate``, ``models``, ``theory``, ``sampling``,
``train``, ``convergence``, ``scaling``, ``metrics``, ``checks``, ``plotting``, ``pipeline``
(papermill) and ``compat``
(neural-tangents without TensorFlow). Importing the package switches JAX to float64, which
every identity checked here is computed in, and lets neural-tangents import without
TensorFlow (:func:`rndlib.compat.install`): import rndlib before neural_tangents.
"""

from rndlib import compat

compat.install()

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

__version__ = "0.1.0"
