"""Many fits on a real Dask LocalCluster (2 workers, no mocks): the good fits finish, a bad one
writes its error beside its folder, and a re-run skips what is unchanged (#14)."""

import pandas as pd
import pytest
from conftest import grid_areas, simulated_cells, write_spec

from sae.batch import jobs_from
from sae.errors import SaeInputError


def batch_folder(tmp_path):
    """seeds.toml varies the seed (3 fits); bad.toml reads cells with a negative count."""
    areas = grid_areas(island=False)
    cells = simulated_cells(areas, seed=1)[0]
    spec = write_spec(tmp_path, cells, areas)
    text = spec.read_text()
    (tmp_path / "seeds.toml").write_text(text + '\n[batch]\n"sampler.seed" = [1, 2, 3]\n')
    cells.assign(cases=cells["cases"].where(cells.index != 3, -1)).to_csv(
        tmp_path / "bad_cells.csv", index=False
    )
    (tmp_path / "bad.toml").write_text(
        text.replace('cells = "cells.csv"', 'cells = "bad_cells.csv"')
    )
    spec.unlink()
    return [tmp_path / "seeds.toml", tmp_path / "bad.toml"]


@pytest.mark.slow
def test_a_batch_on_a_local_cluster_finishes_the_good_fits_and_skips_them_when_rerun(tmp_path):
    from sae import fit_many

    specs = batch_folder(tmp_path)
    out = tmp_path / "out"
    first = fit_many(specs, out, workers=2, threads_per_fit=1)
    status = dict(zip(first["fit"], first["status"], strict=True))
    assert status == {"seeds__seed-1": "fitted", "seeds__seed-2": "fitted",
                      "seeds__seed-3": "fitted", "bad": "failed"}  # fmt: skip
    assert "negative" in (out / "bad.error.txt").read_text()
    assert not (out / "bad").exists()
    for name in ("seeds__seed-1", "seeds__seed-2", "seeds__seed-3"):
        assert (out / name / "estimates.csv").is_file() and (
            out / name / "provenance.json"
        ).is_file()
    one, two = (pd.read_csv(out / f"seeds__seed-{s}" / "estimates.csv") for s in (1, 2))
    assert not one["mean"].equals(two["mean"])  # the seed really varied
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["fit"]) == list(first["fit"]) and (summary["peak_memory_mb"] > 0).all()
    assert 'href="seeds__seed-1/"' in (out / "index.html").read_text()

    again = fit_many(specs, out, workers=2, threads_per_fit=1, memory_per_fit=300)
    status = dict(zip(again["fit"], again["status"], strict=True))
    assert status == {"seeds__seed-1": "skipped", "seeds__seed-2": "skipped",
                      "seeds__seed-3": "skipped", "bad": "failed"}  # fmt: skip
    assert again.set_index("fit").loc["seeds__seed-1", "reliable"] == first.set_index(
        "fit").loc["seeds__seed-1", "reliable"]  # fmt: skip


def test_batch_placeholders_fill_text_settings_and_must_be_used(tmp_path):
    (tmp_path / "a.toml").write_text(
        '[data]\ncells = "cells_{outcome}.csv"\narea_id = "area"\ncount = "y"\n'
        'population = "pop"\n[model]\nspatial = "none"\n'
        '[batch]\noutcome = ["lung", "colon"]\n"model.group_effects" = ["none"]\n'
    )
    jobs = jobs_from([tmp_path / "*.toml"])
    assert [j.name for j in jobs] == ["a__outcome-lung__group_effects-none",
                                      "a__outcome-colon__group_effects-none"]  # fmt: skip
    assert jobs[1].raw["data"]["cells"] == "cells_colon.csv"
    (tmp_path / "a.toml").write_text('[data]\ncells = "cells.csv"\n[batch]\noutcome = ["lung"]\n')
    with pytest.raises(SaeInputError, match=r"no text setting contains \{outcome\}"):
        jobs_from([tmp_path / "a.toml"])


def test_a_fit_s_thread_pools_are_capped_inside_the_limit_and_restored_after():
    import numba
    from threadpoolctl import threadpool_info

    from sae import threads

    before = numba.get_num_threads()
    with threads.limited(1):
        assert numba.get_num_threads() == 1
        assert all(pool["num_threads"] == 1 for pool in threadpool_info())
        assert threads.sampler_cores() == {"cores": 1}
    assert numba.get_num_threads() == before and threads.sampler_cores() == {}
