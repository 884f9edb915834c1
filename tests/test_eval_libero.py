"""Closed-loop evaluation in LIBERO / LIBERO-PRO (the optional extra ``libero``).

LIBERO renders at ~5 steps/s here, so these tests use one task and a few steps. The test
command (tools/nb.sh test) installs the extra and sets NBLIB_REQUIRE_LIBERO=1, so in CI a
missing LIBERO fails instead of skipping.
"""

import importlib.util
import os

import numpy as np
import pandas as pd
import pytest

from nblib.cli import main
from nblib.errors import NotebookError, ParameterError
from nblib.eval.results import read_results
from nblib.eval.results.schema import canonical_tasks, episodes_frame
from nblib.eval.rollout import EvalConfig, evaluate

if importlib.util.find_spec("libero") is None:
    if os.environ.get("NBLIB_REQUIRE_LIBERO") == "1":
        raise RuntimeError(
            "NBLIB_REQUIRE_LIBERO=1 but LIBERO is not installed: pip install -e '.[libero]'"
        )
    pytest.skip("the libero extra is not installed", allow_module_level=True)

from nblib.eval.libero import (  # noqa: E402
    ACTION_DIM,
    SUITE_MAX_STEPS,
    LiberoSuite,
    LiberoTask,
    check_suite,
    suite_choices,
)


class Recorder:
    """Records the instructions and observations it is given; returns zero actions."""

    cameras = ()

    def __init__(self):
        self.instructions, self.observations = [], []

    def reset(self, task):
        pass

    def act(self, observation, instruction):
        self.instructions.append(instruction)
        self.observations.append(observation)
        return np.zeros((4, ACTION_DIM), dtype=np.float32)


@pytest.fixture(scope="module")
def spatial0():
    """libero_spatial task 0 with both cameras at 64 px and no settle steps, so a reset
    lands exactly on the official initial state."""
    task = LiberoTask(
        "libero_spatial", 0, cameras=("agentview", "robot0_eye_in_hand"), size=64, settle_steps=0
    )
    yield task
    task.close()


def test_suites_tasks_and_step_limits_follow_the_published_protocol():
    spatial = LiberoSuite("libero_spatial")
    assert spatial.n_tasks == 10 and spatial.max_steps == 220 and spatial.perturbation == "none"
    assert SUITE_MAX_STEPS == {
        "libero_spatial": 220,
        "libero_object": 280,
        "libero_goal": 300,
        "libero_10": 520,
        "libero_90": 400,
    }
    # the task order is LIBERO's: the instructions pair with the published task table
    names = [spatial.task_name(i) for i in range(10)]
    rows = [dict(run="r", suite="libero_spatial", task=f"task {i}", success=True, task_id=i)
            for i in range(10)]  # fmt: skip
    frame = episodes_frame(rows)
    assert canonical_tasks(frame)["task"].tolist() == names
    assert spatial.instruction(0) == names[0]  # the unperturbed protocol's instruction
    assert spatial.init_states(0).shape == (50, 92)  # official initial states, offline

    lan = LiberoSuite("libero_goal_lan")
    assert lan.perturbation == "language" and lan.max_steps == 300
    goal = LiberoSuite("libero_goal")
    assert lan.task_name(2) == goal.task_name(2)  # the same task ...
    assert lan.instruction(2) != goal.instruction(2)  # ... told in other words (its BDDL)
    task = LiberoSuite("libero_goal_task")
    assert task.perturbation == "task" and task.task_name(0) != goal.task_name(0)
    assert LiberoSuite("libero_10_swap").perturbation == "position"
    assert LiberoSuite("libero_object_object").perturbation == "object"


def test_suite_names_are_checked_with_a_clear_error():
    assert "libero_spatial_swap" in suite_choices() and check_suite("libero_90") == "libero_90"
    with pytest.raises(ParameterError, match="ship without their scene resources"):
        check_suite("libero_goal_env")
    with pytest.raises(ParameterError, match="libero_spatial, libero_object"):
        check_suite("libero_moon")
    with pytest.raises(ParameterError, match="ids 0..9"):
        LiberoSuite("libero_goal").instruction(10)


