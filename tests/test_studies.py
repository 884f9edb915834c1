"""The study engines (nblib.studies) end to end on a tiny dataset, without a notebook: each
config mirrors its notebook's parameters cell, rejects bad values, and its steps produce a
Verdict and JSON-able metrics. (nbval runs the notebooks themselves on the embedded data.)"""

from __future__ import annotations

import dataclasses

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

from nblib.errors import DataError, ParameterError
from nblib.models import vla
from nblib.models.vla import load_policy
from nblib.paths import find_repo_root
from nblib.run.params import notebook_parameters
from nblib.run.report import to_jsonable
from nblib.studies import card, comparison, doctor, lr, overfit, probes, tokens
from nblib.studies.setup import train_policy
from nblib.verdict import Verdict

NOTEBOOKS = find_repo_root() / "notebooks"
CONFIGS = {
    "00_dataset_card.ipynb": card.CardConfig,
    "01_overfit_diagnosis.ipynb": overfit.OverfitConfig,
    "02_conditioning_probes.ipynb": probes.ProbesConfig,
    "03_lr_schedule_study.ipynb": lr.LRConfig,
    "04_token_compass.ipynb": tokens.CompassConfig,
    "05_libero_comparison.ipynb": comparison.ComparisonConfig,
    "06_train_eval_consistency.ipynb": doctor.DoctorConfig,
}


def small_overfit(manifest: str, **kw) -> overfit.OverfitConfig:
    """Two training demos (unless given) and one validation demo, 4-step chunks."""
    return overfit.OverfitConfig(**({"demos": 2} | kw), manifest=manifest, val_demos=1, horizon=4)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_each_config_field_is_a_notebook_parameter_with_the_same_default(name):
    spec = notebook_parameters(NOTEBOOKS / name)
    config = CONFIGS[name].from_params({k: v["default"] for k, v in spec.items()})
    assert config == CONFIGS[name]()  # one set of defaults, in the notebook and the engine
    assert set(config.params()) <= set(spec)


def test_card_study_end_to_end(tiny_manifest):
    config = card.CardConfig(manifest=tiny_manifest, val_fraction=0.34)
    study = card.prepare(config)
    assert "tiny.h5  OK" in card.summary_text(study)
    assert list(card.demos_table(study.store).index) == ["reach", "push"]  # order of first demo
    leak = card.split_and_check_leakage(study)
    assert len(leak.split.val) == 2 and leak.report.val_frames > 0
    strips = card.frame_strips(study)
    assert set(strips) == {"corner", "behindGripper"}
    for fig, _ in [*strips.values(), card.leakage_examples(study, leak)]:
        plt.close(fig)
    evidence = card.evidence(study, leak)
    near = evidence.near_fraction
    assert near.value == pytest.approx(leak.report.near_fraction)
    assert near.low <= near.value <= near.high
    assert "bootstrap over 2 validation demos" in near.method
    verdict = card.verdict(evidence, config)
    assert isinstance(verdict, Verdict) and verdict.label in ("PASS", "WARN")
    assert set(verdict.numbers) == {
        "leak_exact",
        "leak_near_fraction",
        "leak_near_fraction_low",
        "leak_near_fraction_high",
        "failed_demos",
    }
    metrics = to_jsonable(card.metrics(evidence))
    assert metrics["val_demos"] == 2 and metrics["tasks"] == 2


def test_card_verdict_warns_when_the_near_share_may_exceed_a_half():
    from nblib.data.leakage import LeakageReport
    from nblib.data.splits import Split
    from nblib.verdict import Estimate

    report = LeakageReport("corner", 1.0, 32, 100, 0, 45)
    config = card.CardConfig()

    def judged(low, high, failed=()):
        near = Estimate(0.45, low, high, "test")
        split = Split(["a"], ["b"], 0)
        return card.verdict(card.CardEvidence(3, 30, 1, failed, split, report, near), config)

    assert judged(0.40, 0.49).label == "PASS"
    straddling = judged(0.30, 0.60)  # the point estimate alone (0.45) would pass
    assert straddling.label == "WARN" and "[30%, 60%]" in straddling.reasons[0]
    assert judged(0.40, 0.49, failed=("demo_3",)).label == "WARN"


