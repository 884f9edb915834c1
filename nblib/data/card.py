"""What is in a dataset: the tables and figures of ``00_dataset_card``.

Plot functions return ``(fig, axes)`` and never save (the notebook saves through
:func:`nblib.report.save`).
"""

from __future__ import annotations

import numpy as np

from nblib.data.dataset import DemoStore
from nblib.plots import colors_for, new_figure


def demos_table(store: DemoStore) -> list[dict]:
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
    return out


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


def plot_frame_grid(store: DemoStore, demos: list[str], camera: str, n_frames: int = 6):
    """One row per demo: ``n_frames`` evenly spaced frames of one camera, first to last."""
    fig, axes = new_figure(
        ncols=n_frames, nrows=len(demos), height=1.0 * len(demos) + 0.3, squeeze=False
    )
    for row, demo in zip(axes, demos, strict=True):
        ts = np.linspace(0, store.lengths[demo] - 1, n_frames).round().astype(int)
        for ax, t in zip(row, ts, strict=True):
            ax.imshow(store.frames(demo, camera, int(t), int(t) + 1)[0])
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"t={t}", fontsize=5, pad=1)
        row[0].set_ylabel(f"{store.task_label(demo)}\n{demo}", fontsize=5)
    fig.suptitle(f"camera: {camera}", fontsize=7)
    return fig, axes


def plot_leakage_examples(store: DemoStore, report, n: int = 4):
    """The closest val/train frame pairs of a leakage report, side by side."""
    pairs = report.examples[:n]
    fig, axes = new_figure(
        ncols=2, nrows=max(len(pairs), 1), height=1.3 * max(len(pairs), 1), squeeze=False
    )
    for row, ex in zip(axes, pairs, strict=False):
        val = store.frames(ex["val_demo"], report.camera, ex["val_t"], ex["val_t"] + 1)[0]
        train = store.frames(ex["train_demo"], report.camera, ex["train_t"], ex["train_t"] + 1)[0]
        row[0].imshow(val)
        row[0].set_title(f"val {ex['val_demo']} t={ex['val_t']}", fontsize=6)
        row[1].imshow(train)
        row[1].set_title(
            f"train {ex['train_demo']} t={ex['train_t']} (rms {ex['rms_diff']:.2f})", fontsize=6
        )
        for ax in row:
            ax.axis("off")
    return fig, axes


def random_demos_per_task(store: DemoStore, per_task: int, seed: int) -> dict[str, list[str]]:
    """``per_task`` random demos of each task, reproducible for a seed."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[str]] = {}
    for task in store.tasks():
        members = [d for d in store.demos if store.task_label(d) == task]
        picks = rng.choice(len(members), size=min(per_task, len(members)), replace=False)
        out[task] = [members[i] for i in sorted(picks)]
    return out


def card_verdict(
    summary, leakage, failed_demos: list[str], near_warn: float = 0.5
) -> tuple[str, list[str]]:
    """PASS / WARN for a dataset that passed :func:`nblib.data.checks.check_dataset`.

    WARN when a validation frame is byte-identical to a training frame, when more than
    ``near_warn`` of validation frames are near-identical to training ones, or when some
    demos are flagged as failed by their expert. (A file that fails the checks never gets
    here: the check raises, naming the file, key, demo and step.)
    """
    reasons = []
    if leakage.exact:
        reasons.append(f"{leakage.exact} validation frames are byte-identical to training frames")
    if leakage.near_fraction > near_warn:
        reasons.append(
            f"{leakage.near_fraction:.0%} of validation frames are near-identical to training frames "
            f"(RMS < {leakage.threshold} grey levels)"
        )
    if failed_demos:
        reasons.append(f"{len(failed_demos)} demos did not reach success: {failed_demos[:5]}")
    return ("WARN" if reasons else "PASS"), reasons


def failed_demos(path) -> list[str]:
    """Demos whose ``success`` attribute is False (layouts without it: none)."""
    from nblib.data.hdf5 import demo_names, open_h5

    with open_h5(path) as f:
        group = f["data"] if "data" in f else None
        if group is None:
            return []
        return [
            d
            for d in demo_names(f, "data", path)
            if "success" in group[d].attrs and not group[d].attrs["success"]
        ]
