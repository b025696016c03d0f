"""sae: Bayesian small-area estimation for race-by-place health rates.

import sae
fit = sae.fit("models/pennsylvania_lung_race.toml")
fit.estimates()          # every area × group: estimate, interval, RSE, flag, flag_reason
fit.save("out/pennsylvania")
fit = sae.load("out/pennsylvania")
"""

from importlib import metadata

from sae.batch import fit_many
from sae.diagnostics import ConvergenceWarning
from sae.errors import SaeError, SaeInputError, SaeOutputError
from sae.fit import Fit, fit, load
from sae.spec import Spec
from sae.spec_file import load_spec, spec_from_dict

try:
    __version__ = metadata.version("sae")
except metadata.PackageNotFoundError:  # run from a source tree that was not installed
    __version__ = "0+unknown"

__all__ = [
    "ConvergenceWarning",
    "Fit",
    "SaeError",
    "SaeInputError",
    "SaeOutputError",
    "Spec",
    "__version__",
    "fit",
    "fit_many",
    "load",
    "load_spec",
    "spec_from_dict",
]
