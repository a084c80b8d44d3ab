"""The linearised-training lemma and the sandwich S_T[C] of notebooks 01 and 02, in float64.

Everything here is a closed form in kernel matrices. With Theta the NTK and K the
NNGP kernel of the architecture, ``X`` the N training inputs and ``x`` the test inputs:

* Lemma: ``f_T(x) = f_0(x) + B_T(x) (Y - f_0(X))`` with
  ``B_T = Theta_xX (Theta_XX + ridge I)^-1 P_T`` (:func:`training_operator`);
* Sandwich: ``h(x) - B_T(x) h(X) ~ GP(0, S_T[C])`` for ``h ~ GP(0, C)``
  (:func:`sandwich`): the deep-ensemble covariance is S_T[kappa], the RND error
  covariance S_T[2kappa] (standard), S_T[kappa] (centred predictor) or S_T[Theta]
  (Bayesian RND);
* GP posterior ``C_xx - C_xX (C_XX + noise I)^-1 C_Xx`` (:func:`gp_posterior`).

Loss and time conventions are the notebooks': loss ``1/2 sum ||f(X) - Y||^2``, step
``lr`` for ``steps`` steps, or gradient flow for time ``time`` (in units of ``lr``).
neural-tangents' ``predict`` uses the loss ``1/(2 |Y|) sum ||f(X) - Y||^2``, so its
``t`` equals ``lr * time * |Y|`` here (``|Y|`` = number of training targets).
"""

import functools
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import scipy.linalg
import scipy.optimize

from rndlib import validate

#: A condition number above this is reported with a warning: float64 solves lose
#: about log10(condition number) of their ~16 significant digits.
ILL_CONDITIONED = 1e12


@dataclass(frozen=True)
class KernelBlocks:
    """The three blocks of a covariance C: C(X, X), C(x, X) and C(x, x), as float64.

    Blocks add and scale, so that ``2 * nngp`` or ``nngp_u + nngp_g`` is the
    covariance of a sum of independent processes.
    """

    train_train: np.ndarray
    test_train: np.ndarray
    test_test: np.ndarray

    def __add__(self, other: "KernelBlocks") -> "KernelBlocks":
        return KernelBlocks(
            self.train_train + other.train_train,
            self.test_train + other.test_train,
            self.test_test + other.test_test,
        )

    def __rmul__(self, scale: float) -> "KernelBlocks":
        return KernelBlocks(
            scale * self.train_train, scale * self.test_train, scale * self.test_test
        )

    def with_noise(self, noise: float) -> "KernelBlocks":
        """Add independent noise of variance ``noise`` at the training inputs only."""
        noise = validate.finite("noise", noise, at_least=0.0)
        return KernelBlocks(
            self.train_train + noise * np.eye(len(self.train_train)),
            self.test_train,
            self.test_test,
        )


class TrainingOperator(NamedTuple):
    """``B_T(x)`` at the test inputs, shape (n_test, N), and the condition number it met."""

    matrix: np.ndarray
    condition_number: float


class GaussianPrediction(NamedTuple):
    """Mean (n_test, outputs) and covariance (n_test, n_test) of a Gaussian prediction."""

    mean: np.ndarray
    cov: np.ndarray
    condition_number: float


