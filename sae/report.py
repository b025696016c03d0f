"""`sae report DIR`: one self-contained HTML report of a saved fit, for people as well as for
the analyst.

From the top: a plain-language summary generated from the results (`sae.plain_language`), a
"how to read this" box (intervals, flags, hatching, gap labels), the maps with alt text that says
what they show, tables in words and publication rounding (`sae.publication`) with place names,
the covariates as rate ratios, the methods in words, diagnostics with figures (hyperparameter
traces and rank plots, posterior predictive checks by group) and data notes. `sae report DIR
--place ID` writes a printable one-page profile of a place (`sae.profiles`).

No external scripts, styles or fonts; every label from the data is HTML-escaped; text colours
have a contrast ratio of at least 4.5 against the background (WCAG 2.1 AA).
"""

from __future__ import annotations

import base64
import io
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd

from sae import publication
from sae.fit_maps import area_names, latest_rows, write_maps
from sae.plain_language import summary_sentences
from sae.reliability import rules_in_words
from sae.staging import staged_file
from sae.tables import shown_prefix

TEXT, MUTED, BACKGROUND = "#222222", "#555555", "#ffffff"
STYLE = f"""body{{font-family:Georgia,serif;max-width:62rem;margin:2rem auto;padding:0 1rem;color:{TEXT};background:{BACKGROUND}}}
table{{border-collapse:collapse;font-size:.85rem;margin:1rem 0}}td,th{{border:1px solid #bbb;padding:.25rem .5rem}}
td.n{{text-align:right;font-variant-numeric:tabular-nums}}th{{background:#eee;text-align:left}}caption{{text-align:left;font-weight:bold;padding:.3rem 0}}
img{{max-width:100%}}.note{{color:{MUTED};font-size:.9rem}}.summary li{{margin:.4rem 0}}
.howto{{border:2px solid #4d4d4d;padding:.5rem 1rem;margin:1.5rem 0;background:#f7f7f7}}
@media print{{body{{max-width:none;margin:0}}.howto{{break-inside:avoid}}img{{max-height:45vh}}h2{{break-after:avoid}}}}"""
PRIOR_TEXT = {
    "pc": "penalised-complexity priors (Simpson et al. 2017): P(σ > 1) = 0.01 and P(ρ < 0.5) = 2/3",
    "morris2019": "the priors of Morris et al. (2019): β ~ N(0, 1), σ ~ N⁺(0, 1), ρ ~ Beta(½, ½)",
}
GROUP_TEXT = {
    "none": "no group-specific deviations",
    "iid": "independent group-by-area deviations c_ig ~ N(0, σ_g²)",
    "bym2": "a BYM2 field for each group",
    "mcar": (
        "BYM2 fields for the groups that share one ρ and are correlated across groups "
        "(MCAR; Jin, Carlin & Banerjee 2005), with an LKJ(2) prior on the correlations"
    ),
}


def area_effect_text(spec) -> str:
    if spec.model.spatial == "none":
        return "an independent area effect"
    return ("a shared BYM2 area effect (Riebler et al. 2016) with its scaling factor computed per "
            "connected component (Freni-Sterrantino et al. 2018)")  # fmt: skip


def methods(fit) -> str:
    s, g = fit.spec, fit.inputs.graph.summary()
    likelihood = s.family.describe(s.exposure)
    adjusted = (f" Age-adjusted rates are direct standardisations of the posterior stratum rates by "
                f"'{s.output.age_stratum}' to the 2000 U.S. standard population (Anderson & Rosenberg 1998)."
                if s.output.age_stratum else "")  # fmt: skip
    adjusted += strata_text(s) + censoring_text(fit) + unknown_group_text(fit) + time_text(fit)
    return (
        f"The data were modelled as {likelihood}. The linear predictor of each area, group and stratum "
        f"is the sum of an intercept, group and stratum effects, covariates "
        f"({', '.join(s.data.covariates) or 'none'}), {area_effect_text(s)}, and "
        f"{GROUP_TEXT[s.model.group_effects]}. Priors: "
        f"{PRIOR_TEXT[s.model.priors]}. The graph has {g['n_areas']} areas and {g['n_edges']} edges "
        f"({s.graph.edges.name if s.graph.edges else s.graph.contiguity + ' contiguity'}). "
        f"{inference_text(fit)}{adjusted} "
        f"Intervals are equal-tailed {s.output.interval:.0%} credible intervals. Gaps are computed draw "
        f"by draw from the same posterior."
    )


