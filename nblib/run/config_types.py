"""The types of a notebook's parameters from the study config the notebook itself builds.

A parameter whose default is ``None`` (``train_demos = None``) says nothing about its type,
so the parameters cell alone cannot check an override of it. Every suite notebook's first
code cell builds its config from its parameters (``card.CardConfig.from_params(globals())``)
and that dataclass annotates each field (``train_demos: int | None``). This module reads
which config a notebook builds from the notebook's code cells and checks a value against
the field's annotation, read from the config's source file: nothing is imported, so the
check costs milliseconds, not the seconds a study's imports take, and ``run/`` still knows
notebooks (and the files they name) only as files. Only configs under ``nblib.`` are read.
"""

from __future__ import annotations

import ast
import importlib.util
import types
import typing
from pathlib import Path
from typing import Any

import nbformat

__all__ = ["config_field_types", "describe_type", "matches_type"]


def _declared_config(nb: nbformat.NotebookNode) -> tuple[str, str] | None:
    """``(module, class name)`` of the config built by ``X.from_params(...)`` in a code
    cell, e.g. ``("nblib.studies.card", "CardConfig")``; None when there is none."""
    modules: dict[str, str] = {}  # local name -> module or "module:attribute"
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:  # IPython magics: not plain Python, and never a config
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        modules[alias.asname] = alias.name
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "from_params"
            ):
                target = ast.unparse(node.func.value)  # "card.CardConfig" or "CardConfig"
                head, _, rest = target.partition(".")
                dotted = f"{modules.get(head, head)}.{rest}" if rest else modules.get(head, "")
                module, _, name = dotted.rpartition(".")
                if module.startswith("nblib.") and name:
                    return module, name
    return None


def _source_files(module: str) -> list[Path]:
    """The ``.py`` files of an ``nblib`` module or package, found without importing it
    (importing a study loads torch, SciPy and friends: seconds before every run)."""
    spec = importlib.util.find_spec("nblib")  # the top package only: nothing heavy runs
    if spec is None or not spec.submodule_search_locations:
        return []
    where = Path(next(iter(spec.submodule_search_locations))).joinpath(*module.split(".")[1:])
    if where.is_dir():
        return sorted(where.rglob("*.py"))
    return [where.with_suffix(".py")] if where.with_suffix(".py").is_file() else []


# What a config annotation may name; a field annotated with anything else is not checked.
_ANNOTATION_NAMES = {
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "list": list,
    "tuple": tuple,
    "dict": dict,
    "None": None,
    "Any": Any,
}


def _annotation(node: ast.expr) -> Any:
    """The type an annotation's syntax tree names (``int | None``, ``list[str]``); KeyError
    for a name outside :data:`_ANNOTATION_NAMES`."""
    if isinstance(node, ast.Constant) and node.value in (None, ...):
        return node.value
    if isinstance(node, ast.Name):
        return _ANNOTATION_NAMES[node.id]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return typing.Union[_annotation(node.left), _annotation(node.right)]  # noqa: UP007
    if isinstance(node, ast.Subscript):
        items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        args = tuple(_annotation(item) for item in items)
        return _annotation(node.value)[args if len(args) > 1 else args[0]]
    raise KeyError(ast.unparse(node))


def _field_annotations(tree: ast.Module, class_name: str) -> dict[str, Any] | None:
    """``{field: annotation}`` of the class ``class_name`` in ``tree`` (its own body)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            out = {}
            for item in node.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    try:
                        out[item.target.id] = _annotation(item.annotation)
                    except (KeyError, TypeError):
                        continue  # ClassVar, a project type, ...: not checked
            return out
    return None


def config_field_types(notebook: str | Path) -> tuple[str, dict[str, Any]] | None:
    """``(config class name, {field name: annotation})`` of the config ``notebook`` builds,
    read from the config's source (fields of its own body whose annotations use builtin
    types, ``None`` and ``Any``), or None when the notebook builds none or it is not found
    (then only the defaults' types are checked)."""
    declared = _declared_config(nbformat.read(Path(notebook), as_version=4))
    if declared is None:
        return None
    module, class_name = declared
    for file in _source_files(module):
        try:
            tree = ast.parse(file.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, ValueError):
            continue
        fields = _field_annotations(tree, class_name)
        if fields is not None:
            return class_name, fields
    return None


def matches_type(value: Any, hint: Any) -> bool:
    """Whether ``value`` fits the annotation ``hint`` with the runner's rules: an int is
    not a bool, a float accepts an int, a list accepts a tuple; element types of
    ``list[...]`` are checked. An annotation it does not know accepts anything."""
    if hint is Any:
        return True
    if hint is None or hint is type(None):
        return value is None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(matches_type(value, arg) for arg in args)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        element = args[0] if len(args) == 1 or (len(args) == 2 and args[1] is ...) else Any
        return all(matches_type(v, element) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def describe_type(hint: Any) -> str:
    """``int | None`` -> "int or None", ``list[str]`` -> "list[str]"."""
    if hint is None or hint is type(None):
        return "None"
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(describe_type(arg) for arg in typing.get_args(hint))
    if isinstance(hint, type) and not typing.get_args(hint):
        return hint.__name__
    return str(hint).replace("typing.", "")
