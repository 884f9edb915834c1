"""What is in this dataset, and is its validation split unseen? (notebook 00, seed 004)

The engine of ``00_dataset_card``: the file is validated against its key mapping first
(a bad file stops with an error naming the file, HDF5 key, demo and step), then described
(demos per task, episode lengths, action histograms, frame strips, instructions), split per
episode before any subsetting, and its validation frames compared with its training frames.

Verdict: **PASS** when the file is valid and no validation frame duplicates a training
frame; **WARN** when validation frames are byte-identical to training frames, most are
near-identical, or some demos did not reach success.

Plot functions take arrays and return ``(fig, axes)``; the steps read the frames.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pandas as pd

from nblib.data.formats import check_dataset
from nblib.data.hdf5 import DemoStore
from nblib.data.leakage import LeakageReport, leakage_report
from nblib.data.manifest import open_dataset
from nblib.data.splits import VAL_FRACTION, Split, split_episodes, subset_train
from nblib.data.summary import DatasetSummary, format_summary
from nblib.errors import is_int, is_number, require
from nblib.metrics.estimates import bootstrap_ratio
from nblib.plots import colors_for, new_figure
from nblib.studies import Evidence, Study, StudyConfig
from nblib.verdict import Estimate, Verdict

# Share of near-identical validation frames above which the split is flagged (WARN).
NEAR_WARN = 0.5


@dataclass
class CardConfig(StudyConfig):
    manifest: str = "metaworld_default"  # a name in data_manifests/ or a path to a .yaml
    mapping: str | None = None  # key mapping overriding the manifest's
    val_fraction: float = VAL_FRACTION  # share of each task's demos held out (split per episode)
    split_seed: int = 0  # seed of the split; every training subset shares its val set
    train_demos: int | None = None  # keep only the first N training demos; None keeps all
    strip_demos_per_task: int = 1  # random demos per task shown as frame strips
    strip_frames: int = 6  # frames per strip, evenly spaced from first to last step
    seed: int = 0  # seed for the random demos shown
    leakage_camera: str | None = None  # camera compared (None: the mapping's first)
    leakage_threshold: float = 1.0  # RMS grey-level difference counted as near-identical

    def __post_init__(self):
        own = "CardConfig"
        require(isinstance(self.manifest, str), own, "manifest", self.manifest, "a name or path")
        require(
            self.mapping is None or isinstance(self.mapping, str),
            own,
            "mapping",
            self.mapping,
            "None or a key mapping name or .json path",
        )
        v = self.val_fraction
        require(is_number(v) and 0 <= v < 1, own, "val_fraction", v, "a number in [0, 1)")
        require(is_int(self.split_seed), own, "split_seed", self.split_seed, "an int")
        t = self.train_demos
        require(t is None or (is_int(t) and t >= 1), own, "train_demos", t, "None or an int >= 1")
        for name in ("strip_demos_per_task", "strip_frames"):
            value = getattr(self, name)
            require(is_int(value) and value >= 1, own, name, value, "an int >= 1")
        require(is_int(self.seed), own, "seed", self.seed, "an int")
        cam = self.leakage_camera
        require(cam is None or isinstance(cam, str), own, "leakage_camera", cam, "None or a name")
        thr = self.leakage_threshold
        require(is_number(thr) and thr >= 0, own, "leakage_threshold", thr, "a number >= 0")


@dataclass(frozen=True)
class CardStudy(Study):
    """A validated dataset: the store, its check summary and the demos its expert failed."""

    store: DemoStore
    summary: DatasetSummary
    failed_demos: tuple[str, ...]

    @property
    def path(self):
        return self.store.path


@dataclass(frozen=True)
class Leakage:
    """The per-episode split and the leakage report of its validation frames."""

    split: Split
    report: LeakageReport


@dataclass(frozen=True)
class CardEvidence(Evidence):
    demos: int
    steps: int
    tasks: int
    failed_demos: tuple[str, ...]
    split: Split
    leakage: LeakageReport
    near_fraction: Estimate  # share of near-identical validation frames, bootstrap interval


def prepare(config: CardConfig) -> CardStudy:
    """Open the manifest's file (generated on first use, checksum verified) and validate
    every demo's keys, shapes, lengths and values against the key mapping."""
    store = open_dataset(config.manifest, mapping=config.mapping)
    summary = check_dataset(store.path, mapping=store.mapping)
    return CardStudy(config, store, summary, tuple(failed_demos(store)))