def test_card_config_rejects_bad_values():
    for bad, field in (
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"train_demos": 0}, "train_demos"),
        ({"strip_frames": 0}, "strip_frames"),
        ({"leakage_threshold": -1}, "leakage_threshold"),
    ):
        with pytest.raises(ParameterError, match=rf"CardConfig\.{field}="):
            card.CardConfig(**bad)


def test_overfit_study_end_to_end(tiny_manifest):
    config = small_overfit(tiny_manifest, head="regression", steps=5, batch_size=8, warmup_steps=1)
    study = overfit.prepare(config, progress=False)
    assert study.store.subset(study.split.train).demos == study.split.train
    assert "train demos" in overfit.describe(study) and "action expert" in overfit.describe(study)
    assert overfit.cache_summary(study).startswith("feature cache: {")
    with pytest.raises(dataclasses.FrozenInstanceError):
        study.model = None  # cells never assign engine state
    history = overfit.fit(study, progress=False)
    assert len(history) == 5
    assessment = overfit.assess(study)
    assert assessment.train.pred.shape == study.train.actions.shape
    assert list(overfit.error_table(study, assessment).columns)[-1] == "val MAE/std"
    rows = overfit.example_rows(study, assessment, 2)
    assert [r.split for r in rows] == ["train", "val"]
    for fig, _ in (
        overfit.plot_training(history, assessment, config),
        overfit.plot_dim_errors(study, assessment),
        overfit.plot_predicted_chunks(study, rows),
    ):
        plt.close(fig)
    assert len(overfit.learning_curve(history)["step"]) == 5  # every step of a 5-step run
    browser = overfit.chunk_browser(study, assessment.train)  # interactive=True's slider
    assert browser.children[0].max == len(study.train) - 1
    plt.close("all")
    evidence = overfit.evidence(study, history, assessment)
    verdict = overfit.verdict(evidence, config)
    assert verdict.label in ("PASS", "PARTIAL", "FAIL")
    rel = assessment.train.relative
    assert rel.low <= rel.value <= rel.high and "bootstrap over" in rel.method
    metrics = to_jsonable(overfit.metrics(evidence))
    assert metrics["steps"] == 5 and metrics["train_samples"] == len(study.train)


def test_overfit_evaluations_during_training_leave_it_unchanged(tiny_manifest):
    # the flow head draws its noise and times from the global RNG: an evaluation that
    # consumed it would change every later step; its last point is the final assessment
    config = small_overfit(tiny_manifest, steps=6, batch_size=8, warmup_steps=1)
    study = overfit.prepare(config, progress=False)
    measured = overfit.fit(study, progress=False)
    curve = overfit.learning_curve(measured)
    assert curve["step"] == [1, 2, 3, 4, 5, 6] and "val_relative_mean" in curve
    final = overfit.assess(study).train.relative.value
    assert curve["train_relative_mean"][-1] == pytest.approx(final, rel=1e-9)
    plain = train_policy(
        study.setup, study.setup.new_model(config.seed), config.train_config(False), 8
    )
    np.testing.assert_allclose(measured.column("loss"), plain.column("loss"), rtol=1e-6)


def test_saved_overfit_policy_predicts_identically(tiny_manifest, tmp_path):
    config = small_overfit(tiny_manifest, steps=3, warmup_steps=1)
    exp = overfit.prepare(config, progress=False)
    history = overfit.fit(exp, progress=False)
    folder = overfit.save_policy(exp, history, tmp_path)
    assert folder == tmp_path / "policy" and (folder / "policy.pt").is_file()
    loaded = load_policy(tmp_path)  # the run folder, as notebook 02 is given it
    assert loaded.features == "last" and loaded.meta["train_demos"] == exp.split.train
    assert loaded.stats == exp.stats and loaded.meta["steps"] == 3
    want = vla.predict_all(exp.model, exp.val, seed=3)
    got = vla.predict_all(loaded.model, exp.val, seed=3)
    np.testing.assert_array_equal(got, want)  # the flow head's noise is drawn from the seed
    with pytest.raises(DataError, match="no saved policy"):
        load_policy(tmp_path / "elsewhere")


