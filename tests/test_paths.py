"""nblib.paths: the one atomic-write helper every writer of the suite goes through."""

from __future__ import annotations

import json
import math

import pytest

from nblib.paths import atomic_path, atomic_write, write_json_atomic, write_text_atomic


def test_atomic_write_replaces_whole_files_only(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    write_text_atomic(target, "old")
    assert target.read_text() == "old" and oct(target.stat().st_mode & 0o777) == "0o644"
    with pytest.raises(RuntimeError), atomic_write(target) as handle:
        handle.write("half of the new")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"  # the reader still sees the complete old file
    with atomic_write(target, "wb") as handle:
        handle.write(b"new")
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]  # no temp files


def test_atomic_path_gives_writers_a_file_name(tmp_path):
    target = tmp_path / "data.bin"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target and not target.exists()
        tmp.write_bytes(b"x" * 10)
    assert target.read_bytes() == b"x" * 10
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.write_bytes(b"partial")
        raise KeyboardInterrupt
    assert target.read_bytes() == b"x" * 10 and len(list(tmp_path.iterdir())) == 1
    with pytest.raises(ValueError, match="mode"), atomic_write(target, "a"):
        pass


def test_json_is_strict(tmp_path):
    path = write_json_atomic(tmp_path / "m.json", {"a": [1, 2.5], "b": "é"})
    assert json.loads(path.read_text(encoding="utf-8")) == {"a": [1, 2.5], "b": "é"}
    with pytest.raises(ValueError):
        write_json_atomic(tmp_path / "nan.json", {"loss": math.nan})
    assert not (tmp_path / "nan.json").exists()
