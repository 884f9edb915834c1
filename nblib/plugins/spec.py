"""Policy specs: how a user names a policy written outside nblib.

A spec is ``path/to/file.py:factory`` (a Python file, loaded as a script would be: its
folder goes on ``sys.path`` so it can import its neighbours), ``package.module:factory``
(an importable module), or the name of an entry point in the group ``nblib.policies`` (the
packaging convention: a lab's ``pip install``-able adapters declare
``[project.entry-points."nblib.policies"] my_vla = "my_pkg.adapters:make_policy"``).

Values that name nblib's own policies (``tiny``, ``nblib``, a run folder, a checkpoint
folder) are not specs: :func:`is_policy_spec` tells them apart without importing anything.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import re
import sys
from collections.abc import Callable
from pathlib import Path

from nblib.errors import PluginError

ENTRY_POINT_GROUP = "nblib.policies"
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
_MODULE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def _split(spec: str) -> tuple[str, str] | None:
    """``(target, factory)`` of ``target:factory``; None when ``spec`` has not that form."""
    target, sep, factory = spec.rpartition(":")
    if not sep or not target or not _IDENTIFIER.fullmatch(factory):
        return None
    if target.endswith(".py") or _MODULE.fullmatch(target):
        return target, factory
    return None


def entry_point_names() -> list[str]:
    """The policies installed packages declare in the ``nblib.policies`` group."""
    return sorted(ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def is_policy_spec(value: object) -> bool:
    """Whether ``value`` names a plug-in (``file.py:factory``, ``module:factory`` or an
    installed entry point), rather than one of nblib's own policies."""
    if not isinstance(value, str) or not value:
        return False
    return _split(value) is not None or value in entry_point_names()


def absolute_spec(spec: str, base: str | Path | None = None) -> str:
    """``spec`` with a file target made absolute (against ``base``, default the current
    folder), so a saved run or a kernel in another folder finds the same file."""
    parts = _split(spec)
    if parts is None or not parts[0].endswith(".py"):
        return spec
    path = Path(parts[0]).expanduser()
    if not path.is_absolute():
        path = Path(base if base is not None else Path.cwd()) / path
    return f"{path.resolve()}:{parts[1]}"


def load_factory(spec: str) -> Callable:
    """The factory ``spec`` names.

    Raises:
        PluginError: the file, module, factory or entry point does not exist, the module
            fails to import (its error is shown), or the factory is not callable.
    """
    if not isinstance(spec, str) or not spec:
        raise PluginError(
            f"policy spec {spec!r}: expected 'file.py:factory', "
            "'package.module:factory' or an installed entry point name"
        )
    parts = _split(spec)
    if parts is None:
        return _entry_point(spec)
    target, name = parts
    module = _load_file(spec, target) if target.endswith(".py") else _import(spec, target)
    factory = getattr(module, name, None)
    if factory is None:
        found = sorted(n for n in vars(module) if callable(getattr(module, n)) and n[0] != "_")
        raise PluginError(
            f"policy spec {spec!r}: {target} has no {name!r}; its callables: "
            f"{', '.join(found) or 'none'}"
        )
    if not callable(factory):
        raise PluginError(
            f"policy spec {spec!r}: {name!r} is a {type(factory).__name__}, "
            "not a callable factory(info, **policy_kwargs)"
        )
    return factory


def _load_file(spec: str, target: str):
    path = Path(target).expanduser().resolve()
    if not path.is_file():
        raise PluginError(f"policy spec {spec!r}: no such file {path}")
    # One module per file (its path's hash keeps two "policy.py" apart); registered in
    # sys.modules so pickling and torch.save of its classes work.
    name = f"nblib_plugin_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    if name in sys.modules:
        return sys.modules[name]
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # as `python file.py` would: it may import neighbours
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise PluginError(
            f"policy spec {spec!r}: importing {path} failed: {type(exc).__name__}: {exc}"
        ) from exc
    return module


def _import(spec: str, target: str):
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        if exc.name and target.startswith(exc.name):
            raise PluginError(
                f"policy spec {spec!r}: no module named {exc.name!r} (install the package, "
                "or name a file: path/to/file.py:factory)"
            ) from exc
        raise PluginError(
            f"policy spec {spec!r}: importing {target} failed: {type(exc).__name__}: {exc}"
        ) from exc
    except Exception as exc:
        raise PluginError(
            f"policy spec {spec!r}: importing {target} failed: {type(exc).__name__}: {exc}"
        ) from exc


def _entry_point(spec: str) -> Callable:
    found = [
        ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == spec
    ]
    if not found:
        names = entry_point_names()
        raise PluginError(
            f"policy {spec!r} is not a spec ('path/to/file.py:factory' or "
            f"'package.module:factory') nor an entry point of group {ENTRY_POINT_GROUP!r} "
            f"(installed: {', '.join(names) or 'none'})"
        )
    try:
        factory = found[0].load()
    except Exception as exc:
        raise PluginError(
            f"policy {spec!r}: loading entry point {found[0].value} failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if not callable(factory):
        raise PluginError(f"policy {spec!r}: entry point {found[0].value} is not callable")
    return factory