def summary_text(study: CardStudy) -> str:
    """The validation summary, with the file's name only (nbval compares it)."""
    return format_summary(study.summary, path_label=study.path.name)


def demos_table(store: DemoStore) -> pd.DataFrame:
    """One row per task: demos, steps, episode length min/median/max, instruction(s)."""
    rows: dict[str, dict] = {}
    for d in store.demos:
        task = store.task_label(d)
        row = rows.setdefault(task, {"task": task, "lengths": [], "instructions": set()})
        row["lengths"].append(store.lengths[d])
        row["instructions"].add(store.instruction[d] or "")
    out = []
    for task, row in rows.items():
        lengths = np.array(row["lengths"])
        out.append(
            {
                "task": task,
                "demos": len(lengths),
                "steps": int(lengths.sum()),
                "len_min": int(lengths.min()),
                "len_median": float(np.median(lengths)),
                "len_max": int(lengths.max()),
                "instructions": " | ".join(sorted(row["instructions"])),
            }
        )
    return pd.DataFrame(out).set_index("task")


def split_and_check_leakage(study: CardStudy) -> Leakage:
    """The per-episode split (stratified by task, before any subsetting) and the leakage
    report comparing every validation frame with every training frame of one camera."""
    cfg, store = study.config, study.store
    split = subset_train(
        split_episodes(store.demos, store.task, cfg.val_fraction, cfg.split_seed), cfg.train_demos
    )
    report = leakage_report(
        store,
        split.train,
        split.val,
        camera=cfg.leakage_camera,
        threshold=cfg.leakage_threshold,
    )
    return Leakage(split, report)


def evidence(study: CardStudy, leakage: Leakage) -> CardEvidence:
    """The counts, the failed demos and the leakage, with the share of near-identical
    validation frames bootstrapped over the validation demos (a demo's frames are alike)."""
    report = leakage.report
    demos = [d for d in leakage.split.val if d in report.per_val_demo]
    if demos:
        frames = np.array([study.store.lengths[d] for d in demos], dtype=float)
        near = np.array([report.per_val_demo[d] for d in demos]) * frames
        near_fraction = bootstrap_ratio(near, frames, "validation demos", study.config.seed)
    else:
        near_fraction = Estimate(0.0, 0.0, 0.0, "no validation frames")
    s = study.summary
    return CardEvidence(
        s.demos, s.steps, len(s.tasks), study.failed_demos, leakage.split, report, near_fraction
    )


def verdict(evidence: CardEvidence, config: CardConfig) -> Verdict:
    """PASS / WARN for a dataset that passed the checks (a file that fails them never gets
    here). WARN when a validation frame is byte-identical to a training frame, when more
    than ``NEAR_WARN`` of validation frames may be near-identical to training ones (the
    bootstrap interval reaches above it: a card takes the cautious side), or when some
    demos were flagged as failed by their expert."""
    leak, near = evidence.leakage, evidence.near_fraction
    reasons = []
    if leak.exact:
        reasons.append(f"{leak.exact} validation frames are byte-identical to training frames")
    if not near.below(NEAR_WARN):
        reasons.append(
            f"{near.value:.0%} of validation frames are near-identical to training frames "
            f"(RMS < {leak.threshold} grey levels; {near.method}: [{near.low:.0%}, "
            f"{near.high:.0%}], threshold {NEAR_WARN:.0%})"
        )
    failed = evidence.failed_demos
    if failed:
        reasons.append(f"{len(failed)} demos did not reach success: {list(failed[:5])}")
    numbers = {
        "leak_exact": leak.exact,
        **near.numbers("leak_near_fraction"),
        "failed_demos": len(failed),
    }
    return Verdict("WARN" if reasons else "PASS", reasons, numbers)


