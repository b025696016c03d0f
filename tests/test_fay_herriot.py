"""Fay–Herriot models: input checks, the generalised variance function, and the milk data."""

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, benchmark_script

import sae
from sae.eblup import fay_herriot_eblup
from sae.errors import SaeInputError
from sae.inputs import load_inputs
from sae.spec_file import spec_from_dict

MILK = ROOT / "benchmarks" / "milk_fay_herriot"


def survey(**changes):
    """Made-up direct estimates of a prevalence in 6 areas (no map)."""
    table = pd.DataFrame({"area": list("abcdef"), "p": [0.1, 0.2, 0.15, 0.3, 0.25, 0.12],
                          "se": [0.03, 0.05, 0.04, 0.06, 0.05, 0.02], "n": [100, 60, 80, 50, 70, 300]})  # fmt: skip
    for column, values in changes.items():
        table[column] = values
    return table


def spec(tmp_path, **data):
    """A plain Fay–Herriot spec: no polygons, no neighbours."""
    raw = {"data": {"area_id": "area", "estimate": "p", "se": "se", **data},
           "model": {"family": "gaussian", "spatial": "none"}}  # fmt: skip
    return spec_from_dict(raw)


def test_gaussian_spec_needs_estimate_and_one_spread_column():
    with pytest.raises(SaeInputError, match="exactly one of variance = or se ="):
        spec_from_dict({"data": {"estimate": "p", "se": "se", "variance": "v"},
                        "model": {"family": "gaussian", "group_effects": "none"}})  # fmt: skip
    with pytest.raises(SaeInputError, match="arcsine.*needs \\[data\\] sample_size"):
        spec_from_dict({"data": {"estimate": "p", "se": "se"},
                        "model": {"family": "gaussian", "group_effects": "none", "transform": "arcsine"}})  # fmt: skip


def test_zero_variance_without_sample_size_lists_the_cells(tmp_path):
    table = survey(se=[0.03, 0.0, 0.04, np.nan, 0.05, 0.02])
    with pytest.raises(SaeInputError, match="zero or missing at row 1, row 3.*sample_size"):
        load_inputs(spec(tmp_path), cells=table)


def test_generalised_variance_function_fills_zero_variances_and_says_so(tmp_path):
    table = survey(se=[0.03, 0.0, 0.04, 0.06, 0.05, 0.02])
    cells = load_inputs(spec(tmp_path, sample_size="n"), cells=table).cells.frame
    assert cells["variance_source"].tolist() == [
        "direct",
        "gvf",
        "direct",
        "direct",
        "direct",
        "direct",
    ]
    # computed here: log ψ = a + b log n fitted on the five areas with a variance, at n = 60
    usable = table.drop(index=1)
    b, a = np.polyfit(np.log(usable["n"]), np.log(usable["se"] ** 2), 1)
    assert cells.loc[1, "variance"] == pytest.approx(np.exp(a + b * np.log(60)))


def test_logit_of_a_zero_prevalence_is_an_error_with_options(tmp_path):
    table = survey(p=[0.0, 0.2, 0.15, 0.3, 0.25, 0.12])
    raw = spec(tmp_path).replace(model={"transform": "logit"})
    with pytest.raises(SaeInputError, match="strictly between 0 and 1.*row 0.*arcsine"):
        load_inputs(raw, cells=table)


def test_cells_without_an_estimate_are_kept_as_no_data(tmp_path):
    table = survey(p=[0.1, np.nan, 0.15, 0.3, 0.25, 0.12])
    cells = load_inputs(spec(tmp_path), cells=table).cells.frame
    assert len(cells) == 6 and cells["estimate"].isna().sum() == 1


@pytest.mark.slow
def test_bayesian_fay_herriot_agrees_with_the_reml_eblup_on_milk():
    # comparison documented in benchmarks/milk_fay_herriot/README.md (measured here)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = sae.fit(ROOT / "models" / "milk_fay_herriot.toml", progress=False)
    estimates = fit.estimates()
    assert list(estimates.columns[:4]) == ["area", "group", "direct", "direct_se"]
    milk = pd.read_csv(MILK / "milk.csv")
    X = np.column_stack(
        [np.ones(43)] + [(milk["MajorArea"] == k).to_numpy(float) for k in (2, 3, 4)]
    )
    eblup = fay_herriot_eblup(milk["yi"], milk["var_direct"], X, "REML").table
    # the Bayesian model has weakly informative priors (N(0, 1) on the standardised contrasts),
    # the EBLUP flat ones: means agree within a fifth of a posterior sd
    assert (np.abs(estimates["mean"] - eblup["eblup"]) / estimates["sd"]).max() < 0.2
    ratio = estimates["sd"] / np.sqrt(eblup["mse"])
    assert ratio.mean() == pytest.approx(1.0, abs=0.1)
    assert (estimates["shrinkage"].between(0, 1)).all()
    assert fit.diagnostics.method == "laplace"  # the default
    assert not fit.diagnostics.problems(fit.spec.flags)


