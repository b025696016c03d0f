"""`Fit.summary()`: the model, the data, the quality of the draws, the flags and the gaps, in words."""

from __future__ import annotations

from html import escape

from sae.reliability import FLAGS, GAP_FLAGS

AREA_EFFECTS = {"bym2": "BYM2 area effects", "none": "independent area effects"}
GROUP_EFFECTS = {"none": "no group effects", "iid": "iid group × area effects",
                 "bym2": "a BYM2 field per group",
                 "mcar": "correlated BYM2 fields across groups (MCAR)"}  # fmt: skip


TIME_WORDS = {"rw1": "a first-order random walk", "rw2": "a second-order random walk",
              "iid": "iid deviations"}  # fmt: skip


def model_words(spec) -> str:
    """e.g. "poisson, BYM2 area effects, iid group × area effects, priors pc"."""
    words = (f"{spec.model.family}, {AREA_EFFECTS[spec.model.spatial]}, "
             f"{GROUP_EFFECTS[spec.model.group_effects]}")  # fmt: skip
    return words + time_words(spec) + f", priors {spec.model.priors}"


def time_words(spec) -> str:
    """e.g. ", trend a first-order random walk, group trends …, iid area × period deviations"."""
    if spec.data.time is None:
        return ""
    m = spec.model
    parts = [f"trend {TIME_WORDS.get(m.trend, 'none')}"]
    if m.group_trend != "none":
        parts.append(f"group trends {TIME_WORDS[m.group_trend]}")
    if m.interaction == "iid":
        parts.append("iid area × period deviations")
    return ", " + ", ".join(parts)


def fit_summary(fit) -> str:
    graph = fit.inputs.graph.summary()
    problems = fit.diagnostics.problems(fit.spec.flags)
    estimates = fit.estimates()
    adjusted = "adj_flag" in estimates
    counts = estimates["adj_flag" if adjusted else "flag"].value_counts()
    lines = [
        fit.spec.title,
        f"  model: {model_words(fit.spec)}",
        f"  data: {len(fit.inputs.cells.frame)} rows, {graph['n_areas']} areas, "
        f"{graph['n_edges']} edges, {graph['n_components']} component(s), islands: "
        f"{', '.join(graph['islands']) or 'none'}; groups: {', '.join(fit.design.groups)}",
        f"  {fit.diagnostics.summary_line()}"
        + (f"  NOT TRUSTWORTHY: {'; '.join(problems)}" if problems else ""),
        f"  flags{' (age-adjusted rates)' if adjusted else ''}: "
        + ", ".join(f"{counts.get(k, 0)} {k}" for k in FLAGS),
    ]
    if len(fit.design.groups) > 1:
        lines.append(gap_summary(fit))
    correlations = fit.group_correlations()
    if len(correlations):
        lines.append("  group correlations: " + "; ".join(
            f"{r.group} ~ {r.other_group} {r.median:.2f} [{r.lower:.2f}, {r.upper:.2f}]"
            for r in correlations.itertuples(index=False)))  # fmt: skip
    return "\n".join(lines)


def gap_summary(fit) -> str:
    gaps, overall = fit.gaps(), fit.overall()
    if fit.periods:  # the latest period's map-wide ratios
        overall = overall[overall["period"] == fit.periods[-1]]
    overall = overall.set_index("group")
    counts = gaps["flag"].value_counts()
    reference = fit.reference_group
    ratios = "; ".join(
        f"{g} / {reference} {r.ratio_median:.2f} [{r.ratio_lower:.2f}, {r.ratio_upper:.2f}]"
        for g, r in overall.drop(index=reference).iterrows()
    )
    return (
        f"  gaps ({gaps['rate_basis'].iloc[0]}): "
        + ", ".join(f"{counts.get(k, 0)} {k}" for k in GAP_FLAGS)
        + f"; map-wide {ratios}"
        + (f" in {fit.periods[-1]}" if fit.periods else "")
    )


def fit_card(fit) -> str:
    """A short HTML summary of a fit (Jupyter): the lines of `fit_summary` as a table, every value
    HTML-escaped, with the results folder when there is one."""
    lines = fit_summary(fit).splitlines()
    rows = [line.strip().split(": ", 1) for line in lines[1:]]
    if fit.directory is not None:
        rows.append(["files", str(fit.directory)])
    body = "".join(
        f"<tr><th style='text-align:left'>{escape(r[0])}</th><td style='text-align:left'>"
        f"{escape(r[1] if len(r) > 1 else '')}</td></tr>"
        for r in rows
    )
    return f"<div><b>sae.Fit: {escape(lines[0])}</b><table>{body}</table></div>"