def test_reset_lands_on_the_official_initial_state_and_steps(spatial0):
    states = spatial0.suite.init_states(0)
    obs = spatial0.reset(seed=0, episode=3)
    assert np.allclose(spatial0.env.get_sim_state(), states[3])
    assert obs["state"].shape == (8,) and obs["gripper_opening"].shape == (1,)
    assert obs["gripper_opening"][0] > 0  # fingers apart at the start
    for camera in ("agentview", "robot0_eye_in_hand"):
        image = obs["images"][camera]
        assert image.shape == (64, 64, 3) and image.dtype == np.uint8 and image.std() > 5
    before = obs["eef_pos"].copy()
    for _ in range(5):
        obs, success = spatial0.step(np.array([0, 0, 1.0, 0, 0, 0, -1]))  # up
    assert not success and obs["eef_pos"][2] > before[2] + 0.01
    spatial0.reset(seed=0, episode=7)
    assert np.allclose(spatial0.env.get_sim_state(), states[7])
    assert not np.allclose(states[3], states[7])
    with pytest.raises(ParameterError, match="50 official initial states"):
        spatial0.reset(seed=0, episode=50)
    with pytest.raises(ParameterError, match="LIBERO takes 7 values"):
        spatial0.step(np.zeros(4))


def test_success_turns_true_when_the_bowl_is_placed_on_the_plate(spatial0):
    """libero_spatial task 0's goal is (On akita_black_bowl_1 plate_1): false at the
    initial state and after idle steps; true once the bowl is put on the plate."""
    obs = spatial0.reset(seed=0, episode=0)
    for _ in range(3):
        obs, success = spatial0.step(np.zeros(7))
        assert not success
    assert not spatial0.success()
    sim = spatial0.env.sim
    joint = "akita_black_bowl_1_joint0"
    qpos = np.array(sim.data.get_joint_qpos(joint))
    qpos[:3] = spatial0._raw["plate_1_pos"] + np.array([0, 0, 0.03])
    sim.data.set_joint_qpos(joint, qpos)
    sim.forward()
    flags = [spatial0.step(np.zeros(7))[1] for _ in range(10)]
    assert flags[-1] and spatial0.success()


def test_harness_writes_libero_pro_rows_with_the_perturbed_instruction(tmp_path):
    recorder = Recorder()
    out = tmp_path / "lan.csv"
    config = EvalConfig(
        sim="libero", suite="libero_goal_lan", task_ids=[1], episodes=2, max_steps=3
    )
    frame = evaluate(config, out, progress=False, policy=recorder)
    suite = LiberoSuite("libero_goal_lan")
    assert frame["suite"].tolist() == ["libero_goal_lan"] * 2
    assert frame["task"].tolist() == [suite.task_name(1)] * 2
    assert frame["task_id"].tolist() == [1, 1] and frame["episode"].tolist() == [0, 1]
    assert frame["perturbation"].tolist() == ["language", "language"]
    assert (frame["steps"] == 3).all() and not frame["success"].any()
    assert frame["complete"].all()
    assert set(recorder.instructions) == {suite.instruction(1)} != {suite.task_name(1)}
    assert recorder.observations[0]["state"].shape == (8,)
    assert "images" not in recorder.observations[0]  # no camera asked, none rendered
    back = read_results([out])
    assert back["suite"].tolist() == ["libero_goal_lan"] * 2 and back["complete"].all()


def test_cli_runs_libero_and_its_options_are_checked(tmp_path, capsys):
    out = tmp_path / "zero.jsonl"
    args = "--sim libero --suite libero_spatial --task-ids 0 --policy zero --episodes 1"
    args += " --max-steps 2 --instruction empty"
    code = main(["eval", *args.split(), "--out", str(out)])
    assert code == 0 and "libero_spatial" in capsys.readouterr().out
    row = pd.read_json(out, lines=True).iloc[0]
    assert row["perturbation"] == "instruction_empty" and row["steps"] == 2
    assert row["run"] == "zero_instr-empty" and bool(row["complete"])

    with pytest.raises(ParameterError, match="no scripted expert"):
        evaluate(EvalConfig(sim="libero", suite="libero_goal", policy="expert",
                            task_ids=[0], episodes=1), tmp_path / "e.csv")  # fmt: skip
    with pytest.raises(ParameterError, match="libero_goal_lan"):
        EvalConfig(sim="libero", suite="libero_goal", instruction="paraphrase")
    with pytest.raises(ParameterError, match="libero_goal_swap"):
        EvalConfig(sim="libero", suite="libero_goal", position_noise=0.05)
    with pytest.raises(ParameterError, match="task_ids"):
        EvalConfig(sim="libero", suite="libero_goal", tasks=["reach"])
    with pytest.raises(ParameterError, match="episodes <= 50"):
        evaluate(EvalConfig(sim="libero", suite="libero_goal", task_ids=[0], episodes=51),
                 tmp_path / "f.csv", policy=Recorder())  # fmt: skip
    with pytest.raises(ParameterError, match="suite"):
        EvalConfig(sim="metaworld", suite="libero_goal")


