"""`nblib data describe FILE.hdf5`: the key mapping guessed from robomimic's, LIBERO's and
the suite's own layouts, the manifest it writes (opened by open_dataset, checked by
check_dataset), and the errors for files it cannot read.

The robomimic and LIBERO files are written here with the key names those projects
document (robomimic's dataset-structure page: ``data`` attrs ``total``/``env_args``, demo
attr ``num_samples``, ``obs/robot0_*``; LIBERO's scripts/create_dataset.py: ``data``
attr ``problem_info`` with ``language_instruction``, ``obs/agentview_rgb``,
``eye_in_hand_rgb``, ``ee_pos``, ``ee_ori``, ``gripper_states``, ``joint_states``), not
through nblib's mappings, so a wrong committed mapping fails here.
"""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
import yaml
from tiny_data import write_tiny_dataset

from nblib.cli import main
from nblib.data.formats import check_dataset
from nblib.data.hdf5_describe import guess_mapping, write_hdf5_manifest
from nblib.data.manifest import open_dataset
from nblib.data.metaworld_gen import METAWORLD_FPS
from nblib.errors import DataError, ParameterError
from nblib.paths import manifests_dir

# The fields `nblib data describe` writes for a LeRobot folder (lerobot_check.describe_folder).
LEROBOT_FIELDS = {
    "name", "kind", "format", "description", "file", "key_mapping", "fps", "counts",
    "cameras", "size_bytes", "content_sha256",
}  # fmt: skip


@pytest.fixture
def manifests(tmp_path, monkeypatch):
    """A private manifests folder holding copies of the committed key mappings."""
    folder = tmp_path / "manifests"
    shutil.copytree(manifests_dir() / "key_mappings", folder / "key_mappings")
    monkeypatch.setenv("NBLIB_MANIFESTS", str(folder))
    return folder


def _frames(rng, length, size=12):
    return rng.integers(0, 256, (length, size, size, 3), dtype=np.uint8)


def write_robomimic(path, lengths=(6, 8), cameras=("agentview", "robot0_eye_in_hand"), obs=True):
    """A robomimic image dataset (or, with no cameras, a low-dim one): returns the actions."""
    rng = np.random.default_rng(1)
    actions = {}
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["total"] = sum(lengths)
        data.attrs["env_args"] = json.dumps({"env_name": "Lift", "type": 1, "env_kwargs": {}})
        for i, n in enumerate(lengths):
            demo = data.create_group(f"demo_{i}")
            demo.attrs["num_samples"] = n
            demo.attrs["model_file"] = "<mujoco/>"
            actions[f"demo_{i}"] = rng.uniform(-1, 1, (n, 7)).astype(np.float32)
            demo["actions"] = actions[f"demo_{i}"]
            demo["states"] = rng.normal(size=(n, 32))
            demo["rewards"] = np.zeros(n)
            demo["dones"] = np.zeros(n, dtype=np.int64)
            for group in ("obs", "next_obs") if obs else ():
                for cam in cameras:
                    demo[f"{group}/{cam}_image"] = _frames(rng, n)
                for key, width in (("eef_pos", 3), ("eef_quat", 4), ("gripper_qpos", 2)):
                    demo[f"{group}/robot0_{key}"] = rng.normal(size=(n, width))
                demo[f"{group}/robot0_joint_pos"] = rng.normal(size=(n, 7))
                demo[f"{group}/object"] = rng.normal(size=(n, 10))
        f.create_dataset("mask/train", data=np.array([b"demo_0"]))
    return actions


