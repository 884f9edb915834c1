"""Per-episode tables, format detection, read_results and the per-task / per-suite summaries."""

from pathlib import Path

import pandas as pd
import pytest

from nblib.errors import DataError, ParameterError
from nblib.eval.results import detect_format, read_file, read_results
from nblib.eval.results.schema import (
    ALL_COLUMNS,
    base_suite,
    kleene_all,
    normalize_suite,
    resolve_suite,
    suite_perturbation,
)
from nblib.eval.results.summary import (
    SUMMARY_COLUMNS,
    completeness_note,
    paired_counts,
    perturbation_summary,
    suite_summary,
    summarize,
    task_matrix,
)

EPISODES = Path(__file__).parent / "fixtures" / "eval_results" / "episodes"


def test_suite_names_normalise_and_pro_suffixes_map_to_perturbations():
    assert normalize_suite("LIBERO-Spatial") == "libero_spatial"
    assert normalize_suite("libero_long") == "libero_10"
    assert normalize_suite("LIBERO_10") == "libero_10"
    assert normalize_suite("libero_goal_lan") == "libero_goal_lan"
    assert base_suite("libero_goal_swap") == "libero_goal"
    assert suite_perturbation("libero_goal_swap") == "position"
    assert suite_perturbation("libero_object_lan") == "language"
    assert suite_perturbation("libero_object") == "none"


def test_resolve_suite_never_guesses():
    assert resolve_suite("LIBERO-Goal", None, "f.txt") == "libero_goal"
    assert resolve_suite(None, "libero_10", "f.txt") == "libero_10"
    with pytest.raises(DataError, match=r"f\.txt.*--suite"):
        resolve_suite(None, None, "f.txt")
    with pytest.raises(DataError, match="libero_goal.*libero_10") as err:
        resolve_suite("libero_goal", "libero_10", "f.txt")
    # The user typed --suite (or notebook 05's suite), never "suite=" or "the suite argument".
    assert "--suite" in str(err.value) and "suite=" not in str(err.value)


def test_an_unknown_suite_is_refused_with_the_closest_known_one(tmp_path, capsys):
    from nblib.cli import main

    with pytest.raises(ParameterError, match=r"'libero_gaol'.*did you mean 'libero_goal'\?"):
        read_results([EPISODES / "custom_names.csv"], suite="libero_gaol")
    with pytest.raises(ParameterError, match="libero_spatial, libero_object, libero_goal"):
        read_file(EPISODES / "custom_names.csv", suite="libero_20")
    args = ["results", "summarize", str(EPISODES / "custom_names.csv")]
    assert main([*args, "--suite", "libero_gaol"]) == 1
    assert "did you mean 'libero_goal'" in capsys.readouterr().err
    # spellings of known suites and a user's own suite still pass
    assert read_file(EPISODES / "custom_names.csv", suite="LIBERO-Goal")["suite"].iloc[0] == (
        "libero_goal"
    )
    assert read_file(EPISODES / "custom_names.csv", suite="my_suite")["suite"].iloc[0] == "my_suite"


def test_a_task_of_another_suite_is_refused_naming_its_suite(tmp_path):
    log = tmp_path / "long_tasks.csv"
    task = "put both the alphabet soup and the tomato sauce in the basket"  # LIBERO-10 task 0
    log.write_text(f"task,success\n{task},1\n{task},0\n")
    with pytest.raises(DataError, match=rf"long_tasks\.csv: task '{task}' is a task of libero_10"):
        read_results([log], suite="libero_goal")
    frame = read_results([log], suite="libero_10")
    assert frame["task_id"].tolist() == [0, 0]
    # "turn on the stove" is in libero_goal and libero_90: fine under either
    (tmp_path / "stove.csv").write_text("task,success\nturn on the stove,1\n")
    assert len(read_results([tmp_path / "stove.csv"], suite="libero_90")) == 1
    with pytest.raises(DataError, match="libero_goal and libero_90, not of libero_10"):
        read_results([tmp_path / "stove.csv"], suite="libero_10")


def test_suite_rows_of_one_episode_tasks_have_intervals_as_wide_as_their_tasks(tmp_path):
    one = tmp_path / "one.csv"
    one.write_text("suite,task,success\nmetaworld,reach,0\n")
    frame = read_results([one])
    task, suite = summarize(frame).iloc[0], suite_summary(frame).iloc[0]
    assert (suite["ci_low"], suite["ci_high"]) == pytest.approx((0.0, 79.34506856))
    assert (suite["ci_low"], suite["ci_high"]) == pytest.approx((task["ci_low"], task["ci_high"]))
    assert suite["ci_method"] == "Wilson, effective n"
    fourteen = tmp_path / "fourteen.csv"
    rows = [f"metaworld,task{i},{int(i < 12)}" for i in range(14)]
    fourteen.write_text("suite,task,success\n" + "\n".join(rows) + "\n")
    suite = suite_summary(read_results([fourteen])).iloc[0]
    assert suite["success_rate"] == pytest.approx(85.714, abs=1e-3)
    assert 55 < suite["ci_low"] < 65 and 93 < suite["ci_high"] < 99  # Wilson 12/14: 60.1, 96.0


