"""Group-specific stratum effects (`[model] strata_by_group`): do they earn their place, and should
they be the default? Two questions, answered on the Pennsylvania race × county × sex × age data:

    .venv/bin/python benchmarks/strata_by_group/run.py --loo           # real data, NUTS and Laplace
    .venv/bin/python benchmarks/strata_by_group/run.py --simulation    # known truth, Laplace
    .venv/bin/python benchmarks/strata_by_group/run.py --report        # RESULTS.md from saved runs

**LOO** fits models/pennsylvania_lung_race.toml with strata_by_group = [], ["age"] and
["age", "sex"] and compares them by PSIS-LOO (ArviZ `compare`), with the posterior predictive
p-values of the group × stratum totals and the statewide age-adjusted rate ratio.

**Simulation** (known truth, on the real populations): log θ_igk = log λ_k + α_g + γ_g,age + b_i +
c_ig, with λ_k the observed statewide sex × age rates, α_non-white = log 1.2, b a BYM2 field
(σ 0.3, ρ 0.7), c_ig ~ N(0, 0.15²), and
- *shared age effects*: γ = 0 (the shared-strata model is right);
- *group-specific age effects*: γ_non-white = (Under 40: +0.3, 40–59: 0, 60–69: −0.2, 70+: −0.3)
  (about the size the real data show; see the LOO fit's interaction coefficients).
Both models are fitted to every replication and scored on the age-adjusted rates and the
age-adjusted non-white / white rate ratio per county (the headline quantity), against the truth
standardised with the same weights. Seed r for replication r.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "common"))
from helpers import benchmark, markdown  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SPEC = ROOT / "models" / "pennsylvania_lung_race.toml"
CHOICES = {"shared": (), "age by group": ("age",), "age and sex by group": ("age", "sex")}
NON_WHITE_AGE = {"Under.40": 0.3, "40.59": 0.0, "60.69": -0.2, "70+": -0.3}
SCENARIOS = ("shared age effects", "group-specific age effects")


def quiet_fit(spec, **inputs) -> sae.Fit:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sae.fit(spec, progress=False, **inputs)


# Real data: LOO --------------------------------------------------------------------------------


def loo_rows(method: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    base = sae.load_spec(SPEC).replace(sampler={"method": method})
    loos, rows = {}, []
    for name, strata in CHOICES.items():
        fit = quiet_fit(base.replace(model={"strata_by_group": strata}))
        result = fit.check()
        loos[name] = result["loo"]
        ppc = result["posterior_predictive"]
        cross = ppc[ppc["rows"].str.contains("× age")]
        overall = fit.overall().set_index("group").loc["non-white"]
        rows.append({
            "method": method, "strata_by_group": name,
            "elpd_loo": round(result["loo"].elpd_loo, 1), "p_loo": round(result["loo"].p_loo, 1),
            "group × sex × age totals with p < 0.05 or > 0.95":
                f"{int(((cross['p_value'] < 0.05) | (cross['p_value'] > 0.95)).sum())} of {len(cross)}",
            "statewide age-adjusted ratio": f"{overall['ratio_median']:.3f} "
                f"[{overall['ratio_lower']:.3f}, {overall['ratio_upper']:.3f}]",
            "clear / likely / uncertain gaps": "/".join(
                str(int((fit.gaps()["flag"] == f).sum())) for f in ("clear", "likely", "uncertain")),
        })  # fmt: skip
        print(rows[-1], flush=True)
    comparison = az.compare(loos).round(2)[["rank", "elpd_loo", "elpd_diff", "dse"]]
    return pd.DataFrame(rows), comparison.reset_index(names="strata_by_group").assign(method=method)


# Known truth ---------------------------------------------------------------------------------


def simulate(cells, graph, areas, scenario: str, seed: int, coverage) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    stratum_rate = cells.groupby(["sex", "age"])["cases"].transform("sum") / cells.groupby(
        ["sex", "age"])["population"].transform("sum")  # fmt: skip
    b = pd.Series(coverage.bym2_field(graph, 0.3, 0.7, rng), index=list(graph.ids))
    keys = cells[["fips", "race"]].drop_duplicates()
    c = pd.Series(rng.normal(0, 0.15, len(keys)), index=pd.MultiIndex.from_frame(keys))
    non_white = (cells["race"] == "non-white").to_numpy()
    gamma = cells["age"].map(NON_WHITE_AGE).to_numpy() if scenario != SCENARIOS[0] else 0.0
    log_theta = (np.log(stratum_rate.to_numpy()) + non_white * (np.log(1.2) + gamma)
                 + cells["fips"].map(b).to_numpy()
                 + c.reindex(pd.MultiIndex.from_frame(cells[["fips", "race"]])).to_numpy())  # fmt: skip
    theta = np.exp(log_theta)
    return cells.assign(theta=theta, cases=rng.poisson(cells["population"] * theta))


def true_adjusted(fit: sae.Fit, simulated: pd.DataFrame) -> pd.Series:
    """The true age-adjusted rate per 100,000 of every area × group, standardised exactly as sae
    standardises its draws (the same grid weights)."""
    grid = fit.design.grid
    units, matrix = grid.aggregation(("area", "group"), "age", fit.inputs.age_weights)
    theta = simulated.rename(columns={"fips": "area", "race": "group"}).set_index(
        ["area", "group", "sex", "age"])["theta"]  # fmt: skip
    rows = pd.MultiIndex.from_frame(grid.rows[["area", "group", "sex", "age"]])
    values = theta.reindex(rows).to_numpy()
    rate = matrix.T @ np.nan_to_num(values)
    return pd.Series(rate * 1e5, index=pd.MultiIndex.from_frame(units))


def score(fit: sae.Fit, truth: pd.Series, scenario: str, model: str, seed: int):
    est = fit.estimates().set_index(["area", "group"])
    t = truth.reindex(est.index)
    cells = pd.DataFrame({
        "covered": (est["adj_lower"] <= t) & (t <= est["adj_upper"]),
        "error": est["adj_mean"] - t, "width": est["adj_upper"] - est["adj_lower"],
    }).assign(scenario=scenario, model=model, seed=seed)  # fmt: skip
    gaps = fit.gaps("white").set_index(["area", "group"])
    ratio = (truth.reindex(gaps.index).to_numpy()
             / truth.reindex(pd.MultiIndex.from_arrays([gaps.index.get_level_values(0),
                                                         gaps["reference"]])).to_numpy())  # fmt: skip
    gaps = pd.DataFrame({
        "covered": (gaps["ratio_lower"] <= ratio) & (ratio <= gaps["ratio_upper"]),
        "log_error": np.log(gaps["ratio_median"]) - np.log(ratio),
        "log_width": np.log(gaps["ratio_upper"] / gaps["ratio_lower"]),
        "clear": gaps["flag"] == "clear",
    }).assign(scenario=scenario, model=model, seed=seed)  # fmt: skip
    return cells.reset_index(), gaps.reset_index()


def simulation(replications: int) -> None:
    coverage = benchmark("coverage")
    base = sae.load_spec(SPEC).replace(data={"covariates": ()}, sampler={"method": "laplace"})
    cells = pd.read_csv(
        ROOT / "benchmarks" / "pennsylvania_lung" / "cells.csv", dtype={"fips": str}
    )
    areas = gpd.read_file(ROOT / "shapefiles" / "pennsylvania_counties.gpkg")
    graph = coverage.load_inputs(base, cells=cells, areas=areas).graph
    scored_cells, scored_gaps = [], []
    for scenario in SCENARIOS:
        for seed in range(replications):
            simulated = simulate(cells, graph, areas, scenario, seed, coverage)
            for model in ("shared", "age by group"):
                spec = base.replace(model={"strata_by_group": CHOICES[model]})
                fit = quiet_fit(spec, cells=simulated.drop(columns="theta"), areas=areas)
                c, g = score(fit, true_adjusted(fit, simulated), scenario, model, seed)
                scored_cells.append(c)
                scored_gaps.append(g)
                print(scenario, seed, model, round(c["covered"].mean(), 3),
                      round(g["covered"].mean(), 3), flush=True)  # fmt: skip
    pd.concat(scored_cells).to_csv(
        HERE / "simulation_cells.csv.gz", index=False, float_format="%.6g"
    )
    pd.concat(scored_gaps).to_csv(HERE / "simulation_gaps.csv.gz", index=False, float_format="%.6g")


# Report ----------------------------------------------------------------------------------------


def simulation_table() -> pd.DataFrame:
    cells = pd.read_csv(HERE / "simulation_cells.csv.gz")
    gaps = pd.read_csv(HERE / "simulation_gaps.csv.gz")
    keys = ["scenario", "model"]
    c, g = cells.groupby(keys), gaps.groupby(keys)
    return pd.DataFrame({
        "replications": c["seed"].nunique(),
        "adjusted rate coverage": c["covered"].mean().round(3),
        "adjusted rate RMSE": c["error"].apply(lambda e: np.sqrt(np.mean(e**2))).round(2),
        "adjusted rate mean width": c["width"].mean().round(2),
        "ratio coverage": g["covered"].mean().round(3),
        "ratio RMSE (log)": g["log_error"].apply(lambda e: np.sqrt(np.mean(e**2))).round(3),
        "ratio mean width (log)": g["log_width"].mean().round(3),
        "share clear": g["clear"].mean().round(3),
    }).reset_index()  # fmt: skip


READING = """
## Reading

