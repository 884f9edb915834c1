"""The LR-schedule study (notebook 03's engine): schedules, the sweep grid, live runs in
worker processes, imported logs, the suggestion heuristic, `nblib lr analyze`, and the
notebook itself on real imported logs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nblib.cli import main
from nblib.errors import ParameterError
from nblib.lr_schedule import lr_curve
from nblib.paths import find_repo_root
from nblib.run import report, runner
from nblib.studies import lr
from nblib.train import TrainConfig

LOGS = Path(__file__).parent / "fixtures" / "training_logs"
WANDB = LOGS / "wandb_chart_nanogpt.csv"  # a real W&B export, 8 runs (see its README)
NANOGPT = LOGS / "nanogpt_train.log"  # a real nanoGPT stdout whose loss turns NaN


def seed003_lr(step: int, total: int, warmup: int, base_lr: float, min_lr: float) -> float:
    """Seed 003's hand-written schedule, as its log gives it: a linear warmup scale times a
    cosine scale with a min_lr floor (progress counted after warmup)."""
    warmup_scale = min(1.0, step / warmup) if warmup else 1.0
    progress = max(0.0, (step - warmup) / max(1, total - warmup))
    min_lr_ratio = min_lr / base_lr
    cosine_scale = min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1.0 + math.cos(progress * math.pi))
    return base_lr * warmup_scale * cosine_scale


def test_seed003_cosine_with_floor_is_the_library_schedule():
    total, warmup, lr_, floor = 15_834, 200, 3e-4, 3e-5
    library = lr_curve(
        TrainConfig(
            steps=total,
            lr=lr_,
            schedule="cosine_with_min_lr",
            warmup_steps=warmup,
            min_lr_rate=floor / lr_,
        )
    )
    hand = np.array([seed003_lr(s, total, warmup, lr_, floor) for s in range(total)])
    np.testing.assert_allclose(library, hand, rtol=1e-9, atol=1e-15)
    assert library[-1] > floor * 0.999  # the floor holds to the end


def test_exponential_ramp_is_the_range_test_schedule():
    lrs = lr_curve(TrainConfig(steps=7, lr=1.0, schedule="exponential", min_lr_rate=1e-6))
    np.testing.assert_allclose(np.log10(lrs), np.linspace(-6, 0, 7))
    with pytest.raises(ParameterError, match="min_lr_rate"):
        TrainConfig(steps=7, lr=1.0, schedule="exponential", min_lr_rate=0.0)


def test_grid_names_each_run_once_and_skips_floors_without_a_floor():
    config = lr.LRConfig(
        schedules=["cosine", "cosine_with_min_lr"],
        peak_lrs=[1e-4, 3e-4],
        floors=[0.1, 0.05],
        seeds=[0, 1],
    )
    specs = lr.sweep_specs(config)
    names = [s["run"] for s in specs]
    # cosine: 2 LRs x 2 seeds (no floor); with floor: 2 LRs x 2 floors x 2 seeds
    assert len(names) == len(set(names)) == 4 + 8
    assert "cosine lr=0.0001 wu=40" in names and "cosine lr=0.0001 wu=40 s=1" in names
    assert "cosine_with_min_lr lr=0.0003 wu=40 floor=0.05 s=1" in names
    assert all(s["min_lr_rate"] == 0 for s in specs if s["schedule"] == "cosine")
    preview = lr.lr_preview(lr.prepare(config))
    assert set(preview["run"]) == set(names) and len(preview) == 12 * config.steps
    for bad, field in (
        ({"schedules": ["exponential"]}, "schedules"),
        ({"peak_lrs": []}, "peak_lrs"),
        ({"warmups": [10_000]}, "warmups"),
        ({"range_min_lr": 2.0}, "range_min_lr"),
    ):
        with pytest.raises(ParameterError, match=rf"LRConfig\.{field}="):
            lr.LRConfig(**bad)


def test_live_sweep_in_worker_processes_finds_a_divergence(tmp_path):
    """Two runs in two spawned workers: a sane LR and one a thousand times too high; the
    detectors flag the second (NaN or a blow-up: either, depending on the machine's
    kernels) and the heuristic lowers its peak."""
    config = lr.LRConfig(
        schedules=["constant"],
        peak_lrs=[1e-3, 3.0],
        warmups=[0],
        steps=60,
        demos=1,
        grad_clip=None,
        range_test_steps=0,
        workers=2,
        smoothing=5,
        plateau_window=20,
    )
    study = lr.prepare(config)
    curves = lr.loss_curves(study, progress=False)
    assert list(curves.columns) == ["run", "step", "loss", "lr", "grad_norm"]
    runs = lr.analyse(study, curves)
    sane, wild = "constant lr=0.001 wu=0", "constant lr=3 wu=0"
    assert not runs.loc[sane, "diverged"] and runs.loc[wild, "diverged"]
    assert runs.loc[wild, "divergence_reason"] in ("non_finite", "blow_up")
    if runs.loc[wild, "divergence_reason"] == "blow_up":  # a NaN is a broken run instead
        assert runs.loc[wild, "next"]["lr"] == pytest.approx(0.9)
        assert "lower the peak" in runs.loc[wild, "suggestion"]
    assert lr.best_run(runs) == sane
    baseline = lr.mean_action_loss(study)
    assert 0.5 < baseline < 1.5  # normalised actions: about their variance, 1
    evidence = lr.evidence(study, runs, baseline_loss=baseline)
    verdict = lr.verdict(evidence, config)
    assert verdict.label in ("FOUND", "STALLED") and verdict.numbers["diverged"] == 1
    assert verdict.numbers["mean_action_loss"] == baseline
    table = lr.matched_table(study, curves, runs)  # a diverged run is never compared
    assert set(table["run"]) == {sane}
    report.to_jsonable(lr.metrics(evidence))


def test_the_verdict_reads_the_improvement_interval_after_warmup():
    """Known answers on hand-made curves: a run that keeps falling is learning, a flat
    one is not, and a noisy one whose interval straddles the threshold is named."""
    steps = np.arange(400)
    rng = np.random.default_rng(0)
    falling = 2.0 * np.exp(-steps / 150) + 0.5 + 0.01 * rng.normal(size=400)
    flat = 1.0 + 0.01 * rng.normal(size=400)
    config = lr.LRConfig(log_files=["unused.csv"], log_warmup_steps=40)
    study = lr.LRStudy(config, ())
    table = pd.concat(
        [
            pd.DataFrame({"run": name, "step": steps, "loss": loss, "lr": 1e-3, "grad_norm": 1.0})
            for name, loss in (("falling", falling), ("flat", flat))
        ]
    )
    runs = lr.analyse(study, table)
    assert runs.loc["falling", "gain_low"] > 0.01 > runs.loc["flat", "gain_high"]
    verdict = lr.verdict(lr.evidence(study, runs), config)
    assert verdict.label == "FOUND" and verdict.numbers["learning_after_warmup"] == 1
    verdict = lr.verdict(lr.evidence(study, runs.drop(index="falling")), config)
    assert verdict.label == "STALLED"
    # a run whose improvement interval straddles the threshold is named, not counted
    straddling = runs.assign(gain=0.012, gain_low=0.005, gain_high=0.02)
    verdict = lr.verdict(lr.evidence(study, straddling), config)
    assert verdict.label == "STALLED"
    assert any("straddles the threshold" in r for r in verdict.reasons)
    # a point estimate above the bar is not enough: the interval must clear it
    gain = lr.analysis.gain_after_warmup(steps, falling, 80.0, 100)
    assert gain.low <= gain.value <= gain.high and "bootstrap" in gain.method


def test_suggestions_follow_the_detectors():
    spec = {"schedule": "cosine", "lr": 1e-4, "warmup_steps": 50}
    base = {"diverged": False, "divergence_step": None, "stopped_after_warmup": False}
    text, nxt = lr.suggest(base | {"plateau_step": None}, spec)
    assert "train longer" in text and nxt == {}
    text, nxt = lr.suggest(base | {"plateau_step": 500, "stopped_after_warmup": True}, spec)
    assert "right after warmup" in text and nxt == {
        "schedule": "cosine_with_min_lr",
        "min_lr_rate": 0.1,
    }
    floor = spec | {"schedule": "cosine_with_min_lr"}
    text, nxt = lr.suggest(base | {"plateau_step": 500}, floor)
    assert nxt == {"lr": 1.5e-4} and "x1.5" in text
    text, nxt = lr.suggest(
        base | {"diverged": True, "divergence_step": 80, "plateau_step": None},
        spec,
        {"steepest": 1e-5},
    )
    assert nxt == {"lr": 1e-5, "warmup_steps": 100, "grad_clip": 1.0}  # the range test's lower LR
    assert all("(heuristic)" in t for t in (text,))


def test_imported_logs_real_wandb_export_and_nan_stdout():
    config = lr.LRConfig(log_files=[str(WANDB), str(NANOGPT)], plateau_window=20)
    study = lr.prepare(config)
    assert study.mode == "imported logs" and study.specs == ()
    assert lr.lr_preview(study) is None and lr.mean_action_loss(study) is None
    curves = lr.loss_curves(study)
    runs = lr.analyse(study, curves)
    assert len(runs) == 9 and runs.loc["nanogpt_train", "diverged"]
    assert runs.loc["nanogpt_train", "divergence_step"] == 425  # the loss turns NaN there
    assert runs.loc["nanogpt_train", "divergence_reason"] == "non_finite"
    assert not runs.drop(index="nanogpt_train")["diverged"].any()
    assert lr.range_test(study) is None
    pivot = lr.matched_pivot(lr.matched_table(study, curves, runs))
    assert pivot.shape[1] == 8  # the NaN run is left out of the same-step comparison
    other = lr.prepare(lr.LRConfig(log_files=config.log_files, baseline="nope"))
    with pytest.raises(ParameterError, match="baseline 'nope'"):
        lr.matched_table(other, curves, runs)


def test_lr_analyze_command_prints_one_json_line_per_run(capsys):
    assert (
        main(["lr", "analyze", str(WANDB), str(NANOGPT), "--format", "json", "--window", "20"]) == 0
    )
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 9
    needed = {
        "run",
        "steps",
        "final_loss",
        "plateau_step",
        "diverged",
        "divergence_step",
        "suggestion",
    }
    assert all(needed <= set(line) for line in lines)
    nan_run = next(line for line in lines if line["run"] == "nanogpt_train")
    assert nan_run["diverged"] is True and nan_run["divergence_step"] == 425
    assert all(isinstance(line["diverged"], bool) for line in lines)
    assert main(["lr", "analyze", str(WANDB), "--format", "table"]) == 0
    assert "gpt2" in capsys.readouterr().out
    assert main(["lr", "analyze", str(LOGS / "no_loss_column.csv")]) == 1
    assert "val_loss" in capsys.readouterr().err  # the columns that exist are listed


def test_notebook_on_imported_logs(tmp_path, monkeypatch):
    monkeypatch.delenv(report.RUN_DIR_ENV, raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    out = tmp_path / "run"
    notebook = find_repo_root() / "notebooks" / "03_lr_schedule_study.ipynb"
    runner.run_notebook(
        notebook,
        {"log_files": [str(WANDB), str(NANOGPT)], "plateau_window": 20, "interactive": True},
        out_dir=out,
        progress=False,
        cwd=tmp_path,
    )
    data = json.loads((out / "metrics.json").read_text())
    assert data["verdict"] == "FOUND" and data["metrics"]["mode"] == "imported logs"
    assert data["metrics"]["runs"] == 9 and data["metrics"]["diverged"] == 1
    figures = {Path(f).name for f in data["figures"]}
    assert "loss_curves.png" in figures and "lr_range_test.png" not in figures
    table = pd.DataFrame(data["metrics"]["runs_table"]).set_index("run")
    assert table.loc["nanogpt_train", "divergence_step"] == 425


def test_lr_records_are_the_script_columns_as_plain_json_values():
    from nblib.studies.lr.tables import LR_FIELDS, records_table, run_records

    runs = pd.DataFrame(
        {
            "steps": [51.0, 10.0],
            "final_loss": [np.float64(3.5), np.nan],
            "min_loss": [3.25, np.inf],
            "plateau_step": [np.nan, 40.0],
            "stopped_after_warmup": [np.bool_(False), np.bool_(True)],
            "diverged": [False, True],
            "divergence_step": [None, 7],
            "divergence_reason": [None, "blow_up"],
            "grad_spikes": [np.int64(0), np.int64(2)],
            "suggestion": ["train longer", "lower the LR"],
            "next": [{}, {}],  # analyse's own column, not one of the script's
        },
        index=pd.Index(["r1", "r2"], name="run"),
    )
    records = run_records(runs)
    assert records == [
        {"run": "r1", "steps": 51, "final_loss": 3.5, "min_loss": 3.25, "plateau_step": None,
         "stopped_after_warmup": False, "diverged": False, "divergence_step": None,
         "divergence_reason": None, "grad_spikes": 0, "suggestion": "train longer"},
        {"run": "r2", "steps": 10, "final_loss": None, "min_loss": None, "plateau_step": 40,
         "stopped_after_warmup": True, "diverged": True, "divergence_step": 7,
         "divergence_reason": "blow_up", "grad_spikes": 2, "suggestion": "lower the LR"},
    ]  # fmt: skip
    assert all(list(r) == list(LR_FIELDS) for r in records)
    assert all(type(r[k]) is int for r in records for k in ("steps", "grad_spikes"))
    assert type(records[1]["diverged"]) is bool
    json.dumps(records, allow_nan=False)
    table = records_table(records)
    assert list(table.index) == ["r1", "r2"] and table.loc["r1", "plateau_step"] is None
