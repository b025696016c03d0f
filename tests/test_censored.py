"""Censored (suppressed) counts: the likelihood P(l ≤ y ≤ u), its derivatives, reading markers and
ranges, the WONDER export, and what the tables and flags say about such cells (#12)."""

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, grid_areas, simulated_cells
from scipy import stats

import sae
from sae.errors import SaeInputError
from sae.family import Binomial, Poisson, RowData
from sae.inputs import load_inputs
from sae.spec_file import spec_from_dict

WONDER = ROOT / "benchmarks" / "texas_msa_crc" / "wonder_export_msa_race_ethnicity.txt"


def rows(trials=False):
    """Two exact rows and two censored ones ([1, 15] and [0, 4])."""
    lower, upper = np.array([3, 1, 0, 12]), np.array([3, 15, 4, 12])
    n = np.array([40, 60, 30, 50]) if trials else np.zeros(0)
    offset = np.zeros(4) if trials else np.log([1000.0, 2000.0, 500.0, 4000.0])
    return RowData(lower, offset, n, np.zeros(0), upper)


@pytest.mark.parametrize(("family", "trials"), [(Poisson(), False), (Binomial(), True)])
def test_censored_rows_have_the_interval_probability_and_its_exact_derivatives(family, trials):
    data, eta = rows(trials), np.array([-5.0, -6.0, -4.0, -5.5]) + (3.0 if trials else 0.0)
    density = family.log_density(data, eta)
    # computed here: log Σ_{k=l}^{u} p(k) by summing the pmf directly
    mean = np.exp(eta + data.offset) if not trials else None
    for r in (1, 2):
        ks = np.arange(data.response[r], data.upper[r] + 1)
        pmf = (stats.poisson.pmf(ks, mean[r]) if not trials
               else stats.binom.pmf(ks, data.trials[r], 1 / (1 + np.exp(-eta[r]))))  # fmt: skip
        assert density[r] == pytest.approx(np.log(pmf.sum()), rel=1e-10)
    kernel, gradient, weight = family.newton_terms(data, eta)
    step = 1e-5
    for r in (1, 2):
        up, down = eta.copy(), eta.copy()
        up[r] += step
        down[r] -= step
        f_up, f_down = family.log_density(data, up)[r], family.log_density(data, down)[r]
        assert gradient[r] == pytest.approx((f_up - f_down) / (2 * step), rel=1e-6)
        second = (f_up - 2 * density[r] + f_down) / step**2
        assert weight[r] == pytest.approx(-second, rel=1e-4)
        assert kernel[r] == pytest.approx(density[r])


def test_a_censored_count_keeps_less_information_than_an_exact_one():
    share = Poisson().information_share(
        np.array([5, 1, 0]), np.array([5, 15, 4]), np.array([1e-3] * 3), np.array([5e3] * 3), 1.0
    )
    assert share[0] == 1.0 and 0 < share[1] < 1 and 0 < share[2] < 1
    # μ = 5: 1–15 holds almost every count, so it says little about μ (computed: 0.03); knowing
    # y ≤ 4 says more (0.79)
    assert share[1] < 0.1 < 0.5 < share[2]


BASE = {"area_id": "area", "group": "group", "count": "cases", "population": "population"}
MARKER = {"marker": "Suppressed", "range": [1, 15]}


def spec(**data):
    return spec_from_dict({"data": {**BASE, **data}})


def small_cells():
    cells = simulated_cells(grid_areas(), seed=2)[0]
    return cells.assign(cases=cells["cases"].astype(object))


def test_a_marker_becomes_the_range_and_bounds_columns_fill_empty_counts(areas):
    cells = small_cells()
    cells.loc[[0, 5], "cases"] = "Suppressed"
    frame = load_inputs(spec(suppressed=MARKER), cells=cells, areas=areas).cells.frame
    assert frame.loc[[0, 5], ["count", "count_upper"]].to_numpy().tolist() == [[1, 15], [1, 15]]
    exact = frame.drop(index=[0, 5])
    assert (exact["count"] == exact["count_upper"]).all()
    bounded = small_cells().assign(lo=0, hi=9)
    bounded.loc[3, "cases"] = np.nan
    frame = load_inputs(spec(count_lower="lo", count_upper="hi"), cells=bounded,
                        areas=areas).cells.frame  # fmt: skip
    assert frame.loc[3, ["count", "count_upper"]].tolist() == [0, 9]


@pytest.mark.parametrize(
    ("change", "data", "message"),
    [(lambda c: c, {"suppressed": MARKER}, "never holds the suppression marker 'Suppressed'"),
     (lambda c: c.assign(cases=c["cases"].where(c.index != 4, "<10").where(c.index != 5, "Suppressed")),
      {"suppressed": MARKER}, r"row 4 \('<10'\).*The suppression marker is 'Suppressed'"),
     (lambda c: c.assign(cases=c["cases"].where(c.index != 4, "<10")), {},
      r"row 4 \('<10'\).*suppressed = \{ marker"),
     (lambda c: c.assign(lo=5, hi=2, cases=c["cases"].where(c.index != 1, np.nan)),
      {"count_lower": "lo", "count_upper": "hi"}, "'lo' is larger than 'hi' at row 1")],
)  # fmt: skip
def test_censoring_that_cannot_be_read_is_refused_with_the_rows(areas, change, data, message):
    with pytest.raises(SaeInputError, match=message):
        load_inputs(spec(**data), cells=change(small_cells()), areas=areas)


