"""The doctor's checks of the policy itself (``--policy``): the normalisation statistics
it carries against the data's (``normalization``), and how its action chunks behave when
the harness executes ``replan`` actions of each (``chunk_execution``).

Both are ``skipped`` without a policy. ``normalization`` reads statistics only (no
episode runs); ``chunk_execution`` runs the doctor's closed-loop episodes once per replan
value, in this process, with ``study.policy`` wrapped to record its chunks.
"""

from __future__ import annotations

import numpy as np

from nblib.studies.doctor.checks import mismatch, ok, skipped
from nblib.studies.doctor.policy_stats import (
    KINDS,
    carried,
    compare,
    data_statistics,
    dimension_names,
    near_constant,
)

#: normalization: a convention whose statistics put the data's normalised values off by
#: more than this many data scales (at ±2 std, or at the bounds) in some dimension is a
#: mismatch. Measured on the embedded data: a policy's own training demos reproduce to
#: < 1e-6; one task's statistics 1.6-3.4, another generated dataset 3.2, stds doubled 2.0;
#: 4 of the 5 tasks 0.19-0.24 (harmless), or 1.0-1.4 without drawer-open / button-press.
MAX_ERROR = 0.5
#: a dimension whose std is below this fraction of its magnitude is near-constant
NEAR_CONSTANT = 0.01
#: chunk_execution: boundary jumps above this many reference steps (the larger of the
#: demos' mean step change and the policy's own within-chunk one) are flagged. Measured
#: at replan <= 8: clean policies 0.4-2.4 (a trained conv plug-in, notebook 01's VLA, a
#: kinematic reach expert), the same with reversed chunks 3.2-9.5 (see the docs).
JUMP_FACTOR = 3.0
#: chunk_execution: consecutive chunks that overlap best at a shift <= 0 (time standing
#: still or running backwards) at a replan of at least LAG_FROM are flagged, when the
#: policy reacts at all (its first replan's boundary jump is at least REACTS of the demos'
#: step). Measured at replan 4 / 8: clean policies +2..+4 / +6..+9, reversed 0..-2 / -3..-5.
LAG_FROM = 4
REACTS = 0.1
#: chunk_execution runs the closed loop on at most this many of the doctor's tasks
MAX_TASKS = 2

NO_POLICY = "no --policy given: pass --policy SPEC (a run folder, a plug-in spec or a server)"


# ----------------------------------------------------------------------- normalization


def normalization(study):
    """The policy's statistics against the data's, per dimension and convention."""
    name = "normalization"
    if study.config.policy is None:
        return skipped(name, NO_POLICY)
    found = carried(study)
    if isinstance(found, str):
        return skipped(name, found)
    data, over = data_statistics(study.store, found.demos)
    rows = compare(found.stats, data)
    evidence = _normalization_evidence(study, found, data, over, rows)
    artifacts = {"policy": found.stats, "data": data}
    problems = _normalization_problems(evidence)
    warning = _near_constant_sentence(evidence)
    if problems:
        fix = (
            "fix: give the policy the statistics of the data it was trained on (a run "
            "folder saves them with the weights), or pass --data the dataset it was "
            "trained on"
        )
        more = f" ({len(problems) - 2} more problems in the evidence)" if len(problems) > 2 else ""
        detail = f"{'; '.join(problems[:2])}{more}; {fix}." + (f" {warning}" if warning else "")
        return mismatch(name, detail, artifacts, **evidence)
    worst = evidence["max_error"]
    detail = (
        f"the policy's statistics, from {found.source}, match the data's over {over} "
        f"({', '.join(evidence['conventions'])}): largest error {worst:.2g} data scales, "
        f"mismatch above {MAX_ERROR}."
    )
    return ok(name, detail + (f" {warning}" if warning else ""), artifacts, **evidence)


