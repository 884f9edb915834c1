"""The figures of 00_dataset_card at paper size: each fits a paper (nblib.plots.
layout_problems), every number it shows is the number the study reports in metrics.json
(show_number against card.metrics and the verdict), and the blocked-view detector and the
saturation shares give known answers on built inputs. No training; seconds."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from nblib.data.leakage import LeakageReport
from nblib.data.splits import Split
from nblib.plots import layout_problems, shown_numbers
from nblib.run.report import to_jsonable
from nblib.studies import card
from nblib.verdict import Estimate

RNG = np.random.default_rng(0)
NAMES = ["dx", "dy", "dz", "gripper"]


def _lookup(metrics: dict, path: tuple[str, ...]):
    node = metrics
    for part in path:
        assert isinstance(node, dict) and part in node, f"metrics lacks {path}"
        node = node[part]
    return node


def assert_shows_metrics(fig, metrics: dict, expected: set[tuple[str, ...]] | None = None):
    """Every shown number equals metrics.json's at its path (and, if given, exactly the
    expected paths are shown)."""
    shown = shown_numbers(fig)
    assert shown, "the figure shows no reported number"
    for path, value in shown.items():
        assert _lookup(metrics, path) == pytest.approx(value, rel=1e-9, abs=1e-12), path
    if expected is not None:
        assert set(shown) == expected


def _scene(size: int = 48) -> np.ndarray:
    """A frame like a wrist view: grey wall over a brown table, textured, a small object."""
    frame = np.empty((size, size, 3), np.uint8)
    frame[: size // 2] = (120, 120, 120)
    frame[size // 2 :] = (110, 80, 60)
    frame = np.clip(frame + RNG.integers(-12, 13, frame.shape), 0, 255).astype(np.uint8)
    frame[size // 2 : size // 2 + 5, 10:15] = (150, 20, 20)
    return frame


def _covered(size: int = 48) -> np.ndarray:
    """The wrist camera covered by a red arm link: one colour with a little texture."""
    frame = np.full((size, size, 3), (142, 30, 30), np.uint8)
    frame[::7, :] = (90, 90, 90)  # rivet lines: texture, not scene
    return frame


# ----------------------------------------------------------------------------- known answers


def test_blocked_mask_flags_a_covered_a_dark_and_a_flat_view_only():
    scenes = [_scene() for _ in range(20)]
    dark = np.full_like(scenes[0], 4)
    flat = np.full_like(scenes[0], 200)  # over-exposed: white, no scene
    frames = np.stack([_covered(), *scenes[:10], dark, *scenes[10:], flat])
    mask = card.blocked_mask(frames)
    assert np.flatnonzero(mask).tolist() == [0, 11, 22]
    # a plain view the camera always has is its usual view, not a blocked one
    wall = np.stack([np.full_like(scenes[0], (120, 120, 120))] * 5)
    wall = np.clip(wall + RNG.integers(-20, 21, wall.shape), 0, 255).astype(np.uint8)
    assert not card.blocked_mask(wall).any()


def test_saturated_shares_count_steps_at_the_clip_limits():
    a = np.zeros((10, 4), np.float32)
    a[:3, 0] = 1.0  # 3 of 20 steps at +1 in dx
    a[3, 0] = 0.99  # near the limit is not at it
    b = np.zeros((10, 4), np.float32)
    b[:, 3] = -1.0  # 10 of 20 steps at -1 in gripper
    sat = card.saturated_actions({"reach": a, "push": b}, NAMES)
    assert sat["dx"] == {"share_at_minus_1": 0.0, "share_at_plus_1": 0.15, "steps": 20}
    assert sat["gripper"]["share_at_minus_1"] == 0.5 and sat["dy"]["share_at_plus_1"] == 0.0
    assert "50% of gripper at -1" in card.caption_action_histograms(sat)


# ----------------------------------------------------------------------------- each figure


def _evidence(lengths, saturation, blocked, nn_rms, near, threshold=1.0, exact=0):
    report = LeakageReport("corner", threshold, 32, len(nn_rms), exact, 0, nn_rms=list(nn_rms))
    split = Split([f"demo_{i}" for i in range(8)], ["demo_8", "demo_9"], 0)
    return card.CardEvidence(
        10,
        sum(map(sum, lengths.values())),
        len(lengths),
        (),
        split,
        report,
        near,
        lengths=lengths,
        saturation=saturation,
        blocked=blocked,
    )


def _metrics(evidence) -> dict:
    verdict = card.verdict(evidence, card.CardConfig())
    return to_jsonable({**verdict.numbers, **card.metrics(evidence)})


@pytest.fixture()
def built():
    lengths = {"reach": [42, 50, 55, 48, 61], "push": [60, 71, 66], "pick-place": [55, 58]}
    values = {
        t: np.clip(RNG.normal(0, 0.6, (sum(v), 4)), -1, 1).astype(np.float32)
        for t, v in lengths.items()
    }
    saturation = card.saturated_actions(values, NAMES)
    blocked = card.BlockedViews(
        {"behindGripper": [("demo_3", 0), ("demo_3", 1), ("demo_4", 0)], "corner": []},
        {"behindGripper": 200, "corner": 200},
    )
    nn = RNG.lognormal(0.6, 0.6, 120)
    near = Estimate(float(np.mean(nn < 1.0)), 0.02, 0.3, "bootstrap over 2 validation demos")
    evidence = _evidence(lengths, saturation, blocked, nn, near)
    yield lengths, values, saturation, blocked, evidence, _metrics(evidence)
    plt.close("all")


def test_episode_lengths_fit_and_show_the_reported_medians(built):
    lengths, *_, metrics = built
    fig, _ = card.plot_episode_lengths(lengths)
    assert layout_problems(fig) == []
    assert_shows_metrics(fig, metrics)
    assert shown_numbers(fig)[("episode_length", "push", "median")] == 66.0
    assert "from 50 steps (reach) to 66 (push)" in card.caption_episode_lengths(lengths)


def test_action_histograms_fit_and_show_the_reported_saturation(built):
    _, values, saturation, _, _, metrics = built
    fig, _ = card.plot_action_histograms(values, NAMES, saturation)
    assert layout_problems(fig) == []
    expected = {
        ("saturated_actions", n, side)
        for n in NAMES
        for side in ("share_at_minus_1", "share_at_plus_1")
    }
    assert_shows_metrics(fig, metrics, expected)


def test_frame_grid_names_the_blocked_camera_and_step(built):
    *_, blocked, _, metrics = built
    stats = metrics["blocked_frames"]["behindGripper"]
    assert stats == {"frames": 3, "share": 0.015, "demos": 2, "first": "demo_3 t=0"}
    rows = [
        ("push\ndemo_3", [0, 10, 20], [_covered(), _scene(), _scene()], [0]),
        ("reach\ndemo_5", [0, 9, 18], [_scene(), _scene(), _scene()], []),
    ]
    fig, axes = card.plot_frame_grid(rows, "behindGripper", stats)
    assert layout_problems(fig) == []
    assert_shows_metrics(fig, metrics)
    assert "3 blocked frames in 2 demos (first: demo_3 t=0)" in fig._suptitle.get_text()
    assert axes[0][0].get_title() == "t=0 blocked" and axes[1][0].get_title() == "t=0"
    caption = card.caption_frame_grid("behindGripper", 2, 3, stats)
    assert "3 of its frames (1.5%) in 2 demos show no scene" in caption
    clean, _ = card.plot_frame_grid(rows[1:], "corner", metrics["blocked_frames"]["corner"])
    assert "no blocked frame" in clean._suptitle.get_text() and layout_problems(clean) == []


def test_leakage_shows_the_verdicts_numbers_and_threshold(built):
    *_, evidence, metrics = built
    pairs = [(_scene(), "val demo_8 t=0", _scene(), "train demo_1 t=0", 0.4)] * 3
    near = evidence.near_fraction
    fig, _ = card.plot_leakage(
        evidence.leakage.nn_rms, 1.0, near, card.NEAR_WARN, pairs, "corner", 0
    )
    assert layout_problems(fig) == []
    assert_shows_metrics(
        fig,
        metrics,
        {
            ("leak_threshold",),
            ("leak_near_fraction",),
            ("leak_near_fraction_low",),
            ("leak_near_fraction_high",),
            ("leak_exact",),
        },
    )
    caption = card.caption_leakage(near, 1.0, card.NEAR_WARN, 120, "corner", 0)
    assert "below the 50% WARN level" in caption and "[2.0%, 30%]" in caption


# ----------------------------------------------------------------------------- the study


def test_the_studys_figures_on_a_tiny_file_fit_and_agree_with_its_metrics(tiny_manifest):
    study = card.prepare(card.CardConfig(manifest=tiny_manifest, val_fraction=0.34))
    blocked = card.blocked_views(study)
    leak = card.split_and_check_leakage(study)
    evidence = card.evidence(study, leak, blocked)
    metrics = _metrics(evidence)
    assert set(metrics["blocked_frames"]) == {"corner", "behindGripper"}
    store = study.store
    values = card.action_values(store)
    figures = [
        card.plot_episode_lengths(evidence.lengths)[0],
        card.plot_action_histograms(values, store.mapping.action_labels(), evidence.saturation)[0],
        *(fig for fig, _ in card.frame_strips(study, blocked).values()),
        card.leakage_examples(study, leak, evidence.near_fraction)[0],
    ]
    for fig in figures:
        assert layout_problems(fig) == []
        assert_shows_metrics(fig, metrics)
    assert card.leakage_caption(leak, evidence.near_fraction).startswith("Left: distance")
    assert "Camera corner" in card.frames_caption(study, "corner", blocked)
    plt.close("all")