def time_text(fit) -> str:
    """The space–time part of the model, and how trends and pooled periods are computed."""
    if not fit.periods:
        return ""
    m, periods = fit.spec.model, fit.periods
    trend = {"none": "no shared trend", "rw1": "a first-order random walk",
             "rw2": "a second-order random walk (around a fixed linear trend)"}[m.trend]  # fmt: skip
    group = {"none": "no group-specific trends", "iid": "independent group × period deviations",
             "rw1": "a first-order random walk per group",
             "rw2": "a second-order random walk per group (around a linear trend per group)"}[
        m.group_trend]  # fmt: skip
    text = (f" The {len(periods)} periods ({periods[0]}–{periods[-1]}) enter through {trend} "
            f"shared by all groups and {group}, each random walk scaled so that its σ means the "
            "same whatever the number of periods (Sørbye & Rue 2014)")  # fmt: skip
    if m.interaction == "iid":
        text += (", and independent area × period deviations (the type I interaction of "
                 "Knorr-Held 2000)")  # fmt: skip
    return text + (". Changes over time (trends, gap trends, P(narrowing)) and pooled periods "
                   "are computed draw by draw from the same posterior, so they carry the "
                   "correlation between periods.")  # fmt: skip


def censoring_text(fit) -> str:
    """How many counts were known only as ranges, and how they entered the model."""
    rows = fit.design.rows
    censored = int(rows.censored.sum())
    if not censored:
        return ""
    ranges = sorted({(int(lo), int(hi)) for lo, hi in
                     zip(rows.response[rows.censored], rows.upper[rows.censored], strict=True)})  # fmt: skip
    shown = ", ".join(f"{lo}–{hi}" for lo, hi in ranges[:3]) + (", …" if len(ranges) > 3 else "")
    return (f" {censored} of the {len(rows.response)} counts were suppressed in the data "
            f"(known only to lie in {shown}); each entered the likelihood as the probability of "
            "its range, so the estimates use what the range says and no more, and every cell with "
            "such a count says so in its flag's reason.")  # fmt: skip


def unknown_group_text(fit) -> str:
    """The events without a recorded group, and the assumption under which they were shared."""
    unknown = fit.design.unknown
    if unknown is None:
        return ""
    total, known = int(unknown.count.sum()), int(fit.design.rows.response.sum())
    text = (f" {total:,} events had no recorded {fit.spec.data.group} ({total / (total + known):.0%} "
            "of all events). They were shared out among the groups in proportion to each group's "
            "modelled expected events in the same area and stratum")  # fmt: skip
    odds = fit.spec.model.unknown_group_odds
    if odds is not None:
        return text + (f", with the events of {odds.group!r} taken to lack their group at "
                       f"{odds.odds:g} times the odds of the other groups': a sensitivity analysis "
                       "of the usual assumption that recording does not depend on the group.")  # fmt: skip
    return text + (", which assumes that whether the group is recorded does not depend on the "
                   "group within an area and stratum. That assumption often fails (some groups are "
                   "misclassified or unrecorded more often), so read the gaps of places with many "
                   "such events with care; [model] unknown_group_odds shows how far they move.")  # fmt: skip


