"""Outputs a county board can read (#13): one story from Python and the CLI, composable figures,
gap labels that agree with their printed intervals, tables and a report for people, place
profiles, GIS and Excel files, and a complete InferenceData. All on the bundled Pennsylvania fit
(Laplace, 1,000 draws), so every figure here is one a user gets."""

import csv
import io
import re
import warnings
from pathlib import Path

import arviz as az
import geopandas as gpd
import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

import sae
from sae import cli, maps, plain_language, publication, report
from sae.gaps import compare_draws

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pa(tmp_path_factory):
    spec = sae.load_spec(ROOT / "models" / "pennsylvania_lung_race.toml")
    fit = sae.fit(spec.replace(sampler={"draws": 250}))
    directory = tmp_path_factory.mktemp("pa") / "out"
    fit.save(directory, maps=True, report=True)
    return fit, directory


def facecolours(fig) -> np.ndarray:
    return np.concatenate(
        [c.get_facecolor() for c in fig.axes[0].collections if len(c.get_paths())]
    )


def test_the_readme_call_maps_the_age_adjusted_rate_like_the_cli(pa):
    fit, _ = pa
    estimates = fit.estimates()
    from_python = maps.plot_estimates(estimates, fit.inputs.areas, "fips")
    assert from_python._suptitle.get_text() == "Age-adjusted rates"
    from_fit = fit.plot_estimates()  # what `sae fit --maps` draws
    assert any("age-adjusted" in t.get_text() for t in from_fit.texts)  # the subtitle
    np.testing.assert_array_equal(facecolours(from_python), facecolours(from_fit))
    crude = maps.plot_estimates(estimates, fit.inputs.areas, "fips", column="mean")
    assert "not age-adjusted" in crude._suptitle.get_text()
    assert not np.array_equal(facecolours(crude), facecolours(from_python))


def test_overall_names_its_columns_as_estimates_does(pa):
    fit, _ = pa
    overall = fit.overall().set_index("group")
    crude_mix = fit.unit_table(("group",)).set_index("group")
    # unprefixed: each group's own age mix, in both tables; adj_*: age-adjusted
    assert overall.loc["white", "mean"] == pytest.approx(crude_mix.loc["white", "mean"])
    assert abs(overall.loc["non-white", "adj_mean"] - overall.loc["non-white", "mean"]) > 10
    assert {"adj_mean", "adj_lower", "adj_upper"} <= set(fit.estimates().columns)


def test_maps_in_a_users_figure_keep_their_legends_on_their_axes(pa):
    fit, _ = pa
    fig = Figure(figsize=(12, 14))
    axes = fig.subplots(2, 2)
    maps.plot_estimates(fit.estimates(), fit.inputs.areas, "fips", ax=axes[0])
    fit.plot_gaps(ax=axes[1].reshape(1, 2))
    assert fig.legends == []  # nothing at figure level
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert len(legends) == 3
    fig.draw_without_rendering()
    renderer = fig._get_renderer()
    boxes = [legend.get_window_extent(renderer) for legend in legends]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not Bbox.intersection(a, b), "two legends overlap"


def test_printed_gap_intervals_never_contradict_their_label(pa):
    fit, _ = pa
    table = publication.gaps_for_people(fit)
    lower, upper = table["95% interval, lower"], table["95% interval, upper"]
    clear = table["gap"] == "clear"
    assert clear.any() and (~clear).any()
    assert ((lower[clear] > 1) | (upper[clear] < 1)).all()
    assert ((lower[~clear] <= 1) & (upper[~clear] >= 1)).all()


def test_rounding_keeps_a_number_on_its_side_of_a_threshold():
    np.testing.assert_array_equal(
        publication.side_safe([1.004, 0.996, 1.234], 2), [1.004, 0.996, 1.23]
    )
    assert publication.side_safe([0.7996], 2, (0.8,))[0] == pytest.approx(0.7996)
    assert publication.shown(1.0, 2) == "1.00" and publication.shown(1.004, 2) == "1.004"


