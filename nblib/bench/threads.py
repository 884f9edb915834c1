"""``nblib bench threads``: torch training on a shared 2-core machine under each OpenMP
setting, with the other core idle or busy with another user's job. Each measurement runs in
a child process (OpenMP reads its settings when torch loads)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator

import numpy as np

from nblib.bench.common import machine, ratio
from nblib.errors import NblibError

# OpenMP settings compared by bench_threads: environment, torch threads (0: what
# nblib.threads picks at the start) and whether nblib.threads.ThreadGovernor adjusts them
# during the run. "defaults" pins libgomp's own spin count (importing nblib leaves a set
# value alone). "nblib" is what nblib.train.train does.
THREAD_SETTINGS = {
    "defaults": ({"GOMP_SPINCOUNT": "300000"}, 2, False),
    "passive": ({"OMP_WAIT_POLICY": "PASSIVE"}, 2, False),
    "spin_1000": ({"GOMP_SPINCOUNT": "1000"}, 2, False),
    "one_thread": ({"GOMP_SPINCOUNT": "300000"}, 1, False),
    "nblib": ({}, 0, True),
}
# The other core: idle, busy with another user's plain 2-thread torch job from the start,
# or busy from just after the run chose its threads (a job started mid-run).
THREAD_LOADS = ("idle", "busy", "late")


def thread_probe(threads: int, steps: int, governed: bool = False, wait: bool = False) -> dict:
    """ms per training step (AdamW, batch 32) of the overfit policy on cached-size features
    and of the latent-action model on 64x64 frames. ``threads`` 0 takes
    :func:`nblib.threads.torch_threads`; ``governed`` adjusts them during the run. With
    ``wait`` it prints ``ready`` after the warm-up and times only after a line on stdin.
    Run in a child process by :func:`bench_threads` (OpenMP reads its settings when torch
    loads)."""
    import torch

    from nblib.models.latent import LatentActionConfig, LatentActionModel
    from nblib.models.policy import PolicyConfig, VLAPolicy
    from nblib.threads import ThreadGovernor, torch_threads

    torch.set_num_threads(threads or torch_threads())
    torch.manual_seed(0)
    policy = VLAPolicy(PolicyConfig(vlm_dim=64, proprio_dim=4, action_dim=4, horizon=16))
    latent = LatentActionModel(LatentActionConfig())
    batch = {
        "vlm": torch.randn(32, 64),
        "proprio": torch.randn(32, 4),
        "actions": torch.randn(32, 16, 4),
        "action_mask": torch.ones(32, 16, dtype=torch.bool),
    }
    g = torch.Generator().manual_seed(0)
    frames = {
        k: torch.randint(0, 256, (32, 64, 64, 3), dtype=torch.uint8, generator=g)
        for k in ("frames_t", "frames_tk")
    }
    runs = (
        ("policy_ms", policy, lambda: policy.loss(batch), steps),
        ("latent_ms", latent, lambda: latent(frames)["loss"], max(steps // 5, 1)),
    )
    opts = {name: torch.optim.AdamW(model.parameters(), lr=1e-4) for name, model, _, _ in runs}

    def train_step(name, loss):
        opts[name].zero_grad()
        loss().backward()
        opts[name].step()

    for name, _, loss, _ in runs:  # warm-up: allocator, oneDNN kernels
        for _ in range(3):
            train_step(name, loss)
    if wait:
        print("ready", flush=True)
        sys.stdin.readline()
    governor = ThreadGovernor() if governed else None
    out = {}
    for name, _, loss, n in runs:
        start = time.perf_counter()
        for _ in range(n):
            train_step(name, loss)
            if governor is not None:
                governor.step()
        out[name] = (time.perf_counter() - start) / n * 1000
    out["threads_end"] = torch.get_num_threads()
    return out


def _busy_torch_job(threads: int) -> None:
    """A competing torch training loop, as another user's job on the second core; runs
    until killed."""
    import torch

    torch.set_num_threads(threads)
    x = torch.randn(256, 256, requires_grad=True)
    opt = torch.optim.SGD([x], lr=1e-6)
    while True:
        opt.zero_grad()
        (x @ x).square().mean().backward()
        opt.step()


def _child_env(extra: dict) -> dict:
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    return {**env, **extra}


def bench_threads(steps: int = 200, rounds: int = 3, items: int | None = None) -> Iterator[dict]:
    """Torch training steps under each setting of :data:`THREAD_SETTINGS` with the other
    core idle, busy from the start, and busy from just after the run chose its threads
    (:data:`THREAD_LOADS`; the competitor is another user's plain 2-thread torch job).
    ``ratio`` = the defaults' ms over the setting's with the late competitor, the case that
    made a notebook 10x slower (higher is better). Each measurement is a fresh child
    process; medians over ``rounds``."""
    import json
    import subprocess

    steps = items or steps
    code = "import json, sys; from nblib.bench.threads import thread_probe as p; a = sys.argv; "
    code += "print(json.dumps(p(int(a[1]), int(a[2]), a[3] == '1', True)))"

    def competitor() -> subprocess.Popen:
        busy = subprocess.Popen(
            [sys.executable, "-c", "from nblib.bench.threads import _busy_torch_job as b; b(2)"],
            env=_child_env(THREAD_SETTINGS["defaults"][0]),
        )
        time.sleep(2.0)  # past its imports: busy when the measurement starts
        return busy

    def measure(setting: tuple, load: str) -> dict:
        env, threads, governed = setting
        busy = competitor() if load == "busy" else None
        child = subprocess.Popen(
            [sys.executable, "-c", code, str(threads), str(steps), str(int(governed))],
            env=_child_env(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout.readline().strip() == "ready"
            if load == "late":
                busy = competitor()
            child.stdin.write("go\n")
            child.stdin.flush()
            out, _ = child.communicate(timeout=1800)
        finally:
            if busy is not None:
                busy.kill()
                busy.wait()
        if child.returncode:
            raise NblibError(f"bench threads: the child process failed ({child.returncode})")
        return json.loads(out.strip().splitlines()[-1])

    results: dict[str, dict[str, list[float]]] = {k: {} for k in THREAD_SETTINGS}
    for _ in range(rounds):
        for load in THREAD_LOADS:
            for name, setting in THREAD_SETTINGS.items():
                for key, value in measure(setting, load).items():
                    results[name].setdefault(f"{key}_{load}", []).append(value)
    med = {n: {k: float(np.median(v)) for k, v in r.items()} for n, r in results.items()}
    base = med["defaults"]
    for name, (env, threads, governed) in THREAD_SETTINGS.items():
        line = {"bench": "threads", "figure": f"ms_per_step_{name}", "env": env}
        line |= {"torch_threads": threads or "idle cores", "governor": governed}
        line |= {k: round(v, 1) for k, v in med[name].items()}
        line["ratio"] = ratio(base["policy_ms_late"], med[name]["policy_ms_late"], 2)
        line["latent_ratio"] = ratio(base["latent_ms_late"], med[name]["latent_ms_late"], 2)
        yield {**line, "steps": steps, "rounds": rounds, **machine()}
