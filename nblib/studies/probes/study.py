"""Notebook 02's config and set-up: the policy under study and the probe samples.

The policy is a notebook-01 run folder (its saved policy), or the tiny backbone / a VLM
checkpoint with a policy trained here by the suite's one set-up
(:mod:`nblib.studies.setup`) for ``train_steps``. The probe samples are a reproducible
random set spread evenly over the tasks, normalised as the policy was trained, with the
geometry tokens a geometry policy reads.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import torch

from nblib.data.hdf5 import DemoStore
from nblib.data.normalization import NormStats
from nblib.errors import ParameterError, is_int, is_number, require
from nblib.models.vla import PolicyWithBackbone, Samples
from nblib.plugins.runtime import PluginSource
from nblib.studies import Study, StudyConfig, long_runs
from nblib.studies.setup import LR, SetupConfig
from nblib.train import History, TrainConfig

# Stages in pipeline order; "expert" stands for every action-expert layer and "vlm_layers"
# (opt-in) for the last-token state of every VLM layer.
STAGES = ("images", "vlm_last", "vlm_mean", "projector", "proprio", "expert", "condition")
KNOWN_STAGES = (*STAGES, "vlm_layers")
TRAIN_HEADS = ("flow", "regression")


@dataclass
class ProbesConfig(StudyConfig):
    policy: str = "tiny"  # tiny, a VLM checkpoint, a notebook-01 run folder or a plug-in spec
    policy_kwargs: dict = field(default_factory=dict)  # a plug-in spec's factory's kwargs
    manifest: str = "metaworld_default"  # dataset manifest name or path
    samples: int = 60  # probe samples, spread evenly over the tasks
    # nblib's stages; with a plug-in its probe_stages (a list selects, a dict adds paths)
    stages: list[str] | dict = field(default_factory=lambda: list(STAGES))
    eps: float = 0.01  # a dimension is active when its std over samples exceeds this
    collapse_spread: float = 0.01  # a stage is collapsed below this spread (~ cosine 0.99)
    train_steps: int = 300  # policy tiny or a checkpoint: steps of the policy trained here
    train_demos: int = 5  # ... on this many training demos
    head: str = "flow"  # ... with this head
    isolation_samples: int = 100  # flow-head isolation: random (condition, target) pairs
    isolation_steps: int = 300  # ... and training steps per head
    umap: bool = False  # UMAP of every stage beside PCA (60 points: PCA reads as well)
    seed: int = 0  # seed of the split, the probe samples, the training and the noise
    checkpoint_every: int = 0  # the policy trained here: checkpoint every N steps (0: off)
    resume: bool = True  # ... and continue from the newest checkpoint in OUT/checkpoints

    def __post_init__(self):
        own = "ProbesConfig"
        require(
            isinstance(self.policy, str) and self.policy,
            own,
            "policy",
            self.policy,
            "a name or path",
        )
        require(
            is_int(self.samples) and self.samples >= 4, own, "samples", self.samples, "an int >= 4"
        )
        st = self.stages
        if self.plugin:
            names = st if isinstance(st, (list, tuple)) else list(st or {})
            ok = isinstance(st, (list, tuple, dict)) and all(isinstance(s, str) for s in names)
            if isinstance(st, dict):
                ok = ok and all(isinstance(v, str) for v in st.values())
            expected = "a list of the plug-in's stage names, or a dict of name -> submodule path"
            require(ok, own, "stages", st, expected)
            self.stages = dict(st) if isinstance(st, dict) else list(st)
        else:
            ok = isinstance(st, (list, tuple)) and st and all(s in KNOWN_STAGES for s in st)
            require(ok, own, "stages", st, f"a non-empty list of {KNOWN_STAGES}")
            self.stages = list(st)
        pk = self.policy_kwargs
        require(isinstance(pk, dict), own, "policy_kwargs", pk, "a dict")
        for name in ("eps", "collapse_spread"):
            value = getattr(self, name)
            require(is_number(value) and value > 0, own, name, value, "a number > 0")
        ts = self.train_steps
        require(is_int(ts) and ts >= 0, own, "train_steps", ts, "an int >= 0")
        long_runs.check_params(self, own)
        for name in ("isolation_samples", "isolation_steps"):
            value = getattr(self, name)
            require(is_int(value) and value >= 1, own, name, value, "an int >= 1")
        require(self.head in TRAIN_HEADS, own, "head", self.head, "flow or regression")
        require(isinstance(self.umap, bool), own, "umap", self.umap, "True or False")
        require(is_int(self.seed), own, "seed", self.seed, "an int")
        self.setup_config()  # manifest, train_demos: checked by the set-up

    @property
    def plugin(self) -> bool:
        """A plug-in: a spec, or a notebook-01 run folder of one."""
        from nblib.plugins.runtime import plugin_file
        from nblib.plugins.spec import is_policy_spec

        return is_policy_spec(self.policy) or plugin_file(self.policy) is not None

    @property
    def default_stages(self) -> bool:
        return self.stages == list(STAGES)

    def setup_config(self) -> SetupConfig:
        """The set-up of a policy trained here (``policy`` a backbone or a plug-in spec,
        not a saved policy)."""
        from nblib.plugins.spec import is_policy_spec

        spec = is_policy_spec(self.policy)
        return SetupConfig(
            manifest=self.manifest,
            demos=self.train_demos,
            head=self.head,
            split_seed=self.seed,
            backbone="tiny" if spec else self.policy,
            policy=self.policy if spec else "nblib",
            policy_kwargs=self.policy_kwargs,
            owner="ProbesConfig",
            names={"demos": "train_demos", "backbone": "policy"},
        )

    def train_config(self, progress: bool = True, run_dir=None) -> TrainConfig:
        """How a policy trained here is fitted: the set-up's peak LR, cosine with a floor,
        a 5 % warmup; with ``run_dir``, checkpointed into ``run_dir/checkpoints``."""
        setup = asdict(self.setup_config())
        identity = {k: v for k, v in setup.items() if k not in ("owner", "names")}
        return TrainConfig(
            steps=self.train_steps,
            lr=LR,
            schedule="cosine_with_min_lr",
            warmup_steps=max(1, self.train_steps // 20),
            seed=self.seed,
            progress=progress,
            desc=f"policy ({self.head})",
            **long_runs.checkpoint_settings(self, run_dir, identity=identity),
        )


@dataclass(frozen=True)
class ProbesStudy(Study):
    """The policy, where it came from, and the probe samples."""

    store: DemoStore
    model: PolicyWithBackbone
    backbone: object
    stats: NormStats
    features: str  # the VLM output the policy reads: last or tokens
    source: str  # where the policy came from, in words
    samples: Samples
    info: pd.DataFrame  # per probe sample: demo, t, task, instruction
    history: History | None  # training history when the policy was trained here
    plugin: PluginSource | None = None  # a plug-in policy (model is then the plug-in itself)
    plugin_stages: dict | None = None  # its stages: name -> submodule path


def prepare(config: ProbesConfig, run_dir=None, progress: bool = True) -> ProbesStudy:
    """The policy under study and the probe samples (with the policy's normalisation). A
    policy trained here checkpoints into ``run_dir/checkpoints`` (the notebook's output
    folder) when ``checkpoint_every`` > 0, and resumes from there."""
    from nblib.data.manifest import open_dataset
    from nblib.models.vla import load_policy, load_samples, policy_file
    from nblib.plugins.runtime import load_plugin, plugin_file

    store = open_dataset(config.manifest, progress=progress)
    plugin = None
    if plugin_file(config.policy) is not None:
        saved = load_plugin(config.policy)
        if saved.stats is None:
            raise ParameterError(
                f"policy {config.policy}: the saved plug-in records no normalisation "
                "statistics (saved by an older nblib?); rerun notebook 01 to save it again"
            )
        model, plugin, stats, features, history = saved.model, saved.source, saved.stats, "", None
        source = f"saved plug-in {plugin.spec} ({saved.meta.get('notebook', '')})"
    elif policy_file(config.policy) is not None:
        saved = load_policy(config.policy)
        model, backbone, stats, features = saved.model, saved.backbone, saved.stats, saved.features
        source, history = f"saved policy {config.policy} ({saved.meta.get('notebook', '')})", None
    else:
        trained = _train_policy(config, run_dir, progress)
        model, backbone, stats, features, history, plugin = trained
        trained = f"trained here for {config.train_steps} steps on {config.train_demos} demos"
        if plugin is not None:
            source = f"plug-in {config.policy!r} {trained}"
        else:
            source = f"backbone {config.policy!r} with a {config.head} policy {trained}"
    if plugin is not None:
        backbone = None
        state_dim = plugin.info.state_dim
    else:
        state_dim = model.policy.config.proprio_dim
    mapping = store.mapping
    if state_dim != mapping.proprio_dim:
        raise ParameterError(
            f"policy {config.policy}: it reads {state_dim}-dim proprio, "
            f"the dataset's mapping '{mapping.name}' gives {mapping.proprio_dim}"
        )
    demos, ts = _probe_indices(store, config.samples, config.seed)
    samples = subset_samples(load_samples(store.subset(sorted(set(demos))), 1, stats), demos, ts)
    stages = None
    if plugin is not None:
        from nblib.studies.probes.hooks import selected_stages

        stages = selected_stages(model, config.stages, config.default_stages, plugin.spec)
    else:
        attach_policy_geometry(model, store, samples, progress)
    info = pd.DataFrame(
        {
            "demo": samples.demo,
            "t": samples.t,
            "task": [store.task_label(d) for d in samples.demo],
            "instruction": samples.instructions,
        }
    )
    return ProbesStudy(
        config,
        store,
        model,
        backbone,
        stats,
        features,
        source,
        samples,
        info,
        history,
        plugin,
        stages,
    )


def describe(study: ProbesStudy) -> str:
    """Where the policy came from and the probe samples per task."""
    counts = study.info["task"].value_counts().to_dict()
    return f"{study.source} | {len(study.samples)} probe samples: {counts}"


def _train_policy(config: ProbesConfig, run_dir, progress: bool):
    """The backbone named by ``config.policy`` and a policy trained on it here."""
    from nblib.studies.setup import prepare_training, train_policy

    setup = prepare_training(config.setup_config(), progress=progress)
    model = setup.new_model(config.seed)
    setup.check(model)
    history = None
    if config.train_steps:
        history = train_policy(setup, model, config.train_config(progress, run_dir))
    features = setup.config.features
    return model.eval(), setup.backbone, setup.stats, features, history, setup.plugin


def attach_policy_geometry(
    model: PolicyWithBackbone, store: DemoStore, samples: Samples, progress: bool = False
) -> None:
    """A geometry policy (seed 002's compressors) reads geometry tokens beside the VLM:
    give the samples theirs (from the frozen encoder's cache), as notebook 01 did."""
    if model.policy.config.geometry == "none":
        return
    from nblib.data.geometry import geometry_tokens

    samples.attach_geometry(geometry_tokens(store, sorted(set(samples.demo)), progress=progress))


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


def subset_samples(samples: Samples, demos: list[str], ts: list[int]) -> Samples:
    """The samples at (demo, t), in that order."""
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
        geometry=None if samples.geometry is None else samples.geometry[idx],
    )


def policy_inputs(study: ProbesStudy, idx: np.ndarray, enc: dict) -> dict:
    """The policy's inputs for probe samples ``idx`` from the backbone's encoding ``enc``
    (``encode(..., output=("last", "tokens"))``): VLM features of the kind it reads, its
    proprio and, for a geometry policy, its geometry tokens."""
    samples = study.samples
    if study.features == "last":
        feats = {"vlm": enc["last"]}
    else:
        feats = {"vlm": enc["tokens"], "vlm_mask": enc["attention_mask"].bool()}
    feats["proprio"] = torch.as_tensor(samples.proprio[idx])
    if samples.geometry is not None:
        feats["geom"] = torch.as_tensor(samples.geometry[idx])
    return feats