def _normalization_evidence(study, found, data, over, rows) -> dict:
    """Per kind: the dimensions' names in order and, per name, the policy's and the
    data's mean and std, the std ratio, the mean shift (data stds) and the error per
    convention and its largest (dicts keyed by name, so figures can cite them)."""
    evidence: dict = {
        "source": found.source,
        "reference": over,
        "policy_demos": len(found.demos) if found.demos else None,
        "threshold": MAX_ERROR,
        "conventions": sorted({m for r in rows.values() for m in r["errors"]}),
    }
    worst = 0.0
    for kind in KINDS:
        row, names = rows[kind], dimension_names(study.store, kind)
        if len(names) != row["width"]:
            names = [f"{kind}[{i}]" for i in range(row["width"])]
        p, d = found.stats.get(kind, {}), data[kind]
        dims = {}
        for i, dim in enumerate(names):
            entry = {"data_mean": float(d["mean"][i]), "data_std": float(d["std"][i])}
            if row["width_problem"] is None:
                entry |= {f"policy_{s}": float(p[s][i]) for s in ("mean", "std") if s in p}
                entry |= {k: float(row[k][i]) for k in ("std_ratio", "mean_shift") if k in row}
                errors = {mode: float(err[i]) for mode, err in row["errors"].items()}
                entry["errors"] = errors
                entry["error"] = max(errors.values(), default=0.0)
                if np.isfinite(entry["error"]):  # NaN/Inf statistics are reported apart
                    worst = max(worst, entry["error"])
            dims[dim] = entry
        evidence[kind] = {
            "names": names,
            "dims": dims,
            "width_problem": row["width_problem"],
            "nonfinite": [[stat, names[i]] for stat, i in row["nonfinite"]],
            "near_constant": [names[i] for i in near_constant(d, NEAR_CONSTANT)],
        }
    evidence["max_error"] = worst
    return evidence


def _normalization_problems(evidence: dict) -> list[str]:
    """One sentence per problem: widths, NaN/Inf, then the dimension with the largest
    error (and how many more exceed the threshold)."""
    problems = []
    for kind in KINDS:
        part = evidence[kind]
        if part["width_problem"]:
            problems.append(f"{kind}: the policy's {part['width_problem']} (another dataset's?)")
        for stat, dim in part["nonfinite"]:
            problems.append(
                f"{kind} {dim}: the policy's {stat} is NaN/Inf (its normalised values are NaN)"
            )
    bad = [
        (entry["error"], kind, dim)
        for kind in KINDS
        for dim, entry in evidence[kind]["dims"].items()
        if MAX_ERROR < entry.get("error", 0.0) < np.inf
    ]
    if bad:
        err, kind, dim = max(bad)
        entry, names = evidence[kind]["dims"][dim], evidence[kind]["names"]
        mode = max(entry["errors"], key=entry["errors"].get)
        if mode == "mean_std" and "policy_std" in entry:
            said = (
                f"the policy's std {entry['policy_std']:.3g} vs the data's "
                f"{entry['data_std']:.3g}, mean {entry['policy_mean']:.3g} vs "
                f"{entry['data_mean']:.3g}"
            )
        else:
            said = f"the policy's {mode.replace('_', '/')} bounds differ from the data's"
        more = f" (and {len(bad) - 1} more dimensions)" if len(bad) > 1 else ""
        problems.append(
            f"{kind} dim {names.index(dim)} ({dim}): {said}, an error of {err:.2g} data "
            f"scales, above {MAX_ERROR}{more} — statistics of another dataset?"
        )
    return problems


def _near_constant_sentence(evidence: dict) -> str:
    """A warning, not a mismatch: the policy shares the data's near-constant dimensions
    (were they not shared, the error above would be large), so training and evaluation
    agree; only an evaluation value off that constant would blow up once normalised."""
    named = [f"{kind} {d}" for kind in KINDS for d in evidence[kind]["near_constant"]]
    if not named:
        return ""
    return (
        f"Warning: near-constant in the data ({', '.join(named)}; std below "
        f"{NEAR_CONSTANT:.0%} of the values): a small difference at evaluation there is "
        "many normalised units; check that the simulator gives the same constant."
    )


# --------------------------------------------------------------------- chunk_execution