def strata_text(s) -> str:
    """Which stratum effects are shared by the groups, and what that means for a gap."""
    if not (s.data.strata and s.data.group):
        return ""
    by_group = [k for k in s.data.strata if k in s.model.strata_by_group]
    shared = [k for k in s.data.strata if k not in by_group]
    text = ""
    if by_group:
        text += (f" The effects of {', '.join(by_group)} are estimated for each group separately "
                 "(group × stratum interactions), so an age-adjusted gap standardises gaps that "
                 "may differ from one band to the next.")  # fmt: skip
    if shared:
        text += (f" The stratum effects ({', '.join(shared)}) are shared by every group "
                 "(no group × stratum interaction): within a place every such stratum has the same "
                 "rate ratio between groups, so a gap standardised over it is the model's common "
                 "ratio, not a standardisation of stratum-specific gaps.")  # fmt: skip
    return text


def inference_text(fit) -> str:
    s, d = fit.spec, fit.diagnostics
    if d.method == "laplace":
        return (
            "The posterior was computed by a sparse Laplace approximation of the latent Gaussian "
            "field (Rue, Martino & Chopin 2009), integrated over the hyperparameters by importance "
            f"sampling at {d.theta_points} points (Pareto k̂ {d.theta_pareto_k:.2f}); {d.draws} "
            f"draws, seed {s.sampler.seed}. The exact posterior was checked against the "
            f"approximation by Pareto-smoothed importance sampling (Vehtari et al. 2024) and "
            f"corrected {d.correction}ly (joint k̂ {d.latent_pareto_k:.2f}); {d.areas_off or 0} "
            "area(s) where the correction is unreliable have their numbers flagged."
        )
    return (
        f"The posterior was sampled with {s.sampler.backend} (NUTS), {d.chains} chains of {d.draws} "
        f"draws after {s.sampler.tune} tuning steps, seed {s.sampler.seed}; max R-hat "
        f"{d.max_rhat:.3f}, min bulk ESS {d.min_ess_bulk:.0f}, {d.divergences} divergences "
        "(Vehtari et al. 2021)."
    )


def table_html(frame: pd.DataFrame, caption: str = "") -> str:
    """An HTML table with column headers and a caption; numbers right-aligned, each column with
    the decimals its values were rounded to (`sae.publication`)."""
    head = "".join(f'<th scope="col">{escape(str(c))}</th>' for c in frame.columns)
    digits = {c: column_digits(frame[c]) for c in frame.columns}
    rows = "".join(
        "<tr>" + "".join(cell_html(v, digits[c]) for c, v in zip(frame.columns, row, strict=True))
        + "</tr>"
        for row in frame.itertuples(index=False)
    )  # fmt: skip
    title = f"<caption>{escape(caption)}</caption>" if caption else ""
    return f"<table>{title}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def column_digits(values: pd.Series) -> int | None:
    """The decimals most of a numeric column's values need (None for text): the commonest count
    among values that need any (so 1.25 and 1 print as 1.25 and 1.00), the larger on a tie."""
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return None
    finite = values[np.isfinite(values.astype(float))].astype(float)
    needed = [next((k for k in range(publication.MAX_DIGITS + 1) if round(v, k) == v),
                   publication.MAX_DIGITS) for v in finite]  # fmt: skip
    decimal = pd.Series([k for k in needed if k > 0], dtype=int)
    return int(decimal.mode().max()) if len(decimal) else 0


def cell_html(value, digits: int | None) -> str:
    if digits is None or isinstance(value, bool | np.bool_):
        return f"<td>{escape(str(value))}</td>"
    return f'<td class="n">{escape(publication.shown(float(value), digits))}</td>'


def image_html(path: Path, alt: str) -> str:
    return png_html(path.read_bytes(), alt)


def png_html(data: bytes, alt: str) -> str:
    encoded = base64.b64encode(data).decode()
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{encoded}">'


def figure_html(fig, alt: str) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return png_html(buffer.getvalue(), alt)


