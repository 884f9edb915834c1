"""Known answers of the doctor's ``instruction_delivery`` and ``coverage`` checks: the
embedded Meta-World data and nblib's eval harness as they are (ok), the instruction
dropped or replaced on the eval path and a training set worded otherwise (mismatch),
LIBERO-PRO's paraphrase suite delivered and not delivered, result files of a real nblib
eval, of third-party runners, and with a shared initial state injected."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import h5py
import pandas as pd
import pytest
from tiny_data import write_tiny_dataset

import nblib.eval.rollout as rollout
from nblib.eval.rollout import EvalConfig, evaluate
from nblib.plots import layout_problems, shown_numbers
from nblib.studies import doctor
from nblib.studies.doctor import delivery_plots
from nblib.studies.doctor.coverage import coverage
from nblib.studies.doctor.delivery import bddl_language, instruction_delivery

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "eval_results"
HAS_LIBERO = importlib.util.find_spec("libero") is not None
needs_libero = pytest.mark.skipif(not HAS_LIBERO, reason="the libero extra is not installed")


@pytest.fixture(scope="module")
def study():
    return doctor.prepare(doctor.DoctorConfig())


def _figure_agrees(result, figure, caption):
    """The figure renders at paper size, every number it shows is metrics.json's."""
    fig, _ = figure(result)
    assert layout_problems(fig) == []
    assert caption(result).strip()
    metrics = doctor.metrics(doctor.engine.DoctorEvidence((result,)))
    shown = shown_numbers(fig)
    assert shown
    for path, value in shown.items():
        node = metrics
        for part in path:
            node = node[part]
        assert node == pytest.approx(value)
    return fig


# ----------------------------------------------------------------------------- delivery


def test_meta_world_delivers_every_mode_as_intended(study):
    result = instruction_delivery(study)
    ev = result.evidence
    assert result.status == "ok", result.detail
    assert ev["modes"] == ["original", "paraphrase", "other", "empty"]
    assert len(ev["tasks"]) == 5 and ev["episodes"] == ev["delivered"] == 20
    assert ev["received"]["reach"] == {
        "original": "reach the goal",
        "paraphrase": "move the gripper to the target",
        "other": "open the window",
        "empty": "",
    }
    assert set(ev["training"].values()) == {1} and not ev["served"]
    assert "All 20 episode(s)" in result.detail
    _figure_agrees(result, delivery_plots.figure_delivery, delivery_plots.caption_delivery)


def test_an_eval_path_that_drops_the_instruction_is_a_mismatch(study, monkeypatch):
    real = rollout.instruction_for
    monkeypatch.setattr(rollout, "instruction_for", lambda s, e, m: ("", real(s, e, m)[1]))
    result = instruction_delivery(study)
    ev = result.evidence
    assert result.status == "mismatch"
    assert ev["delivered"] == 5 and ev["episodes"] == 20  # only "empty" meant ""
    assert all(row["empty"] == 1 and row["original"] == 0 for row in ev["matrix"].values())
    assert "15 of 20 episode(s)" in result.detail
    assert "received '' where 'press the button from the top' was intended" in result.detail
    assert set(ev["training"].values()) == {0}  # "" is not what the demos say either
    _figure_agrees(result, delivery_plots.figure_delivery, delivery_plots.caption_delivery)


def test_an_eval_path_that_sends_the_task_name_is_a_mismatch(study, monkeypatch):
    """A runner that tells the policy the task's name (the file name) instead of its
    instruction: 'reach' for 'reach the goal'."""
    real = rollout.instruction_for
    monkeypatch.setattr(rollout, "instruction_for", lambda s, e, m: (s.task, real(s, e, m)[1]))
    result = instruction_delivery(study, modes=["original"])
    assert result.status == "mismatch" and result.evidence["delivered"] == 0
    assert result.evidence["mismatches"][0]["received"] == ["button-press-topdown"]


def test_training_data_worded_otherwise_is_a_mismatch(tmp_path):
    copy = tmp_path / "reworded.hdf5"
    shutil.copy(ROOT / "data" / "metaworld_default.hdf5", copy)
    with h5py.File(copy, "r+") as f:
        for demo in f["data"].values():
            if demo.attrs["task"] == "push":
                demo.attrs["instruction"] = "move the hockey puck onto the red dot"
    study = doctor.prepare(doctor.DoctorConfig(data=str(copy), tasks=["push", "reach"]))
    try:
        result = instruction_delivery(study, modes=["original"])
    finally:
        doctor.close(study)
    ev = result.evidence
    assert result.status == "mismatch", result.detail
    assert ev["delivered"] == ev["episodes"] == 2  # the harness itself delivers
    assert ev["training"] == {"push": 0, "reach": 1}
    assert ev["trained_wording"]["push"] == ["move the hockey puck onto the red dot"]
    assert "'push the puck to the goal'" in result.detail
    assert "'move the hockey puck onto the red dot'" in result.detail


