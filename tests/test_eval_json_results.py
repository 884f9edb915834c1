"""Tests for nblib.eval.results.lerobot (eval_info.json, lerobot-eval stdout) and
nblib.eval.results.harness (allenai vla-evaluation-harness results).

Fixtures live in tests/fixtures/eval_results/json/ (README.md there gives each file's
source). Real files, whole, from public GitHub repositories:

- harness_pi0_libero_goal_merged.json: allenai/vla-evaluation-harness,
  .claude/reproductions/pi0-libero/merged_libero_goal.json @ dd2d045
- lerobot_eval_info_libero10_task0.json: KYH-99/GAF-SmolVLA-and-SmolVLA_Libero-Benchmark-
  test-Public_V2, runs/baseline/libero_10/task00/eval_info.json @ f264974
- lerobot_eval_info_nested_4suites.json: sharon99054930216-ship-it/task2_smolvla,
  eval_info.json @ 8bc654d (nested under "eval_results_400")

Every other fixture was written for these tests from LeRobot's and the harness's source.
The counts asserted below were read off the files (per-task success lists counted by hand
and with a plain json.load), not off the parsers.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nblib.errors import DataError
from nblib.eval.results import harness, lerobot, lerobot_stdout
from nblib.eval.results.schema import ALL_COLUMNS, episodes_frame

FIXTURES = Path(__file__).parent / "fixtures" / "eval_results" / "json"


def _load(name: str):
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def _info(name: str, **kw):
    """A fixture eval_info.json → the schema's frame."""
    return episodes_frame(lerobot.parse_eval_info(_load(name), str(FIXTURES / name), **kw))


def _stdout(name: str, **kw):
    text = (FIXTURES / name).read_bytes().decode("utf-8")
    return episodes_frame(lerobot_stdout.parse_stdout(text, str(FIXTURES / name), **kw))


def _harness(name: str, **kw):
    return episodes_frame(harness.parse(_load(name), str(FIXTURES / name), **kw))


def _raises(call, *parts: str) -> str:
    """``call()`` must raise DataError whose message holds every string in ``parts``."""
    with pytest.raises(DataError) as info:
        call()
    message = str(info.value)
    for part in parts:
        assert part in message, f"{part!r} missing from: {message}"
    return message


def _per_task(frame) -> dict:
    return frame.groupby(["suite", "task"]).success.sum().astype(int).to_dict()


# ------------------------------------------------------------------ real eval_info.json


def test_real_single_task_eval_info_gives_its_50_episodes():
    frame = _info("lerobot_eval_info_libero10_task0.json")
    assert list(frame.columns) == list(ALL_COLUMNS)
    assert len(frame) == 50
    assert set(frame.suite) == {"libero_10"} and set(frame.task) == {"task 0"}
    assert frame.task_id.tolist() == [0] * 50
    assert frame.episode.tolist() == list(range(50))
    # successes[i] is episode i: the 14 true entries of the file's list
    wins = [0, 1, 3, 11, 16, 22, 26, 29, 34, 38, 44, 45, 46, 47]
    assert frame.episode[frame.success].tolist() == wins
    assert frame.steps.isna().all() and frame.seed.isna().all()
    assert set(frame.perturbation) == {"none"} and frame.complete.all()
    assert set(frame.run) == {"lerobot_eval_info_libero10_task0"}


def test_real_file_suite_argument_must_agree_with_the_file():
    name = "lerobot_eval_info_libero10_task0.json"
    assert len(_info(name, suite="LIBERO-10", run="baseline")) == 50
    assert set(_info(name, run="baseline").run) == {"baseline"}
    _raises(lambda: _info(name, suite="libero_goal"), name, "'libero_10'", "'libero_goal'")


