"""Group-specific stratum effects (`[model] strata_by_group`, #10 item 6)."""

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import grid_areas
from test_design import with_strata
from test_inputs import spec

import sae
from sae.design import fixed_effect_coding
from sae.errors import SaeInputError
from sae.inputs import load_inputs
from sae.report import methods


def test_interaction_columns_are_the_stratum_dummy_times_the_group_indicator(cells, areas):
    data = with_strata(cells)
    result = load_inputs(spec(data={"strata": ["age"]}), cells=data, areas=areas)
    coding = fixed_effect_coding(result.cells.frame, result.cells, ("age",))
    # groups A (larger exposure: the baseline) and B; age levels old (baseline), young
    assert [t.label for t in coding] == ["age[young]", "age[young]:group[B]"]
    frame = result.cells.frame
    raw = ((frame["age"] == "young") & (frame["group"] == "B")).to_numpy(float)
    assert coding[1].values(frame) == pytest.approx(raw - raw.mean())


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"model": {"strata_by_group": ["sex"]}, "data": {"strata": ["age"]}},
      r"strata_by_group names \['sex'\], which are not among the strata \['age'\]"),
     ({"model": {"strata_by_group": ["age"], "group_effects": "none"},
       "data": {"strata": ["age"], "group": None}},
      "needs \\[data\\] group")],
)  # fmt: skip
def test_strata_by_group_needs_groups_and_known_strata(changes, message):
    with pytest.raises(SaeInputError, match=message):
        spec(**changes)


def age_pattern_cells(seed: int = 3) -> pd.DataFrame:
    """Group B's rate is 2 × A's among the old and equal to A's among the young (simulated truth,
    seed `seed`): a group × age interaction of log(1/2) on the young."""
    rng = np.random.default_rng(seed)
    rows = []
    for area in grid_areas(island=False)["area"]:
        for group, population in (("A", 50_000), ("B", 20_000)):
            for age, base in (("old", 2e-3), ("young", 5e-4)):
                ratio = 2.0 if (group, age) == ("B", "old") else 1.0
                rows.append({"area": area, "group": group, "age": age, "population": population,
                             "cases": rng.poisson(base * ratio * population)})  # fmt: skip
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def age_fits():
    areas, cells = grid_areas(island=False), age_pattern_cells()
    fits = {}
    for name, by_group in (("shared", ()), ("by group", ("age",))):
        s = spec(data={"strata": ["age"]}, model={"strata_by_group": list(by_group)},
                 output={"age_stratum": None, "reference_group": "A"})  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits[name] = sae.fit(s, cells=cells, areas=areas, progress=False)
    return fits


def test_group_specific_age_effects_recover_a_known_age_pattern(age_fits):
    beta = age_fits["by group"].idata.posterior["beta"].sel(term="age[young]:group[B]")
    # truth: the young's B/A log ratio is log(1/2) below the old's; one simulated data set, so a
    # 95% interval misses it 1 time in 20 (it did, by 0.004, once the draws' random numbers
    # changed): the 99% interval must hold it and lie below 0
    lower, upper = np.quantile(beta.to_numpy(), [0.005, 0.995])
    assert lower < np.log(0.5) < upper and upper < 0
    loo = {name: fit.check()["loo"].elpd_loo for name, fit in age_fits.items()}
    assert loo["by group"] > loo["shared"] + 10


def test_methods_say_which_stratum_effects_each_group_has(age_fits):
    assert "(age) are shared by every group" in methods(age_fits["shared"])
    text = methods(age_fits["by group"])
    assert "effects of age are estimated for each group separately" in text
    assert "shared by every group" not in text


def test_a_saved_fit_keeps_its_interaction_coding(age_fits, tmp_path):
    fit = age_fits["by group"]
    loaded = sae.load(fit.save(tmp_path / "out"))
    assert loaded.design.terms == fit.design.terms
    pd.testing.assert_frame_equal(loaded.estimates(), fit.estimates())
