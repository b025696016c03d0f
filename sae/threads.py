"""How many threads one fit may use: numba's, the BLAS/OpenMP pools' and NUTS's parallel chains.

A fit on a Dask worker must not take more cores than the worker has, or two workers on one
machine slow each other down. `limited(n)` caps every pool for the duration of a fit; outside it
sae uses what the libraries choose (all cores).
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar

THREADS: ContextVar[int | None] = ContextVar("sae_threads", default=None)


@contextlib.contextmanager
def limited(threads: int):
    """Cap numba, the BLAS/OpenMP thread pools and the sampler's parallel chains at `threads`."""
    import numba
    from threadpoolctl import threadpool_limits

    before = numba.get_num_threads()
    token = THREADS.set(threads)
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        numba.set_num_threads(before)
        THREADS.reset(token)


def sampler_cores() -> dict:
    """The keyword that caps a sampler's parallel chains, when a limit is in force."""
    threads = THREADS.get()
    return {} if threads is None else {"cores": threads}
