"""Benchmarks: ``nblib bench NAME`` prints one JSON line per figure.

One module per benchmark, each a generator of records (one per figure): ``rollout``,
``loader``, ``cache``, ``tokens``, ``threads``, ``serve``, ``suite``, and ``all`` running every one of
them in that order; ``verdicts`` (the whole suite four times: each notebook's verdict at 1
and 2 threads and three seeds) runs only on its own. Every comparison runs the reference in the same process on the same
inputs, interleaved round by round so that machine noise hits both sides alike, and reports
a ``ratio`` (:func:`nblib.bench.common.ratio`; higher is better for nblib). Heavy imports
(torch, simulators, robomimic) happen inside the benchmark functions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from nblib.bench.cache import bench_cache
from nblib.bench.loader import bench_loader
from nblib.bench.rollout import bench_rollout
from nblib.bench.serve import bench_serve
from nblib.bench.suite import bench_suite
from nblib.bench.threads import bench_threads
from nblib.bench.tokens import bench_tokens
from nblib.bench.verdicts import bench_verdicts
from nblib.errors import NblibError


def bench_all(items: int | None = None) -> Iterator[dict]:
    """Every benchmark, then the whole default suite, one after another (never two heavy
    jobs at once on a shared machine)."""
    for name, bench in BENCHMARKS.items():
        if name not in ("all", *ALONE):
            yield from bench(**({"items": items} if items else {}))


# Name -> benchmark, in the order `all` runs them (the suite last, after the others).
BENCHMARKS: dict[str, Callable[..., Iterator[dict]]] = {
    "rollout": bench_rollout,
    "loader": bench_loader,
    "cache": bench_cache,
    "tokens": bench_tokens,
    "threads": bench_threads,
    "serve": bench_serve,
    "suite": bench_suite,
    "all": bench_all,
    "verdicts": bench_verdicts,
}
ALONE = ("verdicts",)  # too long for `all`: run by name
# Name -> what it measures, one line each for `nblib bench --help`.
ABOUT = {
    "rollout": "closed-loop evaluation speed against the simulator alone",
    "loader": "nblib's chunk sampler against robomimic's SequenceDataset",
    "cache": "training steps on cached backbone features against the backbone every step",
    "tokens": "token metrics and optical-flow throughput",
    "threads": "training steps under each thread setting, the other core idle or busy",
    "serve": "Meta-World steps/s through nblib serve + --policy ws:// against in-process",
    "suite": "the default suite's wall time against its target (--fresh: a fresh clone's)",
    "all": "every benchmark above in that order, the suite last",
    "verdicts": "each notebook's verdict at 1 and 2 threads and three seeds (long; by name)",
}


def run_benchmark(name: str, **kwargs) -> Iterator[dict]:
    """The records of benchmark ``name``; an unknown name is an error listing the others."""
    if name not in BENCHMARKS:
        raise NblibError(f"unknown benchmark {name!r}; available: {', '.join(BENCHMARKS)}")
    return BENCHMARKS[name](**kwargs)
