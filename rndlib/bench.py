"""``make bench``: the cost of uncertainty at 1,000 test points: RND, an ensemble, the exact GP.

Three ways to the same kind of uncertainty (notebooks 02 to 04): RND (one network with M
heads, trained T steps, its squared error at the test points), a deep ensemble (M
networks, trained T steps, their variance) and the exact NTK-GP posterior variance
(kernel blocks, then a Cholesky solve with noise 0.01). Each is timed as the training set grows
(M fixed) and as M grows (N fixed): the median wall time of repeats after a
warm-up call that includes compilation, and the peak resident memory of a fresh
process that runs only that measurement. ``make bench`` writes the results to
``data/results/bench.json`` and ``figures/bench_*.png`` (run by hand, under
``build/out/``; see :mod:`rndlib.paths`). A benchmark, not a test: its numbers depend on the
machine, which the results file describes.

Run ``python -m rndlib.bench`` (everything, about 5 minutes on 2 CPU cores) or
``python -m rndlib.bench --one METHOD N M`` (one measurement, printed as JSON).
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import scipy.linalg

from rndlib import data, metrics, models, plotting, rnd, theory, train

METHODS = ("rnd", "ensemble", "gp")
N_TEST = 1000
INPUT_DIM = 8
STEPS = 100
WIDTH = 512
TRAIN_SIZES = (100, 300, 1000, 3000)
HEADS = (8, 16, 32, 64, 128)
HEADS_AT_N = 16
N_AT_HEADS = 300
REPEATS = 3
GP_NOISE = 0.01  # observation noise of the GP: Theta_XX alone is too ill-conditioned at N = 3000


def _problem(n_train: int, seed: int = 0) -> data.Dataset:
    """Inputs ~ N(0, I / d) in d = 8 dimensions, y = sin(3 x . w): drawn with numpy."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_train + N_TEST, INPUT_DIM)) / np.sqrt(INPUT_DIM)
    y = np.sin(3.0 * x @ rng.standard_normal(INPUT_DIM))[:, None]
    return data.Dataset(x[:n_train], y[:n_train], x[n_train:], y[n_train:])


def _task(method: str, n_train: int, heads: int):
    """The computation to time: a function of no arguments returning the test variance."""
    d = _problem(n_train)
    spec = models.ArchSpec(width=WIDTH, heads=heads)
    kernel_fn = models.network(spec)[2]
    if method == "gp":

        def gp():
            ntk = theory.kernel_blocks(kernel_fn, d.x_train, d.x_test, "ntk")
            factor = scipy.linalg.cho_factor(ntk.train_train + GP_NOISE * np.eye(n_train))
            solve = scipy.linalg.cho_solve(factor, ntk.test_train.T)
            return np.diag(ntk.test_test) - np.sum(ntk.test_train * solve.T, axis=1)

        return gp
    lam = np.linalg.eigvalsh(np.asarray(kernel_fn(d.x_train, None, "ntk"), np.float64))[-1]
    lr = 1.0 / lam
    if method == "rnd":
        init_fn, apply_fn, _ = models.network(spec)
        predictor = init_fn(jax.random.PRNGKey(0), (-1, INPUT_DIM))[1]
        target = init_fn(jax.random.PRNGKey(1), (-1, INPUT_DIM))[1]

        def rnd_run():
            u_train, u_test = apply_fn(target, d.x_train), apply_fn(target, d.x_test)
            errors = rnd.rnd_error(
                apply_fn, predictor, d.x_train, d.x_test, u_train, u_test, lr=lr, steps=STEPS
            )
            return jnp.mean(errors**2, axis=1) / 2

        return rnd_run
    init_fn, apply_fn, _ = models.network(spec.replace(heads=1))
    params = models.init_params(init_fn, 0, heads, INPUT_DIM)

    def ensemble():
        trained = train.gradient_descent(
            apply_fn, params, d.x_train, d.y_train, lr=lr, steps=STEPS, members=True
        ).params
        return jnp.var(models.apply_members(apply_fn, trained, d.x_test)[..., 0], axis=0, ddof=1)

    return ensemble


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure_one(method: str, n_train: int, heads: int) -> dict:
    """Median wall time (after a warm-up) and peak memory of one method in this process."""
    task = _task(method, n_train, heads)
    before = _rss_mb()
    wall = metrics.median_wall_time(task, repeats=REPEATS)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    return {"wall_s": wall, "peak_rss_mb": peak, "rss_before_mb": before}


