"""What a dataset check finds, whatever the format: counts, texts, cameras and action
statistics (:class:`DatasetSummary`), and the short report ``nblib data check`` prints."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nblib.data.mapping import KeyMapping

ACTION_STATS = ("mean", "std", "min", "max", "q01", "q99")


@dataclass
class DatasetSummary:
    """What :func:`~nblib.data.formats.check_dataset` found in a valid dataset.

    ``action_stats`` maps each of ``ACTION_STATS`` to a list of ``action_dim`` floats over
    all steps of all demos (std with ddof=0; q01/q99 are the 1st/99th percentiles).
    ``tasks`` and ``instructions`` count demos per text, in order of first appearance;
    ``success_rate`` is the mean demo ``success`` attribute over the demos that have one.
    """

    path: Path
    mapping: str
    demos: int
    steps: int
    episode_lengths: list[int]
    demo_names: list[str]
    tasks: dict[str, int]
    instructions: dict[str, int]
    cameras: dict[str, tuple[int, int, int]]
    action_dim: int
    proprio_dim: int
    action_stats: dict[str, list[float]] = field(default_factory=dict)
    success_rate: float | None = None
    success_demos: int = 0  # demos carrying a ``success`` attribute
    action_names: list[str] = field(default_factory=list)  # the mapping's, or a[0], a[1], ...


def summarize(
    path: Path,
    mapping: KeyMapping,
    names: list[str],
    lengths: list[int],
    actions_all: list[np.ndarray],
    tasks: dict[str, int],
    instructions: dict[str, int],
    cameras: dict[str, tuple[int, int, int]],
    successes: list[bool],
) -> DatasetSummary:
    """The summary of a checked dataset, whatever its format: counts and action statistics."""
    every = np.concatenate(actions_all).astype(np.float64)
    q01, q99 = np.quantile(every, [0.01, 0.99], axis=0)
    stats = {
        "mean": every.mean(axis=0),
        "std": every.std(axis=0),
        "min": every.min(axis=0),
        "max": every.max(axis=0),
        "q01": q01,
        "q99": q99,
    }
    return DatasetSummary(
        path=path,
        mapping=mapping.name,
        demos=len(names),
        steps=int(sum(lengths)),
        episode_lengths=lengths,
        demo_names=names,
        tasks=tasks,
        instructions=instructions,
        cameras=cameras,
        action_dim=mapping.action_dim,
        proprio_dim=mapping.proprio_dim,
        action_stats={k: [float(x) for x in v] for k, v in stats.items()},
        success_rate=float(np.mean(successes)) if successes else None,
        success_demos=len(successes),
        action_names=mapping.action_labels(),
    )


def _counts(counts: dict[str, int], limit: int = 6) -> str:
    if not counts:
        return "none"
    shown = [f"{text!r} {n}" for text, n in list(counts.items())[:limit]]
    more = f", ... ({len(counts) - limit} more)" if len(counts) > limit else ""
    return ", ".join(shown) + more


def format_summary(summary: DatasetSummary, path_label: str | None = None) -> str:
    """A short report: counts, lengths, cameras, success, then one row per action dim."""
    lengths = np.asarray(summary.episode_lengths)
    cams = ", ".join(f"{c} {h}x{w}x{ch}" for c, (h, w, ch) in summary.cameras.items()) or "none"
    if summary.success_rate is None:
        success = "no 'success' attribute"
    else:
        n = summary.success_demos
        success = f"{summary.success_rate:.1%} ({round(summary.success_rate * n)}/{n} demos)"
    lines = [
        # path_label lets notebooks print a machine-independent name (nbval compares it).
        f"{path_label or summary.path}  OK  (mapping '{summary.mapping}')",
        f"demos {summary.demos}, steps {summary.steps}; episode length "
        f"min {lengths.min()} / median {np.median(lengths):g} / max {lengths.max()}",
        f"tasks ({len(summary.tasks)}): {_counts(summary.tasks)}",
        f"instructions ({len(summary.instructions)}): {_counts(summary.instructions, 3)}",
        f"cameras: {cams}",
        f"proprio dim {summary.proprio_dim}, action dim {summary.action_dim}, success {success}",
        "  action " + "".join(f"{s:>9}" for s in ACTION_STATS),
    ]
    stats = summary.action_stats
    names = summary.action_names or [f"a[{d}]" for d in range(summary.action_dim)]
    for d, label in enumerate(names):
        lines.append(f"{label[:8]:>8} " + "".join(f"{stats[s][d]:>9.3f}" for s in ACTION_STATS))
    return "\n".join(lines)
