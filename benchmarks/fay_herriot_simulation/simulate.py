"""Simulated survey prevalences on the Pennsylvania county map, with the truth kept.

Truth (seed s): logit θ_i = logit(0.15) + 0.8 z_i, z a smooth standardised surface of the county
centroids (spatially structured, no noise), so a spatial model should do better than an
independent one. Each county gets a survey of n_i people, n_i log-uniform on [30, 1500];
p̂_i = Binomial(n_i, θ_i) / n_i and the "known" sampling variance is p̂(1 − p̂)/n_i, which is 0 when
p̂ is 0 or 1 (sae then fills it from the generalised variance function).
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]


def pennsylvania() -> gpd.GeoDataFrame:
    return gpd.read_file(ROOT / "shapefiles" / "pennsylvania_counties.gpkg")


def simulate_survey(areas: gpd.GeoDataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    centroids = areas.to_crs(areas.estimate_utm_crs()).geometry.centroid
    x = (centroids.x - centroids.x.mean()) / centroids.x.std()
    y = (centroids.y - centroids.y.mean()) / centroids.y.std()
    surface = np.sin(1.3 * x) + np.cos(1.1 * y + 0.5) + 0.5 * x * y
    z = (surface - surface.mean()) / surface.std()
    truth = 1.0 / (1.0 + np.exp(-(np.log(0.15 / 0.85) + 0.8 * z)))
    n = np.round(np.exp(rng.uniform(np.log(30), np.log(1500), len(areas)))).astype(int)
    p_hat = rng.binomial(n, truth) / n
    return pd.DataFrame({"fips": areas["fips"].to_numpy(), "county": areas["county"].to_numpy(),
                         "prevalence": p_hat, "variance": p_hat * (1 - p_hat) / n,
                         "n": n, "truth": truth.to_numpy()})  # fmt: skip
