"""Where nutpie's trace is held (`sae.nuts.sampled`, issue: bounded memory): a trace above
`TRACE_MEMORY_LIMIT` goes to a zarr store in a temporary folder, a smaller one stays in memory;
both give the same draws, and the folder is gone once the draws are read."""

import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest

import sae
from sae import nuts
from sae.spec_file import spec_from_dict

SPEC = {
    "data": {"area_id": "area", "group": "group", "count": "cases", "population": "population"},
    "model": {"group_effects": "bym2"},
    "sampler": {"method": "nuts", "chains": 2, "draws": 100, "tune": 100, "seed": 3},
}


class RecordedFolder(tempfile.TemporaryDirectory):
    """A temporary folder that remembers, when it is removed, what it held."""

    made: list[tuple[Path, list[str]]] = []

    def cleanup(self):
        RecordedFolder.made.append(
            (Path(self.name), sorted(p.name for p in Path(self.name).iterdir()))
        )
        super().cleanup()


def fit_with_limit(cells, areas, limit, monkeypatch):
    monkeypatch.setattr(nuts, "TRACE_MEMORY_LIMIT", limit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sae.fit(spec_from_dict(SPEC), cells=cells, areas=areas, progress=False)


@pytest.mark.slow
def test_a_trace_on_disk_gives_the_draws_of_one_in_memory(cells, areas, monkeypatch):
    monkeypatch.setattr(nuts.tempfile, "TemporaryDirectory", RecordedFolder)
    RecordedFolder.made.clear()
    in_memory = fit_with_limit(cells, areas, 2**40, monkeypatch)
    assert RecordedFolder.made == []
    on_disk = fit_with_limit(cells, areas, 0, monkeypatch)
    [(folder, held)] = RecordedFolder.made
    assert "posterior" in held and not folder.exists()
    a, b = in_memory.idata.posterior, on_disk.idata.posterior
    assert sorted(a.data_vars) == sorted(b.data_vars)
    assert "group_area_effect" in a and "group_area_structured" not in a
    for name in a.data_vars:
        assert np.array_equal(a[name].to_numpy(), b[name].to_numpy()), name
    stats_a, stats_b = in_memory.idata.sample_stats, on_disk.idata.sample_stats
    assert "diverging" in stats_a and "gradient" not in stats_b
    assert sorted(stats_a.data_vars) == sorted(stats_b.data_vars)
    assert np.array_equal(stats_a["energy"].to_numpy(), stats_b["energy"].to_numpy())
