"""Cells and areas: reading, validating once at the boundary, and joining them to a graph.

A *cell* is one row of the long table: area × group (× strata) with a count and its exposure
(population, expected count, or binomial trials). Every problem found here raises a
`SaeInputError` that names the file, the column and the first offending rows or areas.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from sae.direct import direct_columns
from sae.errors import SaeInputError, listing
from sae.graph import AreaGraph, connect_islands, graph_from_pairs, graph_from_polygons
from sae.spec import Spec

SINGLE_GROUP = "all"


@dataclass(frozen=True, eq=False)
class CellTable:
    """The validated long table, with canonical column names.

    `frame` has columns ``area``, ``group``, the strata, ``count``, ``exposure`` and the covariates,
    plus ``source_row`` (the row's line in the input file, or its index label).
    """

    frame: pd.DataFrame
    strata: tuple[str, ...]
    covariates: tuple[str, ...]
    exposure: str
    groups: tuple[str, ...]
    source: str


@dataclass(frozen=True, eq=False)
class Inputs:
    """Everything a model needs: the cells, the graph, and the polygons if there are any."""

    cells: CellTable
    graph: AreaGraph
    areas: gpd.GeoDataFrame | None


def load_inputs(
    spec: Spec, cells: pd.DataFrame | None = None, areas: gpd.GeoDataFrame | None = None
) -> Inputs:
    """Read (or take) the cells and the areas named by the spec, validate them, build the graph."""
    table, cells_source = read_cells(spec, cells)
    polygons = read_areas(spec, areas)
    if polygons is None and spec.graph.edges is None:
        raise SaeInputError(
            "No areas: set [data] areas = a polygons file, or [graph] edges = an edge-list CSV, "
            "or pass areas= (a GeoDataFrame)."
        )
    cell_table = validate_cells(table, spec, cells_source)
    graph = build_graph(spec, polygons, cell_table)
    check_cells_on_graph(cell_table, graph)
    return Inputs(cells=cell_table, graph=graph, areas=polygons)


def read_cells(spec: Spec, cells: pd.DataFrame | None) -> tuple[pd.DataFrame, str]:
    if cells is not None:
        return cells.copy(), "the cells DataFrame"
    path = spec.data.cells
    if path is None:
        raise SaeInputError("No cells: set [data] cells = a CSV or Parquet file, or pass cells=.")
    if not path.is_file():
        raise SaeInputError(f"{path}: cells file not found. Check [data] cells in the spec.")
    text_columns = {c: str for c in (spec.data.area_id, spec.data.group, *spec.data.strata) if c}
    if path.suffix.lower() == ".parquet":
        table = pd.read_parquet(path)
        table = table.astype({c: str for c in text_columns if c in table})
    else:
        table = pd.read_csv(path, dtype=text_columns, keep_default_na=True)
        table.index = table.index + 2  # the line number in the file (line 1 is the header)
    return table, str(path)


def read_areas(spec: Spec, areas: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame | None:
    if areas is None and spec.data.areas is None:
        return None
    if areas is None:
        path = spec.data.areas
        if not path.is_file():
            raise SaeInputError(f"{path}: areas file not found. Check [data] areas in the spec.")
        areas = gpd.read_file(path, layer=spec.data.areas_layer)
        source = str(path)
    else:
        areas, source = areas.copy(), "the areas GeoDataFrame"
    return validate_areas(areas, spec.data.area_id, source)


def validate_areas(areas: gpd.GeoDataFrame, id_column: str, source: str) -> gpd.GeoDataFrame:
    """Ids present and unique; geometry present, non-empty and valid."""
    require_columns(areas, [id_column], source, "area id")
    ids = areas[id_column]
    bad = ids.isna()
    if bad.any():
        raise SaeInputError(
            f"{source}: column {id_column!r} has missing area ids in rows {listing(areas.index[bad])}. "
            "Give every area an id."
        )
    areas = areas.assign(**{id_column: ids.astype(str)})
    dupes = areas[id_column][areas[id_column].duplicated()].unique()
    if len(dupes):
        raise SaeInputError(
            f"{source}: column {id_column!r} repeats area ids {listing(dupes)}. Each area needs "
            "one row; dissolve multi-part areas first (GeoDataFrame.dissolve)."
        )
    empty = areas.geometry.isna() | areas.geometry.is_empty
    if empty.any():
        raise SaeInputError(
            f"{source}: areas with empty geometry: {listing(areas.loc[empty, id_column])}. "
            "Supply their polygons, drop them, or give neighbours as an edge list ([graph] edges)."
        )
    invalid = ~areas.geometry.is_valid
    if invalid.any():
        raise SaeInputError(
            f"{source}: areas with invalid geometry: {listing(areas.loc[invalid, id_column])}. "
            "Repair them, e.g. with shapely.make_valid, and save the file again."
        )
    return areas.reset_index(drop=True)


def require_columns(table: pd.DataFrame, columns: list[str], source: str, role: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise SaeInputError(
            f"{source}: missing {role} column(s) {missing}. Columns present: "
            f"{listing(list(table.columns), 12)}. Rename the column or change the spec."
        )


def validate_cells(table: pd.DataFrame, spec: Spec, source: str) -> CellTable:
    """Check the long table and return it with canonical column names."""
    d = spec.data
    keys = [d.area_id, *([d.group] if d.group else []), *d.strata]
    require_columns(table, keys + measure_columns(spec), source, "cell")
    require_columns(table, list(d.covariates), source, "covariate")
    frame = pd.DataFrame(
        {
            "area": text_column(table, d.area_id, source),
            "group": text_column(table, d.group, source) if d.group else SINGLE_GROUP,
            **{s: text_column(table, s, source) for s in d.strata},
        },
        index=table.index,
    )
    if spec.model.family == "gaussian":
        frame = frame.join(direct_columns(table, spec, source, rows_where))
    else:
        exposure = getattr(d, spec.exposure)
        frame["count"] = count_column(table, d.count, source)
        frame["exposure"] = exposure_column(table, exposure, source)
        check_exposure(frame, spec.exposure, d.count, exposure, source)
    for covariate in d.covariates:
        frame[covariate] = covariate_column(table, covariate, source, covariate in d.categorical)
    check_duplicates(frame, ["area", "group", *d.strata], source)
    frame["source_row"] = [str(i) for i in table.index]
    return CellTable(
        frame=frame.reset_index(drop=True),
        strata=d.strata,
        covariates=d.covariates,
        exposure=spec.exposure,
        groups=tuple(sorted(frame["group"].unique())),
        source=source,
    )


def measure_columns(spec: Spec) -> list[str]:
    """The columns that carry the outcome: count and exposure, or a direct estimate and its spread."""
    d = spec.data
    if spec.model.family == "gaussian":
        return [c for c in (d.estimate, d.variance, d.se, d.sample_size, d.population) if c]
    return [d.count, getattr(d, spec.exposure)]


def rows_where(table: pd.DataFrame, mask: pd.Series) -> str:
    return listing([f"row {i}" for i in table.index[np.asarray(mask)]])


def require_filled(table: pd.DataFrame, column: str, source: str, what: str, advice: str) -> None:
    missing = table[column].isna()
    if missing.any():
        raise SaeInputError(
            f"{source}: {what} {column!r} is empty at {rows_where(table, missing)}. {advice}"
        )


def text_column(table: pd.DataFrame, column: str, source: str) -> pd.Series:
    require_filled(table, column, source, "column", "Fill in the value or remove those rows.")
    return table[column].astype(str)


def numeric_column(table: pd.DataFrame, column: str, source: str, role: str) -> pd.Series:
    values = pd.to_numeric(table[column], errors="coerce")
    bad = values.isna()
    if bad.any():
        raise SaeInputError(
            f"{source}: column {column!r} ({role}) has missing or non-numeric values at "
            f"{rows_where(table, bad)}. Give a number in every row."
        )
    return values.astype(float)


def count_column(table: pd.DataFrame, column: str, source: str) -> pd.Series:
    values = numeric_column(table, column, source, "count")
    negative = values < 0
    if negative.any():
        raise SaeInputError(
            f"{source}: column {column!r} (count) is negative at {rows_where(table, negative)}. "
            "Counts are numbers of events, 0 or more."
        )
    fractional = values != np.round(values)
    if fractional.any():
        raise SaeInputError(
            f"{source}: column {column!r} (count) is not a whole number at "
            f"{rows_where(table, fractional)}. Counts must be integers; rates belong in a "
            "Fay–Herriot model."
        )
    return values.astype(np.int64)


def exposure_column(table: pd.DataFrame, column: str, source: str) -> pd.Series:
    values = numeric_column(table, column, source, "exposure")
    negative = values < 0
    if negative.any():
        raise SaeInputError(
            f"{source}: column {column!r} is negative at {rows_where(table, negative)}. "
            "Populations, expected counts and trials are 0 or more."
        )
    return values


def check_exposure(frame: pd.DataFrame, kind: str, count: str, column: str, source: str) -> None:
    if kind == "trials":
        over = frame["count"] > frame["exposure"]
        if over.any():
            raise SaeInputError(
                f"{source}: column {count!r} exceeds trials column {column!r} at "
                f"{rows_where(frame, over)}. A binomial count cannot exceed its trials."
            )
        fractional = frame["exposure"] != np.round(frame["exposure"])
        if fractional.any():
            raise SaeInputError(
                f"{source}: trials column {column!r} is not a whole number at "
                f"{rows_where(frame, fractional)}."
            )
        return
    impossible = (frame["exposure"] <= 0) & (frame["count"] > 0)
    if impossible.any():
        raise SaeInputError(
            f"{source}: column {column!r} is 0 where {count!r} is positive, at "
            f"{rows_where(frame, impossible)}. Events need a positive {kind}; fix the {kind}."
        )


def covariate_column(table: pd.DataFrame, column: str, source: str, categorical: bool) -> pd.Series:
    """Numeric covariates as floats; text, boolean or declared-categorical ones as text levels."""
    require_filled(
        table, column, source, "covariate",
        "Fill it in (sae does not impute covariates) or drop the covariate.",
    )  # fmt: skip
    values = table[column]
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric and not categorical:
        return values.astype(float)
    return values.astype(str)


def check_duplicates(frame: pd.DataFrame, keys: list[str], source: str) -> None:
    dupes = frame.duplicated(keys, keep=False)
    if dupes.any():
        raise SaeInputError(
            f"{source}: more than one row for the same cell ({', '.join(keys)}) at "
            f"{rows_where(frame, dupes)}. Sum or remove the duplicates."
        )


def build_graph(spec: Spec, polygons: gpd.GeoDataFrame | None, cells: CellTable) -> AreaGraph:
    """The graph from the edge list if given, else from polygon contiguity; islands handled."""
    edges_path = spec.graph.edges
    if edges_path is not None:
        ids = list(polygons[spec.data.area_id]) if polygons is not None else None
        graph = graph_from_edge_file(edges_path, ids, cells)
    else:
        graph = graph_from_polygons(
            polygons, spec.data.area_id, spec.graph.contiguity, str(spec.data.areas)
        )
    if spec.graph.islands == "connect" and graph.islands:
        if polygons is None:
            raise SaeInputError(
                f'{edges_path}: islands = "connect" needs polygons to find the nearest area. '
                'Set [data] areas, or add the links to the edge list, or use islands = "keep".'
            )
        graph = connect_islands(graph, projected_centroids(polygons, spec.data.area_id, graph))
    return graph


def graph_from_edge_file(path: Path, ids: list[str] | None, cells: CellTable) -> AreaGraph:
    """Neighbour pairs from a CSV whose first two columns are area ids (either direction)."""
    if not path.is_file():
        raise SaeInputError(f"{path}: edge-list file not found. Check [graph] edges in the spec.")
    pairs = pd.read_csv(path, dtype=str)
    if pairs.shape[1] < 2:
        raise SaeInputError(f"{path}: an edge list needs two columns of area ids, one pair a row.")
    first, second = pairs.columns[:2]
    missing = pairs[first].isna() | pairs[second].isna()
    if missing.any():
        raise SaeInputError(
            f"{path}: empty area id at {listing([f'row {i + 2}' for i in pairs.index[missing]])}."
        )
    if ids is None:
        ids = natural_sort(set(pairs[first]) | set(pairs[second]) | set(cells.frame["area"]))
    return graph_from_pairs(ids, list(zip(pairs[first], pairs[second], strict=True)), str(path))


def natural_sort(ids: set[str]) -> list[str]:
    """Numeric ids in numeric order, others alphabetically."""
    return sorted(ids, key=lambda a: (0, int(a), a) if a.isdigit() else (1, 0, a))


def projected_centroids(polygons: gpd.GeoDataFrame, id_column: str, graph: AreaGraph) -> np.ndarray:
    projected = (
        polygons if polygons.crs and polygons.crs.is_projected else to_local_projection(polygons)
    )
    centroids = projected.set_index(id_column).geometry.centroid.loc[list(graph.ids)]
    return np.column_stack([centroids.x, centroids.y])


def to_local_projection(polygons: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Lon/lat polygons in a local UTM zone, so distances and areas are in metres."""
    if polygons.crs is None:
        polygons = polygons.set_crs("EPSG:4326")
    return polygons.to_crs(polygons.estimate_utm_crs())


def check_cells_on_graph(cells: CellTable, graph: AreaGraph) -> None:
    unknown = sorted(set(cells.frame["area"]) - set(graph.ids))
    if unknown:
        raise SaeInputError(
            f"{cells.source}: area ids not found among the areas: {listing(unknown)}. "
            f"Area ids look like: {listing(graph.ids[:3])}. Check the id column and zero-padding."
        )
