"""Events of unknown group (`[data] unknown_group_count`, #12): the thinned Poisson likelihood,
its input checks, and recovering known rates when race is missing at random."""

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import grid_areas
from scipy import stats

import sae
from sae.errors import SaeInputError
from sae.inputs import load_inputs
from sae.spec_file import spec_from_dict
from sae.unknown_group import UnknownGroups

BASE = {"area_id": "area", "group": "group", "count": "cases", "population": "population",
        "unknown_group_count": "unknown"}  # fmt: skip


def spec(data=None, **sections):
    raw = {"data": {**BASE, **(data or {})}, "sampler": {"method": "nuts", "chains": 2,
           "draws": 300, "tune": 300, "seed": 3}, **sections}  # fmt: skip
    return spec_from_dict(raw)


def test_the_factorised_likelihood_differs_from_sae_s_by_a_constant_in_mu():
    # two blocks: rows 0-2 in block 0 (u = 4), row 3 alone in block 1 (u = 1), row 4 in none
    unknown = UnknownGroups(np.array([0, 0, 0, 1, -1]), np.array([4.0, 1.0]),
                            np.array([9.0, 2.0]))  # fmt: skip
    y = np.array([3, 5, 1, 2, 7])
    rng = np.random.default_rng(0)
    differences = []
    for _ in range(2):
        mu = rng.uniform(1.0, 10.0, 5)
        sae_terms = stats.poisson.logpmf(y, mu).sum() + unknown.log_likelihood(mu).sum()
        thinned = np.exp(unknown.thinned_offset(np.log(mu)))
        joint = (stats.poisson.logpmf(y, thinned).sum() + stats.poisson.logpmf(
            unknown.count, unknown.missing_share * unknown.block_sums(mu)).sum())  # fmt: skip
        differences.append(joint - sae_terms)
    assert unknown.missing_share == pytest.approx([4 / 13, 1 / 3])
    assert differences[0] == pytest.approx(differences[1], abs=1e-9)  # θ-free: π̂ factors out


def mar_cells(seed: int = 4, odds: float = 1.0, lowest: float = 0.05, highest: float = 0.4):
    """Two groups, B's rate twice A's; each area's events lose their group with probability
    Uniform(lowest, highest) for A and the probability whose odds are `odds` times that for B
    (1: missing at random within the area). Simulated truth with seed `seed`."""
    rng = np.random.default_rng(seed)
    areas = grid_areas(island=False)
    rows = []
    for area, lose in zip(areas["area"], rng.uniform(lowest, highest, len(areas)), strict=True):
        scaled = odds * lose / (1 - lose)
        for group, rate, population, p in (("A", 1e-3, 40_000, lose),
                                           ("B", 2e-3, 15_000, scaled / (1 + scaled))):  # fmt: skip
            cases = rng.poisson(rate * population)
            known = rng.binomial(cases, 1 - p)
            rows.append({"area": area, "group": group, "population": population, "cases": known,
                         "lost": cases - known, "truth": rate * 1e5})  # fmt: skip
    cells = pd.DataFrame(rows)
    cells["unknown"] = cells.groupby("area")["lost"].transform("sum")
    return cells, areas


@pytest.fixture(scope="module")
def mar_fits():
    cells, areas = mar_cells()
    fits = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits["modelled"] = sae.fit(spec(), cells=cells.drop(columns="lost"), areas=areas,
                                   progress=False)  # fmt: skip
        laplace = spec().replace(sampler={"method": "laplace"})
        fits["laplace"] = sae.fit(laplace, cells=cells.drop(columns="lost"), areas=areas,
                                  progress=False)  # fmt: skip
        ignored = {k: v for k, v in BASE.items() if k != "unknown_group_count"}
        fits["ignored"] = sae.fit(spec_from_dict({"data": ignored, "sampler": spec().sampler.__dict__}),
                                  cells=cells.drop(columns=["lost", "unknown"]), areas=areas,
                                  progress=False)  # fmt: skip
    return fits, cells


