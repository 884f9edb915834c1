"""Tests for nblib.eval.results.libero_log: real LIBERO evaluation logs, own samples, bad files.

Fixtures live in tests/fixtures/eval_results/text_logs/ (README.md there names each real
file's repository, path, commit and the lines kept). Real files:

- EVAL-libero_spatial-openvla-2025_12_02-12_32_06.txt (complete) and ..._12_13_48.txt
  (killed): Soraruholic/VLA-Adapter, experiments/logs/ @ c4f4737
- Inference-Goal--97.2.excerpt.log: same repository, eval_logs/Inference-Goal--97.2.log
  @ 61fa438, lines 1-737 (rich logging, tqdm, warnings)
- eval_plus_spatial_fp16.log and plus_batch.log: kevineen/LIBERO-plus,
  parc/docs/baselines/quantvla/logs/ @ 513119a (LIBERO-Plus; two runs in one file)
- eval_libero_goal_fp16.log and eval_libero_spatial_fp16_smoke.log: kevineen/LIBERO-plus,
  parc/docs/baselines/quantvla/logs/ @ 513119a (finished runs without a final block)
- l1-b3-er0-vla-log.txt: qingyue2014/openvla-oft, docs/physcogsafe/assets/evidence/
  @ 514eb11 (a fork's log without a suite line, with its own telemetry summaries)

Written for these tests: rich_object_final.log, prefixed_crlf_killed.log,
libero_plus_suffixes.log, terminal_copy_bar_residue.log and the malformed
bad_success_value.log, count_mismatch.log, no_episodes.log. Counts asserted below were read
off the files (grep / the log's own running totals).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from nblib.errors import DataError
from nblib.eval.results import libero_log, libero_plus
from nblib.eval.results.schema import PERTURBATIONS, episodes_frame
from nblib.eval.results.terminal import strip_bar_tail

FIXTURES = Path(__file__).parent / "fixtures" / "eval_results" / "text_logs"
COMPLETE = "EVAL-libero_spatial-openvla-2025_12_02-12_32_06.txt"
KILLED = "EVAL-libero_spatial-openvla-2025_12_02-12_13_48.txt"
RICH = "Inference-Goal--97.2.excerpt.log"
PLUS = "eval_plus_spatial_fp16.log"
NO_SUITE = "l1-b3-er0-vla-log.txt"
NO_FINAL = "eval_libero_goal_fp16.log"
SMOKE = "eval_libero_spatial_fp16_smoke.log"
RESIDUE = "terminal_copy_bar_residue.log"
GOOD = [COMPLETE, KILLED, RICH, PLUS, "rich_object_final.log", "prefixed_crlf_killed.log"]
GOOD += ["libero_plus_suffixes.log", NO_FINAL, SMOKE, RESIDUE]
COOKIE_BOX = "pick up the black bowl next to the cookie box and place it on the plate"


def _read(name: str) -> str:
    # newline="" keeps tqdm's carriage returns inside their lines: line numbers stay physical
    with open(FIXTURES / name, encoding="utf-8", errors="replace", newline="") as handle:
        return handle.read()


def _parse(name: str, **kwargs):
    return libero_log.parse(_read(name), str(FIXTURES / name), **kwargs)


def _per_task(episodes) -> dict[str, tuple[int, int]]:
    """task → (episodes, successes), in the order of the log."""
    counts: dict[str, list[int]] = {}
    for episode in episodes:
        entry = counts.setdefault(episode.task, [0, 0])
        entry[0] += 1
        entry[1] += episode.success
    return {task: (n, k) for task, (n, k) in counts.items()}


# --- real logs -------------------------------------------------------------------------


def test_complete_plain_log_gives_one_row_per_success_line():
    episodes = _parse(COMPLETE)
    tasks = _per_task(episodes)
    assert len(episodes) == 10 and sum(e.success for e in episodes) == 9  # "Total successes: 9"
    assert len(tasks) == 10 and set(tasks.values()) == {(1, 1), (1, 0)}
    assert tasks[COOKIE_BOX] == (1, 0)
    assert all(e.complete for e in episodes)  # the final block is there
    assert {e.suite for e in episodes} == {"libero_spatial"}
    assert {e.run for e in episodes} == {"EVAL-libero_spatial-openvla-2025_12_02-12_32_06"}
    # "Starting episode 1..." in every task: within-task index 0, not the MP4's episode=N
    assert {e.episode for e in episodes} == {0}
    assert {e.perturbation for e in episodes} == {"none"}
    assert all(e.steps is None and e.seed is None and e.task_id is None for e in episodes)
    assert {e.source for e in episodes} == {str(FIXTURES / COMPLETE)}


def test_killed_run_is_incomplete_and_drops_the_started_episode():
    episodes = _parse(KILLED)
    tasks = _per_task(episodes)
    assert list(tasks.values()) == [(50, 42), (8, 3)]  # "# successes: 45 (77.6%)" at the end
    assert list(tasks)[1] == "pick up the black bowl next to the ramekin and place it on the plate"
    second = [e.episode for e in episodes if e.task == list(tasks)[1]]
    assert second == list(range(8))  # "Starting episode 9..." has no Success line: dropped
    assert not any(e.complete for e in episodes)


def test_rich_logging_records_are_rejoined_and_junk_ignored():
    episodes = _parse(RICH)
    # the task name is wrapped over two continuation lines; the running totals wrap too
    # ("# episodes completed so" / "far: 1") and are checked against every Success line
    assert _per_task(episodes) == {"open the middle drawer of the cabinet": (50, 46)}
    assert [e.episode for e in episodes] == list(range(50))
    assert {e.suite for e in episodes} == {"libero_goal"}
    # the excerpt stops after task 1, its summary printed; the task loop's bar ("0/10")
    # planned 10 tasks
    assert {e.complete for e in episodes} == {False}


def test_rich_log_read_with_universal_newlines_gives_the_same_episodes():
    # Path.read_text turns tqdm's "\r" into line breaks; only line numbers may differ
    text = (FIXTURES / RICH).read_text(encoding="utf-8")
    assert libero_log.parse(text, RICH) == libero_log.parse(_read(RICH), RICH)


def test_libero_plus_suffixes_give_the_perturbation_categories():
    episodes = _parse(PLUS)
    assert len(episodes) == 14 and sum(e.success for e in episodes) == 12
    categories = Counter(e.perturbation for e in episodes)
    assert categories == {
        "background": 2,
        "camera": 2,
        "unknown": 2,  # the two language rewrites carry no suffix
        "light": 2,
        "layout": 2,
        "robot": 2,
        "noise": 2,
    }
    by_task = {e.task: e for e in episodes}
    base = "pick up the black bowl between the plate and the ramekin and place it on the plate"
    assert by_task[base + " view 0 0 100 2 352 initstate 0"].perturbation == "camera"
    assert by_task[base + " view 0 0 100 0 0 initstate 11"].perturbation == "robot"
    assert by_task[base + " view 0 0 100 0 0 initstate 0 noise 3"].perturbation == "noise"
    assert by_task[base + " table 10"].perturbation == "background"
    assert by_task[base + " light 1"].perturbation == "light"
    assert by_task[base + " add 11"].perturbation == "layout"
    assert not any(e.success for e in episodes if e.perturbation == "camera")
    # no final block (the script prints none; EGL tracebacks follow), but every task has its
    # summary and the task loop's bar reached 14/14
    assert "Final results" not in _read(PLUS) and {e.complete for e in episodes} == {True}


def test_fork_log_without_suite_needs_the_suite_argument():
    with pytest.raises(DataError, match="--suite") as error:
        _parse(NO_SUITE)
    assert NO_SUITE in str(error.value)
    episodes = _parse(NO_SUITE, suite="libero_spatial")
    assert len(episodes) == 1 and episodes[0].success and episodes[0].complete
    assert episodes[0].task == COOKIE_BOX


def test_finished_run_without_final_block_is_complete():
    text = _read(NO_FINAL)
    assert "Final results" not in text and "Total episodes" not in text
    assert text.rstrip().endswith("result = 0\n)")  # EGL shutdown tracebacks after the run
    episodes = _parse(NO_FINAL)
    assert len(episodes) == 10 and len({e.task for e in episodes}) == 10
    assert sum(e.success for e in episodes) == 6  # "# successes: 6 (60.0%)" at the end
    assert {e.complete for e in episodes} == {True}


def test_smoke_run_of_one_planned_task_is_complete():
    # one libero_spatial task of ten, run on purpose: the task loop's bar plans "0/1"
    [episode] = _parse(SMOKE)
    assert episode.success and episode.complete is True and episode.suite == "libero_spatial"


def test_fork_summary_closes_a_task_and_a_bare_end_is_unknown():
    lines = _read(NO_SUITE).split("\n")
    assert lines[22].startswith("Current task SVR") and lines[26].startswith("Final PhysCogSafe")

    def cut(n):
        return libero_log.parse("\n".join(lines[:n]) + "\n", NO_SUITE, suite="libero_spatial")

    # up to the fork's own task summary ("Current task SVR ..."), before its final block
    assert [e.complete for e in cut(26)] == [True]
    # up to the episode's last line: the file cannot tell whether more episodes followed
    assert [e.complete for e in cut(22)] == [None]


def test_task_line_of_an_episode_that_never_began_marks_the_run_interrupted():
    text = HEAD + _episode(TASK_A, 1, True, 1, 1) + "Current task success rate: 1.0\n"
    [done] = libero_log.parse(text, "t.log")
    assert done.complete is True  # its summary printed, nothing after it
    [cut] = libero_log.parse(text + f"Task: {TASK_B}\n", "t.log")
    assert cut.complete is False


def test_terminal_copy_with_bar_residue_after_task_lines():
    # each "Task:" line ends in a different rest of a tqdm bar; the script's per-episode
    # Task lines still name one task per three episodes
    episodes = _parse(RESIDUE)
    assert _per_task(episodes) == {
        "put the bowl on the plate": (3, 2),
        "turn on the stove": (3, 2),
    }
    assert [e.episode for e in episodes] == [0, 1, 2, 0, 1, 2]
    assert {e.complete for e in episodes} == {True}


@pytest.mark.parametrize(
    ("text", "clean"),
    [
        ("put the bowl on the plate?, ?it/s]", "put the bowl on the plate"),
        ("put the bowl on the plate01:10, 35.21s/it]", "put the bowl on the plate"),
        ("turn on the stove      | 0/3 [00:00<?, ?it/s]", "turn on the stove"),
        ("put it 33%|███▎      | 1/3 [00:35<01:10, 35.21s/it]", "put it"),
        ("put the bowl on the stove", "put the bowl on the stove"),
        # digits after a space are the task's (LIBERO-Plus suffixes end in numbers)
        ("open the drawer light 10, 35.21s/it]", "open the drawer light 10"),
        ("open the drawer light 10", "open the drawer light 10"),
    ],
)
def test_strip_bar_tail(text, clean):
    assert strip_bar_tail(text) == clean


def test_two_runs_in_one_file_are_an_error():
    with pytest.raises(DataError, match=r"plus_batch\.log:235: .*more than one run"):
        _parse("plus_batch.log")


# --- written samples -------------------------------------------------------------------


def test_written_rich_log_with_final_block_is_complete():
    episodes = _parse("rich_object_final.log")
    assert _per_task(episodes) == {
        "pick up the alphabet soup and place it in the basket": (2, 1),
        "pick up the cream cheese and place it in the basket": (2, 2),
    }
    assert [e.episode for e in episodes] == [0, 1, 0, 1]
    assert all(e.complete for e in episodes) and {e.suite for e in episodes} == {"libero_object"}


def test_prefixed_crlf_log_reads_config_task_ids_and_lengths():
    episodes = _parse("prefixed_crlf_killed.log")
    assert [(e.task_id, e.episode, e.success, e.steps) for e in episodes] == [
        (0, 0, True, 301),
        (0, 1, False, 520),
        (0, 2, True, 288),
        (1, 0, True, 250),
        (1, 1, True, 262),
    ]
    assert {e.seed for e in episodes} == {7} and {e.suite for e in episodes} == {"libero_10"}
    assert not any(e.complete for e in episodes)  # killed in episode 3 of task 2


def test_written_libero_plus_suffixes_and_suffixless_task():
    episodes = _parse("libero_plus_suffixes.log")
    assert [e.perturbation for e in episodes] == [
        "background",  # tb 3
        "layout",  # level2 sample1
        "unknown",  # view moved and initstate 5: two dimensions at once
        "language",  # language 1 view ... initstate 0
        "light",
        "unknown",  # no suffix in a LIBERO-Plus log
    ]
    assert episodes[0].task == "put the bowl on the plate tb 3"  # suffix kept in the task
    assert all(e.complete for e in episodes)


@pytest.mark.parametrize(
    ("task", "category"),
    [
        ("pick up the ketchup and place it in the basket table 3", "background"),
        ("pick up the black bowl from table center and place it on the plate", None),
        ("open the top drawer and put the bowl inside light 10", "light"),
        ("put the wine bottle on top of the cabinet add 4", "layout"),
        ("put the wine bottle on top of the cabinet view 0 0 100 0 0 initstate 0 noise 3", "noise"),
        ("turn on the stove view 0 0 100 2 352 initstate 0", "camera"),
        ("turn on the stove view 0 0 100 0 0 initstate 7", "robot"),
        ("turn on the stove view 0 0 100 0 0 initstate 0", "unknown"),
        ("turn on the stove.", None),
    ],
)
def test_perturbation_of_task_suffixes(task, category):
    assert libero_plus.perturbation_of(task) == category
    assert category is None or category in PERTURBATIONS


# --- inline samples: junk, completeness, numbering -------------------------------------

HEAD = "Task suite: libero_spatial\n"
TASK_A = "pick up the black bowl on the stove and place it on the plate"
TASK_B = "pick up the black bowl on the ramekin and place it on the plate"


def _episode(task: str, n: int, ok: bool, done: int, wins: int) -> str:
    return (
        f"Task: {task}\nStarting episode {n}...\nSuccess: {ok}\n"
        f"# episodes completed so far: {done}\n# successes: {wins} ({100 * wins / done:.1f}%)\n"
    )


def _final(done: int, wins: int) -> str:
    return f"Final results:\nTotal episodes: {done}\nTotal successes: {wins}\n"


def test_tqdm_bars_and_ansi_codes_in_front_of_lines_are_ignored():
    text = (
        "\x1b[1mTask suite: libero_spatial\x1b[0m\n"
        f"\r 42%|████▏     | 21/50 [01:02<01:26,  2.98s/it]\x1b[A\x1b[32mTask: {TASK_A}\x1b[0m\n"
        "\r  0%|          | 0/1 [00:00<?, ?it/s]\x1b[AStarting episode 1...\n"
        "\r100%|██████████| 1/1 [00:35<00:00, 35.61s/it]\x1b[A\rSuccess: True\r\n"
        "# episodes completed so far: 1\n# successes: 1 (100.0%)\n"
    )
    [episode] = libero_log.parse(text, "junk.log")
    assert (episode.task, episode.success, episode.episode) == (TASK_A, True, 0)


def test_unfinished_task_of_a_finished_run_is_flagged():
    # num_trials_per_task=2 in the config: task B ran one episode, its second never reported
    text = (
        "task_suite_name=libero_spatial num_trials_per_task=2\n"
        + _episode(TASK_A, 1, True, 1, 1)
        + _episode(TASK_A, 2, False, 2, 1)
        + "Current task success rate: 0.5\n"
        + _episode(TASK_B, 1, True, 3, 2)
        + f"Task: {TASK_B}\nStarting episode 2...\n"
        + _final(3, 2)
    )
    episodes = libero_log.parse(text, "short.log")
    assert [(e.task, e.complete) for e in episodes] == [
        (TASK_A, True),
        (TASK_A, True),
        (TASK_B, False),
    ]


def test_task_text_met_again_continues_its_numbering():
    text = (
        HEAD
        + _episode(TASK_A, 1, True, 1, 1)
        + "Current task success rate: 1.0\n"
        + _episode(TASK_A, 1, False, 2, 1)
        + "Current task success rate: 0.0\n"
        + _final(2, 1)
    )
    episodes = libero_log.parse(text, "dup.log")
    assert [(e.task, e.episode) for e in episodes] == [(TASK_A, 0), (TASK_A, 1)]


def test_run_argument_and_agreeing_suite():
    episodes = _parse(COMPLETE, suite="LIBERO-Spatial", run="vla-adapter")
    assert {e.run for e in episodes} == {"vla-adapter"} and len(episodes) == 10
    with pytest.raises(DataError, match="libero_goal"):
        _parse(COMPLETE, suite="libero_goal")


# --- malformed -------------------------------------------------------------------------


def test_bad_success_value_names_file_and_line():
    with pytest.raises(DataError, match=r"bad_success_value\.log:11: .*'maybe'"):
        _parse("bad_success_value.log")


def test_running_total_disagreement_names_file_and_line():
    with pytest.raises(DataError, match=r"count_mismatch\.log:13: .*2 success\(es\) but 1"):
        _parse("count_mismatch.log")


def test_log_without_episodes_is_an_error_naming_the_file():
    with pytest.raises(DataError, match=r"no_episodes\.log: no episodes"):
        _parse("no_episodes.log")


def test_crlf_line_numbers_are_physical_lines():
    text = _read("prefixed_crlf_killed.log").replace("Success: False", "Success: nope")
    with pytest.raises(DataError, match=r"x\.log:11: .*'nope'"):
        libero_log.parse(text, "x.log")


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        (HEAD + "Success: True\n", r"t\.log:2: .*before any 'Task:'"),
        (HEAD + f"Task: {TASK_A}\nStarting episode one...\n", r"t\.log:3: .*'one'"),
        (HEAD + _episode(TASK_A, 1, True, 1, 1) + _final(2, 1), r"t\.log:8: .*2 episodes in total"),
        (
            HEAD + _episode(TASK_A, 1, True, 1, 1) + "Task suite: libero_goal\n",
            r"t\.log:7: .*suite",
        ),
        (HEAD + _final(0, 0) + _episode(TASK_A, 1, True, 1, 1), r"t\.log:5: .*after the final"),
        (
            HEAD + _episode(TASK_A, 1, True, 1, 1) + "Current task success rate: 0.0\n",
            r"t\.log:7: .*task success rate is 0\.0",
        ),
        (
            HEAD + _episode(TASK_A, 1, True, 1, 1) + _episode(TASK_B, 1, True, 1, 2),
            r"t\.log:10: .*count went back",
        ),
        (HEAD + "Task:   \nStarting episode 1...\n", r"t\.log:2: .*without a task"),
    ],
)
def test_inconsistent_lines_are_errors_with_line_numbers(text, pattern):
    with pytest.raises(DataError, match=pattern):
        libero_log.parse(text, "t.log")


# --- sniffing and the frame ------------------------------------------------------------


@pytest.mark.parametrize(
    "name", GOOD + [NO_SUITE, "plus_batch.log", "bad_success_value.log", "no_episodes.log"]
)
def test_looks_like_every_text_log(name):
    assert libero_log.looks_like(_read(name))


@pytest.mark.parametrize(
    "text",
    [
        '{"task": "Task: x", "success": "Success: True"}',
        '[{"task": "put the bowl on the plate", "success": true}]',
        '{"episode": 0, "success": true}\n{"episode": 1, "success": false}\n',
        "run,suite,task,episode,success\nr,libero_10,put the bowl on the plate,0,True\n",
        "Stepping through eval batches: 100%|██████████| 5/5 [01:40<00:00, 20.1s/it]\n"
        "{'avg_sum_reward': 0.86, 'avg_max_reward': 1.0, 'pc_success': 86.0, 'eval_s': 101.2}\n"
        "End of eval\n",
        "",
    ],
)
def test_does_not_look_like_other_formats(text):
    assert not libero_log.looks_like(text)


@pytest.mark.parametrize("name", GOOD)
def test_episodes_build_the_schema_frame(name):
    episodes = _parse(name)
    frame = episodes_frame(episodes)
    assert len(frame) == len(episodes)
    assert frame["success"].dtype == bool and str(frame["complete"].dtype) == "boolean"
    assert str(frame["episode"].dtype) == "Int64"
    assert frame.duplicated(["run", "suite", "task", "episode"]).sum() == 0
    assert set(frame["perturbation"]) <= set(PERTURBATIONS)
