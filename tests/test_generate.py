"""Tests for nblib.data.metaworld_gen on the real simulator (MuJoCo, headless EGL).

One small generation (reach, 2 demos, 64 px, corner + behindGripper) is shared by the
module; the determinism test renders it a second time.
"""

from __future__ import annotations

import os

os.environ["MUJOCO_GL"] = "egl"  # before anything imports mujoco

import json  # noqa: E402

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

try:
    import metaworld  # noqa: E402, F401
except Exception as err:  # ImportError, or a broken MuJoCo/OpenGL install
    pytest.skip(
        f"Meta-World is not importable ({err!r}); install nblib[sim]", allow_module_level=True
    )

from nblib.data.dataset import ChunkDataset  # noqa: E402
from nblib.data.hdf5 import DemoStore  # noqa: E402
from nblib.data.manifest import content_sha256, describe_generated, file_sha256  # noqa: E402
from nblib.data.metaworld_gen import (  # noqa: E402
    GENERATOR_VERSION,
    INSTRUCTIONS,
    GenerateConfig,
    demo_seed,
    generate,
)
from nblib.errors import ParameterError  # noqa: E402

SIZE = 64
CAMERAS = ("corner", "behindGripper")
CFG = dict(tasks=("reach",), demos=2, size=SIZE, cameras=CAMERAS)
PER_STEP = [
    "actions",
    "rewards",
    "success",
    "obs/eef_pos",
    "obs/gripper_opening",
    "obs/state",
    *(f"obs/{c}_image" for c in CAMERAS),
    *(f"camera/{c}/extrinsics" for c in CAMERAS),
]


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "reach.hdf5"
    summary = generate(GenerateConfig(**CFG), out, progress=False)
    return out, summary


@pytest.fixture(scope="module")
def demos(generated) -> dict:
    """Every dataset and attribute of both demos, read once."""
    out = {}
    with h5py.File(generated[0], "r") as f:
        for name in f["data"]:
            g = f["data"][name]
            arrays = {}
            g.visititems(
                lambda k, o, a=arrays: (
                    a.__setitem__(k, o[()]) if isinstance(o, h5py.Dataset) else None
                )
            )
            out[name] = {"arrays": arrays, "attrs": dict(g.attrs)}
    return out


def test_summary_and_file_attrs(generated, demos):
    path, summary = generated
    assert summary["demos"] == 2 and summary["failed_demos"] == []
    assert summary["steps"] == sum(int(d["attrs"]["num_samples"]) for d in demos.values())
    with h5py.File(path, "r") as f:
        assert sorted(f.keys()) == ["data"]
        assert sorted(f["data"].keys()) == ["demo_0", "demo_1"]
        attrs = f["data"].attrs
        assert int(attrs["total"]) == summary["steps"]
        gen = json.loads(attrs["generator"])
        assert gen["tasks"] == ["reach"] and gen["cameras"] == list(CAMERAS)
        assert (gen["demos"], gen["size"], gen["version"]) == (2, SIZE, GENERATOR_VERSION)
        assert json.loads(attrs["instructions"]) == {"reach": INSTRUCTIONS["reach"]}
        assert json.loads(attrs["env_args"])["env_name"] == "metaworld-v3"


def test_layout_and_matching_lengths(demos):
    for name, demo in demos.items():
        arrays = demo["arrays"]
        n = int(demo["attrs"]["num_samples"])
        assert 5 < n <= GenerateConfig().max_steps, name
        expected = set(PER_STEP) | {f"camera/{c}/intrinsics" for c in CAMERAS}
        assert set(arrays) == expected, name
        for key in PER_STEP:
            assert len(arrays[key]) == n, (name, key)
        assert arrays["actions"].shape == (n, 4) and arrays["actions"].dtype == np.float32
        assert arrays["obs/eef_pos"].shape == (n, 3) and arrays["obs/eef_pos"].dtype == np.float32
        assert arrays["obs/gripper_opening"].shape == (n, 1)
        assert arrays["obs/state"].shape == (n, 39) and arrays["obs/state"].dtype == np.float32
        assert arrays["rewards"].dtype == np.float32 and arrays["success"].dtype == np.uint8
        np.testing.assert_array_equal(arrays["obs/eef_pos"], arrays["obs/state"][:, 0:3])
        np.testing.assert_array_equal(arrays["obs/gripper_opening"], arrays["obs/state"][:, 3:4])
        for cam in CAMERAS:
            assert arrays[f"camera/{cam}/intrinsics"].shape == (3, 3)
            assert arrays[f"camera/{cam}/extrinsics"].shape == (n, 4, 4)


