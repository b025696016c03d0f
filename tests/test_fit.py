"""End-to-end fits on the synthetic map, where the truth is known (simulated, seed 0)."""

import dataclasses
import json
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import simulated_cells, write_spec

import sae
from sae.cli import main
from sae.gaps import GAP_COLUMNS
from sae.tables import ESTIMATE_COLUMNS


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """Two groups with true rate ratio 2; the island has no population, so no data."""
    from conftest import grid_areas

    areas = grid_areas()
    cells, truth = simulated_cells(areas, seed=0)
    cells.loc[cells["area"] == "island", ["cases", "population"]] = 0
    directory = tmp_path_factory.mktemp("synthetic")
    spec = write_spec(directory, cells, areas, '[model]\ngroup_effects = "iid"\n')
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = sae.fit(spec, progress=False)
    return fit, truth, directory


@pytest.mark.slow
def test_estimates_have_the_documented_columns_and_a_row_per_cell(synthetic):
    fit, _, _ = synthetic
    estimates = fit.estimates()
    assert tuple(estimates.columns[:13]) == tuple(
        c.format(exposure="population") for c in ESTIMATE_COLUMNS
    )
    assert len(estimates) == 21 * 2
    assert set(estimates["flag"]) <= {"reliable", "caution", "model-driven", "unreliable"}


@pytest.mark.slow
def test_group_rate_ratio_recovered(synthetic):
    fit, _, _ = synthetic
    effect = fit.idata.posterior["group_effect"].sel(compared_group="B").to_numpy().ravel()
    lower, upper = np.quantile(effect, [0.025, 0.975])
    assert lower < np.log(2.0) < upper  # simulated truth: B's rate is twice A's


@pytest.mark.slow
def test_intervals_cover_the_true_rates(synthetic):
    fit, truth, _ = synthetic
    estimates = fit.estimates().merge(truth, on=["area", "group"])
    with_data = estimates[estimates["has_data"]]
    true_rate = with_data["rate"] * 100_000
    covered = (with_data["lower"] <= true_rate) & (true_rate <= with_data["upper"])
    assert covered.mean() >= 0.85


@pytest.mark.slow
def test_island_without_data_gets_its_prior_and_is_flagged(synthetic):
    fit, _, _ = synthetic
    posterior = fit.idata.posterior
    island = posterior["area_effect"].sel(area="island").to_numpy().ravel()
    sigma = posterior["area_sigma"].to_numpy().ravel()
    # no data and no neighbours: b_island | σ ~ N(0, σ²), so E[b] = 0 and Var[b] = E[σ²]
    assert abs(island.mean()) < 4 * island.std() / np.sqrt(len(island) / 4)
    assert island.var() == pytest.approx(np.mean(sigma**2), rel=0.2)
    rows = fit.estimates().query("area == 'island'")
    assert (rows["flag"] == "unreliable").all()
    assert rows["flag_reason"].str.startswith("no data").all()


@pytest.mark.slow
def test_save_and_load_round_trip(synthetic, tmp_path):
    fit, _, _ = synthetic
    out = fit.save(tmp_path / "result")
    for name in (
        "posterior.nc",
        "estimates.csv",
        "diagnostics.json",
        "spec.toml",
        "provenance.json",
    ):
        assert (out / name).is_file()
    diagnostics = json.loads((out / "diagnostics.json").read_text())
    assert {"max_rhat", "min_ess_bulk", "divergences"} <= set(diagnostics)
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["seed"] == 7 and provenance["written_by"] == "sae"
    assert set(provenance["inputs"]) == {"cells", "areas"} and provenance["spec_file"]["sha256"]
    restored = sae.load(out)
    assert restored.estimates()["mean"].to_numpy() == pytest.approx(
        fit.estimates()["mean"].to_numpy()
    )
    with pytest.raises(FileExistsError, match="not empty"):
        fit.save(out)
    fit.save(out, force=True)
    assert not list(tmp_path.glob(".result*"))  # no staging or backup directory left behind


@pytest.mark.slow
def test_command_line_fit_with_bym2_group_effects(synthetic, tmp_path, capsys):
    _, _, directory = synthetic
    spec = directory / "spec.toml"
    spec_bym2 = directory / "spec_bym2.toml"
    spec_bym2.write_text(
        spec.read_text().replace('group_effects = "iid"', 'group_effects = "bym2"')
    )
    out = tmp_path / "cli"
    assert (
        main(
            ["fit", str(spec_bym2), "--out", str(out), "--quiet", "--draws", "200", "--tune", "200"]
        )
        == 0
    )
    assert "flags:" in capsys.readouterr().out
    estimates = (out / "estimates.csv").read_text().splitlines()
    assert len(estimates) == 1 + 42
    assert main(["fit", str(spec_bym2), "--out", str(out), "--quiet"]) == 2
    assert "not empty" in capsys.readouterr().err


