"""Tests for nblib.data.leakage: frames shared by train and val episodes are found.

The tiny file has two "reach" demos (red square), one "button-press-topdown" demo (dark blue square) and
``demo_3``, a byte-for-byte copy of ``demo_0`` made with ``h5py``'s ``copy``, and ``demo_4``,
a copy of ``demo_0`` with one pixel per frame changed (near, not exact, duplicates).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import pytest
from tiny_data import write_tiny_dataset

from nblib.data.hdf5 import DemoStore
from nblib.data.leakage import leakage_report

LENGTHS = (12, 9, 15)
# The third task's square is dark blue (grey ~47), the reach square red (grey ~94): the
# grayscale thumbnails differ too, not only the bytes ("push"'s blue has a red-like grey).
TASKS = ("reach", "reach", "button-press-topdown")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> DemoStore:
    path = tmp_path_factory.mktemp("leak") / "leak.h5"
    write_tiny_dataset(path, lengths=LENGTHS, tasks=TASKS, image_size=16)
    with h5py.File(path, "r+") as f:
        f.copy(f["data/demo_0"], f["data"], name="demo_3")
        f.copy(f["data/demo_0"], f["data"], name="demo_4")
        for cam in ("corner", "behindGripper"):  # one pixel per frame off by 3 grey levels
            frames = f[f"data/demo_4/obs/{cam}_image"][()]
            frames[:, 0, 0, :] += 3
            f[f"data/demo_4/obs/{cam}_image"][...] = frames
    s = DemoStore(path)
    yield s
    s.close()


def test_copied_val_demo_is_all_exact(store):
    assert store.lengths["demo_3"] == 12
    report = leakage_report(store, train=["demo_0", "demo_1"], val=["demo_3"])
    assert report.camera == "corner"
    assert report.val_frames == 12
    assert report.exact == 12
    assert report.near == 12
    assert report.near_fraction == 1.0
    assert report.per_val_demo == {"demo_3": 1.0}
    assert report.nn_quantiles["q100"] == 0.0
    best = report.examples[0]
    assert best["train_demo"] == "demo_0" and best["val_t"] == best["train_t"]
    assert best["rms_diff"] == 0.0


def test_slightly_changed_copy_is_near_not_exact(store):
    report = leakage_report(store, train=["demo_0", "demo_1"], val=["demo_4"])
    assert report.val_frames == 12
    assert report.exact == 0
    assert report.near == 12
    assert report.per_val_demo == {"demo_4": 1.0}
    assert 0.0 < report.nn_quantiles["q50"] < 1.0
    strict = leakage_report(store, train=["demo_0", "demo_1"], val=["demo_4"], threshold=1e-6)
    assert strict.near == 0


def test_unrelated_val_demo_has_no_duplicates(store):
    report = leakage_report(
        store, train=["demo_0", "demo_1"], val=["demo_2"], camera="behindGripper"
    )
    assert report.camera == "behindGripper"
    assert report.val_frames == 15
    assert report.exact == 0
    assert report.near == 0
    assert report.near_fraction == 0.0
    assert report.per_val_demo == {"demo_2": 0.0}
    assert report.nn_quantiles["q00"] > 1.0  # a dark blue square never looks like a red one


def test_per_val_demo_fractions(store):
    report = leakage_report(store, train=["demo_0"], val=["demo_2", "demo_3"])
    assert report.val_frames == 15 + 12
    assert report.exact == 12
    assert report.per_val_demo == {"demo_2": 0.0, "demo_3": 1.0}
    assert report.near_fraction == pytest.approx(12 / 27)
    assert len(report.examples) == 6
    assert all(e["val_demo"] == "demo_3" for e in report.examples)  # the closest pairs


def test_summary_keys(store):
    report = leakage_report(store, train=["demo_0"], val=["demo_2", "demo_3"], threshold=0.5)
    summary = report.summary()
    assert set(summary) == {
        "camera",
        "val_frames",
        "exact_duplicates",
        "near_duplicates",
        "near_fraction",
        "threshold",
        "nn_rms_median",
    }
    assert summary["exact_duplicates"] == 12 and summary["near_duplicates"] == 12
    assert summary["near_fraction"] == round(12 / 27, 4)
    assert summary["threshold"] == 0.5 and summary["camera"] == "corner"
    assert summary["nn_rms_median"] == report.nn_quantiles["q50"]


def test_empty_val(store):
    report = leakage_report(store, train=["demo_0"], val=[])
    assert (report.val_frames, report.exact, report.near, report.near_fraction) == (0, 0, 0, 0.0)


def test_demo_store_path_still_valid(store):
    assert isinstance(store.path, Path) and store.path.exists()
