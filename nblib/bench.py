"""Benchmarks: ``nblib bench NAME`` prints one JSON line per figure.

Every comparison runs the reference in the same process on the same inputs, interleaved
round by round so that machine noise hits both sides alike, and reports a ``ratio``
(nblib / reference, higher is better for throughputs).
"""

from __future__ import annotations

import contextlib
import platform
import sys
import time
from collections.abc import Callable, Iterator

import numpy as np

from nblib.errors import NblibError


def _machine() -> dict:
    import os

    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def _throughput(fn: Callable[[int], object], indices: np.ndarray) -> float:
    start = time.perf_counter()
    for i in indices:
        fn(int(i))
    return len(indices) / (time.perf_counter() - start)


def _robomimic_dataset(path, cameras: list[str], proprio_keys: list[str], horizon: int):
    try:
        import robomimic.utils.obs_utils as obs_utils
        from robomimic.utils.dataset import SequenceDataset
    except ImportError as err:
        raise NblibError(
            "bench loader compares against robomimic 0.3.0: "
            "pip install --no-deps robomimic==0.3.0 termcolor"
        ) from err
    image_keys = [f"{c}_image" for c in cameras]
    # robomimic prints its setup banner on stdout; keep stdout for the JSON lines.
    with contextlib.redirect_stdout(sys.stderr):
        obs_utils.initialize_obs_utils_with_obs_specs(
            {"obs": {"rgb": image_keys, "low_dim": proprio_keys}}
        )
        return SequenceDataset(
            hdf5_path=str(path),
            obs_keys=tuple(image_keys + proprio_keys),
            dataset_keys=("actions",),
            frame_stack=1,
            seq_length=horizon,
            pad_frame_stack=True,
            pad_seq_length=True,
            get_pad_mask=True,
            hdf5_cache_mode="low_dim",  # images stay on disk, as for data larger than RAM
            hdf5_use_swmr=False,
            load_next_obs=False,
        )


def _same_sample(ours: dict, theirs: dict, cameras: list[str], proprio_keys: list[str]) -> None:
    """Both loaders must return identical arrays, or the comparison is meaningless."""
    for cam in cameras:
        np.testing.assert_array_equal(ours["images"][cam], theirs["obs"][f"{cam}_image"])
    proprio = np.concatenate([theirs["obs"][k] for k in proprio_keys], axis=-1)
    np.testing.assert_allclose(ours["proprio"], proprio)
    np.testing.assert_allclose(ours["actions"], theirs["actions"])
    np.testing.assert_array_equal(ours["action_mask"], theirs["pad_mask"][:, 0])


