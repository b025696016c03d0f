"""Events whose group is unknown (race not recorded), shared out among the groups by the model.

For each area i and stratum k (a *block* b) the data give the events of each group, y_igk, and a
count u_b of events whose group is unknown (`[data] unknown_group_count`, the same value on every
group's row of the block). Assume that whether the group is recorded does not depend on the group
within a block (missing at random within area and stratum): each event of the block lacks its
group with the same probability π_b. By Poisson thinning,

    y_igk ~ Poisson((1 − π_b) μ_igk),   u_b ~ Poisson(π_b Σ_g μ_igk),   μ = E θ,

and the likelihood factorises into a part in θ and a part in π_b alone:

    L = [Π_g μ_igk^y_igk · (Σ_g μ_igk)^u_b · exp(−Σ_g μ_igk)] · [(1 − π_b)^Y_b π_b^u_b],

Y_b = Σ_g y_igk. So θ's posterior needs no model for π_b: the count model's likelihood gains
u_b log Σ_g μ_igk per block, and π_b's estimate û_b / (u_b + Y_b) does not depend on θ. Pointwise
log-likelihoods and replicated data use the factorised joint likelihood at π̂_b: known rows with
mean (1 − π̂_b) μ, and one Poisson(π̂_b Σ_g μ) term per block.

Each cell's share of the unknown events is u_b μ_igk / Σ_g μ_igk (posterior mean), reported as
`unknown_allocated`. The assumption often fails (the DREAM community's warning: race is missed
more often for some groups), so the report states it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class UnknownGroups:
    """Blocks (area × stratum) with events of unknown group, for the likelihood's rows: `block`
    gives each row's block (−1 for a row whose block has none), `count` each block's u_b and
    `known` each block's Y_b."""

    block: np.ndarray
    count: np.ndarray
    known: np.ndarray

    @property
    def missing_share(self) -> np.ndarray:
        """π̂_b = u_b / (u_b + Y_b), the share of the block's events without a group."""
        return self.count / (self.count + self.known)

    def log_likelihood(self, mu: np.ndarray) -> np.ndarray:
        """u_b log Σ_{r ∈ b} μ_r for every block (the leading axes of μ kept)."""
        return self.count * np.log(self.block_sums(mu))

    def block_sums(self, mu: np.ndarray) -> np.ndarray:
        inside = self.block >= 0
        sums = np.zeros((*mu.shape[:-1], len(self.count)))
        np.add.at(sums, (..., self.block[inside]), mu[..., inside])
        return sums

    def thinned_offset(self, offset: np.ndarray) -> np.ndarray:
        """log E + log(1 − π̂_b): the known rows' offset in the factorised joint likelihood."""
        inside = self.block >= 0
        thinned = offset.copy()
        thinned[inside] += np.log1p(-self.missing_share[self.block[inside]])
        return thinned

    def pymc_potential(self, mu, response=None, log_odds: float | None = None,
                       in_group: np.ndarray | None = None) -> None:  # fmt: skip
        """The likelihood's extra term, as a PyMC potential: Σ_b u_b log Σ_{r ∈ b} μ_r under
        missing at random; with `log_odds` (a sensitivity analysis), the thinned likelihood with
        each block's missing probability π_b as a parameter (uniform prior) and
        logit π_r = logit π_b + log_odds for the rows `in_group`."""
        import pymc as pm
        import pytensor.tensor as pt

        inside = np.flatnonzero(self.block >= 0)
        block = self.block[inside]
        if log_odds is None:
            sums = pt.inc_subtensor(pt.zeros(len(self.count))[block], mu[inside])
            pm.Potential("unknown_group", pt.sum(self.count * pt.log(sums)))
            return
        baseline = pm.Logistic("unknown_missing_logit", 0.0, 1.0, shape=len(self.count))
        logit = baseline[block] + log_odds * in_group[inside]
        mu_in = mu[inside]
        missing = pm.math.sigmoid(logit)
        # Poisson(y; μ(1 − π)) over Poisson(y; μ), which the family's likelihood already holds
        thinning = pt.sum(-response[inside] * pt.softplus(logit) + mu_in * missing)
        expected = pt.inc_subtensor(pt.zeros(len(self.count))[block], mu_in * missing)
        unknown = pm.logp(pm.Poisson.dist(mu=expected), self.count.astype(np.int64)).sum()
        pm.Potential("unknown_group", thinning + unknown)


def unknown_groups(frame: pd.DataFrame, used: np.ndarray, strata: tuple[str, ...]):
    """The blocks of the likelihood's rows (`used` rows of the cells frame), or None when the data
    have no unknown-group events."""
    if "unknown" not in frame or not (frame["unknown"] > 0).any():
        return None
    rows = frame.loc[used]
    keys = ["area", *strata]
    blocks = rows[keys].drop_duplicates().reset_index(drop=True)
    index = pd.MultiIndex.from_frame(blocks).get_indexer(pd.MultiIndex.from_frame(rows[keys]))
    count = rows.groupby(index)["unknown"].first().to_numpy()
    known = rows.groupby(index)["count"].sum().to_numpy()
    keep = count > 0
    renumber = np.full(len(count), -1)
    renumber[keep] = np.arange(keep.sum())
    return UnknownGroups(renumber[index], count[keep].astype(float), known[keep].astype(float))


def allocated_events(stratum_rates: np.ndarray, rows: pd.DataFrame, strata, per: float,
                     odds: np.ndarray | float = 1.0) -> np.ndarray:  # fmt: skip
    """Draws of each grid row's share of its block's unknown-group events,
    u_b w_r μ_r / Σ_{r' ∈ b} w_r' μ_r' with μ = E θ (`stratum_rates`: chain × draw × grid row,
    per `per`) and w_r the odds of the row's group lacking its group (1 under missing at random;
    a sensitivity analysis's odds, for which the shares are exact when few events lack a group).
    Returns chain × draw × grid row."""
    mu = stratum_rates * (rows["exposure"].to_numpy() * odds / per)
    keys = ["area", *strata]
    block = pd.MultiIndex.from_frame(rows[keys]).factorize()[0]
    totals = np.zeros((*mu.shape[:-1], block.max() + 1))
    np.add.at(totals, (..., block), mu)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(totals[..., block] > 0, mu / totals[..., block], 0.0)
    return rows["unknown"].to_numpy() * share
