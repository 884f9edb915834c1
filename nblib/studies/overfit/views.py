"""What notebook 01 shows of its engine (:mod:`nblib.studies.overfit.study`): the set-up
described, the trained policy kept for notebook 02, the error table, the figures (drawn by
:mod:`nblib.studies.overfit.plots` and :mod:`nblib.studies.training_plots`) and the chunk
browser. These take the study's objects; the engine never calls them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

import nblib.studies.overfit.plots as overfit_plots
from nblib.errors import NblibError
from nblib.models.vla import Samples
from nblib.studies import long_runs
from nblib.studies.overfit.study import (
    Assessment,
    OpenLoop,
    OverfitConfig,
    OverfitStudy,
    judge,
    learning_curve,
)
from nblib.train import History
from nblib.verdict import Estimate
from nblib.versions import software_record


def cache_summary(study: OverfitStudy) -> str:
    """The feature cache's hits and misses so far, or that it is off."""
    if study.cache is None:
        trains = "LoRA trains the backbone" if study.config.lora else "its last layers train"
        off = trains if study.setup.config.trains_backbone else "cache=False"
        if study.setup.plugin is not None:
            off = "a plug-in policy reads the frames itself"
        return f"feature cache: off ({off})"
    return f"feature cache: {study.cache.stats()}"


def save_policy(study: OverfitStudy, history: History | None, run_dir: str | Path) -> Path:
    """Keep the trained policy in ``run_dir/policy/`` (nblib's VLA or the plug-in, see
    :meth:`nblib.studies.setup.TrainingSetup.save`): notebook 02 and ``nblib eval`` load
    it from there, with identical predictions."""
    cfg = study.config
    meta = {
        "notebook": "01_overfit_diagnosis",
        "manifest": cfg.manifest,
        "train_demos": study.split.train,
        "val_demos": study.split.val,
        "steps": len(history) if history is not None else 0,
        "head": cfg.head,
        "geometry": cfg.geometry,
        "control": cfg.control,
        "seed": cfg.seed,
        # what closed-loop evaluation must render for it (nblib.eval.policies)
        "cameras": list(study.store.cameras),
        "image_size": int(study.train.images[0][0].shape[0]),
        # the model stack it was trained with (the doctor's environment check compares)
        "software": software_record(),
    }
    generator = _generator_settings(cfg.manifest)
    if generator and "color_bits" in generator:
        meta["color_bits"] = int(generator["color_bits"])
    return study.setup.save(study.model, Path(run_dir) / "policy", meta)


def _generator_settings(manifest: str) -> dict | None:
    from nblib.data.manifest import load_manifest

    try:
        return load_manifest(manifest).generator
    except NblibError:  # a path to a plain file, not a manifest: nothing recorded
        return None


def describe(study: OverfitStudy) -> str:
    """Which demos are fitted, what the model is, and what trains (frozen parameters are
    counted apart)."""
    cfg = study.config
    val = len(study.val) if study.val is not None else 0
    if study.setup.plugin is not None:
        model = (
            f"plug-in policy {cfg.policy!r} ({type(study.model).__name__}), policy_kwargs "
            f"{cfg.policy_kwargs}; control {cfg.control!r}"
        )
    else:
        model = (
            f"backbone {cfg.backbone!r}: hidden size {study.backbone.hidden_size}, "
            f"LoRA {'on' if cfg.lora else 'off'}; "
            + (f"last {cfg.unfreeze_layers} VLM layers trained; " if cfg.unfreeze_layers else "")
            + f"features {cfg.features!r}; head {cfg.head!r}; "
            f"control {cfg.control!r}"
            + (f"; geometry {cfg.geometry!r}" if cfg.geometry != "none" else "")
        )
    lines = [
        f"train demos {study.split.train} -> {len(study.train)} samples; "
        f"val demos {study.split.val} -> {val} samples",
        model,
        pd.DataFrame(parameter_rows(study)).to_string(index=False),
    ]
    return "\n".join(lines)


def parameter_rows(study: OverfitStudy) -> list[dict]:
    from nblib.models.policy import parameter_table

    return parameter_table(study.setup.parts(study.model))


def error_table(study: OverfitStudy, assessment: Assessment) -> pd.DataFrame:
    """Per action dimension: action std, first-step and chunk MAE and MAE/std on the
    training demos (and MAE/std on the validation demos)."""
    train, val = assessment.train, assessment.val
    table = pd.DataFrame(
        {
            "action std": np.array(study.stats.actions.std),
            "train first-step MAE": train.errors["first_step_mae"],
            "train chunk MAE": train.errors["chunk_mae"],
            "train MAE/std": train.errors["relative_chunk"],
        },
        index=study.action_names,
    )
    if val is not None:
        table["val MAE/std"] = val.errors["relative_chunk"]
    return table


# ----------------------------------------------------------------------------- figures
# The drawing lives in nblib.studies.overfit.plots; these take the study's objects.


