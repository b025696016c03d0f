"""Library manners: a wheel carries sae's data, importing sae changes nothing of the user's
matplotlib set-up, and sae says its version."""

import subprocess
import sys
import zipfile

from conftest import ROOT

import sae
from sae.cli import main


def test_a_wheel_carries_the_standard_population_and_age_adjusts_from_it(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "wheel"), str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = (tmp_path / "wheel").glob("sae-*.whl")
    assert "sae/reference/us2000_standard_million_19.csv" in zipfile.ZipFile(wheel).namelist()
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    script = (
        "import sae.standardize as s, pathlib; "
        f"assert pathlib.Path(s.__file__).is_relative_to({str(tmp_path / 'site')!r}); "
        "print(round(s.standard_weights(['0-64', '65+'])['65+'], 4))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
        env={"PYTHONPATH": str(tmp_path / "site")},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0.1264"  # 2000 US standard million, 65+: 126,386 (NCHS table)


def test_importing_sae_maps_keeps_the_users_backend():
    script = (
        "import matplotlib; matplotlib.use('pdf'); import sae.maps, sae.fit_maps, sae.report; "
        "print(matplotlib.get_backend())"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "pdf"


def test_version_is_reported(capsys):
    assert sae.__version__[0].isdigit()
    try:
        main(["--version"])
    except SystemExit as done:
        assert done.code == 0
    assert capsys.readouterr().out.strip() == f"sae {sae.__version__}"