def test_modelling_unknown_group_events_recovers_the_rates(mar_fits):
    fits, cells = mar_fits
    truth = cells.set_index(["area", "group"])["truth"]
    bias = {}
    for name, fit in fits.items():
        est = fit.estimates().set_index(["area", "group"])
        bias[name] = float((est["mean"] / truth.reindex(est.index) - 1).mean())
    # simulated truth: about 22% of events lost their group; ignoring them biases rates down
    assert bias["ignored"] < -0.12
    assert abs(bias["modelled"]) < 0.06
    assert abs(bias["laplace"]) < 0.06


def test_the_laplace_method_agrees_with_nuts_on_unknown_group_events(mar_fits):
    fits, _ = mar_fits
    nuts, laplace = (
        fits[m].estimates().set_index(["area", "group"]) for m in ("modelled", "laplace")
    )
    # measured with 4 × 1000 NUTS draws: means within 0.7%, interval ends within 3.1%; here NUTS
    # has 2 × 300 draws, whose Monte Carlo error is about 3% at the interval ends
    for column in ("mean", "lower", "upper", "unknown_allocated"):
        assert np.abs(laplace[column] / nuts[column] - 1).max() < 0.08, column
    assert np.median(np.abs(laplace["mean"] / nuts["mean"] - 1)) < 0.02
    assert fits["laplace"].diagnostics.method == "laplace"
    assert laplace["unknown_allocated"].sum() == pytest.approx(
        fits["laplace"].design.unknown.count.sum(), rel=1e-9
    )


def test_the_blocks_likelihood_terms_are_its_exact_derivatives():
    """`sae.latent_likelihood` against finite differences: u_b log Σ μ couples a block's rows."""
    from sae.family import Poisson, RowData
    from sae.latent_likelihood import LatentLikelihood

    unknown = UnknownGroups(np.array([0, 0, 0, 1, -1, 1]), np.array([4.0, 1.0]),
                            np.array([9.0, 2.0]))  # fmt: skip
    rows = RowData(np.array([3.0, 5, 1, 2, 7, 0]), np.log([2.0, 3, 1, 4, 2, 1]), np.zeros(6),
                   np.zeros(6))  # fmt: skip
    likelihood = LatentLikelihood(Poisson(), rows, unknown)
    eta = np.random.default_rng(1).normal(0.0, 0.5, 6)
    terms = likelihood.curvature(eta)
    step = 1e-5 * np.eye(6)
    total = lambda e: likelihood.log_density(e).sum()  # noqa: E731
    gradient = [(total(eta + h) - total(eta - h)) / 2e-5 for h in step]
    assert terms.gradient == pytest.approx(gradient, abs=1e-8)
    hessian = np.column_stack([(likelihood.curvature(eta - h).gradient
                                - likelihood.curvature(eta + h).gradient) / 2e-5 for h in step])  # fmt: skip
    assembled = np.diag(terms.weight)
    assembled[terms.pairs.first, terms.pairs.second] = terms.cross
    assert np.abs(assembled - hessian).max() < 1e-6
    assert min(assembled[0, 1], assembled[0, 2], assembled[1, 2]) > 0.1  # the rows are coupled
    shifts = np.random.default_rng(2).normal(0.0, 1e-2, (3, 6))
    expansion = terms.expansion(shifts).sum(axis=1)
    assert expansion == pytest.approx([total(eta + d) for d in shifts], abs=1e-4)


