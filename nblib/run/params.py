"""A notebook's parameters: read from its ``parameters`` cell, checked before a kernel starts
(papermill only warns about unknown names and never checks types), and parsed from the
command line and parameter files with YAML 1.2 scalar rules.
"""

from __future__ import annotations

import ast
import io
import os
import re
import tokenize
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nbformat
import yaml

from nblib.errors import NotebookError, ParameterError
from nblib.plugins.spec import absolute_spec, is_policy_spec
from nblib.run.config_types import config_field_types, describe_type, matches_type

__all__ = [
    "PATH_PARAMETERS",
    "check_parameters",
    "load_param_file",
    "notebook_parameters",
    "parse_cli_value",
    "parse_parameters_source",
    "resolve_path_parameters",
]

# Type name reported for a default that is not a Python literal (e.g. `Path("x")`);
# such parameters accept any override since their type cannot be known statically.
EXPRESSION = "expression"

_SIMPLE_TYPES = ("int", "float", "bool", "str", "list", "tuple", "dict")

#: Parameters of the suite's notebooks that take a file or folder (or a list of them) beside
#: names: a manifest or key-mapping name or path, ``tiny`` or a checkpoint / run folder,
#: ``default`` / ``train`` or a latent-model checkpoint, token, result and log files, the
#: doctor's data (a manifest name, a file or a folder) and result files. The
#: one list: a test checks it against every notebook's parameters.
PATH_PARAMETERS = frozenset(
    {
        "manifest",
        "mapping",
        "policy",
        "backbone",
        "token_file",
        "latent_model",
        "result_files",
        "log_files",
        "data",
        "results",
    }
)
#: Words a path parameter reads as names, never as a folder of the same name in the
#: current directory (``-p latent_model train`` trains even beside a ``./train/``; write
#: ``./train`` for the folder). Manifest and key-mapping names are added from
#: ``data_manifests/``. A test checks these against the studies' own constants.
NAMED_VALUES: dict[str, tuple[str, ...]] = {
    "policy": ("tiny",),
    "backbone": ("tiny",),
    "latent_model": ("default", "train"),
}
# "a.yaml", "tokens.parquet", "run.log": a name ending in a file suffix (not "v1.5").
_FILE_SUFFIX = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,9}$")


def _parameters_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode | None:
    """The first cell tagged ``parameters`` (papermill injects after that one)."""
    for cell in nb.cells:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            return cell
    return None


