"""One error type per kind of bad input.

Every message names the file, key or parameter and says what was expected, so a
researcher can fix the input without reading a traceback.
"""

import math


class NblibError(Exception):
    """Base class of every error nblib raises on purpose."""


class DataError(NblibError, ValueError):
    """A dataset file, HDF5 key, demo or step is missing or holds bad values."""


class CapabilityError(DataError):
    """A dataset lacks an optional part a study asked for (success flags, camera
    calibration, ...); ``store.has(name)`` tells beforehand."""


class ManifestError(NblibError, ValueError):
    """A manifest or key mapping is missing, malformed, or disagrees with its data."""


class ParameterError(NblibError, ValueError):
    """A notebook or function parameter has an unknown name, a wrong type or a bad value."""


class PluginError(ParameterError):
    """A plug-in policy's spec names nothing loadable, or what its factory returns breaks
    the plug-in contract (:mod:`nblib.plugins`): the message names the spec."""


class NotebookError(NblibError, RuntimeError):
    """A notebook failed while executing; the executed copy keeps the error cell."""


# LeRobot-style config checks: every config's __post_init__ names the field, the bad value
# and what was expected.


def is_int(value) -> bool:
    """An int that is not a bool (``True`` is an int to Python, never a count here)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
    """A finite int or float that is not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def require(ok: bool, owner: str, name: str, value, expected: str) -> None:
    """Raise ``ParameterError("<owner>.<name>=<value> is invalid; expected ...")`` unless ok."""
    if not ok:
        raise ParameterError(f"{owner}.{name}={value!r} is invalid; expected {expected}")
