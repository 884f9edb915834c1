"""Training the latent-action model on the frame pairs of a demo file, and tokenising them.

``load_frame_pairs`` holds every pair (t, t+k) of some cameras and strides in memory, each
frame resized once; ``train_latent_model`` trains through the suite's one training loop;
``tokenize_dataset`` writes the tokens of every pair as a token table
(:mod:`nblib.models.latent.tokens`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch

from nblib.errors import ParameterError
from nblib.models.latent.model import LatentActionConfig, LatentActionModel, resize_frames
from nblib.models.latent.tokens import token_table

# ----------------------------------------------------------------------------- data


def _as_list(camera, store) -> list[str]:
    if camera in (None, "all"):
        return list(store.cameras)
    return [camera] if isinstance(camera, str) else list(camera)


def load_frame_pairs(
    path,
    camera: str | Sequence[str] = "corner",
    stride: int | Sequence[int] = 4,
    image_size: int = 64,
    demos: Sequence[str] | None = None,
    mapping=None,
) -> dict:
    """Every frame pair (t, t+k) of the given camera(s) and stride(s), held in memory.

    ``camera``: a name, a list of names, or "all"; ``stride``: k, or a list of k. Each frame
    is resized to ``image_size`` and stored once. Returns {"frames": uint8 (N, S, S, 3),
    "i_t", "i_tk": (P,) indices into frames, "t", "k": (P,) ints, "demo", "camera", "task",
    "instruction": (P,) object arrays, "action_dx", "action_dy": (P,) actions 0 and 1
    summed over the k steps (robot frame), "file": the HDF5 path}.
    """
    from nblib.data.dataset import FramePairDataset
    from nblib.data.formats import open_store

    store = path if hasattr(path, "frames") else open_store(path, mapping=mapping, demos=demos)
    cameras = _as_list(camera, store)
    strides = [stride] if isinstance(stride, (int, np.integer)) else list(stride)
    if not strides:
        raise ParameterError("stride: expected an int >= 1 or a non-empty list of them")
    chunks, offset = [], 0
    cols = {k: [] for k in ("i_t", "t", "k", "demo", "camera", "ax", "ay")}
    for cam in cameras:
        for k in strides:  # validates camera and stride, and that some demo is long enough
            FramePairDataset(store, camera=cam, stride=int(k))
        for demo in store.demos:
            n = store.lengths[demo]
            if n < 2:
                continue
            chunks.append(resize_frames(store.frames(demo, cam, 0, n), image_size))
            actions = store.actions[demo]
            csum = np.concatenate([np.zeros((1, actions.shape[1])), np.cumsum(actions, 0)])
            for k in strides:
                t = np.arange(max(n - k, 0))
                moved = csum[t + k] - csum[t]
                cols["i_t"].append(offset + t)
                cols["t"].append(t)
                cols["k"].append(np.full(len(t), k))
                cols["demo"] += [demo] * len(t)
                cols["camera"] += [cam] * len(t)
                cols["ax"].append(moved[:, 0])
                cols["ay"].append(moved[:, 1] if moved.shape[1] > 1 else np.full(len(t), np.nan))
            offset += n
    i_t, k_arr = np.concatenate(cols["i_t"]), np.concatenate(cols["k"]).astype(np.int64)
    demo_arr = np.asarray(cols["demo"], dtype=object)
    return {
        "frames": torch.cat(chunks),
        "i_t": i_t,
        "i_tk": i_t + k_arr,
        "t": np.concatenate(cols["t"]).astype(np.int64),
        "k": k_arr,
        "demo": demo_arr,
        "camera": np.asarray(cols["camera"], dtype=object),
        "task": np.asarray([store.task[d] for d in demo_arr], dtype=object),
        "instruction": np.asarray([store.instruction[d] for d in demo_arr], dtype=object),
        "action_dx": np.concatenate(cols["ax"]).astype(np.float64),
        "action_dy": np.concatenate(cols["ay"]).astype(np.float64),
        "file": str(store.path),
    }


# ----------------------------------------------------------------------------- training


def train_latent_model(
    path,
    camera: str | Sequence[str] = "corner",
    stride: int = 4,
    steps: int = 800,
    batch_size: int = 32,
    seed: int = 0,
    config: LatentActionConfig | None = None,
    progress: bool = True,
    lr: float = 2e-3,
    strides: Sequence[int] | None = None,
    reverse: float = 0.5,
    demos: Sequence[str] | None = None,
    threads: int | None = None,
):
    """Train a ``LatentActionModel`` on the frame pairs of ``path``; returns (model, History).

    Pairs (``camera``: a name, a list or "all"; ``demos``: a subset, default all) are
    resized to ``config.image_size`` and held in memory (~12 KB a frame at 64x64). Batch
    ``step`` is a seeded random draw, so runs are reproducible; AdamW at ``lr``, cosine
    schedule down to 10% after 20 warmup steps, through ``nblib.train.train``.

    Why ``strides`` and ``reverse``: scripted demos are deterministic, so frame_t alone
    predicts frame_t+k and a decoder trained on one stride, forward in time, learns to
    ignore the tokens (random tokens reconstruct as well as the true ones). Training on
    pairs with k drawn from ``strides`` (default 1..2*stride) and swapped in time with
    probability ``reverse`` makes the change ambiguous given frame_t, so the tokens must
    carry its direction and size. ``strides=[stride], reverse=0`` trains the plain way.

    ``threads``: torch CPU threads while training (default: the idle cores, see
    :mod:`nblib.threads`). The defaults take ~85 s with 2 idle CPU cores,
    ~2.5 min with one.
    """
    from nblib.train import TrainConfig, train

    config = config if config is not None else LatentActionConfig()
    if not isinstance(config, LatentActionConfig):
        raise ParameterError(f"config must be a LatentActionConfig, got {type(config).__name__}")
    if not (isinstance(batch_size, int) and batch_size >= 1):
        raise ParameterError(f"batch_size={batch_size!r} is invalid; expected an int >= 1")
    if not (isinstance(reverse, (int, float)) and 0 <= reverse <= 1):
        raise ParameterError(f"reverse={reverse!r} is invalid; expected a probability in [0, 1]")
    strides = list(range(1, 2 * stride + 1)) if strides is None else list(strides)
    pairs = load_frame_pairs(path, camera, strides, config.image_size, demos)
    frames = pairs["frames"]
    i_t, i_tk = torch.as_tensor(pairs["i_t"]), torch.as_tensor(pairs["i_tk"])

    def batches(step: int) -> dict:
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        pick = torch.randint(len(i_t), (batch_size,), generator=g)
        a, b = i_t[pick], i_tk[pick]
        swap = torch.rand(batch_size, generator=g) < reverse
        a, b = torch.where(swap, b, a), torch.where(swap, a, b)
        return {"frames_t": frames[a], "frames_tk": frames[b]}

    torch.manual_seed(seed)
    model = LatentActionModel(config)
    model.meta = {
        "file": str(pairs["file"]),
        "camera": list(dict.fromkeys(pairs["camera"])),
        "stride": int(stride),
        "strides": [int(k) for k in strides],
        "reverse": float(reverse),
        "steps": int(steps),
        "batch_size": int(batch_size),
        "lr": float(lr),
        "seed": int(seed),
        "pairs": len(i_t),
    }
    cfg = TrainConfig(
        steps=steps,
        lr=lr,
        schedule="cosine_with_min_lr",
        warmup_steps=min(20, steps),
        seed=seed,
        progress=progress,
        desc="latent actions",
        threads=threads,
    )
    t0 = time.perf_counter()
    history = train(model, batches, lambda m, b: m(b), cfg)
    model.meta["seconds"] = time.perf_counter() - t0
    model.eval()
    return model, history


def tokenize_dataset(
    model: LatentActionModel,
    path,
    camera: str | Sequence[str] = "corner",
    stride: int = 4,
    batch_size: int = 256,
    label: str | None = None,
):
    """Tokens of every frame pair (t, t+stride): a DataFrame, one row per pair.

    Columns: sample_id ("{dataset}/{demo}/{t}+{k}"), dataset (``label``, default the camera
    name), file, demo, t, k, camera, task, instruction, tokens (list of L ints), flow_dx,
    flow_dy (NaN: fill them from a flow module), action_dx, action_dy (actions 0 and 1 summed
    over the k steps, robot frame), token_0 .. token_{L-1}.
    """
    pairs = load_frame_pairs(path, camera, stride, model.config.image_size)
    frames, out = pairs["frames"], []
    for start in range(0, len(pairs["i_t"]), batch_size):
        sl = slice(start, start + batch_size)
        out.append(model.encode_tokens(frames[pairs["i_t"][sl]], frames[pairs["i_tk"][sl]]).cpu())
    tokens = torch.cat(out).numpy() if out else np.zeros((0, model.config.seq_len), np.int64)
    dataset = np.asarray([label or c for c in pairs["camera"]], dtype=object)
    sample_id = [
        f"{d}/{m}/{t}+{stride}" for d, m, t in zip(dataset, pairs["demo"], pairs["t"], strict=True)
    ]
    cols = {
        "sample_id": sample_id,
        "dataset": dataset,
        "file": pairs["file"],
        "demo": pairs["demo"],
        "t": pairs["t"].astype(np.int64),
        "k": np.full(len(dataset), stride, np.int64),
        "camera": pairs["camera"],
        "task": pairs["task"],
        "instruction": pairs["instruction"],
        "action_dx": pairs["action_dx"],
        "action_dy": pairs["action_dy"],
    }
    return token_table(cols, tokens)
