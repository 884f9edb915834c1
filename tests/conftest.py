"""Loaded by pytest before the test modules: importing nblib first puts its OpenMP wait
setting in the environment before any test module imports torch (see nblib.threads)."""

import nblib  # noqa: F401