def metrics(evidence: CardEvidence) -> dict:
    """What metrics.json records beside the verdict's numbers."""
    return {
        "demos": evidence.demos,
        "steps": evidence.steps,
        "tasks": evidence.tasks,
        "train_demos": len(evidence.split.train),
        "val_demos": len(evidence.split.val),
    }


def failed_demos(store: DemoStore) -> list[str]:
    """Demos whose ``success`` attribute is False (layouts without it: none)."""
    if not store.has("success_flags"):  # e.g. LeRobot episodes carry no success flag
        return []
    return [demo for demo, ok in store.success_flags().items() if not ok]


def random_demos_per_task(store: DemoStore, per_task: int, seed: int) -> dict[str, list[str]]:
    """``per_task`` random demos of each task, reproducible for a seed."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[str]] = {}
    for task in store.tasks():
        members = [d for d in store.demos if store.task_label(d) == task]
        picks = rng.choice(len(members), size=min(per_task, len(members)), replace=False)
        out[task] = [members[i] for i in sorted(picks)]
    return out


# ----------------------------------------------------------------------------- figures


def plot_episode_lengths(store: DemoStore):
    """Histogram of episode lengths (steps), stacked by task."""
    tasks = store.tasks()
    colours = colors_for(tasks)
    fig, ax = new_figure()
    lengths = [[store.lengths[d] for d in store.demos if store.task_label(d) == t] for t in tasks]
    ax.hist(lengths, bins=15, stacked=True, label=tasks, color=[colours[t] for t in tasks])
    ax.set_xlabel("episode length (steps)")
    ax.set_ylabel("demos")
    ax.legend(fontsize=6)
    return fig, ax


def plot_action_histograms(store: DemoStore, dim_names: list[str] | None = None, bins: int = 40):
    """One histogram per action dimension over all steps, by task (step-normalised)."""
    dims = store.mapping.action_dim
    names = dim_names or store.mapping.action_labels()
    tasks = store.tasks()
    colours = colors_for(tasks)
    fig, axes = new_figure(ncols=dims, nrows=1, squeeze=False)
    for i, ax in enumerate(axes[0]):
        for task in tasks:
            values = np.concatenate(
                [store.actions[d][:, i] for d in store.demos if store.task_label(d) == task]
            )
            ax.hist(
                values,
                bins=bins,
                range=(-1, 1),
                histtype="step",
                density=True,
                color=colours[task],
                label=task,
            )
        ax.set_title(names[i])
        ax.set_yticks([])
    axes[0][-1].legend(fontsize=5, loc="upper right")
    return fig, axes


def frame_strips(study: CardStudy) -> dict[str, tuple]:
    """One figure per camera: evenly spaced frames of ``strip_demos_per_task`` random demos
    of each task. Returns camera -> (fig, axes)."""
    cfg, store = study.config, study.store
    shown = [
        d
        for demos in random_demos_per_task(store, cfg.strip_demos_per_task, cfg.seed).values()
        for d in demos
    ]
    out = {}
    for camera in store.cameras:
        rows = []
        for demo in shown:
            ts = np.linspace(0, store.lengths[demo] - 1, cfg.strip_frames).round().astype(int)
            frames = [store.frames(demo, camera, int(t), int(t) + 1)[0] for t in ts]
            rows.append((f"{store.task_label(demo)}\n{demo}", ts.tolist(), frames))
        out[camera] = plot_frame_grid(rows, camera)
    return out


def plot_frame_grid(rows: list[tuple[str, list[int], list[np.ndarray]]], camera: str):
    """One row per demo: ``(label, steps, frames)`` with frames (H, W, 3) uint8."""
    n_frames = max(len(frames) for _, _, frames in rows)
    fig, axes = new_figure(
        ncols=n_frames, nrows=len(rows), height=1.0 * len(rows) + 0.3, squeeze=False
    )
    for row, (label, steps, frames) in zip(axes, rows, strict=True):
        for ax, t, frame in zip(row, steps, frames, strict=True):
            ax.imshow(frame)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"t={t}", fontsize=5, pad=1)
        row[0].set_ylabel(label, fontsize=5)
    fig.suptitle(f"camera: {camera}", fontsize=7)
    return fig, axes


def leakage_examples(study: CardStudy, leakage: Leakage, n: int = 4):
    """The closest val/train frame pairs of the leakage report, side by side."""
    leak, store = leakage.report, study.store
    pairs = []
    for ex in leak.examples[:n]:
        val = store.frames(ex["val_demo"], leak.camera, ex["val_t"], ex["val_t"] + 1)[0]
        train = store.frames(ex["train_demo"], leak.camera, ex["train_t"], ex["train_t"] + 1)
        pairs.append(
            (
                val,
                f"val {ex['val_demo']} t={ex['val_t']}",
                train[0],
                f"train {ex['train_demo']} t={ex['train_t']} (rms {ex['rms_diff']:.2f})",
            )
        )
    return plot_leakage_pairs(pairs)


def plot_leakage_pairs(pairs: list[tuple[np.ndarray, str, np.ndarray, str]]):
    """Rows of (val frame, caption, train frame, caption)."""
    fig, axes = new_figure(
        ncols=2, nrows=max(len(pairs), 1), height=1.3 * max(len(pairs), 1), squeeze=False
    )
    for row, (val, val_title, train, train_title) in zip(axes, pairs, strict=False):
        row[0].imshow(val)
        row[0].set_title(val_title, fontsize=6)
        row[1].imshow(train)
        row[1].set_title(train_title, fontsize=6)
        for ax in row:
            ax.axis("off")
    return fig, axes


# ----------------------------------------------------------------------------- interactive


def _png(frame) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(frame).resize((frame.shape[1] * 3, frame.shape[0] * 3), Image.NEAREST).save(
        buf, "png"
    )
    return buf.getvalue()


def frame_browser(store: DemoStore):
    """ipywidgets controls (``interactive=True`` in JupyterLab): pick a task, a demo and a
    camera, and scrub through its frames with the step's action, proprio and instruction."""
    import ipywidgets as w

    tasks = store.tasks()
    task = w.Dropdown(options=tasks, description="task")
    demo = w.Dropdown(description="demo")
    camera = w.Dropdown(options=store.cameras, description="camera")
    step = w.IntSlider(min=0, max=0, description="step", continuous_update=True)
    image = w.Image(format="png")
    info = w.HTML()

    def refresh_demos(*_):
        options = [d for d in store.demos if store.task_label(d) == task.value]
        demo.options = options
        # ipywidgets keeps value None when options replace an empty list: pick the first
        # demo, or the browser opens on an empty dropdown, a 0-of-0 slider and no frame
        if options and demo.value not in options:
            demo.value = options[0]

    def refresh_step_range(*_):
        if demo.value:
            step.max = store.lengths[demo.value] - 1
            step.value = min(step.value, step.max)
        show()

    def show(*_):
        if not demo.value:
            return
        t = step.value
        image.value = _png(store.frames(demo.value, camera.value, t, t + 1)[0])
        act = ", ".join(f"{v:+.3f}" for v in store.actions[demo.value][t])
        pro = ", ".join(f"{v:+.3f}" for v in store.proprio[demo.value][t])
        info.value = f"<b>{store.instruction[demo.value]}</b><br>action [{act}]<br>proprio [{pro}]"

    task.observe(refresh_demos, "value")
    demo.observe(refresh_step_range, "value")
    camera.observe(show, "value")
    step.observe(show, "value")
    refresh_demos()
    refresh_step_range()
    return w.VBox([w.HBox([task, demo, camera]), step, w.HBox([image, info])])
