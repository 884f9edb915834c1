"""Tests for nblib.data.manifest: loading, mixtures, checksum verification, ensure_dataset.

The committed manifests are read as they are; everything else is written to tmp_path with
NBLIB_DATA / NBLIB_MANIFESTS pointing there, so the real data folder is never touched.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import h5py
import pytest
import yaml
from tiny_data import set_value, write_tiny_dataset

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
from nblib.errors import DataError, ManifestError
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
    assert m.kind == "mixture" and m.key_mapping == "libero"
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
