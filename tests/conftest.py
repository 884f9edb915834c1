"""Loaded by pytest before the test modules: importing nblib first puts its OpenMP wait
setting in the environment before any test module imports torch (see nblib.threads)."""

import pytest
from tiny_data import write_tiny_dataset

import nblib  # noqa: F401
from nblib.data.manifest import content_sha256, file_sha256, write_manifest


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


@pytest.fixture(scope="module")
def real_manifest(tmp_path_factory):
    """The path of a manifest 'real' describing Meta-World expert demos rendered by the
    generator (reach and push, 3 each, 32 px; ~5 s): demos that replay exactly, as
    geometry tokens need."""
    import os

    os.environ.setdefault("MUJOCO_GL", "egl")
    from nblib.data.manifest import describe_generated
    from nblib.data.metaworld_gen import GenerateConfig, generate

    root = tmp_path_factory.mktemp("real")
    config = GenerateConfig(tasks=("reach", "push"), demos=3, size=32, max_steps=100)
    generate(config, root / "real.hdf5", progress=False)
    manifest = write_manifest(
        describe_generated(root / "real.hdf5", "real", config), root / "real.yaml"
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NBLIB_CACHE", str(root / "cache"))
        yield str(manifest)


@pytest.fixture(scope="module")
def tiny_saved_policy(tiny_manifest, tmp_path_factory):
    """The run folder of a 3-step overfit policy on the tiny dataset (reach and push demos,
    32-pixel frames of Meta-World's camera names), saved as notebook 01 saves it."""
    from nblib.studies import overfit

    config = overfit.OverfitConfig(
        demos=2, manifest=tiny_manifest, val_demos=1, horizon=4, steps=3, warmup_steps=1
    )
    exp = overfit.prepare(config, progress=False)
    history = overfit.fit(exp, progress=False)
    folder = tmp_path_factory.mktemp("tiny_run")
    overfit.save_policy(exp, history, folder)
    return folder
