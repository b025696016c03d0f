"""`sae validate --quick` reproduces the published references and writes its table."""

import pytest

from sae.cli import main
from sae.validate import Check, results_markdown, results_table


def test_a_failed_check_is_reported_as_a_failure():
    checks = [Check("d", "q", 1.0, "s", 1.0 + 2e-4, 1e-4), Check("d", "r", 1.0, "s", 1.0, 1e-4)]
    table = results_table(checks)
    assert table["result"].tolist() == ["FAIL", "pass"]
    assert "1 of 2 checks pass" in results_markdown(table, quick=True)


@pytest.mark.slow
def test_quick_validation_passes_and_writes_results(tmp_path, capsys):
    out = tmp_path / "RESULTS.md"
    assert main(["validate", "--quick", "--out", str(out)]) == 0
    text = out.read_text()
    assert "FAIL" not in text and "BYM2 scaling factor, mainland" in text and "REML MSE" in text
    assert "checks pass" in capsys.readouterr().out
