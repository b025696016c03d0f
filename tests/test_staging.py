"""Output folders: nothing a user made is lost, no reader sees half a result, and a killed run's
staging folder does not outlive the next run."""

import json
import os
import signal

import pytest

from sae.cli import stop_on_terminate
from sae.errors import SaeOutputError
from sae.staging import check_output_folder, staged_directory, staged_file


def sae_output(folder):
    folder.mkdir()
    (folder / "provenance.json").write_text(json.dumps({"written_by": "sae"}))
    (folder / "estimates.csv").write_text("old")
    return folder


def test_force_replaces_an_earlier_sae_result(tmp_path):
    old = sae_output(tmp_path / "out")
    check_output_folder(old, force=True)
    with staged_directory(old) as staging:
        (staging / "estimates.csv").write_text("new")
    assert (old / "estimates.csv").read_text() == "new"
    assert not (old / "provenance.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing set aside is left


def test_force_refuses_a_folder_sae_did_not_write(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "data.csv").write_text("precious")
    with pytest.raises(SaeOutputError, match="not a folder of sae results"):
        check_output_folder(mine, force=True)


def test_a_folder_holding_an_input_is_never_a_target(tmp_path):
    cells = tmp_path / "data" / "cells.csv"
    cells.parent.mkdir()
    cells.write_text("x")
    for target in (tmp_path / "data", tmp_path):
        with pytest.raises(SaeOutputError, match="holds the spec or its inputs"):
            check_output_folder(target, force=True, protected=[cells])


def test_a_failed_build_leaves_the_old_result_and_no_staging(tmp_path):
    old = sae_output(tmp_path / "out")
    with pytest.raises(RuntimeError), staged_directory(old) as staging:
        (staging / "estimates.csv").write_text("half")
        raise RuntimeError("disk full")
    assert (old / "estimates.csv").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_sigterm_unwinds_and_removes_the_staging_folder(tmp_path):
    previous = signal.signal(signal.SIGTERM, stop_on_terminate)
    try:
        with pytest.raises(SystemExit) as stopped, staged_directory(tmp_path / "out"):
            os.kill(os.getpid(), signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert stopped.value.code == 128 + signal.SIGTERM
    assert list(tmp_path.iterdir()) == []


def test_staging_folders_of_killed_runs_are_removed_by_the_next_run(tmp_path):
    dead = tmp_path / ".out.sae-staging-99999999-abc"  # no process has this id
    dead.mkdir()
    (dead / "posterior.nc").write_text("half")
    alive = tmp_path / f".out.sae-staging-{os.getppid()}-def"  # a running process's folder stays
    alive.mkdir()
    with staged_directory(tmp_path / "out") as staging:
        (staging / "estimates.csv").write_text("new")
    assert not dead.exists() and alive.exists()


def test_staged_file_replaces_in_one_step(tmp_path):
    target = tmp_path / "report.html"
    target.write_text("old")
    with pytest.raises(ValueError), staged_file(target) as temporary:
        temporary.write_text("half")
        raise ValueError
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == [
        "report.html"
    ]
