"""Suppressed counts with known truth: does fitting them as ranges recover what the full data
give, and how do the two naive alternatives do?

    .venv/bin/python benchmarks/censored_counts/run.py [--replications 10]
    .venv/bin/python benchmarks/censored_counts/run.py --report

Truth: the Pennsylvania race × county × sex × age model of benchmarks/strata_by_group (shared age
effects: log θ = log λ_k + α_g + b_i + c_ig, b BYM2 σ 0.3 ρ 0.7, c ~ N(0, 0.15²)) on the real
populations. Each replication's counts are then suppressed as US Cancer Statistics and CDC WONDER
do: every row with 1 to 15 cases is reported as "Suppressed" (zeros stay 0). Four fits of the
main job's model (Laplace, the default method) to every replication:

- *full data*: the counts before suppression (the answer the other three aim at);
- *censored*: `[data] suppressed = { marker = "Suppressed", range = [1, 15] }`, each such row in
  the likelihood as P(1 ≤ y ≤ 15);
- *dropped*: the suppressed rows removed, as a user without that option would do;
- *midpoint*: each suppressed count replaced by 8 (or the population, where that is smaller).

Scored on the age-adjusted rate of every county × group (the truth standardised with the full
data's weights) and on the age-adjusted non-white / white ratio per county. Seed r for
replication r.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

import sae

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "common"))
from helpers import benchmark, markdown, rmse, simulation_main  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SUPPRESSED = (1, 15)
TREATMENTS = ("full data", "censored", "dropped", "midpoint")


def treated(simulated: pd.DataFrame, treatment: str) -> tuple[pd.DataFrame, dict]:
    """The cells a user would fit under `treatment`, and the [data] settings that go with them."""
    cells = simulated.drop(columns="theta")
    hidden = cells["cases"].between(*SUPPRESSED)
    if treatment == "full data":
        return cells, {}
    if treatment == "dropped":
        return cells[~hidden], {}
    if treatment == "midpoint":
        middle = np.minimum(sum(SUPPRESSED) // 2, cells["population"]).astype(int)
        return cells.assign(cases=cells["cases"].where(~hidden, middle)), {}
    marked = cells.assign(cases=cells["cases"].astype(object).where(~hidden, "Suppressed"))
    return marked, {"suppressed": {"marker": "Suppressed", "range": list(SUPPRESSED)}}


def replicate(seed: int, base, cells, graph, areas, strata_study) -> tuple[list, list]:
    simulated = strata_study.simulate(cells, graph, areas, "shared age effects", seed,
                                      benchmark("coverage"))  # fmt: skip
    truth = None
    scored_cells, scored_gaps = [], []
    for treatment in TREATMENTS:
        data, settings = treated(simulated, treatment)
        spec = base.replace(data=settings) if settings else base
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = sae.fit(spec, cells=data, areas=areas, progress=False)
        if truth is None:  # the full data's standardisation weights define the estimand
            truth = strata_study.true_adjusted(fit, simulated)
        c, g = strata_study.score(fit, truth, "suppressed 1–15", treatment, seed)
        keys = pd.MultiIndex.from_frame(c[["area", "group"]])
        flags = fit.estimates().set_index(["area", "group"])["adj_flag"]
        c = c.assign(suppressed_share=hidden_share(simulated).reindex(keys).to_numpy(),
                     flag=flags.reindex(keys).to_numpy())  # fmt: skip
        scored_cells.append(c)
        scored_gaps.append(g)
        print(seed, treatment, round(c["covered"].mean(), 3), round(g["covered"].mean(), 3),
              flush=True)  # fmt: skip
    return scored_cells, scored_gaps


def hidden_share(simulated: pd.DataFrame) -> pd.Series:
    """The share of each county × group's true cases that sit in suppressed rows."""
    hidden = simulated["cases"].where(simulated["cases"].between(*SUPPRESSED), 0)
    keys = [simulated["fips"].rename("area"), simulated["race"].rename("group")]
    return hidden.groupby(keys).sum() / simulated["cases"].groupby(keys).sum().clip(lower=1)


