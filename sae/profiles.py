"""One printable page per place: `sae report DIR --place ID` (or `--place all`).

A profile holds the place's name, a small locator map, the plain-language sentences of its rates
and gaps (`sae.plain_language`), each group's rate with its interval and flag, the gaps with
their labels, the place's trend chart in a space–time fit, and the "how to read this" box of the
report. It is HTML that prints on one page (print styles, no scripts), written to
`DIR/profiles/<id>.html`; `--place all` writes every place and `profiles/index.html`.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from matplotlib.figure import Figure

from sae import publication
from sae.errors import SaeInputError
from sae.fit_maps import area_names, safe_name
from sae.maps import EDGE_COLOUR, projected
from sae.plain_language import place_profile_sentences
from sae.report import figure_html, how_to_read, image_html, page, table_html
from sae.staging import staged_file

PLACE_COLOUR, OTHER_COLOUR = "#08519c", "#e0e0e0"


def locator_map(fit, area: str) -> Figure:
    """All places in light grey, this one in dark blue."""
    shapes = projected(fit.inputs.areas)
    ids = shapes[fit.spec.data.area_id].astype(str)
    fig = Figure(figsize=(3.2, 2.6))
    ax = fig.subplots()
    shapes.plot(ax=ax, color=OTHER_COLOUR, edgecolor="#9e9e9e", linewidth=0.2)
    shapes[ids == area].plot(ax=ax, color=PLACE_COLOUR, edgecolor=EDGE_COLOUR, linewidth=0.6)
    ax.set_axis_off()
    return fig


def checked_area(fit, area: str) -> str:
    ids = [str(a) for a in fit.inputs.graph.ids]
    if area not in ids:
        close = [a for a in ids if a.startswith(area[:2])][:5]
        raise SaeInputError(
            f"--place {area!r} is not an area of this fit. Give an area id as in its "
            f"estimates.csv 'area' column (e.g. {', '.join(close or ids[:5])}), or --place all."
        )
    return area


def profile_html(fit, area: str, names: dict) -> str:
    name = str(names.get(area, area))
    estimates = publication.estimates_for_people(fit)
    rows = estimates[estimates["place id"] == area].drop(columns=["place", "place id"])
    parts = [f"<header><h1>{escape(name)}</h1><p class=\"note\">{escape(fit.spec.title)}; "
             f"place id {escape(area)}</p></header>",
             figure_html(locator_map(fit, area), f"Locator map: {name} within the map's "
                                                 f"{fit.inputs.graph.n_areas} places"),
             "<h2>In words</h2><ul class=\"summary\">"
             + "".join(f"<li>{escape(s)}</li>" for s in place_profile_sentences(fit, area))
             + "</ul>",
             "<h2>Rates</h2>" + table_html(rows, f"Each group's rate in {name}")]  # fmt: skip
    if len(fit.design.groups) > 1:
        gaps = publication.gaps_for_people(fit)
        gaps = gaps[gaps["place id"] == area].drop(columns=["place", "place id"])
        parts.append("<h2>Gaps</h2>" + table_html(gaps, f"Gaps between groups in {name}"))
    parts.append(how_to_read(fit))
    return "".join(parts)


def write_profiles(fit, directory: Path, place: str) -> list[Path]:
    """`place`: an area id, or "all" (every place, and an index page)."""
    if fit.inputs.areas is None:
        raise SaeInputError("place profiles need the fit's polygons for their locator map.")
    names = area_names(fit)
    folder = directory / "profiles"
    folder.mkdir(exist_ok=True)
    areas = [str(a) for a in fit.inputs.graph.ids] if place == "all" else [checked_area(fit, place)]
    written = [write_page(folder / f"{safe_name(a)}.html", f"{names.get(a, a)}: profile",
                          profile_html(fit, a, names) + trend_chart(directory, a))
               for a in areas]  # fmt: skip
    if place == "all":
        links = "".join(f'<li><a href="{escape(p.name)}">{escape(str(names.get(a, a)))}</a></li>'
                        for a, p in zip(areas, written, strict=True))  # fmt: skip
        written.append(write_page(folder / "index.html", f"{fit.spec.title}: place profiles",
                                  f"<h1>{escape(fit.spec.title)}</h1><ul>{links}</ul>"))  # fmt: skip
    return written


def trend_chart(directory: Path, area: str) -> str:
    chart = directory / "maps" / "trends" / f"{safe_name(area)}.png"
    if not chart.is_file():
        return ""
    return "<h2>Over time</h2>" + image_html(chart, "Each group's rate over time with its band")


def write_page(path: Path, title: str, body: str) -> Path:
    with staged_file(path) as temporary:
        temporary.write_text(page(title, body), encoding="utf-8")
    return path