@pytest.mark.slow
def test_spatial_fh_beats_plain_fh_on_a_spatial_truth():
    # simulated truth (benchmarks/fay_herriot_simulation/simulate.py, seed 0); the full study is
    # benchmarks/fay_herriot_simulation/run.py
    plain, spatial = benchmark_script("fay_herriot_simulation").replicate(seed=0, draws=400)
    assert spatial["rmse_model"] < plain["rmse_model"] < plain["rmse_direct"]
    assert spatial["coverage"] >= 0.85 and plain["coverage"] >= 0.85


@pytest.mark.slow
def test_race_by_place_fay_herriot_with_logit_transform_and_gaps():
    # two groups from the simulated survey (seed 2026); group "B" has twice the odds of "A"
    areas_file = ROOT / "shapefiles" / "pennsylvania_counties.gpkg"
    survey = pd.read_csv(ROOT / "benchmarks" / "fay_herriot_simulation" / "pennsylvania_survey.csv",
                         dtype={"fips": str})  # fmt: skip
    odds = survey["truth"] / (1 - survey["truth"]) * 2
    b = survey.assign(truth=odds / (1 + odds))
    rng = np.random.default_rng(11)
    b["prevalence"] = rng.binomial(b["n"], b["truth"]) / b["n"]
    b["variance"] = b["prevalence"] * (1 - b["prevalence"]) / b["n"]
    cells = pd.concat([survey.assign(group="A"), b.assign(group="B")], ignore_index=True)
    cells = cells[(cells["prevalence"] > 0) & (cells["prevalence"] < 1)]
    spec = spec_from_dict({
        "data": {"areas": str(areas_file), "area_id": "fips", "group": "group", "estimate": "prevalence",
                 "variance": "variance", "sample_size": "n"},
        "model": {"family": "gaussian", "transform": "logit", "group_effects": "iid"},
        "sampler": {"chains": 2, "draws": 400, "tune": 400, "seed": 2},
    })  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = sae.fit(spec, cells=cells, progress=False)
    estimates = fit.estimates().merge(cells[["fips", "group", "truth", "prevalence"]],
                                      left_on=["area", "group"], right_on=["fips", "group"])  # fmt: skip
    assert estimates["mean"].between(0, 1).all()  # back-transformed to the prevalence scale
    assert estimates["direct"].to_numpy() == pytest.approx(estimates["prevalence"].to_numpy())
    covered = (estimates["lower"] <= estimates["truth"]) & (
        estimates["truth"] <= estimates["upper"]
    )
    assert covered.mean() >= 0.85
    gaps = fit.gaps("A")
    assert (gaps["ratio_median"] > 1).mean() > 0.9  # B's prevalence is higher everywhere


def test_arcsine_variance_keeps_the_design_effect():
    # issue #10: with a design effect of 2 the arcsine variance must be 1/(4 n/2), not 1/(4n);
    # a prevalence of 0 takes the median design effect of the other cells
    from sae.transforms import forward

    p, n = np.array([0.2, 0.5, 0.0]), np.array([100.0, 400.0, 100.0])
    variance = 2.0 * p * (1 - p) / n
    _, psi = forward("arcsine", p, variance, n)
    assert psi == pytest.approx(1.0 / (4.0 * n / 2.0))


def test_fay_herriot_priors_do_not_depend_on_the_units_of_the_estimates():
    # The audit's case (#10): rates per 100,000, true sigma 50, sampling se 30, 50 areas. With
    # priors acting in the data's units the posterior sigma was 0.15 and every area got the
    # synthetic estimate (RMSE 51.6 against the direct 31.8). Simulated here with a fixed seed;
    # the ideal weight on the direct estimate is 50^2 / (50^2 + 30^2) = 0.74.
    rng = np.random.default_rng(3)
    truth = 400 + rng.normal(0, 50, 50)
    table = pd.DataFrame({"area": [f"a{i:02d}" for i in range(50)],
                          "rate": truth + rng.normal(0, 30, 50), "se": 30.0})  # fmt: skip
    raw = {"data": {"area_id": "area", "estimate": "rate", "se": "se"},
           "model": {"family": "gaussian", "spatial": "none"}}  # fmt: skip
    per_100k = sae.fit(spec_from_dict(raw), cells=table, progress=False).estimates()
    fraction = table.assign(rate=table["rate"] / 1e5, se=table["se"] / 1e5)
    per_person = sae.fit(spec_from_dict(raw), cells=fraction, progress=False).estimates()
    # the same fit in any units (Laplace is deterministic: equal to rounding)
    assert per_person["mean"].to_numpy() * 1e5 == pytest.approx(per_100k["mean"], rel=1e-6)
    weight = per_100k["shrinkage"].median()  # posterior var / sampling var: gamma in FH terms
    assert 0.5 < weight < 0.95
    model_rmse = np.sqrt(np.mean((per_100k["mean"] - truth) ** 2))
    direct_rmse = np.sqrt(np.mean((table["rate"] - truth) ** 2))
    assert model_rmse < direct_rmse
