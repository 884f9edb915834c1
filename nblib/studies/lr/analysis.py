"""What notebook 03 concludes from the runs' loss curves.

``analyse``: per run the plateau, divergence (NaN / Inf, a loss dropped to exactly 0, a
blow-up) and learning-stopped-after-warmup detectors (:mod:`nblib.metrics.curves`), the
loss improvement per ``plateau_window`` steps after warmup with its bootstrap interval,
and a next-config suggestion (a heuristic). ``matched_table``: the runs' losses at the same
steps. ``verdict``: **FOUND** when some run that did not diverge clearly keeps learning past
warmup (the whole interval of its improvement per window at or above
``plateau_threshold``), **STALLED** when none does (runs whose interval straddles the
threshold are named), **DIVERGED** when every run diverged or broke.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from nblib.errors import ParameterError
from nblib.metrics import curves
from nblib.metrics.estimates import bootstrap_two
from nblib.studies import Evidence
from nblib.studies.lr.study import FLOOR_SCHEDULES, LRConfig, LRStudy
from nblib.verdict import Estimate, Verdict

# Seed 003's auto-tuning raised the LR by 1.5x on a plateau; a divergence gets a third.
RAISE, LOWER = 1.5, 0.3
MARGIN = 0.1  # "right after warmup": a plateau that begins by warmup + 10 % of the run
MIN_POINTS = 3  # logged losses each side of the after-warmup improvement, at least
BROKEN = ("non_finite", "zero")  # divergence reasons that are a broken run, not a bad LR


def run_smoothing(smoothing: int, points: int) -> int:
    """The moving-average width used for a run of ``points`` logged losses: ``smoothing``,
    but never more than a tenth of the run (at least 1)."""
    return max(1, min(smoothing, points // 10))


def gain_after_warmup(
    steps: np.ndarray, loss: np.ndarray, start: float, window: int, seed: int = 0
) -> Estimate | None:
    """How fast the loss still falls after warmup: the relative drop of the mean loss from
    the first ``window`` steps after ``start`` to the last ``window`` steps of the run,
    scaled to one ``window`` of steps (the plateau threshold's unit), with a bootstrap
    interval resampling the losses of each end. Each end holds at least ``MIN_POINTS``
    logged losses; None when the run after ``start`` is too short for two such ends or its
    loss is not finite (a diverged run is judged by the divergence detector instead)."""
    after = steps >= start
    if not np.isfinite(loss[after]).all():
        return None
    idx = np.flatnonzero(after)
    early = idx[steps[idx] < start + window]
    late = idx[steps[idx] > steps[-1] - window]
    if len(early) < MIN_POINTS:
        early = idx[:MIN_POINTS]
    if len(late) < MIN_POINTS:
        late = idx[-MIN_POINTS:]
    if len(idx) < 2 * MIN_POINTS or late[0] <= early[-1]:
        return None
    span = float(steps[late].mean() - steps[early].mean())
    scale = window / span

    def rate(a, b, axis=-1):
        first = np.mean(a, axis=axis)
        return (first - np.mean(b, axis=axis)) / np.abs(first) * scale

    return bootstrap_two(loss[early], loss[late], rate, "losses at each end", seed)


def analyse(study: LRStudy, loss_curves: pd.DataFrame, ramp: dict | None = None) -> pd.DataFrame:
    """Per run: steps, final (smoothed) loss, plateau, divergence and its reason, learning
    stopped right after warmup, the improvement per window after warmup (``gain``, with
    ``gain_low`` / ``gain_high``), and the suggested next config with its reason."""
    cfg = study.config
    specs = {s["run"]: s for s in study.specs}
    rows = []
    for run, part in loss_curves.groupby("run", sort=False):
        steps = part["step"].to_numpy()
        loss = part["loss"].to_numpy(dtype=float)
        grad = part["grad_norm"].to_numpy(dtype=float)
        spec = specs.get(run)
        warmup = spec["warmup_steps"] if spec else cfg.log_warmup_steps
        # Sparse logs (a W&B export of 20 points) must not be averaged over their whole run.
        smoothing = run_smoothing(cfg.smoothing, len(loss))
        div = curves.divergence(
            steps, loss, grad if np.isfinite(grad).any() else None, smoothing=smoothing
        )
        finite = np.isfinite(loss)
        plat, stop, gain = {"step": None}, {"stopped": False}, None
        if not div["diverged"]:  # a diverged run has no plateau to speak of
            kw = {"window": cfg.plateau_window, "threshold": cfg.plateau_threshold}
            plat = curves.plateau(steps, loss, smoothing=smoothing, **kw)
            if warmup:
                stop = curves.stopped_after_warmup(
                    steps, loss, warmup, margin=MARGIN, smoothing=smoothing, **kw
                )
            start = warmup + MARGIN * float(steps[-1])
            gain = gain_after_warmup(steps, loss, start, cfg.plateau_window, seed=0)
        smoothed = curves.smooth(loss[finite], smoothing) if finite.any() else np.array([])
        row = {
            "run": run,
            "steps": int(steps[-1]) + 1 if len(steps) else 0,
            "final_loss": float(smoothed[-1]) if len(smoothed) else None,
            "min_loss": float(np.min(loss[finite])) if finite.any() else None,
            "plateau_step": plat["step"],
            "stopped_after_warmup": bool(stop["stopped"]),
            "diverged": bool(div["diverged"]),
            "divergence_step": div["step"],
            "divergence_reason": div["reason"],
            "grad_spikes": len(div["grad_spikes"]),
            "gain": None if gain is None else gain.value,
            "gain_low": None if gain is None else gain.low,
            "gain_high": None if gain is None else gain.high,
        }
        row["suggestion"], row["next"] = suggest(row, spec, ramp)
        rows.append(row)
    if not rows:
        raise ParameterError("no runs: the loss curves table is empty")
    return pd.DataFrame(rows).set_index("run")


def suggest(row: dict, spec: dict | None, range_result: dict | None = None) -> tuple[str, dict]:
    """A heuristic next config for one run, with its reason: a broken run (NaN / Inf, or a
    loss dropped to exactly 0) -> no LR advice, look for masked NaNs first; a blow-up ->
    lower the peak (to the range test's steepest-descent LR when it is lower), double the
    warmup, clip; learning stopped after warmup or a plateau -> raise the floor (no floor
    yet) or the peak by 1.5x (seed 003's auto-tuning); still improving -> train longer."""
    lr = spec["lr"] if spec else None
    nxt: dict = {}
    if row["diverged"] and row.get("divergence_reason") in BROKEN:
        what = "NaN / Inf" if row["divergence_reason"] == "non_finite" else "exactly 0"
        return (
            f"broken at step {row['divergence_step']} (loss {what}): not an LR problem to "
            "tune away; look for NaNs masked or a loss switched off (seed 000) and make "
            "the run fail on the first NaN before changing the LR",
            nxt,
        )
    if row["diverged"]:
        target = lr * LOWER if lr else None
        steepest = (range_result or {}).get("steepest")
        if target and steepest and steepest < target:
            target = steepest
        if target:
            nxt["lr"] = float(f"{target:.2g}")
        if spec:
            nxt["warmup_steps"] = max(2 * spec["warmup_steps"], 10)
        nxt["grad_clip"] = 1.0
        why = f"diverged at step {row['divergence_step']}: lower the peak LR"
        why += f" to {nxt['lr']:g}" if "lr" in nxt else ""
        return why + ", double the warmup and clip gradients at 1.0 (heuristic)", nxt
    if row["stopped_after_warmup"] or row["plateau_step"] is not None:
        when = "right after warmup" if row["stopped_after_warmup"] else "later"
        if spec and spec["schedule"] not in FLOOR_SCHEDULES:
            nxt = {"schedule": "cosine_with_min_lr", "min_lr_rate": 0.1}
            return (
                f"stopped improving {when} (plateau from step {row['plateau_step']}): keep a "
                "10 % LR floor (cosine_with_min_lr), as seed 003 did (heuristic)",
                nxt,
            )
        if lr:
            nxt = {"lr": float(f"{lr * RAISE:.2g}")}
        why = f"stopped improving {when} (plateau from step {row['plateau_step']}): raise the peak"
        why += f" LR to {nxt['lr']:g}" if nxt else " LR"
        return why + " (x1.5, seed 003's auto-tuning) (heuristic)", nxt
    return "still improving at the end: train longer at these settings (heuristic)", nxt


def matched_table(
    study: LRStudy, loss_curves: pd.DataFrame, runs: pd.DataFrame, at: list[int] | None = None
) -> pd.DataFrame:
    """Seed 003's "Comparison at Same Steps": every run that did not diverge (``runs``,
    from :func:`analyse`), its raw and smoothed loss at the same steps, and the smoothed
    delta to the baseline (``config.baseline`` or the first such run); a step x run table
    of smoothed losses with deltas in brackets is :func:`matched_pivot`."""
    cfg = study.config
    kept = [r for r in runs.index if not runs.loc[r, "diverged"]]
    by_run = {
        run: (part["step"].to_numpy(), part["loss"].to_numpy(dtype=float))
        for run, part in loss_curves.groupby("run", sort=False)
        if run in kept
    }
    if not by_run:
        raise ParameterError("every run diverged: no loss to compare at the same steps")
    baseline = cfg.baseline if cfg.baseline is not None else next(iter(by_run))
    if baseline not in by_run:
        raise ParameterError(
            f"baseline {baseline!r} is not a run that kept a finite loss; runs: {sorted(by_run)}"
        )
    return curves.matched_steps(by_run, at=at, baseline=baseline, smoothing=cfg.smoothing)


def matched_pivot(table: pd.DataFrame) -> pd.DataFrame:
    """step x run: smoothed loss (delta to the baseline)."""
    cell = table.apply(
        lambda r: (
            f"{r['smoothed']:.4g}"
            + ("" if pd.isna(r["delta"]) or r["delta"] == 0 else f" ({r['delta']:+.3g})")
        ),
        axis=1,
    )
    return table.assign(cell=cell).pivot(index="step", columns="run", values="cell")


# ----------------------------------------------------------------------------- verdict


@dataclass(frozen=True)
class LREvidence(Evidence):
    """The analysed runs, the range test and the mean-action baseline."""

    mode: str
    specs: tuple[dict, ...]
    runs: pd.DataFrame  # from analyse
    range: dict | None = None
    baseline_loss: float | None = None
    resumed_from_step: dict | None = None  # run -> the step it resumed from (live sweeps)


def evidence(
    study: LRStudy,
    runs: pd.DataFrame,
    ramp: dict | None = None,
    baseline_loss: float | None = None,
    curves: pd.DataFrame | None = None,
) -> LREvidence:
    """``curves``: :func:`nblib.studies.lr.loss_curves`'s table, which says which runs of a
    live sweep continued from a checkpoint."""
    resumed = None if curves is None else curves.attrs.get("resumed_from_step")
    return LREvidence(study.mode, study.specs, runs, ramp, baseline_loss, resumed)


def best_run(runs: pd.DataFrame) -> str | None:
    """The run with the lowest final smoothed loss among those that did not diverge."""
    ok = runs[~runs["diverged"] & runs["final_loss"].notna()]
    return None if ok.empty else str(ok["final_loss"].astype(float).idxmin())


def _gain(runs: pd.DataFrame, run: str) -> Estimate | None:
    row = runs.loc[run]
    if row["gain"] is None or pd.isna(row["gain"]):
        return None
    return Estimate(row["gain"], row["gain_low"], row["gain_high"], "95 % bootstrap")


def learning_status(runs: pd.DataFrame, threshold: float) -> dict[str, str]:
    """How the verdict judges each run, so figures mark runs as the verdict counts them:
    ``diverged``; ``learning`` (the whole interval of its improvement per window after
    warmup at or above ``threshold``), ``uncertain`` (the interval straddles it),
    ``stalled`` (below it); a run too short to estimate its improvement is judged by the
    plateau detector (``learning`` unless it stopped right after warmup)."""
    status = {}
    for run in runs.index:
        gain = None if runs.loc[run, "diverged"] else _gain(runs, run)
        if runs.loc[run, "diverged"]:
            status[run] = "diverged"
        elif gain is None:
            status[run] = "stalled" if runs.loc[run, "stopped_after_warmup"] else "learning"
        elif gain.above(threshold):
            status[run] = "learning"
        else:
            status[run] = "uncertain" if gain.straddles(threshold) else "stalled"
    return status


def verdict(evidence: LREvidence, config: LRConfig) -> Verdict:
    runs, thr = evidence.runs, config.plateau_threshold
    diverged = runs.index[runs["diverged"]].tolist()
    gains = {r: _gain(runs, r) for r in runs.index if r not in diverged}
    status = learning_status(runs, thr)
    learning = [r for r in gains if status[r] == "learning"]
    uncertain = [r for r in gains if status[r] == "uncertain"]
    best = best_run(runs)
    numbers = {
        "runs": len(runs),
        "best_run": best,
        "best_final_loss": None if best is None else float(runs.loc[best, "final_loss"]),
        "diverged": len(diverged),
        "learning_after_warmup": len(learning),
        "stopped_after_warmup": int(runs["stopped_after_warmup"].sum()),
        "plateaued": int((runs["plateau_step"].notna() & ~runs["diverged"]).sum()),
        "plateau_threshold": thr,
        "mean_action_loss": evidence.baseline_loss,
    }
    if best is not None and gains.get(best) is not None:
        numbers |= gains[best].numbers("best_gain_per_window")
    if evidence.range is not None:
        numbers |= {
            "range_steepest_lr": evidence.range.get("steepest"),
            "range_min_fraction_lr": evidence.range.get("min_fraction"),
        }
    reasons = []
    if best is None:
        label = "DIVERGED"
        reasons.append(f"all {len(runs)} runs diverged or broke: " + ", ".join(diverged))
    else:
        label = "FOUND" if learning else "STALLED"
        gain = gains.get(best)
        per = f"improves {gain} per {config.plateau_window} steps after warmup" if gain else ""
        reasons.append(
            f"best run {best}: final smoothed loss {runs.loc[best, 'final_loss']:.4g}"
            + (f"; it {per}" if per else "")
            + ("" if best in learning else " (not clearly learning past warmup)")
        )
        if learning:
            reasons.append(
                f"clearly learning past warmup (improvement per {config.plateau_window} steps "
                f"above {thr:g} over its whole interval): " + ", ".join(learning)
            )
        else:
            reasons.append(
                f"no run clearly improves by {thr:g} per {config.plateau_window} steps after warmup"
            )
        if uncertain:
            reasons.append(
                "improvement interval straddles the threshold "
                f"{thr:g}, not counted as learning: "
                + ", ".join(f"{r} {gains[r]}" for r in uncertain)
            )
        if diverged:
            reasons.append("diverged or broke: " + ", ".join(diverged))
        reasons.append(f"next config for {best}: {runs.loc[best, 'suggestion']}")
    if evidence.baseline_loss is not None and best is not None:
        ratio = float(runs.loc[best, "final_loss"]) / evidence.baseline_loss
        reasons.append(
            f"a predictor of the mean action scores {evidence.baseline_loss:.4g}: the best "
            f"run ends at {ratio:.2f}x that"
        )
    if evidence.range is not None and evidence.range.get("steepest"):
        r = evidence.range
        reasons.append(
            f"LR range test: steepest descent at {r['steepest']:.2g}, "
            f"minimum at {r['minimum']:.2g} (a tenth: {r['min_fraction']:.2g})"
        )
    return Verdict(label, reasons, numbers)


# The per-run numbers the figures draw, keyed by run in metrics.json's "per_run" (a figure
# names a metric by a path of keys, which runs_table, a list, cannot give).
PER_RUN = ("final_loss", "gain", "gain_low", "gain_high", "plateau_step", "divergence_step")


def metrics(evidence: LREvidence) -> dict:
    """What metrics.json records beside the verdict's numbers: the runs table, the grid,
    the range test, and the numbers the figures show (``per_run``; for live sweeps
    ``best_peak_lr`` and ``final_loss_by_peak_lr``, see :func:`lr_response`)."""
    runs = evidence.runs
    table = runs.astype(object).where(runs.notna(), None)  # JSON has no NaN
    out = {"mode": evidence.mode, "runs_table": [{"run": r, **row} for r, row in table.iterrows()]}
    out["per_run"] = {r: {k: row[k] for k in PER_RUN} for r, row in table.iterrows()}
    # null for a fresh sweep, else run -> the step it continued from (null: started afresh)
    resumed = evidence.resumed_from_step or {}
    out["resumed_from_step"] = resumed if any(v is not None for v in resumed.values()) else None
    if evidence.specs:
        out["grid"] = list(evidence.specs)
        peak = {s["run"]: s["lr"] for s in evidence.specs}
        for run, numbers in out["per_run"].items():
            numbers["peak_lr"] = peak.get(run)
        best = best_run(runs)
        if best is not None and best in peak:
            out["best_peak_lr"] = peak[best]
        response = lr_response(evidence.specs, runs)
        out["final_loss_by_peak_lr"] = {
            line: {
                lr_key(row["lr"]): {
                    "mean": row["mean"],
                    "min": row["min"],
                    "max": row["max"],
                    "seeds": int(row["seeds"]),
                }
                for _, row in part.iterrows()
                if row["seeds"] > 0
            }
            for line, part in response.groupby("line", sort=False)
        }
    if evidence.range is not None:
        out["range_test"] = {k: v for k, v in evidence.range.items() if k not in ("lr", "loss")}
    return out


# ------------------------------------------------------------ final loss against peak LR

# Grid settings other than the peak LR and the seed that may tell two lines apart.
LINE_SETTINGS = (("warmup_steps", "wu"), ("min_lr_rate", "floor"), ("weight_decay", "wd"))


def lr_key(lr: float) -> str:
    """A peak LR as a metrics.json key: ``1e-4`` -> "0.0001" (``format(lr, "g")``)."""
    return f"{lr:g}"


def line_names(specs) -> dict[str, str]:
    """Run -> its line in the final-loss-against-peak-LR figure: the schedule, plus each
    other setting (warmup, floor, weight decay) that varies across the grid; the peak LR
    is the x axis and seeds are the spread."""

    def values(key):  # a floor is recorded as 0 for schedules without one: skip those
        return {s[key] for s in specs if key != "min_lr_rate" or s["schedule"] in FLOOR_SCHEDULES}

    varying = [(key, short) for key, short in LINE_SETTINGS if len(values(key)) > 1]
    names = {}
    for spec in specs:
        parts = [spec["schedule"]]
        for key, short in varying:
            if key == "min_lr_rate" and spec["schedule"] not in FLOOR_SCHEDULES:
                continue
            parts.append(f"{short}={spec[key]:g}")
        names[spec["run"]] = " ".join(parts)
    return names


def lr_response(specs, runs: pd.DataFrame) -> pd.DataFrame:
    """Final smoothed loss against peak LR: one row per (line, peak LR) of the grid with
    ``schedule``, ``seeds`` (runs that did not diverge), ``diverged`` (runs that did) and
    the ``mean`` / ``min`` / ``max`` of their final losses over seeds (None when every
    seed diverged). Lines from :func:`line_names`, in grid order."""
    names = line_names(specs)
    rows: dict[tuple[str, float], dict] = {}
    for spec in specs:
        run = spec["run"]
        if run not in runs.index:
            continue
        row = rows.setdefault(
            (names[run], spec["lr"]),
            {"line": names[run], "schedule": spec["schedule"], "lr": spec["lr"], "losses": [],
             "diverged": 0},
        )  # fmt: skip
        final = runs.loc[run, "final_loss"]
        if runs.loc[run, "diverged"] or final is None or pd.isna(final):
            row["diverged"] += 1
        else:
            row["losses"].append(float(final))
    out = []
    for row in rows.values():
        losses = row.pop("losses")
        row["seeds"] = len(losses)
        for name, fn in (("mean", np.mean), ("min", np.min), ("max", np.max)):
            row[name] = float(fn(losses)) if losses else None
        out.append(row)
    columns = ["line", "schedule", "lr", "seeds", "diverged", "mean", "min", "max"]
    return pd.DataFrame(out, columns=columns)
