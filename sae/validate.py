"""`sae validate`: sae against published results, in one table.

Each check compares one number with a published reference and a tolerance: 1e-4 for deterministic
numbers; for MCMC summaries, 3.5 combined Monte Carlo standard errors (the reference's sd/√ESS and
sae's own) plus half a unit in the last digit the reference was published with (−6.61 only says
the mean lies in [−6.615, −6.605]). References and their sources live in `benchmarks/*/` (see each README).

- BYM2 scaling factors (Scotland): 0.4853 whole graph, 0.4504 mainland (Freni-Sterrantino et al.
  2018, via the Stan case study's data files).
- Milk expenditure, Fay–Herriot REML and ML: β, σ²_u, all 43 EBLUPs and MSEs.
- Scotland lip cancer, BYM2 with the Stan case study's priors: β0, β_AFF, σ, ρ, mu[5]; and the
  INLA BYM2 fixed effects. INLA used other priors (fixed-effect precision 1/25, a log-normal-type
  prior on the precision), so their tolerance adds the published Stan–INLA difference.
- NYC pedestrian injuries, 1,921 tracts, offset-only BYM2: β0, ρ, σ (full run only: minutes).
"""

from __future__ import annotations

import datetime
import platform
import warnings
from dataclasses import dataclass
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd

from sae.eblup import fay_herriot_eblup
from sae.errors import SaeInputError
from sae.graph import graph_from_pairs
from sae.provenance import machine, package_version

PACKAGED_TREE = Path(__file__).resolve().parent.parent  # the source tree, when run from one
MC_FACTOR = 3.5
EXACT = 1e-4
STAN = "Stan case study (Morris; stan-dev/example-models@2847a61)"


@dataclass(frozen=True)
class Check:
    dataset: str
    quantity: str
    reference: float
    source: str
    value: float
    tolerance: float

    @property
    def difference(self) -> float:
        return self.value - self.reference

    @property
    def passed(self) -> bool:
        return bool(abs(self.difference) <= self.tolerance)


def scaling_checks(tree: Path) -> list[Check]:
    source = "Freni-Sterrantino et al. 2018 (Stan data files)"
    checks = []
    for name, component, reference in (("adjacency_geobugs", "whole graph", 0.4853),
                                       ("adjacency_stan_islands", "mainland", 0.4504)):  # fmt: skip
        pairs = pd.read_csv(tree / "benchmarks" / "scotland_lip" / f"{name}.csv", dtype=str)
        graph = graph_from_pairs(
            [str(i) for i in range(1, 57)], list(zip(pairs.i, pairs.j, strict=True)), name
        )
        value = float(graph.scaling_factor[graph.index["1"]])
        checks.append(
            Check(
                "Scotland graph",
                f"BYM2 scaling factor, {component}",
                reference,
                source,
                value,
                EXACT,
            )
        )
    return checks


def milk_checks(tree: Path) -> list[Check]:
    folder = tree / "benchmarks" / "milk_fay_herriot"
    milk = pd.read_csv(folder / "milk.csv")
    fixed = pd.read_csv(folder / "reference_fixed_effects_samplics_tests.csv")
    reference = pd.read_csv(folder / "reference_eblup_samplics_tests.csv")
    X = np.column_stack(
        [np.ones(len(milk))] + [(milk["MajorArea"] == k).to_numpy(float) for k in (2, 3, 4)]
    )
    source = "R sae / samplics tests (bd3d6c2)"
    checks = []
    for method in ("REML", "ML"):
        result = fay_herriot_eblup(milk["yi"], milk["var_direct"], X, method)
        for term, value, ref in zip(
            fixed["term"], result.beta["estimate"], fixed[f"beta_{method}"], strict=True
        ):
            checks.append(
                Check("Milk (Fay–Herriot)", f"{method} β {term}", ref, source, value, EXACT)
            )
        for column in ("eblup", "mse"):
            gap = result.table[column].to_numpy() - reference[f"{column}_{method}"].to_numpy()
            worst = int(np.argmax(np.abs(gap)))
            checks.append(Check("Milk (Fay–Herriot)", f"{method} {column.upper()}, worst of 43 areas (area {worst + 1})",
                                float(reference[f"{column}_{method}"].iloc[worst]), source,
                                float(result.table[column].iloc[worst]), EXACT))  # fmt: skip
    return checks


def half_unit(published: str) -> float:
    """Half a unit in the last digit of a number as it was published ("0.540" → 0.0005)."""
    decimals = len(published.split(".")[1]) if "." in published else 0
    return 0.5 * 10.0**-decimals


def mcmc_check(
    dataset, quantity, draws: np.ndarray, ess: float, reference: pd.Series, source, extra=0.0
) -> Check:
    """`reference` has the published mean as text (its precision matters), sd and ess_bulk."""
    ours = np.std(draws) / np.sqrt(ess)
    their_ess = float(reference["ess_bulk"])
    theirs = float(reference["sd"]) / np.sqrt(their_ess) if np.isfinite(their_ess) else 0.0
    tolerance = MC_FACTOR * np.hypot(ours, theirs) + half_unit(reference["mean"]) + extra
    return Check(
        dataset, quantity, float(reference["mean"]), source, float(np.mean(draws)), float(tolerance)
    )


def fitted(tree: Path, spec_name: str, progress: bool, method: str):
    import sae

    spec = sae.load_spec(tree / "models" / spec_name).replace(sampler={"method": method})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sae.fit(spec, progress=progress)


