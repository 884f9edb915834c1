"""nblib: the thin support package behind the VLA diagnostics notebook suite."""

from nblib.threads import configure_openmp_env

__version__ = "0.1.0"

# Before anything imports torch (and with it libgomp): see nblib.threads.
configure_openmp_env()
