import arviz as az
import numpy as np
import pytest

from sae import diagnostics
from sae.diagnostics import ConvergenceWarning, Diagnostics, mcmc_diagnostics, warn_if_untrustworthy
from sae.spec import FlagSpec


def idata(shift_one_chain: float = 0.0, divergent: int = 0):
    """4 chains × 1000 independent N(0, 1) draws (seed 0); optionally one chain shifted."""
    rng = np.random.default_rng(0)
    good = rng.normal(size=(4, 1000, 7))
    bad = rng.normal(size=(4, 1000))
    bad[0] += shift_one_chain
    diverging = np.zeros((4, 1000), dtype=bool)
    diverging.flat[:divergent] = True
    return az.from_dict(
        posterior={"good": good, "bad": bad, "fixed": np.zeros((4, 1000))},
        sample_stats={"diverging": diverging},
    )


def test_well_mixed_draws_pass_and_constant_variables_are_ignored():
    d = mcmc_diagnostics(idata(), FlagSpec())
    assert d.max_rhat < 1.01 and d.min_ess_bulk > 2000
    assert d.rhat_failed == () and d.problems(FlagSpec()) == []


def test_a_stuck_chain_is_named_and_divergences_counted():
    d = mcmc_diagnostics(idata(shift_one_chain=1.0, divergent=3), FlagSpec())
    assert d.rhat_failed == ("bad",) and d.divergences == 3
    problems = d.problems(FlagSpec())
    assert (
        any("R-hat" in p and "bad" in p for p in problems) and "3 divergent transitions" in problems
    )
    with pytest.warns(ConvergenceWarning, match="cannot all be trusted"):
        warn_if_untrustworthy(d, FlagSpec())
    assert Diagnostics.from_dict(d.to_dict()) == d  # survives a save and a load


def test_chunking_does_not_change_the_figures(monkeypatch):
    whole = mcmc_diagnostics(idata(), FlagSpec())
    monkeypatch.setattr(diagnostics, "SERIES_PER_CHUNK", 3)
    chunked = mcmc_diagnostics(idata(), FlagSpec())
    assert chunked.max_rhat == pytest.approx(whole.max_rhat)
    assert chunked.min_ess_bulk == pytest.approx(whole.min_ess_bulk)