def test_project_schema_with_crlf_reads_every_column():
    frame = read_file(EPISODES / "project_schema_crlf.csv")
    assert list(frame.columns) == list(ALL_COLUMNS)
    assert len(frame) == 4
    assert frame["run"].unique().tolist() == ["ours"]
    assert frame["success"].tolist() == [True, False, True, True]
    assert frame["steps"].tolist() == [112, 300, 98, 101]
    assert frame["seed"].unique().tolist() == [7]
    assert frame["task"].iloc[0] == "open the middle drawer of the cabinet"  # no stray \r


def test_other_column_spellings_and_the_suite_from_the_caller():
    with pytest.raises(DataError, match="--suite"):
        read_file(EPISODES / "custom_names.csv")
    frame = read_file(EPISODES / "custom_names.csv", suite="libero_10")
    # only indices in the file: LIBERO-10's instructions in its default task order
    assert frame["task"].tolist() == [
        "put both the alphabet soup and the tomato sauce in the basket",
        "put both the alphabet soup and the tomato sauce in the basket",
        "put both the cream cheese box and the butter in the basket",
    ]
    own = read_file(EPISODES / "custom_names.csv", suite="my_suite")
    assert own["task"].tolist() == ["task 0", "task 0", "task 1"]  # a suite LIBERO lacks
    assert frame["task_id"].tolist() == [0, 0, 1]
    assert frame["episode"].tolist() == [0, 1, 0]
    assert frame["steps"].tolist() == [120, 220, 90]
    assert frame["run"].unique().tolist() == ["custom_names"]  # the file's stem


def test_json_lines_and_wrapped_json(tmp_path):
    lines = read_file(EPISODES / "episodes.jsonl")
    assert detect_format((EPISODES / "episodes.jsonl").read_text()) == "episodes_jsonl"
    assert len(lines) == 3 and lines["task_id"].tolist() == [3, 3, 4]
    one = tmp_path / "one.jsonl"
    one.write_text('{"suite": "libero_goal", "task_id": 2, "success": false}\n')
    assert read_file(one)["task"].tolist() == ["put the wine bottle on top of the cabinet"]
    wrapped = read_file(EPISODES / "episodes_wrapped.json")
    assert detect_format((EPISODES / "episodes_wrapped.json").read_text()) == "episodes_json"
    assert wrapped["suite"].unique().tolist() == ["libero_spatial"]
    assert wrapped["success"].tolist() == [True, False]
    assert wrapped["task_id"].tolist() == [1, 1]  # the instruction names libero_spatial task 1


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("bad_line.jsonl", r"bad_line\.jsonl:2: not valid JSON"),
        ("bad_success.csv", r"bad_success\.csv:3: success must be true/false"),
        ("short_row.csv", r"short_row\.csv:3: expected 3 fields"),
    ],
)
def test_malformed_tables_name_file_and_line(name, pattern):
    with pytest.raises(DataError, match=pattern):
        read_file(EPISODES / name)


def test_unknown_format_is_an_error_naming_the_file():
    with pytest.raises(DataError, match=r"no_success_column\.csv: cannot tell the format"):
        read_file(EPISODES / "no_success_column.csv")


def test_read_results_labels_folders_and_double_counting(tmp_path):
    frame = read_results(
        [EPISODES / "project_schema_crlf.csv", EPISODES / "episodes.jsonl"], labels=["A", "B"]
    )
    assert frame["run"].unique().tolist() == ["A", "B"]
    renamed = read_results([EPISODES / "episodes.jsonl"], labels={"sweep-a": "renamed"})
    assert renamed["run"].unique().tolist() == ["renamed"]
    with pytest.raises(ParameterError, match="one label per path"):
        read_results([EPISODES / "episodes.jsonl"], labels=["a", "b"])
    # a folder: result files are read, a README (no known format) is skipped with a warning
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "a.csv").write_text((EPISODES / "project_schema_crlf.csv").read_text())
    (folder / "notes.txt").write_text("nothing to see\n")
    with pytest.warns(UserWarning, match="skipped 1 file"):
        assert len(read_results([folder])) == 4
    # the same run and task from two files would count its episodes twice
    (folder / "b.csv").write_text((EPISODES / "project_schema_crlf.csv").read_text())
    with pytest.warns(UserWarning), pytest.raises(DataError, match="in 2 files"):
        read_results([folder])
    with pytest.raises(DataError, match="no such result file"):
        read_results([tmp_path / "missing.log"])


def _frame(rows):
    from nblib.eval.results.schema import episodes_frame

    return episodes_frame(rows)


