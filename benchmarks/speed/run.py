"""Speed benchmark: wall time (prepare, compile, sample), min bulk ESS per second, R-hat,
divergences and peak memory, for four problems from 56 to 15,535 cells.

    .venv/bin/python benchmarks/speed/run.py                 # all cases, writes RESULTS.md
    .venv/bin/python benchmarks/speed/run.py --case grid60   # one case, prints JSON

Each case runs in its own process so its peak memory is its own. Simulated data use fixed seeds.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import box

import sae

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CASES = ("scotland", "nc_sids", "grid60", "us_counties_5groups")


def grid60() -> tuple[sae.Spec, pd.DataFrame, gpd.GeoDataFrame]:
    """A 60 × 60 grid (rook), one group, counts around 10 per cell from a smooth field (seed 1)."""
    rng = np.random.default_rng(1)
    n = 60
    rows, cols = np.divmod(np.arange(n * n), n)
    areas = gpd.GeoDataFrame(
        {"area": [f"g{i:04d}" for i in range(n * n)]},
        geometry=[box(c, r, c + 1, r + 1) for r, c in zip(rows, cols, strict=True)],
        crs="EPSG:3857",
    )
    field = 0.4 * np.sin(rows / 8.0) * np.cos(cols / 11.0) + rng.normal(0, 0.2, n * n)
    population = np.full(n * n, 10_000)
    cells = pd.DataFrame(
        {
            "area": areas["area"],
            "cases": rng.poisson(1e-3 * population * np.exp(field)),
            "population": population,
        }
    )
    spec = sae.spec_from_dict(
        {
            "title": "60 x 60 grid",
            "data": {"area_id": "area", "count": "cases", "population": "population"},
            "graph": {"contiguity": "rook"},
            "model": {"group_effects": "none"},
        }
    )
    return spec, cells, areas


GROUP_SHARES = {"white": 0.60, "hispanic": 0.18, "black": 0.13, "asian": 0.06, "aian": 0.03}
GROUP_LOG_RR = {"white": 0.0, "hispanic": -0.2, "black": 0.3, "asian": -0.5, "aian": 0.4}


def us_counties_5groups() -> tuple[sae.Spec, pd.DataFrame, gpd.GeoDataFrame]:
    """3,107 US counties × 5 groups with simulated populations and counts (seed 2).

    County populations are log-normal (median about 26,000); group shares vary by county around
    national shares, so minority cells run from a handful of people to hundreds of thousands.
    """
    rng = np.random.default_rng(2)
    areas = gpd.read_file(ROOT / "shapefiles" / "us_counties_lower48.gpkg")
    centroids = areas.to_crs("EPSG:5070").geometry.centroid
    x, y = centroids.x.to_numpy() / 1e6, centroids.y.to_numpy() / 1e6
    spatial = 0.3 * np.sin(2.0 * x) + 0.2 * np.cos(3.0 * y)
    county_population = np.exp(rng.normal(10.2, 1.3, len(areas)))
    rows = []
    for group, share in GROUP_SHARES.items():
        shares = share * np.exp(rng.normal(0, 0.8, len(areas)))
        population = np.round(county_population * np.minimum(shares, 0.95))
        rate = 5e-4 * np.exp(GROUP_LOG_RR[group] + spatial + rng.normal(0, 0.1, len(areas)))
        rows.append(
            pd.DataFrame(
                {
                    "fips": areas["fips"],
                    "group": group,
                    "population": population,
                    "cases": rng.poisson(rate * population),
                }
            )
        )
    cells = pd.concat(rows, ignore_index=True)
    spec = sae.spec_from_dict(
        {
            "title": "US counties x 5 groups (simulated)",
            "data": {
                "area_id": "fips",
                "group": "group",
                "count": "cases",
                "population": "population",
            },
            "model": {"group_effects": "iid"},
        }
    )
    return spec, cells, areas


def problem(case: str):
    if case == "scotland":
        return sae.load_spec(ROOT / "models" / "scotland_lip_bym2.toml"), None, None
    if case == "nc_sids":
        return sae.load_spec(ROOT / "models" / "nc_sids_bym2.toml"), None, None
    return {"grid60": grid60, "us_counties_5groups": us_counties_5groups}[case]()


def run_case(case: str, draws: int, tune: int, low_rank: bool) -> dict:
    spec, cells, areas = problem(case)
    spec = spec.replace(
        sampler={
            "draws": draws,
            "tune": tune,
            "chains": 4,
            "seed": 1,
            "low_rank_mass_matrix": low_rank,
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = sae.fit(spec, cells=cells, areas=areas, progress=False)
    d = fit.diagnostics
    graph = fit.inputs.graph.summary()
    hyper = d["hyperparameters"]
    return {
        "case": case,
        "areas": graph["n_areas"],
        "edges": graph["n_edges"],
        "cells": len(fit.design.grid.cells),
        "chains_x_draws": f"{d['chains']} x {d['draws']} (+{tune} tune)",
        "low_rank_mass_matrix": low_rank,
        **{f"{k}_s": round(v, 1) for k, v in fit.seconds.items()},
        "total_s": round(sum(fit.seconds.values()), 1),
        "min_ess_bulk": round(d["min_ess_bulk"]),
        "min_ess_bulk_per_s": round(d["min_ess_bulk"] / fit.seconds["sample"], 1),
        "sigma_rho_ess_bulk": {k: round(v["ess_bulk"]) for k, v in hyper.items()},
        "max_rhat": round(d["max_rhat"], 4),
        "divergences": d["divergences"],
        "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def write_results(results: list[dict], path: Path) -> None:
    columns = [
        "case",
        "areas",
        "edges",
        "cells",
        "chains_x_draws",
        "low_rank_mass_matrix",
        "prepare_s",
        "compile_s",
        "sample_s",
        "total_s",
        "min_ess_bulk",
        "min_ess_bulk_per_s",
        "sigma_rho_ess_bulk",
        "max_rhat",
        "divergences",
        "peak_memory_mb",
    ]
    lines = [
        "# Speed benchmark",
        "",
        f"Machine: {sae.store.machine()}, Python {platform.python_version()}. Packages: "
        + ", ".join(f"{p} {sae.store.package_version(p)}" for p in ("pymc", "nutpie", "numpy")),
        "",
        "Produced by `benchmarks/speed/run.py`; raw figures in `results.json`.",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for r in results:
        lines.append("| " + " | ".join(str(r.get(c, "")) for c in columns) + " |")
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--case", choices=CASES)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--low-rank", action="store_true")
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.draws, args.tune, args.low_rank)))
        return
    results = []
    for case in CASES:
        command = [
            sys.executable,
            __file__,
            "--case",
            case,
            "--draws",
            str(args.draws),
            "--tune",
            str(args.tune),
        ]
        command += ["--low-rank"] if args.low_rank else []
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
        print(results[-1], flush=True)
        (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    write_results(results, HERE / "RESULTS.md")


if __name__ == "__main__":
    main()
