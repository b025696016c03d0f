"""The linear predictor gives the same numbers on pytensor tensors and on numpy draws."""

import numpy as np
import pytensor.tensor as pt
import pytest

from sae.graph import graph_from_pairs
from sae.nuts import icar_logp
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
