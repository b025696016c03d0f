"""The prior sampler reproduces the priors' defining properties."""

import numpy as np
import pytest
from test_graph import scotland_graph

from sae.prior_predictive import draw_icar, draw_rho
from sae.priors import PRIOR_SETS, icar_spectrum


def test_pc_rho_draws_have_the_stated_tail():
    # Riebler et al. (2016) PC prior as INLA computes it, calibrated so that P(ρ < 0.5) = 2/3;
    graph = scotland_graph("adjacency_geobugs")
    rho = draw_rho(PRIOR_SETS["pc"], icar_spectrum(graph), np.random.default_rng(1), 100_000)
    assert (rho < 0.5).mean() == pytest.approx(2 / 3, abs=0.01)
    assert (rho > 0.999).mean() > 0.05  # the untruncated prior keeps mass next to 1


def test_icar_draws_sum_to_zero_and_have_the_scaling_factor_as_mean_variance():
    # by definition of s: geometric mean of the marginal variances of the constrained ICAR
    graph = scotland_graph("adjacency_stan_islands")
    u = draw_icar(graph, np.random.default_rng(2), (40_000,))
    mainland = ~graph.is_island
    assert np.abs(u[:, mainland].sum(axis=1)).max() < 1e-9
    assert (u[:, graph.is_island] == 0).all()  # islands have no structured part
    variance = u[:, mainland].var(axis=0)
    assert np.exp(np.mean(np.log(variance))) == pytest.approx(0.4504, rel=0.03)
