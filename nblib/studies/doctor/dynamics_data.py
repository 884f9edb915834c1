"""The dataset's side of the doctor's dynamics checks (:mod:`nblib.studies.doctor.dynamics`):
where the proprio's end-effector, gripper and other state columns are, which gripper
commands close the gripper in the data, and the robust per-dimension scale fit."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

AXES = ("x", "y", "z")
EEF_SUFFIXES = ("eef_pos", "ee_pos")
FINGER_KEYS = ("gripper_states", "gripper_qpos")  # LIBERO's two finger joints
# Delta vs absolute: the winning relation explains >= 2x the variance (R^2) of the other,
# with mean |r| >= 0.5 (clean data: R^2 0.73 vs 0.004).
KIND_RATIO, KIND_MIN_R = 2.0, 0.5
MAX_LEVELS = 12  # more distinct gripper commands than this are binned
LEVEL_BINS = 9
# Units a scale factor names (within 2 %), for position-like and angle-like dimensions.
POSITION_FACTORS = {
    1000.0: "millimetres vs metres",
    100.0: "centimetres vs metres",
    0.001: "metres vs millimetres",
    0.01: "metres vs centimetres",
}
ANGLE_FACTORS = {180 / math.pi: "degrees vs radians", math.pi / 180: "radians vs degrees"}


def rounded(value, digits: int = 4) -> float:
    """``value`` to ``digits`` significant digits: what evidence stores and figures show."""
    value = float(value)
    return float(f"{value:.{digits}g}") if math.isfinite(value) else value


def sample_rows(n: int, k: int, seed: int) -> np.ndarray:
    """At most ``k`` of ``n`` row indices, sorted, the same for the same seed."""
    if n <= k:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, k, replace=False))


def hand_relation(store) -> dict | None:
    """How the dataset's hand commands (the first three action dimensions) relate to its
    end-effector, over every step t of every demo: ``action`` (n, 3), ``delta`` p[t+1] −
    p[t] and ``next`` p[t+1] (n, 3); per axis ``corr_delta``, ``corr_next`` and ``gain``
    (the least-squares slope of the motion on the command, the data's units per unit
    action); ``r2_delta`` / ``r2_next`` (mean R² over the axes) and the ``kind`` they
    decide: delta, absolute or unclear. None without a demo of 2+ steps and 3+ action
    dimensions."""
    eef = store.eef_positions()
    pairs = [(store.actions[d], eef[d]) for d in store.demos if len(eef[d]) > 1]
    if not pairs or pairs[0][0].shape[1] < 3:
        return None
    act = np.concatenate([a[:-1, :3] for a, _ in pairs]).astype(np.float64)
    pos = np.concatenate([p[:-1] for _, p in pairs]).astype(np.float64)
    nxt = np.concatenate([p[1:] for _, p in pairs]).astype(np.float64)
    delta = nxt - pos
    r_delta = [_corr(act[:, i], delta[:, i]) for i in range(3)]
    r_next = [_corr(act[:, i], nxt[:, i]) for i in range(3)]
    r2_delta, r2_next = float(np.mean(np.square(r_delta))), float(np.mean(np.square(r_next)))
    if r2_delta >= KIND_RATIO * r2_next and np.mean(np.abs(r_delta)) >= KIND_MIN_R:
        kind = "delta"
    elif r2_next >= KIND_RATIO * r2_delta and np.mean(np.abs(r_next)) >= KIND_MIN_R:
        kind = "absolute"
    else:
        kind = "unclear"
    return dict(
        action=act,
        delta=delta,
        next=nxt,
        corr_delta=r_delta,
        corr_next=r_next,
        gain=[_slope(act[:, i], delta[:, i]) for i in range(3)],
        r2_delta=r2_delta,
        r2_next=r2_next,
        kind=kind,
    )


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    if a.std() < 1e-12 or b.std() < 1e-12:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of y on x (0 when x does not vary)."""
    var = x.var()
    return float(((x - x.mean()) * (y - y.mean())).mean() / var) if var > 1e-12 else 0.0


@dataclass(frozen=True)
class Column:
    """One proprio key: its dimension ``names``, where it sits in the store's proprio
    (``data_slice``) and in the simulator's observation (``sim_key``, ``sim_slice``; None
    when the simulator has no counterpart)."""

    key: str
    names: tuple[str, ...]
    data_slice: slice
    sim_key: str | None
    sim_slice: slice | None


