"""The doctor's gripper_polarity check: which gripper commands close the
gripper in the dataset (the commands of the steps before its opening drops, or while it
stays closed) and in the simulator (each command held from open and from closed:
:func:`nblib.studies.doctor.sim_response.gripper_response`), level by level; a mismatch
names the sign ("the dataset closes with -0.85, the simulator with +1") or the levels
and the range ([0, 1] against [-1, 1]) and the fix."""

from __future__ import annotations

import numpy as np

from nblib.studies.doctor import sim_response as sr
from nblib.studies.doctor.checks import mismatch, ok, skipped
from nblib.studies.doctor.dynamics_data import (
    command_levels,
    compare_levels,
    gripper_column,
    gripper_openings,
    rounded,
)

# Gripper: a mismatch when the levels the two sides read oppositely hold >= 10 % of the
# dataset's steps (clean data: 0 %).
GRIPPER_DISAGREEMENT = 0.10
# ... or when the simulator would miss at least half of the dataset's opening (closing)
# steps, at least 5 of them: a release or grasp it cannot reproduce, however rare.
MIN_EVENTS = 5


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
            f"the simulator's gripper ({sim.task}) did not close under any of the commands "
            f"{list(probe)}: opening {response.from_open}",
        )
    effects = [response.effect_at(c) for c in levels["command"]]
    found = compare_levels(levels, effects)
    lo, hi = levels["range"]
    sim_up = response.effect_at(sim.high) == "close" and response.effect_at(sim.low) == "open"
    data_up = levels["close_command"] > levels["open_command"]
    missed = [
        f"{found[f'{kind}_missed']} of its {found[f'{kind}_events']} {word} steps"
        for kind, word in (("open", "opening"), ("close", "closing"))
        if found[f"{kind}_events"] >= MIN_EVENTS
        and found[f"{kind}_missed"] >= 0.5 * found[f"{kind}_events"]
    ]
    evidence = dict(
        sim_task=sim.task,
        data_close_command=rounded(levels["close_command"]),
        data_open_command=rounded(levels["open_command"]),
        data_range=[rounded(lo), rounded(hi)],
        sim_range=[sim.low, sim.high],
        sim_closes_with="+" if sim_up else "-",
        data_closes_with="+" if data_up else "-",
        disagreement=rounded(found["disagreement"]),
        levels={
            f"{c:+.2f}": dict(steps=int(n), data_closes=rounded(p), sim=e, read_oppositely=int(w))
            for c, n, p, e, w in zip(
                levels["command"],
                levels["steps"],
                levels["closes"],
                effects,
                found["wrong"],
                strict=True,
            )
        },
        **{k: found[k] for k in ("open_events", "open_missed", "close_events", "close_missed")},
        sim_open_level=rounded(response.open_level),
        sim_closed_level=rounded(response.closed_level),
    )
    artifacts = dict(
        data_command=levels["sample_command"],
        data_opening=levels["sample_opening"],
        data_levels=levels["command"],
        data_level_closes=levels["closes"],
        data_level_steps=levels["steps"],
        data_level_wrong=found["wrong"],
        sim_levels=np.asarray(response.levels),
        sim_from_open=np.asarray(response.from_open),
        sim_from_closed=np.asarray(response.from_closed),
        sim_trace_plus=response.trace_plus,
        sim_trace_minus=response.trace_minus,
    )
    data_text = (
        f"the dataset closes with {levels['close_command']:+.2f} and keeps open with "
        f"{levels['open_command']:+.2f} (mean commands before its opening drops / while "
        f"open; range [{lo:.2f}, {hi:.2f}])"
    )
    by_effect = {
        e: ", ".join(
            f"{c:+.2f}" for c, x in zip(response.levels, response.effects, strict=True) if x == e
        )
        for e in ("close", "open", "hold")
    }
    sim_text = (
        f"the simulator ({sim.task}) closes with {by_effect['close'] or 'none'}, opens with "
        f"{by_effect['open'] or 'none'}"
        + (f", only holds at {by_effect['hold']}" if by_effect["hold"] else "")
        + f" (opening {response.open_level:.2f} ↔ {response.closed_level:.2f})"
    )
    if found["disagreement"] < GRIPPER_DISAGREEMENT and not missed:
        note = ""
        if (lo >= -0.05) != (sim.low >= -0.05):
            note = (
                f"; its range differs from the simulator's [{sim.low:g}, {sim.high:g}] but "
                "every command it uses does there what it does in the data"
            )
        held = [
            f"{c:+.2f}"
            for c, p, e in zip(levels["command"], levels["closes"], effects, strict=True)
            if p < 0.5 and e == "hold"
        ]
        if held:  # only holding is enough while the data never opens with the command
            events, missed_steps = found["open_events"], found["open_missed"]
            note += f"; its open command {', '.join(held)} only holds the simulator's gripper, "
            note += (
                "harmless here: the dataset never re-opens its gripper"
                if not events
                else f"which misses {missed_steps} of the dataset's {events} opening steps"
            )
        text = f"Gripper commands agree: {data_text}; {sim_text}{note}."
        return ok(name, text, artifacts, **evidence)
    if data_up != sim_up:
        text = (
            f"Gripper sign flipped: {data_text}; {sim_text}. Fix: negate the gripper "
            "dimension (g → −g) in the data or at evaluation."
        )
        return mismatch(name, text, artifacts, **evidence)
    wrong = [
        f"{c:+.2f} ({n} steps: the data {'closes' if p >= 0.5 else 'opens'} with it, the "
        f"simulator {'only holds' if e == 'hold' else e + 's'})"
        for c, p, e, n in zip(
            levels["command"], levels["closes"], effects, found["wrong"], strict=True
        )
        if n
    ]
    if lo >= -0.05 and sim.low < -0.05:
        fix = f"the dataset's range is [0, 1], the simulator's [{sim.low:g}, {sim.high:g}]: rescale g → 2g − 1"
    elif lo < -0.05 and sim.low >= -0.05:
        fix = "the dataset's range is [−1, 1], the simulator's [0, 1]: rescale g → (g + 1) / 2"
    else:
        fix = "map the dataset's gripper commands onto the simulator's levels"
    text = (
        f"Gripper commands read differently: {'; '.join(wrong)}; "
        f"{found['disagreement']:.0%} of the dataset's steps"
        + (f", and the simulator would miss {' and '.join(missed)}" if missed else "")
        + f"; {data_text}; {sim_text}. Fix: {fix}."
    )
    return mismatch(name, text, artifacts, **evidence)