def data_notes(fit, estimates: pd.DataFrame, names: dict) -> str:
    g = fit.inputs.graph.summary()
    label = lambda a: escape(names.get(a, a))  # noqa: E731
    no_data = estimates[~estimates["has_data"]]
    unreliable = estimates[estimates["flag"] == "unreliable"]
    items = [
        f"Islands (areas with no neighbours): {', '.join(label(a) for a in g['islands']) or 'none'}.",
        f"Links added to connect islands: {', '.join(escape(' – '.join(p)) for p in g['added_edges']) or 'none'}.",
        f"Cells without data ({len(no_data)}): "
        + (", ".join(f"{label(a)} / {escape(gr)}" for a, gr in zip(no_data['area'], no_data['group'], strict=True)) or "none") + ".",
        f"Flags: {', '.join(f'{n} {escape(k)}' for k, n in estimates['flag'].value_counts().items())}. "
        f"Unreliable cells: " + (", ".join(f"{label(a)} / {escape(gr)}" for a, gr in zip(unreliable['area'], unreliable['group'], strict=True)) or "none") + ".",
    ]  # fmt: skip
    return "<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>"


def write_report(fit, directory: Path) -> Path:
    """Write `directory/report.html` (maps are drawn into `directory/maps/` if missing)."""
    maps_dir = directory / "maps"
    if not (maps_dir / "estimates.png").is_file() and fit.inputs.areas is not None:
        write_maps(fit, maps_dir)
    names = area_names(fit)
    estimates = fit.estimates()
    parts = [f"<header><h1>{escape(fit.spec.title)}</h1>"
             f'<p class="note">{escape(basis_line(fit))}</p></header>',
             "<h2>Summary</h2><ul class=\"summary\">"
             + "".join(f"<li>{escape(s)}</li>" for s in summary_sentences(fit)) + "</ul>",
             how_to_read(fit)]  # fmt: skip
    if (maps_dir / "estimates.png").is_file():
        parts.append("<h2>Estimates</h2>"
                     + image_html(maps_dir / "estimates.png", estimates_alt(fit)))  # fmt: skip
    if len(fit.design.groups) > 1:
        parts += gap_sections(fit, maps_dir)
    if fit.periods:
        parts += time_sections(fit, maps_dir, names)
    if len(fit.design.terms):
        parts.append("<h2>Covariates and strata</h2>" + table_html(
            publication.covariates_for_people(fit), covariates_caption(fit)))  # fmt: skip
    parts.append(f"<h2>Methods</h2><p>{escape(methods(fit))}</p>")
    parts += diagnostics_sections(fit)
    parts.append("<h2>Data notes</h2>" + data_notes(fit, estimates, names))
    parts.append(
        f'<p class="note">Reliability rules: {escape(rules_in_words(fit.spec.flags, fit.spec.proportion_scale is not None))} '
        f"Units: {escape(fit.spec.unit_label)}.</p>"
    )
    html = page(fit.spec.title, "".join(parts))
    path = directory / "report.html"
    with staged_file(path) as temporary:
        temporary.write_text(html, encoding="utf-8")
    return path


def page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
            f'</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>')  # fmt: skip


def basis_line(fit) -> str:
    rate = "Age-adjusted rates (2000 U.S. standard)" if fit.spec.output.age_stratum else "Rates"
    when = f", {fit.periods[0]}–{fit.periods[-1]}" if fit.periods else ""
    return f"{rate} {fit.spec.unit_label}{when}; every number with its {fit.spec.output.interval:.0%} interval and a reliability flag."