def test_images(demos):
    for demo in demos.values():
        n = int(demo["attrs"]["num_samples"])
        for cam in CAMERAS:
            frames = demo["arrays"][f"obs/{cam}_image"]
            assert frames.shape == (n, SIZE, SIZE, 3) and frames.dtype == np.uint8
            assert frames[0].std() > 10, cam  # a scene, not a blank frame
            assert np.abs(frames[-1].astype(int) - frames[0]).mean() > 1, cam  # the arm moved
            # color_bits=6: the low two bits are the bin centre 0b10 everywhere.
            assert np.all(frames & 3 == 2), cam


def test_actions_in_range(demos):
    for demo in demos.values():
        actions = demo["arrays"]["actions"]
        assert np.isfinite(actions).all()
        assert actions.min() >= -1.0 and actions.max() <= 1.0
        assert np.abs(actions[:, :3]).max() > 0.05  # the expert moves


def test_expert_succeeds_on_reach(demos):
    settle = GenerateConfig().settle_steps
    for name, demo in demos.items():
        success = demo["arrays"]["success"]
        assert bool(demo["attrs"]["success"]) is True, name
        assert success[-1] == 1 and success[0] == 0, name
        # The episode stops `settle_steps` steps after the first success.
        assert int(np.argmax(success)) == len(success) - 1 - settle, name


def test_demo_attrs(demos):
    for i in range(2):
        attrs = demos[f"demo_{i}"]["attrs"]
        assert attrs["task"] == "reach"
        assert attrs["instruction"] == INSTRUCTIONS["reach"][0]
        attempts = int(attrs["attempts"])
        assert 1 <= attempts <= GenerateConfig().max_attempts
        assert int(attrs["seed"]) == demo_seed(0, "reach", i, attempts - 1)
    assert demos["demo_0"]["attrs"]["seed"] != demos["demo_1"]["attrs"]["seed"]
    # Fresh layouts: the two demos do not start from the same observation.
    assert not np.array_equal(
        demos["demo_0"]["arrays"]["obs/state"][0], demos["demo_1"]["arrays"]["obs/state"][0]
    )


def test_no_temporary_file_left(generated):
    path, _ = generated
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_failed_generation_leaves_nothing(tmp_path):
    out = tmp_path / "bad.hdf5"
    with pytest.raises(ParameterError, match="no_such_camera"):
        generate(
            GenerateConfig(tasks=("reach",), demos=1, size=32, cameras=("no_such_camera",)),
            out,
            progress=False,
        )
    assert list(tmp_path.iterdir()) == []


def _project(demo, cam):
    """(T, 2) pixel coordinates and (T,) depth of eef_pos seen by one camera."""
    eef = demo["arrays"]["obs/eef_pos"].astype(np.float64)
    intr = demo["arrays"][f"camera/{cam}/intrinsics"].astype(np.float64)
    extr = demo["arrays"][f"camera/{cam}/extrinsics"].astype(np.float64)
    p_cam = np.einsum("tij,tj->ti", extr, np.c_[eef, np.ones(len(eef))])[:, :3]
    uvw = p_cam @ intr.T
    return uvw[:, :2] / uvw[:, 2:], p_cam[:, 2]


def test_eef_projects_inside_corner_image(demos):
    for name, demo in demos.items():
        intr = demo["arrays"]["camera/corner/intrinsics"]
        assert intr[0, 2] == intr[1, 2] == (SIZE - 1) / 2
        assert intr[0, 0] == intr[1, 1] > 0
        extr = demo["arrays"]["camera/corner/extrinsics"]
        np.testing.assert_allclose(extr, np.broadcast_to(extr[0], extr.shape))  # a fixed camera
        np.testing.assert_allclose(extr[0, :3, :3] @ extr[0, :3, :3].T, np.eye(3), atol=1e-5)
        uv, depth = _project(demo, "corner")
        assert (depth > 0).all(), name
        assert (uv >= 0).all() and (uv <= SIZE - 1).all(), (name, uv.min(0), uv.max(0))
        assert np.ptp(uv, axis=0).max() > 2  # the hand visibly moves across the image


