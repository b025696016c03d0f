"""Agreement of the Laplace method with long NUTS runs, dataset by dataset.

    .venv/bin/python benchmarks/laplace_vs_nuts/run.py              # references (if missing) + Laplace
    .venv/bin/python benchmarks/laplace_vs_nuts/run.py --reference  # recompute the NUTS references

For every cell rate and every gap, a Laplace posterior mean or interval end agrees when it is within
5% (relative) of the NUTS value or within 0.1 posterior sd, whichever is larger (for gap ratios the
sd is taken as the 95% interval's width / 3.92). Hyperparameter posteriors are compared by their
quantiles. The NUTS references are 4 chains × 5,000 draws (US counties: 4 × 2,500), seed 1, kept as
gzipped tables in `references/` so the Laplace side can be re-run alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import sae

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "benchmarks" / "speed"))
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
DATASETS = {
    "scotland": ("scotland_lip_bym2.toml", 5000),
    "nc_sids": ("nc_sids_bym2.toml", 5000),
    "pennsylvania": ("pennsylvania_lung_race.toml", 5000),
    "nyc": ("nyc_pedestrian_bym2.toml", 5000),
    "milk": ("milk_fay_herriot.toml", 5000),
    "pennsylvania_survey": ("pennsylvania_survey_spatial_fh.toml", 5000),
    "us_counties_5groups": (None, 2500),
}


def problem(name: str):
    spec_file, _ = DATASETS[name]
    if spec_file is not None:
        return sae.load_spec(ROOT / "models" / spec_file), None, None
    from run import us_counties_5groups  # benchmarks/speed/run.py

    return us_counties_5groups()


def fit(name: str, method: str):
    spec, cells, areas = problem(name)
    draws = DATASETS[name][1] if method == "nuts" else spec.sampler.draws
    spec = spec.replace(sampler={"method": method, "draws": draws, "seed": 1})
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = sae.fit(spec, cells=cells, areas=areas, progress=False)
    return result, time.perf_counter() - start


def tables(result) -> dict[str, pd.DataFrame]:
    out = {"estimates": result.estimates()}
    if len(result.design.groups) > 1:
        out["gaps"] = result.gaps()
    posterior = result.idata.posterior
    rows = []
    for name in ("area_sigma", "area_rho", "group_area_sigma", "group_area_rho"):
        if name in posterior:
            values = posterior[name]
            labels = values["group"].to_numpy() if "group" in values.dims else [None]
            for label in labels:
                draws = (
                    (values.sel(group=label) if label is not None else values).to_numpy().ravel()
                )
                rows.append({"parameter": name if label is None else f"{name}[{label}]",
                             **{f"q{q:g}": float(np.quantile(draws, q)) for q in QUANTILES}})  # fmt: skip
    out["hyperparameters"] = pd.DataFrame(rows)
    return out


def band_ratio(ours: pd.Series, reference: pd.Series, sd: pd.Series) -> pd.Series:
    """|difference| / max(5% of the reference, 0.1 sd): ≤ 1 agrees."""
    return (ours - reference).abs() / np.maximum(0.05 * reference.abs(), 0.1 * sd)


def agreement(ours: pd.DataFrame, reference: pd.DataFrame, columns, sd: pd.Series) -> dict:
    result = {}
    for column in columns:
        ratio = band_ratio(ours[column], reference[column], sd)
        result[column] = {"share": float((ratio <= 1).mean()), "worst": float(ratio.max())}
    return result


def outside_cells(est: pd.DataFrame) -> dict:
    """How the cells with a mean or interval end outside the band are flagged: as unreliable in
    the estimates, and by the approximation's own check (k̂ > 0.7)."""
    outside = np.zeros(len(est), bool)
    for column in ("mean", "lower", "upper"):
        outside |= (band_ratio(est[column], est[f"{column}_ref"], est["sd_ref"]) > 1).to_numpy()
    return {"cells": int(outside.sum()),
            "unreliable": int((est.loc[outside, "flag"] == "unreliable").sum()),
            # no per-area k̂ column when the whole field was corrected jointly (its k̂ < 0.7)
            "pareto_k_over": int((est.get("pareto_k", pd.Series(0.0, est.index))[outside]
                                  > 0.7).sum())}  # fmt: skip


def compare(name: str, laplace: dict, reference: dict) -> dict:
    keys = ["area", "group"]
    est = laplace["estimates"].merge(reference["estimates"], on=keys, suffixes=("", "_ref"))
    estimates = agreement(
        est[["mean", "lower", "upper"]],
        est[["mean_ref", "lower_ref", "upper_ref"]].set_axis(["mean", "lower", "upper"], axis=1),
        ("mean", "lower", "upper"), est["sd_ref"],
    )  # fmt: skip
    out = {"cells": len(est), "estimates": estimates, "outside": outside_cells(est)}
    if "gaps" in laplace:
        gaps = laplace["gaps"].merge(reference["gaps"], on=keys, suffixes=("", "_ref"))
        sd = (gaps["ratio_upper_ref"] - gaps["ratio_lower_ref"]) / 3.92
        columns = ("ratio_median", "ratio_lower", "ratio_upper")
        ours = gaps[list(columns)]
        theirs = gaps[[f"{c}_ref" for c in columns]].set_axis(list(columns), axis=1)
        out["gaps"] = agreement(ours, theirs, columns, sd)
        out["gap_count"] = len(gaps)
    return out


