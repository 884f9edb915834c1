"""The doctor's dynamics checks: the dataset's actions, gripper commands and state held
against what the evaluation simulator does with them, measured by stepping it
(:mod:`nblib.studies.doctor.sim_response`; the three checks share its measurements).

- :func:`action_representation`: delta or absolute actions. In the data, the hand command
  of step t is correlated with the end-effector's motion p[t+1] − p[t] (a delta) and with
  its next position p[t+1] (an absolute target); the simulator's action space is measured
  by held pushes (a delta when the hand keeps moving under a held command).
- :func:`gripper_polarity`: which gripper commands close the gripper in the data (the
  command of the steps before the opening drops, or while it stays closed) and in the
  simulator (each command held from open): the sign and the range.
- :func:`state_units`: the dataset's proprio against the simulator's state at the same
  moments (each demo reset with its recorded seed, its actions replayed while the
  simulator's full state still matches the recorded one): a scale and offset per
  dimension, fitted robustly.
"""

from __future__ import annotations

import numpy as np

from nblib.studies.doctor import sim_response as sr
from nblib.studies.doctor.checks import mismatch, ok, skipped
from nblib.studies.doctor.dynamics_data import (
    AXES,
    command_levels,
    conversion,
    fit_scale,
    gripper_column,
    gripper_openings,
    hand_relation,
    join_dims,
    named_factor,
    proprio_columns,
    rounded,
    sample_rows,
)

# Delta actions whose metres-per-unit differ from the simulator's by more than 3x (either
# way) are scaled differently (clean data: 0.97x).
GAIN_RATIO = 3.0
# Gripper: a mismatch when the levels the two sides read oppositely hold >= 10 % of the
# dataset's steps (clean data: 0 %).
GRIPPER_DISAGREEMENT = 0.10
DEMOS_PER_TASK = 3  # state_units: demos replayed per task
REPLAY_STEPS = 40  # state_units: steps replayed per demo
SAMPLES = 600  # points per scatter kept for the figures


# ---------------------------------------------------------------- action_representation


