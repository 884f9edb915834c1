"""Tests for nblib.data.manifest: loading, mixtures (opened as one store), checksum
verification, ensure_dataset.

The committed manifests are read as they are; everything else is written to tmp_path with
NBLIB_DATA / NBLIB_MANIFESTS pointing there, so the real data folder is never touched.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from tiny_data import set_value, write_tiny_dataset

from nblib.data.dataset import ChunkDataset
from nblib.data.hdf5 import DemoStore
from nblib.data.manifest import (
    config_from_manifest,
    content_sha256,
    ensure_dataset,
    file_sha256,
    load_manifest,
    open_dataset,
    verify_dataset,
    write_manifest,
)
from nblib.data.mixture import MixtureStore
from nblib.data.normalization import load_norm_stats
from nblib.errors import CapabilityError, DataError, ManifestError
from nblib.paths import repo_root

COMMITTED = repo_root() / "data_manifests"


@pytest.fixture
def dirs(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """(data folder, manifest folder) in tmp_path, with the environment pointing at them."""
    data, manifests = tmp_path / "data", tmp_path / "manifests"
    data.mkdir()
    manifests.mkdir()
    monkeypatch.setenv("NBLIB_DATA", str(data))
    monkeypatch.setenv("NBLIB_MANIFESTS", str(manifests))
    return data, manifests


@pytest.fixture
def tiny_manifest(dirs):
    """A tiny file in the data folder and a manifest 'tiny' recording its checksums."""
    data, manifests = dirs
    path = write_tiny_dataset(
        data / "tiny.h5", lengths=(6, 5), tasks=("reach", "push"), image_size=8
    )
    raw = {
        "name": "tiny",
        "kind": "dataset",
        "file": "tiny.h5",
        "key_mapping": "metaworld",
        "sha256": file_sha256(path),
        "content_sha256": content_sha256(path),
    }
    write_manifest(raw, manifests / "tiny.yaml")
    return path, load_manifest("tiny")


# --- loading ------------------------------------------------------------------------------


def test_load_committed_dataset_manifest(monkeypatch, tmp_path):
    monkeypatch.setenv("NBLIB_DATA", str(tmp_path))
    m = load_manifest("metaworld_default")
    assert (m.name, m.kind, m.key_mapping) == ("metaworld_default", "dataset", "metaworld")
    assert m.path == COMMITTED / "metaworld_default.yaml"
    assert m.data_path == tmp_path / "metaworld_default.hdf5"
    assert m.raw["counts"]["demos"] == sum(t["demos"] for t in m.raw["counts"]["tasks"].values())
    assert len(m.raw["sha256"]) == 64 and len(m.raw["content_sha256"]) == 64
    same = load_manifest(COMMITTED / "metaworld_default.yaml")  # by path too
    assert same.raw == m.raw


def test_committed_generator_settings_build_a_config():
    cfg = config_from_manifest(load_manifest("metaworld_default"))
    gen = load_manifest("metaworld_default").generator
    assert cfg.tasks == tuple(gen["tasks"]) and cfg.cameras == tuple(gen["cameras"])
    assert (cfg.demos, cfg.size, cfg.seed) == (gen["demos"], gen["size"], gen["seed"])


def test_load_committed_mixture():
    m = load_manifest("libero_all")
    assert m.kind == "mixture" and m.key_mapping == "lerobot"  # LeRobot folders
    assert len(m.raw["components"]) == 4
    with pytest.raises(ManifestError, match="no dataset file"):
        _ = m.data_path


def test_unknown_manifest_lists_known_ones():
    with pytest.raises(ManifestError) as err:
        load_manifest("no_such_dataset")
    assert "no_such_dataset" in str(err.value)
    assert "metaworld_default" in str(err.value) and "libero_all" in str(err.value)


def test_mixture_totals_must_match_components(dirs):
    _, manifests = dirs
    bad = {
        "name": "bad_mix",
        "kind": "mixture",
        "components": [{"name": "a", "episodes": 10}, {"name": "b", "episodes": 5}],
        "totals": {"episodes": 16},
    }
    (manifests / "bad_mix.yaml").write_text(yaml.safe_dump(bad))
    with pytest.raises(ManifestError, match=r"totals.episodes is 16 .* 15"):
        load_manifest("bad_mix")
    bad["totals"]["episodes"] = 15
    (manifests / "bad_mix.yaml").write_text(yaml.safe_dump(bad))
    assert load_manifest("bad_mix").kind == "mixture"


@pytest.mark.parametrize(
    "text, match",
    [
        ("name: x\nkind: mixture\ncomponents: []\n", "non-empty 'components'"),
        ("name: x\nkind: mixture\ncomponents: [{name: a}]\n", r"components\[0\] misses 'episodes'"),
        ("name: x\nkind: table\n", "kind must be one of"),
        ("kind: dataset\n", "missing key 'name'"),
        ("- just\n- a list\n", "must be a mapping"),
        ("name: [unclosed\n", "not valid YAML"),
    ],
)
def test_malformed_manifests(dirs, text, match):
    _, manifests = dirs
    (manifests / "x.yaml").write_text(text)
    with pytest.raises(ManifestError, match=match):
        load_manifest("x")


# --- verify_dataset / ensure_dataset ------------------------------------------------------


def test_verify_exact(tiny_manifest):
    path, manifest = tiny_manifest
    assert manifest.data_path == path
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert verify_dataset(manifest) == "exact"
    assert ensure_dataset("tiny") == path


def test_open_dataset_checks_then_opens_the_store(tiny_manifest):
    path, _ = tiny_manifest
    # The manifest folder of these tests has no key mappings: give the repository's by path.
    metaworld = repo_root() / "data_manifests" / "key_mappings" / "metaworld.json"
    store = open_dataset("tiny", mapping=str(metaworld), cameras=["corner"])
    assert (
        store.path == path and store.cameras == ["corner"] and store.demos == ["demo_0", "demo_1"]
    )
    part = store.subset(["demo_1"])
    assert part.demos == ["demo_1"] and part.actions["demo_1"] is store.actions["demo_1"]
    assert part.frames("demo_1", "corner", 0, 2).shape == (2, 8, 8, 3)
    with pytest.raises(DataError, match="demo_7"):
        store.subset(["demo_7"])
    part.close()  # the subset opened its own handle; the file is rewritten next
    set_value(path, "data/demo_0/actions", (0, 0), 0.123)
    with pytest.raises(DataError, match="does not match manifest 'tiny'"):
        open_dataset("tiny", mapping=str(metaworld))  # never opened unchecked


def test_verify_content_when_only_pixels_differ(tiny_manifest):
    path, manifest = tiny_manifest
    with h5py.File(path, "r+") as f:
        image = f["data/demo_1/obs/corner_image"]
        image[2, 3, 4, 0] = image[2, 3, 4, 0] ^ 1
    assert file_sha256(path) != manifest.raw["sha256"]
    with pytest.warns(UserWarning, match="different OpenGL driver"):
        assert verify_dataset(manifest) == "content"


def test_verify_fails_when_an_action_differs(tiny_manifest):
    path, manifest = tiny_manifest
    with h5py.File(path, "r") as f:
        old = float(f["data/demo_0/actions"][4, 2])
    set_value(path, "data/demo_0/actions", (4, 2), old + 1e-3)
    with pytest.raises(DataError, match="does not match manifest 'tiny'") as err:
        verify_dataset(manifest)
    assert str(path) in str(err.value)
    with pytest.raises(DataError):
        ensure_dataset("tiny")


def test_verify_fails_when_an_instruction_differs(tiny_manifest):
    path, manifest = tiny_manifest
    with h5py.File(path, "r+") as f:
        f["data/demo_1"].attrs["instruction"] = "push the puck left"
    with pytest.raises(DataError, match="content checksum"):
        verify_dataset(manifest)


def test_verify_needs_a_recorded_sha(dirs):
    data, manifests = dirs
    write_tiny_dataset(data / "nosha.h5", lengths=(4,), tasks=("reach",), image_size=8)
    write_manifest(
        {"name": "nosha", "kind": "dataset", "file": "nosha.h5"}, manifests / "nosha.yaml"
    )
    with pytest.raises(ManifestError, match="sha256"):
        verify_dataset(load_manifest("nosha"))


def test_content_sha_ignores_images_only(tmp_path):
    a = write_tiny_dataset(tmp_path / "a.h5", lengths=(5, 4), tasks=("reach", "push"), image_size=8)
    b = write_tiny_dataset(
        tmp_path / "b.h5", lengths=(5, 4), tasks=("reach", "push"), image_size=12
    )
    c = write_tiny_dataset(
        tmp_path / "c.h5", lengths=(5, 4), tasks=("reach", "push"), image_size=8, seed=1
    )
    assert content_sha256(a) == content_sha256(b)
    assert file_sha256(a) != file_sha256(b)
    assert content_sha256(a) != content_sha256(c)


def test_ensure_missing_file_without_generator(dirs):
    data, manifests = dirs
    write_manifest(
        {"name": "gone", "kind": "dataset", "file": "gone.hdf5", "sha256": "0" * 64},
        manifests / "gone.yaml",
    )
    with pytest.raises(DataError) as err:
        ensure_dataset("gone")
    assert str(data / "gone.hdf5") in str(err.value)
    assert "no generator" in str(err.value)
    assert not (data / "gone.hdf5").exists()


def test_absolute_file_path_is_kept(dirs, tmp_path):
    _, manifests = dirs
    target = tmp_path / "elsewhere" / "x.h5"
    write_manifest({"name": "abs", "kind": "dataset", "file": str(target)}, manifests / "abs.yaml")
    assert load_manifest("abs").data_path == target


# --- mixtures as one store ----------------------------------------------------------------


@pytest.fixture
def mixture(dirs):
    """A mixture 'mix' of two tiny files: 'alpha' through a dataset manifest of its own
    (checksums recorded), 'beta' through the component's 'file'. Returns both paths."""
    data, manifests = dirs
    shutil.copytree(COMMITTED / "key_mappings", manifests / "key_mappings")
    alpha = write_tiny_dataset(
        data / "alpha.h5", lengths=(6, 5), tasks=("reach", "push"), image_size=8,
        successes=[True, False],
    )  # fmt: skip
    beta = write_tiny_dataset(
        data / "beta.h5", lengths=(4, 7, 5), tasks=("push", "push", "reach"), image_size=8, seed=3
    )
    write_manifest(
        {"name": "alpha", "kind": "dataset", "file": "alpha.h5", "key_mapping": "metaworld",
         "sha256": file_sha256(alpha), "content_sha256": content_sha256(alpha)},
        manifests / "alpha.yaml",
    )  # fmt: skip
    _write_mixture(manifests, [{"name": "alpha", "episodes": 2}, {"name": "beta", "file": "beta.h5", "episodes": 3}])  # fmt: skip
    return alpha, beta


