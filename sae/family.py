"""Likelihood families: each owns its link, its log-density and the derivatives a Laplace step needs,
its PyMC likelihood, replicated data, its default units and the words that describe it.

For a data row r with linear predictor η_r (the offset included where the family has one):

    Poisson     y ~ Poisson(μ),   μ = E exp(η)        (log link, E the population or expected count)
    Binomial    y ~ Binomial(n, p), p = 1/(1 + e^−η)  (logit link)
    Gaussian    y ~ N(η, ψ), ψ known                  (Fay–Herriot; y on the transform's scale)

`newton_terms` returns, per row, the log-density up to a term that depends on y alone (the
"kernel"), its gradient in η and the negative Hessian in η (the weight w of iteratively reweighted
least squares); for the Gaussian family the Laplace approximation is exact.

References: McCullagh & Nelder (1989), Generalized Linear Models, ch. 2 and 4; Fay & Herriot (1979).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from sae import transforms


@dataclass(frozen=True)
class RowData:
    """What a family needs of the likelihood's rows: y, the offset added to η (log E for Poisson,
    0 otherwise), trials (binomial) and sampling variances ψ (Gaussian)."""

    response: np.ndarray
    offset: np.ndarray
    trials: np.ndarray
    variance: np.ndarray


class Poisson:
    name = "poisson"

    def rate(self, eta):
        """The rate per unit of exposure (per person, or the relative risk)."""
        return np.exp(eta)

    def log_density(self, rows: RowData, eta):
        return stats.poisson.logpmf(rows.response, np.exp(eta + rows.offset))

    def newton_terms(self, rows: RowData, eta: np.ndarray):
        mu = np.exp(eta + rows.offset)
        y = rows.response
        return y * eta - mu, y - mu, mu

    def pymc_likelihood(self, eta, rows: RowData) -> None:
        import pymc as pm
        import pytensor.tensor as pt

        pm.Poisson("count", mu=pt.exp(eta + rows.offset), observed=rows.response, dims="row")

    def expected(self, rows: RowData, eta):
        """E[y | η]."""
        return np.exp(eta + rows.offset)

    def replicate(self, rng, rows: RowData, eta) -> np.ndarray:
        return rng.poisson(np.minimum(np.exp(eta + rows.offset), 1e12))

    def direct_variance(self, rate, exposure, per: float):
        """Var of a direct rate (per `per`) from its own data alone, at the rate `rate`: θ per / E."""
        return rate * per / exposure

    def below(self, rows: RowData, eta):
        """P(y_rep < y_r | η) for each row's observed count."""
        return stats.poisson.cdf(rows.response - 1, np.exp(eta + rows.offset))

    def default_per(self, exposure: str) -> float:
        return 100_000.0 if exposure == "population" else 1.0

    def unit_label(self, per: float, exposure: str) -> str:
        if exposure == "expected" and per == 1:
            return "(relative risk)"
        return f"per {per:,.0f}"

    def describe(self, exposure: str) -> str:
        if exposure == "expected":
            return "Poisson counts with expected counts as offset (relative risks)"
        return "Poisson counts with the population as exposure"


class Binomial:
    name = "binomial"

    def rate(self, eta):
        return special.expit(eta)

    def log_density(self, rows: RowData, eta):
        return stats.binom.logpmf(rows.response, rows.trials, special.expit(eta))

    def newton_terms(self, rows: RowData, eta: np.ndarray):
        n, y = rows.trials, rows.response
        p = special.expit(eta)
        return y * eta - n * np.logaddexp(0.0, eta), y - n * p, n * p * (1.0 - p)

    def pymc_likelihood(self, eta, rows: RowData) -> None:
        import pymc as pm

        pm.Binomial("count", n=rows.trials, logit_p=eta, observed=rows.response, dims="row")

    def expected(self, rows: RowData, eta):
        return rows.trials * special.expit(eta)

    def replicate(self, rng, rows: RowData, eta) -> np.ndarray:
        return rng.binomial(rows.trials.astype(np.int64), special.expit(eta))

    def direct_variance(self, rate, exposure, per: float):
        """Var of a direct proportion (per `per`) from its own data alone: per² p (1 − p) / n."""
        p = rate / per
        return per**2 * p * (1 - p) / exposure

    def below(self, rows: RowData, eta):
        """P(y_rep < y_r | η) for each row's observed count."""
        return stats.binom.cdf(rows.response - 1, rows.trials, special.expit(eta))

    def default_per(self, exposure: str) -> float:
        return 100.0

    def unit_label(self, per: float, exposure: str) -> str:
        return "%" if per == 100 else f"per {per:,.0f}"

    def describe(self, exposure: str) -> str:
        return "binomial counts out of trials (logit link)"


@dataclass(frozen=True)
class Gaussian:
    """Direct survey estimates with known sampling variances, on the scale of `transform`."""

    transform: str = "none"
    name = "gaussian"

    def rate(self, eta):
        return transforms.inverse(self.transform, eta)

    def log_density(self, rows: RowData, eta):
        return stats.norm.logpdf(rows.response, eta, np.sqrt(rows.variance))

    def newton_terms(self, rows: RowData, eta: np.ndarray):
        residual = rows.response - eta
        return -0.5 * residual**2 / rows.variance, residual / rows.variance, 1.0 / rows.variance

    def pymc_likelihood(self, eta, rows: RowData) -> None:
        import pymc as pm

        pm.Normal("response", mu=eta, sigma=np.sqrt(rows.variance), observed=rows.response,
                  dims="row")  # fmt: skip

    def expected(self, rows: RowData, eta):
        return eta

    def replicate(self, rng, rows: RowData, eta) -> np.ndarray:
        return rng.normal(eta, np.sqrt(rows.variance))

    def default_per(self, exposure: str) -> float:
        return 1.0

    def unit_label(self, per: float, exposure: str) -> str:
        return "(direct-estimate scale)" if per == 1 else f"× {per:,.0f}"

    def describe(self, exposure: str) -> str:
        scale = "" if self.transform == "none" else (
            f" on the {self.transform} scale (delta-method variances)"
        )  # fmt: skip
        return ("direct survey estimates with known sampling variances, y_d ~ N(θ_d, ψ_d) "
                f"(Fay & Herriot 1979){scale}")  # fmt: skip


Family = Poisson | Binomial | Gaussian


def family_of(name: str, transform: str = "none") -> Family:
    """The family object named in a spec ([model] family, and transform for gaussian)."""
    return {"poisson": Poisson, "binomial": Binomial}.get(name, lambda: Gaussian(transform))()
