"""Every bad input named in the issue gets an error naming the file, the column and the rows."""

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import Polygon

from sae.errors import SaeInputError
from sae.inputs import load_inputs
from sae.spec_file import spec_from_dict

SPEC = {
    "data": {"area_id": "area", "group": "group", "count": "cases", "population": "population"},
    "graph": {"contiguity": "queen"},
}


def spec(**changes):
    raw = {key: dict(value) for key, value in SPEC.items()}
    for section, values in changes.items():
        raw.setdefault(section, {}).update(values)
    return spec_from_dict(raw)


def inputs(cells, areas, **changes):
    return load_inputs(spec(**changes), cells=cells, areas=areas)


def test_valid_inputs_give_graph_with_island_and_all_cells(cells, areas):
    result = inputs(cells, areas)
    assert result.graph.islands == ("island",)
    assert len(result.cells.frame) == len(cells)
    assert result.cells.groups == ("A", "B")


def test_missing_column_is_named(cells, areas):
    with pytest.raises(
        SaeInputError, match=r"the cells DataFrame: missing cell column\(s\) \['cases'\]"
    ):
        inputs(cells.drop(columns="cases"), areas)


def test_cell_area_absent_from_geometry(cells, areas):
    cells.loc[3, "area"] = "nowhere"
    with pytest.raises(SaeInputError, match="area ids not found among the areas: nowhere"):
        inputs(cells, areas)


def test_duplicate_cells_name_the_rows(cells, areas):
    bad = pd.concat([cells, cells.iloc[[0]]], ignore_index=True)
    with pytest.raises(
        SaeInputError, match=r"more than one row for the same cell .* row 0, row 42"
    ):
        inputs(bad, areas)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-1, "is negative at row 5"),
        (2.5, "not a whole number at row 5"),
        (None, "missing, non-numeric or infinite values at row 5"),
    ],
)
def test_bad_counts(cells, areas, value, message):
    cells["cases"] = cells["cases"].astype(object)
    cells.loc[5, "cases"] = value
    with pytest.raises(SaeInputError, match=f"column 'cases' .*{message}"):
        inputs(cells, areas)


def test_zero_population_with_positive_count(cells, areas):
    cells.loc[2, ["cases", "population"]] = [3, 0]
    with pytest.raises(
        SaeInputError, match="'population' is 0 where 'cases' is positive, at row 2"
    ):
        inputs(cells, areas)


def test_zero_population_with_zero_count_is_allowed(cells, areas):
    cells.loc[2, ["cases", "population"]] = [0, 0]
    assert len(inputs(cells, areas).cells.frame) == len(cells)


def test_count_above_trials(cells, areas):
    cells = cells.rename(columns={"population": "trials"})
    cells.loc[4, "cases"] = cells.loc[4, "trials"] + 1
    with pytest.raises(SaeInputError, match="'cases' exceeds the trials column 'trials' at row 4"):
        inputs(
            cells,
            areas,
            data={"population": None, "trials": "trials"},
            model={"family": "binomial"},
        )


def test_empty_geometry_names_the_area(cells, areas):
    areas.loc[areas["area"] == "a11", "geometry"] = Polygon()
    with pytest.raises(SaeInputError, match="areas with empty geometry: a11"):
        inputs(cells, areas)


def test_invalid_geometry_names_the_area(cells, areas):
    bowtie = Polygon([(0, 0), (1000, 1000), (1000, 0), (0, 1000)])
    areas.loc[areas["area"] == "a00", "geometry"] = bowtie
    with pytest.raises(SaeInputError, match="areas with invalid geometry: a00. .*make_valid"):
        inputs(cells, areas)


def test_unknown_contiguity_option():
    with pytest.raises(
        SaeInputError, match="contiguity = 'bishop' is not known. Use one of: queen, rook"
    ):
        spec(graph={"contiguity": "bishop"})


def test_both_population_and_expected_is_an_error():
    with pytest.raises(SaeInputError, match="exactly one exposure column"):
        spec(data={"expected": "E"})


def test_areas_file_errors_name_the_file(tmp_path, cells, areas):
    missing = tmp_path / "nowhere.gpkg"
    with pytest.raises(SaeInputError, match="nowhere.gpkg: areas file not found"):
        load_inputs(spec(data={"areas": str(missing)}), cells=cells)


def test_csv_rows_are_reported_as_file_lines(tmp_path, cells, areas):
    cells.loc[0, "cases"] = -3
    cells.to_csv(tmp_path / "cells.csv", index=False)
    with pytest.raises(
        SaeInputError, match=r"cells.csv: column 'cases' \(count\) is negative at row 2"
    ):
        load_inputs(spec(data={"cells": str(tmp_path / "cells.csv")}), areas=areas)


def test_areas_without_cells_stay_in_the_graph(cells, areas):
    result = inputs(cells[cells["area"] != "a12"], areas)
    assert "a12" in result.graph.ids


def test_duplicate_area_ids_in_geometry(cells, areas):
    doubled = gpd.GeoDataFrame(
        pd.concat([areas, areas.iloc[[0]]], ignore_index=True), crs=areas.crs
    )
    with pytest.raises(SaeInputError, match="repeats area ids a00"):
        inputs(cells, doubled)


def test_cells_and_areas_may_be_given_as_paths(tmp_path, cells, areas):
    cells.to_csv(tmp_path / "cells.csv", index=False)
    areas.to_file(tmp_path / "areas.gpkg", driver="GPKG")
    result = load_inputs(spec(), cells=str(tmp_path / "cells.csv"), areas=tmp_path / "areas.gpkg")
    assert len(result.cells.frame) == len(cells) and result.graph.n_areas == len(areas)
    assert result.sources["cells"]["path"].endswith("cells.csv")


def test_a_label_na_stays_a_label(tmp_path, cells, areas):
    cells.loc[cells["group"] == "B", "group"] = "NA"  # e.g. a code for Native American
    cells.to_csv(tmp_path / "cells.csv", index=False)
    result = load_inputs(spec(data={"cells": str(tmp_path / "cells.csv")}), areas=areas)
    assert result.cells.groups == ("A", "NA")