def test_saved_lora_policy_keeps_its_adapter(tiny_manifest, tmp_path):
    config = small_overfit(
        tiny_manifest,
        demos=1,
        steps=2,
        warmup_steps=0,
        lora=True,
        lora_rank=2,
        lr=0.05,
        batch_size=4,
    )
    exp = overfit.prepare(config, progress=False)
    history = overfit.fit(exp, progress=False)
    folder = overfit.save_policy(exp, history, tmp_path)
    assert (folder / "lora_adapter" / "adapter_config.json").is_file()
    loaded = load_policy(folder)
    assert loaded.backbone.lora_enabled and not loaded.backbone.requires_grad
    samples = exp.val
    np.testing.assert_allclose(
        vla.predict_all(loaded.model, samples, seed=1),
        vla.predict_all(exp.model, samples, seed=1),
        rtol=0,
        atol=1e-6,
    )


def test_token_compass_study_end_to_end(tiny_manifest, tmp_path):
    config = tokens.CompassConfig(
        manifest=tiny_manifest,
        latent_model="train",
        stride=2,
        train_steps=3,
        codebook_size=4,
        strides_compared=[2],
        pairs_per_stride=10,
        umap=False,
        gallery_tokens=2,
        gallery_per_token=1,
    )
    study = tokens.prepare(config)
    made = tokens.make_tokens(study, tmp_path)
    assert (tmp_path / "latent_action_model.pt").is_file() and made.checkpoint is not None
    assert "pairs with frames: " in tokens.describe(made)
    assert "training pairs" in tokens.training_summary(made)
    table = tokens.add_motion(study, made.table)
    assert "ref_dx" in table.df.columns and "ref_dx" not in made.table.df.columns  # a new table
    strides = tokens.stride_check(study, table)
    assert list(strides["camera"]) == ["corner", "behindGripper"]
    figures = tokens.compass_figures(study, table)
    assert list(figures) == [
        "token_compass",
        "token_compass_relative",
        "flow_scatter",
        "polar_histograms",
    ]
    views = tokens.analyse(study, table)
    assert "across datasets" in views.summaries
    assert len(tokens.views_table(views)) == len(tokens.study.VIEW_KEYS)
    assert "bootstrap over" in views.estimates["concentration"].method
    ablation = tokens.order_ablation(study, made)
    assert list(tokens.ablation_table(ablation).index)[0] == "original"
    assert tokens.umap_figures(study, made) == {}  # umap=False
    drawn = [*figures.values(), tokens.gallery(study, table), tokens.plot_codebook_usage(table)]
    for fig, _ in drawn:
        plt.close(fig)
    evidence = tokens.evidence(made, views, strides, ablation)
    verdict = tokens.verdict(evidence, config)
    assert isinstance(verdict, Verdict)
    assert "direction_resultant_length_adjusted_low" in verdict.numbers or (
        verdict.label == "UNDETERMINED"
    )
    metrics = to_jsonable(tokens.metrics(evidence))
    assert metrics["pairs"] == len(table) and metrics["latent_model"]["steps"] == 3
    # the checkpoint it saved tokenises the same way when named as latent_model, and
    # carries its training curves
    again = tokens.make_tokens(
        tokens.prepare(dataclasses.replace(config, latent_model=str(made.checkpoint))),
        tmp_path / "again",
    )
    assert list(again.table.ids) == list(made.table.ids)
    assert len(
        again.history
    ) == 3 and "latent_action_model.pt (3 steps, seed 0, trained on tiny.h5)" in tokens.describe(
        again
    )
    assert not (tmp_path / "again").exists()  # nothing trained, nothing saved
    with pytest.raises(
        ParameterError,
        match=r"CompassConfig\.codebook_size=8.*expected 4, the codebook_size of latent_model",
    ):
        tokens.make_tokens(
            tokens.prepare(
                dataclasses.replace(config, latent_model=str(made.checkpoint), codebook_size=8)
            )
        )