def how_to_read(fit) -> str:
    """The box that explains intervals, flags, hatching and the gap labels in words."""
    s, interval = fit.spec, fit.spec.output.interval
    items = [
        f"Every rate comes with a {interval:.0%} interval: under the model, the true rate lies in "
        f"it with {interval:.0%} probability. A wide interval means the place has little data.",
        "The model borrows strength from neighbouring places and from the other groups, so a "
        "small place's rate is pulled towards what is typical nearby. Each rate's flag says how "
        "much it rests on the place's own data:",
        "reliable: precise enough to report; caution: report with care; model-driven: the "
        f"place's own data carry less than {s.flags.min_data_share:.0%} of what the number says, "
        "so it mostly reflects the model and the neighbours; unreliable: do not report it as a "
        "measured rate.",
        "On the maps, hatching (////) marks unreliable rates, backward hatching (\\\\) "
        "model-driven ones, dots rates that need caution, and grey places without data.",
        f"A gap between two groups is clear when the {interval:.0%} interval of their rate ratio "
        f"excludes 1 (no difference); likely when the probability that one rate is higher is at "
        f"least {s.flags.gap_possible:.0%}; uncertain otherwise. A rate ratio of 1.25 means the "
        "rate is 25% higher than the reference group's.",
    ]
    if fit.spec.output.age_stratum:
        items.append("Age-adjusted rates are what the rates would be if every group and place "
                     "had the same age mix (the 2000 U.S. standard population), so that they "
                     "can be compared.")  # fmt: skip
    return ('<aside class="howto" aria-labelledby="howto"><h2 id="howto">How to read this report'
            "</h2><ul>" + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul></aside>")  # fmt: skip


def estimates_alt(fit) -> str:
    """Alt text of the estimates map: what is mapped, the range, and where it is highest."""
    table = latest_rows(fit.estimates(), fit)
    prefix = shown_prefix(table)
    shown = table[table["has_data"]]
    top = shown.nlargest(3, prefix + "mean")
    names = area_names(fit)
    highest = "; ".join(f"{names.get(r.area, r.area)} ({r.group}, {r[prefix + 'mean']:,.1f}, "
                        f"{r[prefix + 'lower']:,.1f} to {r[prefix + 'upper']:,.1f}, "
                        f"{r[prefix + 'flag']})" for _, r in top.iterrows())  # fmt: skip
    basis = "age-adjusted " if prefix else ""
    return (f"Maps of {basis}rates {fit.spec.unit_label}, one per group "
            f"({', '.join(map(str, fit.design.groups))}), {fit.inputs.graph.n_areas} places in "
            f"5 colour classes from {shown[prefix + 'mean'].min():,.1f} to "
            f"{shown[prefix + 'mean'].max():,.1f}; darker is higher; hatched places are unreliable "
            f"or model-driven. Highest: {highest}.")  # fmt: skip


def gaps_alt(fit, gaps: pd.DataFrame) -> str:
    counts = gaps["flag"].value_counts()
    return (f"Maps of the rate ratio against the {gaps['reference'].iloc[0]} group and of the "
            f"probability that the rate is higher, for each group; {counts.get('clear', 0)} "
            f"clear, {counts.get('likely', 0)} likely and {counts.get('uncertain', 0)} "
            "uncertain gaps.")  # fmt: skip


def gap_sections(fit, maps_dir: Path) -> list[str]:
    """Map-wide rates by group, the gaps map, and the gaps with the most excess events."""
    overall = latest_rows(fit.overall(), fit)
    prefix = shown_prefix(overall)
    interval, unit = fit.spec.output.interval, fit.spec.unit_label
    digits = publication.size_digits(overall[prefix + "mean"])
    rate = ("age-adjusted rate " if prefix else "rate ") + unit
    groups = pd.DataFrame({
        "group": overall["group"],
        rate: overall[prefix + "mean"].round(digits),
        f"{interval:.0%} interval, lower": overall[prefix + "lower"].round(digits),
        f"{interval:.0%} interval, upper": overall[prefix + "upper"].round(digits),
        f"rate ratio to {overall['reference'].iloc[0]}": publication.side_safe(overall["ratio_median"], 2),
        "ratio interval, lower": publication.side_safe(overall["ratio_lower"], 2),
        "ratio interval, upper": publication.side_safe(overall["ratio_upper"], 2),
    })  # fmt: skip
    when = f", {fit.periods[-1]}" if fit.periods else ""
    parts = ["<h2>Rates by group, all places together</h2>"
             + table_html(groups, f"Each group's rate over all places{when}")]  # fmt: skip
    gaps = latest_rows(fit.gaps(), fit)
    if (maps_dir / "gaps.png").is_file():
        parts.append("<h2>Gaps</h2>" + image_html(maps_dir / "gaps.png", gaps_alt(fit, gaps)))
    people = latest_rows(publication.gaps_for_people(fit), fit).drop(
        columns="period", errors="ignore"
    )
    ranked = people.loc[gaps["excess"].sort_values(ascending=False).index].head(15)
    parts.append(
        f"<h3>The gaps with the most excess events{escape(when)}</h3>"
        f'<p class="note">Ranked by excess events: how many more events the group had than it '
        f"would have had at the {escape(str(gaps['reference'].iloc[0]))} group's rate "
        f"({escape(gaps['rate_basis'].iloc[0])} rates). P(gap ≥ "
        f"{fit.spec.flags.gap_meaningful_ratio:g}×) is the probability that the gap is at least "
        "that large, a size that matters in practice ([flags] gap_meaningful_ratio).</p>"
        + table_html(ranked.drop(columns=["why"]), "Largest gaps by excess events")
    )
    return parts


def covariates_caption(fit) -> str:
    if fit.spec.model.family == "gaussian":
        return "Coefficients on the scale of the estimates, posterior median and interval"
    return ("Rate ratio per unit of each covariate (for a category: against its baseline), "
            "posterior median and interval; 1 means no association")  # fmt: skip


def diagnostics_sections(fit) -> list[str]:
    """The diagnostics table, the hyperparameters' traces and rank plots, and the posterior
    predictive checks by group (count models)."""
    from sae.checks import posterior_predictive
    from sae.diagnostic_figures import plot_hyperparameters, plot_predictive_checks

    parts = [
        "<h2>Diagnostics</h2>"
        + table_html(diagnostics_table(fit.diagnostics), "Quality of the draws")
    ]
    parts.append(figure_html(plot_hyperparameters(fit.idata.posterior),
                             "Trace and rank plots of each hyperparameter's draws, by chain"))  # fmt: skip
    if fit.spec.model.family != "gaussian":
        checks = posterior_predictive(fit)
        parts.append(
            '<h3>Posterior predictive checks</h3><p class="note">Observed statistics against '
            "data replicated from the model, by group; a dot outside its bar (p near 0 or 1) "
            "means the model does not reproduce that feature of the data.</p>"
            + figure_html(
                plot_predictive_checks(checks),
                "Observed dispersion, zero counts and largest count against their "
                "replicated 95% ranges, by group",
            )  # fmt: skip
        )
    return parts


TIME_WORDS = {"rate": "rate", "reference_rate": "reference rate", "diff_mean": "rate difference",
              "ratio_median": "rate ratio", "ratio_lower": "ratio interval, lower",
              "ratio_upper": "ratio interval, upper", "excess": "excess events",
              "par": "share of events in excess (PAR)", "flag": "gap",
              "first_period": "from", "last_period": "to",
              "cumulative_excess": "cumulative excess events",
              "cumulative_excess_lower": "interval, lower",
              "cumulative_excess_upper": "interval, upper", "first_ratio": "first rate ratio",
              "last_ratio": "last rate ratio", "ratio_change_median": "change in rate ratio",
              "ratio_change_lower": "change, lower", "ratio_change_upper": "change, upper",
              "prob_narrowing": "P(narrowing)", "name": "place"}  # fmt: skip


def for_people(table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Columns in words, each rounded to the digits its size calls for (ratios to 2)."""
    shown = table[columns].copy()
    for column in columns:
        if pd.api.types.is_float_dtype(shown[column]):
            digits = 2 if "ratio" in column or column.startswith("prob") or column == "par" else (
                publication.size_digits(shown[column]))  # fmt: skip
            shown[column] = publication.side_safe(shown[column], digits)
    return shown.rename(columns=TIME_WORDS)


def time_sections(fit, maps_dir: Path, names: dict) -> list[str]:
    """Maps by period, the map-wide inequality over time, the gap trends and a few places'
    charts."""
    parts = ["<h2>Over time</h2>"]
    if (maps_dir / "estimates_by_period.png").is_file():
        parts.append(image_html(maps_dir / "estimates_by_period.png",
                                "Maps of the estimates for several periods, one row per group, "
                                "on one colour scale"))  # fmt: skip
    if len(fit.design.groups) > 1:
        from sae.inequality import ALL_AREAS

        measures = fit.inequality()
        whole = measures[measures["area"] == ALL_AREAS]
        columns = ["group", "reference", "period", "rate", "reference_rate", "diff_mean",
                   "ratio_median", "ratio_lower", "ratio_upper", "excess", "par", "flag"]  # fmt: skip
        parts.append("<h3>All areas: inequality by period</h3>"
                     + table_html(for_people(whole, columns), "Map-wide gap in each period"))  # fmt: skip
        cumulative = fit.cumulative_excess()
        total = cumulative[cumulative["area"] == ALL_AREAS]
        columns = ["group", "reference", "first_period", "last_period", "cumulative_excess",
                   "cumulative_excess_lower", "cumulative_excess_upper", "flag"]  # fmt: skip
        parts.append("<h3>Cumulative excess events, all areas</h3>"
                     + table_html(for_people(total, columns), "Excess events over all periods"))  # fmt: skip
        trend = fit.gap_trends()
        trend = trend.assign(name=[names.get(a, a) for a in trend["area"]])
        top = trend.sort_values("prob_narrowing", ascending=False).head(10)
        columns = ["name", "group", "reference", "first_ratio", "last_ratio", "ratio_change_median",
                   "ratio_change_lower", "ratio_change_upper", "prob_narrowing", "flag"]  # fmt: skip
        parts.append("<h3>Where the gap most probably narrowed (first to last period)</h3>"
                     + table_html(for_people(top, columns), "Ranked by P(narrowing)"))  # fmt: skip
    charts = (
        sorted((maps_dir / "trends").glob("*.png"))[:3] if (maps_dir / "trends").is_dir() else []
    )
    for chart in charts:
        place = names.get(chart.stem, chart.stem)
        parts.append(image_html(chart, f"Each group's rate over time in {place}, with its "
                                       "interval band, and the rate ratio below"))  # fmt: skip
    return parts


def diagnostics_table(d) -> pd.DataFrame:
    if d.method == "laplace":
        rows = [("method", "Laplace"), ("draws", str(d.draws)),
                ("hyperparameter points", str(d.theta_points)),
                ("integration Pareto k̂", f"{d.theta_pareto_k:.2f}"),
                ("latent approximation Pareto k̂ (joint)", f"{d.latent_pareto_k:.2f}"),
                ("correction", str(d.correction)),
                ("areas with k̂ > 0.7", str(d.areas_off))]  # fmt: skip
    else:
        rows = [("max R-hat", f"{d.max_rhat:.3f}"), ("min bulk ESS", f"{d.min_ess_bulk:.0f}"),
                ("min tail ESS", f"{d.min_ess_tail:.0f}"), ("divergences", str(d.divergences))]  # fmt: skip
    rows += [
        (f"{k}: " + " / ".join(v), " / ".join(f"{x:.3g}" for x in v.values()))
        for k, v in d.hyperparameters.items()
    ]
    return pd.DataFrame(rows, columns=["quantity", "value"])
