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


def diagnostics(idata: az.InferenceData, flags: FlagSpec) -> dict:
    """Max R-hat, min bulk/tail ESS, divergences, and the parameters that failed."""
    posterior = idata.posterior
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant draws give nan R-hat
        rhat = az.rhat(posterior)
        ess_bulk = az.ess(posterior, method="bulk")
        ess_tail = az.ess(posterior, method="tail")
    worst_rhat = {name: float(np.nanmax(v)) for name, v in rhat.items() if v.size}
    worst_ess = {name: float(np.nanmin(v)) for name, v in ess_bulk.items() if v.size}
    divergences = (
        int(idata.sample_stats["diverging"].sum()) if "diverging" in idata.sample_stats else 0
    )
    return {
        "max_rhat": max(worst_rhat.values()),
        "min_ess_bulk": min(worst_ess.values()),
        "min_ess_tail": float(min(np.nanmin(v) for v in ess_tail.values() if v.size)),
        "divergences": divergences,
        "chains": int(posterior.sizes["chain"]),
        "draws": int(posterior.sizes["draw"]),
        "rhat_failed": sorted(k for k, v in worst_rhat.items() if v > flags.max_rhat),
        "ess_failed": sorted(k for k, v in worst_ess.items() if v < flags.min_ess),
        "hyperparameters": hyperparameter_summary(posterior, rhat, ess_bulk),
    }


def hyperparameter_summary(posterior, rhat, ess_bulk) -> dict:
    """R-hat and bulk ESS of the scalar-or-per-group hyperparameters (σ, ρ), the slow mixers."""
    names = [n for n in posterior.data_vars if n.endswith(("_sigma", "_rho"))]
    return {
        name: {
            "rhat": float(np.nanmax(rhat[name])),
            "ess_bulk": float(np.nanmin(ess_bulk[name])),
        }
        for name in names
    }


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
