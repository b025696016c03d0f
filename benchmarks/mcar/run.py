"""Correlated group fields (`group_effects = "mcar"`) against iid and bym2 group effects:

    .venv/bin/python benchmarks/mcar/run.py --loo            # Pennsylvania, PSIS-LOO (NUTS)
    .venv/bin/python benchmarks/mcar/run.py --simulation     # known truth, one group 30x smaller
    .venv/bin/python benchmarks/mcar/run.py --report

**LOO**: models/pennsylvania_lung_race.toml with group_effects = iid, bym2 and mcar (NUTS, 4 chains
× 1000 draws), compared by ArviZ, with the MCAR correlation of the two groups' deviations.

**Simulation**: the 67 Pennsylvania counties with two groups, `large` with the real white county
populations and `small` with a thirtieth of them. Truth: log θ_ig = log(60 per 100,000) + α_g +
c_ig, α_small = log 1.5, and c an MCAR field: unit BYM2 fields (ρ 0.7) mixed by a correlation of
0.8 and scaled by σ = (0.25, 0.35), so the small group's deviations follow the large group's
pattern. Each replication is fitted with spatial = "none" and group_effects = iid, bym2 (a field
per group, independent) and mcar (NUTS, 2 chains × 500 draws), and mcar with the Laplace method
(`mcar, Laplace`). Seed r for replication r; a re-run adds only the fits the saved scores lack.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import arviz as az
import geopandas as gpd
import numpy as np
import pandas as pd

import sae
from sae.graph import graph_from_polygons

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "common"))
from helpers import benchmark, markdown, rmse  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CORRELATION, SIGMA, RHO = 0.8, (0.25, 0.35), 0.7
MODELS = ("iid", "bym2", "mcar", "mcar, Laplace")


def quiet_fit(spec, **inputs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sae.fit(spec, progress=False, **inputs)


def loo() -> None:
    base = sae.load_spec(ROOT / "models" / "pennsylvania_lung_race.toml").replace(
        sampler={"method": "nuts"})  # fmt: skip
    loos, rows = {}, []
    for choice in ("iid", "bym2", "mcar"):
        fit = quiet_fit(base.replace(model={"group_effects": choice}))
        loos[choice] = fit.check()["loo"]
        correlation = fit.group_correlations()
        rows.append({"group_effects": choice, "elpd_loo": round(loos[choice].elpd_loo, 1),
                     "p_loo": round(loos[choice].p_loo, 1), "max_rhat": round(fit.diagnostics.max_rhat, 3),
                     "min_ess_bulk": round(fit.diagnostics.min_ess_bulk),
                     "fit_s": round(fit.seconds["total"], 1),
                     "correlation": "" if correlation.empty else
                     "{median:.2f} [{lower:.2f}, {upper:.2f}]".format(**correlation.iloc[0])})  # fmt: skip
        print(rows[-1], flush=True)
    pd.DataFrame(rows).to_csv(HERE / "loo.csv", index=False)
    compare = az.compare(loos).round(2)[["rank", "elpd_loo", "elpd_diff", "dse"]]
    compare.reset_index(names="group_effects").to_csv(HERE / "loo_compare.csv", index=False)


def truth(graph, areas, rng) -> pd.DataFrame:
    coverage = benchmark("coverage")
    unit = np.array([coverage.in_area_order(coverage.bym2_field(graph, 1.0, RHO, rng), graph,
                                            areas["fips"]) for _ in range(2)])  # fmt: skip
    cholesky = np.linalg.cholesky(np.array([[1.0, CORRELATION], [CORRELATION, 1.0]]))
    return pd.DataFrame((np.array(SIGMA)[:, None] * (cholesky @ unit)).T, index=areas["fips"],
                        columns=["large", "small"])  # fmt: skip


def simulation(replications: int) -> None:
    cells = pd.read_csv(
        ROOT / "benchmarks" / "pennsylvania_lung" / "cells.csv", dtype={"fips": str}
    )
    areas = gpd.read_file(ROOT / "shapefiles" / "pennsylvania_counties.gpkg")
    white = cells[cells["race"] == "white"].groupby("fips")["population"].sum()
    spec = sae.spec_from_dict({
        "data": {"area_id": "fips", "group": "group", "count": "cases", "population": "population"},
        "model": {"spatial": "none"}, "output": {"reference_group": "large"},
        "sampler": {"method": "nuts", "chains": 2, "draws": 500, "tune": 500},
    })  # fmt: skip
    graph = graph_from_polygons(areas, "fips", "queen", "pennsylvania_counties.gpkg")
    saved = HERE / "simulation.csv.gz"
    scored = [pd.read_csv(saved, dtype={"area": str})] if saved.exists() else []
    done = set(zip(scored[0]["model"], scored[0]["seed"], strict=True)) if scored else set()
    for seed in range(replications):
        rng = np.random.default_rng(seed)
        c = truth(graph, areas, rng)
        frame = pd.concat([
            pd.DataFrame({"fips": white.index, "group": "large", "population": white.to_numpy()}),
            pd.DataFrame({"fips": white.index, "group": "small", "population": (white / 30).round().to_numpy()}),
        ], ignore_index=True)  # fmt: skip
        log_ratio = np.where(frame["group"] == "small", np.log(1.5), 0.0)
        deviation = [c.loc[f, g] for f, g in zip(frame["fips"], frame["group"], strict=True)]
        rate = 60e-5 * np.exp(log_ratio + np.array(deviation))
        frame = frame.assign(cases=rng.poisson(frame["population"] * rate), truth=rate * 1e5)
        for choice in (c for c in MODELS if (c, seed) not in done):
            settings = {"model": {"group_effects": choice.split(",")[0]}}
            if choice.endswith("Laplace"):
                settings["sampler"] = {"method": "laplace"}
            fit = quiet_fit(spec.replace(**settings), cells=frame.drop(columns="truth"),
                            areas=areas)  # fmt: skip
            est = fit.estimates().merge(frame.rename(columns={"fips": "area"})[["area", "group", "truth"]],
                                        on=["area", "group"])  # fmt: skip
            correlation = fit.group_correlations()
            scored.append(est.assign(
                model=choice, seed=seed, error=est["mean"] - est["truth"],
                covered=(est["lower"] <= est["truth"]) & (est["truth"] <= est["upper"]),
                correlation_covered=np.nan if correlation.empty else float(
                    correlation["lower"].iloc[0] <= CORRELATION <= correlation["upper"].iloc[0]),
                correlation_median=np.nan if correlation.empty else correlation["median"].iloc[0],
            )[["area", "group", "model", "seed", "error", "covered", "correlation_covered",
               "correlation_median"]])  # fmt: skip
            print(seed, choice, est.groupby("group")["mean"].size().to_dict(), flush=True)
    pd.concat(scored).to_csv(HERE / "simulation.csv.gz", index=False, float_format="%.6g")


READING = """
## Reading