def variable(fit, name) -> tuple[np.ndarray, float]:
    draws = fit.idata.posterior[name].to_numpy().ravel()
    return draws, float(az.ess(fit.idata, var_names=[name])[name].to_numpy().min())


def scotland_checks(tree: Path, progress: bool, method: str) -> list[Check]:
    fit = fitted(tree, "scotland_lip_bym2.toml", progress, method)
    path = tree / "benchmarks" / "scotland_lip" / "reference_results_stan_case_study.csv"
    table = pd.read_csv(path, dtype={"mean": str})
    stan = table[table["model"].str.startswith("BYM2, bym2")].set_index("parameter")
    inla = table[table["engine"].str.contains("INLA")].set_index("parameter")
    checks = [
        mcmc_check("Scotland lip cancer", f"BYM2 {label}", *variable(fit, ours), stan.loc[theirs], STAN)
        for label, ours, theirs in (("β0", "intercept", "beta0"), ("β_AFF", "beta", "beta1"),
                                    ("σ", "area_sigma", "sigma"), ("ρ", "area_rho", "rho"))
    ]  # fmt: skip
    rates = fit.rate_draws(("area",))
    expected = fit.inputs.cells.frame.set_index("area").loc["5", "exposure"]
    mu5 = rates.isel(unit=list(rates["area"].values).index("5")).to_numpy() * expected
    ess = float(az.ess(mu5))  # (chain, draw) array
    checks.append(mcmc_check("Scotland lip cancer", "BYM2 mu[5] (fitted count, district 5)", mu5.ravel(),
                             ess, stan.loc["mu[5]"], STAN))  # fmt: skip
    for label, ours, theirs, stan_name in (("β0", "intercept", "(Intercept)=beta0", "beta0"),
                                           ("β_AFF", "beta", "x=beta1", "beta1")):  # fmt: skip
        prior_gap = abs(float(stan.loc[stan_name, "mean"]) - float(inla.loc[theirs, "mean"]))
        checks.append(mcmc_check("Scotland lip cancer", f"INLA BYM2 {label} (other priors: tolerance + |Stan − INLA|)",
                                 *variable(fit, ours), inla.loc[theirs], "R-INLA (Stan case study repo)",
                                 extra=prior_gap))  # fmt: skip
    return checks


NYC_REFERENCE = pd.DataFrame(
    {
        "mean": ["-6.61", "0.540", "1.18"],
        "sd": [0.0232, 0.0400, 0.0335],
        "ess_bulk": [2614, 274, 401],
    },
    index=["beta0", "rho", "sigma"],
)  # from benchmarks/nyc_pedestrian/README.md (Stan case study, bym2_offset_only.stan)


def nyc_checks(tree: Path, progress: bool, method: str) -> list[Check]:
    fit = fitted(tree, "nyc_pedestrian_bym2.toml", progress, method)
    return [
        mcmc_check("NYC pedestrian injuries", f"BYM2 {label}", *variable(fit, ours), NYC_REFERENCE.loc[theirs], STAN)
        for label, ours, theirs in (("β0", "intercept", "beta0"), ("ρ", "area_rho", "rho"), ("σ", "area_sigma", "sigma"))
    ]  # fmt: skip


def source_tree(tree: Path | None) -> Path:
    """The sae source tree whose models/ and benchmarks/ hold the reference data."""
    tree = PACKAGED_TREE if tree is None else Path(tree)
    if not ((tree / "models").is_dir() and (tree / "benchmarks" / "scotland_lip").is_dir()):
        raise SaeInputError(
            f"sae validate needs the benchmark data of a sae source tree (models/ and benchmarks/), "
            f"and {tree} has none; an installed package does not carry them. Clone the sae "
            "repository and run `sae validate --source-tree PATH_TO_CLONE`."
        )
    return tree


def run_validation(
    quick: bool, progress: bool = False, tree: Path | None = None, method: str = "nuts"
) -> list[Check]:
    """Every check, the model fits made with `method` (nuts or laplace)."""
    tree = source_tree(tree)
    checks = scaling_checks(tree) + milk_checks(tree) + scotland_checks(tree, progress, method)
    return checks if quick else checks + nyc_checks(tree, progress, method)


def results_table(checks: list[Check]) -> pd.DataFrame:
    return pd.DataFrame(
        {"dataset": c.dataset, "quantity": c.quantity, "reference": c.reference, "source": c.source,
         "sae": c.value, "difference": c.difference, "tolerance": c.tolerance,
         "result": "pass" if c.passed else "FAIL"} for c in checks
    )  # fmt: skip


def results_markdown(table: pd.DataFrame, quick: bool, method: str = "nuts") -> str:
    header = "| " + " | ".join(table.columns) + " |\n|" + "---|" * len(table.columns)
    rows = [
        "| " + " | ".join(format_cell(v) for v in row) + " |"
        for row in table.itertuples(index=False)
    ]
    packages = ", ".join(
        f"{p} {package_version(p)}" for p in ("sae", "pymc", "nutpie", "numpy", "scipy")
    )
    passed = (table["result"] == "pass").sum()
    return (
        f"# sae validate{' --quick' if quick else ''} --method {method}\n\n{passed} of {len(table)} checks pass. "
        f"Run {datetime.date.today().isoformat()} on {machine()}, "
        f"Python {platform.python_version()}; {packages}.\nTolerance: {EXACT:g} for deterministic results; for MCMC "
        f"summaries {MC_FACTOR} combined Monte Carlo standard errors plus half a unit in the last "
        f"published digit of the reference.\n\n" + header + "\n" + "\n".join(rows) + "\n"
    )


def format_cell(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)
