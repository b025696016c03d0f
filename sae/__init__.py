"""sae: Bayesian small-area estimation for race-by-place health rates.

import sae
fit = sae.fit("models/pennsylvania_lung_race.toml")
fit.estimates()          # every area × group: estimate, interval, RSE, flag, flag_reason
fit.save("out/pennsylvania")
fit = sae.load("out/pennsylvania")
"""

from sae.errors import SaeInputError
from sae.fit import Fit, fit
from sae.sampling import ConvergenceWarning
from sae.spec import Spec, load_spec, spec_from_dict
from sae.store import load

__all__ = [
    "ConvergenceWarning",
    "Fit",
    "SaeInputError",
    "Spec",
    "fit",
    "load",
    "load_spec",
    "spec_from_dict",
]
