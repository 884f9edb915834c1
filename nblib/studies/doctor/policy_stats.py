"""The normalisation statistics a policy carries, and how far they are from the data's.

Where a policy keeps them: nblib's VLA saved by notebook 01 (``VLAClosedLoop.stats``: the
:class:`~nblib.data.normalization.NormStats` of its training demos, demos named), a
plug-in (``PluginClosedLoop``: the statistics in its info, i.e. of its training demos for a
run folder, of the manifest's data for a spec; the model's own normalisation buffers such
as ``action_mean`` / ``state_std`` when it has them, since those are what it actually
divides by; the demos from ``plugin.json``), and a served policy, whose statistics live on
the server: only when its HELLO / metadata names a run folder readable here (``nblib
serve`` sends its ``--policy``) can they be read.

The comparison is per dimension and per normalisation convention (``mean_std``,
``min_max``, ``q01_q99``: an offset and a scale each, as :class:`Stats` normalises): the
largest error, in the data's scales, that the policy's statistics make on data within the
convention's range (±2 standard deviations, or the bounds).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

KINDS = ("actions", "state")
STAT_NAMES = ("mean", "std", "min", "max", "q01", "q99")
#: convention -> (offset, scale) as functions of the statistics, and how many scales out
#: the data's normalised values reach (±2 std hold 95 % of it; bounds map it into ±1)
CONVENTIONS = {
    "mean_std": (lambda s: s["mean"], lambda s: s["std"], 2.0),
    "min_max": (lambda s: (s["max"] + s["min"]) / 2, lambda s: (s["max"] - s["min"]) / 2, 1.0),
    "q01_q99": (lambda s: (s["q99"] + s["q01"]) / 2, lambda s: (s["q99"] - s["q01"]) / 2, 1.0),
}
CONVENTION_STATS = {
    "mean_std": ("mean", "std"),
    "min_max": ("min", "max"),
    "q01_q99": ("q01", "q99"),
}
#: the floor nblib (and openpi, conv_mlp) puts under a scale before dividing by it
SCALE_FLOOR = 1e-6


@dataclass(frozen=True)
class Carried:
    """Statistics a policy normalises with: kind -> statistic name -> (D,) float64."""

    stats: dict[str, dict[str, np.ndarray]]
    demos: list[str] | None  # the demos they were computed over, when recorded
    source: str  # where they were read, for a reader


def _arrays(group: dict) -> dict[str, np.ndarray]:
    return {
        name: np.asarray(values, dtype=np.float64).reshape(-1)
        for name, values in group.items()
        if name in STAT_NAMES and values is not None
    }


def from_norm_stats(norm, demos=None) -> dict[str, dict[str, np.ndarray]]:
    """``{"actions": ..., "state": ...}`` of a NormStats (or its JSON dict)."""
    get = (lambda s, n: s[n]) if isinstance(norm, dict) else getattr
    out = {}
    for kind, key in (("actions", "actions"), ("state", "proprio")):
        part = get(norm, key)
        names = part.keys() if isinstance(part, dict) else STAT_NAMES
        out[kind] = _arrays({n: get(part, n) for n in names})
    return out


def from_info(stats: dict) -> dict[str, dict[str, np.ndarray]]:
    """The plug-in contract's ``{"action"|"state": {...}}`` as ``{"actions"|"state": ...}``."""
    return {"actions": _arrays(stats.get("action", {})), "state": _arrays(stats.get("state", {}))}


def model_buffers(model, action_dim: int, state_dim: int) -> dict[str, dict[str, np.ndarray]]:
    """Normalisation buffers of a torch model, by name: a buffer whose name mentions
    ``action`` or ``state`` and ends in a statistic's name (``action_mean``,
    ``normalize_inputs.buffer_observation_state.std``), of the matching width. A name
    found twice is ambiguous and left out."""
    found: dict[str, dict[str, np.ndarray]] = {}
    seen: set[tuple[str, str]] = set()
    for name, buffer in model.named_buffers():
        lower = name.lower()
        stat = lower.replace(".", "_").rsplit("_", 1)[-1]
        kind = "actions" if "action" in lower else "state" if "state" in lower else None
        width = action_dim if kind == "actions" else state_dim
        if kind is None or stat not in STAT_NAMES or buffer.numel() != width:
            continue
        if (kind, stat) in seen:
            found.get(kind, {}).pop(stat, None)
            continue
        seen.add((kind, stat))
        found.setdefault(kind, {})[stat] = buffer.detach().double().cpu().numpy().reshape(-1)
    return {k: v for k, v in found.items() if v}


def read_saved(path: str | Path) -> tuple[Carried, dict] | None:
    """The statistics and the metadata a run folder records (a plug-in's
    ``plugin.json``, nblib's ``policy.pt``), without building the policy; None when
    ``path`` holds neither."""
    from nblib.models.files import load_tagged, saved_file
    from nblib.models.vla import POLICY_FILE, POLICY_FORMAT
    from nblib.plugins.runtime import PLUGIN_FILE

    plugin = saved_file(path, PLUGIN_FILE)
    if plugin is not None:
        record = json.loads(plugin.read_text())
        norm = record.get("norm_stats") or {}
        stats = from_info(record["info"]["stats"])
        return Carried(stats, norm.get("demos"), f"{plugin}"), record.get("meta") or {}
    policy = saved_file(path, POLICY_FILE)
    if policy is not None:
        state = load_tagged(policy, POLICY_FORMAT, "saved policy")
        stats = state["stats"]
        carried = Carried(from_norm_stats(stats), stats.get("demos"), f"{policy}")
        return carried, state.get("meta") or {}
    return None