def test_prob_meaningful_is_the_probability_of_a_gap_of_practical_size():
    rng = np.random.default_rng(1)
    log_ratio = rng.normal([0.2, -0.2], 0.1, size=(20000, 2))
    target, reference = np.exp(log_ratio), np.ones((20000, 2))
    table = compare_draws(target, reference, 0.95, meaningful=1.1)
    from scipy import stats

    expected = stats.norm.sf(np.log(1.1), 0.2, 0.1)  # P(ratio ≥ 1.1), and by symmetry ≤ 1/1.1
    np.testing.assert_allclose(table["prob_meaningful"], expected, atol=0.01)


def test_the_practical_size_is_settable(pa):
    fit, _ = pa
    strict = sae.fit(fit.spec.replace(flags={"gap_meaningful_ratio": 1.5}))
    assert (strict.gaps()["prob_meaningful"] <= fit.gaps()["prob_meaningful"] + 0.02).all()
    assert strict.gaps()["prob_meaningful"].mean() < fit.gaps()["prob_meaningful"].mean() - 0.2


def test_sentences_never_claim_more_than_the_posterior():
    assert plain_language.sure(0.9999) == "more than 99%" and plain_language.sure(0.979) == "97%"
    assert "probably higher" in plain_language.certainty_words("likely", 0.91)
    assert "cannot tell" in plain_language.certainty_words("uncertain", 0.6)
    assert "sure it is lower" in plain_language.certainty_words("clear", 0.01)


def test_summary_sentences_carry_intervals_and_follow_the_labels(pa):
    fit, _ = pa
    sentences = plain_language.summary_sentences(fit)
    assert sentences[0].startswith("Across all 67 places")
    rate_sentences = [s for s in sentences if " times (between " in s]
    assert rate_sentences and all("95% interval" in s for s in rate_sentences)
    named = [s for s in sentences if s.startswith("In ")]  # the places: clear gaps only
    assert named and all("we are" in s for s in named)


def test_the_report_is_written_for_people(pa):
    _, directory = pa
    html = (directory / "report.html").read_text(encoding="utf-8")
    assert (
        html.index("<h2>Summary</h2>")
        < html.index("How to read this report")
        < html.index("<h2>Methods</h2>")
    )
    headers = re.findall(r"<th[^>]*>([^<]*)</th>", html)
    assert "rate ratio" in headers and "95% interval, lower" in headers and "place" in headers
    assert not [h for h in headers if re.fullmatch(r"[a-z]+_[a-z_]+", h)], "a raw column name"
    cells = re.findall(r'<td class="n">([^<]*)</td>', html)
    assert cells and not [c for c in cells if re.search(r"\.\d{3}0$|\.\d{5,}", c)]
    assert "allegheny" in html  # place names, not only FIPS codes
    assert "Rate ratio per unit of each covariate" in html
    alts = re.findall(r'<img alt="([^"]*)"', html)
    assert len(alts) == html.count("<img") >= 4 and all(len(a) > 30 for a in alts)
    assert "Trace and rank plots" in html and "Posterior predictive checks" in html


def test_largest_gaps_are_ranked_by_excess_events(pa):
    fit, directory = pa
    html = (directory / "report.html").read_text(encoding="utf-8")
    table = html[html.index("Largest gaps by excess events") :]
    first_place = re.search(r"<tbody><tr><td>([^<]*)</td>", table).group(1)
    gaps = fit.gaps()
    assert first_place == gaps.loc[gaps["excess"].idxmax(), "name"]
    assert "Ranked by excess events" in html


