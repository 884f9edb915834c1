"""Dataset key mappings: the model's names -> the HDF5 paths of one file layout.

A mapping is a small JSON file in ``data_manifests/key_mappings/``::

    {"name": "metaworld", "demo_group": "data",
     "images": {"corner": "obs/corner_image", ...},      # camera name -> key in a demo
     "proprio": {"obs/eef_pos": 3, ...},                   # concatenated in this order
     "actions": "actions", "action_dim": 4,
     "instruction": {"demo_attr": "instruction"},           # or group_attr/file_attr/constant
     "task": {"demo_attr": "task"}}

``instruction`` and ``task`` say where a demo's text comes from: an attribute of the demo
group (``demo_attr``), of the group holding the demos (``group_attr``), of the file
(``file_attr``), optionally a field of a JSON string (``json_field``), or a ``constant``.

A mapping with ``"format": "lerobot"`` names LeRobot features instead of HDF5 paths
(``"images": {"*": "observation.images.*"}`` takes every camera feature, widths written
``"auto"`` come from the folder's ``meta/info.json``, and ``{"lerobot": "task"}`` is the
episode's task text from the folder's task metadata);
:func:`nblib.data.lerobot_layout.resolve_mapping` resolves it against a folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nblib.errors import ManifestError
from nblib.paths import manifests_dir

_SOURCE_KINDS = ("demo_attr", "group_attr", "file_attr", "constant", "lerobot")
FORMATS = ("hdf5", "lerobot")
AUTO = 0  # a width or action_dim written "auto": filled in from the dataset (LeRobot only)


@dataclass(frozen=True)
class KeyMapping:
    """Where ``images``, ``proprio``, ``actions`` and ``instruction`` live in one layout."""

    name: str
    demo_group: str
    images: dict[str, str]
    proprio: dict[str, int]
    actions: str
    action_dim: int
    instruction: dict[str, Any]
    task: dict[str, Any] = field(default_factory=lambda: {"constant": None})
    action_names: list[str] | None = None  # e.g. ["dx", "dy", "dz", "gripper"] for figures
    description: str = ""
    path: Path | None = None
    format: str = "hdf5"  # or "lerobot": keys are LeRobot feature names

    def action_labels(self) -> list[str]:
        return list(self.action_names or [f"a[{i}]" for i in range(self.action_dim)])

    @property
    def proprio_dim(self) -> int:
        return sum(self.proprio.values())

    @property
    def cameras(self) -> list[str]:
        return list(self.images)

    def text_source(self, what: str, demo: Any, group: Any, file: Any) -> str | None:
        """Read ``instruction`` or ``task`` text for one demo group (h5py objects)."""
        spec = getattr(self, what)
        if "constant" in spec:
            return spec["constant"]
        kind = next(k for k in _SOURCE_KINDS if k in spec)
        holder = {"demo_attr": demo, "group_attr": group, "file_attr": file}[kind]
        attr = spec[kind]
        if attr not in holder.attrs:
            raise ManifestError(
                f"{file.filename}: mapping '{self.name}' reads {what} from attribute "
                f"'{attr}' of '{holder.name}', which has attributes {sorted(holder.attrs)}"
            )
        value = holder.attrs[attr]
        if isinstance(value, bytes):
            value = value.decode()
        if "json_field" in spec:
            try:
                value = json.loads(value)[spec["json_field"]]
            except (ValueError, KeyError, TypeError) as err:
                raise ManifestError(
                    f"{file.filename}: attribute '{attr}' of '{holder.name}' should be JSON "
                    f"with a field '{spec['json_field']}' ({err})"
                ) from err
        return str(value)


def _require(data: dict, key: str, kind: type, where: str) -> Any:
    if key not in data:
        raise ManifestError(f"{where}: missing key '{key}' (keys present: {sorted(data)})")
    if not isinstance(data[key], kind):
        raise ManifestError(
            f"{where}: '{key}' should be {kind.__name__}, got {type(data[key]).__name__}"
        )
    return data[key]


def _check_source(spec: Any, key: str, where: str, fmt: str) -> dict:
    if not isinstance(spec, dict) or not any(k in spec for k in _SOURCE_KINDS):
        raise ManifestError(f"{where}: '{key}' should be an object with one of {_SOURCE_KINDS}")
    lerobot = "lerobot" in spec
    if fmt == "lerobot" and not (lerobot or "constant" in spec):
        raise ManifestError(
            f'{where}: \'{key}\' of a LeRobot mapping is {{"lerobot": "task"}} or a constant'
        )
    if lerobot and (fmt != "lerobot" or spec["lerobot"] != "task"):
        raise ManifestError(f'{where}: \'{key}\': {{"lerobot": "task"}} needs "format": "lerobot"')
    return spec


def _width(value: Any, what: str, fmt: str, where: str) -> int:
    """A positive int, or ``AUTO`` for "auto" in a LeRobot mapping."""
    if value == "auto" and fmt == "lerobot":
        return AUTO
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        auto = ' (or "auto")' if fmt == "lerobot" else ""
        raise ManifestError(f"{where}: {what} needs a positive int{auto}, got {value!r}")
    return value


def mapping_from_dict(data: dict, where: str = "<mapping>") -> KeyMapping:
    """Validate a mapping dict and build a :class:`KeyMapping`; errors name ``where``."""
    fmt = data.get("format", "hdf5")
    if fmt not in FORMATS:
        raise ManifestError(f"{where}: 'format' should be one of {FORMATS}, got {fmt!r}")
    images = _require(data, "images", dict, where)
    proprio = {
        key: _width(dim, f"proprio '{key}' width", fmt, where)
        for key, dim in _require(data, "proprio", dict, where).items()
    }
    if "action_dim" not in data:
        _require(data, "action_dim", int, where)
    action_dim = _width(data["action_dim"], "action_dim", fmt, where)
    return KeyMapping(
        name=_require(data, "name", str, where),
        demo_group=data.get("demo_group", "data"),
        images=dict(images),
        proprio=dict(proprio),
        actions=_require(data, "actions", str, where),
        action_dim=action_dim,
        instruction=_check_source(
            data.get("instruction", {"constant": None}), "instruction", where, fmt
        ),
        task=_check_source(data.get("task", {"constant": None}), "task", where, fmt),
        action_names=_action_names(data, action_dim, where),
        description=data.get("description", ""),
        format=fmt,
    )


def _action_names(data: dict, action_dim: int, where: str) -> list[str] | None:
    names = data.get("action_names")
    if names is not None and action_dim == AUTO:
        raise ManifestError(f"{where}: 'action_names' need a fixed action_dim, not \"auto\"")
    if names is not None and (not isinstance(names, list) or len(names) != action_dim):
        raise ManifestError(
            f"{where}: 'action_names' should list {action_dim} names, got {names!r}"
        )
    return names


def available_mappings() -> list[str]:
    return sorted(p.stem for p in (manifests_dir() / "key_mappings").glob("*.json"))


def load_mapping(name_or_path: str | Path) -> KeyMapping:
    """Load a mapping by name (``metaworld``, ``libero``, ...) or from a JSON file path."""
    path = Path(name_or_path)
    if path.suffix != ".json":
        path = manifests_dir() / "key_mappings" / f"{name_or_path}.json"
    if not path.exists():
        raise ManifestError(
            f"key mapping '{name_or_path}' not found at {path}; "
            f"known mappings: {', '.join(available_mappings())}"
        )
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ManifestError(f"{path}: not valid JSON ({err})") from err
    mapping = mapping_from_dict(data, where=str(path))
    object.__setattr__(mapping, "path", path)
    return mapping
