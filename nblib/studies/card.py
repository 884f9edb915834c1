"""What is in this dataset, and is its validation split unseen? (notebook 00, seed 004)

The engine of ``00_dataset_card``: the file is validated against its key mapping first
(a bad file stops with an error naming the file, HDF5 key, demo and step), then described
(demos per task, episode lengths, action histograms, frame strips, instructions), split per
episode before any subsetting, and its validation frames compared with its training frames.

Verdict: **PASS** when the file is valid and no validation frame duplicates a training
frame; **WARN** when validation frames are byte-identical to training frames, most are
near-identical, or some demos did not reach success.

Blocked views (a camera covered, e.g. by the arm, or dark) and actions saturated at the
[-1, 1] limits are reported in the metrics and drawn on the figures, not in the verdict:
they describe the data, they do not make a split leak. Plot functions (and the captions
beside them) live in :mod:`nblib.studies.card_plots`; the steps here read the frames.
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
from nblib.studies import Evidence, Study, StudyConfig
from nblib.studies.card_plots import (
    caption_action_histograms,
    caption_episode_lengths,
    caption_frame_grid,
    caption_leakage,
    plot_action_histograms,
    plot_episode_lengths,
    plot_frame_grid,
    plot_leakage,
)
from nblib.verdict import Estimate, Verdict

__all__ = [
    "caption_action_histograms",
    "caption_episode_lengths",
    "caption_frame_grid",
    "caption_leakage",
    "plot_action_histograms",
    "plot_episode_lengths",
    "plot_frame_grid",
    "plot_leakage",
]

# Share of near-identical validation frames above which the split is flagged (WARN).
NEAR_WARN = 0.5
# |action| at or above this counts as saturated at the clip limit (actions live in [-1, 1];
# a scripted expert clipped there writes exactly +-1, float32 rounding aside).
SATURATION = 0.999
# A blocked view: the camera sees (almost) one colour that is far from what it usually sees
# (its per-pixel median view over the dataset), or nothing at all. Thresholds in 0..255
# colour levels, measured on area-averaged thumbnails so that texture does not count.
BLOCKED_FAR = 60.0  # RMS colour difference from the camera's median 16x16 view
BLOCKED_ONE_COLOUR = 0.85  # share of 8x8 cells within BLOCKED_COLOUR_TOL of the median cell
BLOCKED_COLOUR_TOL = 40.0
BLOCKED_DARK = 12.0  # mean grey level under which a frame is dark (lens capped, no light)
BLOCKED_FLAT = 2.0  # grey-level standard deviation under which a frame is featureless


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
class BlockedViews:
    """Frames whose camera sees no scene, per camera: ``(demo, step)`` pairs in file
    order, and how many frames each camera has."""

    frames: dict[str, list[tuple[str, int]]]
    totals: dict[str, int]

    def demos(self, camera: str) -> list[str]:
        return list(dict.fromkeys(d for d, _ in self.frames.get(camera, [])))

    def steps(self, camera: str, demo: str) -> list[int]:
        return [t for d, t in self.frames.get(camera, []) if d == demo]

    def metrics(self) -> dict:
        """Per camera: blocked frames, share of its frames, demos, and the first demo and
        step (what a reader looks up first)."""
        out = {}
        for camera, total in self.totals.items():
            hits = self.frames.get(camera, [])
            out[camera] = {
                "frames": len(hits),
                "share": len(hits) / total if total else 0.0,
                "demos": len(self.demos(camera)),
                "first": f"{hits[0][0]} t={hits[0][1]}" if hits else None,
            }
        return out


@dataclass(frozen=True)
class CardEvidence(Evidence):
    demos: int
    steps: int
    tasks: int
    failed_demos: tuple[str, ...]
    split: Split
    leakage: LeakageReport
    near_fraction: Estimate  # share of near-identical validation frames, bootstrap interval
    # what the figures describe (defaults keep hand-built evidence short in tests)
    lengths: dict[str, list[int]] | None = None  # task -> episode lengths
    saturation: dict[str, dict] | None = None  # action dim -> shares at -1 / +1
    blocked: BlockedViews | None = None


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


def episode_lengths(store: DemoStore) -> dict[str, list[int]]:
    """Task -> the lengths (steps) of its demos, tasks in the store's order."""
    return {
        t: [store.lengths[d] for d in store.demos if store.task_label(d) == t]
        for t in store.tasks()
    }