def write_libero(path, lengths=(5, 7), instruction="put the bowl on the plate", actions=True):
    """A LIBERO demo file (one task per file)."""
    rng = np.random.default_rng(2)
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["problem_info"] = json.dumps(
            {
                "problem_name": "libero_tabletop_manipulation",
                "domain_name": "kitchen",
                "language_instruction": instruction,
            }  # fmt: skip
        )
        data.attrs["env_args"] = json.dumps({"type": 1, "env_name": "Libero_Tabletop"})
        data.attrs["bddl_file_name"] = "put_the_bowl_on_the_plate.bddl"
        data.attrs["num_demos"] = len(lengths)
        data.attrs["total"] = sum(lengths)
        for i, n in enumerate(lengths):
            demo = data.create_group(f"demo_{i}")
            demo.attrs["num_samples"] = n
            if actions:
                demo["actions"] = rng.uniform(-1, 1, (n, 7)).astype(np.float32)
            demo["states"] = rng.normal(size=(n, 40))
            demo["robot_states"] = rng.normal(size=(n, 9))
            demo["rewards"] = np.zeros(n, dtype=np.uint8)
            demo["dones"] = np.zeros(n, dtype=np.uint8)
            demo["obs/agentview_rgb"] = _frames(rng, n)
            demo["obs/eye_in_hand_rgb"] = _frames(rng, n)
            for key, width in (("ee_pos", 3), ("ee_ori", 3), ("ee_states", 6)):
                demo[f"obs/{key}"] = rng.normal(size=(n, width))
            demo["obs/gripper_states"] = rng.normal(size=(n, 2))
            demo["obs/joint_states"] = rng.normal(size=(n, 7))


def _roundtrip(path, name):
    """Describe ``path``, then open the manifest and check the file with its mapping."""
    manifest_path, data, guess = write_hdf5_manifest(path, name)
    assert LEROBOT_FIELDS <= set(data) and {"sha256", "file"} <= set(data)
    assert yaml.safe_load(manifest_path.read_text()) == data
    store = open_dataset(manifest_path, progress=False)
    summary = check_dataset(path, mapping=data["key_mapping"])
    assert summary.demos == data["counts"]["demos"] == len(store.demos)
    assert summary.steps == data["counts"]["steps"] == sum(store.lengths.values())
    return data, guess, store


def test_robomimic_file_is_read_with_the_robomimic_mapping(manifests, tmp_path):
    path = tmp_path / "lift_image.hdf5"
    actions = write_robomimic(path)
    data, guess, store = _roundtrip(path, "my_lift")
    assert guess.exact and data["key_mapping"] == "robomimic"
    assert store.cameras == ["agentview", "wrist"]
    assert data["cameras"]["wrist"] == {
        "image_key": "obs/robot0_eye_in_hand_image",
        "shape": [12, 12, 3],
    }
    np.testing.assert_array_equal(store.actions["demo_1"], actions["demo_1"])
    # The task is env_args' env_name, an attribute of `data` in robomimic's files.
    assert data["counts"]["tasks"] == {"Lift": {"demos": 2, "steps": 14}}
    assert store.proprio["demo_0"].shape == (6, 9) and data["fps"] is None
    frames = store.frames("demo_0", "agentview", 0, 2)
    with h5py.File(path) as f:
        np.testing.assert_array_equal(frames, f["data/demo_0/obs/agentview_image"][:2])


def test_libero_file_is_read_with_the_libero_mapping(manifests, tmp_path):
    path = tmp_path / "put_the_bowl_on_the_plate_demo.hdf5"
    write_libero(path)
    data, guess, store = _roundtrip(path, "my_libero")
    assert guess.exact and data["key_mapping"] == "libero"
    assert store.cameras == ["agentview", "wrist"]
    assert set(store.instruction.values()) == {"put the bowl on the plate"}
    assert data["counts"]["tasks"] == {"put the bowl on the plate": {"demos": 2, "steps": 12}}


def test_the_suites_metaworld_file_is_read_with_the_metaworld_mapping(manifests, tmp_path):
    path = write_tiny_dataset(tmp_path / "mw.hdf5", lengths=(5, 6, 7))
    data, guess, store = _roundtrip(path, "my_mw")
    assert guess.exact and data["key_mapping"] == "metaworld"
    assert data["fps"] == METAWORLD_FPS
    assert data["counts"]["tasks"] == {
        "reach": {"demos": 2, "steps": 12},
        "push": {"demos": 1, "steps": 6},
    }
    assert set(data["cameras"]) == {"corner", "behindGripper"}


