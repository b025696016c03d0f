"""Running a sampler and judging convergence.

nutpie (compiled with numba) is the default; PyMC's own NUTS is the fallback. After sampling,
R-hat (rank-normalised, Vehtari et al. 2021), bulk and tail ESS and divergences are computed for
every parameter, and a warning is raised when any fails the thresholds in the spec's [flags].
"""

from __future__ import annotations

import logging
import time
import warnings

import arviz as az
import numpy as np
import pymc as pm
import xarray as xr

from sae.spec import FlagSpec, SamplerSpec

log = logging.getLogger("sae")


class ConvergenceWarning(UserWarning):
    """The sampler did not converge well enough for the numbers to be trusted."""


def sample(
    model: pm.Model, sampler: SamplerSpec, progress: bool = True
) -> tuple[az.InferenceData, dict[str, float]]:
    """Draw from the posterior of `model` with the spec's backend, chains, draws, tune and seed.

    Returns the draws and the seconds spent compiling and sampling (PyMC's NUTS compiles inside
    its sampling call, so there the two are one figure, under "sample").
    """
    start = time.perf_counter()
    if sampler.backend == "nutpie":
        import nutpie

        compiled = nutpie.compile_pymc_model(model)
        compiled_at = time.perf_counter()
        idata = nutpie.sample(
            compiled,
            draws=sampler.draws,
            tune=sampler.tune,
            chains=sampler.chains,
            seed=sampler.seed,
            target_accept=sampler.target_accept,
            progress_bar=progress,
            save_warmup=False,
            low_rank_modified_mass_matrix=sampler.low_rank_mass_matrix,
        )
        end = time.perf_counter()
        return idata, {"compile": compiled_at - start, "sample": end - compiled_at}
    with model:
        idata = pm.sample(
            draws=sampler.draws,
            tune=sampler.tune,
            chains=sampler.chains,
            random_seed=sampler.seed,
            target_accept=sampler.target_accept,
            progressbar=progress,
            compute_convergence_checks=False,
        )
    return idata, {"sample": time.perf_counter() - start}


SERIES_PER_CHUNK = 2000


def diagnostics(idata: az.InferenceData, flags: FlagSpec) -> dict:
    """Max R-hat, min bulk/tail ESS, divergences, and the parameters that failed.

    Computed variable by variable, in slices of at most `SERIES_PER_CHUNK` series, so memory stays
    bounded on large fits (a 15,000-cell fit has millions of draws per variable).
    """
    posterior = idata.posterior
    per_variable = {name: variable_diagnostics(posterior[name]) for name in posterior.data_vars}
    per_variable = {k: v for k, v in per_variable.items() if v is not None}
    divergences = (
        int(idata.sample_stats["diverging"].sum()) if "diverging" in idata.sample_stats else 0
    )
    return {
        "max_rhat": max(v["rhat"] for v in per_variable.values()),
        "min_ess_bulk": min(v["ess_bulk"] for v in per_variable.values()),
        "min_ess_tail": min(v["ess_tail"] for v in per_variable.values()),
        "divergences": divergences,
        "chains": int(posterior.sizes["chain"]),
        "draws": int(posterior.sizes["draw"]),
        "rhat_failed": sorted(k for k, v in per_variable.items() if v["rhat"] > flags.max_rhat),
        "ess_failed": sorted(k for k, v in per_variable.items() if v["ess_bulk"] < flags.min_ess),
        "hyperparameters": {
            k: {"rhat": v["rhat"], "ess_bulk": v["ess_bulk"]}
            for k, v in per_variable.items()
            if k.endswith(("_sigma", "_rho"))
        },
    }


def variable_diagnostics(draws) -> dict | None:
    """Worst R-hat and ESS over one variable's elements; None if it is constant (e.g. a fixed 0)."""
    series = draws.to_numpy().reshape(draws.sizes["chain"], draws.sizes["draw"], -1)
    worst = {"rhat": -np.inf, "ess_bulk": np.inf, "ess_tail": np.inf}
    for start in range(0, series.shape[2], SERIES_PER_CHUNK):
        chunk = series[:, :, start : start + SERIES_PER_CHUNK]
        chunk = chunk[:, :, chunk.std(axis=(0, 1)) > 0]
        if chunk.shape[2] == 0:
            continue
        dataset = xr.Dataset({"x": (("chain", "draw", "element"), chunk)})
        worst["rhat"] = max(worst["rhat"], float(az.rhat(dataset)["x"].max()))
        worst["ess_bulk"] = min(worst["ess_bulk"], float(az.ess(dataset, method="bulk")["x"].min()))
        worst["ess_tail"] = min(worst["ess_tail"], float(az.ess(dataset, method="tail")["x"].min()))
    return None if worst["rhat"] == -np.inf else worst


def convergence_problems(diag: dict, flags: FlagSpec) -> list[str]:
    """Plain-language reasons the run did not converge; empty when it did."""
    problems = []
    if diag["max_rhat"] > flags.max_rhat:
        problems.append(
            f"max R-hat {diag['max_rhat']:.3f} > {flags.max_rhat} ({', '.join(diag['rhat_failed'])})"
        )
    if diag["min_ess_bulk"] < flags.min_ess:
        problems.append(
            f"min bulk ESS {diag['min_ess_bulk']:.0f} < {flags.min_ess:.0f} ({', '.join(diag['ess_failed'])})"
        )
    if diag["divergences"]:
        problems.append(f"{diag['divergences']} divergent transitions")
    return problems


def warn_if_not_converged(diag: dict, flags: FlagSpec) -> None:
    problems = convergence_problems(diag, flags)
    if problems:
        warnings.warn(
            "The sampler did not converge: " + "; ".join(problems) + ". Affected estimates are "
            "flagged unreliable. Run longer ([sampler] draws, tune) or raise target_accept.",
            ConvergenceWarning,
            stacklevel=3,
        )
