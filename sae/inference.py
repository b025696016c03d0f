"""The inference methods, behind one seam: each takes the spec, the design and the graph, and
returns draws in the common form (`sae.posterior`), their `Diagnostics` and its timings.

    nuts     NUTS on the PyMC model (`sae.nuts`): asymptotically exact, the reference
    laplace  sparse Laplace approximation of the latent field with importance sampling over the
             hyperparameters (`sae.laplace`): deterministic and fast

A new method is one function of that signature, registered in METHODS.
"""

from __future__ import annotations

import arviz as az

from sae.design import Design
from sae.diagnostics import Diagnostics
from sae.graph import AreaGraph
from sae.spec import Spec


def infer(
    spec: Spec, design: Design, graph: AreaGraph, progress: bool = True
) -> tuple[az.InferenceData, Diagnostics, dict[str, float]]:
    """Run the spec's method ([sampler] method); the draws record which method made them."""
    if spec.sampler.method == "laplace":
        from sae.laplace_method import run_laplace as method
    else:
        from sae.nuts import run_nuts as method
    idata, diagnostics, seconds = method(spec, design, graph, spec.family, progress)
    idata.posterior.attrs["sae_method"] = spec.sampler.method
    return idata, diagnostics, seconds
