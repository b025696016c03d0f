"""A saved fit is self-contained, records what was fitted, and is kept when a derived output fails."""

import hashlib
import json
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import grid_areas, simulated_cells, write_spec

import sae
from sae.errors import SaeOutputError


@pytest.fixture(scope="module")
def aged(tmp_path_factory):
    """The synthetic map with two age bands, the user's own standard population, and the cells
    passed as a DataFrame (one row fewer than the spec's CSV)."""
    folder = tmp_path_factory.mktemp("aged")
    areas = grid_areas(island=False)
    cells = simulated_cells(areas, seed=4)[0]
    cells = pd.concat([cells.assign(age="0-49"), cells.assign(age="50+")], ignore_index=True)
    (folder / "standard.csv").write_text("age,weight\n0-49,0.7\n50+,0.3\n")
    spec = write_spec(
        folder, cells, areas,
        '[output]\nage_stratum = "age"\nstandard_population = "standard.csv"\n',
    )  # fmt: skip
    spec.write_text(
        spec.read_text().replace(
            'population = "population"', 'population = "population"\nstrata = ["age"]'
        )
    )
    used = cells.iloc[1:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = sae.fit(spec, cells=used, progress=False)
    return fit, used, folder


@pytest.mark.slow
def test_provenance_records_the_dataframe_that_was_fitted(aged, tmp_path):
    fit, used, _ = aged
    out = fit.save(tmp_path / "out")
    record = json.loads((out / "provenance.json").read_text())["inputs"]["cells"]
    assert record["object"] == "the cells DataFrame" and record["rows"] == len(used)
    digest = hashlib.sha256(pd.util.hash_pandas_object(used, index=True).to_numpy().tobytes())
    assert record["sha256_of_content"] == digest.hexdigest()


@pytest.mark.slow
def test_a_saved_fit_loads_after_moving_without_its_inputs(aged, tmp_path):
    fit, _, folder = aged
    saved = fit.save(tmp_path / "out")
    moved = tmp_path / "elsewhere" / "fit"
    moved.parent.mkdir()
    shutil.move(saved, moved)
    (folder / "standard.csv").rename(folder / "standard.moved")  # the user's file is gone
    try:
        restored = sae.load(moved)
        assert "/" not in restored.spec.source.name if restored.spec.source else True
        assert np.allclose(restored.estimates()["adj_mean"], fit.estimates()["adj_mean"])
        assert restored.inputs.age_weights.to_dict() == pytest.approx({"0-49": 0.7, "50+": 0.3})
    finally:
        (folder / "standard.moved").rename(folder / "standard.csv")
    text = (moved / "spec.toml").read_text()
    assert str(folder) not in text  # paths are written relative to the result folder


@pytest.mark.slow
def test_a_failed_map_keeps_the_posterior_and_says_how_to_finish(aged, tmp_path, monkeypatch):
    fit, _, _ = aged

    def broken(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr("sae.fit_maps.write_maps", broken)
    out = tmp_path / "out"
    with pytest.raises(SaeOutputError, match="the fit is saved .*sae report .*sae map"):
        fit.save(out, maps=True)
    assert (out / "posterior.nc").is_file() and not (out / "maps").exists()
    assert not (out / "estimates.csv").exists()
    monkeypatch.undo()
    from sae.cli import main

    assert main(["report", str(out)]) == 0  # tables, maps and report, from the saved posterior
    assert {"estimates.csv", "gaps.csv", "report.html", "maps"} <= {p.name for p in out.iterdir()}


def test_suppress_writes_a_publication_table_with_unreliable_numbers_blanked(tmp_path):
    areas = grid_areas()
    cells = simulated_cells(areas, seed=4)[0]
    cells.loc[cells.index[:3], ["population", "cases"]] = 0  # no people: unreliable, no data
    spec = write_spec(tmp_path, cells, areas, "[output]\nsuppress = true\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = sae.fit(spec, progress=False)
    fit.save(tmp_path / "out")
    full = pd.read_csv(tmp_path / "out" / "estimates.csv")
    published = pd.read_csv(tmp_path / "out" / "estimates_published.csv")
    hidden = full["flag"] == "unreliable"
    assert hidden.sum() >= 3  # the cells without people, at least
    numbers = ["crude", "mean", "median", "sd", "lower", "upper", "rse", "relative_width"]
    assert published.loc[hidden, numbers].isna().all().all()
    # the reason stays beside the blank; every other number is published unchanged
    assert (published.loc[hidden, "flag_reason"] == full.loc[hidden, "flag_reason"]).all()
    pd.testing.assert_frame_equal(published.loc[~hidden], full.loc[~hidden])
    assert (published[["area", "group", "observed", "population"]]
            .equals(full[["area", "group", "observed", "population"]]))  # fmt: skip


def test_without_suppress_no_publication_table_is_written(tmp_path):
    spec = write_spec(tmp_path, simulated_cells(grid_areas())[0], grid_areas())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sae.fit(spec, progress=False).save(tmp_path / "out")
    assert not (tmp_path / "out" / "estimates_published.csv").exists()


def test_age_effects_are_by_group_by_default_and_the_report_says_so(aged):
    # #10 item 6: with an age stratum and groups, each group has its own age effects by default
    from sae.report import methods

    fit, _, _ = aged
    assert fit.spec.model.strata_by_group == ("age",)
    assert "age[50+]:group[B]" in fit.design.terms
    text = methods(fit)
    assert "effects of age are estimated for each group separately" in text
