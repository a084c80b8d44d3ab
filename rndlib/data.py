"""Toy data generated with numpy and saved under data/ with its SHA-256; scikit-learn's real data.

JAX's random streams change between versions, numpy's ``default_rng`` streams do
not, so the toy data are drawn with numpy from a seed, written once as CSV (text
that GitHub shows), and every load checks the file against ``data/SHA256SUMS``.
Regenerate with ``python -m rndlib.data``. The real data sets ship with the pinned
scikit-learn (nothing is downloaded); their splits are seeded.
"""

import csv
import hashlib
import json
from typing import Any, NamedTuple

import numpy as np
import sklearn.datasets
import sklearn.model_selection
import sklearn.preprocessing

from rndlib import paths, validate

CHECKSUMS = paths.DATA / "SHA256SUMS"


class _Fields(NamedTuple):
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


class Dataset(_Fields):
    """A regression set: inputs of shape (n, d), targets of shape (n, k), all finite.

    Checked when made, so that a target of shape (n,) (which would broadcast a squared
    loss into an n x n residual), a NaN or mismatched sizes stop here, naming the field.
    The arrays are stored as given.
    """

    __slots__ = ()

    def __new__(cls, x_train, y_train, x_test, y_test):
        x = validate.array("x_train", x_train, ("n", "d"))
        n, d = x.shape
        if n == 0:
            raise ValueError("x_train must hold at least one input, got shape (0, d)")
        k = validate.array("y_train", y_train, (n, "k")).shape[1]
        m = validate.array("x_test", x_test, ("m", d)).shape[0]
        validate.array("y_test", y_test, (m, k))
        return super().__new__(cls, x_train, y_train, x_test, y_test)


def make_toy_1d(seed: int = 0, n_per_cluster: int = 10, noise: float = 0.1) -> Dataset:
    """y = x sin x + noise on two clusters, [-2, -2/3] and [2/3, 2]; a test grid on [-6, 6].

    The test targets are the noise-free function on 200 evenly spaced points.

    Raises:
        ValueError: naming the argument, for a negative or non-integer ``seed``.
    """
    validate.integer("seed", seed, minimum=0)
    rng = np.random.default_rng(seed)
    x = np.concatenate(
        [rng.uniform(-2.0, -2.0 / 3.0, n_per_cluster), rng.uniform(2.0 / 3.0, 2.0, n_per_cluster)]
    )
    y = x * np.sin(x) + noise * rng.standard_normal(x.shape)
    x_test = np.linspace(-6.0, 6.0, 200)
    return Dataset(x[:, None], y[:, None], x_test[:, None], (x_test * np.sin(x_test))[:, None])


def make_toy_2d(seed: int = 0, n_per_cluster: int = 15, noise: float = 0.1) -> Dataset:
    """y = sin(x1) cos(x2) + noise on three clusters in the plane; a 30 x 30 grid on [-4, 4]^2.

    The clusters are Gaussian blobs (sd 0.4) around (-2, -1), (2, -1) and (0, 2); the
    test targets are the noise-free function on the grid, in row-major order (x2 slowest).

    Raises:
        ValueError: naming the argument, for a negative or non-integer ``seed``.
    """
    validate.integer("seed", seed, minimum=0)
    rng = np.random.default_rng(seed)
    centres = np.array([[-2.0, -1.0], [2.0, -1.0], [0.0, 2.0]])
    x = np.concatenate([c + 0.4 * rng.standard_normal((n_per_cluster, 2)) for c in centres])
    y = np.sin(x[:, 0]) * np.cos(x[:, 1]) + noise * rng.standard_normal(len(x))
    axis = np.linspace(-4.0, 4.0, 30)
    grid = np.stack([g.ravel() for g in np.meshgrid(axis, axis)], axis=1)
    truth = np.sin(grid[:, 0]) * np.cos(grid[:, 1])
    return Dataset(x, y[:, None], grid, truth[:, None])


#: Input dimensions of the two benchmark problems (``make bench``, notebook 07).
FRIEDMAN_DIM = 16
SINE_DIM = 8