def _write_mixture(manifests: Path, components: list[dict], name: str = "mix") -> None:
    raw = {"name": name, "kind": "mixture", "key_mapping": "metaworld", "components": components}
    (manifests / f"{name}.yaml").write_text(yaml.safe_dump(raw))


def test_a_mixture_opens_as_one_store_of_its_components(mixture, dirs):
    alpha_path, beta_path = mixture
    alpha, beta = DemoStore(alpha_path), DemoStore(beta_path)
    store = open_dataset("mix", progress=False)
    assert isinstance(store, MixtureStore) and store.path == dirs[1] / "mix.yaml"
    assert store.demos == [f"alpha/{d}" for d in alpha.demos] + [f"beta/{d}" for d in beta.demos]
    for part, name in ((alpha, "alpha"), (beta, "beta")):
        for demo in part.demos:
            key = f"{name}/{demo}"
            assert np.array_equal(store.actions[key], part.actions[demo])
            assert np.array_equal(store.proprio[key], part.proprio[demo])
            assert store.instruction[key] == part.instruction[demo]
            assert np.array_equal(
                store.frames(key, "corner", 1, 4), part.frames(demo, "corner", 1, 4)
            )
    assert len(ChunkDataset(store, horizon=3)) == sum(alpha.lengths.values()) + 16
    # Capabilities both files have are the mixture's, under its demo names.
    assert store.success_flags() == {
        "alpha/demo_0": True, "alpha/demo_1": False,
        "beta/demo_0": True, "beta/demo_1": True, "beta/demo_2": True,
    }  # fmt: skip
    calibration = store.camera_calibration()
    assert np.array_equal(
        calibration["behindGripper", "beta/demo_1"][1],
        beta.camera_calibration()["behindGripper", "demo_1"][1],
    )
    assert store.control_rate() == 80.0  # both are Meta-World files
    assert store.instruction_phrasings()["push"] == ["push the puck"]
    # Statistics are cached in the data folder under the mixture's name.
    stats = load_norm_stats(store)
    assert (dirs[0] / "mix.norm_stats.json").exists() and stats.actions.count == 11 + 16
    part = open_dataset("mix", demos=["beta/demo_2", "alpha/demo_0"], progress=False)
    assert part.demos == ["beta/demo_2", "alpha/demo_0"]
    assert part.success_flags() == {"beta/demo_2": True, "alpha/demo_0": True}


