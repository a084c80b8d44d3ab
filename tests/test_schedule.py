"""Step sizes: the stability limit, the rule, and the analytic step of a width sweep."""

import numpy as np
import pytest

from rndlib import estimators, models, schedule


def test_a_given_step_past_the_stability_limit_is_refused(toy):
    """RND and Bayesian RND check a given step against 2 / lambda_max of their own networks."""
    spec = models.ArchSpec(width=64, heads=4)
    init_fn, apply_fn, _ = models.network(spec)
    params = models.init_params(init_fn, 0, 2, 1)
    lam = models.largest_ntk_eigenvalue(apply_fn, params, toy.x_train, members=True)
    kwargs = dict(heads=4, seeds=2, steps=1, lr_fraction=1.0, seed=0)
    with pytest.raises(ValueError, match="past the stability limit"):
        estimators.rnd_variance(spec, toy, lr=2.1 / lam, **kwargs)
    with pytest.raises(ValueError, match="past the stability limit"):
        estimators.bayesian_rnd_errors(spec, toy, lr=2.1 / (lam + 0.5), noise=0.5, **kwargs)
    assert estimators.rnd_variance(spec, toy, lr=1.9 / lam, **kwargs).lr == 1.9 / lam


def test_step_size_rule():
    assert schedule.step_size(100.0, 1.0) == pytest.approx(0.01)
    for bad in (0.0, 2.0, float("nan")):
        with pytest.raises(ValueError, match="lr_fraction"):
            schedule.step_size(100.0, bad)


def test_analytic_step_is_one_step_for_every_width(toy):
    """The analytic NTK's step does not depend on the width, and the ridge adds to lambda_max."""
    narrow, wide = (models.ArchSpec(depth=2, width=w, heads=2) for w in (8, 4096))
    ntk = models.network(narrow)[2](toy.x_train, None, "ntk")
    lam = float(np.linalg.eigvalsh(np.asarray(ntk, np.float64))[-1])
    assert schedule.analytic_step(narrow, toy.x_train, 0.5) == pytest.approx(0.5 / lam, rel=1e-12)
    assert schedule.analytic_step(wide, toy.x_train, 0.5) == schedule.analytic_step(
        narrow, toy.x_train, 0.5
    )
    assert schedule.analytic_step(wide, toy.x_train, ridge=2.0) == pytest.approx(1 / (lam + 2.0))
    with pytest.raises(ValueError, match="ridge"):
        schedule.analytic_step(wide, toy.x_train, ridge=-1.0)