def test_allocation_conserves_the_unknown_events_and_flags_say_so(mar_fits):
    fits, cells = mar_fits
    est = fits["modelled"].estimates()
    total_unknown = cells.drop_duplicates("area")["unknown"].sum()
    assert est["unknown_allocated"].sum() == pytest.approx(total_unknown, rel=1e-9)
    assert (est["unknown_allocated_lower"] <= est["unknown_allocated"]).all()
    assert (est["unknown_allocated"] <= est["unknown_allocated_upper"]).all()
    assert (est["unknown_allocated_upper"] > est["unknown_allocated_lower"]).any()
    # B holds 15,000 × 2e-3 = 30 of every area's 70 expected events: its share of the unknown
    b = est[est["group"] == "B"]["unknown_allocated"].sum() / total_unknown
    assert 0.35 < b < 0.51
    assert est["flag_reason"].str.contains("without a recorded group").any()
    from sae.report import methods

    text = methods(fits["modelled"])
    assert "had no recorded group" in text and "does not depend on the group" in text
    loo = fits["modelled"].check()["loo"]  # rows and one term per block with unknown events
    assert loo.n_data_points == len(fits["modelled"].design.area) + len(
        fits["modelled"].design.unknown.count
    )


@pytest.mark.parametrize(
    ("change", "sections", "message"),
    [(lambda c: c.assign(unknown=np.where(c.index == 1, 99, c["unknown"])), {},
      "differs between the groups' rows of the same area at row 0, row 1"),
     (lambda c: c.assign(unknown=c["unknown"].where(c.index > 1, 60_000)), {},
      "together exceed the population of their area at row 0, row 1"),
     (lambda c: c.assign(unknown=c["unknown"].astype(float).where(c.index != 2, 1.5)), {},
      "'unknown' \\(count\\) is not a whole number at row 2")],
)  # fmt: skip
def test_unknown_group_counts_that_cannot_be_right_are_refused(change, sections, message):
    cells, areas = mar_cells()
    with pytest.raises(SaeInputError, match=message):
        load_inputs(spec(**sections), cells=change(cells), areas=areas)


@pytest.mark.parametrize(
    ("data", "sampler", "message"),
    [({"group": None}, {}, "needs \\[data\\] group"),
     ({}, {"method": "laplace"}, 'with \\[model\\] unknown_group_odds needs \\[sampler\\] method = "nuts"')],
)  # fmt: skip
def test_unknown_group_settings_are_checked(data, sampler, message):
    raw = {"data": {**BASE, **data}, "sampler": {"method": "nuts", **sampler},
           "model": {"unknown_group_odds": {"group": "B", "odds": 2.0}}}  # fmt: skip
    if data.get("group", "x") is None:
        raw["model"] = {"group_effects": "none"}
    with pytest.raises(SaeInputError, match=message):
        spec_from_dict(raw)


def differential_cells():
    """B's events lack their group at 3 times A's odds: missing at random fails."""
    cells, areas = mar_cells(seed=5, odds=3.0, lowest=0.1)
    return cells.drop(columns="lost"), areas


def test_the_odds_setting_shows_how_far_the_rates_move_when_race_is_not_missing_at_random():
    cells, areas = differential_cells()
    truth = cells.set_index(["area", "group"])["truth"]
    bias, means = {}, {}
    for name, model in (("mar", {}), ("odds 1", {"unknown_group_odds": {"group": "B", "odds": 1.0}}),
                        ("odds 3", {"unknown_group_odds": {"group": "B", "odds": 3.0}})):  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = sae.fit(spec(model=model), cells=cells, areas=areas, progress=False)
        est = fit.estimates().set_index(["area", "group"])
        means[name] = est["mean"]
        bias[name] = (est["mean"] / truth.reindex(est.index) - 1).groupby(level="group").mean()
    # measured: missing at random assumed, A +15% and B −20%; with the true odds, within 1%
    assert bias["mar"]["A"] > 0.08 and bias["mar"]["B"] < -0.1
    assert bias["odds 3"].abs().max() < 0.06
    # odds 1 is missing at random with π as a parameter (uniform prior): the same posterior
    assert np.abs(means["odds 1"] / means["mar"] - 1).max() < 0.03
    with pytest.raises(SaeInputError, match="sensitivity analysis"):
        fit.check()


def test_the_odds_group_must_exist():
    cells, areas = differential_cells()
    with pytest.raises(SaeInputError, match="names the group 'C'"):
        load_inputs(spec(model={"unknown_group_odds": {"group": "C", "odds": 2.0}}), cells=cells,
                    areas=areas)  # fmt: skip