def reference_path(name: str, table: str) -> Path:
    return HERE / "references" / f"{name}_{table}.csv.gz"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reference", action="store_true", help="recompute the NUTS references")
    parser.add_argument("--only", nargs="*", help="datasets to run")
    args = parser.parse_args()
    (HERE / "references").mkdir(exist_ok=True)
    results = (
        json.loads((HERE / "results.json").read_text()) if (HERE / "results.json").exists() else {}
    )
    for name in args.only or DATASETS:
        if args.reference or not reference_path(name, "estimates").exists():
            nuts, seconds = fit(name, "nuts")
            for table, frame in tables(nuts).items():
                frame.to_csv(reference_path(name, table), index=False)
            results.setdefault(name, {})["nuts"] = {"seconds": seconds,
                                                    "diagnostics": nuts.diagnostics.summary_line()}  # fmt: skip
        reference = {t: pd.read_csv(reference_path(name, t), dtype={"area": str, "group": str})
                     for t in ("estimates", "gaps", "hyperparameters")
                     if reference_path(name, t).exists()}  # fmt: skip
        laplace, seconds = fit(name, "laplace")
        ours = tables(laplace)
        entry = results.setdefault(name, {})
        entry["laplace"] = {"seconds": seconds, "diagnostics": laplace.diagnostics.summary_line()}
        entry["agreement"] = compare(name, ours, reference)
        entry["hyperparameters"] = (
            ours["hyperparameters"]
            .merge(reference["hyperparameters"], on="parameter", suffixes=("_laplace", "_nuts"))
            .to_dict(orient="records")
        )
        print(name, json.dumps(entry["agreement"]), flush=True)
        (HERE / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (HERE / "RESULTS.md").write_text(markdown(results))


AGREEMENT_TARGET = 0.95  # share of numbers within the band for a dataset to read as agreeing


def reading(results: dict) -> list[str]:
    """Plain sentences: which datasets agree on every figure, and where the others fall short."""
    agree, short = [], []
    for name, entry in results.items():
        if "agreement" not in entry:
            continue
        figures = {**entry["agreement"]["estimates"], **entry["agreement"].get("gaps", {})}
        below = {k: v for k, v in figures.items() if v["share"] < AGREEMENT_TARGET}
        if not below:
            agree.append(name)
        else:
            short.append(f"- **{name}** falls short on " + ", ".join(
                f"{k} ({v['share']:.1%} within the band, worst {v['worst']:.1f}× the tolerance)"
                for k, v in below.items()) + ".")  # fmt: skip
    lines = [f"- At least {AGREEMENT_TARGET:.0%} of every figure (means, interval ends, gaps) agree on: "
             + ", ".join(agree) + "."] if agree else []  # fmt: skip
    lines += short
    for name, entry in results.items():
        outside = entry.get("agreement", {}).get("outside")
        if outside and outside["cells"]:
            lines.append(f"- {name}: cells with a number outside the band: {outside['cells']}; of "
                         f"those, flagged unreliable in the estimates: {outside['unreliable']}, by the "
                         f"approximation's check (k̂ > 0.7): {outside['pareto_k_over']}.")  # fmt: skip
    return lines


def markdown(results: dict) -> str:
    lines = ["# Laplace vs long NUTS runs", "",
             "Share of posterior means and 95% interval ends within max(5% relative, 0.1 sd) of the "
             "NUTS reference, and the worst ratio |difference| / tolerance (≤ 1 agrees). Generated by "
             "`benchmarks/laplace_vs_nuts/run.py`.", "",
             "| dataset | cells | mean | lower | upper | gaps | ratio | ratio lower | ratio upper "
             "| Laplace s | NUTS s |", "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, entry in results.items():
        if "agreement" not in entry:
            continue
        a = entry["agreement"]
        cell = lambda d: f"{d['share']:.1%} ({d['worst']:.2f})"  # noqa: E731
        gaps = a.get("gaps")
        gap_cells = ([cell(gaps[c]) for c in ("ratio_median", "ratio_lower", "ratio_upper")]
                     if gaps else ["–"] * 3)  # fmt: skip
        nuts = entry.get("nuts", {}).get("seconds")
        lines.append(
            f"| {name} | {a['cells']} | " + " | ".join(cell(a["estimates"][c]) for c in ("mean", "lower", "upper"))
            + f" | {a.get('gap_count', '–')} | " + " | ".join(gap_cells)
            + f" | {entry['laplace']['seconds']:.1f} | {'–' if nuts is None else f'{nuts:.0f}'} |"
        )  # fmt: skip
    lines += ["", "## Reading", "", *reading(results)]
    lines += ["", "## Hyperparameters: posterior quantiles (Laplace / NUTS)", ""]
    lines += ["| dataset | parameter | " + " | ".join(f"q{q:g}" for q in QUANTILES) + " |",
              "|---|---|" + "---|" * len(QUANTILES)]  # fmt: skip
    for name, entry in results.items():
        for row in entry.get("hyperparameters", []):
            lines.append(f"| {name} | {row['parameter']} | " + " | ".join(
                f"{row[f'q{q:g}_laplace']:.3f} / {row[f'q{q:g}_nuts']:.3f}" for q in QUANTILES) + " |")  # fmt: skip
    lines += ["", "## Diagnostics", ""]
    for name, entry in results.items():
        lines.append(f"- {name}: {entry['laplace']['diagnostics']}; NUTS reference: "
                     f"{entry.get('nuts', {}).get('diagnostics', 'see earlier run')}")  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
