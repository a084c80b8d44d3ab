"""Posterior sampling at scale (notebook 07, ``make bench``): exact, pathwise CG, the sampler.

Four ways to ``draws`` joint samples of the NTK-GP posterior at ``n_test`` test inputs,
on a regression set of any size (:func:`regression_problem`):

- ``"exact"``: the analytic NTK ``Theta`` (neural-tangents' ``kernel_fn``, in blocks),
  a Cholesky factor of ``Theta_XX + sigma^2 I`` (``N^2`` memory, ``N^3 / 3`` flops) and
  one of the posterior covariance at the test inputs (``n_test^3 / 3``).
- ``"pathwise"``: pathwise conditioning (Wilson et al. 2020; Lin et al. 2023) with the
  solves by conjugate gradients, matrix-free: the prior is the empirical NTK of one
  network of the sampler's width, its draws ``J_0 psi`` and its kernel-vector products
  ``J_0 (J_0^T v)`` (``jax.linearize``, the forward pass computed once) never form an
  ``N x N`` matrix. It samples the same finite-width posterior that the sampler's
  linearisation does.
- ``"sampler"``: the Bayesian-RND sampler of Cor. 5.9 trained to convergence by Nesterov
  momentum (:func:`rndlib.sampling.converged_posterior_samples`). Above
  ``sampler_run_max_n`` its wall time is projected (:func:`projected_sampler_cost`).
- ``"linearised"``: the same sampler with every network replaced by its linearisation
  around its initialisation (the kernel regime of the paper's statements), trained in
  ``linearised_dtype``, its ``draws`` from one Bayesian RND of ``linearised_heads``
  heads (Cor. 5.9's single multi-headed network: one shared first layer, where four
  networks of 16 heads, vmapped, took 3.3 times as long per step); it samples the
  posterior that ``"pathwise"`` does, by Nesterov steps on the weights instead of CG
  on ``N``-dimensional systems.

Each measurement runs in a fresh process (``python -m rndlib.scaling --one METHOD N``),
which reports its wall time, its peak resident memory, and saves its posterior mean and
sample variance so that :func:`run` can compare them with the exact ones where those
exist. ``python -m rndlib.scaling`` (``make bench``) runs the study and writes
``data/results/bench_scaling.json`` and ``figures/bench_scaling_time_memory.png``.
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import jax.scipy.linalg
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_friedman1

from rndlib import data, metrics, models, paths, plotting, rnd, sampling, validate

METHODS = ("exact", "pathwise", "sampler", "linearised")
TIMED_STEPS = 20  # steps timed per network where the sampler's run is projected
INPUT_DIM = 16
#: The study's setting (``make bench``); notebook 07 runs a reduced form of it.
SETTING = {
    "train_sizes": [1000, 2000, 3000, 10000, 20000, 50000],
    "exact_max_n": 20000,
    "pathwise_max_n": 50000,
    "sampler_run_max_n": 3000,
    "linearised_dtype": "float32",
    "linearised_heads": 64,
    "n_test": 1000,
    "draws": 64,
    "heads": 16,
    "width": 2048,
    "noise": 0.25,
    "tol": 0.01,
    "seed": 0,
}
SPEC = models.ArchSpec(activation="erf", W_std=1.5, b_std=0.1)
BLOCK = 2000  # kernel rows per block of the exact method
VP_BATCH = 4  # kernel-vector products computed at once by the pathwise method


def regression_problem(n_train: int, n_test: int, seed: int = 0) -> data.Dataset:
    """Friedman's (1991) first function in 16 dimensions (5 of them used), at any size.

    ``sklearn.datasets.make_friedman1`` without its noise; inputs uniform on the cube,
    centred and scaled to unit mean square norm; targets standardised by the function's
    mean and standard deviation (3.72 here, 4.8 over the cube) and then given Gaussian noise
    of variance 0.25. Test inputs are drawn from the same law.
    """
    validate.integer("n_train", n_train)
    validate.integer("n_test", n_test)
    x, f = make_friedman1(n_train + n_test, n_features=INPUT_DIM, noise=0.0, random_state=seed)
    x = (x - 0.5) * np.sqrt(12.0 / INPUT_DIM)
    y = (f - 14.4) / 4.8 + 0.5 * np.random.default_rng(seed + 1).standard_normal(len(f))
    return data.Dataset(x[:n_train], y[:n_train, None], x[n_train:], y[n_train:, None])


def _kernel(kernel_fn, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.empty((len(a), len(b)))
    for i in range(0, len(a), BLOCK):
        out[i : i + BLOCK] = np.asarray(kernel_fn(a[i : i + BLOCK], b, "ntk"))
    return out


def exact_samples(
    spec: models.ArchSpec, dataset: data.Dataset, noise: float, draws: int, seed: int
):
    """Exact draws by Cholesky factors: samples (draws, n_test), mean and variance."""
    kernel_fn = models.network(spec)[2]
    k_train = _kernel(kernel_fn, dataset.x_train, dataset.x_train)
    k_train[np.diag_indices_from(k_train)] += noise
    k_cross = jnp.asarray(_kernel(kernel_fn, dataset.x_test, dataset.x_train))
    factor = jnp.linalg.cholesky(jnp.asarray(k_train))  # see _in_fresh_process
    del k_train
    half = np.asarray(jax.scipy.linalg.solve_triangular(factor, k_cross.T, lower=True))
    white_y = jax.scipy.linalg.solve_triangular(
        factor, jnp.asarray(dataset.y_train[:, 0]), lower=True
    )
    del factor, k_cross
    mean = half.T @ np.asarray(white_y)
    cov = _kernel(kernel_fn, dataset.x_test, dataset.x_test) - half.T @ half
    samples = sampling.gaussian_samples(mean, cov, draws, seed)
    return samples, mean, np.diag(cov)


def pathwise_samples(
    spec: models.ArchSpec, dataset: data.Dataset, noise: float, draws: int, seed: int, tol: float
):
    """Pathwise-conditioned draws, CG solves on the empirical NTK: samples, mean, iterations.

    ``f ~ GP(0, Theta_0)`` by ``f = J_0 psi``; each sample is
    ``f(x) + Theta_0(x, X) (Theta_0(X, X) + sigma^2 I)^-1 (Y - f(X) - sigma zeta)``, the
    ``draws + 1`` systems (one for the mean) solved together by CG to relative residual
    ``tol``. ``Theta_0 v = J_0 (J_0^T v)`` by ``jax.linearize`` on the training inputs:
    the network's forward pass is computed once, as in the linearised sampler.
    """
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
    weights, iterations = _conjugate_gradients(
        apply_fn, params, x_train, jnp.asarray(rhs), noise, tol
    )
    pulled = jax.lax.map(
        lambda w: _ntk_product(apply_fn, params, x_train, x_test, w), weights, batch_size=VP_BATCH
    )
    samples = np.asarray(prior[:, n:]) + np.asarray(pulled[1:])
    return samples, np.asarray(pulled[0]), int(iterations)


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


def projected_sampler_cost(
    spec: models.ArchSpec, dataset: data.Dataset, setting: dict, steps: tuple[int, int]
) -> float:
    """Wall time of the sampler projected to ``steps`` (mean network, Bayesian RND).

    Everything but the training loops runs (the largest NTK eigenvalues, the targets,
    the evaluation); each loop is timed over ``TIMED_STEPS`` steps, after a call that
    compiles it, and scaled to ``steps``.
    """
    s = setting
    short = {"heads": s["heads"], "seeds": s["draws"] // s["heads"], "noise": s["noise"]}
    short |= {"seed": s["seed"], "tol": 1e-300}
    start = time.perf_counter()
    one = sampling.converged_posterior_samples(spec, dataset, max_steps=1, **short)  # compiles
    rest = time.perf_counter() - start - sum(one.seconds)
    more = sampling.converged_posterior_samples(spec, dataset, max_steps=TIMED_STEPS, **short)
    per_step = np.array(more.seconds) / TIMED_STEPS
    if not np.all(per_step > 0):
        raise RuntimeError(f"timing failed: {per_step} s per step")
    return rest + float(per_step @ np.asarray(steps, float))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def measure_one(method: str, n_train: int, setting: dict, out: Path) -> dict:
    """Run one method at one size in this process; save its mean and sample variance to ``out``."""
    validate.choice("method", method, METHODS)
    s = setting
    dataset = regression_problem(n_train, s["n_test"], s["seed"])
    spec = SPEC.replace(width=s["width"])
    before = _peak_mb()
    start = time.perf_counter()
    extra: dict = {}
    if method == "exact":
        samples, mean, var = exact_samples(spec, dataset, s["noise"], s["draws"], s["seed"])
        extra["posterior_var"] = var
    elif method == "pathwise":
        samples, mean, iters = pathwise_samples(
            spec, dataset, s["noise"], s["draws"], s["seed"], s["tol"]
        )
        extra["iterations"] = iters
    elif method == "sampler" and n_train > s["sampler_run_max_n"]:
        projected = s["projected_steps"][str(n_train)]
        wall = projected_sampler_cost(spec.replace(heads=s["heads"]), dataset, s, projected)
        report = {"n_train": n_train, "n_test": s["n_test"], "wall_s": wall, "projected": True}
        report["peak_mb"] = _peak_mb()
        return report | {"peak_above_start_mb": report["peak_mb"] - before, "steps": projected}
    else:
        linear = {"linearised": True, "dtype": s["linearised_dtype"]}
        heads = s["linearised_heads"] if method == "linearised" else s["heads"]
        found = sampling.converged_posterior_samples(
            spec.replace(heads=heads),
            dataset,
            heads=heads,
            seeds=s["draws"] // heads,
            noise=s["noise"],
            seed=s["seed"],
            tol=s["tol"],
            **(linear if method == "linearised" else {}),
        )
        samples, mean = found.samples, found.mean
        extra |= {"steps": found.steps.tolist(), "converged": found.converged}
    wall = time.perf_counter() - start
    np.savez(out / f"{method}_{n_train}.npz", mean=mean, var=samples.var(axis=0), **extra)
    report = {"n_train": n_train, "n_test": s["n_test"], "wall_s": wall}
    report["peak_mb"] = _peak_mb()
    report["peak_above_start_mb"] = report["peak_mb"] - before
    return report | {k: v for k, v in extra.items() if k != "posterior_var"}


def _in_fresh_process(method: str, n_train: int, setting: dict, out: Path) -> dict:
    command = [sys.executable, "-m", "rndlib.scaling", "--one", method, str(n_train)]
    command += ["--setting", json.dumps(setting), "--out", str(out)]
    # One OpenBLAS thread for the exact method: its multithreaded Cholesky crashed
    # (segmentation fault) at N = 20,000 on the machine that ran make bench.
    env = os.environ | ({"OPENBLAS_NUM_THREADS": "1"} if method == "exact" else {})
    found = subprocess.run(command, capture_output=True, text=True, env=env)
    if found.returncode != 0:
        why = (found.stderr.strip().splitlines() or [f"exit status {found.returncode}"])[-1]
        return {"n_train": n_train, "failed": why}
    report = json.loads(found.stdout.strip().splitlines()[-1])
    (out / f"{method}_{n_train}.json").write_text(json.dumps(report))
    return report


def accuracy(method: str, n_train: int, out: Path) -> dict:
    """Error of a method's mean, and its sample variance over the exact posterior variance.

    ``mean_error``: ``||mean - mu|| / ||mu||``; ``variance_ratio``: the mean over test
    inputs of the sample variance over the posterior variance (1 for exact draws, up to
    the Monte-Carlo error of ``draws`` samples). None where no exact answer was computed.
    """
    exact = out / f"exact_{n_train}.npz"
    if not exact.exists():
        return {"mean_error": None, "variance_ratio": None}
    ref, got = np.load(exact), np.load(out / f"{method}_{n_train}.npz")
    return {
        "mean_error": metrics.relative_error(got["mean"], ref["mean"]),
        "variance_ratio": float(np.mean(got["var"] / ref["posterior_var"])),
    }


def crossover(small: list[dict], large: list[dict]) -> float | None:
    """Training-set size where ``large``'s fitted wall-time law overtakes ``small``'s, or None.

    The laws are power laws fitted to the measured sizes
    (:func:`rndlib.metrics.power_law_fit`). None if ``large`` never overtakes: it grows no
    more slowly, or its law is already the faster one at the smallest size either method
    was measured at (the laws' crossing lies below the measurements).
    """
    fit_a = metrics.power_law_fit([r["n_train"] for r in small], [r["wall_s"] for r in small])
    fit_b = metrics.power_law_fit([r["n_train"] for r in large], [r["wall_s"] for r in large])
    if fit_b.slope >= fit_a.slope:
        return None
    n_cross = float((fit_b.scale / fit_a.scale) ** (1.0 / (fit_a.slope - fit_b.slope)))
    smallest = min(r["n_train"] for r in small + large)
    return n_cross if n_cross > smallest else None


def projected_steps(runs: list[dict], n_train: int) -> list[int]:
    """Steps of the mean network and of the Bayesian RNDs at ``n_train``, from power laws in N.

    Fitted to the sampler's converged runs (``runs``; the Bayesian RNDs' largest count),
    since ``kappa`` grows in proportion to ``N`` for inputs drawn from a fixed law.
    """
    done = [r for r in runs if "failed" not in r and not r.get("projected")]
    if len(done) < 2:
        raise ValueError("projecting the sampler's steps needs converged runs at two sizes")
    n = [r["n_train"] for r in done]
    mean = metrics.power_law_fit(n, [r["steps"][0] for r in done])
    rnd = metrics.power_law_fit(n, [max(r["steps"][1:]) for r in done])
    return [int(np.ceil(mean(n_train))), int(np.ceil(rnd(n_train)))]


def run(setting: dict = SETTING, out: Path | None = None, log=print, resume: bool = False) -> dict:
    """The study: every method at every size it is run at, each in a fresh process.

    With ``resume``, a measurement whose report is already in ``out`` (from an earlier,
    interrupted run of the same setting) is read instead of run again.
    """
    out = out or paths.ROOT / "build" / "scaling"
    out.mkdir(parents=True, exist_ok=True)
    scaling = {m: [] for m in METHODS}
    setting = dict(setting)
    for n in setting["train_sizes"]:
        for method in METHODS:
            if n > setting.get(f"{method}_max_n", n):
                continue
            if method == "sampler" and n > setting["sampler_run_max_n"]:
                setting["projected_steps"] = {str(n): projected_steps(scaling["sampler"], n)}
            done = out / f"{method}_{n}.json"
            if resume and done.exists():
                found = json.loads(done.read_text())
            else:
                found = _in_fresh_process(method, n, setting, out)
            if "failed" not in found and not found.get("projected"):
                found |= accuracy(method, n, out)
            scaling[method].append(found)
            log(f"N = {n:6d} {method:8s} " + json.dumps(found))
    ok = {m: [r for r in runs if "failed" not in r] for m, runs in scaling.items()}
    pairs = {
        "sampler_vs_exact": ("exact", "sampler"),
        "sampler_vs_pathwise": ("pathwise", "sampler"),
        "linearised_vs_exact": ("exact", "linearised"),
        "linearised_vs_pathwise": ("pathwise", "linearised"),
    }
    cross = {
        name: crossover(ok[a], ok[b]) if len(ok[a]) > 1 and len(ok[b]) > 1 else None
        for name, (a, b) in pairs.items()
    }
    slopes = {
        m: metrics.power_law_fit([r["n_train"] for r in runs], [r["wall_s"] for r in runs]).slope
        for m, runs in ok.items()
        if len(runs) > 1
    }
    return {
        "machine": {
            "backend": jax.default_backend(),
            "cpu_count": os.cpu_count(),
            "processor": platform.machine(),
            "jax": jax.__version__,
        },
        "setting": setting,
        "scaling": scaling,
        "wall_slope": slopes,
        "crossover_n": cross,
    }


def plot(results: dict, name: str = "bench_scaling_time_memory") -> plt.Figure:
    """Wall time and peak memory against N, log-log, with the fitted laws and crossovers."""
    plotting.use_style()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.3))
    labels = {
        "exact": "exact (Cholesky)",
        "pathwise": "pathwise CG",
        "sampler": "Bayesian-RND sampler",
        "linearised": f"sampler, linearised ({results['setting']['linearised_dtype']})",
    }
    for method, runs in results["scaling"].items():
        i = METHODS.index(method)  # one colour per method, whatever the order of the file
        for projected in (False, True):
            kept = [r for r in runs if "failed" not in r and bool(r.get("projected")) == projected]
            if not kept:
                continue
            n = [r["n_train"] for r in kept]
            style = {"color": f"C{i}", "mfc": "w" if projected else f"C{i}"}
            style["ls"] = ":" if projected else "-"
            label = labels[method] + (", projected" if projected else "")
            left.plot(n, [r["wall_s"] for r in kept], "o", label=label, **style)
            right.plot(n, [r["peak_mb"] for r in kept], "o", label=label, **style)
    for pair, n_cross in results["crossover_n"].items():
        if n_cross is not None:
            left.axvline(n_cross, color="grey", ls=":", lw=1)
            left.text(
                n_cross,
                0.03,
                pair.replace("_", " ") + " (fitted laws)",
                transform=left.get_xaxis_transform(),
                rotation=90,
                fontsize=7,
                va="bottom",
                ha="right",
            )
    s = results["setting"]
    left.set(
        xscale="log",
        yscale="log",
        xlabel="training points N",
        ylabel="wall time (s)",
        title=f"{s['draws']} joint samples at {s['n_test']} test inputs",
    )
    right.set(
        xscale="log",
        yscale="log",
        xlabel="training points N",
        ylabel="peak memory (MB)",
        title="peak resident memory of the process",
    )
    left.legend(fontsize=8)
    plotting.savefig(fig, name)
    return fig


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", nargs=2, metavar=("METHOD", "N"))
    parser.add_argument("--setting", default=json.dumps(SETTING))
    parser.add_argument("--out", default=str(paths.ROOT / "build" / "scaling"))
    parser.add_argument("--resume", action="store_true", help="reuse the reports in --out")
    args = parser.parse_args()
    setting = json.loads(args.setting)
    if args.one:
        print(json.dumps(measure_one(args.one[0], int(args.one[1]), setting, Path(args.out))))
        return 0
    results = run(setting, Path(args.out), resume=args.resume)
    plot(results)
    print(data.write_results("bench_scaling", results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
