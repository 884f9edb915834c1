"""``nblib bench serve``: closed-loop evaluation through a policy server (``nblib serve`` +
``nblib eval --policy ws://``) against the same policy in this process.

The policy is the plain-torch plug-in of ``examples/policies/conv_mlp.py`` on the embedded
Meta-World demos: it reads both 128² cameras, so every observation carries two images over
the socket. Figures: Meta-World steps/s through the server and in-process, interleaved
round by round (``ratio`` = served / in-process; the goal is >= 0.8); the round-trip time
of one observation with two 128² images (median and p95, ms); and steps/s with the
episodes in 1 and in 2 concurrent shards (``nblib eval --shard I/N`` processes) against
the one server.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from nblib.bench.common import machine, ratio

POLICY = "examples/policies/conv_mlp.py:make_policy"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(spec: str, root: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "nblib", "serve", spec, "--port", str(port)],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nblib serve {spec} exited with {process.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return process, f"ws://127.0.0.1:{port}"
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"nblib serve {spec} did not listen within 120 s")


def _steps_per_second(policy: str, out: Path, steps: int, episodes: int, workers: int) -> float:
    from nblib.eval.rollout import EvalConfig, evaluate

    config = EvalConfig(
        tasks=["reach"], episodes=episodes, policy=policy, max_steps=steps, workers=workers
    )
    start = time.perf_counter()
    frame = evaluate(config, out, progress=False, overwrite=True)
    return float(frame["steps"].sum()) / (time.perf_counter() - start)


def _sharded_rate(root: Path, url: str, tmp: Path, steps: int, episodes: int, shards: int):
    """Steps/s of ``episodes`` run as ``shards`` concurrent ``nblib eval --shard I/N``
    processes against the one server (wall time from the first start to the last end)."""
    start = time.perf_counter()
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "nblib",
                "eval",
                "--tasks",
                "reach",
                "--episodes",
                str(episodes),
                "--policy",
                url,
                "--max-steps",
                str(steps),
                "--shard",
                f"{i}/{shards}",
                "--out",
                str(tmp / f"shard{shards}_{i}.csv"),
                "--overwrite",
            ],
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for i in range(shards)
    ]
    codes = [p.wait() for p in processes]
    seconds = time.perf_counter() - start
    if any(codes):
        raise RuntimeError(f"a shard of nblib eval against {url} failed: exit codes {codes}")
    import pandas as pd

    done = sum(
        int(pd.read_csv(tmp / f"shard{shards}_{i}.csv")["steps"].sum()) for i in range(shards)
    )
    return done / seconds


def bench_serve(items: int = 60, rounds: int = 3) -> Iterator[dict]:
    """``items``: steps per episode (the policy never succeeds in that time, so every
    episode runs them all)."""
    from nblib.paths import find_repo_root
    from nblib.serving.client import RemotePolicy

    root = find_repo_root() or Path.cwd()
    spec = str(root / POLICY)
    process, url = _start_server(spec, root)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "bench.csv"
            local, served = [], []
            for _ in range(rounds):  # interleaved: machine noise hits both sides alike
                local.append(_steps_per_second(spec, out, items, 2, 1))
                served.append(_steps_per_second(url, out, items, 2, 1))
            yield {
                "bench": "serve",
                "figure": "metaworld_steps_per_second",
                "in_process": round(float(np.median(local)), 1),
                "served": round(float(np.median(served)), 1),
                "ratio": ratio(float(np.median(served)), float(np.median(local))),
                "goal": 0.8,
                "steps_per_episode": items,
                "rounds": rounds,
                **machine(),
            }

            remote = RemotePolicy(url)
            rng = np.random.default_rng(0)
            observation = {
                "state": np.zeros(39),
                "eef_pos": np.zeros(3, dtype=np.float32),
                "gripper_opening": np.zeros(1, dtype=np.float32),
                "images": {
                    c: rng.integers(0, 255, (128, 128, 3), dtype=np.uint8) for c in remote.cameras
                },
            }
            remote.begin_episode("reach", "metaworld", 0, 0)
            remote.act(observation, "reach the goal")  # warm-up
            times = []
            for _ in range(100):
                start = time.perf_counter()
                remote.act(observation, "reach the goal")
                times.append((time.perf_counter() - start) * 1000)
            remote.close()
            yield {
                "bench": "serve",
                "figure": "round_trip_ms",
                "cameras": list(remote.cameras),
                "image_size": 128,
                "median": round(float(np.median(times)), 2),
                "p95": round(float(np.percentile(times, 95)), 2),
                "samples": len(times),
            }

            rates = {n: _sharded_rate(root, url, Path(tmp), items, 4, n) for n in (1, 2)}
            yield {
                "bench": "serve",
                "figure": "served_steps_per_second_by_shards",
                "shards_1": round(rates[1], 1),
                "shards_2": round(rates[2], 1),
                "ratio": ratio(rates[2], rates[1]),
                "episodes": 4,
                "note": "each shard an `nblib eval --shard I/N` process, start-up included",
            }
    finally:
        process.kill()
        process.wait(timeout=30)
