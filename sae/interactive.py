"""A self-contained interactive HTML map: one tab per group, a tab per gap, a tooltip per area.

Each tab carries its colour key, drawn in the same classes and colours as the static map
(`sae.maps.Classes` for the estimates, `sae.maps.GAP_BREAKS` for the rate ratios), with the
hatching and grey explained beside it. A gap tab shows each place's rate ratio against the
reference, hatched where the gap is uncertain, and its tooltip the ratio, its interval and
P(higher). Tooltips name the place.

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

from sae.maps import (
    CAPTION,
    GAP_BREAKS,
    GAP_LABELS,
    NO_DATA_COLOUR,
    Classes,
    allocated_cells,
    censored_cells,
    gap_colours,
    projected,
)
from sae.publication import shown, side_safe
from sae.staging import staged_file

BOKEH_HATCH = {"unreliable": "/", "model-driven": "\\", "caution": ".", "uncertain": ".",
               "reliable": " ", "clear": " ", "likely": " "}  # fmt: skip
HATCH_ALPHA = {"unreliable": 0.85, "model-driven": 0.7, "caution": 0.35, "uncertain": 0.35,
               "reliable": 0.0, "clear": 0.0, "likely": 0.0}  # fmt: skip
GAP_COLOURS = gap_colours()


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
    classes = Classes.of(estimates.loc[estimates["has_data"], column].to_numpy(float))
    flag_column = "adj_flag" if column.startswith("adj_") else "flag"
    for group, rows in estimates.groupby("group", sort=False):
        rows = rows.set_index("area").reindex(shapes["area"])
        fill = [mcolors.to_hex(classes.colours[c]) for c in classes.index(rows[column].to_numpy())]
        has_data = rows["has_data"].fillna(False).to_numpy(bool)
        data[f"fill {group}"] = [
            f if ok else NO_DATA_COLOUR for f, ok in zip(fill, has_data, strict=True)
        ]
        flags = rows[flag_column].where(has_data)  # no data is shown grey, not hatched
        data[f"hatch {group}"] = flags.map(BOKEH_HATCH).fillna(" ").tolist()
        data[f"hatch alpha {group}"] = flags.map(HATCH_ALPHA).fillna(0.0).tolist()
        censored = censored_cells(rows).to_numpy()
        allocated = rows.get("unknown_allocated", pd.Series(0.0, index=rows.index))
        shared = allocated_cells(rows).to_numpy()
        data[f"text {group}"] = [
            f"{m:,.1f} [{lo:,.1f}, {hi:,.1f}], {flag}" + ("" if ok else " (no data)")
            + (", counts suppressed" if suppressed else "")
            + (f", about {n:,.0f} events of unknown group shared out" if share else "")
            for m, lo, hi, flag, ok, suppressed, share, n in zip(
                rows[column], rows[column.replace("mean", "lower")],
                rows[column.replace("mean", "upper")], rows[flag_column], has_data, censored,
                shared, allocated, strict=True)
        ]  # fmt: skip
    if gaps is not None:
        for group, rows in gaps.groupby("group", sort=False):
            rows = rows.set_index("area").reindex(shapes["area"])
            ratio_class = np.searchsorted(GAP_BREAKS, rows["ratio_median"].to_numpy())
            defined = rows["ratio_median"].notna().to_numpy()
            data[f"gap fill {group}"] = [mcolors.to_hex(GAP_COLOURS[c]) if ok else NO_DATA_COLOUR
                                         for c, ok in zip(ratio_class, defined, strict=True)]  # fmt: skip
            data[f"hatch gap {group}"] = rows["flag"].map(BOKEH_HATCH).fillna(" ").tolist()
            data[f"hatch alpha gap {group}"] = rows["flag"].map(HATCH_ALPHA).fillna(0.0).tolist()
            data[f"gap {group}"] = [
                f"ratio {ratio_text(r, lo, hi)}, P(higher) {p:.2f}, {flag}"
                for r, lo, hi, p, flag in zip(rows["ratio_median"], rows["ratio_lower"],
                                              rows["ratio_upper"], rows["prob_higher"], rows["flag"],
                                              strict=True)
            ]  # fmt: skip
    return ColumnDataSource(data), classes


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
    ratio, lower, upper = (shown(v, 2) for v in side_safe([ratio, lower, upper], 2))
    return f"{ratio} [{lower}, {upper}]"


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
    """Write the map to `path` (a str or Path; one self-contained HTML file) and return the
    path."""
    path = Path(path)
    source, classes = area_source(estimates, gaps, areas, area_id, column, names or {})
    groups = list(dict.fromkeys(estimates["group"]))
    key = legend_html(list(zip(classes.colours, classes.labels(), strict=True)),
                      unit, FLAG_KEY)  # fmt: skip
    panels = [TabPanel(child=column_layout(
        map_figure(source, f"{title}: {group}", f"fill {group}", group,
                   panel_tooltips(groups, group, gaps, unit)), Div(text=key, width=760)),
        title=str(group)) for group in groups]  # fmt: skip
    if gaps is not None:
        reference = gaps["reference"].iloc[0]
        gap_key = legend_html(list(zip(GAP_COLOURS, GAP_LABELS, strict=True)),
                              f"rate ratio to {reference}", GAP_FLAG_KEY)  # fmt: skip
        for group in dict.fromkeys(gaps["group"]):
            tooltips = [("area", "@name (@area)"), (f"{group} vs {reference}", f"@{{gap {group}}}")]
            plot = map_figure(source, f"{title}: {group} / {reference}, rate ratio",
                              f"gap fill {group}", f"gap {group}", tooltips)  # fmt: skip
            panels.append(TabPanel(child=column_layout(plot, Div(text=gap_key, width=760)),
                                   title=f"gap: {group} vs {reference}"))  # fmt: skip
    caption = Div(text=escape(CAPTION), width=760)
    html = file_html(column_layout(Tabs(tabs=panels), caption), INLINE, title=title)
    with staged_file(path) as temporary:
        temporary.write_text(html, encoding="utf-8")
    return path


FLAG_KEY = (("////", "unreliable"), ("\\\\", "model-driven"), ("····", "caution"))
GAP_FLAG_KEY = (("////", "unreliable"), ("····", "uncertain gap"))


def map_figure(source, title: str, fill: str, layer: str, tooltips: list):
    """One tab's choropleth: colours from the source's `fill` column, hatching from the
    `layer`'s flags."""
    plot = figure(title=title, match_aspect=True, width=760, height=560,
                  tools="pan,wheel_zoom,reset,save", toolbar_location="above")  # fmt: skip
    plot.multi_polygons(xs="xs", ys="ys", source=source, fill_color=fill,
                        hatch_pattern=f"hatch {layer}", hatch_color="#1a1a1a",
                        hatch_alpha=f"hatch alpha {layer}", line_color="#4d4d4d",
                        line_width=0.6)  # fmt: skip
    plot.add_tools(HoverTool(tooltips=tooltips))
    plot.axis.visible = False
    plot.grid.visible = False
    return plot


def legend_html(classes: list[tuple], unit: str, flags: tuple) -> str:
    """The colour key as HTML: a swatch per class, then the hatching and the grey of no data."""
    swatch = ('<span class="sae-key" style="display:inline-block;margin:2px 10px 2px 0">'
              '<span style="display:inline-block;width:14px;height:14px;background:{colour};'
              'border:1px solid #4d4d4d;vertical-align:middle;margin-right:4px"></span>{label}</span>')  # fmt: skip
    items = [swatch.format(colour=mcolors.to_hex(c), label=escape(label)) for c, label in classes]
    items += [f'<span class="sae-key" style="margin-right:10px"><b>{escape(p)}</b> {escape(w)}</span>'
              for p, w in flags]  # fmt: skip
    items.append(swatch.format(colour=NO_DATA_COLOUR, label="no data"))
    return (f'<div class="sae-legend" role="img" aria-label="colour key"><b>{escape(unit)}</b><br>'
            + "".join(items) + "</div>")  # fmt: skip
