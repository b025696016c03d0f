"""A small, fast version of benchmarks/coverage/run.py: one replication with known truth."""

import pytest
from conftest import benchmark_script


@pytest.mark.slow
def test_intervals_cover_a_known_truth_on_pennsylvania():
    # simulated truth, seed 0 (well-specified scenario): see benchmarks/coverage/run.py
    estimates, gaps = benchmark_script("coverage").replicate("well-specified", seed=0, draws=300)
    assert len(estimates) == 134 and len(gaps) == 67
    assert estimates["covered"].mean() >= 0.85 and gaps["covered"].mean() >= 0.85
    model_error = ((estimates["mean"] - estimates["true_rate"]) ** 2).mean()
    direct_error = ((estimates["crude"] - estimates["true_rate"]) ** 2).mean()
    assert model_error < direct_error  # pooling beats the direct rates