def _episodes(run, suite, task, outcomes, task_id=None, complete=True, perturbation="none"):
    return [
        dict(
            run=run,
            suite=suite,
            task=task,
            episode=i,
            success=bool(s),
            task_id=task_id,
            complete=complete,
            perturbation=perturbation,
        )
        for i, s in enumerate(outcomes)
    ]


def test_summarize_counts_and_wilson_interval():
    rows = _episodes("r", "libero_goal", "t0", [1] * 48 + [0] * 2, task_id=0)
    rows += _episodes("r", "libero_goal", "t1", [1, 0, 0, 0], task_id=1, complete=False)
    table = summarize(_frame(rows))
    assert list(table.columns) == list(SUMMARY_COLUMNS)
    first = table.iloc[0]
    assert (first.episodes, first.successes, first.success_rate) == (50, 48, 96.0)
    assert (round(first.ci_low, 1), round(first.ci_high, 1)) == (86.5, 98.9)
    assert bool(first.complete) and not bool(table.iloc[1].complete)
    suites = suite_summary(_frame(rows), n_boot=500)
    assert suites.iloc[0].success_rate == pytest.approx((96 + 25) / 2)  # mean over tasks
    assert suites.iloc[0].pooled_rate == pytest.approx(100 * 49 / 54)
    assert suites.iloc[0].ci_low < suites.iloc[0].success_rate < suites.iloc[0].ci_high
    assert not suites.iloc[0].complete


def test_task_matrix_paired_counts_and_perturbations():
    rows = _episodes("a", "libero_goal", "t0", [1, 1, 0]) + _episodes("a", "libero_goal", "t1", [1])
    rows += _episodes("b", "libero_goal", "t0", [0, 0, 1], perturbation="light")
    frame = _frame(rows)
    matrix = task_matrix(frame)
    assert list(matrix.columns) == ["a", "b"]
    assert matrix.loc[("libero_goal", "t0"), "a"] == pytest.approx(200 / 3)
    assert pd.isna(matrix.loc[("libero_goal", "t1"), "b"])
    counts = paired_counts(summarize(frame), "a", "b")
    assert counts.index.tolist() == [("libero_goal", "t0")]  # t1 only in a
    assert counts.iloc[0].tolist() == [2, 3, 1, 3]
    with pytest.raises(DataError, match="no run named 'c'"):
        paired_counts(summarize(frame), "a", "c")
    per = perturbation_summary(frame).set_index(["run", "perturbation"])
    assert per.loc[("b", "light"), "successes"] == 1


# --- completeness: True / False / unknown ------------------------------------------------


def test_unknown_completeness_is_never_counted_as_complete_or_interrupted():
    rows = _episodes("r", "libero_goal", "t0", [1, 1], task_id=0)
    rows += _episodes("r", "libero_goal", "t1", [1, 0], task_id=1, complete=None)
    rows += _episodes("s", "libero_goal", "t0", [1], task_id=0, complete=None)
    rows += _episodes("s", "libero_goal", "t1", [0], task_id=1, complete=False)
    frame = _frame(rows)
    assert str(frame["complete"].dtype) == "boolean" and frame["complete"].isna().sum() == 3
    tasks = summarize(frame)
    assert str(tasks["complete"].dtype) == "boolean"
    assert tasks["complete"].tolist() == [True, pd.NA, pd.NA, False]
    suites = suite_summary(frame, n_boot=200)["complete"].tolist()
    # r: one unknown task, so the suite is not known to be complete; s: an interrupted
    # task outweighs an unknown one
    assert suites == [pd.NA, False]
    note = completeness_note(tasks)
    assert note.splitlines() == [
        "note: 1 task(s) come from interrupted runs or tasks (complete = False); "
        "their counts are what finished before the log ended",
        "note: 2 task(s) come from files that do not show whether their run ended "
        "(complete = <NA>); their counts may be partial",
    ]
    assert completeness_note(summarize(_frame(_episodes("r", "libero_goal", "t0", [1])))) is None


def test_kleene_all_three_valued():
    assert kleene_all([True, True]) is True and kleene_all([]) is True
    assert kleene_all([True, None]) is None and kleene_all([True, pd.NA]) is None
    assert kleene_all([None, False, True]) is False
    assert kleene_all(pd.Series([True, pd.NA], dtype="boolean")) is None


def test_complete_column_of_tables_round_trips_unknown(tmp_path):
    # a table without the column cannot tell; an empty cell is pandas' <NA> written out
    frame = read_file(EPISODES / "project_schema_crlf.csv")
    assert frame["complete"].isna().all()
    frame.loc[0, "complete"] = False
    frame.loc[1, "complete"] = True
    path = tmp_path / "round.csv"
    frame.to_csv(path, index=False)
    back = read_file(path)
    assert back["complete"].tolist()[:2] == [False, True] and back["complete"][2:].isna().all()
    assert str(back["complete"].dtype) == "boolean"
