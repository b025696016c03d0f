"""Space–time fits ([data] time): periods, trends, gap trends, pooled periods and inequality
measures, checked against published results (surveil, Texas MSAs) and against simulated truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, grid_areas

import sae
from sae.errors import SaeInputError
from sae.inequality import ALL_AREAS
from sae.spec_file import spec_from_dict

DATA = {"area_id": "area", "group": "group", "count": "cases", "population": "population",
        "time": "year"}  # fmt: skip
YEARS = range(2010, 2016)


def toy_cells(seed: int = 3) -> pd.DataFrame:
    """Simulated truth: group A's rate rises 5% a year, group B's (twice A's in 2010) falls 3% a
    year, so B's ratio to A narrows from 2 to 2·e^(−0.08·5) ≈ 1.34. Year 2013 has no rows at all."""
    rng = np.random.default_rng(seed)
    rows = []
    for area in grid_areas()["area"]:
        for group, log_ratio, population in (("A", 0.0, 50_000), ("B", np.log(2.0), 20_000)):
            for t, year in enumerate(YEARS):
                rate = np.exp(
                    np.log(1e-3) + log_ratio + 0.05 * t - (0.08 * t if group == "B" else 0)
                )
                rows.append({"area": area, "group": group, "year": year, "population": population,
                             "cases": rng.poisson(rate * population)})  # fmt: skip
    cells = pd.DataFrame(rows)
    return cells[cells["year"] != 2013].reset_index(drop=True)


def toy_spec(**sections):
    return spec_from_dict({"data": DATA, **sections})


@pytest.fixture(scope="module")
def toy_fit():
    spec = toy_spec(output={"pool": [[2010, 2012], [2013, 2015]]})
    return sae.fit(spec, cells=toy_cells(), areas=grid_areas(), progress=False)


def test_every_period_is_estimated_and_a_year_without_data_is_flagged(toy_fit):
    estimates = toy_fit.estimates()
    assert toy_fit.periods == tuple(YEARS)
    assert len(estimates) == 21 * 2 * len(YEARS)
    gap_year = estimates[estimates["period"] == 2013]
    assert (~gap_year["has_data"]).all() and (gap_year["flag"] == "unreliable").all()
    assert gap_year["flag_reason"].str.contains("no data").all()
    # the year without data is interpolated between its neighbours, not left out
    a = estimates[(estimates["group"] == "A")].groupby("period")["mean"].median()
    assert a[2012] < a[2013] < a[2015]


def test_gaps_per_period_follow_the_simulated_narrowing(toy_fit):
    gaps = toy_fit.gaps()
    ratio = gaps.groupby("period")["ratio_median"].median()
    truth = 2.0 * np.exp(-0.08 * np.arange(len(YEARS)))
    assert np.allclose(ratio.to_numpy(), truth, rtol=0.1)
    overall = toy_fit.overall()
    assert set(overall["period"]) == set(YEARS) and len(overall) == 2 * len(YEARS)


def test_trends_and_gap_trends(toy_fit):
    trends = toy_fit.trends()
    assert (trends["first_period"] == 2010).all() and (trends["last_period"] == 2015).all()
    by_group = trends.groupby("group")
    assert by_group["prob_decline"].median()["A"] < 0.05  # A rose 28%
    assert by_group["ratio_median"].median()["A"] == pytest.approx(np.exp(0.25), rel=0.1)
    gap_trends = toy_fit.gap_trends()
    assert len(gap_trends) == 21 and (gap_trends["group"] == "B").all()
    assert gap_trends["prob_narrowing"].min() > 0.95
    assert gap_trends["ratio_change_median"].median() == pytest.approx(np.exp(-0.4), rel=0.1)
    clear = gap_trends["flag"] == "clear"
    assert (gap_trends.loc[clear, "ratio_change_upper"] < 1).all()
    assert gap_trends["flag_reason"].str.contains("P(narrowing)", regex=False).all()
    with pytest.raises(SaeInputError, match="two periods of the fit"):
        toy_fit.trends(2015, 2010)


def test_pooled_periods_weight_years_by_population(toy_fit):
    pooled = toy_fit.pooled()
    assert set(pooled["period"]) == {"2010-2012", "2013-2015"}
    yearly = toy_fit.estimates()
    early = yearly[yearly["period"].isin([2010, 2011, 2012])]
    expected = early.groupby(["area", "group"]).apply(
        lambda d: np.average(d["mean"], weights=d["population"]), include_groups=False
    )
    first = pooled[pooled["period"] == "2010-2012"].set_index(["area", "group"])["mean"]
    assert np.allclose(first.reindex(expected.index), expected, rtol=1e-9)
    # the later pool has two years of data (2013 has none): its observed counts say so
    late = pooled[pooled["period"] == "2013-2015"].set_index(["area", "group"])["population"]
    one_year = yearly[yearly["period"] == 2014].set_index(["area", "group"])["population"]
    assert np.allclose(late, 2 * one_year.reindex(late.index))
    # three years of data carry more information than one: fewer numbers are model-driven
    assert first.size and (pooled["data_share"].median() > yearly["data_share"].median())


def test_inequality_measures_add_up(toy_fit):
    measures = toy_fit.inequality()
    whole = measures[measures["area"] == ALL_AREAS]
    per_area = measures[measures["area"] != ALL_AREAS]
    assert len(whole) == len(YEARS)
    total = per_area.groupby("period")["excess"].sum()
    assert np.allclose(whole.set_index("period")["excess"], total)
    observed = whole[whole["period"] != 2013]
    assert ((observed["par"] > 0) & (observed["par"] < 1)).all()
    cumulative = toy_fit.cumulative_excess()
    row = cumulative[cumulative["area"] == ALL_AREAS].iloc[0]
    assert row["cumulative_excess"] == pytest.approx(whole["excess"].sum())
    assert (
        row["cumulative_excess_lower"] < row["cumulative_excess"] < row["cumulative_excess_upper"]
    )
    theil = toy_fit.theil()
    assert (theil["theil"] >= 0).all()
    assert len(theil) == 22 * len(YEARS)


def test_texas_msas_match_surveil():
    """Published: surveil's measuring-inequality vignette (`stan_rw`, counts summed over the four
    MSAs): cumulative excess 3,205 [2979, 3433], PAR 0.27 [0.25, 0.28]; yearly excess 94 (1999),
    209 (2010), 200 (2017). Priors differ, so within 3% and 10 cases."""
    raw = pd.read_csv(ROOT / "benchmarks" / "texas_msa_crc" / "msa_crc_50_79.csv")
    cells = raw.groupby(["race", "year"], as_index=False)[["count", "population"]].sum()
    spec = spec_from_dict({
        "data": {"area_id": "place", "group": "race", "time": "year", "count": "count",
                 "population": "population"},
        "model": {"spatial": "none", "group_effects": "none", "trend": "none",
                  "group_trend": "rw1", "interaction": "none"},
        "output": {"reference_group": "White"},
    })  # fmt: skip
    fit = sae.fit(spec, cells=cells.assign(place="four MSAs"), progress=False)
    cumulative = fit.cumulative_excess()
    black = (cumulative["area"] == ALL_AREAS) & (cumulative["group"] == "Black or African American")
    cumulative = cumulative[black].iloc[0]
    assert cumulative["cumulative_excess"] == pytest.approx(3205, rel=0.03)
    assert cumulative["par"] == pytest.approx(0.27, abs=0.01)
    yearly = fit.inequality()
    yearly = yearly[(yearly["area"] == ALL_AREAS) & (yearly["group"] != "Hispanic")]
    yearly = yearly.set_index("period")
    assert yearly.loc[[1999, 2010, 2017], "excess"].to_numpy() == pytest.approx(
        [94, 209, 200], abs=10
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"data": {"time": None}, "model": {"trend": "rw2"}}, "needs \\[data\\] time"),
        (
            {"data": {"group": None}, "model": {"group_trend": "rw1", "group_effects": "none"}},
            "group_trend = 'rw1' gives each group its own trend",
        ),
        ({"output": {"pool": [[2010, 2030]]}}, "must name two periods"),
        ({"output": {"pool": [["2010", 2012]]}}, "must name two periods"),
    ],
)
def test_time_settings_are_checked_before_sampling(changes, message):
    raw = {"data": DATA}
    for section, values in changes.items():
        raw[section] = {**raw.get(section, {}), **values}
    raw["data"] = {k: v for k, v in raw["data"].items() if v is not None}
    with pytest.raises(SaeInputError, match=message):
        spec = spec_from_dict(raw)
        sae.fit(spec, cells=toy_cells(), areas=grid_areas(), progress=False)


