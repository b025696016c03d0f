"""Every case of the bad-input battery (tests/bad_input_cases.py) is refused with its own clear
message before any sampling, and no file of the user's is deleted or changed."""

import pytest
from bad_input_cases import CASES, message_matches, names_are_unique, run_case
from conftest import grid_areas, simulated_cells


def test_case_names_are_unique():
    assert names_are_unique()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_refused_with_its_message_and_nothing_is_lost(case, tmp_path):
    areas = grid_areas()
    cells = simulated_cells(areas, seed=0)[0]
    outcome = run_case(case, tmp_path, cells, areas)
    assert outcome.result == "refused", outcome.message
    assert message_matches(case, outcome.message), outcome.message
    assert outcome.files_kept
