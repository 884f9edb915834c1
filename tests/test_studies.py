"""The study engines (nblib.studies) end to end on a tiny dataset, without a notebook: each
config mirrors its notebook's parameters cell, rejects bad values, and its steps produce a
Verdict and JSON-able metrics. (nbval runs the notebooks themselves on the embedded data.)"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
from tiny_data import write_tiny_dataset

from nblib.data.manifest import content_sha256, file_sha256, write_manifest
from nblib.errors import ParameterError
from nblib.paths import find_repo_root
from nblib.run.params import notebook_parameters
from nblib.run.report import to_jsonable
from nblib.studies import card, overfit, tokens
from nblib.verdict import Verdict

NOTEBOOKS = find_repo_root() / "notebooks"
CONFIGS = {
    "00_dataset_card.ipynb": card.CardConfig,
    "01_overfit_diagnosis.ipynb": overfit.OverfitConfig,
    "04_token_compass.ipynb": tokens.CompassConfig,
}


@pytest.fixture(scope="module")
def tiny_manifest(tmp_path_factory):
    """The path of a manifest 'tiny' describing a tiny two-task file next to it."""
    root = tmp_path_factory.mktemp("studies")
    path = write_tiny_dataset(
        root / "tiny.h5",
        lengths=(20, 18, 22, 19, 21, 20),
        tasks=("reach", "push", "reach", "push", "reach", "push"),
        image_size=32,
    )
    raw = {
        "name": "tiny",
        "kind": "dataset",
        "file": str(path),
        "key_mapping": "metaworld",
        "sha256": file_sha256(path),
        "content_sha256": content_sha256(path),
    }
    manifest = write_manifest(raw, root / "tiny.yaml")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NBLIB_CACHE", str(root / "cache"))
        yield str(manifest)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_each_config_field_is_a_notebook_parameter_with_the_same_default(name):
    spec = notebook_parameters(NOTEBOOKS / name)
    config = CONFIGS[name].from_params({k: v["default"] for k, v in spec.items()})
    assert config == CONFIGS[name]()  # one set of defaults, in the notebook and the engine
    assert set(config.params()) <= set(spec)


def test_card_study_end_to_end(tiny_manifest):
    study = card.prepare(card.CardConfig(manifest=tiny_manifest, val_fraction=0.34))
    assert "tiny.h5  OK" in card.summary_text(study)
    assert list(card.demos_table(study.store).index) == ["reach", "push"]  # order of first demo
    with pytest.raises(ParameterError, match="split_and_check_leakage"):
        card.verdict(study)  # a step left out is named
    leak = card.split_and_check_leakage(study)
    assert len(study.split.val) == 2 and leak.val_frames > 0
    strips = card.frame_strips(study)
    assert set(strips) == {"corner", "behindGripper"}
    for fig, _ in [*strips.values(), card.leakage_examples(study)]:
        plt.close(fig)
    verdict = card.verdict(study)
    assert isinstance(verdict, Verdict) and verdict.label in ("PASS", "WARN")
    assert set(verdict.numbers) == {"leak_exact", "leak_near_fraction", "failed_demos"}
    assert card.metrics(study)["val_demos"] == 2
    to_jsonable(card.metrics(study))


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
    config = overfit.OverfitConfig(
        manifest=tiny_manifest,
        demos=2,
        val_demos=1,
        horizon=4,
        head="regression",
        steps=5,
        batch_size=8,
        warmup_steps=1,
    )
    exp = overfit.prepare(config, progress=False)
    assert exp.store.subset(exp.split.train).demos == exp.split.train
    assert "train demos" in overfit.describe(exp) and "action expert" in overfit.describe(exp)
    history = overfit.fit(exp, progress=False)
    assert len(history) == 5
    result = overfit.assess(exp)
    assert result.train_pred.shape == exp.train.actions.shape
    assert list(overfit.error_table(exp, result).columns)[-1] == "val MAE/std"
    for fig, _ in (
        overfit.plot_training(exp),
        overfit.plot_dim_errors(exp, result),
        overfit.plot_predicted_chunks(exp, result, overfit.example_indices(exp, 2)),
    ):
        plt.close(fig)
    browser = overfit.chunk_browser(exp, result)  # interactive=True's slider over samples
    assert browser.children[0].max == len(exp.train) - 1
    plt.close("all")
    assert result.verdict.label in ("PASS", "PARTIAL", "FAIL")
    metrics = to_jsonable(overfit.metrics(exp, result))
    assert metrics["steps"] == 5 and metrics["train_samples"] == len(exp.train)


def test_token_compass_study_end_to_end(tiny_manifest, tmp_path):
    config = tokens.CompassConfig(
        manifest=tiny_manifest,
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
    with pytest.raises(ParameterError, match="make_tokens"):
        tokens.describe(study)
    tokens.make_tokens(study, tmp_path)
    assert (tmp_path / "latent_action_model.pt").is_file()
    assert "pairs with frames: " in tokens.describe(study)
    tokens.add_motion(study)
    strides = tokens.stride_check(study)
    assert list(strides["camera"]) == ["corner", "behindGripper"]
    figures = tokens.compass_figures(study)
    assert list(figures) == [
        "token_compass",
        "token_compass_relative",
        "flow_scatter",
        "polar_histograms",
    ]
    views = tokens.analyse(study)
    assert "across datasets" in views and len(tokens.views_table(study)) == len(
        tokens.study.VIEW_KEYS
    )
    assert tokens.order_ablation(study) is not None
    for fig, _ in [*figures.values(), tokens.gallery(study), tokens.plot_codebook_usage(study)]:
        plt.close(fig)
    verdict = tokens.verdict(study)
    assert isinstance(verdict, Verdict)
    metrics = to_jsonable(tokens.metrics(study))
    assert metrics["pairs"] == len(study.table) and metrics["latent_model"]["steps"] == 3


def test_compass_config_rejects_bad_values():
    for bad, field in (
        ({"motion": "velocity"}, "motion"),
        ({"cameras": []}, "cameras"),
        ({"weighting": "median"}, "weighting"),
        ({"strides_compared": [0]}, "strides_compared"),
        ({"codebook_size": 1}, "codebook_size"),
    ):
        with pytest.raises(ParameterError, match=rf"CompassConfig\.{field}="):
            tokens.CompassConfig(**bad)