def test_real_nested_file_reads_four_suites_of_ten_tasks(tmp_path):
    frame = _info("lerobot_eval_info_nested_4suites.json")
    assert len(frame) == 400
    per_suite = frame.groupby("suite").success.sum().to_dict()
    assert per_suite == {
        "libero_spatial": 72,
        "libero_object": 99,
        "libero_goal": 87,
        "libero_10": 65,
    }
    expected = {
        "libero_spatial": [9, 10, 8, 6, 7, 4, 8, 8, 6, 6],
        "libero_object": [10] * 9 + [9],
        "libero_goal": [10, 9, 10, 5, 10, 7, 7, 10, 10, 9],
        "libero_10": [6, 8, 5, 8, 4, 10, 7, 6, 4, 7],
    }
    counts = _per_task(frame)
    for suite, wins in expected.items():
        assert [counts[(suite, f"task {i}")] for i in range(10)] == wins
    goal3 = frame[(frame.suite == "libero_goal") & (frame.task_id == 3)]
    assert goal3.success.tolist() == [False, True] * 5
    # eval_info.json is a generic name: the run is named after its folder
    copy = tmp_path / "eval_results_400" / "eval_info.json"
    copy.parent.mkdir()
    shutil.copy(FIXTURES / "lerobot_eval_info_nested_4suites.json", copy)
    episodes = lerobot.parse_eval_info(json.loads(copy.read_text()), str(copy))
    assert {e.run for e in episodes} == {"eval_results_400"}


def test_nested_file_with_four_suites_refuses_a_single_suite_argument():
    name = "lerobot_eval_info_nested_4suites.json"
    _raises(lambda: _info(name, suite="libero_goal"), name, "'libero_spatial'", "'libero_goal'")


# ------------------------------------------------------------------ levels and fallbacks


def test_per_episode_single_task_file_needs_a_suite():
    name = "lerobot_eval_info_per_episode.json"
    _raises(lambda: _info(name), name, "--suite")
    frame = _info(name, suite="libero_object")
    assert frame.success.tolist() == [True, False, True, True, False]
    assert frame.episode.tolist() == [0, 1, 2, 3, 4]
    assert frame.seed.tolist() == [1000, 1001, 1002, 1003, 1004]
    # the file names no task: the evaluated suite stands in for it
    assert set(frame.task) == {"libero_object"} and frame.task_id.isna().all()


def test_per_episode_items_with_tasks_are_grouped_and_sorted():
    frame = _info("lerobot_eval_info_per_episode_tasks.json")
    drawer = frame[frame.task == "open the middle drawer of the cabinet"]
    stove = frame[frame.task == "turn on the stove"]
    assert drawer.episode.tolist() == [0, 1, 2] and drawer.success.tolist() == [False, True, True]
    assert stove.episode.tolist() == [0, 1] and stove.success.tolist() == [True, False]
    assert drawer.task_id.tolist() == [3, 3, 3] and stove.task_id.tolist() == [5, 5]
    assert drawer.seed.tolist() == [7, 8, 9]
    assert set(frame.suite) == {"libero_goal"}


def test_per_episode_wins_over_per_task():
    obj = _load("lerobot_eval_info_libero10_task0.json")
    obj["per_episode"] = [
        {"episode_ix": i, "success": ok, "seed": i, "task_group": "libero_10", "task_id": 0}
        for i, ok in enumerate([True, False])
    ]
    del obj["per_group"], obj["overall"]
    frame = episodes_frame(lerobot.parse_eval_info(obj, "x.json"))
    assert frame.success.tolist() == [True, False]


def test_aggregates_only_give_counted_rows_without_episode_numbers():
    frame = _info("lerobot_eval_info_aggregates_only.json")
    assert len(frame) == 100
    assert frame.episode.isna().all() and set(frame.task) == {lerobot.ALL_TASKS}
    assert frame.groupby("suite").success.sum().to_dict() == {
        "libero_spatial": 36,
        "libero_goal": 45,
    }
    assert frame.groupby("suite").size().to_dict() == {"libero_spatial": 50, "libero_goal": 50}


def test_overall_alone_needs_a_suite_and_a_whole_count():
    obj = {"overall": {"pc_success": 40.0, "n_episodes": 5, "eval_s": 1.0}}
    _raises(lambda: lerobot.parse_eval_info(obj, "o.json"), "o.json", "--suite")
    frame = episodes_frame(lerobot.parse_eval_info(obj, "o.json", suite="libero_goal"))
    assert frame.success.sum() == 2 and len(frame) == 5 and frame.episode.isna().all()
    bad = {"overall": {"pc_success": 33.0, "n_episodes": 5}}
    _raises(
        lambda: lerobot.parse_eval_info(bad, "o.json", suite="libero_goal"),
        "o.json",
        "overall.pc_success",
        "not a whole number",
    )


def test_aggregated_percentage_without_count_is_refused():
    obj = {"aggregated": {"avg_sum_reward": 0.5, "pc_success": 50.0, "eval_s": 3.0}}
    assert lerobot.looks_like_eval_info(obj)
    _raises(
        lambda: lerobot.parse_eval_info(obj, "a.json", suite="libero_10"),
        "a.json",
        "aggregated.n_episodes",
    )


