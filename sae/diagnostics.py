"""How far a fit's draws can be trusted, whichever method made them.

- NUTS: R-hat (rank-normalised, Vehtari et al. 2021), bulk and tail ESS of every sampled parameter,
  and divergent transitions.
- Laplace: the Pareto k̂ of the importance weights over the hyperparameters (how well the
  integration points cover p(θ | y)), and the k̂ of the exact joint posterior against the Gaussian
  approximation of the latent field, jointly and in each area's neighbourhood (Vehtari et al.
  2024, JMLR 25:72).

A warning is raised when a figure fails the thresholds in the spec's [flags]; the affected numbers
are flagged `unreliable` by `sae.reliability`.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from sae import convergence
from sae.spec import FlagSpec

if TYPE_CHECKING:
    import arviz as az

PARETO_K_LIMIT = 0.7  # Vehtari et al. (2024): above this, importance sampling is unreliable
SERIES_PER_CHUNK = 2000


class ConvergenceWarning(UserWarning):
    """The draws are not good enough for every number to be trusted."""


@dataclass(frozen=True)
class Diagnostics:
    """The method's figures. NUTS fills the R-hat/ESS fields; Laplace the k̂ fields (R-hat and ESS
    do not apply to its independent draws and are None)."""

    method: str
    chains: int
    draws: int
    max_rhat: float | None = None
    min_ess_bulk: float | None = None
    min_ess_tail: float | None = None
    divergences: int = 0
    rhat_failed: tuple[str, ...] = ()
    ess_failed: tuple[str, ...] = ()
    hyperparameters: dict = field(default_factory=dict)
    theta_pareto_k: float | None = None
    theta_points: int | None = None
    latent_pareto_k: float | None = None
    latent_ess: float | None = None  # effective draws of that importance reweighting
    correction: str | None = None  # "joint" (draws resampled) or "local" (numbers weighted)
    areas_off: int | None = None  # areas whose neighbourhood k̂ exceeds PARETO_K_LIMIT

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> Diagnostics:
        names = {f.name for f in dataclasses.fields(cls)}
        values = {
            k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in names
        }
        return cls(**{"method": "nuts", **values})

    def problems(self, flags: FlagSpec) -> list[str]:
        """Plain-language reasons not to trust every number; empty when there are none."""
        problems = []
        if self.max_rhat is not None and self.max_rhat > flags.max_rhat:
            problems.append(f"max R-hat {self.max_rhat:.3f} > {flags.max_rhat} "
                            f"({', '.join(self.rhat_failed)})")  # fmt: skip
        if self.min_ess_bulk is not None and self.min_ess_bulk < flags.min_ess:
            problems.append(f"min bulk ESS {self.min_ess_bulk:.0f} < {flags.min_ess:.0f} "
                            f"({', '.join(self.ess_failed)})")  # fmt: skip
        if self.divergences:
            problems.append(f"{self.divergences} divergent transitions")
        if self.theta_pareto_k is not None and self.theta_pareto_k > PARETO_K_LIMIT:
            problems.append(
                f"the integration over the hyperparameters is unreliable (Pareto k̂ "
                f"{self.theta_pareto_k:.2f} > {PARETO_K_LIMIT})"
            )
        if self.areas_off:
            problems.append(
                f"the Laplace approximation cannot be checked or corrected in {self.areas_off} "
                f"area(s) (Pareto k̂ > {PARETO_K_LIMIT}); their numbers are flagged"
            )
        return problems

    def summary_line(self) -> str:
        if self.method == "laplace":
            return (f"laplace: {self.draws} draws over {self.theta_points} hyperparameter points "
                    f"(Pareto k̂ {self.theta_pareto_k:.2f}); latent field corrected "
                    f"{self.correction}ly (joint k̂ {self.latent_pareto_k:.2f}, ESS "
                    f"{self.latent_ess:.0f})")  # fmt: skip
        return (f"nuts: {self.chains} chains × {self.draws} draws; max R-hat {self.max_rhat:.3f}, "
                f"min bulk ESS {self.min_ess_bulk:.0f}, divergences {self.divergences}")  # fmt: skip


def mcmc_diagnostics(idata: az.InferenceData, flags: FlagSpec) -> Diagnostics:
    """Worst R-hat and ESS over every sampled parameter, divergences, and the failures.

    Computed variable by variable, in slices of at most `SERIES_PER_CHUNK` series, so memory stays
    bounded on large fits.
    """
    posterior = idata.posterior
    per_variable = {name: variable_diagnostics(posterior[name]) for name in posterior.data_vars}
    per_variable = {k: v for k, v in per_variable.items() if v is not None}
    stats = idata.sample_stats
    return Diagnostics(
        method="nuts",
        chains=int(posterior.sizes["chain"]),
        draws=int(posterior.sizes["draw"]),
        max_rhat=max(v["rhat"] for v in per_variable.values()),
        min_ess_bulk=min(v["ess_bulk"] for v in per_variable.values()),
        min_ess_tail=min(v["ess_tail"] for v in per_variable.values()),
        divergences=int(stats["diverging"].sum()) if "diverging" in stats else 0,
        rhat_failed=tuple(sorted(k for k, v in per_variable.items() if v["rhat"] > flags.max_rhat)),
        ess_failed=tuple(
            sorted(k for k, v in per_variable.items() if v["ess_bulk"] < flags.min_ess)
        ),
        hyperparameters={
            k: {"rhat": v["rhat"], "ess_bulk": v["ess_bulk"]}
            for k, v in per_variable.items()
            if k.endswith(("_sigma", "_rho"))
        },
    )


def variable_diagnostics(draws) -> dict | None:
    """Worst R-hat and ESS over one variable's elements; None if it is constant (e.g. a fixed 0)."""
    series = draws.to_numpy().reshape(draws.sizes["chain"], draws.sizes["draw"], -1)
    worst = {"rhat": -np.inf, "ess_bulk": np.inf, "ess_tail": np.inf}
    for start in range(0, series.shape[2], SERIES_PER_CHUNK):
        chunk = series[:, :, start : start + SERIES_PER_CHUNK]
        chunk = chunk[:, :, chunk.std(axis=(0, 1)) > 0]
        if chunk.shape[2] == 0:
            continue
        rhat, ess = convergence.rhat_and_ess(chunk)
        worst["rhat"] = max(worst["rhat"], float(rhat.max()))
        worst["ess_bulk"] = min(worst["ess_bulk"], float(ess.min()))
        worst["ess_tail"] = min(worst["ess_tail"], float(convergence.ess_tail(chunk).min()))
    return None if worst["rhat"] == -np.inf else worst


def warn_if_untrustworthy(diagnostics: Diagnostics, flags: FlagSpec) -> None:
    problems = diagnostics.problems(flags)
    if not problems:
        return
    advice = (
        "Run longer ([sampler] draws, tune) or raise target_accept."
        if diagnostics.method == "nuts"
        else 'Check those cells with [sampler] method = "nuts".'
    )
    warnings.warn(
        f"The {diagnostics.method} draws cannot all be trusted: "
        + "; ".join(problems)
        + f". Affected estimates are flagged unreliable. {advice}",
        ConvergenceWarning,
        stacklevel=3,
    )
