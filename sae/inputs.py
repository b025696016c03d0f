"""`load_inputs`: everything a fit needs, read, validated and settled before any sampling.

Besides the cells and the graph, this settles what would otherwise fail only after sampling: the
reference group of the gaps, the age bands and their standard-population weights, the area names,
and a record of exactly which data went in (file hashes, or a hash of a DataFrame passed in).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd

from sae import random_walk
from sae.areas import build_graph, read_areas
from sae.cells import CellTable, check_cells, read_cells, read_table
from sae.errors import SaeInputError, listing
from sae.graph import AreaGraph
from sae.provenance import sha256
from sae.spec import Spec
from sae.standardize import standard_weights, user_weights


@dataclass(frozen=True, eq=False)
class Inputs:
    """The validated cells and graph, the polygons if any, and what was settled from them.

    names: area id → display name (None without [data] area_name); reference_group: the gaps'
    reference; age_weights: standard weights per age band (None without an age stratum);
    sources: where each input came from, with a SHA-256 of its content.
    """

    cells: CellTable
    graph: AreaGraph
    areas: gpd.GeoDataFrame | None
    reference_group: str
    names: pd.Series | None = None
    age_weights: pd.Series | None = None
    sources: dict[str, dict] = field(default_factory=dict)

    def name_of(self, areas: pd.Series) -> pd.Series:
        """Display names of `areas` (the ids themselves without names)."""
        if self.names is None:
            return areas.astype(str)
        return areas.map(self.names).fillna(areas).astype(str)


def load_inputs(
    spec: Spec,
    cells: pd.DataFrame | str | Path | None = None,
    areas: gpd.GeoDataFrame | str | Path | None = None,
) -> Inputs:
    """Read (or take) the cells and the areas named by the spec, validate them, build the graph,
    and settle the reference group, age weights and area names."""
    table, cells_source = read_cells(spec, cells)
    polygons, areas_source = read_areas(spec, areas)
    cell_table = check_cells(table, spec, cells_source)
    graph = build_graph(spec, polygons, cell_table.frame["area"], cells_source)
    check_cells_on_graph(cell_table, graph)
    check_periods(spec, cell_table)
    odds = spec.model.unknown_group_odds
    if odds is not None and odds.group not in cell_table.groups:
        raise SaeInputError(
            f"[model] unknown_group_odds names the group {odds.group!r}, which is not in "
            f"{cells_source}; its groups are {listing(list(cell_table.groups))}."
        )
    sources = {"cells": source_record(cells_source, table)}
    if polygons is not None:
        sources["areas"] = source_record(areas_source, polygons)
    if spec.graph.edges is not None:
        sources["edges"] = file_record(spec.graph.edges)
    names, sources_of_names = area_names(spec, polygons, areas_source, table, cells_source)
    if sources_of_names:
        sources["names"] = sources_of_names
    return Inputs(
        cells=cell_table,
        graph=graph,
        areas=polygons,
        reference_group=settle_reference_group(spec, cell_table),
        names=names,
        age_weights=settle_age_weights(spec, cell_table, sources),
        sources=sources,
    )


def check_cells_on_graph(cells: CellTable, graph: AreaGraph) -> None:
    unknown = sorted(set(cells.frame["area"]) - set(graph.ids))
    if unknown:
        raise SaeInputError(
            f"{cells.source}: area ids not found among the areas: {listing(unknown)}. "
            f"Area ids look like: {listing(graph.ids[:3])}. Check the id column and zero-padding."
        )


def check_periods(spec: Spec, cells: CellTable) -> None:
    """Random walks need enough periods; pooled periods must be periods of the data, in order."""
    periods, model = cells.periods, spec.model
    walks = [k for k in (model.trend, model.group_trend) if k in random_walk.ORDERS]
    for kind in walks if periods else []:
        random_walk.check_length(len(periods), random_walk.order_of(kind))
    for pool in spec.output.pool:
        first, last = pool.first, pool.last
        if (
            first not in periods
            or last not in periods
            or periods.index(first) > periods.index(last)
        ):
            raise SaeInputError(
                f"{spec.source or '<spec>'}: [output] pool = [{pool.first!r}, {pool.last!r}] must name "
                f"two periods of {cells.source}, the first not later than the last; its periods "
                f"run from {periods[0]!r} to {periods[-1]!r} (years as numbers, labels in quotes)."
            )


def settle_reference_group(spec: Spec, cells: CellTable) -> str:
    """The spec's reference group (it must exist), else the group with the largest exposure."""
    chosen = spec.output.reference_group
    if chosen is None:
        totals = cells.frame.groupby("group")["exposure"].sum()
        return str(totals.idxmax())
    if chosen not in cells.groups:
        near = [g for g in cells.groups if g.strip().casefold() == chosen.strip().casefold()]
        hint = f" Did you mean {near[0]!r}?" if near else ""
        raise SaeInputError(
            f"{spec.source or '<spec>'}: [output] reference_group = {chosen!r} is not among the "
            f"groups {list(cells.groups)} of {cells.source}.{hint} Set it to one of them."
        )
    return chosen


def settle_age_weights(spec: Spec, cells: CellTable, sources: dict) -> pd.Series | None:
    """Standard-population weights for the data's age bands, checked now rather than after sampling."""
    age = spec.output.age_stratum
    if age is None:
        return None
    bands = sorted(cells.frame[age].unique())
    path = spec.output.standard_population
    if path is None:
        return standard_weights(bands)
    if not path.is_file():
        raise SaeInputError(
            f"{path}: standard population file not found. Check [output] standard_population."
        )
    sources["standard_population"] = file_record(path)
    return user_weights(read_table(path, {"age": str}), bands, str(path))


def area_names(
    spec: Spec,
    polygons: gpd.GeoDataFrame | None,
    areas_source: str,
    table: pd.DataFrame,
    cells_source: str,
) -> tuple[pd.Series | None, dict]:
    """Display names from the `area_name` column of the polygons, or else of the cells table."""
    column, area_id = spec.data.area_name, spec.data.area_id
    if column is None:
        return None, {}
    if polygons is not None and column in polygons:
        names, where = polygons.set_index(area_id)[column], areas_source
    elif column in table:
        per_area = table.groupby(table[area_id].astype(str))[column]
        several = per_area.nunique()
        if (several > 1).any():
            raise SaeInputError(
                f"{cells_source}: column {column!r} ([data] area_name) gives several names to "
                f"area(s) {listing(several.index[several > 1])}. Give each area one name."
            )
        names, where = per_area.first(), cells_source
    else:
        raise SaeInputError(
            f"[data] area_name = {column!r} is neither a column of the polygons nor of "
            f"{cells_source}. Name the column that holds the place names, or remove area_name."
        )
    names.index = names.index.astype(str)
    return names.fillna(pd.Series(names.index, index=names.index)).astype(str), {
        "column": column,
        "from": where,
    }


def source_record(source: str, content: pd.DataFrame) -> dict:
    """A file's path and hash, or, for a DataFrame passed in, its size and a hash of its content."""
    path = Path(source)
    if path.is_file():
        return file_record(path)
    frame = pd.DataFrame(content)
    if isinstance(content, gpd.GeoDataFrame):
        frame[content.geometry.name] = content.geometry.to_wkb()
    digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    return {"object": source, "rows": len(frame), "sha256_of_content": digest.hexdigest()}


def file_record(path: Path) -> dict:
    return {"path": str(path), "sha256": sha256(path)}
