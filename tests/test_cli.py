"""Tests for the ``nblib`` command: help texts, ``data check``, ``data ensure``, ``bench``.

Expected failures must exit with status 1 and one message on stderr, no traceback.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from tiny_data import corrupt, write_tiny_dataset

from nblib import __version__
from nblib.cli import main

SUBCOMMANDS = [
    [],
    ["data"],
    ["data", "generate"],
    ["data", "check"],
    ["data", "ensure"],
    ["run"],
    ["run-all"],
    ["bench"],
]


@pytest.mark.parametrize("words", SUBCOMMANDS, ids=lambda w: " ".join(w) or "nblib")
def test_help_exits_zero(words, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*words, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: nblib" + "".join(f" {w}" for w in words))


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name in ("data", "run", "run-all", "bench"):
        assert name in out


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"nblib {__version__}"


def test_missing_command_is_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main([])
    assert exit_.value.code == 2
    assert "usage: nblib" in capsys.readouterr().err


def test_python_dash_m_nblib():
    result = subprocess.run(
        [sys.executable, "-m", "nblib", "data", "check", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: nblib data check")
    assert "--horizon" in result.stdout


@pytest.fixture
def tiny(tmp_path):
    return write_tiny_dataset(
        tmp_path / "tiny.h5", lengths=(7, 5, 6), tasks=("reach", "push", "reach"), image_size=8
    )


def test_data_check_valid_file(tiny, capsys):
    assert main(["data", "check", str(tiny)]) == 0
    captured = capsys.readouterr()
    assert "demos 3, steps 18" in captured.out
    assert str(tiny) in captured.out and "OK" in captured.out
    assert captured.err == ""


def test_data_check_horizon_too_long(tiny, capsys):
    assert main(["data", "check", str(tiny), "--horizon", "6"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("nblib: error:") and str(tiny) in err
    assert "Traceback" not in err


@pytest.mark.parametrize("what", ["not_hdf5", "truncate"])
def test_data_check_corrupt_file(tiny, capsys, what):
    corrupt(tiny, what)
    assert main(["data", "check", str(tiny)]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("nblib: error:")
    assert str(tiny) in captured.err
    assert captured.out == ""


def test_data_check_missing_key(tiny, capsys):
    corrupt(tiny, "delete", key="data/demo_1/actions")
    assert main(["data", "check", str(tiny)]) == 1
    err = capsys.readouterr().err
    assert str(tiny) in err and "actions" in err


def test_data_check_missing_file(tmp_path, capsys):
    path = tmp_path / "nowhere.h5"
    assert main(["data", "check", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("nblib: error:") and str(path) in err


def test_data_ensure_missing_file(tmp_path, monkeypatch, capsys):
    (tmp_path / "gone.yaml").write_text("name: gone\nkind: dataset\nfile: gone.h5\nsha256: '0'\n")
    monkeypatch.setenv("NBLIB_MANIFESTS", str(tmp_path))
    monkeypatch.setenv("NBLIB_DATA", str(tmp_path))
    assert main(["data", "ensure", "gone", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert str(tmp_path / "gone.h5") in err


def test_data_ensure_unknown_manifest(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NBLIB_MANIFESTS", str(tmp_path))
    assert main(["data", "ensure", "nope"]) == 1
    assert "manifest 'nope' not found" in capsys.readouterr().err


def test_bench_unknown_name(capsys):
    assert main(["bench", "no-such-benchmark"]) == 1
    err = capsys.readouterr().err
    assert "unknown benchmark 'no-such-benchmark'" in err and "loader" in err


def test_generate_rejects_unknown_task(tmp_path, capsys):
    out = tmp_path / "x.hdf5"
    code = main(["data", "generate", "--tasks", "fly-to-the-moon", "--out", str(out), "--quiet"])
    assert code == 1
    assert "fly-to-the-moon" in capsys.readouterr().err
    assert not out.exists()
