"""pyproject.toml, environment.yml, the console script and the layout agree."""

import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def _pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    reqs = project["dependencies"] + extras["sim"] + extras["dev"]
    return {Requirement(r).name.lower(): str(Requirement(r).specifier) for r in reqs}


def _environment_requirements() -> tuple[dict[str, str], list[str]]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    editable = [p for p in pip if p.startswith("-e")]
    reqs = [Requirement(p) for p in pip if not p.startswith("-e")]
    return {r.name.lower(): str(r.specifier) for r in reqs}, editable


def test_environment_yml_matches_pyproject():
    env, editable = _environment_requirements()
    assert env == _pyproject_requirements()
    assert editable == ["-e .[sim,dev]"], "the pip section must install the package itself"


def test_environment_python_matches_requires_python():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert python == "python=3.11" and project["requires-python"] == ">=3.11"


def test_torch_is_a_range_not_a_pin():
    # GPU users keep their CUDA build: the package must not pin torch exactly.
    spec = _pyproject_requirements()["torch"]
    assert "==" not in spec and "<" in spec and ">=" in spec


def test_top_level_layout():
    for name in ("notebooks", "nblib", "data_manifests", "figures", "tests"):
        assert (ROOT / name).is_dir(), name
    for name in ("environment.yml", "README.md", "pyproject.toml", "Makefile", ".ci/run"):
        assert (ROOT / name).is_file(), name


def test_python_dash_m_nblib_runs():
    out = subprocess.run(
        [sys.executable, "-m", "nblib", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("nblib ")