def bench_loader(
    items: int = 400, horizon: int = 16, rounds: int = 3, seed: int = 0
) -> Iterator[dict]:
    """nblib's chunk sampler vs robomimic 0.3.0 ``SequenceDataset`` on the embedded file.

    Same workload on both sides: both cameras' frames, proprio and actions over a window
    of ``horizon`` steps with end-of-episode padding and its mask (robomimic reads every
    key with the same sequence length). Random indices, the same for both.
    """
    from nblib.data.dataset import ChunkDataset
    from nblib.data.manifest import open_dataset

    store = open_dataset(progress=False)
    path = store.path
    cameras = store.cameras
    proprio_keys = [k.split("/", 1)[1] for k in store.mapping.proprio]
    ours = ChunkDataset(store, horizon=horizon, obs_horizon=horizon)
    theirs = _robomimic_dataset(path, cameras, proprio_keys, horizon)
    if len(theirs) != len(ours):
        raise NblibError(f"sample counts differ: nblib {len(ours)}, robomimic {len(theirs)}")
    rng = np.random.default_rng(seed)
    for i in rng.integers(len(ours), size=20):
        _same_sample(ours[int(i)], theirs[int(i)], cameras, proprio_keys)
    vla = ChunkDataset(store, horizon=horizon, obs_horizon=1)
    rates: dict[str, list[float]] = {
        k: [] for k in ("ours", "theirs", "ours_cold", "theirs_cold", "vla")
    }
    for _ in range(rounds):
        # Cold: both files reopened, so no decompressed chunk survives from earlier reads.
        indices = rng.choice(len(ours), size=min(items, len(ours)), replace=False)
        theirs.close_and_delete_hdf5_handle()
        store.close()
        rates["theirs_cold"].append(_throughput(theirs.__getitem__, indices))
        rates["ours_cold"].append(_throughput(ours.__getitem__, indices))
        # Steady state: fresh random indices, handles (and HDF5's per-dataset chunk cache)
        # as they stay during training; overlapping windows then reuse decompressed frames.
        indices = rng.integers(len(ours), size=items)
        rates["theirs"].append(_throughput(theirs.__getitem__, indices))
        rates["ours"].append(_throughput(ours.__getitem__, indices))
        rates["vla"].append(_throughput(vla.__getitem__, indices))
    med = {k: float(np.median(v)) for k, v in rates.items()}
    common = {
        "samples": items,
        "rounds": rounds,
        "horizon": horizon,
        "dataset": path.name,
        **_machine(),
    }
    workload = f"{len(cameras)} cameras x {horizon} frames + proprio + actions[{horizon}] + mask, images read from file"

    def compared(figure: str, note: str, ours_key: str, theirs_key: str) -> dict:
        ours_rate, theirs_rate = med[ours_key], med[theirs_key]
        return {
            "bench": "loader",
            "figure": figure,
            "workload": f"{workload}; {note}",
            "nblib": round(ours_rate, 1),
            "robomimic": round(theirs_rate, 1),
            "ratio": round(ours_rate / theirs_rate, 3),
            **common,
        }

    yield compared(
        "cold_samples_per_s", "files reopened before each round", "ours_cold", "theirs_cold"
    )
    yield compared("samples_per_s", "steady state (open handles)", "ours", "theirs")
    yield {
        "bench": "loader",
        "figure": "vla_samples_per_s",
        "workload": f"{len(cameras)} cameras x 1 frame + proprio + actions[{horizon}] + mask (robomimic cannot read obs and actions with different lengths)",
        "nblib": round(med["vla"], 1),
        **common,
    }
    yield from _bench_lerobot(store, items, horizon, rounds, rng, common)


def _lerobot_copy(store):
    """The default dataset exported as a LeRobot folder, kept in the cache folder and
    reused while the HDF5 file is unchanged (the export takes ~1 min)."""
    from nblib.data.lerobot import LeRobotStore
    from nblib.data.lerobot_export import export_lerobot
    from nblib.paths import cache_dir

    folder = cache_dir() / "lerobot" / f"{store.path.stem}-{store.stamp().replace(':', '-')}"
    if not folder.exists():
        print(f"bench loader: exporting {store.path.name} to {folder}", file=sys.stderr)
        export_lerobot(store, folder, progress=False)
    return LeRobotStore(folder)


def _bench_lerobot(store, items, horizon, rounds, rng, common) -> Iterator[dict]:
    """Reading the same demos from the LeRobot export (Parquet + AV1 video, decoded on
    demand) against reading them from the HDF5 file: what video decoding costs."""
    from nblib.data.dataset import ChunkDataset

    exported = _lerobot_copy(store)
    cameras = store.cameras
    workloads = {
        "lerobot_samples_per_s": horizon,  # the loader workload above: 16 frames a camera
        "lerobot_vla_samples_per_s": 1,  # one frame a camera, as a VLA step reads
    }
    for figure, frames in workloads.items():
        hdf5 = ChunkDataset(store, horizon=horizon, obs_horizon=frames)
        video = ChunkDataset(exported, horizon=horizon, obs_horizon=frames)
        sample = int(rng.integers(len(hdf5)))
        np.testing.assert_array_equal(hdf5[sample]["actions"], video[sample]["actions"])
        rates: dict[str, list[float]] = {"hdf5": [], "lerobot": []}
        for _ in range(rounds):
            indices = rng.integers(len(hdf5), size=items)
            store.close()
            exported.close()
            rates["hdf5"].append(_throughput(hdf5.__getitem__, indices))
            rates["lerobot"].append(_throughput(video.__getitem__, indices))
        med = {k: float(np.median(v)) for k, v in rates.items()}
        yield {
            "bench": "loader",
            "figure": figure,
            "workload": f"{len(cameras)} cameras x {frames} frame(s) + proprio + actions[{horizon}] + mask, random samples; files reopened each round",
            "lerobot": round(med["lerobot"], 1),
            "hdf5": round(med["hdf5"], 1),
            "ratio": round(med["lerobot"] / med["hdf5"], 3),
            "lerobot_folder": exported.path.name,
            **common,
        }