def test_wrapped_evaluations_take_their_suite_from_the_key():
    frame = _info("lerobot_eval_info_wrapped_by_suite.json")
    counts = frame.groupby("suite").success.agg(["sum", "size"]).to_dict("index")
    assert counts == {
        "libero_spatial": {"sum": 3, "size": 4},
        "libero_object": {"sum": 3, "size": 3},
    }
    assert set(frame.task) == {"libero_spatial", "libero_object"}
    assert frame[frame.suite == "libero_object"].seed.tolist() == [100, 101, 102]


def test_error_inside_a_wrapper_names_the_full_path():
    obj = {"eval_info": {"per_task": [{"task_group": "libero_goal", "task_id": 0, "metrics": {}}]}}
    assert lerobot.looks_like_eval_info(obj)
    _raises(
        lambda: lerobot.parse_eval_info(obj, "w.json"),
        "w.json",
        "eval_info.per_task[0].metrics.successes",
    )


# ------------------------------------------------------------------ malformed and contradictory


def test_missing_successes_names_file_and_json_path():
    name = "lerobot_eval_info_missing_successes.json"
    _raises(lambda: _info(name), name, "per_task[3].metrics.successes")


def test_success_that_is_not_a_bool_is_an_error():
    obj = _load("lerobot_eval_info_missing_successes.json")
    obj["per_task"][3]["metrics"]["successes"] = [True, True, 1]
    _raises(
        lambda: lerobot.parse_eval_info(obj, "s.json"), "s.json", "per_task[3].metrics.successes[2]"
    )
    single = _load("lerobot_eval_info_per_episode.json")
    single["per_episode"][1]["success"] = "yes"
    _raises(
        lambda: lerobot.parse_eval_info(single, "p.json", suite="libero_goal"),
        "p.json",
        "per_episode[1].success",
    )


def test_repeated_task_or_episode_is_an_error():
    obj = _load("lerobot_eval_info_libero10_task0.json")
    obj["per_task"].append(obj["per_task"][0])
    del obj["per_group"], obj["overall"]
    _raises(lambda: lerobot.parse_eval_info(obj, "r.json"), "r.json", "per_task[1]", "per_task[0]")
    single = _load("lerobot_eval_info_per_episode.json")
    single["per_episode"][4]["episode_ix"] = 2
    _raises(
        lambda: lerobot.parse_eval_info(single, "e.json", suite="libero_goal"),
        "e.json",
        "per_episode[4]",
        "episode_ix 2",
    )


def test_rewards_list_of_another_length_is_an_error():
    obj = _load("lerobot_eval_info_missing_successes.json")
    obj["per_task"][3]["metrics"]["successes"] = [True, False]
    _raises(lambda: lerobot.parse_eval_info(obj, "l.json"), "per_task[3].metrics.sum_rewards")


def test_per_task_and_per_group_that_disagree_name_both_numbers():
    name = "lerobot_eval_info_disagree.json"
    _raises(
        lambda: _info(name),
        name,
        "per_group.libero_spatial.pc_success",
        "80.0",
        "7 successes in 10",
    )


def test_episode_count_and_percentage_are_checked_against_the_episodes():
    obj = _load("lerobot_eval_info_libero10_task0.json")
    obj["overall"]["n_episodes"] = 49
    _raises(lambda: lerobot.parse_eval_info(obj, "n.json"), "overall.n_episodes", "49", "50")
    single = _load("lerobot_eval_info_per_episode.json")
    single["aggregated"]["pc_success"] = 80.0
    _raises(
        lambda: lerobot.parse_eval_info(single, "a.json", suite="libero_goal"),
        "aggregated.pc_success",
        "80.0",
        "3 successes in 5",
    )


def test_not_an_eval_info():
    assert not lerobot.looks_like_eval_info({"tasks": [], "benchmark": "LIBEROBenchmark"})
    assert not lerobot.looks_like_eval_info([{"success": True}])
    _raises(lambda: lerobot.parse_eval_info({"x": 1}, "n.json"), "n.json", "per_task")


# ------------------------------------------------------------------ lerobot-eval stdout


