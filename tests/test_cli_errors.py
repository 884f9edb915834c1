"""What a user sees when a command fails or is cut short: one line, in the words they
typed, never a traceback (issue 22). Every test goes through ``nblib.cli.main`` or the
installed command, as a user would."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nblib.bench import ABOUT, BENCHMARKS
from nblib.cli import main

FIXTURES = Path(__file__).parent / "fixtures"
RESULT = FIXTURES / "eval_results" / "json" / "harness_pi0_libero_goal_merged.json"
LOG = FIXTURES / "training_logs" / "plain_metrics.csv"


def _error_line(capsys) -> str:
    """The single line a failed command wrote to stderr."""
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


# --- a reader that stops early ------------------------------------------------------------


def test_a_reader_that_stops_early_ends_the_command_quietly():
    # The reading end is closed before the command writes anything (its imports take a
    # second), so its first write meets a closed pipe on every run: `nblib ... | head -0`.
    proc = subprocess.Popen(
        [sys.executable, "-m", "nblib", "results", "summarize", str(RESULT)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 1  # Python's own status for EPIPE
    assert err == ""  # no BrokenPipeError traceback, no "Exception ignored" at exit


def test_a_broken_pipe_of_the_command_itself_is_not_hidden(monkeypatch):
    # Only a closed stdout is the reader's doing; any other broken pipe is a failure.
    def broken(*args, **kwargs):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr("nblib.bench.run_benchmark", broken)
    with pytest.raises(BrokenPipeError):
        main(["bench", "loader"])


# --- warnings ---------------------------------------------------------------------------


def test_a_skipped_file_is_a_one_line_warning(tmp_path, capsys):
    shutil.copy(RESULT, tmp_path / RESULT.name)
    (tmp_path / "notes.txt").write_text("what these runs were\n")
    assert main(["results", "summarize", str(tmp_path), "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert captured.err == (
        f"warning: skipped 1 file(s) of no known result format: {tmp_path / 'notes.txt'}\n"
    )
    assert [json.loads(line)["suite"] for line in captured.out.splitlines()][0] == "libero_goal"


# --- nblib clean ------------------------------------------------------------------------


def test_clean_a_missing_notebook_names_it(tmp_path, capsys):
    missing = tmp_path / "missing.ipynb"
    assert main(["clean", str(missing)]) == 1
    assert _error_line(capsys) == f"nblib: error: {missing}: No such file or directory"


@pytest.mark.parametrize(
    "text, why",
    [
        ('{"a": 1}', "missing a key: cells"),
        ('{"nbformat": 4, "nbformat_minor": 5, "cells": []}', "missing an expected key: metadata"),
        ("[1, 2]", "its JSON is not an object"),
        ("not json", "does not appear to be JSON"),
    ],
)
def test_clean_a_file_that_is_not_a_notebook_names_it_and_leaves_the_others(
    tmp_path, capsys, text, why
):
    good = tmp_path / "good.ipynb"
    good.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "cells": [], "metadata": {}}))
    before = good.read_bytes()
    bad = tmp_path / "bad.ipynb"
    bad.write_text(text)
    assert main(["clean", str(good), str(bad)]) == 1
    line = _error_line(capsys)
    assert line.startswith(f"nblib: error: {bad}: not a Jupyter notebook (") and why in line
    assert good.read_bytes() == before and bad.read_text() == text


# --- errors in the flags the user typed -------------------------------------------------


def test_lr_analyze_names_the_flag_typed(capsys):
    assert main(["lr", "analyze", str(LOG), "--window", "0"]) == 1
    assert _error_line(capsys) == "nblib: error: --window=0 is invalid; expected an int >= 1"


def test_eval_without_suite_names_the_flag_and_lists_the_suites(tmp_path, capsys):
    from nblib.eval.libero import suite_choices

    out = tmp_path / "results.csv"
    argv = ["eval", "--sim", "libero", "--policy", "random", "--episodes", "1", "--out", str(out)]
    assert main(argv) == 1
    line = _error_line(capsys)
    assert line.startswith("nblib: error: --suite is missing; expected a LIBERO suite name (one of")
    assert all(suite in line for suite in suite_choices()) and "EvalConfig" not in line
    assert main([*argv, "--suite", "libero_gaol"]) == 1
    line = _error_line(capsys)
    assert line.startswith("nblib: error: --suite=libero_gaol is invalid; expected one of ")
    assert all(suite in line for suite in suite_choices())
    assert not out.exists()


def test_a_field_named_inside_the_explanation_becomes_its_flag(tmp_path, capsys):
    argv = ["eval", "--suite", "libero_goal", "--policy", "zero", "--episodes", "1"]
    assert main([*argv, "--out", str(tmp_path / "r.csv")]) == 1
    assert _error_line(capsys) == (
        "nblib: error: --suite=libero_goal is invalid; expected nothing with --sim=metaworld "
        "(Meta-World tasks are named: --tasks=NAME...)"
    )
    argv = ["eval", "--sim", "libero", "--suite", "libero_goal", "--tasks", "reach"]
    assert (
        main([*argv, "--policy", "zero", "--episodes", "1", "--out", str(tmp_path / "r.csv")]) == 1
    )
    line = _error_line(capsys)
    assert line.endswith("(LIBERO tasks are numbered in their suite: --task-ids=ID...)")
    assert "None" not in line and "task_ids" not in line


def test_a_task_id_beyond_the_suite_names_the_flag_and_writes_nothing(tmp_path, capsys):
    pytest.importorskip("libero")
    out = tmp_path / "r.csv"
    argv = ["eval", "--sim", "libero", "--suite", "libero_goal", "--task-ids", "99"]
    assert main([*argv, "--policy", "zero", "--episodes", "1", "--out", str(out)]) == 1
    assert _error_line(capsys) == (
        "nblib: error: --task-ids: 99 is not a task of libero_goal; expected ids 0..9"
    )
    assert not out.exists()


# --- help -------------------------------------------------------------------------------


def _help(words: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        main([*words, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def test_results_summarize_help_shows_one_percent_sign(capsys):
    text = " ".join(_help(["results", "summarize"], capsys).split())
    assert "Rates in %." in text and "%%" not in text


def test_bench_help_lists_every_benchmark_on_its_own_line(capsys):
    assert set(ABOUT) == set(BENCHMARKS)
    lines = [line.split(None, 1) for line in _help(["bench"], capsys).splitlines()]
    listed = {words[0]: words[1] for words in lines if len(words) == 2 and words[0] in ABOUT}
    assert listed == ABOUT


@pytest.mark.parametrize(
    "words", [["run-all"], ["results", "summarize", "x.json"], ["lr", "analyze", "x.log"]]
)
def test_a_mistyped_flag_shows_the_usage_of_its_command(words, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*words, "--wrong"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    command = "nblib " + " ".join(w for w in words if "." not in w)
    assert err.startswith(f"usage: {command} ")
    assert err.endswith(f"{command}: error: unrecognized arguments: --wrong\n")