def proprio_columns(store) -> list[Column]:
    """The store's proprio keys in order, each with its Meta-World observation field."""
    columns, start = [], 0
    for key, width in store.mapping.proprio.items():
        if not isinstance(width, int):  # LeRobot's "auto": unnamed state, no counterpart
            break
        tail = key.rsplit("/", 1)[-1].rsplit(".", 1)[-1]
        where = slice(start, start + width)
        start += width
        if width == 3 and tail.endswith(EEF_SUFFIXES):
            names, sim_key = tuple(f"{tail}.{a}" for a in AXES), "eef_pos"
        elif width == 1 and tail == "gripper_opening":
            names, sim_key = (tail,), "gripper_opening"
        elif tail == "state" and width == 39:  # Meta-World's full observation
            names, sim_key = tuple(f"state[{i}]" for i in range(width)), "state"
        else:
            names, sim_key = tuple(f"{tail}[{i}]" for i in range(width)), None
        columns.append(Column(key, names, where, sim_key, slice(0, width) if sim_key else None))
    return columns


def gripper_column(store) -> tuple[int | None, str | None]:
    """The action dimension holding the gripper command (named ``gripper`` by the key
    mapping), or None and why."""
    names = store.mapping.action_names or []
    if "gripper" in names:
        return names.index("gripper"), None
    return None, (
        f"key mapping '{store.mapping.name}' names no action dimension 'gripper' "
        f"(action_names {names or 'unset'}): give the mapping action_names"
    )


def gripper_openings(store) -> tuple[dict | None, str | None]:
    """demo -> (T,) gripper opening (larger = more open): the proprio's
    ``gripper_opening``, or the separation of LIBERO's two finger joints; or None and why."""
    columns, start = {}, 0
    for key, width in store.mapping.proprio.items():
        if not isinstance(width, int):
            break
        columns[key.rsplit("/", 1)[-1]] = (start, width)
        start += width
    if "gripper_opening" in columns and columns["gripper_opening"][1] == 1:
        i = columns["gripper_opening"][0]
        return {d: store.proprio[d][:, i].astype(np.float64) for d in store.demos}, None
    for key in FINGER_KEYS:
        if key in columns and columns[key][1] == 2:
            i = columns[key][0]
            return {
                d: (store.proprio[d][:, i] - store.proprio[d][:, i + 1]).astype(np.float64)
                for d in store.demos
            }, None
    return None, (
        f"the proprio of mapping '{store.mapping.name}' has no gripper opening "
        f"(gripper_opening, or the finger joints {' / '.join(FINGER_KEYS)})"
    )


def command_levels(store, column: int, openings: dict, seed: int = 0) -> dict | None:
    """The gripper commands the dataset uses (its distinct values, or bins when there
    are many) and for each the fraction of its steps after which the gripper closes or
    stays closed; None when the gripper never closes.

    A step t "closes" when the opening drops by > 2 % of the dataset's swing from t to
    t+1, or is below the middle of the swing at t+1 without rising (held closed on an
    object). Also ``close_command`` (the mean command of the steps before a drop: what the
    dataset closes with), ``open_command`` (the mean over the other steps), ``range``,
    and per level ``drops`` / ``rises``: its steps after which the opening drops / rises."""
    cmds, before, after = [], [], []
    for demo in store.demos:
        opening, action = openings[demo], store.actions[demo]
        if len(opening) > 1:
            cmds.append(action[:-1, column])
            before.append(opening[:-1])
            after.append(opening[1:])
    if not cmds:
        return None
    cmd = np.concatenate(cmds).astype(np.float64)
    o0, o1 = np.concatenate(before), np.concatenate(after)
    everything = np.concatenate([o0, o1])
    hi, lo = np.percentile(everything, 99), np.percentile(everything, 1)
    swing = hi - lo
    if swing <= 0.2 * abs(hi):
        return None
    step = 0.02 * swing
    dropping, rising = o1 < o0 - step, o1 > o0 + step
    closes = dropping | ((o1 < (hi + lo) / 2) & ~rising)
    distinct = np.unique(np.round(cmd, 2))
    if len(distinct) <= MAX_LEVELS:
        group = np.searchsorted(distinct, np.round(cmd, 2))
    else:
        edges = np.linspace(cmd.min(), cmd.max(), LEVEL_BINS + 1)[1:-1]
        group = np.digitize(cmd, edges)
    least = max(5, int(0.01 * len(cmd)))
    kept = [g for g in np.unique(group) if (group == g).sum() >= least]
    rows = sample_rows(len(cmd), 800, seed)
    return dict(
        command=np.array([cmd[group == g].mean() for g in kept]),
        steps=np.array([(group == g).sum() for g in kept]),
        closes=np.array([closes[group == g].mean() for g in kept]),
        drops=np.array([dropping[group == g].sum() for g in kept]),
        rises=np.array([rising[group == g].sum() for g in kept]),
        close_command=float(cmd[dropping].mean() if dropping.any() else cmd[closes].mean()),
        open_command=float(cmd[~closes].mean()) if (~closes).any() else float("nan"),
        range=(float(cmd.min()), float(cmd.max())),
        sample_command=cmd[rows],
        sample_opening=(o1[rows] - lo) / swing,  # 0 closed .. 1 open, the dataset's swing
    )