def _finals(assessment: Assessment) -> tuple[Estimate, Estimate | None]:
    val = assessment.val.relative if assessment.val is not None else None
    return assessment.train.relative, val


def plot_training(history: History, assessment: Assessment, config: OverfitConfig):
    """The loss next to what was learned: the mean chunk MAE/std on train and val during
    training and at the end, against the PASS / PARTIAL bars."""
    train, val = _finals(assessment)
    curve = learning_curve(history)
    return overfit_plots.plot_training(history, curve, train, val, config.thresholds(), config.head)


def caption_training(history: History, assessment: Assessment, config: OverfitConfig) -> str:
    train, val = _finals(assessment)
    label = judge(train, config.thresholds())
    return overfit_plots.caption_training(
        history, learning_curve(history), train, val, config.thresholds(), label
    )


def plot_dim_errors(study: OverfitStudy, assessment: Assessment):
    """Chunk MAE/std per action dimension on train and val, and the verdict's mean with
    its interval against the PASS / PARTIAL bars."""
    cfg, (train, val) = study.config, _finals(assessment)
    limits = cfg.thresholds()
    val_errors = assessment.val.errors if assessment.val is not None else None
    return overfit_plots.plot_dim_errors(
        study.action_names,
        assessment.train.errors,
        train,
        val_errors,
        val,
        limits,
        judge(train, limits),
        cfg.control,
    )


def caption_dim_errors(study: OverfitStudy, assessment: Assessment) -> str:
    (train, val), limits = _finals(assessment), study.config.thresholds()
    return overfit_plots.caption_dim_errors(
        study.action_names, assessment.train.errors, train, val, limits, judge(train, limits)
    )


def example_rows(study: OverfitStudy, assessment: Assessment, n: int) -> list:
    """``n`` random samples to draw (reproducible for the config's seed): half of them
    (rounded up) from the training demos, the rest from the validation demos, each with
    at least half its chunk inside the episode
    (:func:`nblib.studies.overfit.plots.drawable`)."""
    from nblib.data.splits import sample_indices
    from nblib.studies.overfit.plots import drawable

    sets = [("train", study.train, assessment.train)]
    if study.val is not None and assessment.val is not None:
        sets.append(("val", study.val, assessment.val))
    counts = [n - n // 2, n // 2] if len(sets) == 2 else [n]
    rows = []
    for (name, samples, result), k in zip(sets, counts, strict=True):
        pool = drawable(samples.mask)
        picked = [int(pool[i]) for i in sample_indices(len(pool), k, study.config.seed)]
        rows += [_row(study, name, samples, result, i) for i in picked]
    return rows


def _row(study: OverfitStudy, split: str, samples: Samples, result: OpenLoop, i: int):
    from nblib.studies.overfit.plots import ChunkRow

    true = study.stats.actions.unnormalize(samples.actions[i], "mean_std")
    label = f"{samples.demo[i]} t={int(samples.t[i])}"
    std = np.asarray(study.stats.actions.std, dtype=float)
    return ChunkRow(split, label, result.pred[i], np.asarray(true), samples.mask[i], std)


def plot_predicted_chunks(study: OverfitStudy, rows: list):
    """Predicted (dashed) vs true (solid) chunks of ``rows`` (:func:`example_rows`)."""
    from nblib.studies.overfit.plots import plot_chunks

    return plot_chunks(rows, study.action_names)


def caption_predicted_chunks(study: OverfitStudy, rows: list) -> str:
    from nblib.studies.overfit.plots import caption_chunks

    return caption_chunks(rows, study.action_names, study.config.horizon)


def chunk_browser(study: OverfitStudy, train: OpenLoop):
    """ipywidgets slider over the training samples showing predicted against true chunks
    (``interactive=True`` in JupyterLab)."""
    import ipywidgets as w
    import matplotlib.pyplot as plt

    def show(i=0):
        plot_predicted_chunks(study, [_row(study, "train", study.train, train, i)])
        plt.show()

    return w.interactive(show, i=w.IntSlider(min=0, max=len(study.train) - 1, description="sample"))


def plot_gradient_flow(history: History):
    """Each module's gradient norm over training (:mod:`nblib.studies.training_plots`)."""
    from nblib.studies.training_plots import plot_gradient_flow as plot

    return plot(history, long_runs.gradient_reasons(history))


def caption_gradient_flow(history: History) -> str:
    from nblib.studies.training_plots import caption_gradient_flow as caption

    return caption(history)


def plot_cost(run_cost: long_runs.Cost, history: History):
    """Step time and throughput, the projected wall time, memory by phase."""
    from nblib.studies.training_plots import plot_cost as plot

    return plot(history, run_cost.projection, run_cost.memory)


def caption_cost(run_cost: long_runs.Cost, history: History) -> str:
    from nblib.studies.training_plots import caption_cost as caption

    return caption(history, run_cost.projection, run_cost.memory)