def test_bddl_language_is_read_from_the_file(tmp_path):
    path = tmp_path / "task.bddl"
    path.write_text(
        "(define (problem LIBERO_Kitchen)\n  ; (:language a comment)\n"
        "  (:language Put the  bowl\n on the stove)\n  (:regions))\n"
    )
    assert bddl_language(path) == "Put the bowl on the stove"


@needs_libero
def test_libero_pro_lan_suite_delivers_its_bddl_paraphrase():
    study = doctor.prepare(doctor.DoctorConfig(sim="libero", suite="libero_goal_lan", task_ids=[1]))
    result = instruction_delivery(study)
    ev = result.evidence
    assert result.status == "ok", result.detail
    assert ev["modes"] == ["original", "other", "empty"] and ev["delivered"] == 3
    (task,) = ev["tasks"]
    assert ev["received"][task]["original"] == "place the bowl on the stove"  # BDDL's
    assert ev["received"][task]["empty"] == ""
    assert not ev["training_compared"]  # the paraphrase differs from training by design
    _figure_agrees(result, delivery_plots.figure_delivery, delivery_plots.caption_delivery)


@needs_libero
def test_libero_pro_lan_suite_given_the_base_instruction_is_a_mismatch(monkeypatch):
    """The known runner fault: the instruction from the file name / base suite."""
    from nblib.eval.libero import LiberoSuite

    monkeypatch.setattr(
        LiberoSuite, "instruction", lambda self, i: self._suite.get_task(i).language
    )
    study = doctor.prepare(doctor.DoctorConfig(sim="libero", suite="libero_goal_lan", task_ids=[1]))
    result = instruction_delivery(study, modes=["original"])
    assert result.status == "mismatch"
    assert result.evidence["mismatches"][0]["received"] == ["put the bowl on the stove"]
    assert "where 'place the bowl on the stove' was intended" in result.detail


def test_a_served_policy_is_checked_on_the_client_side():
    """`nblib serve zero` behind ws://: the wrapper records what nblib's client puts on the
    wire as task_description; the server's handling stays out of sight (and is said so)."""
    pytest.importorskip("vla_eval")
    from test_serving import NBLIB, Server

    with Server(*NBLIB, "serve", "zero", "--sim", "metaworld", "--port", "{port}") as server:
        study = doctor.prepare(doctor.DoctorConfig(policy=server.url, tasks=["reach"]))
        try:
            result = instruction_delivery(study)
        finally:
            doctor.close(study)
    ev = result.evidence
    assert result.status == "ok", result.detail
    assert ev["served"] and ev["policy"] == server.url and ev["delivered"] == 4
    assert ev["received"]["reach"]["original"] == "reach the goal"
    assert "not visible from here" in result.detail


@needs_libero
@pytest.mark.parametrize(
    "wording, status",
    [
        ("pick up the black bowl between the plate and the ramekin and place it on the plate", "ok"),
        ("pick the akita black bowl between the plate and the ramekin and place it on the plate",
         "mismatch"),
    ],
)  # fmt: skip
def test_libero_training_wording_against_the_protocols(tmp_path, wording, status):
    """A LIBERO-layout dataset (instruction in problem_info) whose demos of libero_spatial
    task 0 carry LIBERO's task name (what the protocol sends: ok), or the wording of the
    task's BDDL file, lower-cased as LIBERO's env reads it (mismatch)."""
    path = write_tiny_dataset(
        tmp_path / "libero.hdf5", lengths=(5, 5), tasks=(wording,) * 2,
        instructions=[wording] * 2, mapping="libero",
    )  # fmt: skip
    config = doctor.DoctorConfig(
        data=str(path), mapping="libero", sim="libero", suite="libero_spatial", task_ids=[0]
    )
    result = instruction_delivery(doctor.prepare(config), modes=["original"])
    assert result.status == status, result.detail
    assert result.evidence["delivered"] == 1  # the harness delivers LIBERO's task name
    assert list(result.evidence["training"].values()) == [int(status == "ok")]
    if status == "mismatch":
        assert f"its demos say {wording!r}" in result.detail


