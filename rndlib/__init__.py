"""rndlib: the theory and training code behind the rnd-equivalence notebooks.

One module per concept: ``paths``, ``data``, ``validate``, ``models``, ``theory``,
``sampling``, ``train``, ``convergence``, ``scaling``, ``bench``, ``metrics``, ``nulls``,
``checks``, ``scores``, ``power``, ``plotting`` and ``pipeline`` (papermill). Importing the
package switches JAX to float64, which every identity checked here is computed in, and
imports neural-tangents without TensorFlow (:func:`neural_tangents_compat.install`, a
top-level module of this distribution).
"""

import neural_tangents_compat

neural_tangents_compat.install()

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

__version__ = "0.1.0"
