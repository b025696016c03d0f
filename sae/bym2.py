"""BYM2 models for counts, with a shared place effect and group-specific deviations.

For area i, group g, stratum k with count y and exposure E:

    y_igk ~ Poisson(E_igk θ_igk)          or   y_igk ~ Binomial(n_igk, p_igk)
    log θ_igk (or logit p_igk) = α + α_g + x_igk β + b_i + c_ig
    b = σ (√(ρ/s) u + √(1 − ρ) v),  v ~ N(0, I),  u ~ ICAR (per component, sum to zero)
    c_ig = 0 | σ_g z_ig (iid) | a BYM2 field per group

The ICAR log density is −½ Σ_(i~j) (u_i − u_j)² over the edge list, with a soft sum-to-zero
constraint Σ_c u ~ N(0, 0.001 n_c) per component (as in Morris et al. 2019): cost O(edges).
Islands have no structured part. Priors: `sae.priors`.

References
----------
Besag, York & Mollié (1991). Bayesian image restoration with two applications in spatial
statistics. Ann. Inst. Stat. Math. 43:1-20.
Riebler, Sørbye, Simpson & Rue (2016). Stat. Methods Med. Res. 25(4):1145-1165.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from sae.design import Design, is_numeric_term
from sae.graph import AreaGraph
from sae.predictor import bym2_combination, iid_combination, linear_predictor
from sae.priors import PRIOR_SETS, PriorSet, mixing_rho, scale_sigma, scaled_icar_eigenvalues
from sae.spec import Spec

SUM_TO_ZERO_SCALE = 0.001


def build(design: Design, graph: AreaGraph, spec: Spec) -> pm.Model:
    """The PyMC model for a count BYM2 fit, with dims ``area``, ``group`` and ``term``."""
    prior = PRIOR_SETS[spec.model.priors]
    needs_gamma = spec.model.spatial == "bym2" or spec.model.group_effects == "bym2"
    gamma = scaled_icar_eigenvalues(graph) if prior.rho == "pc" and needs_gamma else None
    coords = {
        "area": list(graph.ids),
        "group": list(design.groups),
        "term": list(design.terms),
        "row": np.arange(len(design.response)),
    }
    with pm.Model(coords=coords) as model:
        params = fixed_effects(design, prior)
        if spec.model.spatial == "bym2":
            field = bym2_field("area", graph, prior, gamma)
        else:  # independent area effects: the plain Fay–Herriot (or Poisson-lognormal) model
            sigma = scale_sigma("area_sigma", prior)
            field = iid_combination(sigma, pm.Normal("area_unstructured", 0.0, 1.0, dims="area"))
        params["area_effect"] = pm.Deterministic("area_effect", field, dims="area")
        if spec.model.group_effects == "iid":
            sigma = scale_sigma("group_area_sigma", prior, dims="group")
            z = pm.Normal("group_area_z", 0.0, 1.0, dims=("group", "area"))
            params["group_area_effect"] = iid_combination(sigma, z)
        elif spec.model.group_effects == "bym2":
            params["group_area_effect"] = bym2_field("group_area", graph, prior, gamma, "group")
        eta = linear_predictor(params, design.area, design.group, design.X)
        likelihood(spec.model.family, eta, design)
    return model


def likelihood(family: str, eta, design: Design) -> None:
    """Poisson with offset, binomial with logit link, or the Fay–Herriot normal y ~ N(η, ψ)."""
    if family == "gaussian":
        sd = np.sqrt(design.variance)
        pm.Normal("response", mu=eta, sigma=sd, observed=design.response, dims="row")
    elif family == "binomial":
        pm.Binomial("count", n=design.trials, logit_p=eta, observed=design.response, dims="row")
    else:
        pm.Poisson("count", mu=pt.exp(eta + design.offset), observed=design.response, dims="row")


def fixed_effects(design: Design, prior: PriorSet) -> dict:
    """Intercept, group effects (0 for the baseline group) and coefficients, with their priors.

    The sampler sees a centred intercept (around the overall crude log rate) and standardised
    coefficients; `intercept` and `beta` are recorded on the original scale.
    """
    centred = pm.Flat("intercept_centered")
    intercept = design.base_level + centred
    beta_std = pm.Flat("beta_std", dims="term") if design.terms else pt.zeros(0)
    beta = beta_std / design.scale
    original_intercept = intercept - (beta * design.center).sum()
    pm.Deterministic("intercept", original_intercept)
    pm.Deterministic("beta", beta, dims="term")
    numeric = np.array([is_numeric_term(t) for t in design.terms], dtype=bool)
    if prior.fixed_scale == "original":
        pm.Potential("intercept_prior", normal_logp(original_intercept, prior.intercept_sd))
        slopes = beta
    else:
        pm.Potential("intercept_prior", normal_logp(centred, prior.intercept_sd))
        slopes = beta_std
    sd = np.where(numeric, prior.beta_sd, prior.categorical_sd)
    pm.Potential("beta_prior", normal_logp(slopes, sd).sum())
    others = len(design.groups) - 1
    raw = pm.Normal("group_effect_raw", 0.0, prior.categorical_sd, shape=others) if others else None
    b = design.baseline_group
    parts = [raw[:b], pt.zeros(1), raw[b:]] if raw is not None else [pt.zeros(1)]
    group_effect = pm.Deterministic("group_effect", pt.concatenate(parts), dims="group")
    return {"intercept": intercept, "beta": beta_std, "group_effect": group_effect}


def normal_logp(x, sd):
    return -0.5 * (x / sd) ** 2


def bym2_field(prefix: str, graph: AreaGraph, prior: PriorSet, gamma, group_dim: str | None = None):
    """A BYM2 field over areas (one per group when `group_dim` is given), non-centred."""
    dims = (group_dim, "area") if group_dim else "area"
    sigma = scale_sigma(f"{prefix}_sigma", prior, dims=group_dim)
    rho = mixing_rho(f"{prefix}_rho", prior, gamma, dims=group_dim)
    structured = pm.Flat(f"{prefix}_structured", dims=dims)
    pm.Potential(f"{prefix}_icar", icar_logp(structured, graph))
    unstructured = pm.Normal(f"{prefix}_unstructured", 0.0, 1.0, dims=dims)
    return bym2_combination(sigma, rho, structured, unstructured, *structure_weights(graph))


def structure_weights(graph: AreaGraph) -> tuple[np.ndarray, np.ndarray]:
    """1/√s per area and a 0/1 marker of areas with a structured part (islands have none)."""
    is_structured = (~graph.is_island).astype(float)
    return is_structured / np.sqrt(graph.scaling_factor), is_structured


def icar_logp(u, graph: AreaGraph):
    """−½ Σ_(i~j) (u_i − u_j)², a soft sum-to-zero per component, and N(0, 1) on islands.

    An island's u does not enter the field; its N(0, 1) only keeps the density proper.
    """
    i, j = graph.edges.T
    logp = -0.5 * ((u[..., i] - u[..., j]) ** 2).sum()
    components = [nodes for nodes in graph.component_nodes() if len(nodes) > 1]
    membership = np.zeros((graph.n_areas, len(components)))
    for c, nodes in enumerate(components):
        membership[nodes, c] = 1.0 / (SUM_TO_ZERO_SCALE * len(nodes))
    logp += -0.5 * (pt.dot(u, membership) ** 2).sum()
    islands = np.flatnonzero(graph.is_island)
    if len(islands):
        logp += -0.5 * (u[..., islands] ** 2).sum()
    return logp


def posterior_params(draws: dict, design: Design, graph: AreaGraph, group_effects: str) -> dict:
    """The linear predictor's parameters from posterior draws (numpy, leading draw axes)."""
    params = {
        "intercept": design.base_level + draws["intercept_centered"],
        "group_effect": draws["group_effect"],
        "beta": draws["beta_std"] if design.terms else np.zeros((*draws["intercept"].shape, 0)),
        "area_effect": draws["area_effect"],
    }
    if group_effects == "iid":
        params["group_area_effect"] = iid_combination(
            draws["group_area_sigma"], draws["group_area_z"]
        )
    elif group_effects == "bym2":
        params["group_area_effect"] = bym2_combination(
            draws["group_area_sigma"],
            draws["group_area_rho"],
            draws["group_area_structured"],
            draws["group_area_unstructured"],
            *structure_weights(graph),
        )
    return params