def test_compass_default_tokeniser_is_the_bundled_model():
    from nblib.models.latent import load_latent_model

    config = tokens.CompassConfig()
    path = tokens.study.latent_model_path(config.latent_model)
    model = load_latent_model(path)  # committed with the repository, loads offline
    assert model.config.codebook_size == config.codebook_size
    assert model.config.seq_len == config.seq_len
    assert model.meta["steps"] == config.train_steps and model.meta["seed"] == config.seed
    assert model.meta["stride"] == config.stride and model.meta["camera"] == config.cameras
    assert len(model.history) == config.train_steps
    with pytest.raises(DataError, match="no such latent-action model file"):
        load_latent_model(tokens.study.latent_model_path("missing.pt"))


def test_compass_config_rejects_bad_values():
    for bad, field in (
        ({"motion": "velocity"}, "motion"),
        ({"cameras": []}, "cameras"),
        ({"weighting": "median"}, "weighting"),
        ({"strides_compared": [0]}, "strides_compared"),
        ({"codebook_size": 1}, "codebook_size"),
        ({"latent_model": ""}, "latent_model"),
        ({"latent_model": None}, "latent_model"),
    ):
        with pytest.raises(ParameterError, match=rf"CompassConfig\.{field}="):
            tokens.CompassConfig(**bad)


def probes_config(manifest, **kw) -> probes.ProbesConfig:
    small = dict(
        manifest=manifest,
        samples=12,
        train_steps=5,
        train_demos=2,
        isolation_samples=16,
        isolation_steps=30,
        umap=False,
    )
    return probes.ProbesConfig(**(small | kw))


def test_probes_study_end_to_end(tiny_manifest):
    config = probes_config(tiny_manifest)
    study = probes.prepare(config, progress=False)
    assert len(study.samples) == 12 and set(study.info["task"]) == {"reach", "push"}
    assert probes.describe(study).startswith("backbone 'tiny' with a flow policy")
    reps = probes.collect(study)
    assert list(reps)[:3] == ["images", "vlm_last", "vlm_mean"]
    assert "expert_1" in reps and "condition" in reps
    table = probes.summaries(study, reps)
    assert pd.isna(table.loc["images", "cka_with_previous"])  # nothing before the images
    assert 0.0 <= table.loc["condition", "cka_with_previous"] <= 1.0
    cond = table.loc["condition"]
    assert cond["spread_low"] <= cond["spread"] <= cond["spread_high"]
    assert pd.isna(table.loc["images", "spread_low"])  # raw pixels are never judged
    checks = probes.pipeline_checks(study)  # fresh adapters reach the output; grads where due
    assert checks["ok"].all(), checks.to_string()
    isolation = probes.head_isolation(config)
    assert isolation["regression"]["mae"] < isolation["regression"]["first_loss"]
    variants = probes.instruction_variants(study)
    # the tiny file has one phrasing per task: no paraphrase variant
    assert list(variants) == ["other task", "shuffled", "empty"]
    assert all(len(v) == 12 for v in variants.values()) and set(variants["empty"]) == {""}
    language = probes.language_reliance(study)
    lt = language.table
    assert lt.loc["empty", "text_similarity"] < lt.loc["shuffled", "text_similarity"]
    empty = language.action_change["empty"]
    assert empty.low <= lt.loc["empty", "action_change_std"] == empty.value <= empty.high
    for fig, _ in (probes.cosine_heatmaps(study, reps), probes.collapse_bars(table, config)):
        plt.close(fig)
    evidence = probes.evidence(study, table, language, checks, isolation)
    verdict = probes.verdict(evidence, config)
    assert verdict.label in ("DIVERSE", "BOTTLENECK", "COLLAPSED")
    assert "action_change_empty" in verdict.numbers
    assert "its instruction (threshold" in verdict.reasons[-1]
    metrics = to_jsonable(probes.metrics(evidence))
    assert metrics["samples"] == 12 and set(metrics["stages"]) == set(reps)
    assert isinstance(metrics["stages"]["condition"]["dims"], int)


