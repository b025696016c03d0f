import numpy as np
import pandas as pd
import pytest
from test_inputs import spec

from sae.design import build_design
from sae.errors import SaeInputError
from sae.inputs import load_inputs


def design_for(cells, areas, **changes):
    s = spec(**changes)
    result = load_inputs(s, cells=cells, areas=areas)
    return build_design(result.cells, result.graph, result.areas, "area")


def with_strata(cells):
    rows = []
    for stratum, share in (("young", 0.7), ("old", 0.3)):
        part = cells.assign(age=stratum, population=(cells["population"] * share).round())
        rows.append(part)
    out = pd.concat(rows, ignore_index=True)
    out["income"] = out["area"].map(lambda a: float(len(a) + ord(a[-1])))
    return out


CELL = ("area", "group")


def test_grid_covers_every_area_and_group_even_without_data(cells, areas):
    design = design_for(cells[cells["area"] != "a12"], areas)
    units, _ = design.grid.aggregation(CELL)
    assert len(units) == len(areas) * 2
    assert ("a12", "B") in set(units.itertuples(index=False, name=None))


def test_stratum_weights_sum_to_one_per_cell_and_follow_exposure(cells, areas):
    data = with_strata(cells)
    design = design_for(data.drop(index=0), areas, data={"strata": ["age"]})
    units, matrix = design.grid.aggregation(CELL)
    assert matrix.sum(axis=0) == pytest.approx(np.ones(len(units)))
    # a00/A lost its 'young' row, so its only remaining stratum carries all the weight
    column = matrix[:, [0]].toarray().ravel()
    assert sorted(column[column > 0]) == [1.0]


def test_cell_without_exposure_uses_its_group_mix(cells, areas):
    data = with_strata(cells)
    design = design_for(data[data["area"] != "a12"], areas, data={"strata": ["age"]})
    units, matrix = design.grid.aggregation(CELL)
    rows = design.grid.rows
    column = list(units.itertuples(index=False, name=None)).index(("a12", "A"))
    weights = pd.Series(matrix[:, [column]].toarray().ravel(), index=rows["age"])
    # group A's map-wide mix: 70% young, 30% old (how with_strata splits every population)
    assert weights[weights > 0].sort_index().to_numpy() == pytest.approx([0.3, 0.7], abs=1e-3)


def test_age_adjusted_weights_are_the_standard_weights(cells, areas):
    data = with_strata(cells)
    design = design_for(data, areas, data={"strata": ["age"]})
    standard = pd.Series({"young": 0.6, "old": 0.4})
    units, matrix = design.grid.aggregation(CELL, "age", standard)
    column = matrix[:, [0]].toarray().ravel()
    ages = design.grid.rows["age"].to_numpy()[column > 0]
    assert dict(zip(ages, column[column > 0], strict=True)) == pytest.approx(
        {"young": 0.6, "old": 0.4}
    )


def test_all_groups_rate_weights_groups_by_population(cells, areas):
    design = design_for(cells, areas)
    units, matrix = design.grid.aggregation(("area",))
    column = matrix[:, [0]].toarray().ravel()
    # simulated populations: A 50,000 and B 20,000 in every area
    assert sorted(column[column > 0]) == pytest.approx([20 / 70, 50 / 70])


def test_area_level_covariate_is_filled_from_the_area_for_missing_groups(cells, areas):
    data = with_strata(cells)
    design = design_for(
        data[~((data["area"] == "a12") & (data["group"] == "B"))],
        areas,
        data={"strata": ["age"], "covariates": ["income"]},
    )
    grid_income = design.grid.X[:, 0] * design.scale[0] + design.center[0]
    a12 = design.grid.area == list(areas["area"]).index("a12")
    assert grid_income[a12] == pytest.approx(np.full(a12.sum(), len("a12") + ord("2")))


def test_covariate_unknown_for_area_without_data_is_an_error(cells, areas):
    data = with_strata(cells)
    with pytest.raises(
        SaeInputError, match="covariate 'income' is unknown for cells without data a12/A"
    ):
        design_for(
            data[data["area"] != "a12"], areas, data={"strata": ["age"], "covariates": ["income"]}
        )


def test_covariate_from_areas_file_fills_missing_area(cells, areas):
    data = with_strata(cells)
    areas["income"] = areas["area"].map(lambda a: float(len(a) + ord(a[-1])))
    design = design_for(
        data[data["area"] != "a12"], areas, data={"strata": ["age"], "covariates": ["income"]}
    )
    assert np.isfinite(design.grid.X).all()


def test_numeric_covariate_is_standardised_and_maps_back(cells, areas):
    data = with_strata(cells)
    design = design_for(data, areas, data={"strata": ["age"], "covariates": ["income"]})
    assert design.terms == ("income", "age[young]")
    income = design.X[:, 0]
    assert income.mean() == pytest.approx(0, abs=1e-12) and income.std() == pytest.approx(1)
    raw = income * design.scale[0] + design.center[0]
    assert raw == pytest.approx(data["income"].to_numpy())