def length_stats(lengths: dict[str, list[int]]) -> dict[str, dict]:
    """Task -> demos and min / median / max episode length (what the figure marks)."""
    return {
        task: {
            "demos": len(v),
            "min": int(np.min(v)),
            "median": float(np.median(v)),
            "max": int(np.max(v)),
        }
        for task, v in lengths.items()
    }


def action_values(store: DemoStore) -> dict[str, np.ndarray]:
    """Task -> (steps, action_dim) actions of all its demos."""
    return {
        t: np.concatenate([store.actions[d] for d in store.demos if store.task_label(d) == t])
        for t in store.tasks()
    }


def saturated_actions(values: dict[str, np.ndarray], names: list[str]) -> dict[str, dict]:
    """Per action dimension over all steps of all tasks: the share of steps at the clip
    limits (``<= -SATURATION`` and ``>= SATURATION``) and the number of steps."""
    every = np.concatenate(list(values.values()))
    out = {}
    for i, name in enumerate(names):
        column = every[:, i]
        out[name] = {
            "share_at_minus_1": float(np.mean(column <= -SATURATION)),
            "share_at_plus_1": float(np.mean(column >= SATURATION)),
            "steps": int(column.size),
        }
    return out


def _thumb(frame: np.ndarray, size: int) -> np.ndarray:
    import cv2

    return cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)


def blocked_mask(
    frames: np.ndarray, reference: np.ndarray | None = None, thumbs: np.ndarray | None = None
) -> np.ndarray:
    """Which of ``frames`` (N, H, W, 3) uint8 show no scene: dark (mean grey under
    ``BLOCKED_DARK``), featureless (grey std under ``BLOCKED_FLAT``) or covered: one colour
    fills ``BLOCKED_ONE_COLOUR`` of the 8x8 cells and the frame is ``BLOCKED_FAR`` from
    ``reference`` (the camera's median 16x16 view, default the median of ``frames``), so a
    plain wall the camera always sees is not flagged but an arm link in front of it is."""
    frames = np.asarray(frames)
    if len(frames) == 0:
        return np.zeros(0, dtype=bool)
    grey = frames.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    dark = grey.mean(axis=(1, 2)) < BLOCKED_DARK
    flat = grey.std(axis=(1, 2)) < BLOCKED_FLAT
    if thumbs is None:  # the frames' 16x16 views, when the caller has not made them
        thumbs = np.stack([_thumb(f, 16) for f in frames])
    if reference is None:
        reference = np.median(thumbs, axis=0)
    far = np.sqrt(((thumbs - reference) ** 2).sum(-1).mean(axis=(1, 2))) > BLOCKED_FAR
    cells = np.stack([_thumb(f, 8).reshape(-1, 3) for f in frames])
    spread = np.linalg.norm(cells - np.median(cells, axis=1, keepdims=True), axis=-1)
    one_colour = (spread < BLOCKED_COLOUR_TOL).mean(axis=1) >= BLOCKED_ONE_COLOUR
    return dark | flat | (far & one_colour)


def blocked_views(study: CardStudy) -> BlockedViews:
    """Every frame of every camera checked with :func:`blocked_mask` against that
    camera's median view over the whole dataset."""
    store = study.store
    frames, totals = {}, {}
    for camera in store.cameras:
        # one read of each demo's frames: the camera's median view needs all of them, the
        # check then runs per demo on the same frames (kept, not read again)
        per_demo = {d: store.frames(d, camera, 0, store.lengths[d]) for d in store.demos}
        thumbs = np.concatenate([[_thumb(f, 16) for f in v] for v in per_demo.values()])
        reference = np.median(thumbs, axis=0)
        hits, start = [], 0
        for demo, demo_frames in per_demo.items():
            own = thumbs[start : start + len(demo_frames)]
            start += len(demo_frames)
            mask = blocked_mask(demo_frames, reference, own)
            hits += [(demo, int(t)) for t in np.flatnonzero(mask)]
        frames[camera], totals[camera] = hits, len(thumbs)
    return BlockedViews(frames, totals)


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