def test_wrist_camera_moves_with_the_hand(demos):
    for demo in demos.values():
        extr = demo["arrays"]["camera/behindGripper/extrinsics"]
        assert np.abs(extr - extr[0]).max() > 1e-3  # per-step extrinsics
        uv, depth = _project(demo, "behindGripper")
        assert (depth > 0).all()
        assert (uv >= 0).all() and (uv <= SIZE - 1).all()
        # Mounted on the hand: the hand stays at one pixel and one depth.
        assert np.ptp(uv, axis=0).max() < 0.1 and np.ptp(depth) < 1e-3


def test_loads_as_chunk_dataset(generated, demos):
    ds = ChunkDataset(DemoStore(generated[0]), horizon=8)
    assert len(ds) == sum(int(d["attrs"]["num_samples"]) for d in demos.values())
    item = ds[3]
    assert item["images"]["corner"].shape == (1, SIZE, SIZE, 3)
    np.testing.assert_array_equal(
        item["images"]["corner"][0], demos["demo_0"]["arrays"]["obs/corner_image"][3]
    )
    np.testing.assert_array_equal(item["actions"], demos["demo_0"]["arrays"]["actions"][3:11])
    assert item["instruction"] == "reach the goal"
    ds.store.close()


def test_describe_generated(generated):
    path, summary = generated
    desc = describe_generated(path, "tiny_reach", GenerateConfig(**CFG))
    assert desc["counts"]["demos"] == 2 and desc["counts"]["steps"] == summary["steps"]
    assert desc["counts"]["tasks"]["reach"]["failed"] == 0
    assert desc["cameras"]["behindGripper"]["extrinsics"] == "per step (moves with the hand)"
    assert np.asarray(desc["cameras"]["corner"]["extrinsics"]).shape == (4, 4)
    assert desc["cameras"]["corner"]["shape"] == [SIZE, SIZE, 3]
    assert desc["sha256"] == file_sha256(path) and desc["content_sha256"] == content_sha256(path)


def test_generation_is_deterministic(generated, tmp_path):
    again = tmp_path / "reach.hdf5"
    generate(GenerateConfig(**CFG), again, progress=False, workers=1)
    assert content_sha256(again) == content_sha256(generated[0])
    assert file_sha256(again) == file_sha256(generated[0])


def test_rendering_in_two_processes_gives_the_same_file(tmp_path):
    """Two tasks, demos rendered in two spawned processes (each sees a different subset of
    each task's demos) against one process: byte-identical. Before the reset recomputed
    positions, a demo's first frame showed the previous demo's goal marker, so it depended
    on which demo its process had rendered before."""
    cfg = GenerateConfig(**(CFG | {"tasks": ("reach", "push"), "demos": 2}))
    one, two = tmp_path / "one.hdf5", tmp_path / "two.hdf5"
    generate(cfg, one, progress=False, workers=1)
    generate(cfg, two, progress=False, workers=2)
    assert file_sha256(one) == file_sha256(two)


def test_first_frame_shows_its_own_layout(demos):
    """Frame 0 of a demo is the scene of its own seed, rendered in a fresh environment."""
    from nblib.data.metaworld_gen import Cameras, make_env, quantize_colors, reset_layout

    demo = demos["demo_1"]  # the second demo: rendered after another one in the same env
    env = make_env("reach")
    cams = Cameras(env.model, CAMERAS, SIZE)
    try:
        reset_layout(env, int(demo["attrs"]["seed"]))
        fresh = quantize_colors(cams.render(env.data, CAMERAS[0])[None], 6)[0]
    finally:
        cams.close()
        env.close()
    np.testing.assert_array_equal(demo["arrays"][f"obs/{CAMERAS[0]}_image"][0], fresh)


def test_config_rejects_bad_values():
    with pytest.raises(ParameterError, match="fly"):
        GenerateConfig(tasks=("reach", "fly"))
    with pytest.raises(ParameterError, match="size"):
        GenerateConfig(size=16)
    with pytest.raises(ParameterError, match="demos"):
        GenerateConfig(demos=0)
    with pytest.raises(ParameterError, match="color_bits"):
        GenerateConfig(color_bits=9)