def test_bad_periods_in_the_data_name_the_rows():
    cells = toy_cells().astype({"year": object})
    cells.loc[4, "year"] = "2011.5"
    with pytest.raises(SaeInputError, match="not whole numbers at row 4"):
        sae.fit(toy_spec(), cells=cells, areas=grid_areas(), progress=False)
    labelled = toy_cells().assign(year=lambda d: "P" + d["year"].astype(str))
    with pytest.raises(SaeInputError, match="does not list"):
        sae.fit(toy_spec(data={**DATA, "periods": ["P2010", "P2011"]}), cells=labelled,
                areas=grid_areas(), progress=False)  # fmt: skip
    few = toy_cells().query("year <= 2011")
    with pytest.raises(SaeInputError, match="at least 3 periods"):
        sae.fit(toy_spec(model={"trend": "rw2"}), cells=few, areas=grid_areas(), progress=False)


def test_text_periods_keep_their_order():
    labels = {2010: "early", 2011: "middle", 2012: "late"}
    cells = toy_cells().query("year <= 2012").assign(year=lambda d: d["year"].map(labels))
    spec = toy_spec(data={**DATA, "periods": ["early", "middle", "late"]})
    fit = sae.fit(spec, cells=cells, areas=grid_areas(), progress=False)
    assert fit.periods == ("early", "middle", "late")
    assert list(fit.trends()["last_period"].unique()) == ["late"]


