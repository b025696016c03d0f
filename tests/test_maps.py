"""Maps: hatching for unreliable cells (checked on the artists), escaping, and a real browser."""

import os
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from conftest import grid_areas
from matplotlib.collections import PathCollection
from matplotlib.colors import to_hex
from PIL import Image

from sae import maps
from sae.interactive import interactive_map

HOSTILE = "<script>alert('x')</script>"


def estimates_table(areas) -> pd.DataFrame:
    """Made-up estimates: a01 unreliable, a02 caution, a03 without data, for two groups."""
    rng = np.random.default_rng(0)
    rows = []
    for group in ("A", "B"):
        for area in areas["area"]:
            mean = float(rng.uniform(50, 150))
            flag = {"a01": "unreliable", "a02": "caution", "a03": "unreliable"}.get(
                area, "reliable"
            )
            rows.append({"area": area, "group": group, "mean": mean, "lower": mean * 0.8,
                         "upper": mean * 1.2, "flag": flag, "flag_reason": "test",
                         "has_data": area != "a03"})  # fmt: skip
    return pd.DataFrame(rows)


def test_unreliable_cells_are_hatched_and_no_data_is_grey():
    areas = grid_areas()
    fig = maps.plot_estimates(estimates_table(areas), areas, "area", title="t")
    ax = fig.axes[0]
    hatched = [c for c in ax.collections if c.get_hatch() == maps.HATCH["unreliable"]]
    dotted = [c for c in ax.collections if c.get_hatch() == maps.HATCH["caution"]]
    # one hatched patch per unreliable area with data (a01; a03 has no data and is grey instead)
    assert sum(len(c.get_paths()) for c in hatched) == 1
    assert sum(len(c.get_paths()) for c in dotted) == 1
    grey = [
        c
        for c in ax.collections
        if len(c.get_facecolor()) and to_hex(c.get_facecolor()[0]) == maps.NO_DATA_COLOUR
    ]
    assert sum(len(c.get_paths()) for c in grey) == 1
    labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert {"unreliable", "caution", "no data"} <= set(labels)


def test_gap_map_hatches_unreliable_gaps_and_is_centred_at_one():
    areas = grid_areas()
    gaps = pd.DataFrame({"area": areas["area"], "group": "B", "reference": "A",
                         "ratio_median": np.linspace(0.4, 2.5, len(areas)), "prob_higher": 0.5,
                         "flag": ["unreliable"] + ["clear"] * (len(areas) - 1)})  # fmt: skip
    fig = maps.plot_gaps(gaps, areas, "area")
    hatched = [
        c for ax in fig.axes for c in ax.collections if c.get_hatch() == maps.HATCH["unreliable"]
    ]
    assert (
        sum(len(c.get_paths()) for c in hatched) == 2
    )  # same area on the ratio and P(higher) maps
    assert maps.GAP_BREAKS[3] < 1.0 and maps.GAP_BREAKS[4] > 1.0  # the "similar" class straddles 1


def test_figures_are_written_as_png_svg_pdf(tmp_path):
    areas = grid_areas()
    fig = maps.plot_estimates(estimates_table(areas), areas, "area")
    paths = maps.save_figure(fig, tmp_path / "estimates")
    assert [p.suffix for p in paths] == [".png", ".svg", ".pdf"] and all(
        p.stat().st_size > 0 for p in paths
    )
    assert Image.open(paths[0]).info["dpi"][0] == pytest.approx(300, abs=1)


def write_html(tmp_path):
    areas = grid_areas()
    names = {"a00": HOSTILE, "a01": "Saint <b>Bold</b>"}
    return interactive_map(
        estimates_table(areas), areas, "area", tmp_path / "map.html", names=names
    )


def test_interactive_map_takes_a_str_path_and_has_a_key_and_a_gap_tab(tmp_path):
    areas = grid_areas()
    table = estimates_table(areas)
    gaps = pd.DataFrame({"area": areas["area"], "group": "B", "reference": "A",
                         "ratio_median": 1.3, "ratio_lower": 1.1, "ratio_upper": 1.6,
                         "prob_higher": 0.99, "flag": "clear"})  # fmt: skip
    path = interactive_map(table, areas, "area", str(tmp_path / "map.html"), gaps=gaps)
    html = path.read_text()
    classes = maps.Classes.of(table.loc[table["has_data"], "mean"].to_numpy(float))
    labels = [label.replace("–", "\\u2013") for label in classes.labels()]  # as BokehJS data
    assert all(label in html for label in labels)  # the static map's classes
    assert "gap: B vs A" in html and "rate ratio to A" in html


