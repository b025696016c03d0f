"""Small fixtures: a synthetic map (a grid of squares and one island) with simulated counts."""

from __future__ import annotations

import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

ROOT = Path(__file__).resolve().parent.parent


def benchmark_script(folder: str):
    """benchmarks/<folder>/run.py as a module of its own name (`benchmarks/common/helpers.py`)."""
    sys.path.insert(0, str(ROOT / "benchmarks" / "common"))
    from helpers import benchmark

    return benchmark(folder)


def grid_areas(nrow: int = 4, ncol: int = 5, island: bool = True) -> gpd.GeoDataFrame:
    """Unit squares in a grid (ids a00, a01, ...) plus, optionally, an island far to the east."""
    rows = [
        {"area": f"a{r}{c}", "geometry": box(c * 1000, r * 1000, (c + 1) * 1000, (r + 1) * 1000)}
        for r in range(nrow)
        for c in range(ncol)
    ]
    if island:
        rows.append({"area": "island", "geometry": box(20_000, 0, 21_000, 1000)})
    return gpd.GeoDataFrame(rows, crs="EPSG:3857")


def simulated_cells(areas: gpd.GeoDataFrame, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Counts for two groups with a known group log rate ratio of log(2) and a smooth area trend.

    Returns the cells and the true rates per person. Simulated truth, seed `seed`.
    """
    rng = np.random.default_rng(seed)
    centroids = areas.geometry.centroid
    trend = 0.3 * np.sin(centroids.x.to_numpy() / 2000.0)
    rows, truth = [], []
    for i, area in enumerate(areas["area"]):
        for group, log_ratio, population in (("A", 0.0, 50_000), ("B", np.log(2.0), 20_000)):
            rate = np.exp(np.log(1e-3) + log_ratio + trend[i])
            rows.append(
                {
                    "area": area,
                    "group": group,
                    "cases": rng.poisson(rate * population),
                    "population": population,
                }
            )
            truth.append({"area": area, "group": group, "rate": rate})
    return pd.DataFrame(rows), pd.DataFrame(truth)


@pytest.fixture
def areas() -> gpd.GeoDataFrame:
    return grid_areas()


@pytest.fixture
def cells(areas) -> pd.DataFrame:
    return simulated_cells(areas)[0]


def write_spec(
    directory: Path, cells: pd.DataFrame, areas: gpd.GeoDataFrame, extra: str = ""
) -> Path:
    """Write cells.csv, areas.gpkg and a short spec into `directory`; return the spec path."""
    cells.to_csv(directory / "cells.csv", index=False)
    areas.to_file(directory / "areas.gpkg", driver="GPKG")
    spec = directory / "spec.toml"
    spec.write_text(
        '[data]\ncells = "cells.csv"\nareas = "areas.gpkg"\narea_id = "area"\ngroup = "group"\n'
        'count = "cases"\npopulation = "population"\n'
        "[sampler]\nchains = 2\ndraws = 300\ntune = 300\nseed = 7\n" + extra
    )
    return spec