def test_a_meta_world_policy_is_refused_before_any_episode(tiny_saved_policy, tmp_path):
    config = EvalConfig(
        sim="libero", suite="libero_spatial", task_ids=[0], episodes=1,
        policy=str(tiny_saved_policy),
    )  # fmt: skip
    with pytest.raises(ParameterError, match="4-D actions; libero takes 7-D"):
        evaluate(config, tmp_path / "p.csv", progress=False)


def test_video_of_a_libero_episode(tmp_path):
    config = EvalConfig(
        sim="libero", suite="libero_object", task_ids=[0], episodes=1, max_steps=2,
        policy="random", video=str(tmp_path / "videos"),
    )  # fmt: skip
    evaluate(config, tmp_path / "v.csv", progress=False)
    (video,) = (tmp_path / "videos").glob("*.mp4")
    assert video.name == "random_libero_object_task00_ep000.mp4" and video.stat().st_size > 1000


def test_a_failing_episode_is_reported_and_the_run_marked_incomplete(tmp_path):
    class Broken(Recorder):
        def act(self, observation, instruction):
            return np.zeros((1, 3))  # wrong action size

    with pytest.raises(NotebookError, match="LIBERO takes 7 values"):
        evaluate(
            EvalConfig(sim="libero", suite="libero_spatial", task_ids=[0], episodes=1),
            tmp_path / "b.csv",
            progress=False,
            policy=Broken(),
        )


def test_a_plugin_policy_runs_in_libero_with_its_8d_state_and_the_instruction(tmp_path):
    """A plug-in (examples/policies/conv_mlp.py, outside nblib) told about LIBERO-shaped
    data: the harness renders its camera at its size, gives it LIBERO's 8-D proprio as
    observation.state and the perturbed instruction as task."""
    from pathlib import Path

    import torch

    from nblib.eval.plugin_policy import PluginClosedLoop
    from nblib.plugins.contract import PolicyInfo
    from nblib.plugins.runtime import PluginSource

    stats = {
        kind: {name: np.zeros(d, np.float32) + (name in ("std", "max")) for name in
               ("mean", "std", "min", "max")}
        for kind, d in (("action", 7), ("state", 8))
    }  # fmt: skip
    info = PolicyInfo(7, 8, ("agentview",), (64, 64), 4, stats, ())
    example = Path(__file__).resolve().parents[1] / "examples" / "policies" / "conv_mlp.py"
    source = PluginSource.create(f"{example}:make_policy", {"width": 16}, info)
    seen = []
    model = source.new_model(0)
    original = model.predict_action_chunk

    def recording(batch):
        seen.append(batch)
        return original(batch)

    model.predict_action_chunk = recording
    policy = PluginClosedLoop(model, info, source.spec)
    config = EvalConfig(
        sim="libero", suite="libero_goal_lan", task_ids=[1], episodes=1, max_steps=3
    )
    frame = evaluate(config, tmp_path / "plugin.csv", progress=False, policy=policy)
    assert len(frame) == 1 and frame["complete"].all()
    batch = seen[0]
    assert batch["observation.images.agentview"].shape == (1, 3, 64, 64)
    assert batch["observation.state"].shape == (1, 8)
    assert batch["task"] == [LiberoSuite("libero_goal_lan").instruction(1)]
    assert isinstance(batch["observation.state"], torch.Tensor)