def served_spec(policy) -> str | None:
    """The policy a server says it serves: ``nblib serve``'s HELLO (vla-eval protocol)
    carries its ``--policy`` under ``observation_params.nblib.policy``, its openpi
    metadata under ``policy``; other servers say nothing."""
    metadata = getattr(policy, "metadata", None)  # openpi client
    if isinstance(metadata, dict) and metadata.get("policy"):
        return str(metadata["policy"])
    # the vla-eval client keeps the HELLO reply on its connection
    info = getattr(getattr(policy, "_connection", None), "server_info", None) or {}
    params = (info.get("observation_params") or {}).get("nblib") or {}
    return str(params["policy"]) if params.get("policy") else None


def carried(study) -> Carried | str:
    """The statistics ``study.policy`` normalises with, or why none can be read."""
    from nblib.serving import is_remote

    spec, policy = study.config.policy, study.policy
    if is_remote(spec):
        named = served_spec(policy)
        if named and Path(named).expanduser().exists():
            saved = read_saved(named)
            if saved is not None:
                stats, source = saved[0].stats, f"{saved[0].source}, named by the server"
                return Carried(stats, saved[0].demos, source)
        said = (
            f"its HELLO names {named!r}, not a run folder readable here"
            if named
            else ("its HELLO names no run folder")
        )
        return (
            f"{spec} normalises on the server, so its statistics are not visible to the "
            f"client ({said}); run the doctor with --policy set to the run folder or spec "
            "the server loads"
        )
    if spec in ("expert", "random", "zero"):
        return f"policy {spec!r} reads no normalised inputs and carries no statistics"
    if hasattr(policy, "stats") and hasattr(policy.stats, "actions"):  # nblib's VLA
        stats = from_norm_stats(policy.stats)
        return Carried(stats, list(policy.stats.demos), "the statistics saved with the policy")
    info = getattr(policy, "info", None)
    if info is not None and getattr(info, "stats", None):  # a plug-in
        saved = read_saved(spec) if Path(spec).expanduser().exists() else None
        demos = saved[0].demos if saved is not None else None
        buffers = model_buffers(policy.model, int(info.action_dim), int(info.state_dim))
        if buffers:
            names = ", ".join(f"{k}.{s}" for k in buffers for s in buffers[k])
            return Carried(buffers, demos, f"the plug-in's normalisation buffers {names}")
        where = "its run folder's info" if saved is not None else "the info it was built with"
        return Carried(from_info(info.stats), demos, f"the statistics in {where}")
    return (
        f"policy {spec!r} ({type(policy).__name__}) exposes no normalisation statistics "
        "(neither nblib's saved stats, a plug-in's info, nor normalisation buffers)"
    )


def data_statistics(store, demos: list[str] | None) -> tuple[dict, str]:
    """The data's statistics over ``demos`` when all are in ``store`` (the policy's own
    training demos), else over every demo; and which of the two it is."""
    if demos and set(demos) <= set(store.demos):
        return from_norm_stats(store.subset(list(demos)).norm_stats()), "its training demos"
    return from_norm_stats(store.norm_stats()), "all demos"


def compare(policy: dict, data: dict) -> dict[str, dict]:
    """Per kind and convention the per-dimension error (see the module docstring), the
    std ratio and mean shift (in data stds), NaN/Inf and width problems."""
    out: dict[str, dict] = {}
    for kind in KINDS:
        p, d = policy.get(kind, {}), data[kind]
        width = len(d["mean"])
        row: dict = {"width": width, "errors": {}, "nonfinite": [], "width_problem": None}
        for name, values in p.items():
            if values.shape != (width,):
                row["width_problem"] = f"{name} has {values.size} values, the data {width}"
            else:
                row["nonfinite"] += [(name, int(i)) for i in np.flatnonzero(~np.isfinite(values))]
        if row["width_problem"] is None:
            for mode, (offset, scale, reach) in CONVENTIONS.items():
                if not all(n in p and n in d for n in CONVENTION_STATS[mode]):
                    continue
                with np.errstate(invalid="ignore", over="ignore"):
                    sd = np.maximum(scale(d), SCALE_FLOOR)
                    sp = np.maximum(scale(p), SCALE_FLOOR)
                    err = np.abs(offset(p) - offset(d)) / sd + reach * np.abs(sp / sd - 1.0)
                row["errors"][mode] = np.where(np.isfinite(err), err, np.inf)
            if "mean" in p and "std" in p:
                sd = np.maximum(d["std"], SCALE_FLOOR)
                row["std_ratio"] = np.maximum(p["std"], SCALE_FLOOR) / sd
                row["mean_shift"] = (p["mean"] - d["mean"]) / sd
        out[kind] = row
    return out


def near_constant(stats: dict, fraction: float) -> list[int]:
    """Dimensions whose std is at most ``fraction`` of their magnitude (the largest of
    |min|, |max|, |mean|), or zero: normalising divides by almost nothing there."""
    std, mean = stats["std"], stats["mean"]
    magnitude = np.max(np.abs([stats.get("min", mean), stats.get("max", mean), mean]), axis=0)
    return [int(i) for i in np.flatnonzero((std <= fraction * magnitude) | (std <= SCALE_FLOOR))]


def dimension_names(store, kind: str) -> list[str]:
    """Readable names of the data's action or state dimensions (the mapping's action
    names; the proprio keys, indexed when wider than one)."""
    mapping = store.mapping
    if kind == "actions":
        return mapping.action_labels()
    names = []
    for key, width in mapping.proprio.items():
        base = str(key).rsplit("/", 1)[-1]
        names += [base] if width == 1 else [f"{base}[{i}]" for i in range(width)]
    return names
