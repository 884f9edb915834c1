"""Kill notebook 01 mid-run, rerun the same command, and compare with a run left alone.

    .venv/bin/python tools/resume_demo.py [--steps 2000] [--every 500] [--out runs/resume_demo]

Three real runs of ``nblib run notebooks/01_overfit_diagnosis.ipynb`` on the embedded
data: one left alone; one killed with SIGKILL (runner and kernel, as a preempted node
would) right after its checkpoint at half the steps; the same command again, which
resumes from that checkpoint. Prints one JSON line of what it measured and draws
``docs/figures/resume_01.{pdf,png}`` (the README's figure): the per-step training loss and
the learning curve of both runs, read from their final checkpoints.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "01_overfit_diagnosis.ipynb"


def command(out: Path, steps: int, every: int) -> list[str]:
    args = [sys.executable, "-m", "nblib", "run", str(NOTEBOOK), "--out", str(out)]
    return args + ["-p", "steps", str(steps), "-p", "checkpoint_every", str(every)]


def run(out: Path, steps: int, every: int) -> float:
    t0 = time.perf_counter()
    subprocess.run(command(out, steps, every), check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def killed_run(out: Path, steps: int, every: int, at: int) -> float:
    """Start the run and SIGKILL it (and its kernel) once the checkpoint of step ``at``
    exists; returns the seconds it ran."""
    import psutil

    t0 = time.perf_counter()
    proc = subprocess.Popen(
        command(out, steps, every), start_new_session=True, stdout=subprocess.DEVNULL
    )
    target = out / "checkpoints" / f"step-{at:08d}.pt"
    while not target.exists():
        if proc.poll() is not None:
            raise SystemExit(f"the run ended before its checkpoint {target.name}")
        time.sleep(0.05)
    family = psutil.Process(proc.pid).children(recursive=True)
    os.killpg(proc.pid, signal.SIGKILL)
    for child in family:
        try:
            child.kill()
        except psutil.Error:
            pass
    proc.wait()
    return time.perf_counter() - t0


def history(out: Path, steps: int) -> list[dict]:
    import torch

    state = torch.load(out / "checkpoints" / f"step-{steps:08d}.pt", weights_only=True)
    return state["history"]


def figure(alone: list[dict], resumed: list[dict], resumed_from: int, figures: Path) -> dict:
    import numpy as np

    from nblib.plots import new_figure, save_figure

    loss_a = np.array([r["loss"] for r in alone])
    loss_r = np.array([r["loss"] for r in resumed])
    differ = int(np.sum(loss_a != loss_r))
    fig, (left, right) = new_figure(2, width=7.16, height=2.6)
    window = 20
    kernel = np.ones(window) / window
    steps = np.arange(len(loss_a))[window - 1 :]
    left.plot(steps, np.convolve(loss_a, kernel, "valid"), color="0.3", lw=2.2, label="left alone")
    part = steps >= resumed_from
    smoothed_r = np.convolve(loss_r, kernel, "valid")
    left.plot(
        steps[part], smoothed_r[part], color="#d95f02", lw=1.0, ls="--", label="killed, rerun"
    )
    left.axvline(resumed_from, color="#d95f02", lw=0.8, ls=":")
    left.set(yscale="log", xlabel="optimizer step", ylabel="training loss (20-step mean)")
    left.set_title(f"(a) loss: {differ} of {len(loss_a)} steps differ")
    left.legend(loc="upper right")
    for records, style in ((alone, dict(color="0.3", lw=2.2, marker="o")),
                           (resumed, dict(color="#d95f02", lw=1.0, ls="--", marker="x"))):  # fmt: skip
        points = [
            (r["step"] + 1, r["eval_train_relative"]) for r in records if "eval_train_relative" in r
        ]
        right.plot(*zip(*points, strict=True), ms=4, **style)
    right.axvline(resumed_from, color="#d95f02", lw=0.8, ls=":")
    right.text(resumed_from, 0.95, f" killed after step {resumed_from}, resumed", color="#d95f02",
               transform=right.get_xaxis_transform(), va="top", fontsize=7)  # fmt: skip
    right.set(xlabel="optimizer step", ylabel="train chunk MAE / std")
    right.set_title("(b) what the verdict judges, during training")
    save_figure(fig, figures / "resume_01")
    return {
        "steps_differing": differ,
        "max_abs_loss_difference": float(np.abs(loss_a - loss_r).max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--every", type=int, default=500)
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "resume_demo")
    parser.add_argument("--figures", type=Path, default=REPO / "docs" / "figures")
    args = parser.parse_args()
    at = args.steps // 2 // args.every * args.every
    alone, killed = args.out / "alone", args.out / "killed"
    for folder in (alone, killed):
        if folder.exists():
            raise SystemExit(f"{folder} exists; remove it (the demo starts from scratch)")
    seconds = {"alone": run(alone, args.steps, args.every)}
    seconds["killed"] = killed_run(killed, args.steps, args.every, at)
    seconds["rerun"] = run(killed, args.steps, args.every)
    metrics = {
        n: json.loads((f / "metrics.json").read_text())
        for n, f in (("alone", alone), ("resumed", killed))
    }
    resumed_from = metrics["resumed"]["metrics"]["resumed_from_step"]
    found = figure(
        history(alone, args.steps), history(killed, args.steps), resumed_from, args.figures
    )
    rel = {
        n: m["metrics"]["train_relative_mean"]
        for n, m in metrics.items()
        if "train_relative_mean" in m["metrics"]
    }
    numbers = {n: m["verdict"] for n, m in metrics.items()}
    print(json.dumps({"resumed_from_step": resumed_from, "verdicts": numbers, "train_relative_mean": rel,
                      "seconds": {k: round(v, 1) for k, v in seconds.items()}, **found}))  # fmt: skip


if __name__ == "__main__":
    main()
