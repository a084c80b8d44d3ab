"""rndlib: the theory and training code behind the rnd-equivalence notebooks.

One module per concept, each imported by name (``from rndlib import train``): :data:`API`
lists every module and its public names, the whole public surface (a test holds it to the
modules). Importing the package switches JAX to float64, which every identity checked here
is computed in, and imports neural-tangents without TensorFlow
(:func:`neural_tangents_compat.install`, a top-level module of this distribution).
"""

import neural_tangents_compat

neural_tangents_compat.install()

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

__version__ = "0.1.0"

#: Every public module of rndlib and its public names, in the order a reader meets them.
# fmt: off
API: dict[str, tuple[str, ...]] = {
    # where files live; staged, atomic publication
    "paths": (
        "ROOT", "DATA", "NOTEBOOKS", "OUTPUT", "FIGURES", "RESULTS", "STAGING", "results_file",
        "committed_results", "staged", "publish",
    ),
    # data sets, validated, and the benchmark problems; results files
    "data": (
        "CHECKSUMS", "Dataset", "make_toy_1d", "make_toy_2d", "FRIEDMAN_DIM", "SINE_DIM",
        "make_friedman", "make_sine", "GENERATORS", "write_dataset", "load_dataset",
        "load_diabetes_split", "OODSplit", "load_digits_ood", "write_results",
    ),
    # argument checks that name the argument
    "validate": (
        "SYMMETRY_RTOL", "flag", "listed", "integer", "integers", "increasing", "indices", "finite",
        "finites", "choice", "array", "square", "all_finite", "ARCHITECTURE", "RULES", "parameters",
    ),
    # architectures, stacked networks, their empirical kernels
    "models": (
        "ACTIVATIONS", "PARAMETERIZATIONS", "ArchSpec", "network", "empirical_nngp",
        "hidden_features", "empirical_ntk", "init_params", "apply_members",
        "largest_ntk_eigenvalue", "relative_ntk_change", "astype",
    ),
    # the float64 kernel algebra: S_T, B_T, GP posteriors
    "theory": (
        "ILL_CONDITIONED", "KernelBlocks", "TrainingOperator", "GaussianPrediction",
        "kernel_blocks", "training_operator", "linearised_prediction", "sandwich",
        "ensemble_prediction", "log_marginal_likelihood", "gp_noise_by_evidence", "gp_posterior",
    ),
    # one vocabulary of optimizers
    "optimizers": (
        "OPTIMIZERS", "FULL_BATCH", "FIXED_STEPS", "TO_TOLERANCE", "ADAM_LR", "Optimizer", "GD",
        "NESTEROV", "supported", "fixed_steps_transform", "spectral_transform",
        "steps_to_convergence",
    ),
    # step sizes from the NTK's spectrum
    "schedule": (
        "step_size", "analytic_step", "CHECK_ITERS", "stable_step",
    ),
    # the engine: fixed steps or a tolerance
    "train": (
        "TrainResult", "Converged", "descend", "check_schedule", "refuse_divergence",
        "gradient_descent", "train_to_convergence",
    ),
    # RND targets and errors, standard and Bayesian
    "rnd": (
        "draw_psi", "BAYESIAN_TARGETS", "bayesian_rnd_target", "bayesian_rnd_targets", "rnd_error",
        "rnd_errors",
    ),
    # the estimates Claims 1 and 2 are checked on
    "estimators": (
        "Estimate", "ensemble_variance", "rnd_variance", "bayesian_rnd_errors",
    ),
    # posterior samples from trained networks (Cor. 5.9) and ensembles
    "sampling": (
        "PosteriorSamples", "centred_network_mean", "posterior_samples", "EnsembleOutputs",
        "trained_ensemble", "ConvergedSamples", "converged_posterior_samples",
    ),
    # posterior draws by conditioning: exact and pathwise
    "conditioning": (
        "BLOCK", "VP_BATCH", "ROOTS", "gaussian_samples", "exact_posterior", "exact_samples",
        "pathwise_samples",
    ),
    # errors, fits, scores
    "metrics": (
        "PowerLaw", "relative_error", "power_law_fit", "variance_zscores", "variance_mc_floor",
        "decorrelated_points", "mean_relative_discrepancy", "variance_discrepancy_null",
        "gaussian_nll", "interval_coverage", "auroc", "auroc_null_sd", "energy_distance",
        "median_wall_time",
    ),
    # simulated nulls and p-values
    "nulls": (
        "PSD_RTOL", "NullTest", "Check", "digest", "memo", "Spectrum", "spectrum", "square_root",
        "decorrelated", "profile_statistics", "lrt", "upper_tail_pvalue", "null_test", "scale_test",
        "check_level", "profile_null", "lrt_null", "ad_chi2", "ks_two_sample", "exact_estimates",
        "counted_test", "counted_bound_test", "prediction_test",
    ),
    # the wheel bandit: contexts, rewards, the loop that plays it, paired tests of regret
    "bandit": (
        "ARMS", "PUBLISHED_NEURAL_LINEAR", "PUBLISHED_CONTEXTS", "Wheel", "Observed",
        "quadrant_arm", "wheel", "retraining_points", "uniform_start", "play", "regret",
        "uniform_regret", "normalised", "SIGN_PATTERNS", "EXACT_PAIRS", "sign_flip_pvalue",
    ),
    # each arm's NTK-GP limit, and how often a sampler picks each arm
    "limits": (
        "gram", "exact_posterior", "ensemble_covariance", "pick_frequencies", "decision_distance",
        "thompson_pick_probabilities", "ucb_pick_probabilities",
    ),
    # bandit agents: networks with one masked output per arm
    "agents": (
        "DIM", "OVERCONFIDENT", "BONUSES", "SAMPLERS", "DTYPE", "POWER_ITERS", "arm_network",
        "observed_rows", "query_rows", "by_arm", "init_networks", "fit", "outputs", "mean_network",
        "rnd_bonus", "bayesian_rnd_errors", "ensemble_outputs", "uniform", "greedy", "ucb",
        "thompson", "neural_linear",
    ),
    # the regret study of notebook 08 and make bench
    "regret_study": (
        "AGENTS", "AGENT_COLOURS", "TESTS", "BENCH", "Study", "grams", "roster", "bonus_scale",
        "play_all", "summary", "regret_tests", "run_bench", "plot_bench", "main",
    ),
    # the claims' checks
    "checks": (
        "DECORRELATED_R2", "LEADING_FLOOR", "variance_check", "covariance_check", "chi2_law_check",
        "head_independence_check", "head_independence_over_time",
    ),
    # the out-of-distribution scores' checks
    "scores": (
        "auroc_gap_check", "log_ratio_check",
    ),
    # power and false alarms of a check
    "power": (
        "MINIMUM_POWER", "Rate", "rejection_rate", "rate", "gaussian_draws", "variance_estimates",
        "within_level", "report", "shortfalls",
    ),
    # figures
    "plotting": (
        "use_style", "variant_suffix", "savefig", "plot_band", "width_axis", "plot_rate",
        "plot_spread", "math_label", "plot_pvalues", "plot_head_correlation", "plot_bench_cost",
        "plot_bench_scaling",
    ),
    # papermill runs, timings, seeds
    "pipeline": (
        "FAILED", "TIMINGS", "SEEDS", "strip_volatile_metadata", "run_notebook", "timed_runs",
        "decoy_margin", "seed_runs", "main",
    ),
    # the front page's verdicts and the results page, in words, from the results files
    "report": (
        "LESSONS", "checks_in", "check_summary", "AGENT_LABELS", "regret_table",
        "bench_regret_table", "CLAIMS", "verdict", "claims_table", "results_page",
    ),
    # the generated tables of the README and of the pages beside it
    "tables": (
        "README", "RESULTS_PAGE", "BENCHMARKS_PAGE", "ENVIRONMENT_PAGE", "BUDGETS", "seeds_table",
        "timings_table", "notebook_map", "bench_table", "NOTEBOOK_RESULTS", "BLOCKS", "markers",
        "block", "quoted", "write_block", "main",
    ),
    # make bench: what uncertainty costs, sampling at scale
    "benchmark": (
        "COST_METHODS", "COST", "SAMPLERS", "SETTING", "SPEC", "TIMED_STEPS", "machine", "peak_mb",
        "in_fresh_process", "cost_task", "measure_cost", "run_cost", "projected_sampler_cost",
        "measure_sampler", "accuracy", "crossover", "projected_steps", "PAIRS", "run_scaling",
        "main",
    ),
}
# fmt: on
