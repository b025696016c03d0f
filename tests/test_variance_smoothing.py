"""Variance smoothing for Fay–Herriot inputs (`[data] variance_smoothing`, #10 item 11)."""

import warnings

import numpy as np
import pandas as pd
import pytest

import sae
from sae.errors import SaeInputError
from sae.inputs import load_inputs
from sae.spec_file import spec_from_dict


def spec(**data):
    raw = {"data": {"area_id": "area", "estimate": "p", "variance": "v", "sample_size": "n", **data},
           "model": {"family": "gaussian", "spatial": "none"}}  # fmt: skip
    return spec_from_dict(raw)


def survey_with_groups() -> pd.DataFrame:
    return pd.DataFrame({
        "area": list("aabbccdd"), "group": list("xyxyxyxy"),
        "p": [0.1, 0.3, 0.0, 0.25, 0.2, 0.35, 0.15, 0.2],
        "v": [0.0018, 0.0042, 0.0, 0.0047, 0.004, 0.0091, 0.00064, 0.0016],
        "n": [50, 50, 20, 40, 40, 25, 200, 100],
    })  # fmt: skip


def test_proportion_smoothing_is_the_gvf_with_the_groups_pooled_prevalence_and_duans_factor():
    table = survey_with_groups()
    cells = load_inputs(spec(group="group", variance_smoothing="proportion"), cells=table)
    cells = cells.cells.frame
    assert (cells["variance_source"] == "smoothed").all()
    # computed here, from the definition in sae.direct
    pooled = (table["n"] * table["p"]).groupby(table["group"]).transform("sum") / table[
        "n"].groupby(table["group"]).transform("sum")  # fmt: skip
    offset = np.log(pooled * (1 - pooled))
    usable = table["v"] > 0
    n, w = table["n"][usable], table["n"][usable] - 1
    # the proportion GVF ψ = deff p̄(1 − p̄)/n: log deff by least squares weighted by n − 1
    log_deff = np.average(np.log(table["v"][usable] * n) - offset[usable], weights=w)
    residual = np.log(table["v"][usable] * n) - offset[usable] - log_deff
    smearing = np.average(np.exp(residual), weights=w)
    expected = smearing * np.exp(log_deff + offset) / table["n"]
    assert cells["variance"].to_numpy() == pytest.approx(expected.to_numpy(), rel=1e-10)
    # the zero-variance cell (p̂ = 0) gets a smoothed variance like every other
    assert cells["variance"].iloc[2] > 0


def test_plain_gvf_smoothing_fits_its_slope_with_weights_n_minus_1():
    table = survey_with_groups().drop(columns="group").assign(area=list("abcdefgh"))
    cells = load_inputs(spec(variance_smoothing="gvf"), cells=table).cells.frame
    usable = table["v"] > 0
    x, y, w = np.log(table["n"][usable]), np.log(table["v"][usable]), table["n"][usable] - 1
    b, a = np.polyfit(x, y, 1, w=np.sqrt(w))  # computed here: weighted least squares
    smearing = np.average(np.exp(y - a - b * x), weights=w)
    expected = smearing * np.exp(a + b * np.log(table["n"]))
    assert cells["variance"].to_numpy() == pytest.approx(expected.to_numpy(), rel=1e-10)


def test_plain_gvf_smoothing_ignores_the_estimates():
    table = survey_with_groups().drop(columns="group").assign(area=list("abcdefgh"))
    smoothed = load_inputs(spec(variance_smoothing="gvf"), cells=table)
    changed = table.assign(p=table["p"][::-1].to_numpy())
    again = load_inputs(spec(variance_smoothing="gvf"), cells=changed)
    assert smoothed.cells.frame["variance"].to_numpy() == pytest.approx(
        again.cells.frame["variance"].to_numpy()
    )


@pytest.mark.parametrize(
    ("data", "model", "message"),
    [({"variance_smoothing": "gvf", "sample_size": None}, {}, "needs \\[data\\] sample_size"),
     ({"variance_smoothing": "proportion"}, {"transform": "arcsine"}, "Use one of them"),
     ({"variance_smoothing": "gaussian"}, {}, "Use one of: none, gvf, proportion")],
)  # fmt: skip
def test_smoothing_settings_that_cannot_work_are_refused(data, model, message):
    raw = {"data": {"area_id": "area", "estimate": "p", "variance": "v", "sample_size": "n", **data},
           "model": {"family": "gaussian", "spatial": "none", **model}}  # fmt: skip
    with pytest.raises(SaeInputError, match=message):
        spec_from_dict(raw)


def test_smoothing_counts_is_refused():
    with pytest.raises(SaeInputError, match="family 'poisson' has counts"):
        spec_from_dict({"data": {"area_id": "area", "count": "y", "population": "pop",
                                 "variance_smoothing": "gvf"}})  # fmt: skip


def test_proportion_smoothing_needs_proportions():
    table = survey_with_groups().assign(p=lambda t: t["p"] * 100)
    with pytest.raises(SaeInputError, match=r"needs proportions between 0 and 1.*row 1"):
        load_inputs(spec(group="group", variance_smoothing="proportion"), cells=table)


def binomial_survey(seed: int, areas: int = 600):
    """Survey prevalences p̂ = Binomial(n, θ)/n with ψ̂ = p̂(1 − p̂)/n (simulated truth, seed)."""
    rng = np.random.default_rng(seed)
    n = rng.integers(5, 80, areas)
    theta = np.clip(0.15 + rng.normal(0, 0.03, areas), 0.01, 0.99)
    p = rng.binomial(n, theta) / n
    table = pd.DataFrame({"area": [f"a{i}" for i in range(areas)], "p": p, "v": p * (1 - p) / n,
                          "n": n})  # fmt: skip
    return table, theta


@pytest.mark.parametrize("seed", [0, 1])
def test_smoothing_removes_the_bias_of_variances_that_move_with_the_estimate(seed):
    table, theta = binomial_survey(seed)
    bias = {}
    for smoothing in ("none", "proportion"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = sae.fit(spec(variance_smoothing=smoothing), cells=table, progress=False)
        mean = fit.estimates().set_index("area").loc[table["area"], "mean"].to_numpy()
        bias[smoothing] = float(np.mean(mean - theta))
    # measured: -0.016 / -0.014 unsmoothed (low p̂ get small ψ̂ and the most weight), -0.001 / 0.001
    assert bias["none"] < -0.008
    assert abs(bias["proportion"]) < 0.006