def evidence(
    study: CardStudy, leakage: Leakage, blocked: BlockedViews | None = None
) -> CardEvidence:
    """The counts, the failed demos and the leakage, with the share of near-identical
    validation frames bootstrapped over the validation demos (a demo's frames are alike),
    and what the figures describe: episode lengths, saturated actions, blocked views
    (checked here when ``blocked`` is None)."""
    report = leakage.report
    demos = [d for d in leakage.split.val if d in report.per_val_demo]
    if demos:
        frames = np.array([study.store.lengths[d] for d in demos], dtype=float)
        near = np.array([report.per_val_demo[d] for d in demos]) * frames
        near_fraction = bootstrap_ratio(near, frames, "validation demos", study.config.seed)
    else:
        near_fraction = Estimate(0.0, 0.0, 0.0, "no validation frames")
    s, store = study.summary, study.store
    return CardEvidence(
        s.demos,
        s.steps,
        len(s.tasks),
        study.failed_demos,
        leakage.split,
        report,
        near_fraction,
        lengths=episode_lengths(store),
        saturation=saturated_actions(action_values(store), store.mapping.action_labels()),
        blocked=blocked if blocked is not None else blocked_views(study),
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
    """What metrics.json records beside the verdict's numbers, including every number the
    figures show (episode lengths per task, saturated actions, blocked views, the leakage
    threshold)."""
    out = {
        "demos": evidence.demos,
        "steps": evidence.steps,
        "tasks": evidence.tasks,
        "train_demos": len(evidence.split.train),
        "val_demos": len(evidence.split.val),
        "leak_threshold": evidence.leakage.threshold,
    }
    if evidence.lengths is not None:
        out["episode_length"] = length_stats(evidence.lengths)
    if evidence.saturation is not None:
        out["saturated_actions"] = evidence.saturation
    if evidence.blocked is not None:
        out["blocked_frames"] = evidence.blocked.metrics()
    return out


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


def frame_strips(study: CardStudy, blocked: BlockedViews | None = None) -> dict[str, tuple]:
    """One figure per camera: evenly spaced frames of ``strip_demos_per_task`` random demos
    of each task, blocked views (``blocked``, see :func:`blocked_views`) outlined and each
    strip's first blocked step shown. Returns camera -> (fig, axes)."""
    cfg, store = study.config, study.store
    shown = [
        d
        for demos in random_demos_per_task(store, cfg.strip_demos_per_task, cfg.seed).values()
        for d in demos
    ]
    out = {}
    for camera in store.cameras:
        hit = blocked.frames.get(camera, []) if blocked else []
        rows = []
        for demo in shown:
            ts = np.linspace(0, store.lengths[demo] - 1, cfg.strip_frames).round().astype(int)
            bad = {t for d, t in hit if d == demo}
            if bad and not bad & set(ts.tolist()):  # show the first blocked step itself
                ts[0] = min(bad)
                ts = np.unique(ts)
            frames = [store.frames(demo, camera, int(t), int(t) + 1)[0] for t in ts]
            rows.append(
                (
                    f"{store.task_label(demo)}\n{demo}",
                    ts.tolist(),
                    frames,
                    sorted(bad & set(ts.tolist())),
                )
            )
        stats = blocked.metrics().get(camera) if blocked else None
        out[camera] = plot_frame_grid(rows, camera, stats)
    return out


def frames_caption(study: CardStudy, camera: str, blocked: BlockedViews | None) -> str:
    """The caption of :func:`frame_strips`' figure of ``camera``."""
    cfg, store = study.config, study.store
    picks = random_demos_per_task(store, cfg.strip_demos_per_task, cfg.seed)
    stats = blocked.metrics()[camera] if blocked is not None else None
    return caption_frame_grid(camera, sum(len(v) for v in picks.values()), cfg.strip_frames, stats)


def leakage_caption(leakage: Leakage, near: Estimate) -> str:
    """The caption of :func:`leakage_examples`' figure, with the verdict's numbers."""
    r = leakage.report
    return caption_leakage(near, r.threshold, NEAR_WARN, r.val_frames, r.camera, r.exact)


def leakage_examples(study: CardStudy, leakage: Leakage, near: Estimate | None = None, n: int = 3):
    """The leakage figure: nearest-train distance of every validation frame against the
    threshold, the near-duplicate share ``near`` (the verdict's bootstrap estimate; computed
    as in :func:`evidence` when None) and the ``n`` closest val/train pairs with their
    difference images."""
    leak, store = leakage.report, study.store
    if near is None:
        near = evidence(study, leakage, BlockedViews({}, {})).near_fraction
    pairs = []
    for ex in leak.examples[:n]:
        val = store.frames(ex["val_demo"], leak.camera, ex["val_t"], ex["val_t"] + 1)[0]
        train = store.frames(ex["train_demo"], leak.camera, ex["train_t"], ex["train_t"] + 1)[0]
        pairs.append(
            (
                val,
                f"val {ex['val_demo']} t={ex['val_t']}",
                train,
                f"train {ex['train_demo']} t={ex['train_t']}",
                ex["rms_diff"],
            )
        )
    return plot_leakage(
        leak.nn_rms, leak.threshold, near, NEAR_WARN, pairs, leak.camera, leak.exact
    )


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