def test_stdout_with_tqdm_and_ansi_gives_the_per_task_episodes():
    text = (FIXTURES / "lerobot_eval_stdout.log").read_text()
    assert lerobot_stdout.looks_like_stdout(text)
    frame = _stdout("lerobot_eval_stdout.log")
    assert len(frame) == 15 and set(frame.suite) == {"libero_object"}
    assert [_per_task(frame)[("libero_object", f"task {i}")] for i in range(3)] == [4, 5, 3]
    assert frame[frame.task_id == 2].success.tolist() == [False, True, False, True, True]
    assert set(frame.run) == {"lerobot_eval_stdout"}


def test_stdout_with_crlf_reads_like_lf():
    crlf = (FIXTURES / "lerobot_eval_stdout_crlf.log").read_bytes().decode()
    assert "\r\n" in crlf
    frame = _stdout("lerobot_eval_stdout_crlf.log")
    lf = episodes_frame(lerobot_stdout.parse_stdout(crlf.replace("\r\n", "\n"), "x.log", run="r"))
    assert frame.drop(columns=["run", "source"]).equals(lf.drop(columns=["run", "source"]))
    assert frame.task.tolist() == ["task 4", "task 4", "task 9", "task 9"]
    assert frame.success.tolist() == [True, False, False, False]


def test_stdout_of_the_logger_format_with_numpy_reprs():
    frame = _stdout("lerobot_eval_stdout_logger_numpy.log")
    assert len(frame) == 6 and frame.success.sum() == 5
    assert frame[frame.task_id == 1].success.tolist() == [True, False, True]
    assert set(frame.suite) == {"libero_goal"}


def test_numpy_reprs_are_unwrapped_without_touching_strings():
    literal = lerobot_stdout._literal
    assert literal("{'a': np.float64(0.5), 'b': np.int64(3)}") == {"a": 0.5, "b": 3}
    assert literal("[np.True_, np.False_, numpy.bool_(True)]") == [True, False, True]
    assert literal("{'pc_success': nan, 'x': -inf}") == {"pc_success": None, "x": float("-inf")}
    assert literal("array([1, 2], dtype=int64)") == [1, 2]
    assert literal("{'v': array(['a.mp4'], dtype='<U5')}") == {"v": ["a.mp4"]}
    assert literal("['np.float64(1)', 'nan']") == ["np.float64(1)", "nan"]
    with pytest.raises(ValueError):
        literal("np.random.rand(3)")


def test_stdout_is_read_without_eval(tmp_path):
    marker = tmp_path / "evaluated"
    for module in (lerobot, harness):
        source = Path(module.__file__).read_text()
        assert "eval(" not in source.replace("literal_eval(", "")
        assert "exec(" not in source
    text = (
        f"Aggregated Metrics for per_task:\n[__import__('pathlib').Path({str(marker)!r}).touch()]\n"
    )
    _raises(lambda: lerobot_stdout.parse_stdout(text, "evil.log"), "evil.log:2:", "per_task")
    assert not marker.exists()


def test_truncated_stdout_names_the_line():
    name = "lerobot_eval_stdout_truncated.log"
    _raises(lambda: _stdout(name), f"{name}:5:", "per_task", "closing bracket")


def test_bad_value_in_stdout_names_line_and_path():
    text = (
        "Overall Aggregated Metrics:\n{'pc_success': 50.0, 'n_episodes': 2}\n\n"
        "Aggregated Metrics for per_task:\n"
        "[{'task_group': 'libero_10', 'task_id': 1, 'metrics': {'successes': [1, True]}}]\n"
    )
    _raises(
        lambda: lerobot_stdout.parse_stdout(text, "b.log"),
        "b.log:5:",
        "per_task[0].metrics.successes[0]",
    )
    disagree = text.replace("[1, True]", "[True, True]")
    _raises(
        lambda: lerobot_stdout.parse_stdout(disagree, "d.log"), "d.log:2:", "overall.pc_success"
    )


def test_stdout_header_without_metrics_or_with_two_runs():
    _raises(
        lambda: lerobot_stdout.parse_stdout(
            "Aggregated Metrics for per_task:\n\nINFO done\n", "h.log"
        ),
        "h.log:3:",
        "per_task",
    )
    one = "Aggregated Metrics for overall:\n{'pc_success': 50.0, 'n_episodes': 2}\n"
    two = one + one.replace("50.0", "100.0")
    _raises(
        lambda: lerobot_stdout.parse_stdout(two, "t.log", suite="libero_10"), "t.log:4:", "line 2"
    )
    # the same block printed twice (Overall ... and ... for overall) is fine
    assert len(lerobot_stdout.parse_stdout(one + one, "o.log", suite="libero_10")) == 2


