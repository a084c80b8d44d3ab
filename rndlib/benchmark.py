"""``make bench``: what uncertainty costs, and posterior sampling at scale, measured alone.

Two studies, each measurement in a fresh process that reports its wall time and peak
resident memory (:func:`in_fresh_process`), beside the :func:`machine` (a benchmark, not
a test: its numbers depend on the machine).

- **cost** (``data/results/bench.json``, ``figures/bench_train_size.png``,
  ``figures/bench_heads.png``): an uncertainty at 1,000 test points of
  :func:`rndlib.data.make_sine` three ways: RND (one network with K heads, T steps, its
  squared error), a deep ensemble (M = K networks, T steps, their variance) and the exact
  NTK-GP posterior variance (:func:`rndlib.conditioning.exact_posterior`, noise 0.01); the
  median wall time of ``repeats`` calls after one that compiles, as N and as K = M grow.
- **scaling** (``data/results/bench_scaling.json``, ``figures/bench_scaling_time_memory.png``;
  notebook 07 reads it): ``draws`` joint NTK-GP posterior samples at ``n_test`` inputs of
  :func:`rndlib.data.make_friedman` by each of :data:`SAMPLERS`: ``"exact"``
  (:func:`rndlib.conditioning.exact_samples`, float64), ``"pathwise"`` and
  ``"pathwise_float32"`` (:func:`rndlib.conditioning.pathwise_samples`: conjugate gradients on
  one width-``width`` network's empirical NTK), ``"sampler"`` (Cor. 5.9 trained to the
  stopping rule, :func:`rndlib.sampling.converged_posterior_samples`, float64; above
  ``sampler_run_max_n`` its time is projected, :func:`projected_sampler_cost`) and
  ``"linearised"`` (the same on each network's linearisation, one Bayesian RND of
  ``linearised_heads`` heads, in ``linearised_dtype``). The linearised sampler and
  pathwise conditioning sample the same finite-width posterior: compare them at one
  precision.

``python -m rndlib.benchmark`` runs both (``make bench``), ``--study cost`` or ``--study
scaling`` one, ``--one`` a single measurement (the fresh process's command).
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from rndlib import (
    conditioning,
    data,
    metrics,
    models,
    paths,
    plotting,
    rnd,
    sampling,
    schedule,
    tables,
    train,
    validate,
)

#: The cost study: RND, an ensemble and the exact GP, each at N_TEST test points.
COST_METHODS = ("rnd", "ensemble", "gp")
COST = {
    "n_test": 1000,
    "width": 512,
    "steps": 100,
    "repeats": 3,
    "train_sizes": [100, 300, 1000, 3000],
    "heads_at_train_sizes": 16,
    "heads": [8, 16, 32, 64, 128],
    "train_size_at_heads": 300,
    "gp_noise": 0.01,  # the GP's observation noise: Theta_XX alone is too ill-conditioned
}

#: The scaling study's samplers and setting; notebook 07 runs a reduced form of it.
SAMPLERS = ("exact", "pathwise", "pathwise_float32", "sampler", "linearised")
SETTING = {
    "train_sizes": [1000, 2000, 3000, 10000, 20000],
    "exact_max_n": 20000,
    "pathwise_max_n": 20000,
    "pathwise_float32_max_n": 20000,
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
TIMED_STEPS = 20  # steps timed per network where the sampler's run is projected


def machine() -> dict:
    """The machine a measurement ran on: backend, devices, CPUs, Python and JAX."""
    return {
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "cpu_count": os.cpu_count(),
        "processor": platform.machine(),
        "system": platform.system(),
        "python": platform.python_version(),
        "jax": jax.__version__,
    }


def peak_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def in_fresh_process(arguments: list[str], env: dict | None = None) -> dict:
    """``python -m rndlib.benchmark --one ARGUMENTS`` in a new process: its JSON report.

    A process that fails is reported as ``{"failed": its last line of stderr}``.
    """
    command = [sys.executable, "-m", "rndlib.benchmark", "--one", *arguments]
    found = subprocess.run(command, capture_output=True, text=True, env=env)
    if found.returncode != 0:
        return {"failed": (found.stderr.strip().splitlines() or [f"exit {found.returncode}"])[-1]}
    return json.loads(found.stdout.strip().splitlines()[-1])


def cost_task(method: str, n_train: int, heads: int):
    """The computation the cost study times: a function of no arguments giving the variance."""
    validate.choice("method", method, COST_METHODS)
    d = data.make_sine(n_train, COST["n_test"])
    spec = models.ArchSpec(width=COST["width"], heads=heads)
    if method == "gp":
        return lambda: np.diag(conditioning.exact_posterior(spec, d, COST["gp_noise"])[1])
    lr = schedule.analytic_step(spec, d.x_train)
    steps = COST["steps"]
    if method == "rnd":
        init_fn, apply_fn, _ = models.network(spec)
        u0 = init_fn(jax.random.PRNGKey(0), (-1, data.SINE_DIM))[1]
        g = init_fn(jax.random.PRNGKey(1), (-1, data.SINE_DIM))[1]
        targets = (apply_fn(g, d.x_train), apply_fn(g, d.x_test))
        return lambda: (
            jnp.mean(
                rnd.rnd_error(apply_fn, u0, d.x_train, d.x_test, *targets, lr=lr, steps=steps) ** 2,
                axis=1,
            )
            / 2
        )
    init_fn, apply_fn, _ = models.network(spec.replace(heads=1))
    params = models.init_params(init_fn, 0, heads, data.SINE_DIM)
    fit = train.gradient_descent

    def ensemble():
        trained = fit(apply_fn, params, d.x_train, d.y_train, lr=lr, steps=steps, members=True)
        return jnp.var(
            models.apply_members(apply_fn, trained.params, d.x_test)[..., 0], axis=0, ddof=1
        )

    return ensemble


def measure_cost(method: str, n_train: int, heads: int) -> dict:
    """Median wall time (after a warm-up) and peak memory of one method in this process."""
    task = cost_task(method, n_train, heads)
    before = peak_mb()
    wall = metrics.median_wall_time(task, repeats=COST["repeats"])
    return {"wall_s": wall, "peak_rss_mb": peak_mb(), "rss_before_mb": before}


def run_cost(log=print) -> dict:
    """Every measurement of the cost study, each in a fresh process: the results file."""

    def one(method, n, heads):
        found = in_fresh_process(["cost", method, str(n), "--heads", str(heads)])
        log(f"N = {n:5d}, K = M = {heads:3d}: {method:8s} {found}")
        return found

    by_n = {
        m: [one(m, n, COST["heads_at_train_sizes"]) for n in COST["train_sizes"]]
        for m in COST_METHODS
    }
    by_heads = {
        m: [one(m, COST["train_size_at_heads"], k) for k in COST["heads"]]
        for m in ("rnd", "ensemble")
    }
    wall = {k: np.array([r["wall_s"] for r in runs]) for k, runs in by_n.items()}
    at_heads = {k: np.array([r["wall_s"] for r in runs]) for k, runs in by_heads.items()}
    ratios = {
        "ensemble_over_rnd_by_heads": at_heads["ensemble"] / at_heads["rnd"],
        "ensemble_over_rnd_by_train_size": wall["ensemble"] / wall["rnd"],
        "gp_over_rnd_by_train_size": wall["gp"] / wall["rnd"],
    }
    found = {"setting": COST, "by_train_size": by_n, "by_heads": by_heads, "ratios": ratios}
    return {"machine": machine()} | found


def projected_sampler_cost(spec: models.ArchSpec, dataset, setting: dict, steps) -> float:
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


def _draw(method: str, n_train: int, setting: dict):
    # samples (draws, n_test), mean and what else the report keeps, of one sampler
    s, dataset = setting, data.make_friedman(n_train, setting["n_test"], setting["seed"])
    spec = SPEC.replace(width=s["width"])
    if method == "exact":
        samples, mean, var = conditioning.exact_samples(
            spec, dataset, s["noise"], s["draws"], s["seed"]
        )
        return samples, mean, {"posterior_var": var}
    if method.startswith("pathwise"):
        dtype = "float32" if method == "pathwise_float32" else "float64"
        arguments = (spec, dataset, s["noise"], s["draws"], s["seed"], s["tol"], dtype)
        samples, mean, iterations = conditioning.pathwise_samples(*arguments)
        return samples, mean, {"iterations": iterations}
    linear = {"linearised": True, "dtype": s["linearised_dtype"]} if method == "linearised" else {}
    heads = s["linearised_heads"] if method == "linearised" else s["heads"]
    found = sampling.converged_posterior_samples(
        spec.replace(heads=heads),
        dataset,
        heads=heads,
        seeds=s["draws"] // heads,
        noise=s["noise"],
        seed=s["seed"],
        tol=s["tol"],
        **linear,
    )
    return found.samples, found.mean, {"steps": found.steps.tolist(), "converged": found.converged}


def measure_sampler(method: str, n_train: int, setting: dict, out: Path) -> dict:
    """One sampler at one size in this process; its mean and sample variance go to ``out``."""
    validate.choice("method", method, SAMPLERS)
    before, start = peak_mb(), time.perf_counter()
    report = {"n_train": n_train, "n_test": setting["n_test"]}
    if method == "sampler" and n_train > setting["sampler_run_max_n"]:
        steps = setting["projected_steps"][str(n_train)]
        spec = SPEC.replace(width=setting["width"], heads=setting["heads"])
        dataset = data.make_friedman(n_train, setting["n_test"], setting["seed"])
        wall = projected_sampler_cost(spec, dataset, setting, steps)
        return report | {"wall_s": wall, "projected": True, "peak_mb": peak_mb(), "steps": steps}
    samples, mean, extra = _draw(method, n_train, setting)
    wall = time.perf_counter() - start
    np.savez(out / f"{method}_{n_train}.npz", mean=mean, var=samples.var(axis=0), **extra)
    report |= {"wall_s": wall, "peak_mb": peak_mb(), "peak_above_start_mb": peak_mb() - before}
    return report | {k: v for k, v in extra.items() if k != "posterior_var"}


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

    Fitted to the sampler's converged runs (``runs``; the Bayesian RNDs' largest count): the
    condition number ``rho`` grows in proportion to ``N`` for inputs drawn from a fixed law.
    """
    done = [r for r in runs if "failed" not in r and not r.get("projected")]
    if len(done) < 2:
        raise ValueError("projecting the sampler's steps needs converged runs at two sizes")
    n = [r["n_train"] for r in done]
    mean = metrics.power_law_fit(n, [r["steps"][0] for r in done])
    heads = metrics.power_law_fit(n, [max(r["steps"][1:]) for r in done])
    return [int(np.ceil(mean(n_train))), int(np.ceil(heads(n_train)))]