- On the Pennsylvania data the three group-effect models are within LOO's noise: bym2 −1581.6,
  mcar 0.3 ± 0.5 behind, iid 1.4 ± 1.4 behind. The correlation of the two groups' deviations is not
  identified there (−0.01 [−0.79, 0.70]): the white deviations are tiny (σ about 0.05), and next to
  the shared area field what both groups share goes into that field. MCAR also took four times as
  long to sample (472 s against 119 s for bym2) with a worse R-hat (1.028). `iid` stays the default.
- With known truth, where a group 30 times smaller follows the large group's pattern (correlation
  0.8, no shared area field), MCAR gives the small group the lowest RMSE: 23.9 per 100,000 against
  24.5 (iid) and 26.0 (independent BYM2 fields), and the best coverage, 92.0% against 89.8% and
  90.3%. The gain over iid is small (2%). The correlation is estimated at 0.54 (median over
  replications), and its 95% interval covers 0.8 in every replication. All three models
  under-cover the small group a little; its cells expect about one event.
- The Laplace method fits the same MCAR model (the correlation enters the prior precision; see
  `sae.correlated_fields`) with the NUTS answer: on the simulation the small group's RMSE is 23.9
  for both, coverage 93.5% against 92.0%, the correlation's median 0.55 against 0.54, covered in
  every replication. On Pennsylvania (measured by hand, not in the tables above) it gives
  elpd_loo −1582.0 (NUTS −1582.0) and the correlation 0.06 [−0.67, 0.70] (NUTS −0.01
  [−0.79, 0.70]) in 2.6 s, against 472 s of sampling.
- So MCAR earns its place where groups share a spatial pattern and one of them is small, in the
  RSTr-style model without a shared field (`spatial = "none"`). Next to a shared field its
  correlation says little, and the report's interval shows that.
"""


def write_report() -> None:
    parts = [
        "# Correlated group fields (MCAR) against iid and bym2 group effects\n\n"
        "Produced by `benchmarks/mcar/run.py`; see its docstring.\n"
    ]
    if (HERE / "loo.csv").exists():
        parts += ["\n## Pennsylvania lung cancer, PSIS-LOO (NUTS)\n\n", markdown(pd.read_csv(HERE / "loo.csv")),
                  "\n\n", markdown(pd.read_csv(HERE / "loo_compare.csv")), "\n"]  # fmt: skip
    if (HERE / "simulation.csv.gz").exists():
        s = pd.read_csv(HERE / "simulation.csv.gz")
        by = s.groupby(["group", "model"])
        table = pd.DataFrame({"replications": by["seed"].nunique(), "coverage": by["covered"].mean().round(3),
                              "RMSE per 100,000": by["error"].apply(rmse).round(1),
                              "correlation median": by["correlation_median"].mean().round(2),
                              "correlation covered": by["correlation_covered"].mean().round(2)}).reset_index()  # fmt: skip
        parts += [
            "\n## Known truth: one group 30 times smaller, deviations correlated 0.8\n\n",
            markdown(table),
            "\n",
        ]
    parts.append(READING)
    (HERE / "RESULTS.md").write_text("".join(parts), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--loo", action="store_true")
    parser.add_argument("--simulation", action="store_true")
    parser.add_argument("--replications", type=int, default=5)
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args()
    if args.loo:
        loo()
    if args.simulation:
        simulation(args.replications)
    write_report()


if __name__ == "__main__":
    main()