def test_stdout_repr_wrapped_over_lines_is_joined():
    # a log pasted from a terminal that wrapped the (one-line) repr
    text = (
        "Aggregated Metrics for per_task:\n"
        "[{'task_group': 'libero_spatial', 'task_id': 0,\n"
        "  'metrics': {'successes': [True, False,\n"
        "   True]}}]\n"
        "INFO 2025-10-20 11:13:05 bot_eval.py:540 End of eval\n"
    )
    frame = episodes_frame(lerobot_stdout.parse_stdout(text, "w.log"))
    assert frame.success.tolist() == [True, False, True]
    assert set(frame.task) == {"task 0"}


def test_single_task_stdout_without_header_is_refused():
    text = (
        "Stepping through eval batches: 100%|#| 1/1 [00:41<00:00, running_success_rate=70.0%]\n"
        "{'avg_sum_reward': 110.8, 'avg_max_reward': 0.96, 'pc_success': 70.0, 'eval_s': 2471.8}\n"
    )
    assert not lerobot_stdout.looks_like_stdout(text)
    _raises(lambda: lerobot_stdout.parse_stdout(text, "s.log"), "s.log", "eval_info.json")


# ------------------------------------------------------------------ vla-evaluation-harness


def test_real_harness_merge_is_sorted_and_counted():
    obj = _load("harness_pi0_libero_goal_merged.json")
    assert harness.looks_like(obj) and not lerobot.looks_like_eval_info(obj)
    # the merge left the first task's episodes in shard order
    first = [e["episode_id"].rsplit("_ep", 1)[1] for e in obj["tasks"][0]["episodes"][:6]]
    assert first == ["0", "30", "10", "40", "11", "41"]
    frame = _harness("harness_pi0_libero_goal_merged.json")
    assert len(frame) == 500 and frame.success.sum() == 491
    assert set(frame.suite) == {"libero_goal"} and set(frame.seed) == {7}
    for _, task in frame.groupby("task"):
        assert task.episode.tolist() == list(range(50))
    assert {task: int(n) for (_, task), n in _per_task(frame).items()} == {
        "open the middle drawer of the cabinet": 49,
        "open the top drawer and put the bowl inside": 48,
        "push the plate to the front of the stove": 50,
        "put the bowl on the plate": 50,
        "put the bowl on the stove": 49,
        "put the bowl on top of the cabinet": 49,
        "put the cream cheese in the bowl": 48,
        "put the wine bottle on the rack": 50,
        "put the wine bottle on top of the cabinet": 49,
        "turn on the stove": 49,
    }
    failed = frame[~frame.success]
    assert sorted(zip(failed.task, failed.episode, strict=True)) == [
        ("open the middle drawer of the cabinet", 37),
        ("open the top drawer and put the bowl inside", 7),
        ("open the top drawer and put the bowl inside", 9),
        ("put the bowl on the stove", 42),
        ("put the bowl on top of the cabinet", 10),
        ("put the cream cheese in the bowl", 5),
        ("put the cream cheese in the bowl", 49),
        ("put the wine bottle on top of the cabinet", 30),
        ("turn on the stove", 21),
    ]
    assert set(failed.steps) == {300}
    drawer = frame[frame.task == "open the middle drawer of the cabinet"]
    assert drawer.steps.iloc[0] == 111 and drawer.steps.iloc[49] == 115
    assert frame.complete.all() and frame.task_id.isna().all()


def test_harness_current_format_out_of_order_shards():
    frame = _harness("harness_shard_merge_unordered.json")
    assert len(frame) == 12 and set(frame.suite) == {"libero_spatial"}
    a = frame[frame.task.str.contains("between the plate")]
    b = frame[frame.task.str.contains("next to the ramekin")]
    assert a.episode.tolist() == list(range(6)) and b.episode.tolist() == list(range(6))
    assert a.success.tolist() == [True, True, False, True, True, True]
    assert b.success.tolist() == [True, False, True, False, True, True]
    assert a.steps.tolist() == [98, 104, 220, 120, 131, 99]
    assert b.steps.isna().tolist() == [False, True, False, False, False, False]  # infra error
    assert set(frame.seed) == {7} and frame.complete.all()