def _in_fresh_process(method: str, n_train: int, heads: int) -> dict:
    command = [sys.executable, "-m", "rndlib.bench", "--one", method, str(n_train), str(heads)]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def run_all() -> dict:
    """Every measurement, each in a fresh process, as the results file's dictionary."""
    by_n = {m: [] for m in METHODS}
    for n in TRAIN_SIZES:
        for m in METHODS:
            by_n[m].append(_in_fresh_process(m, n, HEADS_AT_N))
            print(f"N = {n:5d}, M = {HEADS_AT_N}: {m:8s} {by_n[m][-1]}", flush=True)
    by_heads = {m: [] for m in ("rnd", "ensemble")}
    for heads in HEADS:
        for m in by_heads:
            by_heads[m].append(_in_fresh_process(m, N_AT_HEADS, heads))
            print(f"N = {N_AT_HEADS}, M = {heads:3d}: {m:8s} {by_heads[m][-1]}", flush=True)
    return {
        "machine": {
            "backend": jax.default_backend(),
            "devices": [str(d) for d in jax.devices()],
            "cpu_count": os.cpu_count(),
            "processor": platform.machine(),
            "python": platform.python_version(),
            "jax": jax.__version__,
        },
        "setting": {
            "n_test": N_TEST,
            "input_dim": INPUT_DIM,
            "width": WIDTH,
            "steps": STEPS,
            "repeats": REPEATS,
            "train_sizes": TRAIN_SIZES,
            "heads_at_train_sizes": HEADS_AT_N,
            "heads": HEADS,
            "train_size_at_heads": N_AT_HEADS,
        },
        "by_train_size": by_n,
        "by_heads": by_heads,
        "ratios": ratios(by_n, by_heads),
    }


def ratios(by_n: dict, by_heads: dict) -> dict:
    """Wall-time ratios the README quotes: ensemble / RND, and GP / RND."""

    def wall(runs):
        return np.array([r["wall_s"] for r in runs])

    return {
        "ensemble_over_rnd_by_heads": wall(by_heads["ensemble"]) / wall(by_heads["rnd"]),
        "ensemble_over_rnd_by_train_size": wall(by_n["ensemble"]) / wall(by_n["rnd"]),
        "gp_over_rnd_by_train_size": wall(by_n["gp"]) / wall(by_n["rnd"]),
    }


def plot(results: dict) -> None:
    """figures/bench_train_size.png and figures/bench_heads.png (PNG and PDF)."""
    plotting.use_style()
    labels = {
        "rnd": "RND (1 network, M heads)",
        "ensemble": "ensemble (M networks)",
        "gp": "exact NTK-GP",
    }
    for name, key, xs, xlabel in [
        ("bench_train_size", "by_train_size", TRAIN_SIZES, f"training points N (M = {HEADS_AT_N})"),
        ("bench_heads", "by_heads", HEADS, f"heads or members M (N = {N_AT_HEADS})"),
    ]:
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
        for method, runs in results[key].items():
            color = f"C{METHODS.index(method)}"
            left.plot(xs, [r["wall_s"] for r in runs], "o-", color=color, label=labels[method])
            growth = [max(r["peak_rss_mb"] - r["rss_before_mb"], 0.0) for r in runs]
            right.plot(xs, growth, "o-", color=color, label=labels[method])
        left.set(xscale="log", yscale="log", xlabel=xlabel, ylabel="wall time (s, median)")
        left.set_title(f"uncertainty at {N_TEST} test points, {results['machine']['backend']}")
        right.set(xscale="log", xlabel=xlabel, ylabel="peak memory growth (MB)")
        right.set_title("peak resident memory above the process's start")
        left.legend(fontsize=8)
        plotting.savefig(fig, name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", nargs=3, metavar=("METHOD", "N", "M"))
    args = parser.parse_args()
    if args.one:
        method, n_train, heads = args.one[0], int(args.one[1]), int(args.one[2])
        if method not in METHODS:
            parser.error(f"METHOD must be one of {METHODS}, got {method!r}")
        print(json.dumps(measure_one(method, n_train, heads)))
        return 0
    results = run_all()
    print(data.write_results("bench", results))
    plot(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
