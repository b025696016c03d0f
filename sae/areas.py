"""The areas: polygons read and validated once, and the neighbour graph built from them (or from an
edge list, or, for a model without a spatial structure, from the cells' area ids alone).
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from sae.errors import SaeInputError, listing
from sae.graph import AreaGraph, connect_islands, graph_from_pairs, graph_from_polygons
from sae.spec import Spec


def read_areas(
    spec: Spec, areas: gpd.GeoDataFrame | str | Path | None
) -> tuple[gpd.GeoDataFrame | None, str]:
    """The validated polygons from `areas` (a GeoDataFrame or a path) or the spec's file, and a
    description of where they came from."""
    if isinstance(areas, gpd.GeoDataFrame):
        source = "the areas GeoDataFrame"
        return check_areas(areas.copy(), spec.data.area_id, source), source
    if areas is not None and not isinstance(areas, str | Path):
        raise SaeInputError(
            f"areas= must be a geopandas GeoDataFrame (polygons with an id column) or the path of a "
            f"polygons file, not {type(areas).__name__}. For a GeoSeries, use "
            "geopandas.GeoDataFrame({'id': ids}, geometry=series)."
        )
    path = Path(areas) if areas is not None else spec.data.areas
    if path is None:
        return None, "no polygons"
    polygons = read_polygons(path, spec.data.areas_layer)
    return check_areas(polygons, spec.data.area_id, str(path)), str(path)


def read_polygons(path: Path, layer: str | None) -> gpd.GeoDataFrame:
    """A polygons file (GeoPackage, shapefile, GeoJSON), one named layer of it if given."""
    import pyogrio

    if not path.exists():
        raise SaeInputError(f"{path}: areas file not found. Check [data] areas in the spec.")
    try:
        layers = [name for name, _ in pyogrio.list_layers(path)]
    except pyogrio.errors.DataSourceError as err:
        raise SaeInputError(
            f"{path}: not a polygons file sae can read ({err}). Use a GeoPackage, shapefile or "
            "GeoJSON."
        ) from err
    if layer is not None and layer not in layers:
        raise SaeInputError(
            f"{path}: no layer {layer!r}. Layers in the file: {listing(layers, 12)}. "
            "Set [data] areas_layer to one of them."
        )
    return gpd.read_file(path, layer=layer)


def check_areas(areas: gpd.GeoDataFrame, id_column: str, source: str) -> gpd.GeoDataFrame:
    """Ids present and unique; geometry present, non-empty and valid."""
    if id_column not in areas.columns:
        raise SaeInputError(
            f"{source}: missing area id column [{id_column!r}]. Columns present: "
            f"{listing([c for c in areas.columns if c != areas.geometry.name], 12)}. "
            "Set [data] area_id to the column that holds the area ids."
        )
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


def needs_neighbours(spec: Spec) -> bool:
    """Whether the model has a spatial structure, so that it needs polygons or an edge list."""
    return spec.model.spatial == "bym2" or spec.model.group_effects in ("bym2", "mcar")


def build_graph(
    spec: Spec, polygons: gpd.GeoDataFrame | None, cell_areas: pd.Series, cells_source: str
) -> AreaGraph:
    """The graph from the edge list if given, else from polygon contiguity; islands handled.

    A model without spatial structure and without polygons needs no neighbours: its areas are
    the cells' area ids, each an island.
    """
    edges_path = spec.graph.edges
    if edges_path is not None:
        ids = list(polygons[spec.data.area_id]) if polygons is not None else None
        graph = graph_from_edge_file(edges_path, ids, cell_areas)
    elif polygons is not None:
        graph = graph_from_polygons(
            polygons, spec.data.area_id, spec.graph.contiguity, str(spec.data.areas)
        )
    elif not needs_neighbours(spec):
        return graph_from_pairs(natural_sort(set(cell_areas)), [], cells_source)
    else:
        raise SaeInputError(
            'No areas: a spatial model (spatial, or group_effects = "bym2" or "mcar") needs neighbours. '
            "Set [data] areas = a polygons file, or [graph] edges = an edge-list CSV, or pass "
            'areas= (a GeoDataFrame); or fit a model without spatial structure (spatial = "none").'
        )
    if needs_neighbours(spec) and len(graph.edges) == 0:
        raise SaeInputError(
            f"{edges_path or spec.data.areas}: no two areas are neighbours, so a BYM2 field has no "
            'spatial part to estimate. Use spatial = "none" (and group_effects "iid" or "none"), or '
            "give neighbours ([graph] edges, or polygons that touch)."
        )
    if spec.graph.islands == "connect" and graph.n_components > 1:
        if polygons is None:
            raise SaeInputError(
                f'{edges_path}: islands = "connect" needs polygons to find the nearest area. '
                'Set [data] areas, or add the links to the edge list, or use islands = "keep".'
            )
        graph = connect_islands(graph, planar_centroids(polygons, spec.data.area_id, graph))
    return graph


def graph_from_edge_file(path: Path, ids: list[str] | None, cell_areas: pd.Series) -> AreaGraph:
    """Neighbour pairs from a CSV whose first two columns are area ids (either direction)."""
    if not path.is_file():
        raise SaeInputError(f"{path}: edge-list file not found. Check [graph] edges in the spec.")
    try:
        pairs = pd.read_csv(path, dtype=str)
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as err:
        raise SaeInputError(
            f"{path}: cannot be read as an edge list ({err}). Give a header line and one "
            "neighbour pair per row, two columns of area ids."
        ) from err
    if pairs.shape[1] < 2:
        raise SaeInputError(f"{path}: an edge list needs two columns of area ids, one pair a row.")
    first, second = pairs.columns[:2]
    missing = pairs[first].isna() | pairs[second].isna()
    if missing.any():
        raise SaeInputError(
            f"{path}: empty area id at {listing([f'row {i + 2}' for i in pairs.index[missing]])}."
        )
    if ids is None:
        ids = natural_sort(set(pairs[first]) | set(pairs[second]) | set(cell_areas))
    return graph_from_pairs(ids, list(zip(pairs[first], pairs[second], strict=True)), str(path))


def natural_sort(ids: set[str]) -> list[str]:
    """Numeric ids in numeric order, others alphabetically."""
    return sorted(ids, key=lambda a: (0, int(a), a) if a.isdigit() else (1, 0, a))


def planar_centroids(polygons: gpd.GeoDataFrame, id_column: str, graph: AreaGraph) -> np.ndarray:
    """Centroids in metres (a local UTM zone for lon/lat data; the file's own coordinates when it
    is projected or has no CRS, since sae does not guess a CRS)."""
    geographic = polygons.crs is not None and polygons.crs.is_geographic
    planar = polygons.to_crs(polygons.estimate_utm_crs()) if geographic else polygons
    centroids = planar.set_index(id_column).geometry.centroid.loc[list(graph.ids)]
    return np.column_stack([centroids.x, centroids.y])