def action_representation(study):
    """Delta or absolute hand actions in the data, against the simulator's action space."""
    name, store = "action_representation", study.store
    if not store.has("eef_positions"):
        return skipped(
            name,
            "the data has no end-effector position in its proprio "
            "(a key named *eef_pos / *ee_pos of width 3) to relate actions to",
        )
    rel = hand_relation(store)
    if rel is None:
        return skipped(name, "the data has no demo of 2+ steps with 3+ action dimensions")
    act, delta, nxt, data_kind = rel["action"], rel["delta"], rel["next"], rel["kind"]
    r_delta, r_next, gain = rel["corr_delta"], rel["corr_next"], rel["gain"]
    sim, why = sr.eval_sim(study.config, study.store)
    if sim is None:
        return skipped(name, why)
    response = sr.action_response(sim, study.config.seed)
    # the data's motion in the simulator's units (metres) when state_units measured the
    # dataset's end-effector units: eef in millimetres is a state fault, not an action one
    units = state_comparison(study)
    eef_scale = [1.0] * 3
    if isinstance(units, dict) and units["eef"]:
        eef_scale = [units["fits"][n]["scale"] or 1.0 for n in units["eef"]]
    gain = [g / s for g, s in zip(gain, eef_scale, strict=True)]
    ratio = [g / s if s else float("nan") for g, s in zip(gain, response.gain, strict=True)]
    evidence = dict(
        data_kind=data_kind,
        sim_kind=response.kind,
        sim_task=sim.task,
        steps=len(act),
        corr_delta=_per_axis(r_delta),
        corr_next=_per_axis(r_next),
        r2_delta=rounded(rel["r2_delta"]),
        r2_next=rounded(rel["r2_next"]),
        data_gain=_per_axis(gain),
        eef_scale=_per_axis(eef_scale),
        sim_gain=_per_axis(response.gain),
        gain_ratio=_per_axis(ratio),
        sim_drift=_per_axis(response.drift),
        sim_convergence=_per_axis(response.convergence),
    )
    rows = sample_rows(len(act), SAMPLES, study.config.seed)
    artifacts = dict(
        action=act[rows], delta=delta[rows], next=nxt[rows], sim_samples=response.samples
    )
    r_text = ", ".join(
        f"{a} {d:.2f}/{n:.2f}" for a, d, n in zip(AXES, r_delta, r_next, strict=True)
    )
    seen = f"corr(action, Δeef) / corr(action, next eef) per axis: {r_text} over {len(act)} steps"
    k_text = f"{np.mean(response.gain) * 1000:.2f} mm per step per unit action"
    if any(abs(s - 1) > 0.02 for s in eef_scale):
        seen += (
            f" (its end-effector positions are ×{np.mean(eef_scale):.4g} the "
            "simulator's, see state_units: its motion is compared in the simulator's units)"
        )
    if data_kind == "unclear" or response.kind == "unclear":
        side = "dataset's actions" if data_kind == "unclear" else f"simulator ({sim.task})"
        return skipped(
            name,
            f"cannot tell what the {side} represent: {seen}; simulator "
            f"drift {_per_axis(response.drift)}, convergence {_per_axis(response.convergence)}",
            **evidence,
        )
    if data_kind != response.kind:
        if data_kind == "absolute":
            fix = (
                f"convert the targets to deltas, action = clip((target − eef_pos) / k, −1, 1) "
                f"with k = {k_text} (undo any [−1, 1] scaling of the targets first), or "
                "evaluate with a position controller"
            )
        else:
            fix = "integrate the deltas into targets (target = eef_pos + k·action) or evaluate "
            fix += "with a delta controller"
        return mismatch(
            name,
            f"The dataset's hand actions are {data_kind} ({seen}), the "
            f"simulator's ({sim.task}) are {response.kind} ({_sim_text(response)}); "
            f"fix: {fix}.",
            artifacts,
            **evidence,
        )
    off = [
        f"{a} ×{r:.3g}"
        for a, r in zip(AXES, ratio, strict=True)
        if data_kind == "delta" and not 1 / GAIN_RATIO <= r <= GAIN_RATIO
    ]
    if off:
        return mismatch(
            name,
            f"Both sides take {data_kind} actions ({seen}), but a unit of "
            f"the dataset's action moves its hand {_mm(gain)} per step and the "
            f"simulator's {_mm(response.gain)} ({', '.join(off)}); fix: rescale "
            "the hand actions by the ratio before evaluating.",
            artifacts,
            **evidence,
        )
    return ok(
        name,
        f"The dataset's hand actions are {data_kind} ({seen}) and so is the "
        f"simulator's action space ({sim.task}: {k_text}; the data's "
        f"{_mm(gain)}).",
        artifacts,
        **evidence,
    )


def _sim_text(response) -> str:
    """What the simulator's held pushes showed, in words."""
    if response.kind == "delta":
        return (
            f"a held unit command moves the hand {np.mean(response.gain) * 1000:.2f} mm per "
            f"step and a held zero keeps it still: speed under zero ≤ "
            f"{max(response.drift):.0%} of that"
        )
    closed = 1 - min(response.convergence)
    return (
        f"a held zero sends the hand to one place from anywhere: {closed:.0%} of the "
        "distance between two start positions closed"
    )


def _per_axis(values) -> dict[str, float]:
    return {a: rounded(v) for a, v in zip(AXES, values, strict=True)}


def _mm(gains) -> str:
    return "/".join(f"{g * 1000:.2f}" for g in gains) + " mm (x/y/z)"


# ---------------------------------------------------------------- gripper_polarity


