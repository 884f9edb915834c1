"""Dataset manifests: what a dataset is, where its file lives, and how to check it.

A manifest is a YAML file in ``data_manifests/``. ``kind: dataset`` describes one HDF5
file or LeRobot folder (layout via ``key_mapping``, tasks, counts, cameras, generator and
seed, checksums); ``kind: mixture`` a list of datasets with their episode counts (seed
002's ``libero_all``), opened as one store of all their demos (:func:`open_mixture`).

Two checksums are kept because rendering differs between machines (Mesa's llvmpipe vs a
GPU's EGL driver give slightly different pixels) while MuJoCo physics does not:
``sha256`` of the whole file, and ``content_sha256`` of the low-dimensional arrays and
text (actions, states, proprio, instructions). A regenerated file that matches the content
but not the bytes is accepted with a warning; anything else is an error.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import yaml

from nblib.data.formats import is_lerobot_folder, open_store
from nblib.data.hdf5 import demo_names, open_h5
from nblib.data.lerobot_layout import content_sha256 as folder_sha256
from nblib.data.mapping import KeyMapping
from nblib.data.mixture import MixtureStore
from nblib.data.store import StoreBase
from nblib.errors import DataError, ManifestError, ParameterError
from nblib.paths import data_dir, manifests_dir, write_text_atomic

DEFAULT_DATASET = "metaworld_default"
_KINDS = ("dataset", "mixture")
_NO_WEIGHTS = (
    "mixture weights are not supported: a mixture opens as all its components' demos, each "
    "counted once; remove the weight (or subsample a component's demos yourself)"
)


@dataclass
class Manifest:
    name: str
    kind: str
    raw: dict
    path: Path | None = None

    @property
    def key_mapping(self) -> str:
        return self.raw.get("key_mapping", "metaworld")

    @property
    def data_path(self) -> Path:
        """The dataset file: absolute as written, else relative to the data folder."""
        if self.kind != "dataset" or not self.raw.get("file"):
            raise ManifestError(f"manifest '{self.name}' ({self.path}) names no dataset file")
        file = Path(self.raw["file"]).expanduser()
        return file if file.is_absolute() else data_dir() / file

    @property
    def generator(self) -> dict | None:
        return self.raw.get("generator")


def available_manifests() -> list[str]:
    return sorted(p.stem for p in manifests_dir().glob("*.yaml"))


def load_manifest(name_or_path: str | Path) -> Manifest:
    """Load a manifest by name (``metaworld_default``) or path, validating its fields."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = manifests_dir() / f"{name_or_path}.yaml"
    if not path.exists():
        raise ManifestError(
            f"manifest '{name_or_path}' not found at {path}; known: {', '.join(available_manifests())}"
        )
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ManifestError(f"{path}: not valid YAML ({err})") from err
    if not isinstance(raw, dict):
        raise ManifestError(f"{path}: a manifest must be a mapping, got {type(raw).__name__}")
    for key in ("name", "kind"):
        if key not in raw:
            raise ManifestError(f"{path}: missing key '{key}' (keys present: {sorted(raw)})")
    if raw["kind"] not in _KINDS:
        raise ManifestError(f"{path}: kind must be one of {_KINDS}, got {raw['kind']!r}")
    if raw["kind"] == "mixture":
        _check_mixture(raw, path)
    return Manifest(name=raw["name"], kind=raw["kind"], raw=raw, path=path)