def run(replications: int) -> None:
    strata_study = benchmark("strata_by_group")
    base = sae.load_spec(ROOT / "models" / "pennsylvania_lung_race.toml").replace(
        data={"covariates": ()}, sampler={"method": "laplace"}
    )
    cells = pd.read_csv(
        ROOT / "benchmarks" / "pennsylvania_lung" / "cells.csv", dtype={"fips": str}
    )
    areas = gpd.read_file(ROOT / "shapefiles" / "pennsylvania_counties.gpkg")
    graph = benchmark("coverage").load_inputs(base, cells=cells, areas=areas).graph
    all_cells, all_gaps = [], []
    for seed in range(replications):
        c, g = replicate(seed, base, cells, graph, areas, strata_study)
        all_cells += c
        all_gaps += g
    pd.concat(all_cells).to_csv(HERE / "cells.csv.gz", index=False, float_format="%.6g")
    pd.concat(all_gaps).to_csv(HERE / "gaps.csv.gz", index=False, float_format="%.6g")


def tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    cells = pd.read_csv(HERE / "cells.csv.gz", dtype={"area": str})
    gaps = pd.read_csv(HERE / "gaps.csv.gz", dtype={"area": str})
    cells["suppressed cases"] = pd.cut(cells["suppressed_share"], [-0.01, 0.0, 0.5, 1.0],
                                       labels=["none", "up to half", "over half"])  # fmt: skip
    by = cells.groupby(["group", "suppressed cases", "model"], observed=True)
    cell_table = pd.DataFrame({
        "cells": by.size() // cells["seed"].nunique(),
        "coverage": by["covered"].mean().round(3),
        "bias": by["error"].mean().round(2),
        "RMSE": by["error"].apply(rmse).round(2),
        "mean width": by["width"].mean().round(2),
        "model-driven or unreliable": by["flag"].apply(
            lambda f: f.isin(["model-driven", "unreliable"]).mean()).round(3),
    }).reset_index()  # fmt: skip
    g = gaps.groupby("model")
    gap_table = pd.DataFrame({
        "ratio coverage": g["covered"].mean().round(3),
        "bias (log ratio)": g["log_error"].mean().round(3),
        "RMSE (log ratio)": g["log_error"].apply(rmse).round(3),
        "mean width (log)": g["log_width"].mean().round(3),
    }).reset_index()  # fmt: skip
    order = {name: i for i, name in enumerate(TREATMENTS)}
    cell_table = cell_table.sort_values(["group", "suppressed cases", "model"],
                                        key=lambda s: s.map(order) if s.name == "model" else s)  # fmt: skip
    return cell_table, gap_table.sort_values("model", key=lambda s: s.map(order))


READING = """
## Reading

- Fitting suppressed counts as ranges recovers what the full data give: in every band of suppression
  the age-adjusted rates cover the truth as often as with the full data (92–97%), with no bias to
  speak of (within ±1.2 per 100,000), and the county rate ratios cover 92.5% (full data 96.0%).
  The price is precision: RMSE and interval widths grow where most cases were suppressed, because a
  range says less than a count.
- Dropping the suppressed rows removes small positive counts and keeps the zeros, so the rates of
  the groups with many suppressed rows fall (non-white bias −66 to −74 per 100,000) and the rate
  ratios collapse (coverage 43%). Imputing the midpoint 8 where most true counts are 1–3 inflates
  them (non-white bias +135 to +612; ratio coverage 43%).
- The flags follow the information: a cell whose counts were mostly suppressed is flagged
  `model-driven` (the range keeps only part of a count's information, and the data share says so),
  which the midpoint fit, treating invented counts as data, does not do.
"""


def write_report() -> None:
    cell_table, gap_table = tables()
    seeds = pd.read_csv(HERE / "gaps.csv.gz")["seed"].nunique()
    (HERE / "RESULTS.md").write_text(
        "# Suppressed counts with known truth\n\n"
        f"Produced by `benchmarks/censored_counts/run.py` ({seeds} replications; see its docstring "
        "for the truth). Rates per 100,000, age-adjusted; `suppressed cases`: the share of a "
        "county × group's true cases that sat in suppressed rows.\n\n"
        "## Age-adjusted rate of each county × group\n\n"
        + markdown(cell_table)
        + "\n\n## Age-adjusted rate ratio non-white / white per county\n\n"
        + markdown(gap_table)
        + "\n"
        + READING,
        encoding="utf-8",
    )


if __name__ == "__main__":
    simulation_main(run, write_report, replications=10)
