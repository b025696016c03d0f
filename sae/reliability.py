"""Reliability flags for every number sae reports, computed from the posterior.

Each estimate gets ``flag`` ∈ {reliable, caution, unreliable} and a ``flag_reason`` in words. Rules
(thresholds live in `sae.spec.FlagSpec` and can be changed in a spec's [flags] table):

- Relative standard error, RSE = sd / mean. ≥ 0.30 is *unreliable*: the NCHS standard for
  rates and counts (NCHS Data Presentation Standards; Klein et al. 2002, Healthy People 2010
  Statistical Notes 24). 0.20–0.30 is *caution*: sae's default, following the common practice of
  marking estimates with RSE above 20% (e.g. NCHS Health E-Stats).
- Relative width of the interval, (upper − lower) / mean > 1.6 is *unreliable*: the NCHS
  criterion for rates (Parker et al. 2017, NCHS Data Presentation Standards for Proportions,
  Vital Health Stat 2(175), and the 2023 standard for rates).
- Data support: a cell with no exposure has no data; its estimate comes from the model alone
  (*unreliable*). Fewer than 20 events is *caution*: NCHS does not publish direct rates on fewer
  than 20 events, so such a cell leans on pooled information.
- Convergence: a number whose own draws have R-hat above `max_rhat` or bulk ESS below `min_ess`,
  or any divergent transition in the run, is *unreliable*.

Gaps between groups get ``clear`` when P(θ_g > θ_r) ≥ 0.95 or ≤ 0.05, ``possible`` when ≥ 0.80 or
≤ 0.20, ``uncertain`` otherwise, and ``unreliable`` whenever either rate is unreliable. The 0.95
cut is the usual posterior-probability analogue of a two-sided 10% test; 0.80 is the "likely"
band used in disease-mapping exceedance maps (Richardson et al. 2004, Int. J. Epidemiol. 33:1-7).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sae.diagnostics import PARETO_K_LIMIT
from sae.spec import FlagSpec

RELIABLE, CAUTION, UNRELIABLE = "reliable", "caution", "unreliable"
SEVERITY = {RELIABLE: 0, CAUTION: 1, UNRELIABLE: 2}


def flag_estimates(table: pd.DataFrame, flags: FlagSpec, divergences: int) -> pd.DataFrame:
    """Flags for a table with mean, sd, lower, upper, rhat, ess_bulk, observed and has_data.

    Returns a frame with ``flag`` and ``flag_reason``, aligned with `table`.
    """
    rse = table["sd"] / table["mean"]
    width = (table["upper"] - table["lower"]) / table["mean"]
    rules = [
        (
            UNRELIABLE,
            ~table["has_data"],
            lambda r: "no data in this cell: estimate from the model and neighbours alone",
        ),
        (
            UNRELIABLE,
            rse >= flags.rse_unreliable,
            lambda r: f"RSE {r.rse:.1%} ≥ {flags.rse_unreliable:.0%}",
        ),
        (
            UNRELIABLE,
            width > flags.relative_width_unreliable,
            lambda r: (
                f"interval width {r.width:.0%} of the estimate > {flags.relative_width_unreliable:.0%}"
            ),
        ),
        (
            UNRELIABLE,
            (table["rhat"] > flags.max_rhat) | (table["ess_bulk"] < flags.min_ess),
            lambda r: f"not converged (R-hat {r.rhat:.3f}, bulk ESS {r.ess_bulk:.0f})",
        ),
        (
            UNRELIABLE,
            pd.Series(divergences > 0, index=table.index),
            lambda r: f"{divergences} divergent transitions in the run",
        ),
        (
            UNRELIABLE,
            table.get("pareto_k", pd.Series(np.nan, index=table.index)) > PARETO_K_LIMIT,
            lambda r: (
                f"the Laplace approximation is off here (Pareto k̂ {r.pareto_k:.2f} > "
                f'{PARETO_K_LIMIT}): check with method = "nuts"'
            ),
        ),
        (
            CAUTION,
            (rse >= flags.rse_caution) & (rse < flags.rse_unreliable),
            lambda r: f"RSE {r.rse:.1%} ≥ {flags.rse_caution:.0%}",
        ),
        (
            CAUTION,
            table["has_data"] & (table["observed"] < flags.min_events),
            lambda r: (
                f"{r.observed:.0f} events (< {flags.min_events}): leans on pooled information"
            ),
        ),
    ]
    values = table.assign(rse=rse, width=width)
    flag = pd.Series(RELIABLE, index=table.index)
    reasons: list[list[str]] = [[] for _ in range(len(table))]
    for level, fired, describe in rules:
        fired = fired.fillna(level == UNRELIABLE).to_numpy(bool)
        for position in np.flatnonzero(fired):
            reasons[position].append(describe(values.iloc[position]))
        worse = fired & (flag.map(SEVERITY).to_numpy() < SEVERITY[level])
        flag[worse] = level
    reliable_reason = (
        values.apply(
            lambda r: f"RSE {r.rse:.0%}, interval width {r.width:.0%} of the estimate", axis=1
        )
        if len(values)
        else pd.Series(dtype=str)
    )
    text = [
        "; ".join(found) if found else reliable_reason.iloc[i] for i, found in enumerate(reasons)
    ]
    return pd.DataFrame({"flag": flag, "flag_reason": text}, index=table.index)


CLEAR, POSSIBLE, UNCERTAIN = "clear", "possible", "uncertain"


def flag_gaps(
    prob_higher: pd.Series,
    target_flag: pd.Series,
    reference_flag: pd.Series,
    flags: FlagSpec,
    ratio_defined: pd.Series | None = None,
) -> pd.DataFrame:
    """Gap flags from P(target > reference) and the flags of both rates (aligned Series).

    Where `ratio_defined` is False the reason says why the rate ratio is not reported.
    """
    certainty = np.maximum(prob_higher, 1.0 - prob_higher)
    flag = np.where(
        certainty >= flags.gap_clear,
        CLEAR,
        np.where(certainty >= flags.gap_possible, POSSIBLE, UNCERTAIN),
    )
    direction = np.where(prob_higher >= 0.5, "higher", "lower")
    reason = [f"P({d}) = {c:.2f}" for d, c in zip(direction, certainty, strict=True)]
    unreliable = (target_flag == UNRELIABLE).to_numpy() | (reference_flag == UNRELIABLE).to_numpy()
    for i in np.flatnonzero(unreliable):
        side = "the group's rate" if target_flag.iloc[i] == UNRELIABLE else "the reference rate"
        reason[i] = f"{side} is unreliable; {reason[i]}"
    flag = np.where(unreliable, UNRELIABLE, flag)
    if ratio_defined is not None:
        for i in np.flatnonzero(~ratio_defined.to_numpy()):
            reason[i] += (
                "; no rate ratio: the reference's posterior reaches 0 (read the difference)"
            )
    return pd.DataFrame({"flag": flag, "flag_reason": reason}, index=prob_higher.index)