def test_a_saved_space_time_fit_loads_with_its_periods_and_draws_its_charts(tmp_path, toy_fit):
    folder = toy_fit.save(tmp_path / "fit", maps=True, report=True)
    for name in (
        "trends.csv",
        "gap_trends.csv",
        "inequality.csv",
        "cumulative_excess.csv",
        "theil.csv",
        "pooled.csv",
        "maps/estimates_by_period.png",
        "maps/trends/a00.png",
    ):
        assert (folder / name).is_file(), name
    loaded = sae.load(folder)
    assert loaded.periods == toy_fit.periods
    pd.testing.assert_frame_equal(loaded.gap_trends(), toy_fit.gap_trends())
    report = (folder / "report.html").read_text(encoding="utf-8")
    assert "Over time" in report and "Cumulative excess" in report
    html = (folder / "maps" / "map.html").read_text(encoding="utf-8")
    assert "B 2015" in html and "A 2010" in html  # one tab per group and period


@pytest.mark.parametrize(("periods", "order"), [(5, 1), (19, 1), (10, 2), (30, 2)])
def test_scaled_random_walks_have_unit_generalised_variance(periods, order):
    """Sørbye & Rue (2014): after scaling, the geometric mean of the marginal variances is 1
    whatever the length; draws satisfy the constraints (computed here by simulation)."""
    from sae import random_walk
    from sae.prior_predictive import draw_walk

    walks = draw_walk(periods, order, np.random.default_rng(periods), (40_000,))
    assert np.exp(np.log(walks.var(axis=0)).mean()) == pytest.approx(1.0, abs=0.03)
    constraints = walks @ random_walk.constraint_rows(periods, order).T
    assert np.abs(constraints).max() < 1e-9
    # the unscaled walk's variance grows with its length; the factor takes that out
    assert random_walk.scaling_factor(2 * periods, order) > random_walk.scaling_factor(
        periods, order
    )


@pytest.mark.slow
def test_events_of_unknown_race_are_shared_within_area_and_year():
    """10% of events lack their group (missing at random), counted per area × year: the fit
    recovers the simulated rates that the known counts alone understate by 10%."""
    cells = toy_cells().query("year <= 2012")
    known = np.random.default_rng(0).binomial(cells["cases"], 0.9)
    unknown = cells.assign(u=cells["cases"] - known).groupby(["area", "year"])["u"].transform("sum")
    spec = spec_from_dict({"data": {**DATA, "unknown_group_count": "unknown"},
                           "sampler": {"method": "nuts", "draws": 300, "tune": 300, "chains": 2}})  # fmt: skip
    fit = sae.fit(spec, cells=cells.assign(cases=known, unknown=unknown), areas=grid_areas(),
                  progress=False)  # fmt: skip
    estimates = fit.estimates()
    a = estimates[estimates["group"] == "A"].groupby("period")[["mean", "crude"]].median()
    truth = 100 * np.exp(0.05 * np.arange(3))  # group A per 100,000 (toy_cells)
    assert a["mean"].to_numpy() == pytest.approx(truth, rel=0.06)
    assert (a["crude"].to_numpy() < 0.95 * truth).all()
    assert (estimates["unknown_allocated"] > 0).all()


def test_every_number_of_the_time_tables_has_its_interval(toy_fit):
    """Each point value in trends, gap trends and inequality has lower and upper bounds."""
    for table in (toy_fit.trends(), toy_fit.gap_trends(), toy_fit.inequality()):
        points = [c for c in table.columns if c.endswith(("_mean", "_median", "_ratio", "_diff"))
                  or c in ("rate", "reference_rate", "excess", "par")]  # fmt: skip
        for column in points:
            stem = column.removesuffix("_mean").removesuffix("_median")
            assert {f"{stem}_lower", f"{stem}_upper"} <= set(table.columns), column
            inside = table[f"{stem}_lower"] <= table[column] + 1e-12
            assert (inside | table[column].isna()).all(), column
