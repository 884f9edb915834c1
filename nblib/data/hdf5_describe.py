"""``nblib data describe FILE.hdf5``: the key mapping of a user's HDF5 demo file, guessed
from its layout, and the manifest that opens it.

The layouts guessed from are the committed HDF5 key mappings of :data:`LAYOUTS`:
robomimic (``data/demo_i/obs/agentview_image``, ``robot0_*`` proprio, the task in the
``env_args`` JSON attribute of ``data``), LIBERO (``obs/agentview_rgb``,
``obs/eye_in_hand_rgb``, ``obs/ee_pos``/``ee_ori``/``gripper_states``, the instruction in
the ``problem_info`` JSON attribute of ``data``), the suite's own Meta-World file
(``obs/<camera>_image``, ``obs/eef_pos``, text in demo attributes) and the NVIDIA Cosmos
file. Only the first demo is inspected to guess; :func:`~nblib.data.hdf5_check.check_hdf5`
then checks every demo against the result.

- A file that holds everything one layout names, and no other layout's, is read with that
  mapping as it is (``key_mapping: robomimic``).
- Otherwise the layout sharing the most keys is adapted: every RGB dataset under ``obs/``
  becomes a camera (the layout's own first), the layout's proprio keys that exist are kept
  at their real widths, ``action_dim`` is read from the data, and text the file does not
  hold becomes none. The adapted mapping is written next to the committed ones under the manifest's name, and
  every difference from the layout is reported, so nothing is guessed silently.
- No RGB frames, no actions, two layouts equally close, or none close at all: a
  :class:`~nblib.errors.DataError` listing the keys found and the mapping field missing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nblib.data.hdf5 import DemoStore, natural_key, open_h5
from nblib.data.hdf5_check import check_hdf5
from nblib.data.manifest import content_sha256, file_sha256, write_manifest
from nblib.data.mapping import KeyMapping, load_mapping, mapping_from_dict
from nblib.errors import DataError, ManifestError, ParameterError
from nblib.paths import manifests_dir, write_text_atomic

# The committed HDF5 layouts a file's mapping is guessed from (data_manifests/key_mappings).
LAYOUTS = ("robomimic", "libero", "metaworld", "nvidia_cosmos")
IMAGE_SUFFIXES = ("_image", "_rgb")  # robomimic's and LIBERO's camera key endings
MAX_LISTED = 30  # keys listed in an error before "..."
NO_TASK = "(no task text)"  # the counts.tasks entry of demos whose mapping reads no task


@dataclass
class Guess:
    """The mapping chosen for a file: a committed layout as is (``exact``) or adapted from
    the closest one (``base``), with what was changed (``notes``)."""

    mapping: KeyMapping
    base: str
    exact: bool
    notes: list[str] = field(default_factory=list)


@dataclass
class _Layout:
    """What the first demo of a file holds: datasets (key -> shape, dtype) and the three
    attribute holders a mapping reads text from."""

    path: Path
    demo: str
    datasets: dict[str, tuple[tuple[int, ...], np.dtype]]
    holders: tuple  # (demo group, demo parent group, file) as h5py objects

    def listing(self) -> str:
        keys = [f"{k} {list(s)} {d}" for k, (s, d) in self.datasets.items()]
        more = f", ... ({len(keys) - MAX_LISTED} more)" if len(keys) > MAX_LISTED else ""
        return f"keys in '{self.demo}': " + "; ".join(keys[:MAX_LISTED]) + more

    def attrs(self) -> str:
        demo, group, file = self.holders
        return (
            f"attributes of '{self.demo}': {sorted(demo.attrs)}, of '{group.name}': "
            f"{sorted(group.attrs)}, of the file: {sorted(file.attrs)}"
        )

    def is_rgb(self, key: str) -> bool:
        shape, dtype = self.datasets.get(key, ((), None))
        return len(shape) == 4 and shape[-1] == 3 and dtype == np.uint8

    def width(self, key: str) -> int | None:
        """Columns per step of a (T, D) or (T,) dataset, else None."""
        shape, _ = self.datasets.get(key, ((), None))
        if len(shape) == 1:
            return 1
        return shape[1] if len(shape) == 2 and shape[1] > 0 else None


def _problems(mapping: KeyMapping, layout: _Layout) -> list[str]:
    """Why ``mapping`` cannot read the first demo as it is (empty: it can)."""
    out = []
    for cam, key in mapping.images.items():
        if not layout.is_rgb(key):
            out.append(f"images.{cam}: no (T, H, W, 3) uint8 dataset '{key}'")
    for key, width in mapping.proprio.items():
        if layout.width(key) != width:
            out.append(f"proprio: no (T, {width}) dataset '{key}'")
    if layout.width(mapping.actions) != mapping.action_dim:
        out.append(f"actions: no (T, {mapping.action_dim}) dataset '{mapping.actions}'")
    for what in ("instruction", "task"):
        try:
            mapping.text_source(what, *layout.holders)
        except ManifestError:
            out.append(f"{what}: {_source_text(getattr(mapping, what))} not in the file")
    return out


def _source_text(spec: dict) -> str:
    kind = next(k for k in spec if k != "json_field")
    extra = f" (JSON field '{spec['json_field']}')" if "json_field" in spec else ""
    return f"{kind} '{spec[kind]}'{extra}"


def _score(mapping: KeyMapping, layout: _Layout) -> int:
    """How many of a layout's own keys and text sources the file holds (actions, which
    every layout names alike, do not count; text alone, e.g. a demo attribute
    ``instruction``, is no evidence of a layout)."""
    keys = [*mapping.images.values(), *mapping.proprio]
    hits = sum(key in layout.datasets for key in keys)
    if not hits:
        return 0
    for what in ("instruction", "task"):
        spec = getattr(mapping, what)
        if "constant" not in spec:
            try:
                mapping.text_source(what, *layout.holders)
                hits += 1
            except ManifestError:
                pass
    return hits


def _read_layout(path: Path, f, group: str) -> _Layout:
    if group not in f or not hasattr(f[group], "keys"):
        raise DataError(
            f"{path}: no demo group '{group}' (mapping field 'demo_group'); top-level keys: "
            f"{sorted(f.keys())}. Write a key mapping for this layout and pass it with --mapping."
        )
    names = sorted((k for k in f[group].keys() if k.startswith("demo")), key=natural_key)
    if not names:
        raise DataError(
            f"{path}: group '{group}' holds no demo groups (demo_0, demo_1, ...); keys there: "
            f"{sorted(f[group].keys())[:MAX_LISTED]}"
        )
    demo = f[group][names[0]]
    datasets: dict = {}

    def visit(key, obj):
        if hasattr(obj, "shape"):
            datasets[key] = (tuple(obj.shape), obj.dtype)

    demo.visititems(visit)
    return _Layout(path, names[0], datasets, (demo, f[group], f))


def guess_mapping(path: str | Path, name: str) -> Guess:
    """The key mapping for the HDF5 file ``path``, from the first demo's layout (see the
    module docstring); an adapted mapping is named ``name``."""
    path = Path(path)
    layouts = {n: load_mapping(n) for n in LAYOUTS}
    with open_h5(path) as f:
        layout = _read_layout(path, f, "data")
        problems = {n: _problems(m, layout) for n, m in layouts.items()}
        exact = [n for n, p in problems.items() if not p]
        if len(exact) > 1:
            raise DataError(
                f"{path}: ambiguous layout: the file holds everything that key mappings "
                f"{exact} read. Choose one with --mapping NAME. {layout.listing()}"
            )
        if exact:
            chosen = layouts[exact[0]]
            unread = [
                k
                for k in layout.datasets
                if k.startswith("obs/") and layout.is_rgb(k) and k not in chosen.images.values()
            ]
            notes = [f"RGB datasets the '{exact[0]}' mapping does not read: {unread}"] * bool(
                unread
            )
            return Guess(chosen, exact[0], exact=True, notes=notes)
        scores = {n: _score(m, layout) for n, m in layouts.items()}
        best = max(scores.values())
        closest = [n for n, s in scores.items() if s == best]
        if best == 0:
            raise DataError(
                f"{path}: no known layout ({', '.join(LAYOUTS)}) matches: none of their image, "
                f"proprio or text keys is in the file (mapping fields 'images' and 'proprio' "
                f"missing). {layout.listing()}; {layout.attrs()}. Write a key mapping "
                "(data_manifests/key_mappings/*.json shows the format) and pass --mapping."
            )
        if len(closest) > 1:
            raise DataError(
                f"{path}: ambiguous layout: it shares as many keys ({best}) with key mappings "
                f"{closest}, and neither reads it as it is "
                f"({'; '.join(f'{n}: ' + ', '.join(problems[n]) for n in closest)}). "
                f"Choose one with --mapping NAME. {layout.listing()}"
            )
        return _adapt(layouts[closest[0]], layout, name, problems[closest[0]])


def _camera_name(key: str, base: KeyMapping) -> str:
    for cam, base_key in base.images.items():
        if base_key == key:
            return cam
    stem = key.rsplit("/", 1)[-1]
    for suffix in IMAGE_SUFFIXES:
        stem = stem.removesuffix(suffix)
    return stem


def _adapt(base: KeyMapping, layout: _Layout, name: str, problems: list[str]) -> Guess:
    """``base`` changed to read ``layout``: its cameras, widths and text as the file has them."""
    rgb = [k for k in layout.datasets if k.startswith("obs/") and layout.is_rgb(k)]
    if not rgb:
        near = [f"{k} {list(s)} {d}" for k, (s, d) in layout.datasets.items() if len(s) in (4, 5)]
        raise DataError(
            f"{layout.path}: no camera frames found (mapping field 'images' is missing): "
            "expected (T, H, W, 3) uint8 datasets under obs/ in "
            f"'{layout.demo}'{f'; image-like but not RGB: {near}' if near else ''}. "
            f"{layout.listing()}. Render frames into the file first (robomimic low-dim "
            "files have none), or pass --mapping with a mapping naming them."
        )
    action_dim = layout.width(base.actions)
    if action_dim is None:
        raise DataError(
            f"{layout.path}: no actions found (mapping field 'actions' is missing): "
            f"expected a (T, action_dim) dataset '{base.actions}' in '{layout.demo}' "
            f"(closest layout: {base.name}). {layout.listing()}"
        )
    # The layout's own cameras first, in its order (the first camera is the default view
    # of the figures), then the others by name.
    order = list(base.images.values())
    rgb.sort(key=lambda k: (order.index(k) if k in order else len(order), natural_key(k)))
    images = {_camera_name(k, base): k for k in rgb}
    proprio = {k: layout.width(k) for k in base.proprio if layout.width(k)}
    text = {}
    for what in ("instruction", "task"):
        spec = getattr(base, what)
        try:
            base.text_source(what, *layout.holders)
            text[what] = spec
        except ManifestError:
            text[what] = {"constant": None}
    names = base.action_names if action_dim == base.action_dim else None
    data = {
        "name": name,
        "description": f"Guessed by `nblib data describe` from {layout.path.name}, adapted "
        f"from the '{base.name}' layout ({'; '.join(problems)}).",
        "demo_group": base.demo_group,
        "images": images,
        "proprio": proprio,
        "actions": base.actions,
        "action_dim": action_dim,
        **({"action_names": names} if names else {}),
        **text,
    }
    mapping = mapping_from_dict(data, where=f"mapping guessed for {layout.path}")
    notes = [f"closest layout '{base.name}' cannot read it as it is: {'; '.join(problems)}"]
    notes.append(f"cameras: {images}")
    dropped = [k for k in base.proprio if k not in proprio]
    if dropped:
        notes.append(f"proprio keys not in the file, left out: {dropped}")
    if not proprio:
        notes.append("no proprio: the policy sees images and text only")
    unused = [
        k
        for k, (shape, _) in layout.datasets.items()
        if k.startswith("obs/") and len(shape) in (1, 2) and k not in proprio
    ]
    if unused:
        notes.append(f"obs/ arrays not read as proprio (add them with --mapping): {unused}")
    for what, spec in text.items():
        if spec != getattr(base, what):
            notes.append(f"{what}: none ({_source_text(getattr(base, what))} not in the file)")
    return Guess(mapping, base.name, exact=False, notes=notes)


def mapping_dict(mapping: KeyMapping) -> dict:
    """A mapping as the JSON :func:`~nblib.data.mapping.load_mapping` reads."""
    out = {
        "name": mapping.name,
        "description": mapping.description,
        "demo_group": mapping.demo_group,
        "images": mapping.images,
        "proprio": mapping.proprio,
        "actions": mapping.actions,
        "action_dim": mapping.action_dim,
    }
    if mapping.action_names:
        out["action_names"] = mapping.action_names
    return {**out, "instruction": mapping.instruction, "task": mapping.task}


def _mapping_file(mapping: KeyMapping) -> tuple[Path, str]:
    """Where an adapted mapping is saved and its JSON text; refuses a committed layout's
    name or a different mapping already saved under that name."""
    path = manifests_dir() / "key_mappings" / f"{mapping.name}.json"
    text = json.dumps(mapping_dict(mapping), indent=2) + "\n"
    if mapping.name in LAYOUTS:
        raise ParameterError(
            f"--manifest: '{mapping.name}' is a committed key mapping ({path}); the guessed "
            "mapping is saved under the manifest's name: choose another name"
        )
    if path.exists() and path.read_text() != text:
        raise ParameterError(
            f"--manifest: {path} already holds a different key mapping '{mapping.name}'. "
            f"Pass --mapping {mapping.name} to describe the file with it, or move it away "
            "to save the guessed one"
        )
    return path, text


def choose_mapping(path: str | Path, name: str, mapping: str | Path | None = None) -> Guess:
    """``mapping`` (a key mapping name or JSON path) as given, else the guessed one."""
    if mapping is None:
        return guess_mapping(path, name)
    chosen = load_mapping(mapping)
    return Guess(chosen, str(mapping), exact=True)


def write_hdf5_manifest(
    path: str | Path, name: str, description: str = "", mapping: str | Path | None = None
) -> tuple[Path, dict, Guess]:
    """Describe the HDF5 file ``path`` (:func:`describe_hdf5`) and write
    ``data_manifests/<name>.yaml``, and, for an adapted mapping,
    ``data_manifests/key_mappings/<name>.json``; returns the manifest's path and dict and
    the mapping used."""
    guess = choose_mapping(path, name, mapping)
    saved = None if guess.exact else _mapping_file(guess.mapping)  # refuse before hashing
    data = describe_hdf5(path, name, description, guess)
    if saved is not None:
        write_text_atomic(*saved)
    return write_manifest(data, manifests_dir() / f"{name}.yaml"), data, guess


def describe_hdf5(path: str | Path, name: str, description: str, guess: Guess) -> dict:
    """The manifest dict for an HDF5 demo file read with ``guess.mapping`` (the fields a
    LeRobot folder's manifest has: counts per task, cameras, fps, size and checksums).
    Every demo is checked first (:func:`~nblib.data.hdf5_check.check_hdf5`)."""
    path = Path(path).resolve()
    m = guess.mapping
    summary = check_hdf5(path, m)
    store = DemoStore(path, m)  # its task texts and control rate, as notebooks will see them
    tasks: dict = {}
    for demo in store.demos:
        text = store.task[demo]
        entry = tasks.setdefault(NO_TASK if text is None else text, {"demos": 0, "steps": 0})
        entry["demos"] += 1
        entry["steps"] += store.lengths[demo]
    fps = store.control_rate() if store.has("control_rate") else None
    key = guess.base if guess.exact else name
    if key.endswith(".json"):  # a mapping given as a JSON file: kept absolute
        key = str(Path(key).resolve())
    return {
        "name": name,
        "kind": "dataset",
        "format": "hdf5",
        "description": description or f"HDF5 demo file read with the '{key}' key mapping.",
        "file": str(path),
        "key_mapping": key,
        "fps": fps,
        "counts": {"demos": summary.demos, "steps": summary.steps, "tasks": tasks},
        "cameras": {
            cam: {"image_key": m.images[cam], "shape": list(shape)}
            for cam, shape in summary.cameras.items()
        },
        "size_bytes": path.stat().st_size,
        "sha256": file_sha256(path),
        "content_sha256": content_sha256(path, m.demo_group),
    }
