"""A fit's estimates and gaps joined to its polygons, for GIS work (`Fit.to_geodataframe`).

One row per area × group (× period): the estimate columns of `Fit.estimates()` and, for every
group but the reference, that cell's gap against the reference as `gap_*` columns (ratio,
interval, P(higher), excess events, flag). The reference group's rows have no gap. Written as
`maps/estimates.gpkg` (layer "estimates") by `sae map` and `sae fit --maps`.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd

from sae.errors import SaeInputError
from sae.staging import staged_file

GAP_KEYS = ("area", "group", "period")


def estimates_geodataframe(fit, reference: str | None = None) -> gpd.GeoDataFrame:
    if fit.inputs.areas is None:
        raise SaeInputError(
            "this fit has no polygons (it used an edge list or no neighbours), so its estimates "
            "cannot be joined to shapes. Use fit.estimates() for the table."
        )
    table = fit.estimates()
    table["area"] = table["area"].astype(str)
    if len(fit.design.groups) > 1:
        gaps = fit.gaps(reference)
        keys = [k for k in GAP_KEYS if k in gaps]
        gaps = gaps.drop(columns=["name"], errors="ignore").assign(area=gaps["area"].astype(str))
        renamed = {c: f"gap_{c}" for c in gaps.columns if c not in keys}
        table = table.merge(gaps.rename(columns=renamed), on=keys, how="left")
    area_id = fit.spec.data.area_id
    shapes = fit.inputs.areas[[area_id, "geometry"]].rename(columns={area_id: "area"})
    shapes["area"] = shapes["area"].astype(str)
    joined = shapes.merge(table, on="area", how="right")
    return gpd.GeoDataFrame(joined, geometry="geometry", crs=fit.inputs.areas.crs)


def write_geopackage(fit, path: Path) -> Path:
    """`fit.to_geodataframe()` as a GeoPackage layer "estimates", written atomically."""
    frame = estimates_geodataframe(fit)
    with staged_file(path) as temporary:
        temporary.unlink()  # GDAL creates the file itself
        frame.to_file(temporary, layer="estimates", driver="GPKG")
    return path