def chunk_execution(study):
    """Success and boundary jumps per replan; the replan the data and chunk support."""
    from nblib.studies.doctor.policy_chunks import data_steps, evaluated_replan, run_replan

    name = "chunk_execution"
    if study.config.policy is None:
        return skipped(name, NO_POLICY)
    used, used_from = evaluated_replan(study)
    values = sorted(set(study.config.replan_values) | {used})
    tasks = _chunk_tasks(study)
    labels = tasks.get("tasks") or [f"task {i}" for i in tasks["task_ids"]]
    data = data_steps(study.store, tasks.get("tasks"))
    runs, sims, length = [], {}, None
    try:
        for replan in values:
            if length is not None and replan > length:
                continue  # the harness runs it as replan = chunk length: nothing new
            run = run_replan(study, study.policy, replan, sims, **tasks)
            length = run.chunk_length if length is None else max(length, run.chunk_length)
            runs.append(run)
    finally:
        for sim in sims.values():
            sim.close()
    evidence = _chunk_evidence(runs, values, used, used_from, length, data, labels)
    evidence["action_names"] = study.store.mapping.action_labels()
    artifacts = {
        "traces": {r.replan: (r.trace, r.trace_boundaries) for r in runs},
        "boundary": {r.replan: r.boundary for r in runs},
    }
    return _chunk_verdict(name, evidence, artifacts)


def _chunk_tasks(study) -> dict:
    """At most :data:`MAX_TASKS` of the doctor's tasks (the closed loop runs once per
    replan value; this keeps the check within notebook 06's budget): in Meta-World those
    whose demos are shortest, the likeliest to finish within the step limit."""
    config = study.eval_config()
    if config.sim == "libero":
        return {"task_ids": list(config.task_ids)[:MAX_TASKS]}
    store = study.store
    lengths = {
        task: np.median([store.lengths[d] for d in store.demos if store.task_label(d) == task])
        if task in store.tasks()
        else np.inf
        for task in config.tasks
    }
    shortest = sorted(config.tasks, key=lambda t: (lengths[t], config.tasks.index(t)))
    chosen = set(shortest[:MAX_TASKS])
    return {"tasks": [t for t in config.tasks if t in chosen]}


def _chunk_evidence(runs, values, used, used_from, length, data, tasks) -> dict:
    data_step = float(data.mean())
    own = np.concatenate([r.chunk_steps for r in runs])
    own_step = float(own.mean()) if own.size else 0.0
    reference = max(data_step, own_step)
    rows = []
    for run in runs:
        jump = float(run.boundary.mean()) if run.boundary.size else 0.0
        rows.append({
            "replan": run.replan,
            "successes": run.successes,
            "episodes": run.episodes,
            "boundary_jump": jump,
            "within_step": float(run.within.mean()) if run.within.size else None,
            "jump_ratio": jump / reference if reference > 0 else 0.0,
            "overlap_lag": float(np.median(run.lags)) if run.lags.size else None,
        })  # fmt: skip
    # a policy whose chunks barely change between calls (untrained) cannot show alignment
    reacts = bool(rows) and rows[0]["boundary_jump"] >= REACTS * data_step
    jumps = [r["replan"] for r in rows if r["jump_ratio"] > JUMP_FACTOR]
    backwards = [
        r["replan"]
        for r in rows
        if reacts
        and LAG_FROM <= r["replan"] <= length - length // 4  # a quarter of the chunk overlaps
        and r["overlap_lag"] is not None
        and r["overlap_lag"] <= 0
    ]
    flagged = sorted(set(jumps) | set(backwards))
    supported = None
    for r in rows:  # the largest replan below which nothing is flagged
        if r["replan"] in flagged:
            break
        supported = r["replan"]
    return {
        "tasks": tasks,
        "replans": {str(r["replan"]): r for r in rows},  # keyed, so figures can cite them
        "chunk_length": length,
        "beyond_chunk": [v for v in values if v > length],
        "evaluated_replan": used,
        "evaluated_from": used_from,
        "data_step": data_step,
        "data_band": [float(q) for q in np.quantile(data, [0.25, 0.75])],
        "policy_step": own_step,
        "reference_step": reference,
        "factor": JUMP_FACTOR,
        "jump_limit": JUMP_FACTOR * reference,
        "reacts": reacts,
        "flagged_jumps": jumps,
        "flagged_backwards": backwards,
        "flagged": flagged,
        "supported_replan": supported,
    }


