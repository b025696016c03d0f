"""Speed benchmark: both inference methods side by side on each problem.

For each case and method, in its own process: the wall time of `sae.fit` in a warm Python process
(a first fit warms imports and compilation caches, then the timed fit; everything `sae.fit` does is
included and `fit.seconds` splits it), the wall time of the tables (estimates and, with groups, gaps)
on top, the CLI's wall time for `sae fit` in a fresh process (CLI cases only), peak memory, and the
quality figures of each method (NUTS: min bulk ESS, σ/ρ ESS, R-hat, divergences; Laplace: the
importance-sampling k̂ and the correction).

    .venv/bin/python benchmarks/speed/run.py                                  # all, writes RESULTS.md
    .venv/bin/python benchmarks/speed/run.py --case grid60 --method laplace   # one, JSON on stdout
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import box

import sae
import sae.provenance

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CASES = (
    "scotland",
    "nc_sids",
    "nyc",
    "grid60",
    "us_counties_5groups",
    "us_counties_3groups_10years",
)
METHODS = ("laplace", "nuts")
SPEC_FILES = {"scotland": "scotland_lip_bym2.toml", "nc_sids": "nc_sids_bym2.toml",
              "nyc": "nyc_pedestrian_bym2.toml"}  # fmt: skip


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


def us_counties_space_time() -> tuple[sae.Spec, pd.DataFrame, gpd.GeoDataFrame]:
    """3,107 US counties × 3 groups (white, hispanic, black) × 10 years (2010–2019): the
    5-group problem's populations and spatial pattern (seed 2), with a trend of −1% a year, a
    gap to white narrowing by 2% a year, and iid county × year noise (sd 0.05); 93,210 cells.
    Fitted with the default space–time model (rw1 trend, rw1 per group, iid interaction)."""
    spec, cells, areas = us_counties_5groups()
    rng = np.random.default_rng(3)
    cells = cells[cells["group"].isin(["white", "hispanic", "black"])]
    base = cells.assign(rate=(cells["cases"] + 0.5) / cells["population"].clip(lower=1))
    years = []
    for t, year in enumerate(range(2010, 2020)):
        gap = np.where(base["group"] == "white", 0.0, -0.02 * t)
        noise = rng.normal(0, 0.05, len(base))
        rate = 5e-4 * np.exp(-0.01 * t + gap + noise) * (base["rate"] / 5e-4) ** 0.5
        years.append(base.assign(year=year, cases=rng.poisson(rate * base["population"])))
    cells = pd.concat(years, ignore_index=True).drop(columns="rate")
    spec = spec.replace(title="US counties x 3 groups x 10 years (simulated)",
                        data={"time": "year"})  # fmt: skip
    return spec, cells, areas


def problem(case: str):
    if case in SPEC_FILES:
        return sae.load_spec(ROOT / "models" / SPEC_FILES[case]), None, None
    return {"grid60": grid60, "us_counties_5groups": us_counties_5groups,
            "us_counties_3groups_10years": us_counties_space_time}[case]()  # fmt: skip


def timed_fit(spec, cells, areas):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = sae.fit(spec, cells=cells, areas=areas, progress=False)
    return fit, time.perf_counter() - start


def run_case(case: str, method: str, draws: int, tune: int) -> dict:
    spec, cells, areas = problem(case)
    spec = spec.replace(
        sampler={"method": method, "draws": draws, "tune": tune, "chains": 4, "seed": 1}
    )
    timed_fit(spec, cells, areas)  # warm: imports, numba/pytensor caches
    fit, fit_seconds = timed_fit(spec, cells, areas)
    start = time.perf_counter()
    fit.estimates()
    if len(fit.design.groups) > 1:
        fit.gaps()
    table_seconds = time.perf_counter() - start
    d = fit.diagnostics
    graph = fit.inputs.graph.summary()
    result = {
        "case": case, "method": method, "areas": graph["n_areas"], "edges": graph["n_edges"],
        "cells": len(fit.design.grid.rows), "draws": f"{d.chains} x {d.draws}",
        "fit_s": round(fit_seconds, 2), "tables_s": round(table_seconds, 2),
        **{f"{k}_s": round(v, 2) for k, v in fit.seconds.items() if k != "evaluations"},
        "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "quality": d.summary_line(),
    }  # fmt: skip
    if method == "nuts":
        result["min_ess_bulk_per_s"] = round(d.min_ess_bulk / fit_seconds, 1)
        result["sigma_rho_ess_bulk"] = {
            k: round(v["ess_bulk"]) for k, v in d.hyperparameters.items()
        }
    if case in SPEC_FILES:
        result["cli_s"] = cli_seconds(case, method, draws, tune)
    return result


def cli_seconds(case: str, method: str, draws: int, tune: int) -> float:
    """`sae fit` in a fresh process, tables written, no maps."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "sae.cli", "fit", str(ROOT / "models" / SPEC_FILES[case]),
                   "--out", str(Path(folder) / "out"), "--quiet", "--method", method,
                   "--draws", str(draws), "--tune", str(tune)]  # fmt: skip
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        return round(time.perf_counter() - start, 1)