def compare_levels(levels: dict, effects: list[str]) -> dict:
    """Where the simulator's ``effects`` of the dataset's command levels (close, open or
    hold) contradict what the dataset does with them. Per level ``wrong``: its steps read
    oppositely (all of them when the simulator closes on a level the dataset keeps open,
    or the reverse; only the dataset's opening (closing) steps when the simulator merely
    holds there); ``disagreement``: their share of all steps; and the dataset's opening
    events (rises at levels it keeps open) and closing events (drops at levels it closes
    with), with how many the simulator would miss."""
    effects = np.asarray(effects)
    closing = levels["closes"] >= 0.5
    drops, rises, steps = levels["drops"], levels["rises"], levels["steps"]
    opposite = (effects == "close") != closing
    wrong = np.where(
        effects == "hold", np.where(closing, drops, rises), np.where(opposite, steps, 0)
    )
    return dict(
        wrong=wrong,
        disagreement=float(wrong.sum() / steps.sum()),
        open_events=int(rises[~closing].sum()),
        open_missed=int(rises[~closing & (effects != "open")].sum()),
        close_events=int(drops[closing].sum()),
        close_missed=int(drops[closing & (effects != "close")].sum()),
    )


def fit_scale(sim: np.ndarray, data: np.ndarray) -> dict:
    """data ≈ scale · sim + offset for one dimension, fitted robustly (least squares,
    then again without points > 5 median absolute residuals off), or as a ratio of
    medians when the simulator's values barely vary. ``mismatch`` when the data is
    off the simulator's values by more than 1 % of the dimension's size and the fit
    brings it at least 2x closer (identity error vs fit error, medians of |residual|)."""
    sim, data = np.asarray(sim, np.float64), np.asarray(data, np.float64)
    spread, level = float(sim.std()), float(np.median(np.abs(sim)))
    size = max(spread, level, 1e-9)
    # a line needs the simulator's values to vary by more than a twentieth of their
    # size (an x that stays near 0 would give any slope); else the ratio of medians
    if spread > 0.05 * (level + spread) and len(np.unique(sim)) > 2:
        design = np.stack([sim, np.ones_like(sim)], axis=1)
        coef = np.linalg.lstsq(design, data, rcond=None)[0]
        residual = np.abs(data - design @ coef)
        keep = residual <= 5 * max(float(np.median(residual)), 1e-12)
        if keep.sum() >= 3:
            coef = np.linalg.lstsq(design[keep], data[keep], rcond=None)[0]
        scale, offset, how = float(coef[0]), float(coef[1]), "line"
    elif abs(np.median(sim)) > 1e-9:
        scale, offset, how = float(np.median(data) / np.median(sim)), 0.0, "ratio"
    else:
        scale, offset, how = 1.0, float(np.median(data - sim)), "offset"
    error_identity = float(np.median(np.abs(data - sim)))
    error_fit = float(np.median(np.abs(data - (scale * sim + offset))))
    bad = error_identity > 0.01 * size and error_identity > 2 * error_fit
    return dict(
        scale=rounded(scale),
        offset=rounded(offset),
        error_identity=rounded(error_identity),
        error_fit=rounded(error_fit),
        fit=how,
        mismatch=bool(bad),
    )


def named_factor(fit: dict, name: str) -> str:
    """``×1000 (millimetres vs metres)``, ``offset +0.05`` or both, for a fitted dimension."""
    scale, offset = fit["scale"], fit["offset"]
    parts = []
    if _scaled(fit):
        table = POSITION_FACTORS if "pos" in name else ANGLE_FACTORS if "ori" in name else {}
        unit = next((u for f, u in table.items() if abs(scale / f - 1) < 0.02), None)
        parts.append(f"×{scale:.4g}" + (f" ({unit})" if unit else ""))
    if _offset(fit):
        parts.append(f"offset {offset:+.3g}")
    return ", ".join(parts) or f"×{scale:.4g}"


def conversion(fit: dict) -> str:
    """What takes the dataset's values of a fitted dimension to the simulator's."""
    scale, offset = fit["scale"], fit["offset"]
    if _scaled(fit) and _offset(fit):
        return f"(value {-offset:+.3g}) / {scale:.4g}"
    if _offset(fit):
        return f"subtract {offset:.3g}"
    return f"divide by {scale:.4g}"


def _scaled(fit: dict) -> bool:
    return abs(fit["scale"] - 1) > 0.02


def _offset(fit: dict) -> bool:
    # an offset that matters next to how far the data is off (a x1000 fit leaves ~1e-5)
    offset = abs(fit["offset"])
    return offset > 1e-6 and offset > 0.01 * max(fit["error_identity"], 1e-9)


def join_dims(names: list[str]) -> str:
    """``eef_pos x, y, z`` for eef_pos.x, eef_pos.y, eef_pos.z."""
    heads: dict[str, list[str]] = {}
    for n in names:
        head, _, tail = n.partition(".")
        heads.setdefault(head, []).append(tail)
    return "; ".join(f"{h} {', '.join(t for t in ts if t)}".strip() for h, ts in heads.items())