def contrast(a: str, b: str) -> float:
    def luminance(colour):
        channels = np.array([int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
        linear = np.where(
            channels <= 0.03928, channels / 12.92, ((channels + 0.055) / 1.055) ** 2.4
        )
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_report_text_has_enough_contrast():
    for colour in (report.TEXT, report.MUTED):
        assert contrast(colour, report.BACKGROUND) >= 4.5  # WCAG 2.1 AA for body text
        assert contrast(colour, "#f7f7f7") >= 4.5  # the how-to-read box


def test_a_place_profile_from_the_cli(pa, capsys):
    fit, directory = pa
    assert cli.main(["report", str(directory), "--place", "42003"]) == 0
    page = (directory / "profiles" / "42003.html").read_text(encoding="utf-8")
    assert "<h1>allegheny</h1>" in page and "@media print" in page
    assert 'alt="Locator map: allegheny' in page and "How to read" in page
    assert "95% interval" in page and "non-white" in page
    assert cli.main(["report", str(directory), "--place", "99999"]) == 2
    assert "--place '99999' is not an area of this fit" in capsys.readouterr().err


def test_tables_for_excel_and_gis(pa):
    fit, directory = pa
    raw = (directory / "estimates_table.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel reads the "\u2265" in reasons
    header = next(csv.reader(io.StringIO(raw[3:].decode("utf-8"))))
    assert header[:6] == ["place", "place id", "group", "events", "population",
                          "age-adjusted rate per 100,000"]  # fmt: skip
    frame = fit.to_geodataframe()
    assert len(frame) == len(fit.estimates()) and frame.geometry.notna().all()
    white = frame["group"] == "white"
    assert frame.loc[white, "gap_ratio_median"].isna().all()
    assert frame.loc[~white, "gap_ratio_median"].notna().all()
    from_file = gpd.read_file(directory / "maps" / "estimates.gpkg", layer="estimates")
    assert len(from_file) == len(frame) and "gap_flag" in from_file


def test_fit_displays_briefly(pa):
    fit, directory = pa
    assert len(repr(fit)) < 300
    card = fit._repr_html_()
    assert "flags" in card and str(directory) in card and len(card) < 3000


def test_the_saved_inference_data_is_complete_for_arviz(pa):
    _, directory = pa
    idata = az.from_netcdf(directory / "posterior.nc")
    assert {"posterior", "observed_data", "constant_data", "log_likelihood",
            "posterior_predictive"} <= set(idata.groups())  # fmt: skip
    posterior = idata.posterior
    assert not [v for v in posterior.data_vars if v.endswith(("_std", "_raw", "__"))]
    for name, variable in posterior.data_vars.items():
        for dim in variable.dims:
            assert dim in posterior.coords, f"{name}: dimension {dim} has no labels"
            assert not dim.endswith(tuple(f"_dim_{k}" for k in range(5)))
    assert "white" not in posterior["group_effect"]["compared_group"].to_numpy()  # the constant 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        az.summary(idata, var_names=["intercept", "beta", "group_effect", "area_sigma"])
    loo = az.loo(idata)
    assert np.isfinite(loo.elpd_loo)
    replicated = idata.posterior_predictive["y"].sum("row")
    observed = float(idata.observed_data["y"].sum())
    assert float(replicated.quantile(0.01)) < observed < float(replicated.quantile(0.99))


def test_a_fit_without_groups_summarises_its_highest_and_lowest_place():
    spec = sae.load_spec(ROOT / "models" / "scotland_lip_bym2.toml")
    fit = sae.fit(spec.replace(sampler={"method": "laplace", "draws": 250}))
    sentences = plain_language.summary_sentences(fit)
    estimates = fit.estimates()
    top = estimates.loc[estimates["mean"].idxmax()]
    assert f"highest estimate is in {top['name']}" in sentences[0]
    assert f"flagged {top['flag']}" in sentences[0] and "95% interval" in sentences[0]


def test_every_number_of_the_tables_for_people_has_its_interval_and_label(pa):
    fit, _ = pa
    gaps = publication.gaps_for_people(fit)
    for point, ends in (("rate ratio", "95% interval"), ("rate difference per 100,000", "difference"),
                        ("excess events", "excess")):  # fmt: skip
        assert point in gaps and f"{ends}, lower" in gaps and f"{ends}, upper" in gaps
        assert (gaps[f"{ends}, lower"] <= gaps[point]).all() and (
            gaps[point] <= gaps[f"{ends}, upper"]
        ).all()
    assert gaps["gap"].notna().all()
    estimates = publication.estimates_for_people(fit)
    assert {"95% interval, lower", "95% interval, upper", "reliability"} <= set(estimates)