def gripper_polarity(study):
    """Which gripper commands close the gripper in the data and in the simulator."""
    name, store = "gripper_polarity", study.store
    column, why = gripper_column(store)
    openings, why_open = gripper_openings(store)
    if column is None or openings is None:
        return skipped(name, why or why_open)
    levels = command_levels(store, column, openings)
    if levels is None:
        return skipped(
            name,
            "the dataset's gripper never closes (its opening never drops "
            "by a fifth of its largest value): there is no closing command to read",
        )
    sim, why = sr.eval_sim(study.config, study.store)
    if sim is None:
        return skipped(name, why)
    grid = (-1.0, 0.0, 1.0) if sim.name == "libero" else (-1.0, -0.5, 0.0, 0.25, 0.5, 1.0)
    probe = tuple(sorted({*grid, *(round(x, 2) for x in levels["command"])}))
    response = sr.gripper_response(sim, probe, study.config.seed)
    if response.swing < 0.2 * abs(response.open_level):
        return skipped(
            name,
            f"the simulator's gripper ({sim.task}) did not close under any "
            f"of the commands {list(probe)}: opening {response.openings}",
        )
    data_closes = levels["closes"] >= 0.5
    sim_closes = np.array([response.closes_at(c) for c in levels["command"]])
    weights = levels["steps"] / levels["steps"].sum()
    disagreement = float(weights[data_closes != sim_closes].sum())
    close_cmd, open_cmd = levels["close_command"], levels["open_command"]
    lo, hi = levels["range"]
    sim_up = response.closes_at(sim.high) and not response.closes_at(sim.low)
    data_up = close_cmd > open_cmd
    norm = np.asarray(response.openings)
    evidence = dict(
        sim_task=sim.task,
        data_close_command=rounded(close_cmd),
        data_open_command=rounded(open_cmd),
        data_range=[rounded(lo), rounded(hi)],
        sim_range=[sim.low, sim.high],
        sim_closes_with="+" if sim_up else "-",
        data_closes_with="+" if data_up else "-",
        disagreement=rounded(disagreement),
        levels={
            f"{c:+.2f}": dict(steps=int(n), data_closes=rounded(p), sim_closes=bool(s))
            for c, n, p, s in zip(
                levels["command"], levels["steps"], levels["closes"], sim_closes, strict=True
            )
        },
        sim_open_level=rounded(response.open_level),
        sim_closed_level=rounded(response.closed_level),
    )
    artifacts = dict(
        data_command=levels["sample_command"],
        data_opening=levels["sample_opening"],
        data_levels=levels["command"],
        data_level_closes=levels["closes"],
        data_level_steps=levels["steps"],
        data_level_sim_closes=sim_closes,
        sim_levels=np.asarray(response.levels),
        sim_openings=norm,
        sim_trace_plus=response.trace_plus,
        sim_trace_minus=response.trace_minus,
    )
    sim_sign = "+1" if sim_up else "−1"
    data_text = (
        f"the dataset closes with {close_cmd:+.2f} and keeps open with "
        f"{open_cmd:+.2f} (mean commands before its opening drops / while open; "
        f"range [{lo:.2f}, {hi:.2f}])"
    )
    sim_text = (
        f"the simulator ({sim.task}) closes with {sim_sign} (opening "
        f"{response.open_level:.2f} → {response.closed_level:.2f}) and settles open at "
        + ", ".join(
            f"{c:+.2f}" for c, s in zip(response.levels, response.closes, strict=True) if not s
        )
    )
    if disagreement < GRIPPER_DISAGREEMENT:
        note = ""
        if (lo, hi) != (sim.low, sim.high) and (lo >= -0.05) != (sim.low >= -0.05):
            note = (
                f"; its range differs from the simulator's [{sim.low:g}, {sim.high:g}] "
                "but every command it uses means the same there"
            )
        return ok(
            name, f"Gripper commands agree: {data_text}; {sim_text}{note}.", artifacts, **evidence
        )
    if data_up != sim_up:
        return mismatch(
            name,
            f"Gripper sign flipped: {data_text}; {sim_text}. Fix: negate "
            "the gripper dimension (g → −g) in the data or at evaluation.",
            artifacts,
            **evidence,
        )
    wrong = [
        f"{c:+.2f}"
        for c, d, s in zip(levels["command"], data_closes, sim_closes, strict=True)
        if d != s
    ]
    what = (
        "keep the dataset's gripper open but close the simulator's"
        if not data_closes[data_closes != sim_closes][0]
        else "close the dataset's gripper but not the simulator's"
    )
    if lo >= -0.05 and sim.low < -0.05:
        fix = (
            f"the dataset's range is [0, 1], the simulator's [{sim.low:g}, {sim.high:g}]: "
            "rescale g → 2g − 1"
        )
    elif lo < -0.05 and sim.low >= -0.05:
        fix = "the dataset's range is [−1, 1], the simulator's [0, 1]: rescale g → (g + 1) / 2"
    else:
        fix = "map the dataset's gripper commands onto the simulator's levels"
    return mismatch(
        name,
        f"Gripper range differs: commands {', '.join(wrong)} "
        f"({disagreement:.0%} of the dataset's steps) {what}; {data_text}; "
        f"{sim_text}. Fix: {fix}.",
        artifacts,
        **evidence,
    )


# ---------------------------------------------------------------- state_units