def _check_mixture(raw: dict, path: Path) -> None:
    comps = raw.get("components")
    if not isinstance(comps, list) or not comps:
        raise ManifestError(f"{path}: a mixture needs a non-empty 'components' list")
    if "weights" in raw:
        raise ManifestError(f"{path}: {_NO_WEIGHTS} (found 'weights')")
    for i, c in enumerate(comps):
        if not isinstance(c, dict):
            raise ManifestError(f"{path}: components[{i}] should be a mapping, got {c!r}")
        for key in ("name", "episodes"):
            if key not in c:
                raise ManifestError(f"{path}: components[{i}] misses '{key}'")
        if "weight" in c:
            raise ManifestError(f"{path}: components[{i}] ('{c['name']}'): {_NO_WEIGHTS}")
    totals = raw.get("totals", {})
    if "episodes" in totals:
        total = sum(c["episodes"] for c in comps)
        if total != totals["episodes"]:
            raise ManifestError(
                f"{path}: totals.episodes is {totals['episodes']} but the components add up to {total}"
            )


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def content_sha256(path: str | Path, group: str = "data") -> str:
    """Hash of every demo's non-image arrays and text attributes, in natural demo order."""
    h = hashlib.sha256()
    with open_h5(path) as f:
        for name in demo_names(f, group, path):
            demo = f[group][name]
            h.update(name.encode())
            for key in ("task", "instruction"):
                h.update(str(demo.attrs.get(key, "")).encode())

            def visit(key, obj, demo=demo):
                if hasattr(obj, "dtype") and obj.ndim < 4 and "camera" not in key:
                    h.update(key.encode())
                    h.update(obj[()].astype("<f4").tobytes())

            demo.visititems(visit)
    return h.hexdigest()


def verify_dataset(manifest: Manifest, path: Path | None = None) -> str:
    """Check a file against its manifest: returns ``"exact"`` or ``"content"``.

    Raises DataError when neither checksum matches; warns when only the content does.
    """
    path = path or manifest.data_path
    if is_lerobot_folder(path):  # its Parquet content is what can be checked
        want = manifest.raw.get("content_sha256")
        if not want:
            raise ManifestError(f"{manifest.path}: no 'content_sha256' recorded for {path}")
        if folder_sha256(path) != want:
            raise DataError(
                f"{path}: does not match manifest '{manifest.name}' ({manifest.path}): the "
                "content checksum of its Parquet data differs. Point the manifest at the "
                "right folder, or describe this one again (`nblib data export ... --manifest`)."
            )
        return "content"
    expected = manifest.raw.get("sha256")
    if not expected:
        raise ManifestError(f"{manifest.path}: no 'sha256' recorded for {path}")
    if file_sha256(path) == expected:
        return "exact"
    want = manifest.raw.get("content_sha256")
    got = content_sha256(path)
    if want and got == want:
        warnings.warn(
            f"{path}: file bytes differ from manifest '{manifest.name}' but all actions, states "
            "and instructions match: frames were rendered by a different OpenGL driver.",
            stacklevel=2,
        )
        return "content"
    raise DataError(
        f"{path}: does not match manifest '{manifest.name}' ({manifest.path}): sha256 and "
        f"content checksum both differ. Delete the file and run `nblib data generate` again, "
        "or point the manifest at the right file."
    )


def ensure_dataset(
    name_or_manifest: str | Manifest = DEFAULT_DATASET, progress: bool = True
) -> Path:
    """The dataset's file, generated first if it is missing and the manifest says how.

    Verifies the checksums afterwards, so a notebook never runs on a file that differs
    from what its manifest describes.
    """
    manifest = (
        name_or_manifest
        if isinstance(name_or_manifest, Manifest)
        else load_manifest(name_or_manifest)
    )
    path = manifest.data_path
    if not path.exists():
        if not manifest.generator:
            raise DataError(
                f"{path}: dataset file for manifest '{manifest.name}' is missing and the "
                "manifest has no generator; put the file there or edit 'file' in "
                f"{manifest.path}."
            )
        from nblib.data.metaworld_gen import generate

        generate(config_from_manifest(manifest), path, progress=progress)
    verify_dataset(manifest, path)
    return path


