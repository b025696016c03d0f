"""Peak memory of the NUTS fit of US counties × 5 groups, step by step (issue: bounded memory).

One cold fit in this process (nutpie, 4 chains × 1000 kept draws), then the estimates and the gaps;
each step's peak resident memory is sampled every 50 ms (`sae.batch.PeakMemory`). The tuning
steps are not stored (`save_warmup=False`), so fewer of them (`--tune`) shorten the run without
changing what is held in memory.

    .venv/bin/python benchmarks/speed/nuts_memory.py --tune 200 > benchmarks/speed/nuts_memory.json
"""

from __future__ import annotations

import argparse
import json
import resource
import time
import warnings

from run import us_counties_5groups

import sae
from sae.batch import PeakMemory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--draws", type=int, default=1000)
    args = parser.parse_args()
    spec, cells, areas = us_counties_5groups()
    spec = spec.replace(sampler={"method": "nuts", "draws": args.draws, "tune": args.tune,
                                 "chains": 4, "seed": 1})  # fmt: skip
    result = {"case": "us_counties_5groups", "method": "nuts", "draws": f"4 x {args.draws}",
              "tune": args.tune}  # fmt: skip
    warnings.simplefilter("ignore")
    start = time.perf_counter()
    with PeakMemory() as peak:
        fit = sae.fit(spec, cells=cells, areas=areas, progress=False)
    result |= {"fit_s": round(time.perf_counter() - start, 1), "fit_peak_mb": peak.peak_mb,
               "seconds": {k: round(v, 1) for k, v in fit.seconds.items()}}  # fmt: skip
    with PeakMemory() as peak:
        fit.estimates()
    result["estimates_peak_mb"] = peak.peak_mb
    with PeakMemory() as peak:
        fit.gaps()
    result["gaps_peak_mb"] = peak.peak_mb
    result["ru_maxrss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    result["quality"] = fit.diagnostics.summary_line()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
