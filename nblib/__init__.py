"""nblib: the thin support package behind the VLA diagnostics notebook suite."""

__version__ = "0.1.0"
