"""The claims' estimators: shapes, constants, recorded paths and the lemma before training."""

import numpy as np
import pytest

from rndlib import estimators, models, theory


def test_recorded_error_paths_start_at_h_and_end_at_the_errors(toy):
    spec = models.ArchSpec(depth=1, width=64)
    common = {"seeds": 2, "steps": 7, "lr_fraction": 1.0, "seed": 0, "record": [5, 0]}
    rnd = estimators.rnd_variance(spec, toy, heads=3, **common)
    start = estimators.rnd_variance(spec, toy, heads=3, **(common | {"steps": 0}))
    assert rnd.path.shape == (2, 8, 2, 3)
    np.testing.assert_allclose(rnd.path[:, 0], start.path[:, 0], rtol=1e-12)
    # the end of the path is the trained error: its mean square over heads, halved
    end = np.mean(rnd.path[:, -1] ** 2, axis=-1) / 2
    np.testing.assert_allclose(end, rnd.variance[:, [5, 0]], rtol=1e-10)
    np.testing.assert_allclose(
        rnd.path[:, -1], rnd.draws[:, :, [5, 0]].transpose(0, 2, 1), rtol=1e-12
    )
    bayes = estimators.bayesian_rnd_errors(spec, toy, heads=3, target="paper", **common)
    np.testing.assert_allclose(bayes.path[:, -1], bayes.draws[:, :, [5, 0]].transpose(0, 2, 1))
    assert estimators.rnd_variance(spec, toy, heads=3, **(common | {"record": None})).path is None
    with pytest.raises(ValueError, match="record"):
        estimators.rnd_variance(spec, toy, heads=3, **(common | {"record": [len(toy.x_test)]}))
    with pytest.raises(ValueError, match="target"):
        estimators.bayesian_rnd_errors(spec, toy, heads=3, target="full", **common)


def test_a_target_of_its_own_architecture_adds_its_kernel(toy):
    """Prop. 5.3: E[eps^2] = S_T[kappa_u + kappa_g]; the predictor's own spec as target gives 2x."""
    spec = models.ArchSpec(depth=1, width=128)
    common = {"heads": 2, "seeds": 2, "steps": 5, "lr_fraction": 1.0, "seed": 0}
    same = estimators.rnd_variance(spec, toy, **common)
    explicit = estimators.rnd_variance(spec, toy, target_spec=spec, **common)
    np.testing.assert_allclose(explicit.variance, 2 * same.variance, rtol=1e-12)
    np.testing.assert_allclose(explicit.analytic, 2 * same.analytic, rtol=1e-12)
    other = spec.replace(depth=2, activation="erf")
    mixed = estimators.rnd_variance(spec, toy, target_spec=other, **common)
    nngp = [
        theory.kernel_blocks(models.network(s)[2], toy.x_train, toy.x_test, "nngp")
        for s in (spec, other)
    ]
    ntk = theory.kernel_blocks(models.network(spec)[2], toy.x_train, toy.x_test, "ntk")
    op = theory.training_operator(ntk, lr=mixed.lr, steps=5).matrix
    np.testing.assert_allclose(
        mixed.analytic, np.diag(theory.sandwich(nngp[0] + nngp[1], op)), rtol=1e-12
    )
    centred = estimators.rnd_variance(spec, toy, target_spec=other, centred=True, **common)
    np.testing.assert_allclose(centred.analytic, np.diag(theory.sandwich(nngp[1], op)), rtol=1e-12)


def test_variance_estimates_have_their_shapes_and_constants(toy):
    spec = models.ArchSpec(depth=1, width=256)
    common = {"seeds": 3, "steps": 0, "lr_fraction": 1.0, "seed": 0}
    ensemble = estimators.ensemble_variance(spec, toy, members=5, **common)
    rnd = estimators.rnd_variance(spec, toy, heads=4, **common)
    assert ensemble.variance.shape == rnd.variance.shape == (3, len(toy.x_test))
    assert (ensemble.dof, rnd.dof) == (4, 4)
    assert (ensemble.constant, rnd.constant) == (1.0, 2.0)
    for est in (ensemble, rnd):
        assert est.draws.shape == est.lemma.shape == (3, 4, len(toy.x_test))
        # mean square of the draws over the constant is the variance (for the ensemble's
        # Helmert contrasts: the members' sample variance), trained and lemma alike
        for draws, variance in ((est.draws, est.variance), (est.lemma, est.lemma_variance)):
            np.testing.assert_allclose(
                np.mean(draws**2, axis=1) / est.constant, variance, rtol=1e-10
            )
        # At T = 0 nothing is trained: the lemma is exact.
        np.testing.assert_allclose(est.variance, est.lemma_variance, rtol=1e-10)
        np.testing.assert_allclose(est.draws, est.lemma, rtol=1e-10, atol=1e-12)
    # ... and the analytic variance is K(x, x).
    nngp = models.network(spec)[2](toy.x_test, None, "nngp")
    np.testing.assert_allclose(rnd.analytic, np.diag(nngp), rtol=1e-12)
    with pytest.raises(ValueError, match="lr"):
        estimators.rnd_variance(spec, toy, heads=4, lr=1.0, **common)


def test_bayesian_rnd_errors_before_training(toy):
    """At T = 0 the error is h = J_0 psi itself, and the analytic covariance is Theta."""
    spec = models.ArchSpec(depth=1, width=128)
    draws = estimators.bayesian_rnd_errors(
        spec, toy, heads=3, seeds=2, steps=0, lr_fraction=1.0, seed=0, noise=0.5
    )
    assert draws.draws.shape == draws.lemma.shape == (2, 3, len(toy.x_test))
    assert (draws.dof, draws.constant, draws.steps) == (3, 1.0, 0)
    np.testing.assert_allclose(draws.draws, draws.lemma, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(draws.variance, np.mean(draws.draws**2, axis=1), rtol=1e-12)
    theta = np.asarray(models.network(spec)[2](toy.x_test, None, "ntk"))
    np.testing.assert_allclose(draws.analytic, theta, rtol=1e-12)


def test_estimates_before_training_equal_their_lemma(toy):
    """At T = 0 nothing is trained: no residual is fitted and trained equals lemma draw by draw."""
    spec = models.ArchSpec(width=64, heads=2)
    common = {"seeds": 2, "steps": 0, "lr_fraction": 1.0, "seed": 0}
    for est in (
        estimators.rnd_variance(spec, toy, heads=2, **common),
        estimators.ensemble_variance(spec, toy, members=2, **common),
    ):
        np.testing.assert_allclose(est.residual, 1.0, rtol=1e-12)
        np.testing.assert_allclose(est.draw_gap, 0.0, atol=1e-12)


def test_ensemble_variance_needs_two_members(toy):
    """One member has no sample variance (0 degrees of freedom): refused, not NaN."""
    common = {"seeds": 1, "steps": 0, "lr_fraction": 1.0, "seed": 0}
    with pytest.raises(ValueError, match=r"members must be an integer >= 2, got 1"):
        estimators.ensemble_variance(models.ArchSpec(width=16), toy, members=1, **common)
