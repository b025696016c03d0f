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
    0 otherwise), trials (binomial) and sampling variances ψ (Gaussian).

    Censored counts (suppressed cells): `upper` holds each row's largest possible count and
    `response` its smallest, so that a row with upper > response is only known to lie in
    [response, upper]; for an exact row the two are equal. None: every count is exact."""

    response: np.ndarray
    offset: np.ndarray
    trials: np.ndarray
    variance: np.ndarray
    upper: np.ndarray | None = None

    @property
    def censored(self) -> np.ndarray:
        """True for rows whose count is known only as a range."""
        if self.upper is None:
            return np.zeros(len(self.response), dtype=bool)
        return self.upper > self.response


def interval_moments(log_pmf, lower: np.ndarray, upper: np.ndarray):
    """log P(l ≤ Y ≤ u) and the mean and variance of Y given l ≤ Y ≤ u, for each row (the last
    axis), where `log_pmf(k)` gives log P(Y = k) for a row vector of counts k (broadcast over the
    leading axes of η). Two passes over k = l, …, u: the largest term, then the scaled sums."""
    width = int((upper - lower).max()) + 1
    terms = [(lower + j, (lower + j) <= upper) for j in range(width)]
    largest = np.max([np.where(valid, log_pmf(k), -np.inf) for k, valid in terms], axis=0)
    s0 = s1 = s2 = 0.0
    for k, valid in terms:
        weight = np.where(valid, np.exp(log_pmf(k) - largest), 0.0)
        s0, s1, s2 = s0 + weight, s1 + weight * k, s2 + weight * k**2
    mean = s1 / s0
    return largest + np.log(s0), mean, np.maximum(s2 / s0 - mean**2, 0.0)


def censored_newton_terms(rows: RowData, log_pmf, mean, variance, exact_terms):
    """Newton terms with the censored rows' log P(l ≤ y ≤ u) in place of log p(y).

    For these exponential families in η (sufficient statistic y), d log P(A)/dη = E[y | A] − E[y]
    and d² log P(A)/dη² = Var(y | A) − Var(y), so the negative Hessian is Var(y) − Var(y | A)."""
    kernel, gradient, weight = exact_terms
    censored = rows.censored
    if not censored.any():
        return kernel, gradient, weight
    c = np.flatnonzero(censored)
    log_prob, mean_in, variance_in = interval_moments(
        lambda k: log_pmf(k, c), rows.response[c], rows.upper[c]
    )
    kernel, gradient, weight = kernel.copy(), gradient.copy(), weight.copy()
    kernel[..., c] = log_prob
    gradient[..., c] = mean_in - mean[..., c]
    weight[..., c] = np.maximum(variance[..., c] - variance_in, 1e-12)
    return kernel, gradient, weight


def information_share(lower, upper, variance, log_pmf) -> np.ndarray:
    """1 − Var(y | lower ≤ y ≤ upper) / Var(y) per row (1 where lower = upper)."""
    share = np.ones(len(lower))
    c = np.flatnonzero((upper > lower) & (variance > 0))
    if len(c):
        _, _, within = interval_moments(lambda k: log_pmf(k, c), lower[c], upper[c])
        share[c] = np.clip(1.0 - within / variance[c], 1e-6, 1.0)
    return share


def with_censored(rows: RowData, values, log_pmf):
    """Exact log-densities with the censored rows' log P(l ≤ y ≤ u) in their place."""
    censored = rows.censored
    if not censored.any():
        return values
    c = np.flatnonzero(censored)
    values = np.array(values, dtype=float)
    values[..., c] = interval_moments(lambda k: log_pmf(k, c), rows.response[c], rows.upper[c])[0]
    return values


def exact_rows(rows: RowData):
    """The rows PyMC observes exactly, and their dims ("row" when that is every row)."""
    censored = rows.censored
    return (slice(None), "row") if not censored.any() else (np.flatnonzero(~censored), None)


def censored_potential(rows: RowData, distribution) -> None:
    """Σ over censored rows of log Σ_{k=l}^{u} p(k), as a PyMC potential; `distribution(c)` is the
    family's distribution of the censored rows c as a column (broadcast against the counts)."""
    import pymc as pm
    import pytensor.tensor as pt

    censored = np.flatnonzero(rows.censored)
    if not len(censored):
        return
    lower, upper = rows.response[censored], rows.upper[censored]
    counts = lower[:, None] + np.arange(int((upper - lower).max()) + 1)
    inside = counts <= upper[:, None]
    log_pmf = pm.logp(distribution(censored), np.minimum(counts, upper[:, None]))
    pm.Potential("censored_count",
                 pt.logsumexp(pt.where(inside, log_pmf, -np.inf), axis=1).sum())  # fmt: skip