def test_a_layout_variant_gets_an_adapted_mapping_saved_under_the_manifest_name(
    manifests, tmp_path, capsys
):
    # robomimic's tool_hang files have a sideview camera instead of agentview.
    path = tmp_path / "tool_hang.hdf5"
    write_robomimic(path, cameras=("sideview", "robot0_eye_in_hand"))
    assert main(["data", "describe", str(path), "--manifest", "hang"]) == 0
    out = capsys.readouterr().out
    assert "adapted from 'robomimic'" in out and "obs/agentview_image" in out
    assert "obs/robot0_joint_pos" in out  # what it does not read is listed
    saved = json.loads((manifests / "key_mappings" / "hang.json").read_text())
    assert saved["images"] == {"wrist": "obs/robot0_eye_in_hand_image", "sideview": "obs/sideview_image"}  # fmt: skip
    assert saved["proprio"] == {"obs/robot0_eef_pos": 3, "obs/robot0_eef_quat": 4, "obs/robot0_gripper_qpos": 2}  # fmt: skip
    assert saved["task"] == {"group_attr": "env_args", "json_field": "env_name"}
    raw = yaml.safe_load((manifests / "hang.yaml").read_text())
    assert raw["key_mapping"] == "hang"
    store = open_dataset("hang", progress=False)
    assert store.cameras == ["wrist", "sideview"] and store.task["demo_0"] == "Lift"
    assert main(["data", "check", str(path), "--mapping", "hang"]) == 0
    # Describing again gives the same mapping; a different one under that name is refused.
    assert main(["data", "describe", str(path), "--manifest", "hang"]) == 0
    other = tmp_path / "other.hdf5"
    write_robomimic(other, cameras=("frontview",))
    with pytest.raises(ParameterError, match="already holds a different key mapping"):
        write_hdf5_manifest(other, "hang")


def test_mapping_given_on_the_command_line_is_used_as_is(manifests, tmp_path, capsys):
    path = tmp_path / "mw.hdf5"
    write_tiny_dataset(path, lengths=(4, 5), tasks=("reach", "push"))
    assert main(["data", "describe", str(path), "--manifest", "m", "--mapping", "metaworld"]) == 0
    assert "(as given)" in capsys.readouterr().out
    assert yaml.safe_load((manifests / "m.yaml").read_text())["key_mapping"] == "metaworld"


def test_low_dim_robomimic_file_has_no_images(manifests, tmp_path):
    path = tmp_path / "low_dim.hdf5"
    write_robomimic(path, cameras=())
    with pytest.raises(DataError) as err:
        guess_mapping(path, "x")
    message = str(err.value)
    assert "mapping field 'images' is missing" in message
    assert "obs/robot0_eef_pos [6, 3]" in message  # the keys found are listed


def test_missing_actions_are_named(manifests, tmp_path):
    path = tmp_path / "no_actions.hdf5"
    write_libero(path, actions=False)
    with pytest.raises(DataError) as err:
        guess_mapping(path, "x")
    assert "mapping field 'actions' is missing" in str(err.value)
    assert "obs/agentview_rgb" in str(err.value)


def test_a_file_in_two_layouts_is_ambiguous(manifests, tmp_path):
    path = tmp_path / "both.hdf5"
    write_libero(path)
    with h5py.File(path, "a") as f:  # robomimic's keys too, as a re-rendered file might have
        f["data"].attrs["env_args"] = json.dumps({"env_name": "Lift"})
        for demo in f["data"].values():
            n = len(demo["actions"])
            for key, shape in (
                ("agentview_image", (n, 12, 12, 3)),
                ("robot0_eye_in_hand_image", (n, 12, 12, 3)),
            ):
                demo[f"obs/{key}"] = np.zeros(shape, np.uint8)
            for key, width in (("eef_pos", 3), ("eef_quat", 4), ("gripper_qpos", 2)):
                demo[f"obs/robot0_{key}"] = np.zeros((n, width))
    with pytest.raises(DataError, match=r"ambiguous layout.*\['robomimic', 'libero'\]"):
        guess_mapping(path, "x")
    # Naming the mapping settles it.
    _, data, _ = write_hdf5_manifest(path, "both", mapping="libero")
    assert data["key_mapping"] == "libero"


