"""Small, fast versions of benchmarks/coverage/run.py: one replication each with known truth."""

import numpy as np
import pytest
from conftest import benchmark_script


@pytest.mark.slow
def test_intervals_cover_a_known_truth_on_pennsylvania():
    # simulated truth, seed 0 (well-specified scenario): see benchmarks/coverage/run.py
    cells, gaps = benchmark_script("coverage").replicate_pennsylvania("well-specified", 0, 300)
    assert len(cells) == 134 and len(gaps) == 67
    assert cells["covered"].mean() >= 0.85 and gaps["covered"].mean() >= 0.85
    model_error = ((cells["mean"] - cells["truth"]) ** 2).mean()
    direct_error = ((cells["direct_estimate"] - cells["truth"]) ** 2).mean()
    assert model_error < direct_error  # pooling beats the direct rates


@pytest.mark.slow
def test_spatial_fay_herriot_covers_a_known_truth_on_us_counties():
    # 3,107 counties x 4 groups, survey with estimated variances (seed 0): see run.py
    cells, gaps = benchmark_script("coverage").replicate_us_survey("estimated variances", 0, 200)
    assert len(cells) == 3107 * 4 and len(gaps) == 3107 * 3
    unsampled = cells["direct_estimate"].isna()
    assert unsampled.any() and cells.loc[unsampled, "mean"].notna().all()  # predicted, not dropped
    assert cells["covered"].mean() >= 0.88 and gaps["covered"].mean() >= 0.88
    sampled = cells[~unsampled]
    model_rmse = np.sqrt(((sampled["mean"] - sampled["truth"]) ** 2).mean())
    direct_rmse = np.sqrt(((sampled["direct_estimate"] - sampled["truth"]) ** 2).mean())
    assert model_rmse < 0.5 * direct_rmse