def kernel_blocks(kernel_fn, x_train: np.ndarray, x_test: np.ndarray, get: str) -> KernelBlocks:
    """The infinite-width ``get`` kernel ('nngp' or 'ntk') of a stax ``kernel_fn``, as blocks.

    Each block is computed once per kernel function and inputs, then served from a
    cache, read-only: neural-tangents' analytic kernels re-derive their shapes on
    every call (about 0.1 s each), and the notebooks ask for the same blocks many times.
    """
    validate.choice("get", get, ("nngp", "ntk"))
    x_train = validate.array("x_train", x_train, ("N", "d"))
    x_test = validate.array("x_test", x_test, ("n", x_train.shape[1]))

    def block(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return _kernel_block(kernel_fn, get, *_key(a), *_key(b))

    return KernelBlocks(block(x_train, x_train), block(x_test, x_train), block(x_test, x_test))


def _key(x: np.ndarray) -> tuple[bytes, tuple[int, ...]]:
    x = np.ascontiguousarray(x, np.float64)
    return x.tobytes(), x.shape


@functools.lru_cache(maxsize=128)
def _kernel_block(kernel_fn, get: str, a: bytes, a_shape, b: bytes, b_shape) -> np.ndarray:
    inputs = (
        np.frombuffer(x, np.float64).reshape(shape) for x, shape in ((a, a_shape), (b, b_shape))
    )
    block = np.array(kernel_fn(*inputs, get), dtype=np.float64)
    block.setflags(write=False)
    return block


def _eigh_psd(matrix: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray, float]:
    """Eigendecomposition of a symmetric PSD matrix in float64, negative round-off clipped."""
    matrix = np.asarray(matrix, np.float64)
    if not np.all(np.isfinite(matrix)):
        raise ValueError(f"{name} has non-finite entries")
    evals, evecs = scipy.linalg.eigh((matrix + matrix.T) / 2)
    evals = np.clip(evals, 0.0, None)
    cond = float(evals[-1] / evals[0]) if evals[0] > 0 else float("inf")
    if cond > ILL_CONDITIONED:
        warnings.warn(f"{name} has condition number {cond:.3g}", RuntimeWarning, stacklevel=3)
    return evals, evecs, cond


def training_operator(
    ntk: KernelBlocks,
    *,
    lr: float,
    steps: int | None = None,
    time: float | None = None,
    ridge: float = 0.0,
) -> TrainingOperator:
    """``B_T = Theta_xX A^-1 P_T`` with ``A = Theta_XX + ridge I`` (notebook 01, the lemma).

    ``P_T = I - (I - lr A)^steps`` for gradient descent, ``I - exp(-lr time A)`` for
    gradient flow, and ``I`` at convergence (neither ``steps`` nor ``time`` given).
    ``ridge > 0`` is the L2 pull ``ridge/2 ||theta - theta_0||^2`` towards the
    initialisation (notebook 03, observation noise). ``A^-1 P_T`` is formed in the
    eigenbasis of A, where it is finite even for singular A at finite T.

    Raises:
        ValueError: for both ``steps`` and ``time``, a step size at or past the
            stability limit ``2 / lambda_max(A)``, or a singular A at convergence.
    """
    lr = validate.finite("lr", lr, above=0.0)
    ridge = validate.finite("ridge", ridge, at_least=0.0)
    if steps is not None and time is not None:
        raise ValueError("give steps (gradient descent) or time (gradient flow), not both")
    evals, evecs, cond = _eigh_psd(ntk.train_train + ridge * np.eye(len(ntk.train_train)), "A")
    if steps is not None:
        steps = validate.integer("steps", steps, minimum=0)
        if lr * evals[-1] >= 2.0:
            raise ValueError(
                f"lr={lr:.4g} is past the stability limit 2/lambda_max = {2 / evals[-1]:.4g}"
            )
        # (1 - (1 - lr l)^T) / l, with its limit lr T at l = 0; expm1/log1p keep the
        # digits where lr l is tiny, a plain power serves where 1 - lr l < 0.
        base = 1.0 - lr * evals
        with np.errstate(divide="ignore", invalid="ignore"):
            fitted = np.where(base > 0, -np.expm1(steps * np.log1p(-lr * evals)), 1.0 - base**steps)
            gain = fitted / evals
        gain = np.where(evals > 0, gain, lr * steps)
    elif time is not None:
        time = validate.finite("time", time, at_least=0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            gain = -np.expm1(-lr * time * evals) / evals
        gain = np.where(evals > 0, gain, lr * time)
    else:
        if not evals[0] > 0:
            raise ValueError(
                f"A = Theta_XX + ridge I is singular (condition number {cond:.3g}): "
                "use a finite number of steps or ridge > 0"
            )
        gain = 1.0 / evals
    matrix = ntk.test_train @ (evecs * gain) @ evecs.T
    return TrainingOperator(matrix, cond)


def linearised_prediction(
    operator: np.ndarray, f0_test: np.ndarray, f0_train: np.ndarray, y_train: np.ndarray
) -> np.ndarray:
    """The lemma ``f_T(x) = f_0(x) + B_T(x) (Y - f_0(X))`` for one or many networks.

    ``operator`` is ``B_T`` (n_test, N) of :func:`training_operator` and ``y_train`` the
    targets (N, outputs). ``f0_test`` (..., n_test, outputs) and ``f0_train``
    (..., N, outputs) are the networks' outputs at initialisation; leading axes (ensemble
    members) broadcast.

    Raises:
        ValueError: naming the argument, for an ``operator`` that is not a finite matrix,
            a ``y_train`` that is not finite of shape (N, outputs) (a flat (N,) target
            would broadcast into a wrong-shaped answer), or an ``f0_test`` or ``f0_train``
            without n_test or N rows.
    """
    n_test, n_train = validate.array("operator", operator, ("n_test", "N")).shape
    validate.array("y_train", y_train, (n_train, "k"))
    for name, value, rows in (("f0_test", f0_test, n_test), ("f0_train", f0_train, n_train)):
        shape = np.shape(value)
        if len(shape) < 2 or shape[-2] != rows:
            raise ValueError(f"{name} must have shape (..., {rows}, outputs), got {shape}")
    return f0_test + np.asarray(operator) @ (np.asarray(y_train) - f0_train)


def sandwich(cov: KernelBlocks, operator: np.ndarray) -> np.ndarray:
    """``S_T[C] = C_xx - B C_Xx - C_xX B^T + B C_XX B^T``: Cov of ``h(x) - B h(X)``."""
    b = np.asarray(operator, np.float64)
    cross = b @ cov.test_train.T
    return cov.test_test - cross - cross.T + b @ cov.train_train @ b.T


def ensemble_prediction(
    nngp: KernelBlocks,
    ntk: KernelBlocks,
    y_train: np.ndarray,
    *,
    lr: float,
    steps: int | None = None,
    time: float | None = None,
) -> GaussianPrediction:
    """Distribution of an infinitely wide network trained from ``f_0 ~ GP(0, K)``.

    ``f_T(x) ~ N(B_T Y, S_T[kappa])`` (notebook 02, after Lee et al. 2019):
    the mean and covariance of a deep ensemble with infinitely many members.
    """
    y_train = validate.array("y_train", y_train, (len(ntk.train_train), "k"))
    op = training_operator(ntk, lr=lr, steps=steps, time=time)
    return GaussianPrediction(op.matrix @ y_train, sandwich(nngp, op.matrix), op.condition_number)


def log_marginal_likelihood(cov: np.ndarray, y: np.ndarray, noise: float) -> float:
    """``log N(y; 0, C_XX + noise I)``, the evidence a GP prior gives the targets ``y`` (N, 1).

    ``-1/2 y^T A^-1 y - 1/2 log det A - N/2 log 2 pi`` with ``A = C_XX + noise I``
    (Rasmussen & Williams 2006, eq. 2.30), by a Cholesky factor of A in float64. ``y`` is
    (N,) or (N, k): k target columns, independent draws of the same prior, add up.

    Raises:
        ValueError: naming the argument, for a ``cov`` that is not a finite square
            matrix, a ``y`` that is not finite with one row per row of ``cov``, or a
            negative or non-finite ``noise``.
        numpy.linalg.LinAlgError: if ``C_XX + noise I`` is not positive definite.
    """
    n = len(validate.square("cov", cov))
    validate.array("y", y, (n,) if np.ndim(y) == 1 else (n, "k"))
    noise = validate.finite("noise", noise, at_least=0.0)
    a = np.asarray(cov, np.float64) + noise * np.eye(len(cov))
    factor = scipy.linalg.cho_factor(a, lower=True)
    y = np.asarray(y, np.float64).reshape(len(a), -1)
    fit = float(np.sum(y * scipy.linalg.cho_solve(factor, y)))
    log_det = 2.0 * np.sum(np.log(np.diag(factor[0])))
    return -0.5 * fit - 0.5 * y.shape[1] * (log_det + len(a) * np.log(2 * np.pi))


def gp_noise_by_evidence(cov: np.ndarray, y: np.ndarray, bounds=(1e-4, 1e2)) -> float:
    """The noise variance that maximises :func:`log_marginal_likelihood` (type-II ML).

    Bounded scalar search over ``log noise`` (``scipy.optimize.minimize_scalar``).

    Raises:
        ValueError: naming the argument, for ``bounds`` that are not two finite
            positive numbers in increasing order.
    """
    if len(bounds) != 2:
        raise ValueError(f"bounds must be (low, high), got {bounds!r}")
    low = validate.finite("bounds[0]", bounds[0], above=0.0)
    high = validate.finite("bounds[1]", bounds[1], above=low)
    low, high = np.log(low), np.log(high)
    best = scipy.optimize.minimize_scalar(
        lambda log_noise: -log_marginal_likelihood(cov, y, float(np.exp(log_noise))),
        bounds=(low, high),
        method="bounded",
    )
    return float(np.exp(best.x))


def gp_posterior(cov: KernelBlocks, y_train: np.ndarray, noise: float = 0.0) -> GaussianPrediction:
    """GP posterior: mean ``C_xX A^-1 Y``, cov ``C_xx - C_xX A^-1 C_Xx``, ``A = C_XX + noise I``.

    With ``cov`` the NTK this is the NTK-GP posterior of Claims 2 and 3; with the
    NNGP kernel, the NNGP posterior.

    Raises:
        ValueError: if ``C_XX + noise I`` is singular.
    """
    y_train = validate.array("y_train", y_train, (len(cov.train_train), "k"))
    noisy = cov.with_noise(noise).train_train
    evals, evecs, cond = _eigh_psd(noisy, "C_XX + noise I")
    if not evals[0] > 0:
        raise ValueError(f"C_XX + noise I is singular (condition number {cond:.3g}): use noise > 0")
    solve = cov.test_train @ (evecs / evals) @ evecs.T
    return GaussianPrediction(solve @ y_train, cov.test_test - solve @ cov.test_train.T, cond)
