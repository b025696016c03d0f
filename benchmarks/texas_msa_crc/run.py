"""Time trends and inequality over time against published results (surveil), and the four MSAs
as areas.

    .venv/bin/python benchmarks/texas_msa_crc/run.py

Data: colorectal cancer, ages 50–79, Texas's four largest MSAs × 3 groups × 1999–2017
(`msa_crc_50_79.csv`, CDC WONDER via the surveil package; provenance in README.md). Published
reference (surveil vignette "Measuring health inequality", `stan_rw` on the counts summed over the
MSAs, Black or African American vs White): cumulative excess cases 1999–2017 3,205 [2979, 3433],
PAR 0.27 [0.25, 0.28], and the yearly table in README.md.

1. The same model in sae, both methods: the counts summed over the MSAs as one place, a
   first-order random walk per group's log rate (`group_trend = "rw1"`, no shared trend, no
   spatial part). sae's priors (PC prior on the walk's σ, N(0, 1) on group effects) are not
   surveil's, so agreement means within a few percent.
2. The four MSAs as areas (four islands, so no spatial smoothing; iid group × area effects, a
   random walk per group, iid area × year deviations): map-wide cumulative excess and PAR.

Writes RESULTS.md; timings are this machine's.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pandas as pd

import sae
from sae.inequality import ALL_AREAS
from sae.spec_file import spec_from_dict

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "common"))
from helpers import markdown  # noqa: E402

HERE = Path(__file__).resolve().parent
BLACK, WHITE = "Black or African American", "White"
PUBLISHED = {"cumulative_excess": (3205, 2979, 3433), "par": (0.27, 0.25, 0.28)}
# the yearly table of the surveil vignette (README.md): rate (Black), RD, PAR, RR, EC
PUBLISHED_YEARS = pd.DataFrame(
    [(1999, 170, 35, 0.20, 1.3, 94), (2000, 166, 30, 0.18, 1.2, 85), (2001, 168, 34, 0.20, 1.3, 102),
     (2002, 169, 39, 0.23, 1.3, 121), (2003, 167, 39, 0.24, 1.3, 130), (2004, 167, 46, 0.28, 1.4, 161),
     (2005, 159, 44, 0.28, 1.4, 161), (2006, 155, 45, 0.29, 1.4, 179), (2007, 153, 44, 0.29, 1.4, 187),
     (2008, 150, 46, 0.31, 1.4, 204), (2009, 144, 45, 0.31, 1.5, 208), (2010, 139, 43, 0.31, 1.4, 209),
     (2011, 131, 37, 0.28, 1.4, 191), (2012, 125, 34, 0.27, 1.4, 184), (2013, 125, 35, 0.28, 1.4, 195),
     (2014, 126, 35, 0.27, 1.4, 204), (2015, 123, 29, 0.24, 1.3, 180), (2016, 122, 33, 0.27, 1.4, 210),
     (2017, 123, 30, 0.25, 1.3, 200)],
    columns=["period", "rate", "rd", "par", "rr", "ec"],
)  # fmt: skip
DATA = {"group": "race", "time": "year", "count": "count", "population": "population"}


def summed_cells() -> pd.DataFrame:
    """The counts summed over the four MSAs: one place, one series per group."""
    raw = pd.read_csv(HERE / "msa_crc_50_79.csv")
    return (
        raw.groupby(["race", "year"], as_index=False)[["count", "population"]]
        .sum()
        .assign(place="four MSAs")
    )


def fit_spec(title: str, area_id: str, model: dict, method: str):
    """A rw1 per group (no shared trend, no spatial part) plus `model`, White the reference."""
    return spec_from_dict({
        "title": title,
        "data": {"area_id": area_id, **DATA},
        "model": {"spatial": "none", "trend": "none", "group_trend": "rw1", **model},
        "output": {"reference_group": WHITE},
        "sampler": {"method": method},
    })  # fmt: skip


def one_series_spec(method: str):
    return fit_spec("Colorectal cancer 50-79, four Texas MSAs summed, 1999-2017", "place",
                    {"group_effects": "none", "interaction": "none"}, method)  # fmt: skip


def areas_spec(method: str):
    return fit_spec("Colorectal cancer 50-79, four Texas MSAs, 1999-2017", "msa",
                    {"group_effects": "iid", "interaction": "iid"}, method)  # fmt: skip


def cumulative(fit) -> pd.Series:
    table = fit.cumulative_excess()
    return table[(table["area"] == ALL_AREAS) & (table["group"] == BLACK)].iloc[0]


def yearly(fit) -> pd.DataFrame:
    table = fit.inequality()
    return table[(table["area"] == ALL_AREAS) & (table["group"] == BLACK)].set_index("period")


def main() -> None:
    rows, years = [], {}
    for label, spec_of, cells in (("one series per group", one_series_spec, summed_cells()),
                                  ("four MSAs as areas", areas_spec,
                                   pd.read_csv(HERE / "msa_crc_50_79.csv"))):  # fmt: skip
        for method in ("laplace", "nuts"):
            start = time.perf_counter()
            fit = sae.fit(spec_of(method), cells=cells, progress=False)
            seconds = time.perf_counter() - start
            c = cumulative(fit)
            rows.append({
                "model": label, "method": method,
                "cumulative excess": f"{c.cumulative_excess:,.0f} [{c.cumulative_excess_lower:,.0f}, "
                                     f"{c.cumulative_excess_upper:,.0f}]",
                "vs published": f"{c.cumulative_excess / PUBLISHED['cumulative_excess'][0] - 1:+.1%}",
                "PAR": f"{c.par:.3f} [{c.par_lower:.3f}, {c.par_upper:.3f}]",
                "draws": fit.diagnostics.summary_line(), "seconds": f"{seconds:.1f}",
            })  # fmt: skip
            years[(label, method)] = yearly(fit)
    table = pd.DataFrame(rows)
    ours = years[("one series per group", "laplace")]
    nuts = years[("one series per group", "nuts")]
    by_year = PUBLISHED_YEARS.assign(
        sae_rate=ours.loc[PUBLISHED_YEARS["period"], "rate"].round(0).to_numpy(),
        sae_rd=ours.loc[PUBLISHED_YEARS["period"], "diff_mean"].round(0).to_numpy(),
        sae_par=ours.loc[PUBLISHED_YEARS["period"], "par"].round(2).to_numpy(),
        sae_rr=ours.loc[PUBLISHED_YEARS["period"], "ratio_median"].round(2).to_numpy(),
        sae_ec=ours.loc[PUBLISHED_YEARS["period"], "excess"].round(0).to_numpy(),
        nuts_ec=nuts.loc[PUBLISHED_YEARS["period"], "excess"].round(0).to_numpy(),
    )
    worst = (by_year["sae_ec"] - by_year["ec"]).abs().max()
    text = f"""# Texas MSAs, colorectal cancer 1999–2017: inequality over time against surveil

Produced by `benchmarks/texas_msa_crc/run.py` (see its docstring). Published (surveil, `stan_rw`,
counts summed over the four MSAs, Black or African American vs White): cumulative excess cases
3,205 [2979, 3433], PAR 0.27 [0.25, 0.28]. sae's priors differ from surveil's.

## Cumulative excess cases and PAR, Black vs White, all areas

{markdown(table)}

## By year (one series per group; sae Laplace, and the excess by NUTS)

Published columns: rate, rd, par, rr, ec (as printed, to the digits shown); sae's beside them.
Largest yearly difference in excess cases (Laplace vs published): {worst:.0f}.

{markdown(by_year)}
"""
    (HERE / "RESULTS.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
