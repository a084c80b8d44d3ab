"""Posterior draws without training: exact ones, and pathwise conditioning by conjugate gradients.

The references the trained samplers (:mod:`rndlib.sampling`) are measured against:
:func:`gaussian_samples` draws N(mean, cov) exactly (the notebooks' posteriors and
the Monte-Carlo nulls of :mod:`rndlib.metrics`); :func:`exact_samples` conditions the
analytic NTK-GP on a data set of any size in blocks; :func:`pathwise_samples`
conditions draws of one finite network's empirical-NTK prior (Wilson et al. 2020; Lin
et al. 2023), matrix-free, and samples the same finite-width posterior that the
linearised sampler does.
"""

from functools import partial

import jax
import jax.numpy as jnp
import jax.scipy.linalg
import numpy as np
import scipy.linalg

from rndlib import models, rnd, validate
from rndlib.data import Dataset

BLOCK = 2000  # kernel rows per block of the exact method
VP_BATCH = 4  # kernel-vector products computed at once by the pathwise method


ROOTS = ("cholesky", "eigen")  # the square roots gaussian_samples draws through


def gaussian_samples(
    mean: np.ndarray,
    cov: np.ndarray,
    draws: int | tuple[int, ...],
    seed: int,
    *,
    root: str = "cholesky",
) -> np.ndarray:
    """Exact draws of N(mean, cov), shape (draws, n), or (*draws, n) for a tuple.

    ``root`` is the square root the standard normal draws go through: ``"cholesky"``, a
    Cholesky factor after a jitter of 1e-9 times the mean variance on the diagonal
    (posterior covariances on dense test grids are singular to working precision), or
    ``"eigen"``, the eigenvectors scaled by the square roots of the eigenvalues clipped
    at zero (no jitter: the Monte-Carlo nulls of :mod:`rndlib.metrics` draw from the
    covariance itself).

    Raises:
        ValueError: naming the argument, for a ``cov`` that is not a finite symmetric
            (n, n) matrix (asymmetry up to ``validate.SYMMETRY_RTOL`` of its largest entry
            is round-off), a ``mean`` that is not finite of shape (n,), ``draws`` not a
            positive integer (or a tuple of them), a negative or non-integer ``seed``, or an
            unknown ``root``.
    """
    n = len(validate.square("cov", cov, symmetric=True))
    validate.array("mean", mean, (n,))
    shape = tuple(validate.integers("draws", list(draws) if isinstance(draws, tuple) else [draws]))
    validate.integer("seed", seed, minimum=0)
    if validate.choice("root", root, ROOTS) == "cholesky":
        jitter = 1e-9 * np.mean(np.diag(cov))
        factor = scipy.linalg.cholesky(cov + jitter * np.eye(n), lower=True)
    else:
        evals, evecs = np.linalg.eigh(cov)
        factor = evecs * np.sqrt(np.clip(evals, 0.0, None))
    return mean + np.random.default_rng(seed).standard_normal((*shape, n)) @ factor.T


