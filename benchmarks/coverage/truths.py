"""Known truths and populations for the coverage studies (see run.py for how they are used).

- `bym2_field`: one draw of the scaled BYM2 field b = σ(√(ρ/s) u + √(1 − ρ) v), u ~ N(0, L⁺) per
  connected component, b = σ v on islands (Riebler et al. 2016), from sae's own prior sampler.
- `state_steps`: a misspecified area effect, constant within each state and jumping at state lines
  (e.g. state registries, Medicaid policy), which a smooth spatial field cannot follow.
- `us_populations`: simulated race-specific populations for the 3,107 counties. The repository
  has no race-by-county census table for the whole country, so county totals are log-normal with
  median e^10.2 ≈ 27,000 (the US county median is about 26,000), and each minority group's share
  follows its own spatially clustered field, so groups concentrate in regions as they do in the
  census: cells run from 10 people to millions, and many have no events.
- `survey_samples`: a county survey with n_i = 150 √(pop_i / 27,000) respondents (BRFSS-like
  sizes), allocated to groups in proportion to population, so minority cells often have 0–5.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from sae.predictor import bym2_combination, structure_weights
from sae.prior_predictive import draw_icar

US_GROUP_SHARES = {"white": 0.62, "black": 0.12, "hispanic": 0.17, "asian_other": 0.09}
MIN_CELL_POPULATION = 10


def bym2_field(graph, sigma: float, rho: float, rng: np.random.Generator, shape=()) -> np.ndarray:
    """Independent fields with fixed σ and ρ: an array of shape + (n_areas,) in graph order."""
    u = draw_icar(graph, rng, shape)
    v = rng.normal(size=(*shape, graph.n_areas))
    sigma, rho = np.full(shape, sigma), np.full(shape, rho)
    return bym2_combination(sigma, rho, u, v, *structure_weights(graph))


def in_area_order(values: np.ndarray, graph, area_ids) -> np.ndarray:
    """Reorder the last (area) axis from the graph's order to the order of `area_ids`."""
    return values[..., pd.Index(graph.ids).get_indexer(area_ids)]


def state_steps(area_ids, sd: float, rng: np.random.Generator) -> np.ndarray:
    """One N(0, sd²) level per state (the first two FIPS digits), shared by its counties."""
    states = pd.Series([str(a)[:2] for a in area_ids])
    levels = pd.Series(rng.normal(0.0, sd, states.nunique()), index=sorted(states.unique()))
    return states.map(levels).to_numpy()


def us_populations(areas: gpd.GeoDataFrame, graph, seed: int = 2026) -> pd.DataFrame:
    """County × group populations (fips, group, population); minority shares clustered in space."""
    rng = np.random.default_rng(seed)
    total = np.exp(rng.normal(10.2, 1.3, len(areas)))
    fields = bym2_field(graph, 1.2, 0.9, rng, (len(US_GROUP_SHARES) - 1,))
    minority_fields = in_area_order(fields, graph, areas["fips"])
    log_share = (
        np.log(list(US_GROUP_SHARES.values()))
        + np.vstack([np.zeros(len(areas)), minority_fields]).T
    )
    share = np.exp(log_share) / np.exp(log_share).sum(axis=1, keepdims=True)
    population = np.maximum(np.round(total[:, None] * share), MIN_CELL_POPULATION)
    return pd.DataFrame({
        "fips": np.repeat(areas["fips"].to_numpy(), len(US_GROUP_SHARES)),
        "group": np.tile(list(US_GROUP_SHARES), len(areas)),
        "population": population.ravel().astype(int),
    })  # fmt: skip


def survey_samples(populations: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """Respondents per cell: county n_i = 150 √(pop_i / 27,000); a group gets Binomial(n_i, share)."""
    county = populations.groupby("fips", sort=False)["population"]
    county_total = county.transform("sum").to_numpy()
    n_county = np.round(150 * np.sqrt(county_total / 27_000)).astype(int)
    share = populations["population"].to_numpy() / county_total
    return rng.binomial(n_county, share)
