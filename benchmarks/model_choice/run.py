"""Which `group_effects` for the Pennsylvania race × county model? PSIS-LOO and checks for each.

    .venv/bin/python benchmarks/model_choice/run.py

Fits models/pennsylvania_lung_race.toml with group_effects = none, iid and bym2 (same seed and
draws), compares them with ArviZ's LOO comparison, and records the posterior predictive p-values,
the residual Moran's I and the sampling time. Writes RESULTS.md here.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import arviz as az
import pandas as pd

import sae

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def main() -> None:
    base = sae.load_spec(ROOT / "models" / "pennsylvania_lung_race.toml")
    loos, rows = {}, []
    for choice in ("none", "iid", "bym2"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = sae.fit(base.replace(model={"group_effects": choice}, sampler={"method": "nuts"}),
                          progress=False)  # fmt: skip
        result = fit.check()
        loos[choice] = result["loo"]
        ppc = result["posterior_predictive"].set_index(["statistic", "rows"])["p_value"]
        rows.append({"group_effects": choice, "elpd_loo": round(result["loo"].elpd_loo, 1),
                     "p_loo": round(result["loo"].p_loo, 1),
                     "pareto_k_over_0.7": int((result["loo"].pareto_k > 0.7).sum()),
                     "ppc_p_dispersion": ppc[("dispersion (Pearson χ²)", "all rows")],
                     "ppc_p_non_white": ppc[("total", "group non-white")],
                     "residual_morans_i": round(result["residual_morans_i"]["morans_i"], 3),
                     "max_rhat": round(fit.diagnostics.max_rhat, 4),
                     "sample_s": round(fit.seconds["sample"], 1)})  # fmt: skip
        print(rows[-1], flush=True)
    comparison = az.compare(loos).round(2)[["rank", "elpd_loo", "elpd_diff", "dse", "weight"]]
    table = pd.DataFrame(rows)
    (HERE / "RESULTS.md").write_text(
        "# Choosing group_effects on the Pennsylvania lung cancer data\n\n"
        "Produced by `run.py` (4 chains × 1000 draws, seed 1, the main job's spec otherwise).\n\n"
        + markdown(table)
        + "\n\nLOO comparison (ArviZ `compare`; `elpd_diff` against the best, `dse` its SE):\n\n"
        + markdown(comparison.reset_index(names="group_effects"))
        + "\n"
    )


def markdown(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(map(str, frame.columns)) + " |\n|" + "---|" * len(frame.columns)
    return (
        header
        + "\n"
        + "\n".join(
            "| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)
        )
    )


if __name__ == "__main__":
    main()