- On the real data, group-specific age effects are ahead by about 4 elpd (LOO), a bit more than one
  standard error of the difference: weak evidence, in the same direction for both methods. Adding
  sex × group as well does not help (1.6 ± 1.7 behind). The posterior predictive totals of group ×
  sex × age cells that fall outside the replicated range drop from 6 of 16 to 4 of 16; what is left
  is a sex × age pattern that no group effect can fix.
- The statewide age-adjusted ratio and the gap flags do not move: the age-specific ratios the data
  show (non-white vs white about −0.2 on the log scale at 60–69 and −0.13 at 70+, relative to
  40–59) are small against the county-level noise.
- With known truth, the age-specific model covers as well as the shared one when the truth has no
  interaction (age-adjusted rates 94.1% vs 94.4%, ratios 96.0% vs 96.4%, the same widths), and no
  worse when it has one. At an interaction of this size the age-adjusted quantities barely depend
  on the assumption: the standardised rates are dominated by the older bands, where the common
  ratio the shared model estimates is close to the true age-specific ones.
- So the default is the age-specific model (`strata_by_group` = the age stratum): it removes an
  assumption the age-adjusted gap would otherwise rest on, LOO prefers it, and it costs nothing
  measurable in coverage or precision. `strata_by_group = []` restores the shared effects.