class Poisson:
    name = "poisson"

    def rate(self, eta):
        """The rate per unit of exposure (per person, or the relative risk)."""
        return np.exp(eta)

    def log_density(self, rows: RowData, eta):
        mu = np.exp(eta + rows.offset)
        return with_censored(rows, stats.poisson.logpmf(rows.response, mu),
                             lambda k, c: stats.poisson.logpmf(k, mu[..., c]))  # fmt: skip

    def newton_terms(self, rows: RowData, eta: np.ndarray):
        mu = np.exp(eta + rows.offset)
        y = rows.response
        exact = (y * eta - mu, y - mu, mu)
        return censored_newton_terms(rows, lambda k, c: stats.poisson.logpmf(k, mu[..., c]),
                                     mu, mu, exact)  # fmt: skip

    def pymc_likelihood(self, eta, rows: RowData) -> None:
        import pymc as pm
        import pytensor.tensor as pt

        mu = pt.exp(eta + rows.offset)
        exact, dims = exact_rows(rows)
        pm.Poisson("count", mu=mu[exact], observed=rows.response[exact], dims=dims)
        censored_potential(rows, lambda c: pm.Poisson.dist(mu=mu[c][:, None]))

    def expected(self, rows: RowData, eta):
        """E[y | η]."""
        return np.exp(eta + rows.offset)

    def replicate(self, rng, rows: RowData, eta) -> np.ndarray:
        return rng.poisson(np.minimum(np.exp(eta + rows.offset), 1e12))

    def direct_variance(self, rate, exposure, per: float):
        """Var of a direct rate (per `per`) from its own data alone, at the rate `rate`: θ per / E."""
        return rate * per / exposure

    def below(self, rows: RowData, eta):
        """P(y_rep < y_r | η) for each row's observed count (its lower bound, if censored)."""
        return stats.poisson.cdf(rows.response - 1, np.exp(eta + rows.offset))

    def information_share(self, lower, upper, rate, exposure, per: float):
        """The share of an exact count's Fisher information about log θ that a count known only
        to lie in [lower, upper] keeps: 1 − Var(y | range) / μ at μ = E θ (1 where exact)."""
        mu = exposure * rate / per
        return information_share(lower, upper, mu, lambda k, c: stats.poisson.logpmf(k, mu[c]))

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
        p = special.expit(eta)
        return with_censored(rows, stats.binom.logpmf(rows.response, rows.trials, p),
                             lambda k, c: stats.binom.logpmf(k, rows.trials[c], p[..., c]))  # fmt: skip

    def newton_terms(self, rows: RowData, eta: np.ndarray):
        n, y = rows.trials, rows.response
        p = special.expit(eta)
        exact = (y * eta - n * np.logaddexp(0.0, eta), y - n * p, n * p * (1.0 - p))
        return censored_newton_terms(
            rows, lambda k, c: stats.binom.logpmf(k, n[c], p[..., c]), n * p,
            n * p * (1.0 - p), exact,
        )  # fmt: skip

    def pymc_likelihood(self, eta, rows: RowData) -> None:
        import pymc as pm

        exact, dims = exact_rows(rows)
        pm.Binomial("count", n=rows.trials[exact], logit_p=eta[exact],
                    observed=rows.response[exact], dims=dims)  # fmt: skip
        censored_potential(
            rows, lambda c: pm.Binomial.dist(n=rows.trials[c][:, None], logit_p=eta[c][:, None])
        )

    def expected(self, rows: RowData, eta):
        return rows.trials * special.expit(eta)

    def replicate(self, rng, rows: RowData, eta) -> np.ndarray:
        return rng.binomial(rows.trials.astype(np.int64), special.expit(eta))

    def direct_variance(self, rate, exposure, per: float):
        """Var of a direct proportion (per `per`) from its own data alone: per² p (1 − p) / n."""
        p = rate / per
        return per**2 * p * (1 - p) / exposure

    def below(self, rows: RowData, eta):
        """P(y_rep < y_r | η) for each row's observed count (its lower bound, if censored)."""
        return stats.binom.cdf(rows.response - 1, rows.trials, special.expit(eta))

    def information_share(self, lower, upper, rate, exposure, per: float):
        """As for Poisson counts, about logit p: 1 − Var(y | range) / (n p (1 − p))."""
        p = rate / per
        return information_share(
            lower,
            upper,
            exposure * p * (1 - p),
            lambda k, c: stats.binom.logpmf(k, exposure[c].astype(np.int64), p[c]),
        )

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
