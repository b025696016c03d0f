"""Specs: defaults that follow the data, checked replacements, and a TOML round trip."""

import pytest
from conftest import ROOT

import sae
from sae.spec_file import load_spec, spec_from_dict, spec_to_toml

COUNTS = {"data": {"count": "y", "population": "n"}}


def test_group_effects_default_follows_the_data():
    assert spec_from_dict(COUNTS).model.group_effects == "none"
    grouped = {"data": {**COUNTS["data"], "group": "race"}}
    assert spec_from_dict(grouped).model.group_effects == "iid"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sampler": {"n_draws": 10}}, r"unknown setting\(s\) \['n_draws'\] in \[sampler\]"),
        ({"sampler": {"draws": 10.5}}, "draws = 10.5 must be a whole number"),
        ({"output": {"per": -1}}, "per = -1.0 is out of range"),
        ({"samplers": {}}, r"unknown section\(s\) \['samplers'\]"),
    ],
)
def test_replace_checks_like_a_spec_file(change, message):
    with pytest.raises(sae.SaeInputError, match=message):
        spec_from_dict(COUNTS).replace(**change)


def test_every_bundled_spec_survives_a_toml_round_trip(tmp_path):
    for path in sorted((ROOT / "models").glob("*.toml")):
        spec = load_spec(path)
        copy = tmp_path / path.name
        copy.write_text(spec_to_toml(spec, tmp_path))  # paths relative to the copy's folder
        again = load_spec(copy)
        for section in ("data", "graph", "model", "sampler", "flags", "output", "title"):
            assert getattr(again, section) == getattr(spec, section), (path.name, section)


def test_replace_settles_the_data_dependent_defaults_again():
    # Spec() settles group_effects = "none" (no group column); naming a group through replace
    # must give the group defaults, as a spec file naming it would
    spec = sae.Spec().replace(data={"area_id": "a", "group": "g", "time": "year", "count": "y",
                                    "population": "n"})  # fmt: skip
    assert spec.model.group_effects == "iid" and spec.model.group_trend == "rw1"
    chosen = spec.replace(model={"group_effects": "none"})
    assert chosen.model.group_effects == "none"
    assert chosen.replace(sampler={"draws": 10}).model.group_effects == "none"  # a choice stays
    assert chosen.replace(data={"group": None}).model.group_trend == "none"
