"""Closed-loop evaluation in Meta-World: the harness, its options and its output file."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from nblib.cli import main
from nblib.data.metaworld_gen import INSTRUCTIONS
from nblib.errors import NotebookError, ParameterError
from nblib.eval.metaworld import MetaWorldTask
from nblib.eval.results import read_results
from nblib.eval.results.summary import summarize
from nblib.eval.rollout import EvalConfig, episode_seed, evaluate


class Recorder:
    """A policy that records what it is given and returns fixed-length chunks of zeros."""

    cameras = ()

    def __init__(self, chunk=8, fail_at=None):
        self.chunk, self.fail_at = chunk, fail_at
        self.calls, self.instructions, self.resets = 0, [], []

    def reset(self, task):
        self.resets.append(task)
        if self.fail_at is not None and len(self.resets) == self.fail_at:
            raise RuntimeError("policy crashed")

    def act(self, observation, instruction):
        assert observation["state"].shape == (39,) and observation["eef_pos"].shape == (3,)
        self.calls += 1
        self.instructions.append(instruction)
        return np.zeros((self.chunk, 4), dtype=np.float32)


def test_expert_succeeds_and_random_fails_through_the_harness(tmp_path):
    expert = evaluate(
        EvalConfig(tasks=["reach", "push"], policy="expert", episodes=2),
        tmp_path / "expert.csv",
        progress=False,
    )
    assert expert["success"].all()  # the simulator's success signal, end to end
    assert (expert["steps"] < 500).all() and expert["complete"].all()
    random = evaluate(
        EvalConfig(tasks=["reach", "push"], policy="random", episodes=2, max_steps=60),
        tmp_path / "random.jsonl",
        progress=False,
    )
    assert not random["success"].any() and (random["steps"] == 60).all()
    # episode i of a task has the same layout for every policy
    assert expert["seed"].tolist() == random["seed"].tolist()
    assert expert["task"].tolist() == ["reach", "reach", "push", "push"]  # configured order
    assert expert["seed"].iloc[2] == episode_seed(0, "push", 0)
    frame = read_results([tmp_path / "expert.csv", tmp_path / "random.jsonl"])
    table = summarize(frame).set_index(["run", "task"])
    assert table.loc[("expert", "push"), "success_rate"] == 100.0
    assert table.loc[("random", "reach"), "successes"] == 0
    assert table["complete"].all()


def test_replan_executes_that_many_actions_per_chunk(tmp_path):
    for replan, calls in ((1, 20), (4, 5), (16, 2)):
        policy = Recorder(chunk=8)
        config = EvalConfig(tasks=["reach"], episodes=1, max_steps=20, replan=replan)
        rows = evaluate(config, tmp_path / f"r{replan}.csv", progress=False, policy=policy)
        assert rows["steps"].tolist() == [20]
        # a chunk of 8 caps replan 16 at 8 actions per call
        assert policy.calls == (calls if replan <= 8 else math.ceil(20 / 8))


def test_instruction_perturbations_reach_the_policy(tmp_path):
    seen = {}
    for mode in ("original", "paraphrase", "other", "empty"):
        policy = Recorder(chunk=5)
        config = EvalConfig(tasks=["push"], episodes=2, max_steps=5, instruction=mode)
        rows = evaluate(config, tmp_path / f"{mode}.csv", progress=False, policy=policy)
        # one instruction per episode, whatever the number of calls
        seen[mode] = (
            list(dict.fromkeys(policy.instructions)),
            rows["perturbation"].unique().tolist(),
        )
        assert rows["run"].iloc[0] == "recorder"  # a policy object names the run
    assert seen["original"] == ([INSTRUCTIONS["push"][0]], ["none"])
    assert seen["paraphrase"][0] == INSTRUCTIONS["push"][1:3]  # episodes 0 and 1
    assert seen["paraphrase"][1] == ["language"]
    other = seen["other"][0][0]
    assert other != INSTRUCTIONS["push"][0] and other in {v[0] for v in INSTRUCTIONS.values()}
    assert seen["empty"] == ([""], ["instruction_empty"])


def test_position_noise_widens_the_reset_box(tmp_path):
    plain, wide = MetaWorldTask("push"), MetaWorldTask("push", position_noise=0.05)
    try:
        low, high = plain.env._random_reset_space.low, plain.env._random_reset_space.high
        wlow, whigh = wide.env._random_reset_space.low, wide.env._random_reset_space.high
        np.testing.assert_allclose(wlow[[0, 1, 3, 4]], low[[0, 1, 3, 4]] - 0.05)
        np.testing.assert_allclose(whigh[[0, 1, 3, 4]], high[[0, 1, 3, 4]] + 0.05)
        np.testing.assert_allclose(wlow[[2, 5]], low[[2, 5]])  # z stays on the table
    finally:
        plain.close()
        wide.close()
    rows = evaluate(
        EvalConfig(tasks=["push"], episodes=1, max_steps=3, position_noise=0.05),
        tmp_path / "pos.csv",
        progress=False,
        policy=Recorder(),
    )
    assert rows["perturbation"].tolist() == ["position"]


def test_a_crash_keeps_finished_episodes_and_marks_the_run_incomplete(tmp_path):
    out = tmp_path / "crash.csv"
    policy = Recorder(chunk=4, fail_at=3)  # the third episode's reset raises
    with pytest.raises(NotebookError, match="1 of 4 episodes failed.*policy crashed"):
        evaluate(
            EvalConfig(tasks=["reach"], episodes=4, max_steps=4), out, progress=False, policy=policy
        )
    written = pd.read_csv(out)
    assert written["episode"].tolist() == [0, 1, 3]  # episode 2 failed, 3 still ran
    assert not written["complete"].any()  # never rewritten as complete
    frame = read_results([out])
    assert not summarize(frame)["complete"].any()


def test_config_and_policy_errors_name_the_parameter(tmp_path):
    with pytest.raises(ParameterError, match="EvalConfig.tasks"):
        EvalConfig(tasks=["fly"])
    with pytest.raises(ParameterError, match="EvalConfig.replan=0"):
        EvalConfig(replan=0)
    with pytest.raises(ParameterError, match="EvalConfig.instruction"):
        EvalConfig(instruction="loud")
    with pytest.raises(ParameterError, match="neither one of"):
        evaluate(EvalConfig(policy="no/such/policy", episodes=1), tmp_path / "x.csv")
    with pytest.raises(ParameterError, match=r"\.csv or \.jsonl"):
        evaluate(EvalConfig(episodes=1), tmp_path / "x.txt")
    (tmp_path / "done.csv").write_text("run\n")
    with pytest.raises(ParameterError, match=r"exists; pass resume=True .*, overwrite=True"):
        evaluate(EvalConfig(episodes=1), tmp_path / "done.csv", policy=Recorder())
    assert (tmp_path / "done.csv").read_text() == "run\n"  # untouched
    assert EvalConfig(policy=str(tmp_path), replan=4).label == f"{tmp_path.name}_replan4"
    (tmp_path / "policy").mkdir()
    assert EvalConfig(policy=str(tmp_path / "policy")).label == tmp_path.name
    with pytest.raises(ParameterError, match="workers=1"):
        evaluate(EvalConfig(episodes=1, workers=2), tmp_path / "y.csv", policy=Recorder())


def test_eval_command_with_worker_processes(tmp_path, capsys):
    out = tmp_path / "expert.jsonl"
    args = ["eval", "--tasks", "reach", "drawer-open", "--policy", "expert", "--episodes", "2"]
    assert main([*args, "--workers", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "drawer-open" in printed and "4 episodes" in printed
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 4 and all(r["success"] and r["complete"] for r in rows)
    assert (
        main(["eval", "--tasks", "fly", "--policy", "expert", "--episodes", "1", "--out", str(out)])
        == 1
    )
    assert "--tasks=fly is invalid" in capsys.readouterr().err  # the flag the user typed


def test_saved_policy_runs_closed_loop_on_its_cameras(tiny_saved_policy, tmp_path):
    from nblib.eval.policies import VLAClosedLoop

    policy = VLAClosedLoop.from_saved(tiny_saved_policy)
    assert policy.cameras and policy.image_size == 32
    rows = evaluate(
        EvalConfig(
            tasks=["reach"], policy=str(tiny_saved_policy), episodes=1, max_steps=6, replan=2
        ),
        tmp_path / "vla.csv",
        progress=False,
    )
    assert rows["steps"].tolist() == [6]
    assert rows["run"].iloc[0] == f"{tiny_saved_policy.name}_replan2"  # named after the run
    obs = MetaWorldTask("reach", cameras=policy.cameras, size=32).reset(1)
    chunk = policy.act(obs, INSTRUCTIONS["reach"][0])
    assert chunk.shape == (4, 4) and np.all(np.abs(chunk) <= 1)


def test_video_writes_one_mp4_per_episode(tmp_path):
    import cv2

    config = EvalConfig(tasks=["reach"], episodes=2, max_steps=5, video=str(tmp_path / "videos"))
    evaluate(config, tmp_path / "v.csv", progress=False, policy=Recorder())
    videos = sorted((tmp_path / "videos").glob("*.mp4"))
    assert [v.name for v in videos] == ["recorder_reach_ep000.mp4", "recorder_reach_ep001.mp4"]
    capture = cv2.VideoCapture(str(videos[0]))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 5  # one frame per executed action
    ok, frame = capture.read()
    capture.release()
    assert ok and frame.shape == (256, 256, 3)


@pytest.mark.parametrize("policy", ["randm", "no/such/folder"])
def test_a_wrong_policy_leaves_no_file_and_the_retry_runs(tmp_path, capsys, policy):
    out = tmp_path / "retry.csv"
    args = ["eval", "--tasks", "reach", "--episodes", "1", "--max-steps", "2", "--out", str(out)]
    assert main([*args, "--policy", policy]) == 1
    assert "neither one of" in capsys.readouterr().err
    assert not out.exists()  # no header-only file blocks the retry
    assert main([*args, "--policy", "zero"]) == 0
    assert pd.read_csv(out)["complete"].tolist() == [True]


def test_a_run_whose_episodes_all_fail_writes_no_file(tmp_path):
    out = tmp_path / "none.csv"
    config = EvalConfig(tasks=["reach"], episodes=1, max_steps=2)
    with pytest.raises(NotebookError, match="none finished, so .* was not written"):
        evaluate(config, out, progress=False, policy=Recorder(fail_at=1))
    assert not out.exists()


def test_metaworld_episodes_are_bounded_by_distinct_layouts(tmp_path, capsys, monkeypatch):
    from nblib.eval import rollout
    from nblib.eval.rollout import MAX_METAWORLD_EPISODES, task_specs

    with pytest.raises(ParameterError, match=rf"--episodes.*at most {MAX_METAWORLD_EPISODES}"):
        EvalConfig(episodes=1_000_000)
    args = ["eval", "--policy", "zero", "--episodes", "1000000", "--out", str(tmp_path / "a.csv")]
    assert main(args) == 1
    assert "episodes=1000000 (--episodes)" in capsys.readouterr().err
    assert not (tmp_path / "a.csv").exists()
    # up to the bound, every task's episodes get distinct layout seeds (task_specs checks)
    for seed in (0, 1):
        config = EvalConfig(tasks=sorted(INSTRUCTIONS), episodes=MAX_METAWORLD_EPISODES, seed=seed)
        assert len(task_specs(config)) == len(INSTRUCTIONS)
        seeds = {episode_seed(seed, "reach", i) for i in range(MAX_METAWORLD_EPISODES)}
        assert len(seeds) == MAX_METAWORLD_EPISODES
    # a repeated seed would count one scene twice: refused, naming the episodes
    monkeypatch.setattr(rollout, "episode_seed", lambda seed, task, episode: episode % 3)
    with pytest.raises(ParameterError, match="episode 3 of reach would repeat episode 0"):
        task_specs(EvalConfig(tasks=["reach"], episodes=5))
