"""Shared fixtures: the toy data and the infinite-width kernels of the default spec."""

import numpy as np
import pytest

from rndlib import data, models, theory

QUICK_SUITE_SECONDS = pytest.StashKey[dict]()  # the quick suite's wall time per notebook


def pytest_terminal_summary(terminalreporter, config):
    """Print the quick suite's wall time per notebook (make timings measures the budgets)."""
    seconds = config.stash.get(QUICK_SUITE_SECONDS, None)
    if seconds:
        terminalreporter.write_sep("-", "quick suite, wall seconds per notebook")
        terminalreporter.write_line(", ".join(f"{k}: {v:.0f}" for k, v in seconds.items()))


@pytest.fixture(scope="session")
def toy():
    return data.load_dataset("toy_1d")


@pytest.fixture(scope="session")
def spec():
    return models.ArchSpec(depth=1, width=8192)


@pytest.fixture(scope="session")
def kernels(toy, spec):
    """(nngp, ntk) blocks on the training set and every fourth test point."""
    kernel_fn = models.network(spec)[2]
    x_test = toy.x_test[::4]
    return (
        theory.kernel_blocks(kernel_fn, toy.x_train, x_test, "nngp"),
        theory.kernel_blocks(kernel_fn, toy.x_train, x_test, "ntk"),
    )


@pytest.fixture(scope="session")
def lr(kernels):
    """Half the stability limit of gradient descent on the analytic NTK."""
    return 1.0 / np.linalg.eigvalsh(kernels[1].train_train)[-1]
