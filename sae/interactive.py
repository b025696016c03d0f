"""A self-contained interactive HTML map: one tab per group, a tooltip per area.

BokehJS is written inline (``bokeh.resources.INLINE``), so the page opens with no network, no CDN
and no web tiles. Colours, hatching and greys follow `sae.maps`: unreliable cells hatched, caution
lightly hatched, no data grey. Labels from the data reach the page only as data values, which
BokehJS inserts as text, never as markup.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

import geopandas as gpd
import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
from bokeh.embed import file_html
from bokeh.layouts import column as column_layout
from bokeh.models import ColumnDataSource, Div, HoverTool, TabPanel, Tabs
from bokeh.plotting import figure
from bokeh.resources import INLINE
from matplotlib import colormaps

from sae.maps import CAPTION, NO_DATA_COLOUR, censored_cells, classify, projected
from sae.staging import staged_file

BOKEH_HATCH = {"unreliable": "/", "model-driven": "\\", "caution": ".", "reliable": " "}
HATCH_ALPHA = {"unreliable": 0.85, "model-driven": 0.7, "caution": 0.35, "reliable": 0.0}


def polygon_coordinates(geometry) -> tuple[list, list]:
    """Bokeh multi_polygons coordinates: [[[xs_exterior, xs_hole...]...]] for one area."""
    parts = list(getattr(geometry, "geoms", [geometry]))
    xs = [
        [list(part.exterior.coords.xy[0]), *[list(r.coords.xy[0]) for r in part.interiors]]
        for part in parts
    ]
    ys = [
        [list(part.exterior.coords.xy[1]), *[list(r.coords.xy[1]) for r in part.interiors]]
        for part in parts
    ]
    return xs, ys


def area_source(estimates, gaps, areas, area_id, column, names) -> ColumnDataSource:
    shapes = projected(areas)[[area_id, "geometry"]].rename(columns={area_id: "area"})
    shapes["area"] = shapes["area"].astype(str)
    coordinates = [polygon_coordinates(g) for g in shapes.geometry]
    data = {"xs": [c[0] for c in coordinates], "ys": [c[1] for c in coordinates],
            "area": shapes["area"].tolist(),
            "name": [names.get(area, area) for area in shapes["area"]]}  # fmt: skip
    values = estimates.loc[estimates["has_data"], column].to_numpy(float)
    bounds = classify(values)
    colours = colormaps["YlOrRd"](np.linspace(0.1, 0.95, len(bounds)))
    flag_column = "adj_flag" if column.startswith("adj_") else "flag"
    for group, rows in estimates.groupby("group", sort=False):
        rows = rows.set_index("area").reindex(shapes["area"])
        classes = np.minimum(np.searchsorted(bounds, rows[column].to_numpy()), len(bounds) - 1)
        fill = [mcolors.to_hex(colours[c]) for c in classes]
        has_data = rows["has_data"].fillna(False).to_numpy(bool)
        data[f"fill {group}"] = [
            f if ok else NO_DATA_COLOUR for f, ok in zip(fill, has_data, strict=True)
        ]
        flags = rows[flag_column].where(has_data)  # no data is shown grey, not hatched
        data[f"hatch {group}"] = flags.map(BOKEH_HATCH).fillna(" ").tolist()
        data[f"hatch alpha {group}"] = flags.map(HATCH_ALPHA).fillna(0.0).tolist()
        censored = censored_cells(rows).to_numpy()
        data[f"text {group}"] = [
            f"{m:,.1f} [{lo:,.1f}, {hi:,.1f}], {flag}" + ("" if ok else " (no data)")
            + (", counts suppressed" if suppressed else "")
            for m, lo, hi, flag, ok, suppressed in zip(
                rows[column], rows[column.replace("mean", "lower")],
                rows[column.replace("mean", "upper")], rows[flag_column], has_data, censored,
                strict=True)
        ]  # fmt: skip
    if gaps is not None:
        for group, rows in gaps.groupby("group", sort=False):
            rows = rows.set_index("area").reindex(shapes["area"])
            data[f"gap {group}"] = [
                f"ratio {ratio_text(r, lo, hi)}, P(higher) {p:.2f}, {flag}"
                for r, lo, hi, p, flag in zip(rows["ratio_median"], rows["ratio_lower"],
                                              rows["ratio_upper"], rows["prob_higher"], rows["flag"],
                                              strict=True)
            ]  # fmt: skip
    return ColumnDataSource(data)


PANELS_IN_TOOLTIP = 6


def panel_tooltips(groups: list, group, gaps: pd.DataFrame | None, unit: str) -> list:
    """The area, every group's estimate (only the panel's own when there are many panels, as in
    a space–time map with one per group and period), and the gaps."""
    shown = groups if len(groups) <= PANELS_IN_TOOLTIP else [group]
    tooltips = [("area", "@name (@area)")]
    tooltips += [(f"{g} {unit}".strip(), f"@{{text {g}}}") for g in shown]
    if gaps is not None:
        reference = gaps["reference"].iloc[0]
        compared = [g for g in dict.fromkeys(gaps["group"]) if g in shown]
        tooltips += [(f"{g} vs {reference}", f"@{{gap {g}}}") for g in compared]
    return tooltips


def ratio_text(ratio: float, lower: float, upper: float) -> str:
    if np.isnan(ratio):
        return "not defined (the reference's posterior reaches 0)"
    return f"{ratio:.2f} [{lower:.2f}, {upper:.2f}]"


def interactive_map(
    estimates: pd.DataFrame,
    areas: gpd.GeoDataFrame,
    area_id: str,
    path: str | Path,
    gaps: pd.DataFrame | None = None,
    column: str = "mean",
    title: str = "sae estimates",
    unit: str = "",
    names: dict | None = None,
) -> Path:
    """Write the map to `path` (one self-contained HTML file) and return the path."""
    path = Path(path)
    source = area_source(estimates, gaps, areas, area_id, column, names or {})
    groups = list(dict.fromkeys(estimates["group"]))
    panels = []
    for group in groups:
        plot = figure(title=f"{title}: {group}", match_aspect=True, width=760, height=560,
                      tools="pan,wheel_zoom,reset,save", toolbar_location="above")  # fmt: skip
        plot.multi_polygons(xs="xs", ys="ys", source=source, fill_color=f"fill {group}",
                            hatch_pattern=f"hatch {group}", hatch_color="#1a1a1a",
                            hatch_alpha=f"hatch alpha {group}",
                            line_color="#4d4d4d", line_width=0.6)  # fmt: skip
        plot.add_tools(HoverTool(tooltips=panel_tooltips(groups, group, gaps, unit)))
        plot.axis.visible = False
        plot.grid.visible = False
        panels.append(TabPanel(child=plot, title=str(group)))
    caption = Div(text=escape(CAPTION), width=760)
    html = file_html(column_layout(Tabs(tabs=panels), caption), INLINE, title=title)
    with staged_file(path) as temporary:
        temporary.write_text(html, encoding="utf-8")
    return path