def test_command_line_reports_bad_input_without_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[model]\nfamily = "gamma"\n')
    assert main(["fit", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "family = 'gamma' is not known" in err and "Traceback" not in err


@pytest.mark.slow
def test_gaps_recover_the_true_rate_ratio(synthetic):
    fit, _, _ = synthetic
    gaps = fit.gaps("A")
    assert list(gaps.columns[: len(GAP_COLUMNS)]) == list(GAP_COLUMNS)
    with_data = gaps[gaps["area"] != "island"]
    covered = (with_data["ratio_lower"] <= 2.0) & (with_data["ratio_upper"] >= 2.0)
    assert covered.mean() >= 0.85  # simulated truth: B's rate is twice A's in every area
    overall = fit.overall("A").set_index("group")
    assert overall.loc["B", "ratio_lower"] < 2.0 < overall.loc["B", "ratio_upper"]
    island = gaps[gaps["area"] == "island"].iloc[0]  # no data: both rates are the model's
    assert "unreliable" in island["flag_reason"]


@pytest.mark.slow
def test_excess_events_match_a_hand_computation(synthetic):
    # no strata: excess = population_B × (θ_B − θ_A) / per, draw by draw
    fit, _, _ = synthetic
    rates = fit.rate_draws(("area", "group"))
    area = "a11"
    theta = {g: rates.isel(unit=np.flatnonzero((rates["area"] == area).values & (rates["group"] == g).values)[0])
             for g in ("A", "B")}  # fmt: skip
    population = fit.inputs.cells.frame.query("area == @area and group == 'B'")["exposure"].item()
    difference = theta["B"].to_numpy().astype(float) - theta["A"].to_numpy()
    expected = (population * difference / fit.spec.per).mean()
    row = fit.gaps("A").set_index("area").loc[area]
    # the rate draws are float32 (`posterior.RATE_DTYPE`), and sae forms each draw's excess in
    # float32: agreement to float32's precision, not float64's
    assert row["excess"] == pytest.approx(expected, rel=1e-6)


@pytest.mark.slow
def test_maps_and_report_from_the_command_line(synthetic, tmp_path, capsys):
    fit, _, _ = synthetic
    out = fit.save(tmp_path / "saved")
    assert main(["map", str(out)]) == 0
    assert {p.name for p in (out / "maps").iterdir()} >= {"estimates.png", "gaps.pdf", "map.html"}
    assert main(["map", str(out)]) == 2  # maps exist: not redrawn without --force
    assert main(["report", str(out)]) == 0
    report = (out / "report.html").read_text()
    assert "<h2>Methods</h2>" in report and "data:image/png;base64," in report
    assert "island" in report  # listed in the data notes as an island and a cell without data
    assert "<script" not in report and "http" not in report


@pytest.mark.slow
def test_report_escapes_hostile_area_names(synthetic, tmp_path):
    from sae.report import write_report

    fit, _, _ = synthetic
    hostile = "<script>alert('x')</script>"
    ids = pd.Series(fit.inputs.graph.ids, index=fit.inputs.graph.ids)
    names = ids.where(ids != "island", hostile)
    renamed = dataclasses.replace(fit, inputs=dataclasses.replace(fit.inputs, names=names))
    html = write_report(renamed, tmp_path).read_text()
    assert hostile not in html and "&lt;script&gt;alert" in html


@pytest.mark.slow
def test_binomial_fit_with_the_pymc_backend(tmp_path):
    # known truth (seed 3): prevalence 20% in every area, 200 trials per area
    from conftest import grid_areas

    areas = grid_areas(nrow=3, ncol=3, island=False)
    rng = np.random.default_rng(3)
    cells = areas[["area"]].assign(positive=rng.binomial(200, 0.2, len(areas)), tested=200)
    spec = sae.spec_from_dict({
        "data": {"area_id": "area", "count": "positive", "trials": "tested"},
        "model": {"family": "binomial", "group_effects": "none"},
        "sampler": {"backend": "pymc", "chains": 2, "draws": 300, "tune": 300, "seed": 3},
    })  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = sae.fit(spec, cells=cells, areas=areas, progress=False)
    estimates = fit.estimates()
    assert "trials" in estimates.columns and fit.spec.per == 100  # percent
    assert ((estimates["lower"] < 20) & (estimates["upper"] > 20)).mean() >= 0.8
    assert (estimates["crude"] == estimates["observed"] / 200 * 100).all()


@pytest.mark.slow
def test_model_checks_on_the_synthetic_fit(synthetic):
    from scipy import stats

    from sae import checks

    fit, _, _ = synthetic
    result = fit.check()
    assert np.isfinite(result["loo"].elpd_loo)
    ppc = result["posterior_predictive"].set_index(["statistic", "rows"])
    assert ppc.loc[("total", "all rows"), "observed"] == fit.inputs.cells.frame["count"].sum()
    # the model was simulated from: no misfit in any statistic
    assert ppc["p_value"].between(0.01, 0.99).all()
    assert set(result["group_deviation_morans_i"]["group"]) == set(fit.design.groups)
    eta = checks.predictor_draws(fit)
    rows = fit.design.rows
    log_lik = checks.pointwise_log_likelihood(fit)
    expected = np.exp(eta[0, 0, 0] + rows.offset[0])  # E × rate, the Poisson mean of row 0
    assert log_lik[0, 0, 0] == pytest.approx(stats.poisson.logpmf(rows.response[0], expected))
    assert -1.0 <= result["residual_morans_i"]["morans_i"] <= 1.0


@pytest.mark.slow
def test_prior_predictive_replicates_every_data_row(synthetic):
    from sae.prior_predictive import prior_predictive

    fit, _, _ = synthetic
    summary, replicated = prior_predictive(fit, draws=200)
    assert replicated.shape == (200, len(fit.design.rows.response))
    assert (replicated >= 0).all() and len(summary) == 200


def small_fit(spec, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sae.fit(spec, progress=False, **kwargs)


def posterior_bytes(fit) -> bytes:
    posterior = fit.idata.posterior
    return b"".join(posterior[name].to_numpy().tobytes() for name in sorted(posterior.data_vars))


@pytest.mark.slow
def test_same_spec_and_seed_give_the_same_draws_whatever_ran_before(tmp_path):
    from conftest import grid_areas

    areas = grid_areas()
    cells = simulated_cells(areas, seed=1)[0]
    spec = write_spec(tmp_path, cells, areas, '[model]\nspatial = "bym2"\n')
    first = small_fit(spec)
    np.random.seed(123)  # disturb every global state a test suite might touch
    small_fit(sae.load_spec(spec).replace(model={"group_effects": "bym2"}, sampler={"seed": 9}))
    again = small_fit(spec)
    assert posterior_bytes(first) == posterior_bytes(again)
    assert first.estimates().equals(again.estimates())


@pytest.mark.slow
def test_a_spec_without_a_group_column_fits_without_group_effects(tmp_path):
    # written from the README with only the required keys: no group, default group_effects
    from conftest import grid_areas

    areas = grid_areas()
    cells = simulated_cells(areas, seed=2)[0].query("group == 'A'").drop(columns="group")
    cells.to_csv(tmp_path / "tracts.csv", index=False)
    areas.to_file(tmp_path / "tracts.gpkg", driver="GPKG")
    (tmp_path / "spec.toml").write_text(
        '[data]\ncells = "tracts.csv"\nareas = "tracts.gpkg"\narea_id = "area"\n'
        'count = "cases"\npopulation = "population"\n[sampler]\nchains = 2\ndraws = 200\n'
        "tune = 200\n"
    )
    fit = small_fit(tmp_path / "spec.toml")
    assert fit.spec.model.group_effects == "none"
    estimates = fit.estimates()
    assert len(estimates) == 21 and set(estimates["group"]) == {"all"}


@pytest.mark.slow
def test_plain_fay_herriot_from_a_table_alone_needs_no_polygons(tmp_path):
    from conftest import ROOT

    milk = ROOT / "benchmarks" / "milk_fay_herriot" / "milk.csv"
    (tmp_path / "milk.toml").write_text(
        f'[data]\ncells = "{milk}"\narea_id = "SmallArea"\nestimate = "yi"\nse = "SD"\n'
        '[model]\nfamily = "gaussian"\nspatial = "none"\n'
        "[sampler]\nchains = 2\ndraws = 200\ntune = 200\n"
    )
    fit = small_fit(tmp_path / "milk.toml")
    assert fit.inputs.areas is None and len(fit.inputs.graph.edges) == 0
    assert len(fit.estimates()) == 43
    with pytest.raises(sae.SaeInputError, match="no polygons"):
        fit.save(tmp_path / "out", maps=True)


@pytest.mark.slow
def test_area_names_from_the_cells_table_reach_every_output(synthetic, tmp_path):
    fit, _, directory = synthetic
    cells = fit.inputs.cells.frame[["area", "group", "count", "exposure"]].rename(
        columns={"count": "cases", "exposure": "population"}
    )
    cells["county"] = "County " + cells["area"]
    spec = write_spec(tmp_path, cells, fit.inputs.areas.rename(columns={}),
                      '[model]\ngroup_effects = "iid"\n').read_text()  # fmt: skip
    (tmp_path / "spec.toml").write_text(
        spec.replace('area_id = "area"', 'area_id = "area"\narea_name = "county"')
    )
    named = small_fit(tmp_path / "spec.toml")
    estimates = named.estimates()
    assert list(estimates.columns[:3]) == ["area", "name", "group"]
    assert (estimates["name"] == "County " + estimates["area"]).all()
    assert (named.gaps()["name"] == "County " + named.gaps()["area"]).all()
    out = named.save(tmp_path / "out", report=True)
    assert "County a" in (out / "report.html").read_text()
    assert "County a11" in (out / "maps" / "map.html").read_text()
    assert named.inputs.sources["names"]["from"].endswith("cells.csv")