def test_an_unknown_layout_lists_its_keys(manifests, tmp_path):
    path = tmp_path / "own.hdf5"
    with h5py.File(path, "w") as f:
        f["data/demo_0/action"] = np.zeros((3, 2))
        f["data/demo_0/images/front"] = np.zeros((3, 8, 8, 3), np.uint8)
    with pytest.raises(DataError) as err:
        guess_mapping(path, "x")
    assert "no known layout" in str(err.value) and "images/front [3, 8, 8, 3]" in str(err.value)
    with h5py.File(tmp_path / "flat.hdf5", "w") as f:
        f["actions"] = np.zeros((3, 2))
    with pytest.raises(DataError, match=r"no demo group 'data'.*\['actions'\]"):
        guess_mapping(tmp_path / "flat.hdf5", "x")


def test_a_committed_mapping_name_is_refused_for_an_adapted_mapping(manifests, tmp_path):
    path = tmp_path / "tool_hang.hdf5"
    write_robomimic(path, cameras=("sideview",))
    with pytest.raises(ParameterError, match="committed key mapping"):
        write_hdf5_manifest(path, "robomimic")
    assert not (manifests / "robomimic.yaml").exists()


def test_a_file_equally_close_to_two_layouts_is_ambiguous(manifests, tmp_path):
    path = tmp_path / "half.hdf5"
    with h5py.File(path, "w") as f:
        f["data/demo_0/actions"] = np.zeros((3, 7), np.float32)
        f["data/demo_0/obs/agentview_rgb"] = np.zeros((3, 8, 8, 3), np.uint8)  # LIBERO's
        f["data/demo_0/obs/agentview_image"] = np.zeros((3, 8, 8, 3), np.uint8)  # robomimic's
    with pytest.raises(DataError, match=r"as many keys \(1\).*\['robomimic', 'libero'\]"):
        guess_mapping(path, "x")


# The README's minimal manifest and key mapping for a file in a layout of one's own.
README_MAPPING = {
    "name": "my_layout",
    "images": {"front": "obs/front_image"},
    "proprio": {"obs/state": 8},
    "actions": "actions",
    "action_dim": 7,
    "instruction": {"demo_attr": "instruction"},
}
README_MANIFEST = """\
name: my_demos
kind: dataset
file: {file}
key_mapping: my_layout
sha256: {sha256}
"""


def test_the_readme_minimal_manifest_opens_a_file_of_ones_own(manifests, tmp_path, capsys):
    from nblib.data.manifest import file_sha256

    path = tmp_path / "my_demos.hdf5"
    rng = np.random.default_rng(3)
    with h5py.File(path, "w") as f:
        for i, n in enumerate((4, 6)):
            demo = f.create_group(f"data/demo_{i}")
            demo.attrs["instruction"] = "stack the red block"
            demo["obs/front_image"] = _frames(rng, n)
            demo["obs/state"] = rng.normal(size=(n, 8))
            demo["actions"] = rng.uniform(-1, 1, (n, 7))
    with pytest.raises(DataError, match="no known layout"):  # no guess for a new layout
        guess_mapping(path, "x")
    (manifests / "key_mappings" / "my_layout.json").write_text(json.dumps(README_MAPPING))
    (manifests / "my_demos.yaml").write_text(
        README_MANIFEST.format(file=path, sha256=file_sha256(path))
    )
    store = open_dataset("my_demos", progress=False)
    assert store.cameras == ["front"] and store.lengths == {"demo_0": 4, "demo_1": 6}
    assert store.instruction["demo_1"] == "stack the red block"
    # ... and describe writes the full manifest from the mapping.
    argv = ["data", "describe", str(path), "--manifest", "mine", "--mapping", "my_layout"]
    assert main(argv) == 0
    raw = yaml.safe_load((manifests / "mine.yaml").read_text())
    assert raw["key_mapping"] == "my_layout" and raw["sha256"] == file_sha256(path)
    assert raw["counts"]["tasks"] == {"(no task text)": {"demos": 2, "steps": 10}}
