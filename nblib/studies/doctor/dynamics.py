"""The doctor's dynamics checks: the dataset's actions, gripper commands and state held
against what the evaluation simulator does with them, measured by stepping it
(:mod:`nblib.studies.doctor.sim_response`; the three checks share its measurements).

- :func:`action_representation`: delta or absolute actions. In the data, the hand command
  of step t is correlated with the end-effector's motion p[t+1] − p[t] (a delta) and with
  its next position p[t+1] (an absolute target); the simulator's action space is measured
  by held pushes (a delta when the hand keeps moving under a held command).
- :func:`gripper_polarity` (in :mod:`nblib.studies.doctor.gripper`): which gripper
  commands close, open or only hold the gripper in the data and in the simulator: the
  sign and the range.
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
    conversion,
    fit_scale,
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
            fix = (
                "integrate the deltas into targets (target = eef_pos + k·action, k = the "
                f"data's {_mm(gain)} per unit) or evaluate with a delta controller"
            )
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
            f"simulator's {_mm(response.gain)} ({', '.join(off)}); fix: multiply the "
            "hand actions by that ratio (data over simulator) before the simulator takes "
            "them, clipped to [−1, 1], or retrain on actions in the simulator's units.",
            artifacts,
            **evidence,
        )
    return ok(
        name,
        f"The dataset's hand actions are {data_kind} ({seen}) and so is the "
        f"simulator's action space ({sim.task}: {k_text}; the data's {_mm(gain)}, "
        f"within ×{GAIN_RATIO:g} of it).",
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
        f"a held zero does not keep the hand still: late in the hold it moves at "
        f"{min(response.drift):.0%}–{max(response.drift):.0%} of its unit-command speed, "
        f"and {closed:.0%} of the distance between two start positions closed: a command "
        "names a place"
    )


def _per_axis(values) -> dict[str, float]:
    return {a: rounded(v) for a, v in zip(AXES, values, strict=True)}


def _mm(gains) -> str:
    return "/".join(f"{g * 1000:.2f}" for g in gains) + " mm (x/y/z)"


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
        f"moments ({found['demos']} demos reset with their seeds and replayed while the "
        "simulator matched their recorded states)"
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