def open_dataset(
    manifest: str | Path | Manifest = DEFAULT_DATASET,
    mapping: str | KeyMapping | None = None,
    cameras: list[str] | None = None,
    demos: list[str] | None = None,
    progress: bool = True,
) -> StoreBase:
    """The demos of a manifest's dataset, ready to read: the file is generated first when
    it is missing and the manifest says how, and checked against the manifest's checksums
    (:func:`ensure_dataset`); a mixture opens as one store of its components
    (:func:`open_mixture`). ``mapping`` overrides the manifest's key mapping; ``cameras``
    and ``demos`` narrow the store to those (default: all)."""
    m = manifest if isinstance(manifest, Manifest) else load_manifest(manifest)
    if m.kind == "mixture":
        store = open_mixture(m, mapping=mapping, cameras=cameras, progress=progress)
        return store if demos is None else store.subset(demos)
    path = ensure_dataset(m, progress=progress)
    return open_store(path, mapping=mapping or m.key_mapping, demos=demos, cameras=cameras)


def open_data(data: str, mapping: str | None = None):
    """``(store, manifest)`` of ``data``: a manifest (name or .yaml; its file generated
    on first use and checksum-verified) or an HDF5 file / LeRobot folder (no manifest)."""
    path = Path(data).expanduser()
    if path.suffix in (".yaml", ".yml") or data in available_manifests():
        manifest = load_manifest(data)
        return open_dataset(manifest, mapping=mapping, progress=False), manifest
    if path.exists():
        return open_store(path, mapping=mapping), None
    raise ParameterError(
        f"data={data!r}: no such file or folder, and not a manifest (known manifests: "
        f"{', '.join(available_manifests())})"
    )


def open_mixture(
    manifest: Manifest,
    mapping: str | KeyMapping | None = None,
    cameras: list[str] | None = None,
    progress: bool = True,
) -> MixtureStore:
    """A mixture manifest's components as one :class:`~nblib.data.mixture.MixtureStore`
    (demos named ``<component>/<demo>``), when every component is here.

    A component is found, in this order, at its ``file`` (absolute, or relative to the
    data folder), through the dataset manifest of its name (checksums verified, as
    :func:`open_dataset` does), or as ``<data folder>/<name>`` (a file or LeRobot folder).
    Its key mapping is ``mapping`` if given, else the component's ``key_mapping``, else
    that of its own manifest, else the mixture's, else its format's default. Each must
    hold the episodes the manifest counts.
    """
    found, missing = {}, []
    for comp in manifest.raw["components"]:
        where = _locate(manifest, comp)
        if isinstance(where, str):
            missing.append(f"'{comp['name']}' (looked for {where})")
        else:
            found[comp["name"]] = where
    if missing:
        raise DataError(
            f"{manifest.path}: mixture '{manifest.name}' is missing {len(missing)} of its "
            f"{len(manifest.raw['components'])} components: {'; '.join(missing)}. Put each "
            "where it was looked for, or give its location as the component's 'file'."
        )
    stores = {}
    for comp in manifest.raw["components"]:
        name, where = comp["name"], found[comp["name"]]
        chosen = mapping or comp.get("key_mapping")
        if isinstance(where, Manifest):  # its own key mapping unless one is chosen
            store = open_dataset(where, mapping=chosen, cameras=cameras, progress=progress)
        else:
            chosen = chosen or manifest.raw.get("key_mapping")
            store = open_store(where, mapping=chosen, cameras=cameras)
        if len(store.demos) != comp["episodes"]:
            raise DataError(
                f"{store.path}: component '{name}' of mixture '{manifest.name}' holds "
                f"{len(store.demos)} episodes, its manifest {manifest.path} says "
                f"{comp['episodes']}"
            )
        stores[name] = store
    return MixtureStore(manifest.name, manifest.path, stores, cache_dir=data_dir())


