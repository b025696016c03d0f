"""Coverage and accuracy of sae's intervals against a known truth, on real geometry.

    .venv/bin/python benchmarks/coverage/run.py --study pennsylvania [--replications 4] [--draws 500]
    .venv/bin/python benchmarks/coverage/run.py --study us_counties  [--replications 3]
    .venv/bin/python benchmarks/coverage/run.py --study us_survey    [--replications 3]
    .venv/bin/python benchmarks/coverage/run.py --report   # RESULTS.md and figures from saved results

Each study writes cells_<study>.csv.gz and gaps_<study>.csv.gz here; `--report` (also run after every
study) rebuilds RESULTS.md and coverage_<study>.png from all saved results. Every replication r
uses seed r for the truth and is fitted with 2 chains.

**pennsylvania**: race × place count model on the 67 counties with their real 2000 populations by
race (white / non-white) × sex × 4 age bands. Truth: log θ_igk = log λ_k + α_g + b_i + c_ig, λ_k
the observed statewide sex × age rates, α_non-white = log 1.2, c_ig ~ N(0, 0.15²), and
- *well-specified*: b a BYM2 field (σ = 0.3, ρ = 0.7);
- *sharp boundary*: b_i = ±0.35 east or west of the median county longitude.
Fitted with the main job's model (iid group effects, PC priors, crude-mix rates).

**us_counties**: the same model on the 3,107 US counties × 4 groups (white, black, hispanic,
asian_other) with simulated populations (`truths.us_populations`; 12,428 cells from 10 people to
over a million). Truth: log θ_ig = log(60 per 100,000) + α_g + b_i + c_ig, α = (0, log 1.2,
log 0.7, log 0.6), c_ig ~ N(0, 0.15²), and
- *well-specified*: b a BYM2 field (σ = 0.3, ρ = 0.7; the two island counties get σ v);
- *state steps*: b_i one N(0, 0.3²) level per state, jumping at state lines.

**us_survey**: the spatial Fay–Herriot model (BYM2 area effect, iid group effects) on the same
counties × groups, for a survey prevalence. Respondents per cell from `truths.survey_samples`
(cells with no respondents have no direct estimate and are predicted). Truth: θ_ig = 0.15 + a_g +
b_i + c_ig on the prevalence scale, a = (0, 0.03, 0.02, −0.03), b a BYM2 field (σ = 0.04,
ρ = 0.8), c_ig ~ N(0, 0.015²), kept inside [0.005, 0.995], and
- *well-specified*: direct estimates ~ N(θ, ψ) with the true ψ = θ(1 − θ)/n given to sae;
- *estimated variances*: what surveys deliver: p̂ = Binomial(n, θ)/n with ψ̂ = p̂(1 − p̂)/n, which is
  0 when p̂ is 0 or 1 (sae then fills it from its generalised variance function in n).
- *estimated variances, arcsine*: the same estimates fitted with transform = "arcsine", where sae
  uses the variance 1/(4n) of asin(√p̂), which does not depend on p̂ (a standard remedy).
- *estimated variances, smoothed*: the same estimates with `variance_smoothing = "proportion"`:
  every ψ̂ replaced by a GVF prediction from n and the group's pooled prevalence, with Duan's
  smearing factor (`sae.direct`).

Scored for every cell: does the 95% interval cover the truth, error of the posterior mean and of
the direct estimate, the flag; for every area and non-reference group: does the interval of the
gap to the reference group (rate ratio for counts, difference for prevalences) cover the truth.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import geopandas as gpd
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
from truths import (  # noqa: E402
    bym2_field,
    in_area_order,
    state_steps,
    survey_samples,
    us_populations,
)

import sae  # noqa: E402
from sae.graph import graph_from_polygons  # noqa: E402
from sae.inputs import load_inputs  # noqa: E402

EVENT_BANDS = ([0, 5, 20, 100, np.inf], ["< 5", "5–20", "20–100", "> 100"])
RESPONDENT_BANDS = ([0, 1, 10, 50, np.inf], ["none", "1–9", "10–49", "≥ 50"])
SCENARIOS = {
    "pennsylvania": ("well-specified", "sharp boundary"),
    "us_counties": ("well-specified", "state steps"),
    "us_survey": (
        "well-specified",
        "estimated variances",
        "estimated variances, arcsine",
        "estimated variances, smoothed",
    ),
}
STUDY_TITLES = {
    "pennsylvania": "Race × place count model, 67 Pennsylvania counties × 2 groups",
    "us_counties": "Race × place count model, 3,107 US counties × 4 groups",
    "us_survey": "Spatial Fay–Herriot, 3,107 US counties × 4 groups (prevalence, percentage points)",
}
US_LOG_RATE_RATIO = {"white": 0.0, "black": np.log(1.2), "hispanic": np.log(0.7),
                     "asian_other": np.log(0.6)}  # fmt: skip
US_PREVALENCE_SHIFT = {"white": 0.0, "black": 0.03, "hispanic": 0.02, "asian_other": -0.03}


METHOD = {"name": "laplace"}  # the default method; --method nuts for the reference


def sampler(draws: int) -> dict:
    return {"method": METHOD["name"], "chains": 2, "draws": draws, "tune": draws}


def label(study: str, method: str) -> str:
    """Saved results of a study: cells_<study>.csv.gz for NUTS, cells_<study>_laplace.csv.gz."""
    return study if method == "nuts" else f"{study}_{method}"


def quiet_fit(spec: sae.Spec, cells: pd.DataFrame, areas: gpd.GeoDataFrame) -> sae.Fit:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sae.fit(spec, cells=cells, areas=areas, progress=False)


# Pennsylvania ---------------------------------------------------------------------------------


def pennsylvania_spec(draws: int) -> sae.Spec:
    spec = sae.load_spec(ROOT / "models" / "pennsylvania_lung_race.toml")
    return spec.replace(data={"covariates": ()}, sampler=sampler(draws),
                        output={"age_stratum": None, "reference_group": "white"})  # fmt: skip


def simulate_pennsylvania(cells, graph, areas, scenario: str, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    stratum_rate = cells.groupby(["sex", "age"])["cases"].transform("sum") / cells.groupby(
        ["sex", "age"])["population"].transform("sum")  # fmt: skip
    if scenario == "well-specified":
        b = bym2_field(graph, 0.3, 0.7, rng)
    else:
        lon = areas.set_index("fips").loc[list(graph.ids)].geometry.centroid.x.to_numpy()
        b = np.where(lon > np.median(lon), 0.35, -0.35)
    area_effect = pd.Series(b, index=list(graph.ids))
    cell_keys = cells[["fips", "race"]].drop_duplicates()
    c = pd.Series(rng.normal(0, 0.15, len(cell_keys)), index=pd.MultiIndex.from_frame(cell_keys))
    log_ratio = np.where(cells["race"] == "non-white", np.log(1.2), 0.0)
    theta = stratum_rate * np.exp(log_ratio + cells["fips"].map(area_effect).to_numpy()
                                  + c.reindex(pd.MultiIndex.from_frame(cells[["fips", "race"]])).to_numpy())  # fmt: skip
    return cells.assign(theta=theta, cases=rng.poisson(cells["population"] * theta))


def replicate_pennsylvania(scenario: str, seed: int, draws: int):
    spec = pennsylvania_spec(draws)
    cells = pd.read_csv(
        ROOT / "benchmarks" / "pennsylvania_lung" / "cells.csv", dtype={"fips": str}
    )
    areas = gpd.read_file(ROOT / "shapefiles" / "pennsylvania_counties.gpkg")
    graph = load_inputs(spec, cells=cells, areas=areas).graph
    simulated = simulate_pennsylvania(
        cells, graph, areas.to_crs(areas.estimate_utm_crs()), scenario, seed
    )
    fit = quiet_fit(spec, simulated.drop(columns="theta"), areas)
    expected = simulated.assign(expected=simulated["population"] * simulated["theta"])
    truth = expected.groupby(["fips", "race"])[["expected", "population"]].sum().reset_index()
    truth = truth.rename(columns={"fips": "area", "race": "group"}).assign(
        truth=lambda t: t["expected"] / t["population"] * 1e5, size=lambda t: t["expected"]
    )
    return score(fit, truth, "ratio", scenario, seed)


# US counties, counts ----------------------------------------------------------------------------


US_AREAS = ROOT / "shapefiles" / "us_counties_lower48.gpkg"


def us_areas() -> gpd.GeoDataFrame:
    return gpd.read_file(US_AREAS)


def us_graph(areas: gpd.GeoDataFrame):
    """Queen contiguity of the US counties, as sae builds it for the fits (islands kept)."""
    return graph_from_polygons(areas, "fips", "queen", str(US_AREAS))


def us_count_spec(draws: int) -> sae.Spec:
    return sae.spec_from_dict({
        "title": "Simulated counts, US counties x 4 groups",
        "data": {"area_id": "fips", "area_name": "county_name", "group": "group",
                 "count": "cases", "population": "population"},
        "model": {"group_effects": "iid"},
        "output": {"reference_group": "white"},
        "sampler": sampler(draws),
    })  # fmt: skip


def replicate_us_counties(scenario: str, seed: int, draws: int):
    spec, areas = us_count_spec(draws), us_areas()
    graph = us_graph(areas)
    populations = us_populations(areas, graph)
    rng = np.random.default_rng(seed)
    if scenario == "state steps":
        b = state_steps(areas["fips"], 0.3, rng)
    else:
        b = in_area_order(bym2_field(graph, 0.3, 0.7, rng), graph, areas["fips"])
    log_theta = (np.log(60e-5) + populations["group"].map(US_LOG_RATE_RATIO)
                 + populations["fips"].map(pd.Series(b, index=areas["fips"]))
                 + rng.normal(0.0, 0.15, len(populations)))  # fmt: skip
    theta = np.exp(log_theta.to_numpy())
    cells = populations.assign(
        cases=rng.poisson(populations["population"] * theta),
        county_name=populations["fips"].map(areas.set_index("fips")["county_name"]),
    )
    fit = quiet_fit(spec, cells, areas)
    truth = populations.rename(columns={"fips": "area"}).assign(
        truth=theta * 1e5, size=populations["population"] * theta
    )
    return score(fit, truth, "ratio", scenario, seed)


# US counties, survey -----------------------------------------------------------------------------


def us_survey_spec(draws: int, transform: str, smoothing: str = "none") -> sae.Spec:
    return sae.spec_from_dict({
        "title": "Simulated survey prevalence, US counties x 4 groups",
        "data": {"area_id": "fips", "area_name": "county_name", "group": "group",
                 "estimate": "prevalence", "variance": "variance", "sample_size": "n",
                 "variance_smoothing": smoothing},
        "model": {"family": "gaussian", "spatial": "bym2", "group_effects": "iid",
                  "transform": transform},
        "output": {"reference_group": "white"},
        "sampler": sampler(draws),
    })  # fmt: skip


def survey_estimates(theta: np.ndarray, n: np.ndarray, scenario: str, rng):
    """Direct estimates and their sampling variances (NaN where a cell has no respondents)."""
    sampled = n > 0
    safe_n = np.maximum(n, 1)
    if scenario == "well-specified":
        variance = theta * (1 - theta) / safe_n
        estimate = rng.normal(theta, np.sqrt(variance))
    else:
        estimate = rng.binomial(n, theta) / safe_n
        variance = estimate * (1 - estimate) / safe_n
    return np.where(sampled, estimate, np.nan), np.where(sampled, variance, np.nan)


def replicate_us_survey(scenario: str, seed: int, draws: int):
    transform = "arcsine" if scenario.endswith("arcsine") else "none"
    smoothing = "proportion" if scenario.endswith("smoothed") else "none"
    spec, areas = us_survey_spec(draws, transform, smoothing), us_areas()
    graph = us_graph(areas)
    populations = us_populations(areas, graph)
    rng = np.random.default_rng(seed)
    n = survey_samples(populations, rng)
    b = pd.Series(in_area_order(bym2_field(graph, 0.04, 0.8, rng), graph, areas["fips"]),
                  index=areas["fips"])  # fmt: skip
    theta = (0.15 + populations["group"].map(US_PREVALENCE_SHIFT) + populations["fips"].map(b)
             + rng.normal(0.0, 0.015, len(populations))).clip(0.005, 0.995).to_numpy()  # fmt: skip
    estimate, variance = survey_estimates(theta, n, scenario, rng)
    cells = populations.assign(
        prevalence=estimate, variance=variance, n=n,
        county_name=populations["fips"].map(areas.set_index("fips")["county_name"]),
    )  # fmt: skip
    fit = quiet_fit(spec, cells, areas)
    truth = populations.rename(columns={"fips": "area"}).assign(truth=theta, size=n)
    return score(fit, truth, "diff", scenario, seed)


# Scoring ---------------------------------------------------------------------------------------


CELL_COLUMNS = ["scenario", "seed", "area", "group", "size", "truth", "direct_estimate", "mean",
                "lower", "upper", "flag", "covered"]  # fmt: skip
GAP_COLUMNS = ["scenario", "seed", "area", "group", "size", "measure", "true_gap", "gap_lower",
               "gap_upper", "prob_higher", "flag", "covered"]  # fmt: skip


def score(fit: sae.Fit, truth: pd.DataFrame, measure: str, scenario: str, seed: int):
    """Cell and gap tables with coverage; `truth` has area, group, truth and size (cell size).

    `measure` is "ratio" (counts) or "diff" (prevalences): the gap to the reference group scored.
    """
    labels = {"scenario": scenario, "seed": seed}
    cells = fit.estimates().merge(truth[["area", "group", "truth", "size"]], on=["area", "group"])
    direct = cells["crude"] if "crude" in cells else cells["direct"]
    cells = cells.assign(direct_estimate=direct, **labels,
                         covered=(cells["lower"] <= cells["truth"]) & (cells["truth"] <= cells["upper"]))  # fmt: skip
    true_rate = truth.set_index(["area", "group"])["truth"]
    gaps = fit.gaps(fit.spec.output.reference_group)
    rate = true_rate.reindex(pd.MultiIndex.from_frame(gaps[["area", "group"]])).to_numpy()
    reference = true_rate.reindex(pd.MultiIndex.from_frame(gaps[["area", "reference"]])).to_numpy()
    true_gap = rate / reference if measure == "ratio" else rate - reference
    lower, upper = gaps[f"{measure}_lower"], gaps[f"{measure}_upper"]
    gaps = gaps.assign(measure=measure, true_gap=true_gap, gap_lower=lower, gap_upper=upper,
                       covered=(lower <= true_gap) & (true_gap <= upper), **labels)  # fmt: skip
    gaps = gaps.merge(truth[["area", "group", "size"]], on=["area", "group"], validate="1:1")
    return cells[CELL_COLUMNS], gaps[GAP_COLUMNS]


# Report ----------------------------------------------------------------------------------------

STUDY_UNIT = {"pennsylvania": 1.0, "us_counties": 1.0, "us_survey": 100.0}  # survey: % points


def rmse(errors: pd.Series) -> float:
    return float(np.sqrt(np.mean(errors.dropna() ** 2))) if errors.notna().any() else np.nan


def banded(frame: pd.DataFrame, study: str) -> pd.DataFrame:
    edges, labels = RESPONDENT_BANDS if study == "us_survey" else EVENT_BANDS
    return frame.assign(band=pd.cut(frame["size"], edges, labels=labels, right=False))


def band_table(cells: pd.DataFrame, study: str) -> pd.DataFrame:
    unit = STUDY_UNIT[study]
    e = banded(cells, study).assign(model_error=(cells["mean"] - cells["truth"]) * unit,
                                    direct_error=(cells["direct_estimate"] - cells["truth"]) * unit,
                                    width=(cells["upper"] - cells["lower"]) * unit)  # fmt: skip
    grouped = e.groupby(["scenario", "band"], observed=True)
    return pd.DataFrame({
        "cells": grouped.size(),
        "coverage_95": grouped["covered"].mean().round(3),
        "rmse_sae": grouped["model_error"].apply(rmse).round(2),
        "rmse_direct": grouped["direct_error"].apply(rmse).round(2),
        "mean_width": grouped["width"].mean().round(2),
    }).reset_index()  # fmt: skip


def gap_table(gaps: pd.DataFrame, study: str) -> pd.DataFrame:
    """Coverage of gap intervals, and whether gaps flagged `clear` point the right way."""
    null = np.where(gaps["measure"] == "ratio", 1.0, 0.0)
    right_way = (gaps["prob_higher"] >= 0.5) == (gaps["true_gap"] > null)
    clear = gaps["flag"] == "clear"
    grouped = banded(gaps.assign(clear=clear, clear_right=right_way.where(clear)), study).groupby(
        ["scenario", "band"], observed=True
    )
    return pd.DataFrame({
        "gaps": grouped.size(),
        "coverage_95": grouped["covered"].mean().round(3),
        "share_flagged_clear": grouped["clear"].mean().round(3),
        "clear_in_true_direction": grouped["clear_right"].mean().round(3),
    }).reset_index()  # fmt: skip


def flag_table(cells: pd.DataFrame) -> pd.DataFrame:
    relative = (cells["mean"] - cells["truth"]).abs() / cells["truth"].abs()
    grouped = cells.assign(relative_error=relative).groupby(["scenario", "flag"])
    return pd.DataFrame({
        "cells": grouped.size(),
        "median_relative_error": grouped["relative_error"].median().round(3),
        "share_error_over_30pct": grouped["relative_error"].apply(lambda x: (x > 0.3).mean()).round(3),
        "coverage_95": grouped["covered"].mean().round(3),
    }).reset_index()  # fmt: skip


def markdown(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * len(frame.columns)
    rows = ("| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False))
    return header + "\n" + "\n".join(rows)


def plot(bands: pd.DataFrame, study: str, path: Path) -> None:
    size = "respondents" if study == "us_survey" else "expected events"
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for scenario, rows in bands.groupby("scenario"):
        axes[0].plot(rows["band"].astype(str), rows["coverage_95"], marker="o", label=scenario)
        axes[1].plot(rows["band"].astype(str), rows["rmse_sae"] / rows["rmse_direct"], marker="o",
                     label=scenario)  # fmt: skip
    axes[0].axhspan(0.93, 0.97, color="#dddddd", label="target 93–97%")
    axes[0].set(title="Coverage of 95% intervals (cells)", xlabel=f"{size} in the cell",
                ylim=(0.5, 1))  # fmt: skip
    axes[1].axhline(1, color="#888888", lw=0.8)
    axes[1].set(title="RMSE of sae / RMSE of the direct estimate", xlabel=f"{size} in the cell")
    axes[0].legend(fontsize=8)
    fig.suptitle(STUDY_TITLES[study], fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def study_section(study: str, method: str) -> str:
    name = label(study, method)
    cells = pd.read_csv(HERE / f"cells_{name}.csv.gz", dtype={"area": str})
    gaps = pd.read_csv(HERE / f"gaps_{name}.csv.gz", dtype={"area": str})
    bands = band_table(cells, study)
    plot(bands, study, HERE / f"coverage_{name}.png")
    seeds = cells.groupby("scenario")["seed"].nunique().to_dict()
    size = "respondents" if study == "us_survey" else "expected events"
    gap_kind = "difference" if study == "us_survey" else "rate ratio"
    return (
        f"## {STUDY_TITLES[study]}, {method.upper() if method == 'nuts' else method.title()}\n\n"
        f"Replications per scenario: {seeds}; see `run.py` for the truth.\n\n"
        f"![coverage and RMSE by cell size](coverage_{name}.png)\n\n"
        f"### Cells by {size}\n\n{markdown(bands)}\n\n"
        f"### Gap to the reference group ({gap_kind}) by {size} in the group's cell\n\n"
        f"{markdown(gap_table(gaps, study))}\n\n"
        f"### Do the flags pick out the large errors?\n\n{markdown(flag_table(cells))}\n"
    )


def write_report() -> None:
    runs = [(study, method) for study in SCENARIOS for method in ("nuts", "laplace")
            if (HERE / f"cells_{label(study, method)}.csv.gz").exists()]  # fmt: skip
    sections = "\n".join(study_section(study, method) for study, method in runs)
    (HERE / "RESULTS.md").write_text(
        "# Coverage and accuracy with known truth\n\nProduced by `benchmarks/coverage/run.py` "
        "(NUTS: 2 chains per fit; Laplace: the default method); per-cell results in `cells_<study>[_laplace].csv.gz` and `gaps_<study>[_laplace].csv.gz`. "
        "Coverage is of 95% intervals; RMSE and interval width are in the rate's unit (per 100,000 "
        "for counts, percentage points for the survey).\n\n" + sections
    )


REPLICATE = {"pennsylvania": replicate_pennsylvania, "us_counties": replicate_us_counties,
             "us_survey": replicate_us_survey}  # fmt: skip


def run_study(study: str, scenarios: list[str], replications: int, draws: int) -> None:
    """Fit and score; saved rows of the scenarios run are replaced, others are kept."""
    cells, gaps = [], []
    for scenario in scenarios:
        for seed in range(replications):
            c, g = REPLICATE[study](scenario, seed, draws)
            cells.append(c)
            gaps.append(g)
            print(study, scenario, seed, round(c["covered"].mean(), 3),
                  round(g["covered"].mean(), 3), flush=True)  # fmt: skip
    for name, frames in (("cells", cells), ("gaps", gaps)):
        path = HERE / f"{name}_{label(study, METHOD['name'])}.csv.gz"
        if path.exists():
            kept = pd.read_csv(path, dtype={"area": str})
            frames = [kept[~kept["scenario"].isin(scenarios)], *frames]
        pd.concat(frames).to_csv(path, index=False, float_format="%.6g")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--study", choices=list(SCENARIOS))
    parser.add_argument("--scenario", action="append", help="run only this scenario (repeatable)")
    parser.add_argument("--replications", type=int, default=3)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--report", action="store_true", help="only rebuild RESULTS.md")
    parser.add_argument("--method", choices=("nuts", "laplace"), default="laplace")
    args = parser.parse_args()
    METHOD["name"] = args.method
    if args.study:
        scenarios = args.scenario or list(SCENARIOS[args.study])
        unknown = set(scenarios) - set(SCENARIOS[args.study])
        if unknown:
            parser.error(
                f"unknown scenario(s) {sorted(unknown)}; {args.study} has {SCENARIOS[args.study]}"
            )
        run_study(args.study, scenarios, args.replications, args.draws)
    write_report()


if __name__ == "__main__":
    main()