def test_a_mixture_component_is_checked_against_its_own_manifest(mixture):
    alpha, _ = mixture
    set_value(alpha, "data/demo_1/actions", (0, 0), 0.5)
    with pytest.raises(DataError, match="does not match manifest 'alpha'"):
        open_dataset("mix", progress=False)


def test_a_mixture_with_missing_components_says_where_it_looked(mixture, dirs):
    data, manifests = dirs
    _write_mixture(
        manifests,
        [{"name": "alpha", "episodes": 2}, {"name": "gamma", "episodes": 1},
         {"name": "delta", "file": "sub/delta.h5", "episodes": 1}],
        name="gappy",
    )  # fmt: skip
    with pytest.raises(DataError) as err:
        open_dataset("gappy", progress=False)
    message = str(err.value)
    assert "missing 2 of its 3 components" in message and "'alpha'" not in message
    assert (
        f"'gamma' (looked for a manifest {manifests / 'gamma.yaml'} or {data / 'gamma'})" in message
    )
    assert f"'delta' (looked for {data / 'sub' / 'delta.h5'})" in message


def test_the_committed_libero_mixture_lists_its_missing_folders(monkeypatch, tmp_path):
    monkeypatch.setenv("NBLIB_DATA", str(tmp_path))
    with pytest.raises(DataError) as err:
        open_dataset("libero_all", progress=False)
    assert "missing 4 of its 4 components" in str(err.value)
    assert str(tmp_path / "libero_10_no_noops_1.0.0_lerobot") in str(err.value)


