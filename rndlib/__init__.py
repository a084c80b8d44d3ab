"""rndlib: the theory and training code behind the rnd-equivalence notebooks.

One module per concept: ``paths``, ``data``, ``validate``, ``models``, ``theory``, ``sampling``,
``train``, ``metrics``, ``plotting`` and ``pipeline`` (papermill). Importing the package
switches JAX to float64, which every identity checked here is computed in.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # neural-tangents imports TensorFlow

import jax

jax.config.update("jax_enable_x64", True)

__version__ = "0.1.0"
