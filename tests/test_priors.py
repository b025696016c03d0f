import dataclasses

import numpy as np
import pytest
from conftest import ROOT
from scipy.integrate import quad
from scipy.special import expit
from test_graph import scotland_graph

import sae
from sae.inputs import load_inputs
from sae.priors import PRIOR_SETS, icar_spectrum, pc_rho_distance, pc_rho_logp, pc_rho_rate


@pytest.fixture(scope="module")
def scotland():
    return icar_spectrum(scotland_graph("adjacency_geobugs"))


@pytest.fixture(scope="module")
def pennsylvania():
    spec = sae.load_spec(ROOT / "models" / "pennsylvania_lung_race.toml")
    return icar_spectrum(load_inputs(spec).graph)


def prior(u=0.5, alpha=2.0 / 3.0):
    return dataclasses.replace(PRIOR_SETS["pc"], pc_rho=(u, alpha))


def probability_below(upper: float, spectrum, chosen) -> float:
    """P(ρ < upper), integrated on the logit scale (the density piles up near ρ = 1)."""

    def density(t):
        rho = expit(t)
        return float(np.exp(pc_rho_logp(np.array(rho), chosen, spectrum)) * rho * (1 - rho))

    return quad(density, -18.0, np.log(upper / (1 - upper)), limit=500)[0]


def test_spectrum_has_one_component_and_its_nonzero_eigenvalues(scotland):
    # 55 non-zero eigenvalues for a connected 56-node graph, all positive
    assert scotland.gamma.shape == (55,) and (scotland.gamma > 0).all()
    assert scotland.components == 1


@pytest.mark.parametrize(("u", "alpha"), [(0.5, 2.0 / 3.0), (0.5, 0.5), (0.8, 0.9)])
def test_pc_rho_prior_has_the_stated_quantile_and_is_proper(scotland, u, alpha):
    chosen = prior(u, alpha)
    assert probability_below(u, scotland, chosen) == pytest.approx(alpha, abs=1e-4)
    # the untruncated exponential on d: mass below 1 − e^−30 plus the tail beyond it is 1
    tail = np.exp(
        -pc_rho_rate(chosen, scotland) * pc_rho_distance(np.array(expit(30.0)), scotland)[0]
    )
    assert probability_below(expit(30.0), scotland, chosen) + tail == pytest.approx(1.0, abs=1e-4)


def test_pc_rho_tail_matches_inla_on_pennsylvania(pennsylvania):
    # Reference: the audit in issue #10, computed with R-INLA's inla.pc.bym.phi on the
    # Pennsylvania county graph with P(ρ < 0.5) = 2/3: P(ρ > 0.9) = 0.165, P(ρ > 0.99) = 0.133
    chosen = prior()
    assert 1 - probability_below(0.9, pennsylvania, chosen) == pytest.approx(0.165, abs=1e-3)
    assert 1 - probability_below(0.99, pennsylvania, chosen) == pytest.approx(0.133, abs=1e-3)


def test_distance_derivative_matches_finite_difference(scotland):
    rho, step = np.array(0.3), 1e-6
    _, slope = pc_rho_distance(rho, scotland)
    numeric = (
        pc_rho_distance(rho + step, scotland)[0] - pc_rho_distance(rho - step, scotland)[0]
    ) / (2 * step)
    assert slope == pytest.approx(numeric, rel=1e-5)


def test_a_bym2_model_needs_neighbours():
    from conftest import grid_areas, simulated_cells

    areas = grid_areas(nrow=1, ncol=1)  # one square and the island: no edges
    cells = simulated_cells(areas)[0]
    spec = sae.spec_from_dict({"data": {"area_id": "area", "group": "group", "count": "cases",
                                        "population": "population"}})  # fmt: skip
    with pytest.raises(sae.SaeInputError, match="no two areas are neighbours"):
        load_inputs(spec, cells=cells, areas=areas)


def test_large_graphs_get_the_same_prior_from_sparse_log_determinants(monkeypatch):
    # the log-determinant table (used above 1,500 areas) against the eigenvalues, on Pennsylvania
    spec = sae.load_spec(ROOT / "models" / "pennsylvania_lung_race.toml")
    graph = load_inputs(spec).graph
    exact = icar_spectrum(graph)
    monkeypatch.setattr("sae.priors.DENSE_SPECTRUM_LIMIT", 10)
    sparse = icar_spectrum(graph)
    assert sparse.table is not None and len(sparse.gamma) == 0
    rho = np.array([0.01, 0.2, 0.5, 0.9, 0.999])
    # a cubic spline through the table: value and slope smooth (NUTS trajectories tripled in
    # length on linear interpolation's kinks); measured here 3e-6 and 3e-5, linear gave 2e-2 slope
    value, slope = sparse.twice_kld(rho)
    assert value == pytest.approx(exact.twice_kld(rho)[0], rel=1e-5)
    assert slope == pytest.approx(exact.twice_kld(rho)[1], rel=1e-3)
    assert pc_rho_rate(prior(), sparse) == pytest.approx(pc_rho_rate(prior(), exact), rel=1e-3)