def write_results(results: list[dict], path: Path) -> None:
    columns = ["case", "method", "areas", "edges", "cells", "draws", "fit_s", "tables_s", "cli_s",
               "peak_memory_mb", "prepare_s", "build_s", "compile_s", "sample_s", "diagnostics_s",
               "mode_s", "integration_s", "draws_s", "min_ess_bulk_per_s", "quality"]  # fmt: skip
    lines = [
        "# Speed benchmark: Laplace and NUTS side by side",
        "",
        f"Machine: {sae.provenance.machine()}, Python {platform.python_version()}. Packages: "
        + ", ".join(
            f"{p} {sae.provenance.package_version(p)}" for p in ("pymc", "nutpie", "numpy", "qdldl")
        ),  # fmt: skip
        "",
        "Produced by `benchmarks/speed/run.py`; raw figures in `results.json`. `fit_s`: `sae.fit` in a warm "
        "process; `tables_s`: estimates and gaps on top; `cli_s`: `sae fit` in a fresh process.",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for r in results:
        lines.append("| " + " | ".join(str(r.get(c, "")) for c in columns) + " |")
    # the sections written by hand below the table (readings, earlier sessions) are kept
    earlier = path.read_text() if path.exists() else ""
    kept = earlier[earlier.index("\n## ") :] if "\n## " in earlier else ""
    path.write_text("\n".join(lines) + "\n" + kept)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--case", choices=CASES)
    parser.add_argument("--method", choices=METHODS)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument(
        "--rerun",
        nargs="+",
        choices=CASES,
        default=[],
        help="re-run these cases only; keep the other rows of results.json",
    )
    parser.add_argument("--rerun-method", choices=METHODS,
                        help="with --rerun: re-run this method only, keep the other's rows")  # fmt: skip
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.method or "laplace", args.draws, args.tune)))
        return
    path = HERE / "results.json"
    earlier = json.loads(path.read_text()) if args.rerun else []
    results = []
    for case in CASES:
        for method in METHODS:
            kept = [r for r in earlier if (r["case"], r.get("method")) == (case, method)]
            skipped = bool(args.rerun) and (
                case not in args.rerun or args.rerun_method not in (None, method)
            )
            if skipped:  # a row that was never run stays absent
                results.extend(kept[:1])
                continue
            command = [sys.executable, __file__, "--case", case, "--method", method,
                       "--draws", str(args.draws), "--tune", str(args.tune)]  # fmt: skip
            out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            results.append(json.loads(out.strip().splitlines()[-1]))
            print(results[-1], flush=True)
            path.write_text(json.dumps(results, indent=2) + "\n")
    write_results(results, HERE / "RESULTS.md")


if __name__ == "__main__":
    main()
