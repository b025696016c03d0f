import numpy as np
import pytest
from scipy.integrate import quad
from test_graph import scotland_graph

from sae.priors import PC_RHO_ALPHA, kld, pc_rho_logp, scaled_icar_eigenvalues


@pytest.fixture(scope="module")
def gamma():
    return scaled_icar_eigenvalues(scotland_graph("adjacency_geobugs"))


def test_scaled_eigenvalues_have_geometric_mean_variance_scale(gamma):
    # 55 non-zero eigenvalues for a connected 56-node graph; all positive
    assert gamma.shape == (55,) and (gamma > 0).all()


def density(rho, gamma):
    return float(np.exp(pc_rho_logp(np.array([rho]), gamma))[0])


def test_pc_rho_prior_is_a_density_with_the_stated_tail(gamma):
    # Riebler et al. (2016): P(ρ < 0.5) = 2/3 by construction; it must integrate to 1
    total, _ = quad(density, 0, 1, args=(gamma,), limit=200)
    below, _ = quad(density, 0, 0.5, args=(gamma,), limit=200)
    assert total == pytest.approx(1.0, abs=1e-3)
    assert below == pytest.approx(PC_RHO_ALPHA, abs=1e-3)


def test_kld_derivative_matches_finite_difference(gamma):
    rho = np.array([0.3])
    step = 1e-6
    _, slope = kld(rho, gamma)
    numeric = (kld(rho + step, gamma)[0] - kld(rho - step, gamma)[0]) / (2 * step)
    assert slope[0] == pytest.approx(numeric[0], rel=1e-5)