@pytest.mark.parametrize(
    ("data", "message"),
    [({"suppressed": {"marker": "S", "range": [15, 1]}}, "must have 0 ≤ lower < upper"),
     ({"suppressed": {"marker": "S"}}, "must be a table with marker and range"),
     ({"count_lower": "lo"}, "give both, or neither")],
)  # fmt: skip
def test_censoring_settings_are_checked(data, message):
    with pytest.raises(SaeInputError, match=message):
        spec(**data)


def wonder_spec(**sampler):
    return spec_from_dict({
        "data": {"cells": str(WONDER), "cells_format": "wonder", "area_id": "MSA Code",
                 "area_name": "MSA", "group": "Race", "strata": ["Ethnicity", "Year"],
                 "count": "Count", "population": "Population",
                 "suppressed": {"marker": "Suppressed", "range": [1, 15]}},
        "model": {"spatial": "none"}, "sampler": sampler,
    })  # fmt: skip


def test_the_wonder_export_is_read_as_downloaded():
    frame = load_inputs(wonder_spec()).cells.frame
    # WONDER's file: 4 MSAs × 2 races × 2 ethnicities × 19 years = 304 data lines (lines 2–305)
    # before the first "---", 52 of them "Suppressed" (counted with awk on the Count field;
    # the data README says 54, counting the two caveat lines that also contain the word)
    assert len(frame) == 304
    assert (frame["count_upper"] > frame["count"]).sum() == 52
    assert frame["source_row"].iloc[-1] == "305"  # line numbers in the file


def test_wonder_total_lines_are_refused(tmp_path):
    lines = WONDER.read_text(encoding="utf-8").splitlines()
    lines.insert(3, '"Total"\t"Austin-Round Rock, TX"\t"12420"' + "\t" * 9)
    changed = tmp_path / "export.txt"
    changed.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(SaeInputError, match=r"total or note lines at line 4 \('Total'\)"):
        load_inputs(spec_from_dict({"data": {**wonder_spec().data.__dict__, "cells": str(changed),
                                             "suppressed": MARKER}, "model": {"spatial": "none"}}))  # fmt: skip


@pytest.fixture(scope="module")
def wonder_fit():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sae.fit(wonder_spec(), progress=False)


def test_censored_cells_get_estimates_and_say_so(wonder_fit):
    est = wonder_fit.estimates().set_index(["area", "group"])
    black = est.xs("Black or African American", level="group")
    # every MSA has suppressed Black Hispanic years: the total is unknown, its bounds are given
    assert black["observed"].isna().all() and black["crude"].isna().all()
    assert (black["observed_upper"] > black["observed_lower"]).all()
    assert black["flag_reason"].str.contains("counts suppressed").all()
    assert black[["mean", "lower", "upper"]].notna().all().all()
    white = est.xs("White", level="group")
    assert white["observed"].notna().all() and (white["observed"] == white["observed_upper"]).all()


def test_posterior_predictive_checks_leave_censored_rows_out(wonder_fit):
    table = wonder_fit.check()["posterior_predictive"]
    assert "all exact rows" in set(table["rows"])
    censored = wonder_fit.design.rows.censored
    total = table.set_index(["statistic", "rows"]).loc[("total", "all exact rows"), "observed"]
    assert total == wonder_fit.design.rows.response[~censored].sum()


def test_the_suppressed_spec_runs_from_the_cli_with_maps_and_report(tmp_path):
    from sae.cli import main

    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        main(["fit", str(ROOT / "models" / "pennsylvania_lung_suppressed.toml"), "--out", str(out),
              "--maps", "--report", "--quiet"])  # fmt: skip
    est = pd.read_csv(out / "estimates.csv", dtype={"area": str})
    censored = est["observed"].isna()
    # 405 of the 1,072 strata have 1–15 cases (benchmarks/pennsylvania_lung/README.md)
    assert censored.sum() > 60 and est.loc[censored, "flag_reason"].str.contains("suppressed").all()
    assert est[["mean", "lower", "upper", "flag"]].notna().all().all()
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "405 of the 1071 counts were suppressed" in report  # one stratum has no population
    assert "counts suppressed" in (out / "maps" / "map.html").read_text(encoding="utf-8")


def test_the_estimates_map_marks_cells_with_suppressed_counts(areas):
    from sae.maps import plot_estimates

    cells = small_cells()
    cells.loc[[0, 5, 6], "cases"] = "Suppressed"  # a00/A, a02/B, a03/A
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = sae.fit(spec(suppressed=MARKER), cells=cells, areas=areas, progress=False)
    fig = plot_estimates(fit.estimates(), areas, "area")
    marked = [sum(len(c.get_offsets()) for c in ax.collections if c.get_offsets().shape[0] < 5
                  and type(c).__name__ == "PathCollection") for ax in fig.axes[:2]]  # fmt: skip
    assert marked == [2, 1]  # group A: two cells, group B: one
    labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert "counts suppressed" in labels
