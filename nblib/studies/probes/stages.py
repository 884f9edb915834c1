"""Every probe sample's representation at every stage of the pipeline, and per stage how
much the samples still differ (with a bootstrap interval of the spread, which the verdict
reads)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from nblib.errors import ParameterError
from nblib.metrics import representations as rep
from nblib.metrics.estimates import bootstrap_rows
from nblib.studies.probes.study import ProbesConfig, ProbesStudy, policy_inputs

# Raw pixels are not a learned stage: a static background makes frames alike by nature,
# so they are measured and shown but never named as the place where information collapses.
INPUT_STAGES = ("images",)
IMAGE_SIZE = 32  # frames are compared as 32x32 thumbnails (every camera, RGB in [0, 1])
PIPELINE = ("images", "vlm_layers", "vlm_last", "vlm_mean", "projector", "proprio")
PIPELINE += ("expert", "condition")


def _thumbnails(images: list[list[np.ndarray]]) -> np.ndarray:
    """(N, cameras * 32 * 32 * 3) float pixels in [0, 1]."""
    import cv2

    rows = []
    for frames in images:
        small = [
            cv2.resize(f, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA) for f in frames
        ]
        rows.append(np.concatenate([s.reshape(-1) for s in small]).astype(np.float64) / 255.0)
    return np.stack(rows)


def encode_stages(study: ProbesStudy, instructions: list[str], batch_size: int = 16) -> dict:
    """Every configured stage of every probe sample under ``instructions`` (one per sample),
    as float64 (N, D) arrays in pipeline order, and the predicted action chunks (N, H, A)
    in action units (flow noise drawn from the config's seed, the same for every call)."""
    if study.plugin is not None:
        return _encode_plugin(study, instructions, batch_size)
    cfg, samples, bb = study.config, study.samples, study.backbone
    want_layers = "vlm_layers" in cfg.stages
    out: dict[str, list] = {}
    preds = []
    gen = torch.Generator().manual_seed(cfg.seed)
    policy = study.model.policy
    for start in range(0, len(samples), batch_size):
        idx = np.arange(start, min(start + batch_size, len(samples)))
        images = [samples.images[i] for i in idx]
        texts = [instructions[i] for i in idx]
        keys = ("last", "tokens", "layers") if want_layers else ("last", "tokens")
        enc = bb.encode(images, texts, output=keys)
        mask = enc["attention_mask"].bool()
        w = mask.float()[..., None]
        parts = {
            "vlm_last": enc["last"],
            "vlm_mean": (enc["tokens"] * w).sum(1) / w.sum(1).clamp_min(1.0),
        }
        if want_layers:
            last = mask.shape[1] - 1  # left padding: the last position is every sample's last
            for i, layer in enumerate(enc["layers"]):
                parts[f"vlm_layer_{i}"] = layer[:, last]
        feats = policy_inputs(study, idx, enc)
        with torch.no_grad():
            parts |= policy.stages(feats)
            preds.append(policy.predict(feats, generator=gen).numpy())
        for name, value in parts.items():
            out.setdefault(name, []).append(value.detach().double().numpy())
    arrays = {name: np.concatenate(v) for name, v in out.items()}
    arrays["images"] = _thumbnails(samples.images)
    ordered = {}
    for stage in cfg.stages:
        if stage == "expert":
            ordered |= {k: arrays[k] for k in sorted(arrays) if k.startswith("expert_")}
        elif stage == "vlm_layers":
            layers = [k for k in arrays if k.startswith("vlm_layer_")]
            ordered |= {
                k: arrays[k] for k in sorted(layers, key=lambda k: int(k.rsplit("_", 1)[1]))
            }
        elif stage in arrays:  # "proprio" is absent for a policy without proprio
            ordered[stage] = arrays[stage]
    pred = study.stats.actions.unnormalize(np.concatenate(preds), "mean_std")
    return {"stages": _pipeline_order(ordered), "actions": pred}


def _encode_plugin(study: ProbesStudy, instructions: list[str], batch_size: int) -> dict:
    """A plug-in's stages (forward hooks, :mod:`nblib.studies.probes.hooks`) during its
    ``predict_action_chunk``, between the raw images and the predicted chunk (normalised by
    the action std, flattened: the stage ``action``)."""
    from nblib.plugins.runtime import predict_samples
    from nblib.studies.probes.hooks import StageRecorder

    samples, plugin, model = study.samples, study.plugin, study.model
    recorder = StageRecorder(model, study.plugin_stages, plugin.spec)
    out: dict[str, list] = {}

    def collect(n: int) -> None:
        for name, value in recorder.take(n).items():
            out.setdefault(name, []).append(value)

    try:  # the same noise for every call (the config's seed): comparable runs
        pred = predict_samples(
            model, samples, study.stats, plugin.info, plugin.spec, study.config.seed,
            batch_size, instructions, collect,
        )  # fmt: skip
    finally:
        recorder.close()
    std = np.maximum(np.asarray(study.stats.actions.std), 1e-6)
    stages = {"images": _thumbnails(samples.images)}
    stages |= {name: np.concatenate(v) for name, v in out.items()}
    stages["action"] = (pred / std).reshape(len(pred), -1).astype(np.float64)
    return {"stages": stages, "actions": pred}


def _pipeline_order(stages: dict) -> dict:
    """Stages sorted as the data flows (the notebook's ``stages`` may list them any way)."""
    rank = {s: i for i, s in enumerate(PIPELINE)}

    def key(name: str) -> tuple[int, int]:
        if name.startswith("vlm_layer_"):
            return rank["vlm_layers"], int(name.rsplit("_", 1)[1])
        if name.startswith("expert_"):
            return rank["expert"], int(name.rsplit("_", 1)[1])
        return rank[name], 0

    return {k: stages[k] for k in sorted(stages, key=key)}


def collect(study: ProbesStudy) -> dict[str, np.ndarray]:
    """Every probe sample's representation at every stage (pipeline order), each (N, D),
    with its own instruction."""
    return encode_stages(study, study.samples.instructions)["stages"]


def summaries(study: ProbesStudy, representations: dict[str, np.ndarray]) -> pd.DataFrame:
    """Per stage (rows, pipeline order): cosine mean/min/max, active dimensions, effective
    rank, spread with its bootstrap interval over the probe samples (``spread_low``,
    ``spread_high``; learned stages only), within- and across-task cosine, and linear CKA
    with the stage before."""
    cfg = study.config
    _check(representations)
    tasks = study.info["task"].to_numpy()
    rows = {}
    for name, x in representations.items():
        row = rep.stage_summary(x, groups=tasks, eps=cfg.eps)
        if name not in INPUT_STAGES and row["spread"] is not None:
            est = bootstrap_rows(
                len(x), lambda idx, x=x: rep.resampled_spread(x, idx), "samples", seed=cfg.seed
            )
            row |= {"spread_low": est.low, "spread_high": est.high}
        rows[name] = row
    names = list(representations)
    cka = {names[0]: None} | {
        b: _none_if_nan(rep.linear_cka(representations[a], representations[b]))
        for a, b in zip(names[:-1], names[1:], strict=True)
    }
    table = pd.DataFrame(rows).T.astype(float)
    table["cka_with_previous"] = pd.Series(cka, dtype=float)
    return table


def collapse(table: pd.DataFrame, config: ProbesConfig) -> dict:
    """The collapsed learned stages (raw images excluded, see ``INPUT_STAGES``): a stage is
    collapsed when its whole spread interval lies below ``collapse_spread``; ``uncertain``
    lists those whose interval straddles it (see
    :func:`nblib.metrics.representations.collapse_stage`)."""
    learned = [s for s in table.index if s not in INPUT_STAGES]
    if not learned:
        raise ParameterError("no learned stage was collected: check the `stages` parameter")
    rows = {s: {k: _none_if_nan(v) for k, v in table.loc[s].items()} for s in learned}
    return rep.collapse_stage(rows, learned, config.collapse_spread)


def _check(representations: dict) -> None:
    if not representations:
        raise ParameterError("no representations: pass what probes.collect(study) returned")


def _none_if_nan(value) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def sample_order(study: ProbesStudy) -> np.ndarray:
    """Probe samples sorted by task, then timestep (for the heatmaps)."""
    return np.lexsort((study.info["t"].to_numpy(), study.info["task"].to_numpy()))


def pca_variance(representations: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per stage, the share of its variance that its first two principal components
    explain (2,): what the PCA figures' axes say they show."""
    from nblib.metrics.embedding import pca_embedding

    _check(representations)
    return {k: pca_embedding(x)[1] for k, x in representations.items()}


def embeddings(study: ProbesStudy, representations: dict[str, np.ndarray]) -> dict:
    """(N, 2) embeddings of every stage by method: PCA, and UMAP when ``config.umap``."""
    from nblib.metrics.embedding import pca_embedding, umap_embedding

    _check(representations)
    out = {"pca": {k: pca_embedding(x)[0] for k, x in representations.items()}}
    if study.config.umap:
        seed = study.config.seed
        out["umap"] = {k: umap_embedding(x, seed) for k, x in representations.items()}
    return out