#: The pairs whose crossover the scaling study reports: (the faster at small N, the other).
PAIRS = {
    "sampler_vs_exact": ("exact", "sampler"),
    "linearised_vs_exact": ("exact", "linearised"),
    "linearised_vs_pathwise_float32": ("pathwise_float32", "linearised"),
    "pathwise_vs_exact": ("exact", "pathwise"),
}


def _measured(method: str, n: int, setting: dict, out: Path, resume: bool) -> dict:
    done = out / f"{method}_{n}.json"
    if resume and done.exists():
        return json.loads(done.read_text())
    arguments = ["scaling", method, str(n), "--setting", json.dumps(setting), "--out", str(out)]
    # One OpenBLAS thread for the exact method: its multithreaded Cholesky crashed
    # (segmentation fault) at N = 20,000 on a 2-core machine.
    env = os.environ | ({"OPENBLAS_NUM_THREADS": "1"} if method == "exact" else {})
    found = {"n_train": n} | in_fresh_process(arguments, env)
    if "failed" not in found:
        done.write_text(json.dumps(found))
    return found


def run_scaling(setting: dict = SETTING, out: Path | None = None, log=print, resume=False) -> dict:
    """The scaling study: every sampler at every size it runs at, each in a fresh process.

    With ``resume``, a measurement whose report is already in ``out`` (from an earlier,
    interrupted run of the same setting) is read instead of run again.
    """
    out = out or paths.ROOT / "build" / "scaling"
    out.mkdir(parents=True, exist_ok=True)
    runs, setting = {m: [] for m in SAMPLERS}, dict(setting)
    for n in setting["train_sizes"]:
        for method in (m for m in SAMPLERS if n <= setting.get(f"{m}_max_n", n)):
            if method == "sampler" and n > setting["sampler_run_max_n"]:
                setting["projected_steps"] = {str(n): projected_steps(runs["sampler"], n)}
            found = _measured(method, n, setting, out, resume)
            if "failed" not in found and not found.get("projected"):
                found |= accuracy(method, n, out)
            runs[method].append(found)
            log(f"N = {n:6d} {method:16s} " + json.dumps(found))
    ok = {m: [r for r in found if "failed" not in r] for m, found in runs.items()}
    cross = {
        name: crossover(ok[a], ok[b]) if len(ok[a]) > 1 and len(ok[b]) > 1 else None
        for name, (a, b) in PAIRS.items()
    }
    slopes = {
        m: metrics.power_law_fit([r["n_train"] for r in found], [r["wall_s"] for r in found]).slope
        for m, found in ok.items()
        if len(found) > 1
    }
    return {
        "machine": machine(),
        "setting": setting,
        "scaling": runs,
        "wall_slope": slopes,
        "crossover_n": cross,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", choices=("cost", "scaling", "both"), default="both")
    parser.add_argument("--one", nargs=3, metavar=("STUDY", "METHOD", "N"))
    parser.add_argument("--heads", type=int, default=COST["heads_at_train_sizes"])
    parser.add_argument("--setting", default=json.dumps(SETTING))
    parser.add_argument("--out", default=str(paths.ROOT / "build" / "scaling"))
    parser.add_argument("--resume", action="store_true", help="reuse the reports in --out")
    args = parser.parse_args()
    if args.one:
        study, method, n = args.one[0], args.one[1], int(args.one[2])
        if study == "cost":
            print(json.dumps(measure_cost(method, n, args.heads)))
        else:
            print(json.dumps(measure_sampler(method, n, json.loads(args.setting), Path(args.out))))
        return 0
    if args.study in ("cost", "both"):
        results = run_cost()
        print(data.write_results("bench", results))
        plotting.plot_bench_cost(results)
    if args.study in ("scaling", "both"):
        results = run_scaling(json.loads(args.setting), Path(args.out), resume=args.resume)
        plotting.plot_bench_scaling(results)
        print(data.write_results("bench_scaling", results))
    if args.study == "both":
        tables.write_block("bench")  # data/BENCHMARKS.md, from the files just written
    return 0


if __name__ == "__main__":
    sys.exit(main())
