"""``nblib bench tokens``: the token-compass metrics on a million rows, and optical-flow
throughput against a bare OpenCV loop."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np

from nblib.bench.common import machine, ratio


def bench_tokens(
    rows: int = 1_000_000,
    pairs: int = 300,
    stride: int = 4,
    rounds: int = 3,
    items: int | None = None,
) -> Iterator[dict]:
    """Token metrics on ``rows`` synthetic rows, and optical-flow throughput.

    The metrics figure times :func:`nblib.metrics.tokens.summarize_tokens` with the
    notebook's settings (every metric, and the agreement judged centred against 20
    within-group shuffles, as :func:`nblib.studies.tokens.compass.analyse` does) on uniform
    random tokens over 16 codes, random motion, 4 groups and 20 instruction clusters. The
    flow figure compares nblib's pipeline
    (:func:`nblib.flow.flows_for_pairs`, thread pool, magnitude-weighted mean) with a bare
    serial OpenCV Farneback loop on the same in-memory frame pairs of the embedded data.
    """
    import cv2

    from nblib.data.dataset import FramePairDataset
    from nblib.data.manifest import open_dataset
    from nblib.flow import FARNEBACK_DEFAULTS, flows_for_pairs, mean_flow
    from nblib.metrics.tokens import summarize_tokens
    from nblib.studies.tokens.compass import PERMUTATIONS

    rows = items or rows
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 16, size=rows)
    motion = rng.normal(size=(rows, 2))
    groups = rng.integers(0, 4, size=rows)
    instructions = rng.integers(0, 20, size=rows)
    seconds = []
    for _ in range(rounds):
        start = time.perf_counter()
        summarize_tokens(
            tokens,
            motion,
            groups=groups,
            instructions=instructions,
            n_codes=16,
            n_permutations=PERMUTATIONS,
            center=True,
        )
        seconds.append(time.perf_counter() - start)
    yield {
        "bench": "tokens",
        "figure": "metrics_seconds",
        "rows": rows,
        "permutations": PERMUTATIONS,
        "seconds": round(float(np.median(seconds)), 3),
        "rounds": rounds,
        **machine(),
    }

    dataset = FramePairDataset(open_dataset(progress=False), camera="corner", stride=stride)
    picks = rng.choice(len(dataset), size=min(pairs, len(dataset)), replace=False)
    frame_pairs = [tuple(dataset[int(i)]["frames"]) for i in picks]

    def bare_loop() -> np.ndarray:
        out = []
        for a, b in frame_pairs:
            flow = cv2.calcOpticalFlowFarneback(
                cv2.cvtColor(a, cv2.COLOR_RGB2GRAY),
                cv2.cvtColor(b, cv2.COLOR_RGB2GRAY),
                None,
                **FARNEBACK_DEFAULTS,
            )
            out.append(mean_flow(flow, "magnitude"))
        return np.asarray(out)

    def pipeline() -> np.ndarray:
        return flows_for_pairs(frame_pairs, weighting="magnitude", progress=False)

    np.testing.assert_allclose(pipeline(), bare_loop(), atol=1e-4)  # same numbers, or no comparison
    rates: dict[str, list[float]] = {"pipeline": [], "bare": []}
    for _ in range(rounds):
        for name, fn in (("bare", bare_loop), ("pipeline", pipeline)):
            start = time.perf_counter()
            fn()
            rates[name].append(len(frame_pairs) / (time.perf_counter() - start))
    ours, theirs = float(np.median(rates["pipeline"])), float(np.median(rates["bare"]))
    yield {
        "bench": "tokens",
        "figure": "flow_pairs_per_s",
        "nblib": round(ours, 1),
        "bare_opencv": round(theirs, 1),
        "ratio": ratio(ours, theirs),
        "pairs": len(frame_pairs),
        "stride": stride,
        "frame": "128x128 corner camera",
        "rounds": rounds,
        **machine(),
    }