def test_probes_name_the_stage_where_the_image_is_ignored(tiny_manifest):
    """Known answer: a projector whose output no longer depends on its input (the image
    never reaches the expert) is collapsed there; the condition still varies through
    proprio (BOTTLENECK); with proprio cut too, the condition collapses (COLLAPSED)."""
    config = probes_config(tiny_manifest, collapse_spread=1e-6)
    study = probes.prepare(config, progress=False)
    policy = study.model.policy
    with torch.no_grad():
        policy.projector.net[-1].weight.zero_()  # output = its bias, whatever the features
    table = probes.summaries(study, probes.collect(study))
    verdict = probes.verdict(probes.evidence(study, table), config)
    assert verdict.label == "BOTTLENECK" and verdict.numbers["first_collapsed_stage"] == "projector"
    assert "collapses at projector" in verdict.reasons[0]
    with torch.no_grad():
        policy.proprio.net[-1].weight.zero_()
    table = probes.summaries(study, probes.collect(study))
    verdict = probes.verdict(probes.evidence(study, table), config)
    assert verdict.label == "COLLAPSED"
    assert probes.collapse(table, config)["collapsed"][-1] == "condition"


def test_probes_read_a_policy_saved_by_notebook_01(tiny_manifest, tmp_path):
    config = small_overfit(tiny_manifest, steps=3, warmup_steps=1)
    exp = overfit.prepare(config, progress=False)
    history = overfit.fit(exp, progress=False)
    overfit.save_policy(exp, history, tmp_path)
    study = probes.prepare(probes_config(tiny_manifest, policy=str(tmp_path)), progress=False)
    assert study.source.startswith("saved policy") and study.history is None
    probes.collect(study)
    assert probes.pipeline_checks(study)["ok"].all()  # horizon-4 chunks for its loss


def test_probes_of_an_infobot_policy_report_its_mi_estimate(tiny_manifest, tmp_path):
    config = small_overfit(tiny_manifest, steps=3, warmup_steps=1, head="infobot", mi_beta=0.1)
    exp = overfit.prepare(config, progress=False)
    history = overfit.fit(exp, progress=False)
    assert {"action", "mi", "mi_fit"} <= set(history[-1])  # logged by the training loop
    overfit.save_policy(exp, history, tmp_path)
    study = probes.prepare(probes_config(tiny_manifest, policy=str(tmp_path)), progress=False)
    reps = probes.collect(study)
    assert "expert_0" not in reps and "condition" in reps
    mi = probes.mi_estimate(study)
    assert mi is not None and np.isfinite(mi) and mi <= np.log(len(study.samples)) + 1e-6
    assert probes.pipeline_checks(study)["ok"].all()  # the estimator learns from its own fit


def test_probes_on_a_vlm_checkpoint_directory_and_the_stage_browser(tiny_manifest, tmp_path):
    """policy = a local VLM checkpoint (here the tiny model saved the way a real one is):
    a policy is trained on it here; the interactive picker redraws for every choice."""
    from nblib.models.backbone import Backbone

    checkpoint = Backbone.tiny().save_pretrained(tmp_path / "vlm")
    study = probes.prepare(
        probes_config(tiny_manifest, policy=str(checkpoint), train_steps=2), progress=False
    )
    assert study.source.startswith(f"backbone {str(checkpoint)!r}") and len(study.history) == 2
    points = probes.embeddings(study, probes.collect(study))
    assert list(points) == ["pca"]  # umap=False
    browser = probes.stage_browser(study, points)
    stage, method, colour = browser.children[:3]
    assert stage.value == "condition" and method.value == "pca"
    for value in ("images", "proprio"):
        stage.value = value
    colour.value = "timestep"
    plt.close("all")