def state_comparison(study) -> dict | str:
    """The dataset's proprio and the simulator's state at the same moments, with a fit per
    dimension (:func:`fit_scale`), or why there is none. Cached per data and tasks:
    action_representation reads the end-effector's units from it."""
    store, config = study.store, study.config
    if config.sim != "metaworld":
        return (
            "states are compared at moments replayed from each demo's seed, which only "
            "Meta-World demos record (LIBERO's own files start from states no eval reset gives)"
        )
    if not store.has("replay_records"):
        return (
            "the data records no seeds and states to reset the simulator to the demos' "
            f"moments ({store.lacking.get('replay_records', '')})"
        )
    columns = [c for c in proprio_columns(store) if c.sim_key is not None]
    if not columns:
        return (
            f"no proprio key of mapping '{store.mapping.name}' has a simulator "
            "counterpart (eef_pos, gripper_opening, state)"
        )
    from nblib.data.metaworld_gen import INSTRUCTIONS

    tasks = set(config.tasks or store.tasks()) & set(INSTRUCTIONS)
    key = (str(store.path), store.stamp(), tuple(store.demos), tuple(sorted(tasks)))
    if key not in _COMPARISONS:
        _COMPARISONS[key] = _compare_states(store, columns, tasks)
    return _COMPARISONS[key]


_COMPARISONS: dict[tuple, dict | str] = {}


def _compare_states(store, columns, tasks) -> dict | str:
    picked: dict[str, list[str]] = {}
    for demo in store.demos:
        task = store.task_label(demo)
        if task in tasks and len(picked.setdefault(task, [])) < DEMOS_PER_TASK:
            picked[task].append(demo)
    demos = [d for ds in picked.values() for d in ds]
    if not demos:
        return f"no demo of a Meta-World task among {sorted(tasks)}"
    data, sim, matched = sr.paired_states(store, demos, columns, REPLAY_STEPS)
    if not matched:
        return (
            f"no demo's frame 0 matched the simulator reset with its seed ({len(demos)} "
            "demos): the recorded states are not this simulator's"
        )
    names = [n for c in columns for n in c.names]
    fits = {n: fit_scale(sim[:, i], data[:, i]) for i, n in enumerate(names)}
    eef = next((c.names for c in columns if c.sim_key == "eef_pos"), None)
    return dict(names=names, data=data, sim=sim, fits=fits, demos=matched, eef=eef)


def state_units(study):
    """The dataset's proprio against the simulator's state at the demos' own moments."""
    name = "state_units"
    found = state_comparison(study)
    if isinstance(found, str):
        return skipped(name, found)
    fits, data = found["fits"], found["data"]
    bad = {n: f for n, f in fits.items() if f["mismatch"]}
    evidence = dict(moments=len(data), demos=found["demos"], dims=fits, mismatched=sorted(bad))
    artifacts = dict(names=found["names"], data=data[:SAMPLES], sim=found["sim"][:SAMPLES])
    seen = (
        f"the dataset's proprio against the simulator's state at {len(data)} matching "
        f"moments ({found['demos']} demos reset with their seeds and replayed)"
    )
    if not bad:
        scales = ", ".join(f"{n} ×{f['scale']:.3g}" for n, f in fits.items())
        return ok(
            name,
            f"State units agree: {seen}; scales {scales}, every dimension equal "
            "to the simulator's within its noise.",
            artifacts,
            **evidence,
        )
    groups: dict[tuple[str, str], list[str]] = {}
    for n, f in bad.items():
        groups.setdefault((named_factor(f, n), conversion(f)), []).append(n)
    text = "; ".join(f"{join_dims(ns)} {factor}" for (factor, _), ns in groups.items())
    fix = "; ".join(f"{join_dims(ns)}: {how}" for (_, how), ns in groups.items())
    worst = max(bad.values(), key=lambda f: f["error_identity"])
    return mismatch(
        name,
        f"State units differ: {seen}: {text} (median |data − sim| "
        f"{worst['error_identity']:.3g} as is, {worst['error_fit']:.3g} after the fit). "
        f"Fix: convert the data (or its converter) into the simulator's units ({fix}), or "
        "the simulator's observations into the data's at evaluation.",
        artifacts,
        **evidence,
    )


def clear() -> None:
    """Forget every measurement and close the simulators (tests that patch a simulator)."""
    _COMPARISONS.clear()
    sr.clear()
