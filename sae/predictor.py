"""The linear predictor, written once for both the model graph and posterior draws.

Every function here uses only arithmetic, ``**``, indexing and ``.sum`` so it runs on pytensor
tensors (inside the model) and on numpy arrays with leading draw dimensions (after sampling).

    log θ_igk = α + α_g + x_igk β + b_i + c_ig          (Poisson: rate per person or RR)
    logit p_igk = the same                              (binomial)

and with periods t, + f_t + f_gt + δ_it (the trend, each group's trend, area × period deviations).
"""

from __future__ import annotations

import numpy as np


def bym2_combination(sigma, rho, structured, unstructured, root_inverse_scale, is_structured):
    """b = σ (√(ρ/s) u + √(1 − ρ) v) on areas in components; b = σ v on islands.

    `root_inverse_scale` is 1/√s per area (0 on islands; kept outside the square root so the
    gradient in ρ stays finite) and `is_structured` 1 per area (0 on islands),
    so an island's effect is N(0, σ²) with no structured part (Freni-Sterrantino et al. 2018).
    The last axis of `structured` / `unstructured` is the area.
    """
    rho = rho[..., None]
    return sigma[..., None] * (
        rho**0.5 * root_inverse_scale * structured
        + (1.0 - rho * is_structured) ** 0.5 * unstructured
    )


def iid_combination(sigma, z):
    """c = σ z, z ~ N(0, 1): independent group-by-area deviations."""
    return sigma[..., None] * z


TIME_EFFECTS = ("time_effect", "group_time_effect", "area_time_effect")


def linear_predictor(params: dict, area, group, X, period=None):
    """η for rows (area, group, X, and period with time). `params` holds intercept, group_effect,
    beta, area_effect and, when the model has them, group_area_effect (group × area), time_effect
    (period), group_time_effect (group × period) and area_time_effect (area × period)."""
    eta = (
        params["intercept"][..., None]
        + params["group_effect"][..., group]
        + (X * params["beta"][..., None, :]).sum(axis=-1)
        + params["area_effect"][..., area]
    )
    if "group_area_effect" in params:
        eta = eta + params["group_area_effect"][..., group, area]
    if "time_effect" in params:
        eta = eta + params["time_effect"][..., period]
    if "group_time_effect" in params:
        eta = eta + params["group_time_effect"][..., group, period]
    if "area_time_effect" in params:
        eta = eta + params["area_time_effect"][..., area, period]
    return eta


def structure_weights(graph) -> tuple[np.ndarray, np.ndarray]:
    """1/√s per area and a 0/1 marker of areas with a structured part (islands have none)."""
    is_structured = (~graph.is_island).astype(float)
    return is_structured / np.sqrt(graph.scaling_factor), is_structured
