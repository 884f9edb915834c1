"""The doctor's engine and command line with stand-in checks: the verdict over the
statuses, the JSON lines `nblib doctor --format json` prints, the exit statuses 0 / 1 / 2.
The checks themselves are tested in tests/test_doctor_*.py against injected faults."""

from __future__ import annotations

import json

import pytest

from nblib.cli import main
from nblib.errors import ParameterError
from nblib.studies import doctor
from nblib.studies.doctor import engine
from nblib.studies.doctor.checks import CheckResult, json_safe, mismatch, ok, skipped


def _stand_ins(monkeypatch, bad: tuple[str, ...] = ()):
    """Every check answers ok, except those in ``bad`` (mismatch)."""

    def check_function(name):
        def check(study):
            if name in bad:
                return mismatch(name, f"{name} differs; fix it like so.", factor=1000.0)
            return ok(name, f"{name} agrees.", score=float("nan"))

        return check

    monkeypatch.setattr(engine, "check_function", check_function)


def test_results_validate_their_check_and_status():
    with pytest.raises(ParameterError, match="check='cameras'"):
        CheckResult("cameras", "ok", "x")
    with pytest.raises(ParameterError, match="status='fine'"):
        CheckResult("coverage", "fine", "x")
    with pytest.raises(ParameterError, match="must be a sentence"):
        CheckResult("coverage", "ok", " ")
    assert json_safe({"a": float("inf"), "b": [1, float("nan")]}) == {"a": None, "b": [1, None]}


def test_verdict_is_mismatch_when_any_check_finds_one(monkeypatch):
    _stand_ins(monkeypatch, bad=("gripper_polarity",))
    study = doctor.prepare(doctor.DoctorConfig(checks=["gripper_polarity", "coverage"]))
    results = doctor.run_checks(study)
    assert [r.check for r in results] == list(doctor.CHECK_NAMES)
    statuses = {r.check: r.status for r in results}
    assert statuses["gripper_polarity"] == "mismatch" and statuses["coverage"] == "ok"
    assert statuses["camera_orientation"] == "skipped"  # not selected
    verdict = doctor.verdict(doctor.evidence(study, results), study.config)
    assert verdict.label == "MISMATCH"
    assert verdict.reasons[0] == "gripper_polarity: gripper_polarity differs; fix it like so."
    assert "not checked: camera_orientation" in verdict.reasons[-1]
    assert verdict.numbers["mismatches"] == 1 and verdict.numbers["skipped"] == 7
    data = doctor.metrics(doctor.evidence(study, results))["checks"]
    assert data["coverage"]["evidence"]["score"] is None  # NaN is not JSON
    assert data["gripper_polarity"]["evidence"]["factor"] == 1000.0
    with pytest.raises(ParameterError, match="no result for check"):
        doctor.evidence(study, results[:3])


def test_verdict_is_consistent_with_no_mismatch(monkeypatch):
    _stand_ins(monkeypatch)
    study = doctor.prepare(doctor.DoctorConfig())
    verdict = doctor.verdict(doctor.evidence(study, doctor.run_checks(study)), study.config)
    assert verdict.label == "CONSISTENT" and verdict.numbers["ok"] == 9


def test_cli_prints_one_json_line_per_check_and_exits_by_status(monkeypatch, capsys):
    _stand_ins(monkeypatch)
    assert main(["doctor", "--data", "metaworld_default", "--format", "json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["check"] for line in lines] == list(doctor.CHECK_NAMES)
    assert all({"check", "status", "detail"} <= set(line) for line in lines)
    assert {line["status"] for line in lines} == {"ok"}

    _stand_ins(monkeypatch, bad=("state_units",))
    assert main(["doctor", "--data", "metaworld_default"]) == 1
    out = capsys.readouterr().out
    assert "state_units" in out and "MISMATCH" in out
    assert out.splitlines()[-1].startswith("MISMATCH: 1 mismatch(es), 8 ok, 0 skipped")


def test_cli_bad_input_exits_2_naming_it(monkeypatch, tmp_path, capsys):
    _stand_ins(monkeypatch)
    missing = tmp_path / "nowhere.hdf5"
    assert main(["doctor", "--data", str(missing)]) == 2
    assert f"--data={missing} is invalid; no such file" in capsys.readouterr().err
    assert main(["doctor", "--data", "metaworld_default", "--checks", "cameras"]) == 2
    assert "checks" in capsys.readouterr().err
    assert main(["doctor", "--data", "metaworld_default", "--tasks", "bogus"]) == 2
    out = capsys.readouterr()
    assert "--tasks=bogus is invalid; expected Meta-World tasks" in out.err and out.out == ""
    with pytest.raises(SystemExit) as exit_:
        main(["doctor", "--data", "metaworld_default", "--sim", "isaac"])
    assert exit_.value.code == 2


def test_a_skipped_check_draws_no_figure():
    assert doctor.figures(skipped("coverage", "no results given")) == []