def _chunk_verdict(name, ev, artifacts):
    rows, length, used = list(ev["replans"].values()), ev["chunk_length"], ev["evaluated_replan"]
    table = "; ".join(
        f"replan {r['replan']}: {r['successes']}/{r['episodes']} successes, boundary jump "
        f"{r['boundary_jump']:.3f} = {r['jump_ratio']:.1f}x"
        + ("" if r["overlap_lag"] is None else f", chunks overlap at {r['overlap_lag']:+.0f}")
        for r in rows
    )
    said = (
        f"On {', '.join(ev['tasks'])}, chunks of {length} actions; {table} (reference step "
        f"{ev['reference_step']:.3f}: the larger of the demos' mean step change "
        f"{ev['data_step']:.3f} and the policy's own within-chunk {ev['policy_step']:.3f}); "
        f"the evaluation uses {ev['evaluated_from']}."
    )
    notes = []
    if ev["data_step"] > 0 and ev["policy_step"] > JUMP_FACTOR * ev["data_step"]:
        notes.append(
            f"The policy's own chunks change {ev['policy_step'] / ev['data_step']:.0f}x more "
            "per step than the demos' (untrained or noisy?): only larger jumps show."
        )
    if rows and not ev["reacts"]:
        notes.append(
            f"At replan {rows[0]['replan']} consecutive chunks barely differ (boundary jump "
            f"{rows[0]['boundary_jump']:.4f} vs the demos' step {ev['data_step']:.3f}): the "
            "policy hardly reacts to what it observes (untrained?), so neither jumps nor "
            "overlaps say much about alignment."
        )
    problems, fixes = [], []
    supported = ev["supported_replan"]
    if used > length:
        problems.append(
            f"the evaluation executes {used} actions per chunk but the policy predicts "
            f"{length}: nblib's harness silently runs {length}, other harnesses pad or fail"
        )
        fixes.append(f"evaluate with replan <= {min(supported or length, length)}")
    if ev["flagged_backwards"]:
        r = ev["flagged_backwards"][-1]
        problems.append(
            f"at replan {r} consecutive chunks overlap best shifted by "
            f"{ev['replans'][str(r)]['overlap_lag']:+.0f} steps where time moved +{r}: the "
            "chunks run backwards or stand still (misaligned in the eval path?)"
        )
        fixes.append("check that the eval path executes each chunk in order, chunk[0] first")
    if ev["flagged_jumps"]:
        problems.append(
            f"boundary jumps above {JUMP_FACTOR:g}x the reference at replan "
            f"{', '.join(map(str, ev['flagged_jumps']))}: chunks executed open loop for too "
            "long, or misaligned"
        )
        if not ev["flagged_backwards"]:  # misaligned chunks are fixed in the eval path
            fixes.append(
                f"evaluate with replan <= {supported}" if supported else "check the eval path"
            )
    if problems:
        fix = "fix: " + "; ".join(dict.fromkeys(fixes))
        detail = f"{'; '.join(problems)}. {said} {fix}." + "".join(f" {n}" for n in notes)
        return mismatch(name, detail, artifacts, **ev)
    if ev["beyond_chunk"]:
        notes.append(f"Replan {ev['beyond_chunk']} exceeds the chunk: it runs as {length}.")
    detail = (
        f"boundary jumps stay within {JUMP_FACTOR:g}x the reference and chunks advance with "
        f"time up to replan {supported} (the data and the chunk support it). {said}"
    ) + "".join(f" {n}" for n in notes)
    return ok(name, detail, artifacts, **ev)
