"""``nblib bench cache``: training steps with the frozen backbone run every step against
steps on cached features."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np

from nblib.bench.common import machine, ratio


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
        **machine(),
    }
    for name in ("cached", "cached_in_memory"):
        yield {
            "bench": "cache",
            "figure": f"ms_per_step_{name}",
            "uncached_ms": round(ms["uncached"], 2),
            "cached_ms": round(ms[name], 2),
            "ratio": ratio(ms["uncached"], ms[name], 2),
            "cache_hits": stats["hits"],
            "cache_misses": stats["misses"],
            **common,
        }