def make_friedman(n_train: int, n_test: int, seed: int = 0) -> Dataset:
    """Friedman's (1991) first function in 16 dimensions (5 of them used), at any size.

    ``sklearn.datasets.make_friedman1`` without its noise; inputs uniform on the cube,
    centred and scaled to unit mean square norm; targets standardised by the function's
    mean and standard deviation (3.72 here, 4.8 over the cube) and then given Gaussian noise
    of variance 0.25. Test inputs are drawn from the same law.

    Raises:
        ValueError: naming the argument, for sizes that are not positive integers or a
            negative or non-integer ``seed``.
    """
    validate.integer("n_train", n_train)
    validate.integer("n_test", n_test)
    validate.integer("seed", seed, minimum=0)
    x, f = sklearn.datasets.make_friedman1(
        n_train + n_test, n_features=FRIEDMAN_DIM, noise=0.0, random_state=seed
    )
    x = (x - 0.5) * np.sqrt(12.0 / FRIEDMAN_DIM)
    y = (f - 14.4) / 4.8 + 0.5 * np.random.default_rng(seed + 1).standard_normal(len(f))
    return Dataset(x[:n_train], y[:n_train, None], x[n_train:], y[n_train:, None])


def make_sine(n_train: int, n_test: int, seed: int = 0) -> Dataset:
    """Inputs ~ N(0, I / d) in d = 8 dimensions and noise-free targets ``sin(3 x . w)``.

    Raises:
        ValueError: naming the argument, for sizes that are not positive integers or a
            negative or non-integer ``seed``.
    """
    validate.integer("n_train", n_train)
    validate.integer("n_test", n_test)
    rng = np.random.default_rng(validate.integer("seed", seed, minimum=0))
    x = rng.standard_normal((n_train + n_test, SINE_DIM)) / np.sqrt(SINE_DIM)
    y = np.sin(3.0 * x @ rng.standard_normal(SINE_DIM))[:, None]
    return Dataset(x[:n_train], y[:n_train], x[n_train:], y[n_train:])


GENERATORS = {"toy_1d": make_toy_1d, "toy_2d": make_toy_2d}


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_checksums() -> dict[str, str]:
    if not CHECKSUMS.exists():
        return {}
    rows = (line.split() for line in CHECKSUMS.read_text().splitlines() if line.strip())
    return {name: digest for digest, name in rows}


def write_dataset(name: str, data: Dataset) -> str:
    """Write ``data/<name>.csv`` (columns split, x1..xd, y) and record its SHA-256."""
    path = paths.DATA / f"{name}.csv"
    dim = data.x_train.shape[1]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["split", *(f"x{i + 1}" for i in range(dim)), "y"])
        for split, xs, ys in (
            ("train", data.x_train, data.y_train),
            ("test", data.x_test, data.y_test),
        ):
            for x, y in zip(xs, ys, strict=True):
                writer.writerow([split, *(format(v, ".17g") for v in (*x, *y))])
    digests = _read_checksums() | {path.name: _sha256(path)}
    CHECKSUMS.write_text("".join(f"{d}  {n}\n" for n, d in sorted(digests.items())))
    return digests[path.name]


def load_dataset(name: str) -> Dataset:
    """Read ``data/<name>.csv`` after checking it against its recorded SHA-256.

    Raises:
        ValueError: if the file's checksum differs from the one in data/SHA256SUMS.
    """
    path = paths.DATA / f"{name}.csv"
    expected = _read_checksums().get(path.name)
    if expected is None or expected != _sha256(path):
        raise ValueError(
            f"{path} does not match its SHA-256 in {CHECKSUMS}; regenerate with "
            "`python -m rndlib.data` if the change is intended."
        )
    rows = np.genfromtxt(path, delimiter=",", names=True, dtype=None, encoding="utf-8")
    columns = [c for c in rows.dtype.names if c.startswith("x")]

    def split(which: str) -> tuple[np.ndarray, np.ndarray]:
        part = rows[rows["split"] == which]
        x = np.stack([part[c].astype(np.float64) for c in columns], axis=1)
        return x, part["y"].astype(np.float64)[:, None]

    return Dataset(*split("train"), *split("test"))