"""


def write_report() -> None:
    parts = ["# Group-specific stratum effects (`[model] strata_by_group`)\n\n"
             "Produced by `benchmarks/strata_by_group/run.py`; see its docstring for the models "
             "and the simulated truth.\n"]  # fmt: skip
    if (HERE / "loo.csv").exists():
        parts += ["\n## Real data: Pennsylvania lung cancer, race × county × sex × age\n\n",
                  markdown(pd.read_csv(HERE / "loo.csv")), "\n\nLOO comparison (ArviZ `compare`; "
                  "`elpd_diff` against the best model of the same method, `dse` its SE):\n\n",
                  markdown(pd.read_csv(HERE / "loo_compare.csv")), "\n"]  # fmt: skip
    if (HERE / "simulation_cells.csv.gz").exists():
        parts += ["\n## Known truth: 67 counties × 2 groups × 2 sexes × 4 age bands (Laplace)\n\n"
                  "Coverage of 95% intervals of the age-adjusted rate per county × group (per "
                  "100,000) and of the age-adjusted rate ratio non-white / white per county.\n\n",
                  markdown(simulation_table()), "\n"]  # fmt: skip
    parts.append(READING)
    (HERE / "RESULTS.md").write_text("".join(parts), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--loo", action="store_true")
    parser.add_argument("--simulation", action="store_true")
    parser.add_argument("--replications", type=int, default=10)
    parser.add_argument("--report", action="store_true", help="only rebuild RESULTS.md")
    args = parser.parse_args()
    if args.loo:
        tables = [loo_rows(method) for method in ("nuts", "laplace")]
        pd.concat([t[0] for t in tables]).to_csv(HERE / "loo.csv", index=False)
        pd.concat([t[1] for t in tables]).to_csv(HERE / "loo_compare.csv", index=False)
    if args.simulation:
        simulation(args.replications)
    write_report()


if __name__ == "__main__":
    main()