def _locate(mixture: Manifest, comp: dict) -> Manifest | Path | str:
    """Where a mixture's component is: its dataset manifest or its path; when it is not
    here, the places it was looked for (a str)."""
    name = comp["name"]
    if comp.get("file"):
        file = Path(comp["file"]).expanduser()
        path = file if file.is_absolute() else data_dir() / file
        return path if path.exists() else str(path)
    own = manifests_dir() / f"{name}.yaml"
    if own.exists():
        sub = load_manifest(own)
        if sub.kind != "dataset":
            raise ManifestError(
                f"{mixture.path}: component '{name}' is itself a {sub.kind} ({own}); "
                "a mixture's components are datasets"
            )
        if sub.data_path.exists() or sub.generator:
            return sub
        return f"{sub.data_path}, named by {own}"
    path = data_dir() / name
    return path if path.exists() else f"a manifest {own} or {path}"


def config_from_manifest(manifest: Manifest):
    from nblib.data.metaworld_gen import GENERATOR_VERSION, GenerateConfig

    gen = dict(manifest.generator)
    version = str(gen.pop("version", GENERATOR_VERSION))
    if version != GENERATOR_VERSION:
        raise ManifestError(
            f"{manifest.path}: generator version {version} but this nblib has {GENERATOR_VERSION}"
        )
    gen.pop("command", None)
    known = GenerateConfig.__dataclass_fields__
    unknown = set(gen) - set(known)
    if unknown:
        raise ManifestError(f"{manifest.path}: unknown generator settings {sorted(unknown)}")
    for key in ("tasks", "cameras"):
        if key in gen:
            gen[key] = tuple(gen[key])
    return GenerateConfig(**gen)


def describe_generated(path: Path, name: str, cfg, description: str = "") -> dict:
    """The manifest dict for a freshly generated file (counts, cameras, checksums)."""
    import metaworld  # noqa: F401  (version recorded below)
    import mujoco

    from nblib.data.metaworld_gen import GENERATOR_VERSION, INSTRUCTIONS

    counts: dict = {"demos": 0, "steps": 0, "tasks": {}}
    cameras: dict = {}
    with open_h5(path) as f:
        for demo_name in demo_names(f, "data", path):
            demo = f["data"][demo_name]
            task, n = str(demo.attrs["task"]), int(demo.attrs["num_samples"])
            entry = counts["tasks"].setdefault(task, {"demos": 0, "steps": 0, "failed": 0})
            entry["demos"] += 1
            entry["steps"] += n
            entry["failed"] += int(not demo.attrs["success"])
            counts["demos"] += 1
            counts["steps"] += n
            if not cameras:
                for cam in demo["camera"]:
                    ext = demo["camera"][cam]["extrinsics"][()]
                    static = bool((abs(ext - ext[0]) < 1e-6).all())
                    cameras[cam] = {
                        "image_key": f"obs/{cam}_image",
                        "shape": list(demo["obs"][f"{cam}_image"].shape[1:]),
                        "intrinsics": demo["camera"][cam]["intrinsics"][()].round(4).tolist(),
                        "extrinsics": ext[0].round(5).tolist()
                        if static
                        else "per step (moves with the hand)",
                    }
    gen = {
        k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(cfg).items() if k != "extra"
    }
    return {
        "name": name,
        "kind": "dataset",
        "description": description
        or "Meta-World expert demos rendered headless with MuJoCo by `nblib data generate`.",
        "file": path.name,
        "key_mapping": "metaworld",
        "generator": {"command": "nblib data generate", "version": GENERATOR_VERSION, **gen},
        "software": {"mujoco": mujoco.__version__, "metaworld": _dist_version("metaworld")},
        "counts": counts,
        "cameras": cameras,
        "instructions": {t: INSTRUCTIONS[t] for t in cfg.tasks},
        "size_bytes": path.stat().st_size,
        "sha256": file_sha256(path),
        "content_sha256": content_sha256(path),
    }


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def write_manifest(data: dict, path: Path) -> Path:
    return write_text_atomic(path, yaml.safe_dump(data, sort_keys=False, width=100))