def load_diabetes_split(seed: int, test_fraction: float = 0.3) -> Dataset:
    """scikit-learn's diabetes data (442 patients, 10 features), split and standardised.

    A seeded random split (``train_test_split``); inputs are standardised with the
    training split's statistics and divided by sqrt(10), so that ``|x|^2`` is about 1
    as for the toy data, and the targets are standardised with the training mean and
    standard deviation (so that a GP with unit signal variance fits them).

    Raises:
        ValueError: naming the argument, for a negative or non-integer ``seed`` or a
            ``test_fraction`` outside (0, 1).
    """
    validate.integer("seed", seed, minimum=0)
    test_fraction = validate.finite("test_fraction", test_fraction, above=0.0, below=1.0)
    x, y = sklearn.datasets.load_diabetes(return_X_y=True)
    x_train, x_test, y_train, y_test = sklearn.model_selection.train_test_split(
        x, y[:, None], test_size=test_fraction, random_state=seed
    )
    scaler = sklearn.preprocessing.StandardScaler().fit(x_train)
    mean, sd = y_train.mean(), y_train.std()
    scale = np.sqrt(x.shape[1])
    return Dataset(
        scaler.transform(x_train) / scale,
        (y_train - mean) / sd,
        scaler.transform(x_test) / scale,
        (y_test - mean) / sd,
    )


class OODSplit(NamedTuple):
    """Digits for out-of-distribution detection: train on some classes, test on all.

    ``x_train`` (n, 64) with one-hot ``y_train`` (n, classes in distribution);
    ``x_test`` holds held-out images of the training classes, then images of the
    others; ``is_ood`` (n_test,) is 1 for the latter, and ``digit_test`` (n_test,) is
    each test image's digit.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    is_ood: np.ndarray
    digit_test: np.ndarray


def load_digits_ood(seed: int, n_train: int, n_test: int, in_classes: int = 5) -> OODSplit:
    """scikit-learn's 8x8 digits (1797 images): classes below ``in_classes`` are in distribution.

    ``n_train`` images of the in-distribution classes train, ``n_test`` held-out ones
    and ``n_test`` images of the other classes test, all drawn without replacement
    by a numpy generator seeded with ``seed``. Pixels (0 to 16) are divided by the
    mean image norm, so that ``|x|`` is about 1.

    Raises:
        ValueError: naming the argument, for a negative or non-integer ``seed``, sizes
            that are not positive integers, or more images than the classes hold.
    """
    validate.integer("seed", seed, minimum=0)
    validate.integer("n_train", n_train)
    validate.integer("n_test", n_test)
    x, label = sklearn.datasets.load_digits(return_X_y=True)
    x = x / np.mean(np.linalg.norm(x, axis=1))
    rng = np.random.default_rng(seed)
    inside = rng.permutation(np.flatnonzero(label < in_classes))
    outside = rng.permutation(np.flatnonzero(label >= in_classes))
    if n_train + n_test > len(inside) or n_test > len(outside):
        raise ValueError(
            f"n_train + n_test must not exceed the {len(inside)} in-distribution images "
            f"(and n_test the {len(outside)} others), got {n_train} and {n_test}"
        )
    train, test_in, test_out = (
        inside[:n_train],
        inside[n_train : n_train + n_test],
        outside[:n_test],
    )
    return OODSplit(
        x[train],
        np.eye(in_classes)[label[train]],
        np.concatenate([x[test_in], x[test_out]]),
        np.repeat([0, 1], n_test),
        label[np.concatenate([test_in, test_out])],
    )


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as JSON's numbers and lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_results(notebook: str, results: dict[str, Any]) -> str:
    """Write a notebook's headline numbers and publish everything the run staged.

    The last call of a notebook's checks cell, made only once its checks passed:
    ``data/results/<notebook>.json`` and the figures staged by
    :func:`rndlib.plotting.savefig` are moved into place together
    (:func:`rndlib.paths.publish`). Keys are sorted and numbers written in full, so
    that two runs that compute the same numbers write the same bytes. Returns the
    results file's path, relative to the output folder.
    """
    target = paths.results_file(notebook)
    text = json.dumps(_plain(results), indent=2, sort_keys=True, allow_nan=False) + "\n"
    paths.staged(target).write_text(text)
    paths.publish()
    return str(target.relative_to(paths.OUTPUT))


if __name__ == "__main__":
    for dataset_name, generate in GENERATORS.items():
        print(dataset_name, write_dataset(dataset_name, generate()))
