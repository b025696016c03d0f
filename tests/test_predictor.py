"""The linear predictor gives the same numbers on pytensor tensors and on numpy draws."""

import numpy as np
import pytensor.tensor as pt
import pytest

from sae.bym2 import icar_logp
from sae.graph import graph_from_pairs
from sae.predictor import bym2_combination, linear_predictor


def test_pytensor_and_numpy_agree():
    rng = np.random.default_rng(1)
    area, group = np.array([0, 1, 2, 2]), np.array([0, 1, 0, 1])
    X = rng.normal(size=(4, 2))
    values = {
        "intercept": np.array(-1.0),
        "group_effect": np.array([0.0, 0.4]),
        "beta": np.array([0.2, -0.1]),
        "area_effect": rng.normal(size=3),
        "group_area_effect": rng.normal(size=(2, 3)),
    }
    symbolic = {k: pt.as_tensor_variable(v) for k, v in values.items()}
    from_graph = linear_predictor(symbolic, area, group, X).eval()
    expected = (
        -1.0
        + values["group_effect"][group]
        + X @ values["beta"]
        + values["area_effect"][area]
        + values["group_area_effect"][group, area]
    )
    assert from_graph == pytest.approx(expected)
    draws = {k: np.stack([v, v]) for k, v in values.items()}  # two identical draws
    assert linear_predictor(draws, area, group, X) == pytest.approx(np.stack([expected, expected]))


def test_island_effect_has_no_structured_part():
    sigma, rho = np.array(2.0), np.array(0.9)
    u, v = np.array([1.0, -1.0, 5.0]), np.array([0.5, 0.5, 0.5])
    root_inverse_scale, is_structured = np.array([2.0, 2.0, 0.0]), np.array([1.0, 1.0, 0.0])
    b = bym2_combination(sigma, rho, u, v, root_inverse_scale, is_structured)
    # island (last): σ v; others: σ(√(ρ/s) u + √(1−ρ) v) with 1/√s = 2
    assert b[2] == pytest.approx(1.0)
    assert b[0] == pytest.approx(2.0 * (np.sqrt(0.9 * 4) * 1.0 + np.sqrt(0.1) * 0.5))


def test_icar_log_density_is_pairwise_differences_plus_constraints():
    # path a-b-c plus island d; computed by hand
    graph = graph_from_pairs(["a", "b", "c", "d"], [("a", "b"), ("b", "c")], "t")
    u = np.array([1.0, 0.0, -0.5, 2.0])
    pairwise = -0.5 * ((1.0 - 0.0) ** 2 + (0.0 + 0.5) ** 2)
    sum_to_zero = -0.5 * (0.5 / (0.001 * 3)) ** 2
    island = -0.5 * 2.0**2
    assert icar_logp(pt.as_tensor_variable(u), graph).eval() == pytest.approx(
        pairwise + sum_to_zero + island
    )


def test_gradient_in_rho_is_finite_with_an_island():
    rho = pt.scalar("rho")
    b = bym2_combination(
        pt.as_tensor_variable(1.0),
        rho,
        np.ones(2),
        np.ones(2),
        np.array([2.0, 0.0]),
        np.array([1.0, 0.0]),
    )
    gradient = pt.grad(b.sum(), rho).eval({rho: 0.5})
    assert np.isfinite(gradient)


def test_centred_density_is_the_noncentred_one_after_change_of_variables():
    # v(b) = (b/σ − √ρ u/√s) / √(1 − ρ) on structured areas, b/σ on islands; the centred density
    # must be log N(v(b); 0, I) + log |det ∂v/∂b| (computed here numerically, up to a constant)
    from scipy.stats import norm

    from sae.bym2 import implied_unstructured_logp

    sigma, rho = np.array(0.7), np.array(0.6)
    u, b = np.array([0.3, -0.2, 0.9]), np.array([0.5, 0.1, -0.4])
    root_inverse_scale, is_structured = np.array([1.5, 1.5, 0.0]), np.array([1.0, 1.0, 0.0])

    def v_of(effect):
        spread = np.sqrt(1 - rho * is_structured)
        return (effect / sigma - np.sqrt(rho) * root_inverse_scale * u) / spread

    step = 1e-6
    jacobian = np.column_stack([(v_of(b + step * e) - v_of(b - step * e)) / (2 * step) for e in np.eye(3)])
    expected = norm.logpdf(v_of(b)).sum() + np.log(abs(np.linalg.det(jacobian))) + 1.5 * np.log(2 * np.pi)
    args = [pt.as_tensor_variable(x) for x in (b, sigma, rho, u)]
    got = implied_unstructured_logp(*args, root_inverse_scale, is_structured).eval()
    assert got == pytest.approx(expected, rel=1e-6)
