"""Where does per-sample information collapse, is the pipeline wired as configured, and does
the instruction matter? (notebook 02, seeds 001 and 000)

Seed 001 found frozen-VLM embeddings 99.7 % alike across samples (mean pairwise cosine
0.997) while proprio was diverse (0.006) and the action expert's condition in between
(0.730): the per-sample signal came through proprio alone. Seed 000 worried that a VLA
ignores its instruction (H(L|V) ~ 0). This engine measures both on any policy:

1. ``prepare(config)``: the policy (a notebook-01 run folder, or the tiny backbone / a VLM
   checkpoint with a policy trained here for ``train_steps``) and a reproducible random set
   of probe samples spread over the tasks;
2. ``collect(probes)``: every sample's representation at every stage (raw images, VLM last
   token and token mean, optionally every VLM layer, projector, proprio embedding, each
   action-expert layer, the condition) and ``summaries(probes)``: per stage pairwise cosine,
   active dimensions, effective rank, spread, within- vs across-task similarity, and linear
   CKA between consecutive stages;
3. ``pipeline_checks(probes)``: LoRA adapters in the forward path, gradients only where
   something trains;
4. ``head_isolation(config)``: the flow head (and the regression head beside it) alone on
   random conditions -> random targets (seed 001's test 3);
5. ``language_reliance(probes)``: the same observations with the original, a paraphrased,
   another task's, a word-shuffled and an empty instruction;
6. ``verdict(probes)`` and ``metrics(probes)``.

Verdict: **COLLAPSED** when the condition the head reads is collapsed (samples nearly
identical: spread < ``collapse_spread``), **BOTTLENECK** when an earlier learned stage is
collapsed but the condition is not (seed 001's case: the signal gets through another
way), **DIVERSE** when no learned stage is. The reasons add how much the instruction
changes the predicted actions.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from nblib.data.hdf5 import DemoStore
from nblib.errors import ParameterError, is_int, is_number, require
from nblib.metrics import representations as rep
from nblib.models.vla import PolicyWithBackbone, Samples
from nblib.studies import StudyConfig
from nblib.studies.probes import plots
from nblib.verdict import Verdict

# Stages in pipeline order; "expert" stands for every action-expert layer and "vlm_layers"
# (opt-in) for the last-token state of every VLM layer.
STAGES = ("images", "vlm_last", "vlm_mean", "projector", "proprio", "expert", "condition")
KNOWN_STAGES = (*STAGES, "vlm_layers")
# Raw pixels are not a learned stage: a static background makes frames alike by nature,
# so they are measured and shown but never named as the place where information collapses.
INPUT_STAGES = ("images",)
IMAGE_SIZE = 32  # frames are compared as 32x32 thumbnails (every camera, RGB in [0, 1])
VARIANTS = ("paraphrase", "other task", "shuffled", "empty")
# A change of the predicted actions below this many action stds counts as "ignored".
LANGUAGE_TOL = 0.05


@dataclass
class ProbesConfig(StudyConfig):
    policy: str = "tiny"  # tiny, a VLM checkpoint directory, or a notebook-01 run folder
    manifest: str = "metaworld_default"  # dataset manifest name or path
    samples: int = 60  # probe samples, spread evenly over the tasks
    stages: list[str] = field(default_factory=lambda: list(STAGES))
    eps: float = 0.01  # a dimension is active when its std over samples exceeds this
    collapse_spread: float = 0.01  # a stage is collapsed below this spread (~ cosine 0.99)
    train_steps: int = 300  # policy tiny or a checkpoint: steps of the policy trained here
    train_demos: int = 5  # ... on this many training demos
    head: str = "flow"  # ... with this head
    isolation_samples: int = 100  # flow-head isolation: random (condition, target) pairs
    isolation_steps: int = 300  # ... and training steps per head
    umap: bool = True  # UMAP of every stage beside PCA
    seed: int = 0  # seed of the split, the probe samples, the training and the noise

    def __post_init__(self):
        own = "ProbesConfig"
        require(
            isinstance(self.policy, str) and self.policy,
            own,
            "policy",
            self.policy,
            "a name or path",
        )
        require(isinstance(self.manifest, str), own, "manifest", self.manifest, "a name or path")
        require(
            is_int(self.samples) and self.samples >= 4, own, "samples", self.samples, "an int >= 4"
        )
        st = self.stages
        ok = isinstance(st, (list, tuple)) and st and all(s in KNOWN_STAGES for s in st)
        require(ok, own, "stages", st, f"a non-empty list of {KNOWN_STAGES}")
        self.stages = list(st)
        for name in ("eps", "collapse_spread"):
            value = getattr(self, name)
            require(is_number(value) and value > 0, own, name, value, "a number > 0")
        for name in ("train_steps",):
            value = getattr(self, name)
            require(is_int(value) and value >= 0, own, name, value, "an int >= 0")
        for name in ("train_demos", "isolation_samples", "isolation_steps"):
            value = getattr(self, name)
            require(is_int(value) and value >= 1, own, name, value, "an int >= 1")
        require(self.head in ("flow", "regression"), own, "head", self.head, "flow or regression")
        require(isinstance(self.umap, bool), own, "umap", self.umap, "True or False")
        require(is_int(self.seed), own, "seed", self.seed, "an int")


@dataclass
class Probes:
    """The policy, the probe samples and what the notebook found (filled in step by step)."""

    config: ProbesConfig
    store: DemoStore
    model: PolicyWithBackbone
    backbone: object
    stats: object
    features: str
    source: str  # where the policy came from, in words
    samples: Samples
    info: pd.DataFrame  # per probe sample: demo, t, task, instruction
    history: object = None  # training history when the policy was trained here
    representations: dict[str, np.ndarray] = field(default_factory=dict)
    stage_summaries: dict[str, dict] = field(default_factory=dict)
    cka: dict[str, float | None] = field(default_factory=dict)
    checks: pd.DataFrame | None = None
    isolation: dict | None = None
    language: pd.DataFrame | None = None
    attention: dict | None = None
    mi: float | None = None  # InfoBot policies: I(Z; V) estimate on the probe samples

    @property
    def order(self) -> list[str]:
        """The collected stages in pipeline order."""
        return list(self.representations)


# ----------------------------------------------------------------------------- set-up


def prepare(config: ProbesConfig, progress: bool = True) -> Probes:
    """The policy under study and the probe samples (with the policy's normalisation)."""
    from nblib.data.manifest import open_dataset
    from nblib.models.vla import load_policy, load_samples, policy_file

    store = open_dataset(config.manifest, progress=progress)
    if policy_file(config.policy) is not None:
        saved = load_policy(config.policy)
        model, backbone, stats, features = saved.model, saved.backbone, saved.stats, saved.features
        source, history = f"saved policy {config.policy} ({saved.meta.get('notebook', '')})", None
    else:
        model, backbone, stats, features, history = _train_policy(store, config, progress)
        source = (
            f"backbone {config.policy!r} with a {config.head} policy trained here for "
            f"{config.train_steps} steps on {config.train_demos} demos"
        )
    mapping = store.mapping
    if model.policy.config.proprio_dim != mapping.proprio_dim:
        raise ParameterError(
            f"policy {config.policy}: it reads {model.policy.config.proprio_dim}-dim proprio, "
            f"the dataset's mapping '{mapping.name}' gives {mapping.proprio_dim}"
        )
    demos, ts = _probe_indices(store, config.samples, config.seed)
    samples = _subset_samples(load_samples(store.subset(sorted(set(demos))), 1, stats), demos, ts)
    info = pd.DataFrame(
        {
            "demo": samples.demo,
            "t": samples.t,
            "task": [store.task_label(d) for d in samples.demo],
            "instruction": samples.instructions,
        }
    )
    return Probes(config, store, model, backbone, stats, features, source, samples, info, history)


def _train_policy(store: DemoStore, config: ProbesConfig, progress: bool):
    """The backbone named by ``config.policy`` and a policy trained on it here."""
    from nblib.cache import FeatureCache
    from nblib.data.normalization import load_norm_stats
    from nblib.data.splits import split_episodes, subset_train
    from nblib.models.backbone import load_backbone
    from nblib.models.vla import (
        build_policy,
        load_samples,
        make_batches,
        make_loss_fn,
        precompute_features,
    )
    from nblib.paths import cache_dir
    from nblib.train import TrainConfig, seed_everything, train

    backbone = load_backbone(config.policy)
    split = subset_train(
        split_episodes(store.demos, store.task, 0.2, config.seed), config.train_demos
    )
    train_store = store.subset(split.train)
    stats = load_norm_stats(train_store)
    samples = load_samples(train_store, 16, stats)
    cache = FeatureCache(cache_dir(), backbone.identity(), "last")
    precompute_features(backbone, samples, "last", cache, progress=progress)
    seed_everything(config.seed)
    model = PolicyWithBackbone(build_policy(backbone, train_store, 16, config.head))
    history = None
    if config.train_steps:
        history = train(
            model,
            make_batches(samples, 32, config.seed),
            make_loss_fn(samples),
            TrainConfig(
                steps=config.train_steps,
                lr=2e-3,
                schedule="cosine_with_min_lr",
                warmup_steps=max(1, config.train_steps // 20),
                seed=config.seed,
                progress=progress,
                desc=f"policy ({config.head})",
            ),
        )
    return model.eval(), backbone, stats, "last", history


def _probe_indices(store: DemoStore, n: int, seed: int) -> tuple[list[str], list[int]]:
    """``n`` random (demo, t) pairs, as evenly over the tasks as their steps allow."""
    rng = np.random.default_rng(seed)
    by_task: dict[str, list[tuple[str, int]]] = {}
    for d in store.demos:
        by_task.setdefault(store.task_label(d), []).extend((d, t) for t in range(store.lengths[d]))
    tasks = sorted(by_task)
    quota = {t: n // len(tasks) + (i < n % len(tasks)) for i, t in enumerate(tasks)}
    picks = []
    for task in tasks:
        pool = by_task[task]
        chosen = rng.choice(len(pool), size=min(quota[task], len(pool)), replace=False)
        picks.extend(pool[i] for i in sorted(chosen))
    return [d for d, _ in picks], [t for _, t in picks]


def _subset_samples(samples: Samples, demos: list[str], ts: list[int]) -> Samples:
    where = {(d, int(t)): i for i, (d, t) in enumerate(zip(samples.demo, samples.t, strict=True))}
    idx = np.array([where[d, t] for d, t in zip(demos, ts, strict=True)])
    return Samples(
        images=[samples.images[i] for i in idx],
        instructions=[samples.instructions[i] for i in idx],
        proprio=samples.proprio[idx],
        actions=samples.actions[idx],
        mask=samples.mask[idx],
        demo=[samples.demo[i] for i in idx],
        t=samples.t[idx],
    )


# ----------------------------------------------------------------------------- stages


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


def encode_stages(probes: Probes, instructions: list[str], batch_size: int = 16) -> dict:
    """Every configured stage of every probe sample under ``instructions`` (one per sample),
    as float64 (N, D) arrays in pipeline order, and the predicted action chunks (N, H, A)
    in action units (flow noise drawn from the config's seed, the same for every call)."""
    cfg, samples, bb = probes.config, probes.samples, probes.backbone
    want_layers = "vlm_layers" in cfg.stages
    out: dict[str, list] = {}
    preds = []
    gen = torch.Generator().manual_seed(cfg.seed)
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
        feats = (
            {"vlm": enc["last"]}
            if probes.features == "last"
            else {"vlm": enc["tokens"], "vlm_mask": mask}
        )
        feats["proprio"] = torch.as_tensor(samples.proprio[idx])
        policy = probes.model.policy
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
    pred = probes.stats.actions.unnormalize(np.concatenate(preds), "mean_std")
    return {"stages": _pipeline_order(ordered), "actions": pred}


def _pipeline_order(stages: dict) -> dict:
    """Stages sorted as the data flows (the notebook's ``stages`` may list them any way)."""
    rank = {
        s: i
        for i, s in enumerate(
            (
                "images",
                "vlm_layers",
                "vlm_last",
                "vlm_mean",
                "projector",
                "proprio",
                "expert",
                "condition",
            )
        )
    }

    def key(name: str) -> tuple[int, int]:
        if name.startswith("vlm_layer_"):
            return rank["vlm_layers"], int(name.rsplit("_", 1)[1])
        if name.startswith("expert_"):
            return rank["expert"], int(name.rsplit("_", 1)[1])
        return rank[name], 0

    return {k: stages[k] for k in sorted(stages, key=key)}


def collect(probes: Probes) -> dict[str, np.ndarray]:
    """Every probe sample's representation at every stage, with its own instruction."""
    probes.representations = encode_stages(probes, probes.samples.instructions)["stages"]
    return probes.representations


def summaries(probes: Probes) -> pd.DataFrame:
    """Per stage (rows, pipeline order): cosine mean/min/max, active dimensions, effective
    rank, spread, within- and across-task cosine, and linear CKA with the stage before."""
    cfg, reps = probes.config, _collected(probes)
    tasks = probes.info["task"].to_numpy()
    probes.stage_summaries = {
        name: rep.stage_summary(x, groups=tasks, eps=cfg.eps) for name, x in reps.items()
    }
    names = list(reps)
    probes.cka = {names[0]: None} | {
        b: _none_if_nan(rep.linear_cka(reps[a], reps[b]))
        for a, b in zip(names[:-1], names[1:], strict=True)
    }
    table = pd.DataFrame(probes.stage_summaries).T
    table["cka_with_previous"] = pd.Series(probes.cka)
    return table


def collapse(probes: Probes) -> dict:
    """The collapsed learned stages (raw images excluded, see ``INPUT_STAGES``)."""
    learned = [s for s in probes.stage_summaries if s not in INPUT_STAGES]
    if not learned:
        raise ParameterError("no learned stage was collected: run probes.summaries(...) first")
    return rep.collapse_stage(probes.stage_summaries, learned, probes.config.collapse_spread)


def _collected(probes: Probes) -> dict[str, np.ndarray]:
    if not probes.representations:
        raise ParameterError("no representations yet: run probes.collect(study) first")
    return probes.representations


def _none_if_nan(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


# ----------------------------------------------------------------------------- checks


def pipeline_checks(probes: Probes) -> pd.DataFrame:
    """Rows: the LoRA check (on the policy's adapters; on fresh adapters applied to a copy
    of the backbone when it has none, to show the check itself works) and one gradient row
    per module after one backward pass of the policy's loss on probe samples."""
    from nblib.models.checks import gradient_check, lora_check
    from nblib.models.vla import make_batches, make_loss_fn, precompute_features

    samples = probes.samples
    n = min(4, len(samples))
    images, texts = samples.images[:n], samples.instructions[:n]
    backbone = probes.backbone
    note = "the policy's adapters"
    if not backbone.lora_enabled:
        backbone = copy.deepcopy(backbone).apply_lora(rank=4, alpha=8)
        note = "fresh adapters on a copy (the policy has none)"
    lora = lora_check(backbone, images, texts)
    rows = [
        {
            "check": f"LoRA adapters in the forward path ({note})",
            "ok": bool(lora["ok"]),
            "detail": f"{lora['adapters']} adapter tensors; output change {lora['output_change']:.2g} "
            f"when enabled vs zeroed; {lora['with_gradient']} receive a gradient",
        }
    ]
    model = probes.model
    train_samples = copy.copy(samples)  # the policy's loss needs chunks: the probes' horizon is 1
    if model.policy.config.horizon != samples.actions.shape[1]:
        train_samples = _with_horizon(probes, model.policy.config.horizon)
    if not model.backbone:  # frozen backbone: features first, as training does
        precompute_features(probes.backbone, train_samples, probes.features, None, progress=False)
    batch = make_batches(train_samples, min(16, len(train_samples)), probes.config.seed)(0)
    policy = model.policy
    modules = {
        "backbone (VLM)": probes.backbone,
        "projector": policy.projector,
        "proprio encoder": policy.proprio,
        "action expert": policy.expert,
        f"head ({policy.config.head})": policy.head,
    }
    model.train()
    try:
        grads = gradient_check(model, make_loss_fn(train_samples), batch, modules)
    finally:
        model.eval()
    for row in grads:
        trains = row["trainable"] > 0
        rows.append(
            {
                "check": f"{row['module']}: {'trainable, gets a gradient' if trains else 'frozen, gets none'}",
                "ok": row["ok"],
                "detail": f"{row['trainable']} trainable / {row['frozen']} frozen parameters; "
                f"grad norm {row['grad_norm']:.3g}; frozen tensors with a gradient "
                f"{row['frozen_with_grad']}; trainable without {row['trainable_without_grad']}",
            }
        )
    probes.checks = pd.DataFrame(rows)
    return probes.checks


def _with_horizon(probes: Probes, horizon: int) -> Samples:
    from nblib.models.vla import load_samples

    demos, ts = list(probes.samples.demo), [int(t) for t in probes.samples.t]
    full = load_samples(probes.store.subset(sorted(set(demos))), horizon, probes.stats)
    return _subset_samples(full, demos, ts)


# ----------------------------------------------------------------------------- head alone


def head_isolation(
    config: ProbesConfig, cond_dim: int = 128, horizon: int = 16, action_dim: int = 4
) -> dict:
    """Seed 001's test 3: can the head map unique conditions to targets at all? The flow
    head and the regression head, each trained alone on ``isolation_samples`` random
    conditions -> random targets (both N(0, 1)) with the suite's training loop. Returns
    per head its History and the final action MAE of its predictions on those targets (a
    constant predictor scores ~0.8)."""
    from nblib.models.heads import make_head
    from nblib.train import TrainConfig, train

    g = torch.Generator().manual_seed(config.seed)
    cond = torch.randn(config.isolation_samples, cond_dim, generator=g)
    target = torch.randn(config.isolation_samples, horizon, action_dim, generator=g)

    def batch(step: int) -> dict:
        rng = np.random.default_rng([config.seed, step])
        idx = rng.choice(len(cond), size=min(32, len(cond)), replace=False)
        return {"cond": cond[idx], "actions": target[idx]}

    out = {}
    for kind in ("flow", "regression"):
        torch.manual_seed(config.seed)
        head = make_head(kind, cond_dim, horizon, action_dim)
        history = train(
            head,
            batch,
            lambda m, b: m.loss(b["cond"], b["actions"]),
            TrainConfig(steps=config.isolation_steps, lr=1e-3, seed=config.seed, progress=False),
        )
        head.eval()
        with torch.no_grad():
            pred = head.predict(cond, generator=torch.Generator().manual_seed(config.seed))
        out[kind] = {
            "history": history,
            "final_loss": history.final("loss", 20),
            "first_loss": float(np.mean(history.column("loss")[:20])),
            "mae": float((pred - target).abs().mean()),
        }
    return out


# ----------------------------------------------------------------------------- language


def instruction_variants(probes: Probes) -> dict[str, list[str]]:
    """Per variant, one instruction per probe sample: ``paraphrase`` (another phrasing of
    the same task from the file's instruction list; left out unless every task has one),
    ``other task`` (the instruction of the next task in alphabetical order), ``shuffled``
    (its words in a random order) and ``empty``."""
    original = list(probes.samples.instructions)
    tasks = probes.info["task"].tolist()
    by_task = {t: i for t, i in zip(tasks, original, strict=True)}
    ordered = sorted(by_task)
    other = {t: by_task[ordered[(k + 1) % len(ordered)]] for k, t in enumerate(ordered)}
    rng = np.random.default_rng(probes.config.seed)

    def shuffle(text: str) -> str:
        words = text.split()
        if len(set(words)) < 2:
            return text
        while True:
            perm = [words[i] for i in rng.permutation(len(words))]
            if perm != words:
                return " ".join(perm)

    out = {}
    phrasings = _paraphrases(probes.store)
    paraphrased = [_another(phrasings.get(t, []), o) for t, o in zip(tasks, original, strict=True)]
    if all(p is not None for p in paraphrased):  # only when every task has another phrasing
        out["paraphrase"] = paraphrased
    out["other task"] = [other[t] for t in tasks]
    out["shuffled"] = [shuffle(o) for o in original]
    out["empty"] = [""] * len(original)
    return out


def _paraphrases(store: DemoStore) -> dict[str, list[str]]:
    """task -> its phrasings, where the dataset lists them (the generator's files do)."""
    if not store.has("instruction_phrasings"):
        return {}
    return store.instruction_phrasings()


def _another(phrasings: list[str], original: str) -> str | None:
    others = [p for p in phrasings if p != original]
    return others[0] if others else None


def language_reliance(probes: Probes) -> pd.DataFrame:
    """Per instruction variant (rows): how alike it is to the original in meaning
    (all-MiniLM-L6-v2 cosine), how alike each stage's embedding stays (mean cosine with
    the original's, 1 = unchanged) and how far the predicted actions move (mean |change|
    in action stds, the flow noise held fixed)."""
    from nblib.models.text import sentence_similarity

    base = encode_stages(probes, probes.samples.instructions)
    std = np.maximum(np.asarray(probes.stats.actions.std), 1e-8)
    rows = {}
    for name, texts in instruction_variants(probes).items():
        changed = encode_stages(probes, texts)
        row = {
            "text_similarity": float(
                np.mean(sentence_similarity(probes.samples.instructions, texts))
            )
        }
        for stage, x in changed["stages"].items():
            if stage == "images":
                continue
            row[stage] = _mean_row_cosine(base["stages"][stage], x)
        row["action_change_std"] = float(
            (np.abs(changed["actions"] - base["actions"]) / std).mean()
        )
        rows[name] = row
    probes.language = pd.DataFrame(rows).T
    return probes.language


def _mean_row_cosine(a: np.ndarray, b: np.ndarray) -> float | None:
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    ok = (na > 0) & (nb > 0)
    if not ok.any():
        return None
    return float(np.mean(np.einsum("nd,nd->n", a[ok], b[ok]) / (na[ok] * nb[ok])))


def mi_estimate(probes: Probes) -> float | None:
    """An InfoBot policy's InfoNCE estimate of I(Z; V) on the probe samples (nats; at most
    log of their number); None for other policies."""
    samples = probes.samples
    enc = probes.backbone.encode(samples.images, samples.instructions, output=("last", "tokens"))
    feats = (
        {"vlm": enc["last"]}
        if probes.features == "last"
        else {"vlm": enc["tokens"], "vlm_mask": enc["attention_mask"].bool()}
    )
    feats["proprio"] = torch.as_tensor(samples.proprio)
    probes.mi = probes.model.policy.mi_estimate(feats)
    return probes.mi


def instruction_attention(probes: Probes) -> dict | None:
    """The VLM's last-token attention on the instruction tokens (mean over samples) and the
    instruction's share of the tokens (what uniform attention gives); None for a model
    whose prompt does not mark the instruction."""
    try:
        got = probes.backbone.instruction_attention(
            probes.samples.images, probes.samples.instructions
        )
    except ParameterError:
        return None
    probes.attention = {"mass": float(got["mass"].mean()), "share": float(got["share"].mean())}
    return probes.attention


# ----------------------------------------------------------------------------- figures


def sample_order(probes: Probes) -> np.ndarray:
    """Probe samples sorted by task, then timestep (for the heatmaps)."""
    return np.lexsort((probes.info["t"].to_numpy(), probes.info["task"].to_numpy()))


def cosine_heatmaps(probes: Probes):
    return plots.plot_cosine_heatmaps(
        _collected(probes), sample_order(probes), probes.info["task"].tolist()
    )


def collapse_bars(probes: Probes, table: pd.DataFrame):
    return plots.plot_collapse(table, probes.config.collapse_spread)


def embeddings(probes: Probes, method: str = "pca") -> dict[str, np.ndarray]:
    """(N, 2) PCA or UMAP of every stage."""
    from nblib.metrics.embedding import pca_embedding, umap_embedding

    if method not in ("pca", "umap"):
        raise ParameterError(f"method must be 'pca' or 'umap', got {method!r}")
    reps = _collected(probes)
    if method == "pca":
        return {k: pca_embedding(x)[0] for k, x in reps.items()}
    return {k: umap_embedding(x, probes.config.seed) for k, x in reps.items()}


def embedding_figures(probes: Probes, points: dict[str, np.ndarray], method: str) -> dict:
    """The embeddings coloured by task and by timestep, by figure name."""
    return {
        f"{method}_by_task": plots.plot_embeddings(
            points, probes.info["task"], f"{method.upper()} per stage, coloured by task"
        ),
        f"{method}_by_timestep": plots.plot_embeddings(
            points,
            probes.info["t"],
            f"{method.upper()} per stage, coloured by timestep",
            categorical=False,
        ),
    }


def stage_browser(probes: Probes, points_by_method: dict[str, dict[str, np.ndarray]]):
    """ipywidgets (``interactive=True``): pick a stage, an embedding and a colouring."""
    import ipywidgets as w
    import matplotlib.pyplot as plt

    methods = list(points_by_method)
    stages = list(points_by_method[methods[0]])

    def show(stage: str, method: str, colour: str):
        values = probes.info["task"] if colour == "task" else probes.info["t"]
        plots.plot_embeddings(
            {stage: points_by_method[method][stage]},
            values,
            f"{method.upper()} of {stage}",
            categorical=colour == "task",
        )
        plt.show()

    return w.interactive(
        show,
        stage=w.Dropdown(options=stages, value=stages[-1], description="stage"),
        method=w.Dropdown(options=methods, value=methods[0], description="embedding"),
        colour=w.Dropdown(options=["task", "timestep"], value="task", description="colour"),
    )


# ----------------------------------------------------------------------------- verdict


def verdict(probes: Probes) -> Verdict:
    cfg = probes.config
    found = collapse(probes)
    learned = [s for s in probes.stage_summaries if s not in INPUT_STAGES]
    last = learned[-1]
    spreads = {s: probes.stage_summaries[s]["spread"] for s in learned}
    cos = {s: probes.stage_summaries[s]["cos_mean"] for s in probes.stage_summaries}
    numbers = {
        "first_collapsed_stage": found["first"],
        "least_spread_stage": found["least_spread"],
        "collapse_spread": cfg.collapse_spread,
        f"{last}_spread": spreads[last],
        f"{last}_cos_mean": cos[last],
    }
    described = ", ".join(
        f"{s} {cos[s]:.3f}" for s in ("vlm_last", "proprio", last) if cos.get(s) is not None
    )
    reasons = [
        f"mean pairwise cosine: {described} (seed 001: VLM 0.997, proprio 0.006, condition 0.730)"
    ]
    if last in found["collapsed"]:
        label = "COLLAPSED"
        reasons.insert(
            0,
            f"information collapses at {found['first']}: the {last} the head reads is nearly "
            f"the same for every sample (spread {spreads[last]:.4f} < {cfg.collapse_spread})",
        )
    elif found["collapsed"]:
        label = "BOTTLENECK"
        reasons.insert(
            0,
            f"information collapses at {found['first']} (spread {spreads[found['first']]:.4f} "
            f"< {cfg.collapse_spread}) but the {last} recovers per-sample variation (spread "
            f"{spreads[last]:.4f}): it must come through another input, such as proprio",
        )
    else:
        label = "DIVERSE"
        reasons.insert(
            0,
            f"no learned stage collapses: the least varied is {found['least_spread']} (spread "
            f"{spreads[found['least_spread']]:.4f} >= {cfg.collapse_spread})",
        )
    if probes.language is not None:
        change = probes.language["action_change_std"]
        numbers |= {f"action_change_{k.replace(' ', '_')}": float(v) for k, v in change.items()}
        worst = max(change.get("other task", 0.0), change.get("empty", 0.0))
        relies = "relies on" if worst >= LANGUAGE_TOL else "ignores"
        reasons.append(
            "the instruction changes the predicted actions by "
            + ", ".join(f"{v:.3f} std ({k})" for k, v in change.items())
            + f": the policy {relies} its instruction (threshold {LANGUAGE_TOL} std)"
        )
    return Verdict(label, reasons, numbers)


def metrics(probes: Probes) -> dict:
    """What metrics.json records beside the verdict's numbers."""
    out = {
        "policy": probes.source,
        "samples": len(probes.samples),
        "stages": {
            name: s | {"cka_with_previous": probes.cka.get(name)}
            for name, s in probes.stage_summaries.items()
        },
        "collapse": collapse(probes),
    }
    if probes.language is not None:
        out["language"] = {
            k: {c: _none_if_nan(v) if isinstance(v, float) else v for c, v in row.items()}
            for k, row in probes.language.to_dict(orient="index").items()
        }
    if probes.checks is not None:
        out["checks"] = probes.checks.to_dict(orient="records")
    if probes.isolation is not None:
        out["head_isolation"] = {
            k: {m: v[m] for m in ("first_loss", "final_loss", "mae")}
            for k, v in probes.isolation.items()
        }
    out["instruction_attention"] = probes.attention
    out["infobot_mi_estimate"] = probes.mi
    return out