def test_mixtures_refuse_weights_and_disagreeing_components(mixture, dirs):
    data, manifests = dirs
    weighted = [{"name": "alpha", "episodes": 2}, {"name": "beta", "file": "beta.h5", "episodes": 3, "weight": 2.0}]  # fmt: skip
    _write_mixture(manifests, weighted)
    with pytest.raises(ManifestError, match=r"components\[1\] \('beta'\): mixture weights are not"):
        open_dataset("mix", progress=False)
    _write_mixture(manifests, [{"name": "alpha", "episodes": 2}, {"name": "beta", "file": "beta.h5", "episodes": 4}])  # fmt: skip
    with pytest.raises(DataError, match=r"beta\.h5: component 'beta' of mixture 'mix' holds 3 episodes, its manifest .* says 4"):  # fmt: skip
        open_dataset("mix", progress=False)
    write_tiny_dataset(data / "wide.h5", lengths=(5,), tasks=("reach",), mapping="robomimic")
    _write_mixture(manifests, [{"name": "alpha", "episodes": 2}, {"name": "wide", "file": "wide.h5", "episodes": 1, "key_mapping": "robomimic"}])  # fmt: skip
    with pytest.raises(DataError, match="components of mixture 'mix' disagree on cameras"):
        open_dataset("mix", progress=False)


def test_a_capability_one_component_lacks_is_not_the_mixtures(mixture, dirs):
    data, manifests = dirs
    plain = write_tiny_dataset(data / "plain.h5", lengths=(5,), tasks=("reach",), image_size=8)
    with h5py.File(plain, "a") as f:
        del f["data"].attrs["instructions"]
    _write_mixture(manifests, [{"name": "alpha", "episodes": 2}, {"name": "plain", "file": "plain.h5", "episodes": 1}])  # fmt: skip
    store = open_dataset("mix", progress=False)
    assert store.has("success_flags") and not store.has("instruction_phrasings")
    with pytest.raises(CapabilityError) as err:
        store.instruction_phrasings()
    assert "mix.yaml: no instruction_phrasings" in str(err.value)
    assert f"component 'plain' ({plain}) has none" in str(err.value)
