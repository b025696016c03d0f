"""`sae report DIR`: one self-contained HTML report of a saved fit.

The spec in words, a methods paragraph generated from it, the maps (embedded as PNG), the largest
gaps with their flags, diagnostics, and data notes (islands, cells without data, flagged cells).
No external scripts, styles or fonts; every label from the data is HTML-escaped.
"""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path

import pandas as pd

from sae.fit_maps import area_names, write_maps
from sae.reliability import rules_in_words
from sae.staging import staged_file

STYLE = """body{font-family:Georgia,serif;max-width:62rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;font-size:.85rem;margin:1rem 0}td,th{border:1px solid #bbb;padding:.25rem .5rem}
th{background:#eee}img{max-width:100%}.note{color:#555;font-size:.9rem}"""
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


def table_html(frame: pd.DataFrame, digits: int = 2) -> str:
    head = "".join(f"<th>{escape(str(c))}</th>" for c in frame.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{escape(cell(v, digits))}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f"<table><tr>{head}</tr>{rows}</table>"


def cell(value, digits: int) -> str:
    return f"{value:,.{digits}f}" if isinstance(value, float) else str(value)


def image_html(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">'


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
    parts = [f"<h1>{escape(fit.spec.title)}</h1>", f"<h2>Methods</h2><p>{escape(methods(fit))}</p>"]
    if (maps_dir / "estimates.png").is_file():
        parts.append(
            "<h2>Estimates</h2>" + image_html(maps_dir / "estimates.png", "map of estimates")
        )
    if len(fit.design.groups) > 1:
        parts += gap_sections(fit, maps_dir, names)
    if fit.periods:
        parts += time_sections(fit, maps_dir, names)
    parts.append("<h2>Diagnostics</h2>" + table_html(diagnostics_table(fit.diagnostics), 3))
    parts.append("<h2>Data notes</h2>" + data_notes(fit, estimates, names))
    parts.append(
        f'<p class="note">Reliability rules: {escape(rules_in_words(fit.spec.flags, fit.spec.proportion_scale is not None))} '
        f"Units: {escape(fit.spec.unit_label)}.</p>"
    )
    html = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(fit.spec.title)}'
            f"</title><style>{STYLE}</style></head><body>{''.join(parts)}</body></html>")  # fmt: skip
    path = directory / "report.html"
    with staged_file(path) as temporary:
        temporary.write_text(html, encoding="utf-8")
    return path


def latest(table: pd.DataFrame, fit) -> pd.DataFrame:
    """A space–time fit's rows of its latest period (the whole table otherwise)."""
    if not fit.periods:
        return table
    return table[table["period"] == fit.periods[-1]].reset_index(drop=True)


def gap_sections(fit, maps_dir: Path, names: dict) -> list[str]:
    gaps = latest(fit.gaps(), fit)
    overall = latest(fit.overall(), fit)
    crude = latest(fit.unit_table(fit._with_period("group")), fit)
    statewide = pd.DataFrame({
        "group": overall["group"], "rate (own population mix)": crude["mean"].round(1),
        "adjusted rate" if fit.spec.output.age_stratum else "rate": overall["mean"].round(1),
        "lower": overall["lower"].round(1), "upper": overall["upper"].round(1),
        f"ratio to {overall['reference'].iloc[0]}": overall["ratio_median"].round(3),
        "ratio lower": overall["ratio_lower"].round(3), "ratio upper": overall["ratio_upper"].round(3),
    })  # fmt: skip
    top = gaps.assign(name=[names.get(area, area) for area in gaps["area"]])
    top = top.reindex(top["ratio_median"].sub(1).abs().sort_values(ascending=False).index).head(15)
    columns = ["name", "area", "group", "reference", "ratio_median", "ratio_lower", "ratio_upper",
               "prob_higher", "excess", "flag", "flag_reason"]  # fmt: skip
    parts = ["<h2>Map-wide rates by group</h2>" + table_html(statewide, 3)]
    if (maps_dir / "gaps.png").is_file():
        parts.append("<h2>Gaps</h2>" + image_html(maps_dir / "gaps.png", "map of gaps"))
    when = f", {fit.periods[-1]}" if fit.periods else ""
    parts.append(
        f"<h3>Largest gaps ({escape(gaps['rate_basis'].iloc[0])} rates{when})</h3>"
        + table_html(top[columns], 2)
    )
    return parts


def time_sections(fit, maps_dir: Path, names: dict) -> list[str]:
    """Maps by period, the map-wide inequality over time, the gap trends and a few places'
    charts."""
    parts = ["<h2>Over time</h2>"]
    if (maps_dir / "estimates_by_period.png").is_file():
        parts.append(
            image_html(maps_dir / "estimates_by_period.png", "maps of estimates by period")
        )
    if len(fit.design.groups) > 1:
        from sae.inequality import ALL_AREAS

        measures = fit.inequality()
        whole = measures[measures["area"] == ALL_AREAS]
        columns = ["group", "reference", "period", "rate", "reference_rate", "diff_mean",
                   "ratio_median", "ratio_lower", "ratio_upper", "excess", "par", "flag"]  # fmt: skip
        parts.append("<h3>All areas: inequality by period</h3>" + table_html(whole[columns], 2))
        cumulative = fit.cumulative_excess()
        total = cumulative[cumulative["area"] == ALL_AREAS]
        parts.append("<h3>Cumulative excess events, all areas</h3>" + table_html(total[
            ["group", "reference", "first_period", "last_period", "cumulative_excess",
             "cumulative_excess_lower", "cumulative_excess_upper", "flag"]], 0))  # fmt: skip
        trend = fit.gap_trends()
        trend = trend.assign(name=[names.get(a, a) for a in trend["area"]])
        top = trend.sort_values("prob_narrowing", ascending=False)
        columns = ["name", "group", "reference", "first_ratio", "last_ratio", "ratio_change_median",
                   "ratio_change_lower", "ratio_change_upper", "prob_narrowing", "flag"]  # fmt: skip
        parts.append("<h3>Where the gap most probably narrowed (first to last period)</h3>"
                     + table_html(top[columns].head(10), 2))  # fmt: skip
    charts = (
        sorted((maps_dir / "trends").glob("*.png"))[:3] if (maps_dir / "trends").is_dir() else []
    )
    for chart in charts:
        parts.append(image_html(chart, f"rates over time in {chart.stem}"))
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