# ----------------------------------------------------------------------------- coverage


def _coverage(paths):
    return coverage(doctor.prepare(doctor.DoctorConfig(results=[str(p) for p in paths])))


@pytest.fixture(scope="module")
def nblib_results(tmp_path_factory):
    """A real nblib eval: 2 Meta-World tasks x 4 episodes (2 steps each)."""
    out = tmp_path_factory.mktemp("coverage") / "zero.csv"
    config = EvalConfig(tasks=["reach", "push"], episodes=4, max_steps=2, policy="zero")
    evaluate(config, out, progress=False)
    return out


def test_coverage_of_a_real_nblib_eval_is_ok(nblib_results):
    result = _coverage([nblib_results])
    per_task = result.evidence["per_task"]
    assert result.status == "ok", result.detail
    assert {v["unique"] for v in per_task.values()} == {4}
    assert {v["states"] for v in per_task.values()} == {"layout seed"}
    _figure_agrees(result, delivery_plots.figure_coverage, delivery_plots.caption_coverage)


def test_a_shared_initial_state_is_a_mismatch(nblib_results, tmp_path):
    rows = pd.read_csv(nblib_results)
    push = rows["task"] == "push"
    shared = int(rows.loc[push, "seed"].iloc[0])
    rows.loc[push, "seed"] = shared
    bad = tmp_path / "shared.csv"
    rows.to_csv(bad, index=False)
    result = _coverage([bad])
    assert result.status == "mismatch"
    assert f"task 'push' uses layout seed {shared} in 4 of its 4 episodes (1 distinct)" in (
        result.detail
    )
    assert result.evidence["repeated_tasks"] == 1
    _figure_agrees(result, delivery_plots.figure_coverage, delivery_plots.caption_coverage)


def test_vla_eval_pi0_libero_goal_covers_all_50_states_of_every_task():
    result = _coverage([FIXTURES / "json" / "harness_pi0_libero_goal_merged.json"])
    per_task = result.evidence["per_task"]
    assert result.status == "ok", result.detail
    assert len(per_task) == 10
    assert {(v["episodes"], v["unique"]) for v in per_task.values()} == {(50, 50)}
    assert "(50 of LIBERO's 50 per task)" in result.detail


def test_a_libero_file_repeating_initial_state_0_is_a_mismatch(tmp_path):
    from nblib.eval.results import read_results

    rows = read_results([FIXTURES / "json" / "harness_pi0_libero_goal_merged.json"])
    rows = rows[list(rows.columns[:8])]
    rows.loc[rows["task"] == "turn on the stove", "episode"] = 0
    bad = tmp_path / "state0.csv"
    rows.to_csv(bad, index=False)
    result = _coverage([bad])
    assert result.status == "mismatch"
    assert "task 'turn on the stove' uses initial state 0 in 50 of its 50 episodes" in (
        result.detail
    )


def test_a_killed_openvla_run_has_uneven_tasks():
    """A real log (VLA-Adapter): task 1 ran 50 episodes, task 2 was killed after 8."""
    log = FIXTURES / "text_logs" / "EVAL-libero_spatial-openvla-2025_12_02-12_13_48.txt"
    result = _coverage([log])
    assert result.status == "mismatch"
    assert "has 8 episodes where its other 1 task(s) have 50" in result.detail
    assert "marks the run interrupted" in result.detail
    assert result.evidence["repeated_tasks"] == 0 and result.evidence["uneven_runs"] == 1


def test_lerobot_files_record_no_initial_state():
    """A real LeRobot eval_info.json (SmolVLA, libero_10 task 0, 50 episodes)."""
    result = _coverage([FIXTURES / "json" / "lerobot_eval_info_libero10_task0.json"])
    assert result.status == "skipped"
    assert "LeRobot's files record no initial state" in result.detail
    assert result.evidence["unknown_tasks"] == 1
    _figure_agrees(result, delivery_plots.figure_coverage, delivery_plots.caption_coverage)


def test_without_results_the_doctors_own_plan_is_reported(study):
    result = coverage(study)
    assert result.status == "ok" and result.evidence["source"] == "plan"
    assert {v["unique"] for v in result.evidence["per_task"].values()} == {2}
    assert "No result files given" in result.detail
    libero = coverage(doctor.prepare(doctor.DoctorConfig(sim="libero", task_ids=[0, 3])))
    assert libero.status == "ok"  # the plan, not run: LIBERO is not even imported
    assert "2 task(s) × 2 episodes (2 of LIBERO's 50 per task)" in libero.detail