def bench_cache(
    steps: int = 30, batch: int = 8, rounds: int = 3, threads: int = 1, items: int | None = None
) -> Iterator[dict]:
    """Training steps with the frozen backbone run every step vs with cached features.

    Same tiny backbone, same policy and optimizer settings, same batch of real frames
    (both cameras) from the embedded dataset. ``cached`` reads every sample's features
    from the on-disk cache each step (hashing the frames to find them), as a loader
    would; ``cached_in_memory`` indexes features precomputed through the cache, as the
    overfit notebook does.
    """
    import tempfile

    import torch

    from nblib.cache import FeatureCache, encode_batch
    from nblib.data.dataset import ChunkDataset
    from nblib.data.manifest import open_dataset
    from nblib.models.backbone import Backbone
    from nblib.models.policy import PolicyConfig, VLAPolicy

    steps = items or steps
    torch.set_num_threads(threads)  # steadier timings on a shared 2-core machine
    store = open_dataset(progress=False)
    ds = ChunkDataset(store, horizon=16, normalization="mean_std")
    idx = np.random.default_rng(0).choice(len(ds), size=batch, replace=False)
    items_ = [ds[int(i)] for i in idx]
    images = [[it["images"][c][0] for c in store.cameras] for it in items_]
    texts = [it["instruction"] for it in items_]
    proprio = torch.from_numpy(np.stack([it["proprio"] for it in items_]))
    actions = torch.from_numpy(np.stack([it["actions"] for it in items_]))
    mask = torch.from_numpy(np.stack([it["action_mask"] for it in items_]))

    backbone = Backbone.tiny()
    torch.manual_seed(0)
    policy = VLAPolicy(
        PolicyConfig(
            vlm_dim=backbone.hidden_size,
            proprio_dim=store.mapping.proprio_dim,
            action_dim=store.mapping.action_dim,
        )
    )
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-4, fused=True)  # as nblib.train does

    def step(features: dict) -> None:
        loss = policy.loss(
            {**features, "proprio": proprio, "actions": actions, "action_mask": mask}
        )
        opt.zero_grad()
        loss.backward()
        opt.step()

    with tempfile.TemporaryDirectory() as tmp:
        cache = FeatureCache(tmp, backbone.identity(), "last")
        in_memory = encode_batch(backbone, images, texts, "last", cache)  # fills the cache
        modes = {
            "uncached": lambda: step(encode_batch(backbone, images, texts, "last")),
            "cached": lambda: step(encode_batch(backbone, images, texts, "last", cache)),
            "cached_in_memory": lambda: step(in_memory),
        }
        times: dict[str, list[float]] = {k: [] for k in modes}
        for fn in modes.values():  # warm-up: allocator, oneDNN kernels
            for _ in range(3):
                fn()
        for _ in range(rounds):
            for name, fn in modes.items():
                start = time.perf_counter()
                for _ in range(steps):
                    fn()
                times[name].append((time.perf_counter() - start) / steps * 1000)
        stats = cache.stats()
    ms = {k: float(np.median(v)) for k, v in times.items()}
    common = {
        "batch": batch,
        "steps": steps,
        "rounds": rounds,
        "torch_threads": threads,
        "backbone": "tiny",
        **_machine(),
    }
    for name in ("cached", "cached_in_memory"):
        yield {
            "bench": "cache",
            "figure": f"ms_per_step_{name}",
            "uncached_ms": round(ms["uncached"], 2),
            "cached_ms": round(ms[name], 2),
            "ratio": round(ms["uncached"] / ms[name], 2),
            "cache_hits": stats["hits"],
            "cache_misses": stats["misses"],
            **common,
        }


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
        **_machine(),
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
        "ratio": round(ours / theirs, 3),
        "pairs": len(frame_pairs),
        "stride": stride,
        "frame": "128x128 corner camera",
        "rounds": rounds,
        **_machine(),
    }


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
    code = "import json, sys; from nblib.bench import thread_probe as p; a = sys.argv; "
    code += "print(json.dumps(p(int(a[1]), int(a[2]), a[3] == '1', True)))"

    def competitor() -> subprocess.Popen:
        busy = subprocess.Popen(
            [sys.executable, "-c", "from nblib.bench import _busy_torch_job as b; b(2)"],
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
        line["ratio"] = round(base["policy_ms_late"] / med[name]["policy_ms_late"], 2)
        line["latent_ratio"] = round(base["latent_ms_late"] / med[name]["latent_ms_late"], 2)
        yield {**line, "steps": steps, "rounds": rounds, **_machine()}


def _tiny_closed_loop(cameras: tuple[str, ...], size: int, action_dim: int):
    """The tiny VLA policy (random initialisation, tiny backbone, flow head) in the loop,
    with unit statistics (no rescaling): what a closed-loop step costs, not what it does."""
    import torch

    from nblib.data.normalization import NormStats, Stats
    from nblib.eval.policies import VLAClosedLoop
    from nblib.models.backbone import Backbone
    from nblib.models.policy import PolicyConfig, VLAPolicy
    from nblib.models.vla import PolicyWithBackbone

    backbone = Backbone.tiny()
    torch.manual_seed(0)
    config = PolicyConfig(vlm_dim=backbone.hidden_size, proprio_dim=4, action_dim=action_dim)
    unit_actions = Stats.of(np.array([[-1.0] * action_dim, [1.0] * action_dim]))
    unit_proprio = Stats.of(np.array([[-1.0] * 4, [1.0] * 4]))
    stats = NormStats(actions=unit_actions, proprio=unit_proprio, demos=[])
    return VLAClosedLoop(PolicyWithBackbone(VLAPolicy(config)), backbone, stats, cameras, size)


def _rollout_rates(sims, closed, config_for, steps: int, rounds: int, action_dim: int):
    """Steps/s of the bare simulator (a reset, then zero actions with the cameras
    rendered) and of the harness with ``closed`` at replan 1 and 4 (its episode: the same
    reset, then the policy's actions), interleaved round by round per simulator. Both
    sides include the reset, which for LIBERO (a model rebuild and settle steps) is not
    negligible."""
    from nblib.eval.rollout import run_episode, task_specs

    bare_rates, loop_rates = [], {1: [], 4: []}
    for key, make in sims:
        sim = make()
        try:
            for _ in range(rounds):
                start = time.perf_counter()
                sim.reset(0, 0)
                for _ in range(steps):
                    sim.step(np.zeros(action_dim, dtype=np.float32))  # renders the cameras
                bare_rates.append(steps / (time.perf_counter() - start))
                for replan in loop_rates:
                    config = config_for(key, replan)
                    (spec,) = task_specs(config)
                    start = time.perf_counter()
                    row = run_episode(sim, closed, spec, 0, config)
                    loop_rates[replan].append(row["steps"] / (time.perf_counter() - start))
        finally:
            sim.close()
    return bare_rates, loop_rates


def bench_rollout(
    steps: int = 150,
    tasks: tuple[str, ...] = ("reach", "push"),
    rounds: int = 3,
    items: int | None = None,
    libero_steps: int = 30,
) -> Iterator[dict]:
    """Closed-loop evaluation speed against the simulator alone, on the same tasks.

    ``bare``: simulator steps with zero actions, rendering the two cameras a policy reads
    (128 px) every step: the floor any closed-loop run pays. ``closed_loop``: the harness
    (:func:`nblib.eval.rollout.run_episode`, its reset included) with the tiny VLA policy
    (random initialisation, tiny backbone, both cameras) asked every step (``replan`` 1,
    the worst case) and every 4 steps. Steps/s per figure; ``ratio`` is closed-loop over
    bare (target >= 0.5). One torch thread, medians over tasks and interleaved rounds.
    Meta-World on ``tasks``; LIBERO (libero_spatial task 0, ``libero_steps`` steps) when
    the ``libero`` extra is installed.
    """
    import importlib.util

    import torch

    from nblib.eval.metaworld import MetaWorldTask
    from nblib.eval.rollout import EvalConfig

    steps = items or steps
    torch.set_num_threads(1)
    cameras, size = ("corner", "behindGripper"), 128
    closed = _tiny_closed_loop(cameras, size, action_dim=4)
    sims = [(t, lambda t=t: MetaWorldTask(t, cameras=cameras, size=size)) for t in tasks]

    def metaworld_config(task, replan):
        return EvalConfig(tasks=[task], episodes=1, max_steps=steps, replan=replan)

    rates = _rollout_rates(sims, closed, metaworld_config, steps, rounds, 4)
    common = {"tasks": list(tasks), "steps": steps, "rounds": rounds, "cameras": list(cameras)}
    yield from _rollout_lines("", rates, {**common, "size": size})

    if importlib.util.find_spec("libero") is None:
        return
    from nblib.eval.libero import ACTION_DIM, CAMERAS, SETTLE_STEPS, LiberoTask

    closed = _tiny_closed_loop(CAMERAS, size, action_dim=ACTION_DIM)
    suite, task_id = "libero_spatial", 0
    sims = [(task_id, lambda: LiberoTask(suite, task_id, cameras=CAMERAS, size=size))]

    def libero_config(task_id, replan):
        return EvalConfig(
            sim="libero",
            suite=suite,
            task_ids=[task_id],
            episodes=1,
            max_steps=libero_steps,
            replan=replan,
        )

    rates = _rollout_rates(sims, closed, libero_config, libero_steps, rounds, ACTION_DIM)
    common = {"suite": suite, "task_id": task_id, "steps": libero_steps, "rounds": rounds}
    common |= {"cameras": list(CAMERAS), "size": size, "settle_steps": SETTLE_STEPS}
    yield from _rollout_lines("libero_", rates, common)


def _sig3(value: float) -> float:
    return float(f"{value:.3g}")


def _rollout_lines(prefix: str, rates, common: dict) -> Iterator[dict]:
    """Rates to 3 significant figures: a short LIBERO run (its reset included) can be
    well under 1 step/s, where 0.01 steps/s is a few per cent."""
    bare_rates, loop_rates = rates
    bare = float(np.median(bare_rates))
    yield {"bench": "rollout", "figure": f"{prefix}bare_steps_per_s",
           "steps_per_s": _sig3(bare), **common, **_machine()}  # fmt: skip
    for replan, runs in loop_rates.items():
        rate = float(np.median(runs))
        yield {
            "bench": "rollout",
            "figure": f"{prefix}closed_loop_steps_per_s_replan{replan}",
            "steps_per_s": _sig3(rate),
            "bare_steps_per_s": _sig3(bare),
            "ratio": round(rate / bare, 2),
            "policy": "tiny VLA (random init), flow head",
            **common,
            **_machine(),
        }


BENCHMARKS: dict[str, Callable[..., Iterator[dict]]] = {
    "rollout": bench_rollout,
    "loader": bench_loader,
    "cache": bench_cache,
    "tokens": bench_tokens,
    "threads": bench_threads,
}


SUITE_TARGET_S = 600  # the whole default suite on the 2-core CPU (DEVELOPERS.md)


def bench_suite(out: str | None = None, items: int | None = None) -> Iterator[dict]:
    """The whole default suite's wall time (``nblib run-all``: every notebook with its
    defaults, in a fresh temporary folder unless ``out``), against the 10-minute target
    (``ratio`` = target / measured: >= 1 meets it), and each notebook's own seconds."""
    import json
    import tempfile
    from pathlib import Path

    from nblib.paths import repo_root
    from nblib.run.runner import run_all

    with tempfile.TemporaryDirectory(prefix="nblib-suite-") as tmp:
        folder = Path(out or tmp)
        start = time.perf_counter()
        failed = None
        try:
            run_all(repo_root() / "notebooks", folder, progress=False)
        except NblibError as error:  # the timing still counts; the failure is reported
            failed = str(error).splitlines()[0]
        seconds = time.perf_counter() - start
        notebooks = {}
        for metrics in sorted(folder.glob("*/metrics.json")):
            record = json.loads(metrics.read_text(encoding="utf-8"))
            notebooks[metrics.parent.name] = {
                "seconds": record.get("seconds"),
                "verdict": record.get("verdict"),
            }
    yield {
        "bench": "suite",
        "figure": "default_suite_seconds",
        "seconds": round(seconds, 2),
        "target_s": SUITE_TARGET_S,
        "ratio": round(SUITE_TARGET_S / seconds, 2),
        "notebooks": notebooks,
        "failed": failed,
        **_machine(),
    }


def bench_all(items: int | None = None) -> Iterator[dict]:
    """Every benchmark, then the whole default suite, one after another (never two heavy
    jobs at once on a shared machine)."""
    for name, bench in BENCHMARKS.items():
        if name != "all":
            yield from bench(**({"items": items} if items else {}))


BENCHMARKS["suite"] = bench_suite  # last, and in "all" after the others
BENCHMARKS["all"] = bench_all


def run_benchmark(name: str, **kwargs) -> Iterator[dict]:
    return BENCHMARKS[name](**kwargs)