def notebook_parameters(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The parameters declared in a notebook's ``parameters`` cell.

    Returns:
        ``{name: {"type": str, "default": object, "help": str}}`` in cell order.
        ``default`` is the evaluated literal (``ast.literal_eval``); ``type`` is the
        default's Python type name (``"int"``, ``"float"``, ``"bool"``, ``"str"``,
        ``"list"``, ``"tuple"``, ``"dict"``, ``"None"``), or the annotation when the
        line has a simple one (``x: float = 1``). A default that is not a literal
        (``root = Path("data")``) gets type ``"expression"`` and its source text as
        ``default``. ``help`` is the trailing ``# comment``.

    Raises:
        NotebookError: the file does not exist or is not a notebook.
        ParameterError: the notebook has no cell tagged ``parameters``.
    """
    path = Path(path)
    if not path.is_file():
        raise NotebookError(f"notebook not found: {path}")
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # nbformat raises several unrelated types on bad JSON
        raise NotebookError(f"{path} is not a readable notebook: {exc}") from exc
    cell = _parameters_cell(nb)
    if cell is None:
        raise ParameterError(
            f"{path} has no cell tagged 'parameters'; add the tag to the cell that "
            "defines the notebook's parameters (View > Cell Toolbar > Tags)"
        )

    return parse_parameters_source(cell.source, str(path))


def parse_parameters_source(
    source: str, where: str = "<parameters cell>"
) -> dict[str, dict[str, Any]]:
    """Parse a parameters cell with ``ast`` (papermill's own line parser silently skips
    lines it cannot read, e.g. a comment containing ``=``)."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ParameterError(f"{where}: the parameters cell is not valid Python ({exc})") from exc
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    spec: dict[str, dict[str, Any]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, annotation = node.targets[0], None
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, annotation = node.target, ast.get_source_segment(source, node.annotation)
        else:
            continue
        if not isinstance(target, ast.Name):
            continue
        value_source = ast.get_source_segment(source, node.value) or ""
        help_text = comments.get(node.end_lineno, "")
        try:
            default = ast.literal_eval(node.value)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            spec[target.id] = {"type": EXPRESSION, "default": value_source, "help": help_text}
            continue
        type_name = "None" if default is None else type(default).__name__
        if default is not None and annotation in _SIMPLE_TYPES:
            type_name = annotation
        spec[target.id] = {"type": type_name, "default": default, "help": help_text}
    return spec


def _accepts(type_name: str, value: Any) -> bool:
    """Whether ``value`` is acceptable for a parameter whose type is ``type_name``."""
    if type_name == "int":
        return isinstance(value, int) and not isinstance(value, bool)  # bool is an int
    if type_name == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if type_name == "bool":
        return isinstance(value, bool)
    if type_name == "str":
        return isinstance(value, str)
    if type_name in ("list", "tuple"):
        return isinstance(value, (list, tuple))
    if type_name == "dict":
        return isinstance(value, dict)
    # "None" defaults ("optional, unset") and expressions: no static type to check.
    return True


def check_parameters(
    path: str | os.PathLike[str],
    params: Mapping[str, Any],
    base: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Validate ``params`` against the notebook's parameters cell; return merged params.

    Rules (type = the default's Python type): int accepts int but not bool; float
    accepts int or float (ints are converted to float); bool only bool; str only str;
    list/tuple accept list or tuple; dict only dict; a ``None`` or non-literal default
    accepts anything. When the notebook builds a study config, every override must also
    fit the annotation of the config's field of the same name (:mod:`nblib.run.config_types`):
    that types the ``None`` defaults (``train_demos: int | None``) and list elements.
    Paths among the overrides are made absolute against ``base``
    (:func:`resolve_path_parameters`), since the kernel runs in the notebook's folder.

    Args:
        base: the folder relative paths are taken from; default the current directory
            (where the user typed the command).

    Returns:
        ``{name: value}`` for every declared parameter in cell order: the default,
        overridden by ``params``.

    Raises:
        ParameterError: unknown name (lists the known ones), wrong type (names the
            parameter, the expected type, its help text and the value given) or a path
            that does not exist (names the parameter).
    """
    path = Path(path)
    spec = notebook_parameters(path)
    unknown = [name for name in params if name not in spec]
    if unknown:
        known = ", ".join(spec) or "(none)"
        raise ParameterError(
            f"{path.name}: unknown parameter(s) {', '.join(map(repr, unknown))}; "
            f"known parameters: {known}"
        )
    config = config_field_types(path) if params else None
    merged = {name: info["default"] for name, info in spec.items()}
    for name, value in params.items():
        expected = spec[name]["type"]
        ok, wanted = _accepts(expected, value), expected
        if config is not None and name in config[1]:
            # The config's annotation is the parameter's type; the default's type only
            # approximates it (`stages` defaults to a list and also takes a dict).
            hint = config[1][name]
            ok = matches_type(value, hint)
            wanted = f"{describe_type(hint)} (as {config[0]}.{name})"
        if not ok:
            help_text = f"; {name}: {spec[name]['help']}" if spec[name]["help"] else ""
            raise ParameterError(
                f"{path.name}: parameter {name!r} expects {wanted}, "
                f"got {value!r} ({type(value).__name__}){help_text}"
            )
        if expected == "float" and isinstance(value, int):
            value = float(value)  # so the injected cell reads `lr = 1.0`, as a float
        merged[name] = value
    # a default ("tiny", "metaworld_default") stays a name even beside a folder of that name
    given = {n: merged[n] for n in params if merged[n] != spec[n]["default"]}
    merged.update(resolve_path_parameters(given, base))
    return merged


def _looks_like_path(text: str) -> bool:
    return "/" in text or os.sep in text or text.startswith("~") or bool(_FILE_SUFFIX.search(text))


def _names(parameter: str) -> tuple[str, ...]:
    """The words ``parameter`` reads as names (:data:`NAMED_VALUES`, bundled manifests)."""
    from nblib.paths import manifests_dir

    if parameter in ("manifest", "data"):
        return tuple(p.stem for p in manifests_dir().glob("*.yaml"))
    if parameter == "mapping":
        return tuple(p.stem for p in (manifests_dir() / "key_mappings").glob("*.json"))
    return NAMED_VALUES.get(parameter, ())


def resolve_path_parameters(
    params: Mapping[str, Any], base: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """``params`` with the paths of :data:`PATH_PARAMETERS` made absolute against ``base``
    (default: the current directory), for a kernel whose working folder is the notebook's.

    A string (or each string of a list) that the parameter reads as a name
    (:data:`NAMED_VALUES`, a bundled manifest or key mapping) stays as it is. Another is
    taken as a path when it exists relative to ``base`` or looks like one: it holds a path
    separator, starts with ``~`` or ends in a file suffix (``.yaml``, ``.parquet``). Other
    strings are names and stay as they are
    (``metaworld_default``, ``tiny``, ``default``, ``train``); so does every other
    parameter.

    Raises:
        ParameterError: a value that looks like a path does not exist (names the parameter,
            the path looked for and the folder relative paths are taken from).
    """
    base = Path(base if base is not None else Path.cwd()).absolute()

    def resolve(name: str, text: str) -> str:
        if not text or text in _names(name):
            return text
        if name == "policy" and is_policy_spec(text):  # file.py:factory, module:factory
            spec = absolute_spec(text, base)
            file = spec.rpartition(":")[0]
            if file.endswith(".py") and not Path(file).is_file():
                raise ParameterError(
                    f"parameter 'policy': the file of {text!r} does not exist (looked for "
                    f"{file}; relative paths are taken from the folder you run nblib in, {base})"
                )
            return spec
        candidate = Path(os.path.normpath(base / Path(text).expanduser()))
        if candidate.exists():
            return str(candidate)
        if _looks_like_path(text):
            raise ParameterError(
                f"parameter {name!r}: {text!r} does not exist (looked for {candidate}; "
                f"relative paths are taken from the folder you run nblib in, {base})"
            )
        return text

    out: dict[str, Any] = {}
    for name, value in params.items():
        if name in PATH_PARAMETERS and isinstance(value, str):
            value = resolve(name, value)
        elif name in PATH_PARAMETERS and isinstance(value, (list, tuple)):
            value = type(value)(resolve(name, v) if isinstance(v, str) else v for v in value)
        out[name] = value
    return out


# PyYAML implements YAML 1.1, whose implicit typing surprises on a command line:
# `3e-4` stays a string (floats need a dot), `no`/`on` become booleans, `010` is
# octal 8 and `2024-01-01` a date (not JSON-able). This loader uses YAML 1.2 core
# rules instead: true/false only, decimal/0o/0x ints, floats with a dot and/or an
# exponent, and no timestamps.
class _ParamLoader(yaml.SafeLoader):
    """Safe YAML loader with YAML 1.2 core-schema scalars (see comment above)."""


_REPLACED_TAGS = {
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:timestamp",
}
_ParamLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _REPLACED_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_ParamLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)
# Registered before floats: resolvers are tried in order, and ints must win for "3".
_ParamLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
_ParamLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+)"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    # PyYAML's own constructor would read "010" as octal (YAML 1.1).
    text = loader.construct_scalar(node)
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)


_ParamLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def parse_cli_value(text: str) -> Any:
    """Turn a command-line ``-p NAME VALUE`` string into a Python value via YAML.

    ``"3"`` -> 3, ``"3e-4"`` -> 0.0003, ``"true"`` -> True, ``"null"`` -> None,
    ``"[reach, push]"`` -> ``["reach", "push"]``, ``"{a: 1}"`` -> ``{"a": 1}``,
    ``"abc"`` -> ``"abc"``. Empty text and text that is not valid YAML (e.g.
    ``"a: b: c"``) are returned unchanged as strings. ``no``/``on`` and dates stay
    strings (YAML 1.2 rules, see ``_ParamLoader``).
    """
    if not text.strip():
        return text
    try:
        # yaml.load is safe here: _ParamLoader is a SafeLoader subclass.
        return yaml.load(text, Loader=_ParamLoader)
    except yaml.YAMLError:
        return text


def load_param_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML parameter file: a mapping ``{parameter name: value}``.

    Uses the same scalar rules as :func:`parse_cli_value` (``lr: 3e-4`` is a float).
    An empty file gives ``{}``.

    Raises:
        ParameterError: missing file, invalid YAML, not a mapping, or non-string keys
            (the message names the file).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ParameterError(f"cannot read parameter file {path}: {exc}") from exc
    try:
        data = yaml.load(text, Loader=_ParamLoader)  # SafeLoader subclass: no code execution
    except yaml.YAMLError as exc:
        raise ParameterError(f"parameter file {path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParameterError(
            f"parameter file {path} must hold a mapping like 'lr: 0.001', "
            f"got a {type(data).__name__}"
        )
    bad = [k for k in data if not isinstance(k, str)]
    if bad:
        raise ParameterError(f"parameter file {path}: names must be strings, got {bad!r}")
    return data


def seed_overrides(parameters, seed: int) -> dict:
    """The overrides that set a notebook's seed to ``seed``: its ``seed`` parameter, or
    ``seeds=[seed]`` for a notebook whose runs each take a seed from a list (the LR study).
    ``parameters``: the notebook's parameter names (e.g. :func:`notebook_parameters`).
    A notebook with neither is an error: vary what it has instead."""
    if "seed" in parameters:
        return {"seed": seed}
    if "seeds" in parameters:
        return {"seeds": [seed]}
    raise ParameterError(
        "the notebook has neither a `seed` nor a `seeds` parameter; vary its randomness "
        "through the parameters it has"
    )
