"""Command-line options built from a config dataclass, so a config field is documented once.

:func:`add_config_options` turns a dataclass's fields into argparse options: the flag from
the field's name (``max_steps`` -> ``--max-steps``, or a rename kept for existing scripts),
type, ``nargs`` and default from the field's annotation and default, the help from the
comment the field carries in the dataclass source (:func:`field_comments`). Adding a field
with its comment to a config therefore adds the flag with no other edit.
:func:`config_from` builds the config from the parsed arguments, and a bad value the
config rejects is reported under the flag the user typed.

:class:`LazyParser` adds a command's options only when that command is parsed or its help
is shown: ``nblib --help`` imports no config module (some import torch).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import inspect
import io
import re
import shlex
import textwrap
import tokenize
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from nblib.errors import ParameterError

# The namespace attribute that carries a parser's ConfigOptions to its command.
_CONFIG_DEST = "_config_options"
# The namespace attribute naming the parser that could not use some of the words.
_LEFT_OVER_BY = "_left_over_by"
# The shapes of the errors configs raise, tried in this order: "Owner.field=value is
# invalid; expected ..." (errors.require), "field=value: ..." and "field: ...".
_FIELD_ERRORS = (
    re.compile(r"(?:\w+\.)?(?P<field>\w+)=(?P<value>.*?) is invalid; (?P<rest>.*)", re.DOTALL),
    re.compile(r"(?:\w+\.)?(?P<field>\w+)=(?P<value>\S*?): (?P<rest>.*)", re.DOTALL),
    re.compile(r"(?:\w+\.)?(?P<field>\w+): (?P<rest>.*)", re.DOTALL),
)
# "field=value" inside an error's explanation ("None with sim='metaworld'").
_FIELD_VALUE = re.compile(r"\b(?P<field>[a-z_]\w*)=(?P<value>'[^']*'|\"[^\"]*\"|[^\s,;)]+)")


class LazyParser(argparse.ArgumentParser):
    """An ArgumentParser whose arguments are added by ``populate(parser)`` the first time it
    parses or formats its help. Subparsers inherit the class, so every command can defer the
    imports its options need until that command is used."""

    def __init__(self, *args, populate: Callable[[LazyParser], None] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._populate = populate

    def populated(self) -> LazyParser:
        """This parser with its arguments added (idempotent)."""
        if self._populate is not None:
            populate, self._populate = self._populate, None
            populate(self)
        return self

    def parse_known_args(self, args=None, namespace=None):
        # argparse hands a subcommand's arguments to its parser through this method.
        self.populated()
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:  # the innermost parser that had words left over owns them
            vars(namespace).setdefault(_LEFT_OVER_BY, self)
        return namespace, extras

    def parse_args(self, args=None, namespace=None):
        # argparse's own parse_args reports a subcommand's unknown flag with the top-level
        # usage; the usage of the subcommand that received the flag is the useful one.
        namespace, extras = self.parse_known_args(args, namespace)
        owner = vars(namespace).pop(_LEFT_OVER_BY, self)
        if extras:
            owner.error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace

    def format_usage(self) -> str:
        self.populated()
        return super().format_usage()

    def format_help(self) -> str:
        self.populated()
        return super().format_help()


@functools.cache
def field_comments(cls: type) -> dict[str, str]:
    """Field name -> the comment documenting it in ``cls``'s source (base classes included):
    the comment at the end of the field's line, else the comment lines just above it.
    Fields without a comment are absent."""
    comments: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if dataclasses.is_dataclass(klass):
            comments |= _class_comments(klass)
    return comments


def _class_comments(klass: type) -> dict[str, str]:
    try:
        source = textwrap.dedent(inspect.getsource(klass))
    except (OSError, TypeError):  # no source (built at run time, or a frozen install)
        return {}
    found: dict[str, str] = {}
    depth = 0  # indentation level; 1 is the class body
    line: list[tokenize.TokenInfo] = []  # the code tokens of the current logical line
    trailing: list[str] = []  # comments on the current logical line
    above: list[str] = []  # comment lines directly above it
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.INDENT:
            depth += 1
        elif tok.type == tokenize.DEDENT:
            depth -= 1
        elif depth != 1:
            continue
        elif tok.type == tokenize.COMMENT:
            (trailing if line else above).append(tok.string.lstrip("#").strip())
        elif tok.type == tokenize.NL:
            if not line and not tok.line.strip():
                above.clear()  # a blank line ends a comment block
        elif tok.type == tokenize.NEWLINE:
            is_field = len(line) >= 2 and line[0].type == tokenize.NAME and line[1].string == ":"
            text = " ".join(trailing or above)
            if is_field and text:
                found[line[0].string] = text
            line, trailing, above = [], [], []
        else:
            line.append(tok)
    return found


def _mapping(text: str) -> dict:
    """A YAML (or JSON) mapping given on the command line."""
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise argparse.ArgumentTypeError(f"not YAML: {err}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a mapping such as '{{key: 1}}', got {text!r}")
    return value


def _without_none(hint):
    """``X`` for ``X | None`` (None is every optional field's "not given")."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0] if len(args) == 1 else hint
    return hint


def _argument(hint) -> dict[str, Any]:
    """argparse keywords (type, nargs, action) for a field's type annotation."""
    hint = _without_none(hint)
    origin = typing.get_origin(hint) or hint
    if origin in (list, tuple):
        items = [a for a in typing.get_args(hint) if a is not Ellipsis]
        if len(set(items)) > 1:
            raise TypeError(f"{hint}: only sequences of one type become options")
        return {"nargs": "+", **_argument(items[0] if items else str)}
    if hint is bool:
        return {"action": argparse.BooleanOptionalAction}
    if origin is dict:
        return {"type": _mapping}
    if hint in (int, float, str):
        return {"type": hint}
    raise TypeError(f"{hint}: no command-line option for this type")


def _default(field: dataclasses.Field):
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None if field.default is dataclasses.MISSING else field.default


def _help(comment: str | None, note: str | None, default, required: bool) -> str:
    # argparse %-formats help strings: a literal % must be doubled.
    text = "; ".join(p.replace("%", "%%") for p in (comment, note) if p)
    if not required and default not in (None, {}, (), []) and not isinstance(default, bool):
        shown = " ".join(map(str, default)) if isinstance(default, list | tuple) else str(default)
        text = f"{text} (default: {shown.replace('%', '%%')})".strip()
    return text


@dataclasses.dataclass(frozen=True)
class ConfigOptions:
    """The options one config class has on one parser: ``flags`` maps each field to the
    flag shown to the user, ``accepted`` the fields whose valid values an error lists."""

    cls: type
    flags: Mapping[str, str]
    accepted: Mapping[str, tuple] = dataclasses.field(default_factory=dict)

    def build(self, args: argparse.Namespace, **fixed):
        """The config from the parsed ``args`` (plus ``fixed`` fields set by the command).
        A value the config rejects is reported under its flag (:meth:`flag_error`)."""
        hints = typing.get_type_hints(self.cls)
        values = dict(fixed)
        for name in self.flags:
            value = getattr(args, name)
            if isinstance(value, list) and typing.get_origin(_without_none(hints[name])) is tuple:
                value = tuple(value)
            values[name] = value
        try:
            return self.cls(**values)
        except ParameterError as err:
            raise self.flag_error(err, args) from None

    def flag_error(self, err: ParameterError, args: argparse.Namespace) -> ParameterError:
        """``err`` restated with the flags the user typed instead of the config's field
        names: "LRConfig.plateau_window=0 is invalid; expected ..." becomes "--window=0 is
        invalid; expected ...", and an option left out "--suite is missing; expected ...".
        An error naming no field of these options comes back unchanged."""
        match = next(filter(None, (p.fullmatch(str(err)) for p in _FIELD_ERRORS)), None)
        if match is None or match["field"] not in self.flags:
            return err
        name = match["field"]
        flag, value = self.flags[name], getattr(args, name, None)
        rest = _FIELD_VALUE.sub(self._flag_value, match["rest"])
        accepted = self.accepted.get(name, ())
        listed = all(choice in rest for choice in accepted)
        if accepted and not listed and (value is None or value not in accepted):
            rest += f" (one of {', '.join(map(str, accepted))})"
        if "value" not in match.groupdict():  # "field: what is wrong"
            return ParameterError(f"{flag}: {rest}")
        if value is None:
            return ParameterError(f"{flag} is missing; {rest}")
        return ParameterError(f"{flag}={_typed(value)} is invalid; {rest}")

    def _flag_value(self, match: re.Match) -> str:
        # "sim='libero'" inside an explanation -> "--sim=libero"
        if match["field"] not in self.flags:
            return match[0]
        value = match["value"]
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        return f"{self.flags[match['field']]}={value}"


def _typed(value) -> str:
    """An option's parsed value as the user would type it in a shell."""
    if isinstance(value, list | tuple):
        return shlex.join(map(str, value))
    return shlex.quote(str(value))


def add_config_options(
    parser: argparse.ArgumentParser,
    cls: type,
    fields: Iterable[str] | None = None,
    *,
    flags: Mapping[str, str] | None = None,
    choices: Mapping[str, Iterable] | None = None,
    required: Iterable[str] = (),
    notes: Mapping[str, str] | None = None,
    accepted: Mapping[str, Iterable] | None = None,
) -> ConfigOptions:
    """Add one option per field of the dataclass ``cls`` (all its init fields, or ``fields``)
    to ``parser``, and remember them for :func:`config_from`.

    ``flags`` renames a field's flag (``{"plateau_window": "--window"}``), ``choices`` gives
    the allowed values the config's module defines, ``required`` makes flags mandatory,
    ``notes`` appends text computed elsewhere to a field's help, ``accepted`` lists a
    field's valid values in the error when the config rejects it (for checks richer than
    argparse's ``choices``). The help is otherwise the field's comment
    (:func:`field_comments`) and its default.
    """
    flags, choices, notes = dict(flags or {}), dict(choices or {}), dict(notes or {})
    accepted = {name: tuple(values) for name, values in (accepted or {}).items()}
    required = set(required)
    by_name = {f.name: f for f in dataclasses.fields(cls) if f.init}
    names = list(by_name) if fields is None else list(fields)
    unknown = sorted({*names, *flags, *choices, *required, *notes, *accepted} - set(by_name))
    if unknown:
        raise TypeError(f"{cls.__name__} has no field(s) {unknown}")
    hints = typing.get_type_hints(cls)
    comments = field_comments(cls)
    shown = {}
    for name in names:
        flag = flags.get(name, "--" + name.replace("_", "-"))
        default = _default(by_name[name])
        kwargs = _argument(hints[name])
        if name in choices:
            kwargs["choices"] = tuple(choices[name])
        if "action" not in kwargs and "choices" not in kwargs:  # choices show as {a,b}
            kwargs["metavar"] = flag.lstrip("-").replace("-", "_").upper()
        parser.add_argument(
            flag,
            dest=name,
            default=default,
            required=name in required,
            help=_help(comments.get(name), notes.get(name), default, name in required),
            **kwargs,
        )
        shown[name] = flag
    options = ConfigOptions(cls, shown, {n: v for n, v in accepted.items() if n in shown})
    parser.set_defaults(**{_CONFIG_DEST: options})
    return options


def config_from(args: argparse.Namespace, **fixed):
    """The config of the command's :func:`add_config_options`, from its parsed ``args``."""
    return getattr(args, _CONFIG_DEST).build(args, **fixed)


@contextlib.contextmanager
def flag_errors(args: argparse.Namespace):
    """Inside this block, a :class:`ParameterError` naming a config field is re-raised under
    the flag the user typed: for checks that need the simulator and so run after
    :func:`config_from` (a LIBERO task id beyond its suite's tasks)."""
    try:
        yield
    except ParameterError as err:
        raise getattr(args, _CONFIG_DEST).flag_error(err, args) from None