def _kernel(kernel_fn, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.empty((len(a), len(b)))
    for i in range(0, len(a), BLOCK):
        out[i : i + BLOCK] = np.asarray(kernel_fn(a[i : i + BLOCK], b, "ntk"))
    return out


def exact_posterior(
    spec: models.ArchSpec, dataset: Dataset, noise: float
) -> tuple[np.ndarray, np.ndarray]:
    """The NTK-GP posterior mean (n_test,) and covariance at the test inputs, by Cholesky.

    The analytic NTK ``Theta`` (neural-tangents' ``kernel_fn``, in blocks of ``BLOCK``
    rows) and a Cholesky factor of ``Theta_XX + noise I`` (``N^2`` memory, ``N^3 / 3``
    flops), in float64: :func:`rndlib.theory.gp_posterior` for training sets too large
    for its eigendecomposition.

    Raises:
        ValueError: naming ``noise`` unless it is positive and finite.
    """
    noise = validate.finite("noise", noise, above=0.0)
    kernel_fn = models.network(spec)[2]
    k_train = _kernel(kernel_fn, dataset.x_train, dataset.x_train)
    k_train[np.diag_indices_from(k_train)] += noise
    k_cross = jnp.asarray(_kernel(kernel_fn, dataset.x_test, dataset.x_train))
    factor = jnp.linalg.cholesky(jnp.asarray(k_train))
    del k_train
    half = np.asarray(jax.scipy.linalg.solve_triangular(factor, k_cross.T, lower=True))
    white_y = jax.scipy.linalg.solve_triangular(
        factor, jnp.asarray(dataset.y_train[:, 0]), lower=True
    )
    del factor, k_cross
    mean = half.T @ np.asarray(white_y)
    return mean, _kernel(kernel_fn, dataset.x_test, dataset.x_test) - half.T @ half


def exact_samples(spec: models.ArchSpec, dataset: Dataset, noise: float, draws: int, seed: int):
    """Exact posterior draws: samples (draws, n_test), the mean and the variance.

    :func:`gaussian_samples` of :func:`exact_posterior`.

    Raises:
        ValueError: naming the argument, for a ``noise`` that is not positive, ``draws``
            not a positive integer, or a negative or non-integer ``seed``.
    """
    validate.integer("draws", draws)
    validate.integer("seed", seed, minimum=0)
    mean, cov = exact_posterior(spec, dataset, noise)
    return gaussian_samples(mean, cov, draws, seed), mean, np.diag(cov)


def pathwise_samples(
    spec: models.ArchSpec,
    dataset: Dataset,
    noise: float,
    draws: int,
    seed: int,
    tol: float,
    dtype: str = "float64",
):
    """Pathwise-conditioned draws, CG solves on the empirical NTK: samples, mean, iterations.

    ``f ~ GP(0, Theta_0)`` by ``f = J_0 psi``; each sample is
    ``f(x) + Theta_0(x, X) (Theta_0(X, X) + sigma^2 I)^-1 (Y - f(X) - sigma zeta)``, the
    ``draws + 1`` systems (one for the mean) solved together by CG to relative residual
    ``tol``. ``Theta_0 v = J_0 (J_0^T v)`` by ``jax.linearize`` on the training inputs:
    the network's forward pass is computed once, as in the linearised sampler. The prior
    draws are computed in float64; the solves and the products at the test inputs in
    ``dtype``, so that the method compares with the linearised sampler at its precision.

    Raises:
        ValueError: naming the argument, for a bad ``noise``, ``draws``, ``seed``, ``tol``
            or ``dtype``.
    """
    noise = validate.finite("noise", noise, above=0.0)
    validate.integer("draws", draws)
    validate.integer("seed", seed, minimum=0)
    tol = validate.finite("tol", tol, above=0.0)
    cast = partial(models.astype, validate.choice("dtype", dtype, ("float32", "float64")))
    init_fn, apply_fn, _ = models.network(spec.replace(heads=1))
    params = init_fn(jax.random.PRNGKey(seed), (-1, dataset.x_train.shape[1]))[1]
    x_train, x_test = jnp.asarray(dataset.x_train), jnp.asarray(dataset.x_test)
    x_both = jnp.concatenate([x_train, x_test])
    keys = jax.random.split(jax.random.PRNGKey(seed + 1), draws)
    prior = jax.lax.map(
        lambda k: jax.jvp(lambda p: apply_fn(p, x_both), (params,), (rnd.draw_psi(params, k),))[1][
            :, 0
        ],
        keys,
    )
    n = len(x_train)
    zeta = np.random.default_rng(seed).standard_normal((draws, n))
    rhs = np.concatenate(
        [dataset.y_train.T, dataset.y_train.T - prior[:, :n] - np.sqrt(noise) * zeta]
    )
    params, x_train, x_test = cast(params), cast(x_train), cast(x_test)
    weights, iterations = _conjugate_gradients(apply_fn, params, x_train, cast(rhs), noise, tol)
    pulled = jax.lax.map(
        lambda w: _ntk_product(apply_fn, params, x_train, x_test, w), weights, batch_size=VP_BATCH
    )
    pulled = np.asarray(pulled, np.float64)
    return np.asarray(prior[:, n:]) + pulled[1:], pulled[0], int(iterations)


def _ntk_product(apply_fn, params, x_from, x_to, w):
    # Theta_0(x_to, x_from) w = J_0(x_to) J_0(x_from)^T w for one vector w.
    pulled = jax.vjp(lambda p: apply_fn(p, x_from)[:, 0], params)[1](w)[0]
    return jax.jvp(lambda p: apply_fn(p, x_to)[:, 0], (params,), (pulled,))[1]


@partial(jax.jit, static_argnames="apply_fn")
def _conjugate_gradients(apply_fn, params, x, rhs, noise, tol):
    # CG on (Theta_0(X, X) + noise I) W = rhs, the rows of rhs one joint system, as in
    # scipy's cg: stops when ||residual|| <= tol ||rhs||.
    _, tangent = jax.linearize(lambda p: apply_fn(p, x)[:, 0], params)
    transpose = jax.linear_transpose(tangent, params)

    def matvec(v):
        gram = jax.lax.map(lambda w: tangent(transpose(w)[0]), v, batch_size=VP_BATCH)
        return gram + noise * v

    def running(state):
        return jnp.sqrt(state[3]) > tol * jnp.linalg.norm(rhs)

    def step(state):
        w, r, p, rr, k = state
        q = matvec(p)
        alpha = rr / jnp.vdot(p, q)
        w, r = w + alpha * p, r - alpha * q
        new = jnp.vdot(r, r)
        return w, r, r + new / rr * p, new, k + 1

    state = (jnp.zeros_like(rhs), rhs, rhs, jnp.vdot(rhs, rhs), 0)
    w, _, _, _, k = jax.lax.while_loop(running, step, state)
    return w, k