def test_harness_libero_pro_partial_merge_is_incomplete():
    frame = _harness("harness_libero_pro_partial.json")
    assert set(frame.suite) == {"libero_goal_lan"} and set(frame.perturbation) == {"language"}
    assert set(frame.task) == {"open the top drawer of the cabinet"}
    assert frame.episode.tolist() == [0, 2] and frame.success.tolist() == [True, False]
    assert not frame.complete.any()


def test_harness_task_short_of_episodes_per_task_is_incomplete():
    obj = _load("harness_shard_merge_unordered.json")
    obj["config"]["episodes_per_task"] = 8
    frame = episodes_frame(harness.parse(obj, "short.json"))
    assert not frame.complete.any()


def test_harness_without_suite_needs_one():
    name = "harness_no_suite.json"
    _raises(lambda: _harness(name), name, "--suite")
    frame = _harness(name, suite="libero_10")
    assert frame.episode.tolist() == [0, 1] and frame.success.tolist() == [True, False]
    assert frame.steps.tolist() == [310, 520] and frame.seed.isna().all()
    _raises(
        lambda: _harness("harness_shard_merge_unordered.json", suite="libero_10"),
        "'libero_spatial'",
        "'libero_10'",
    )


def test_harness_duplicate_episode_is_an_error():
    name = "harness_duplicate_episode.json"
    _raises(
        lambda: _harness(name), name, "tasks[0].episodes[3]", "episode 2", "tasks[0].episodes[1]"
    )


def test_harness_success_not_bool_names_the_path():
    name = "harness_bad_success.json"
    _raises(lambda: _harness(name), name, "tasks[1].episodes[2].metrics.success", "'yes'")


def test_harness_rates_and_counts_are_cross_checked():
    obj = _load("harness_shard_merge_unordered.json")
    obj["tasks"][0]["mean_success"] = 0.9
    _raises(
        lambda: harness.parse(obj, "r.json"),
        "r.json",
        "tasks[0].mean_success",
        "0.9",
        "5 successes in 6",
    )
    obj = _load("harness_shard_merge_unordered.json")
    obj["merge_info"]["total_episodes"] = 13
    _raises(lambda: harness.parse(obj, "m.json"), "merge_info.total_episodes", "13", "12")
    old = _load("harness_pi0_libero_goal_merged.json")
    old["overall_success_rate"] = 0.99
    _raises(lambda: harness.parse(old, "o.json"), "overall_success_rate", "0.99", "491")


def test_harness_bad_episode_id_and_missing_episodes():
    obj = _load("harness_shard_merge_unordered.json")
    obj["tasks"][1]["episodes"][0]["episode_id"] = "first"
    _raises(lambda: harness.parse(obj, "i.json"), "tasks[1].episodes[0].episode_id")
    obj = _load("harness_shard_merge_unordered.json")
    del obj["tasks"][0]["episodes"]
    _raises(lambda: harness.parse(obj, "e.json"), "tasks[0].episodes")
    _raises(
        lambda: harness.parse({"tasks": "x"}, "n.json"), "n.json", "not a vla-evaluation-harness"
    )


def test_generic_file_name_takes_the_folder_as_run(tmp_path):
    copy = tmp_path / "pi0_goal" / "results.json"
    copy.parent.mkdir()
    shutil.copy(FIXTURES / "harness_pi0_libero_goal_merged.json", copy)
    episodes = harness.parse(json.loads(copy.read_text()), str(copy))
    assert {e.run for e in episodes} == {"pi0_goal"}


@pytest.mark.parametrize(
    "name, fmt",
    [
        ("harness_pi0_libero_goal_merged.json", "vla_harness"),
        ("harness_no_suite.json", "vla_harness"),
        ("lerobot_eval_info_libero10_task0.json", "lerobot_eval_info"),
        ("lerobot_eval_info_nested_4suites.json", "lerobot_eval_info"),
        ("lerobot_eval_info_aggregates_only.json", "lerobot_eval_info"),
        ("lerobot_eval_stdout.log", "lerobot_stdout"),
        ("lerobot_eval_stdout_crlf.log", "lerobot_stdout"),
        ("lerobot_eval_stdout_logger_numpy.log", "lerobot_stdout"),
    ],
)
def test_package_detects_each_format(name, fmt):
    from nblib.eval.results import detect_format

    path = FIXTURES / name
    assert detect_format(path.read_text(encoding="utf-8"), str(path)) == fmt
