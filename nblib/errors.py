"""One error type per kind of bad input.

Every message names the file, key or parameter and says what was expected, so a
researcher can fix the input without reading a traceback.
"""


class NblibError(Exception):
    """Base class of every error nblib raises on purpose."""


class DataError(NblibError, ValueError):
    """A dataset file, HDF5 key, demo or step is missing or holds bad values."""


class ManifestError(NblibError, ValueError):
    """A manifest or key mapping is missing, malformed, or disagrees with its data."""


class ParameterError(NblibError, ValueError):
    """A notebook or function parameter has an unknown name, a wrong type or a bad value."""


class NotebookError(NblibError, RuntimeError):
    """A notebook failed while executing; the executed copy keeps the error cell."""