def test_interactive_map_is_self_contained_and_escapes_labels(tmp_path):
    html = write_html(tmp_path).read_text()
    assert HOSTILE not in html and "<b>Bold</b>" not in html
    assert "&lt;script&gt;alert" in html  # present, but only as escaped text
    external = re.findall(
        r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//", html
    )
    assert external == []  # no tag loads anything from outside the file


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_interactive_map_renders_in_headless_chromium(tmp_path):
    browser = chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs chromium for the browser test (apt-get install chromium)")
        pytest.skip("chromium not installed here (Debian package 'chromium'); CI runs this test")
    page = write_html(tmp_path)
    shot = tmp_path / "shot.png"
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--window-size=900,750",
         "--virtual-time-budget=5000", f"--screenshot={shot}", page.as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3)
    coloured = pixels[(pixels.max(axis=1) - pixels.min(axis=1)) > 60]  # saturated: the choropleth
    assert len(coloured) > 0.01 * len(pixels), (
        "the map's areas were not drawn"
    )  # blank page: < 0.1%
    assert len(np.unique(coloured // 32, axis=0)) >= 3  # several classes of colour, not one blob
    # the colour key is drawn under the map: every class's swatch, in the static map's colours
    image = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    below_map = image[600:].reshape(-1, 3)
    table = estimates_table(grid_areas())
    classes = maps.Classes.of(table.loc[table["has_data"], "mean"].to_numpy(float))
    for colour in classes.colours:
        target = np.round(np.asarray(colour[:3]) * 255)
        assert (np.abs(below_map - target).max(axis=1) <= 3).sum() >= 50, (
            "a legend swatch is missing"
        )


def test_value_by_alpha_fades_wide_intervals_instead_of_hatching():
    areas = grid_areas()
    table = estimates_table(areas)
    table["relative_width"] = np.where(table["area"] == "a00", 1.6, 0.1)
    fig = maps.plot_estimates(table, areas, "area", encoding="alpha")
    ax = fig.axes[0]
    assert not [c for c in ax.collections if c.get_hatch()]
    alphas = np.concatenate([c.get_facecolor()[:, 3] for c in ax.collections])
    assert alphas.min() == pytest.approx(maps.ALPHA_FLOOR) and alphas.max() > 0.9


def test_legend_labels_are_precise_enough_to_differ():
    assert maps.label_format(0.01, np.array([0.12, 0.15, 0.2])) == ",.3f"  # narrowest class 0.03
    assert maps.label_format(50.0, np.array([60.0, 75.0, 101.0])) == ",.0f"


def test_gap_map_greys_areas_without_a_rate_ratio():
    # a ratio is not reported where the reference's posterior reaches 0 (sae.gaps.compare_draws)
    areas = grid_areas()
    ratio = np.linspace(0.4, 2.5, len(areas))
    ratio[2] = np.nan
    gaps = pd.DataFrame({"area": areas["area"], "group": "B", "reference": "A",
                         "ratio_median": ratio, "prob_higher": 0.5, "flag": "uncertain"})  # fmt: skip
    ratio_axis = maps.plot_gaps(gaps, areas, "area").axes[0]
    grey = [
        c
        for c in ratio_axis.collections
        if len(c.get_facecolor()) and to_hex(c.get_facecolor()[0]) == maps.NO_DATA_COLOUR
    ]
    assert sum(len(c.get_paths()) for c in grey) == 1


def test_interactive_map_takes_a_str_path(tmp_path):
    from conftest import grid_areas

    from sae.interactive import interactive_map

    areas = grid_areas(island=False)
    estimates = areas[["area"]].assign(group="A", mean=np.arange(20.0), lower=0.0, upper=40.0,
                                       flag="reliable", has_data=True)  # fmt: skip
    path = interactive_map(estimates, areas, "area", str(tmp_path / "map.html"))
    assert path.is_file() and "Bokeh" in path.read_text()


@pytest.mark.parametrize(("interval", "clear_label"), [(0.95, "> 0.975 (clear: higher)"),
                                                       (0.9, "> 0.95 (clear: higher)")])  # fmt: skip
def test_gap_map_calls_clear_only_what_the_interval_shows(interval, clear_label):
    # the legend once said "clearly higher" for P(higher) > 0.95, where a 95% interval still
    # includes 1 (the gap's own flag: likely); the clear bins are the interval's tails now
    areas = grid_areas()
    gaps = pd.DataFrame({"area": areas["area"], "group": "B", "reference": "A",
                         "ratio_median": 1.3, "prob_higher": 0.96, "flag": "likely"})  # fmt: skip
    fig = maps.plot_gaps(gaps, areas, "area", interval=interval)
    labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert clear_label in labels and not any("clearly" in label for label in labels)
    caption = " ".join(t.get_text() for t in fig.texts)
    assert f"{interval:.0%} interval" in caption


def test_cells_with_events_of_unknown_group_shared_out_are_marked(tmp_path):
    areas = grid_areas()
    table = estimates_table(areas).assign(observed=20.0, unknown_allocated=0.5)
    table.loc[table["area"] == "a04", "unknown_allocated"] = 5.0  # 5 of 25 events: 20% shared out
    fig = maps.plot_estimates(table, areas, "area")
    triangles = [c for ax in fig.axes for c in ax.collections
                 if isinstance(c, PathCollection) and len(c.get_offsets()) and c.get_paths()
                 and len(c.get_paths()[0].vertices) == 4]  # fmt: skip
    assert sum(len(c.get_offsets()) for c in triangles) == 2  # a04 in each group's panel
    labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert "unknown group shared out" in labels
    html = interactive_map(table, areas, "area", tmp_path / "map.html").read_text()
    assert html.count("events of unknown group shared out") == 2
