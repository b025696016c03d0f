"""Model checks: Moran's I against hand-computed values, log-likelihood against scipy."""

import numpy as np
import pytest

from sae.checks import morans_i


def test_morans_i_on_a_path_graph_matches_hand_computation():
    # path a-b-c-d with values 1, 2, 3, 4: z = (-1.5, -0.5, 0.5, 1.5), Σ_edges z_i z_j = 0.75 + (-0.25) + 0.75
    # I = n / (2E) · 2 Σ_edges z_i z_j / Σ z² = 4 / 6 · 2.5 / 5 = 1/3 (computed here by hand)
    edges = np.array([[0, 1], [1, 2], [2, 3]])
    result = morans_i(np.array([1.0, 2.0, 3.0, 4.0]), edges, permutations=99)
    assert result["morans_i"] == pytest.approx(1 / 3)
    assert result["expected_under_null"] == pytest.approx(-1 / 3)


def test_morans_i_detects_smooth_and_checkerboard_patterns():
    n = 10
    rows, cols = np.divmod(np.arange(n * n), n)
    right = [(k, k + 1) for k in range(n * n) if cols[k] < n - 1]
    down = [(k, k + n) for k in range(n * n) if rows[k] < n - 1]
    edges = np.array(right + down)
    smooth = morans_i(rows + cols + 0.0, edges)
    checker = morans_i(((rows + cols) % 2) * 1.0, edges)
    assert smooth["morans_i"] > 0.8 and smooth["p_value"] < 0.01
    assert checker["morans_i"] == pytest.approx(-1.0) and checker["p_value"] == 1.0


def test_dispersion_and_loo_pit_checks_fail_where_totals_cannot():
    # The audit's case (#10): a model without the data's extra variation, fitted to strongly
    # overdispersed counts (a log-normal factor, sd 0.6, on every area × group row), passes the
    # total check (p 0.51 then) and must fail the dispersion check.
    import warnings

    from conftest import grid_areas, simulated_cells

    import sae
    from sae.spec_file import spec_from_dict

    areas = grid_areas(nrow=6, ncol=6)
    cells = simulated_cells(areas, seed=2)[0]
    rng = np.random.default_rng(8)
    rate = 0.002 * np.exp(rng.normal(0.0, 0.6, len(cells)))
    cells["cases"] = rng.poisson(rate * cells["population"])
    spec = spec_from_dict({"data": {"area_id": "area", "group": "group", "count": "cases",
                                    "population": "population"},
                           "model": {"group_effects": "none"}})  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = sae.fit(spec, cells=cells, areas=areas, progress=False)
    result = fit.check()
    ppc = result["posterior_predictive"].set_index(["statistic", "rows"])["p_value"]
    assert 0.05 < ppc[("total", "all rows")] < 0.95
    assert ppc[("dispersion (Pearson χ²)", "all rows")] < 0.01
    # the LOO-PIT of a too-narrow predictive piles up at 0 and 1 (measured: KS p 4e-9)
    pit = result["loo_pit"]
    assert pit["p_value"] < 0.001
    outer = ((pit["pit"] < 0.2) | (pit["pit"] > 0.8)).mean()
    assert outer > 0.6  # 0.4 if uniform
