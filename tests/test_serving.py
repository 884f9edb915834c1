"""Policy servers (nblib.serving) proven with vla-eval's own classes: `nblib serve` is a
vla_eval PredictModelServer, `--policy ws://` drives servers through vla_eval's
Connection, and a server written outside nblib the way vla-eval's are
(tests/fixtures/servers/faulty_server.py) injects the faults."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nblib.errors import NotebookError, ParameterError
from nblib.eval.rollout import EvalConfig, evaluate
from nblib.serving import check_url
from nblib.serving.client import foreign_server_frames
from nblib.serving.wire import actions_from, from_wire, resize_frame, to_wire, wants_wrist

REPO = Path(__file__).resolve().parents[1]
FAULTY = REPO / "tests" / "fixtures" / "servers" / "faulty_server.py"
NBLIB = [sys.executable, "-m", "nblib"]
KEYS = ["task", "episode", "success", "steps", "seed"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(process: subprocess.Popen, port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"server exited with {process.returncode}: {process.stdout.read()}"
            )
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"no server listening on port {port} after {timeout} s")


class Server:
    """A server process on a free port, stopped on exit."""

    def __init__(self, *command: str):
        self.port = _free_port()
        self.url = f"ws://127.0.0.1:{self.port}"
        argv = [c.replace("{port}", str(self.port)) for c in command]
        self.process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO
        )
        _wait_listening(self.process, self.port)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.process.kill()
        self.process.wait(timeout=30)


# ------------------------------------------------------------------ the wire convention


def test_wire_round_trip_keeps_metaworld_and_libero_observations() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    full = rng.normal(size=39)
    metaworld = {
        "state": full,
        "eef_pos": full[0:3],
        "gripper_opening": full[3:4],
        "images": {"corner": image},
    }
    wire = to_wire(metaworld, "push the puck", "metaworld")
    assert set(wire) == {"images", "task_description", "state", "sim_state"}
    assert wire["state"].shape == (4,) and wire["task_description"] == "push the puck"
    back, instruction = from_wire(wire, "here")
    assert instruction == "push the puck"
    np.testing.assert_array_equal(back["state"], full)  # the expert's full state
    np.testing.assert_allclose(back["eef_pos"], full[:3], rtol=1e-6)
    np.testing.assert_array_equal(back["images"]["corner"], image)

    # vla-eval's LIBERO benchmark sends its 8-D proprio as "states"
    states = np.array([0.1, 0.2, 0.3, 0.0, 0.1, 0.2, 0.04, -0.03], dtype=np.float32)
    back, _ = from_wire({"states": states, "images": {}, "task_description": "x"}, "here")
    np.testing.assert_array_equal(back["state"], states)
    np.testing.assert_allclose(back["gripper_opening"], [0.07], rtol=1e-6)


def test_libero_frames_go_in_vla_eval_and_openpi_names_and_orientation() -> None:
    """On the wire LIBERO's cameras are agentview / wrist, rotated 180° from robosuite's raw
    frame as vla-eval's LIBERO benchmark and openpi's example send them; nblib's frames
    flip the rows only. A raw frame with a marked corner shows which way each goes."""
    raw = np.zeros((16, 16, 3), dtype=np.uint8)
    raw[0, 0] = 255  # robosuite's raw frame: this pixel is the image's bottom-left
    nblib_frame = raw[::-1]  # what nblib's LiberoTask gives: bottom-left at [15, 0]
    observation = {
        "state": np.arange(8, dtype=np.float32),
        "images": {"agentview": nblib_frame, "robot0_eye_in_hand": nblib_frame.copy()},
    }
    wire = to_wire(observation, "put the bowl", "libero")
    assert list(wire["images"]) == ["agentview", "wrist"]
    np.testing.assert_array_equal(wire["images"]["agentview"], raw[::-1, ::-1])
    assert wire["images"]["wrist"][15, 15].tolist() == [255, 255, 255]

    back, _ = from_wire(wire, "here", sim="libero")
    assert list(back["images"]) == ["agentview", "robot0_eye_in_hand"]
    np.testing.assert_array_equal(back["images"]["agentview"], nblib_frame)
    # vla-eval's LIBERO client sends 256²; a policy reading 128² gets its own size
    big = {**wire, "images": {"agentview": np.zeros((256, 256, 3), np.uint8)}}
    back, _ = from_wire(big, "here", sim="libero", image_size=128)
    assert back["images"]["agentview"].shape == (128, 128, 3)


def test_wire_convention_errors_name_the_camera_and_the_simulator() -> None:
    state8 = np.zeros(8, dtype=np.float32)
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    with pytest.raises(ParameterError, match=r"images\['corner'\] is not a LIBERO camera"):
        from_wire({"state": state8, "images": {"corner": image}}, "here", sim="libero")
    with pytest.raises(ParameterError, match=r"here: 'state' has 8 values; a metaworld policy"):
        from_wire({"state": state8, "images": {}}, "here", sim="metaworld")
    with pytest.raises(ParameterError, match="camera 'corner' is not one of LIBERO's"):
        to_wire({"state": state8, "images": {"corner": image}}, "x", "libero")
    with pytest.raises(ParameterError, match="send square frames"):
        resize_frame(np.zeros((8, 12, 3), np.uint8), 4)


def test_a_foreign_server_gets_its_benchmarks_frames() -> None:
    # vla-eval's LIBERO benchmark: the scene camera, the wrist one when asked, 256²
    assert foreign_server_frames("libero", (), False) == {
        "cameras": ["agentview"],
        "image_size": 256,
    }
    assert foreign_server_frames("libero", (), True)["cameras"] == [
        "agentview",
        "robot0_eye_in_hand",
    ]
    assert foreign_server_frames("metaworld", (), False)["cameras"] == ["corner", "behindGripper"]
    assert foreign_server_frames("metaworld", ("topview",), True)["cameras"] == ["topview"]
    assert wants_wrist(["robot0_eye_in_hand"], "libero") and not wants_wrist(
        ["agentview"], "libero"
    )


def test_wire_errors_name_the_key() -> None:
    with pytest.raises(ParameterError, match=r"here: 'state' has 5 values"):
        from_wire({"state": np.zeros(5)}, "here")
    with pytest.raises(ParameterError, match="no 'state'"):
        from_wire({"images": {}}, "here")
    with pytest.raises(ParameterError, match=r"images\['corner'\].*\(H, W, 3\) uint8"):
        from_wire({"state": np.zeros(4), "images": {"corner": np.zeros((8, 8))}}, "here")
    with pytest.raises(ParameterError, match="no 'actions'"):
        actions_from({"action": [0, 0, 0, 0]}, 4, "srv")
    with pytest.raises(ParameterError, match=r"shape \(2, 3\); expected \(4,\) or \(chunk, 4\)"):
        actions_from({"actions": np.zeros((2, 3))}, 4, "srv")
    with pytest.raises(ParameterError, match="non-finite"):
        actions_from({"actions": [0.0, np.nan, 0.0, 0.0]}, 4, "srv")
    assert actions_from({"actions": [0.1, 0.2, 0.3, 0.4]}, 4, "srv").shape == (1, 4)
    with pytest.raises(ParameterError, match="ws://HOST:PORT"):
        check_url("ws://localhost")
    assert check_url("ws://10.0.0.2:8000") == ("10.0.0.2", 8000)


# ------------------------------------------------------------------ nblib serve <-> --policy ws://


def test_served_expert_gives_the_same_episodes_as_in_process(tmp_path: Path) -> None:
    local = evaluate(
        EvalConfig(tasks=["reach", "push"], episodes=2), tmp_path / "local.csv", progress=False
    )
    with Server(*NBLIB, "serve", "expert", "--port", "{port}") as server:
        remote = evaluate(
            EvalConfig(tasks=["reach", "push"], episodes=2, policy=server.url),
            tmp_path / "remote.csv",
            progress=False,
        )
        # two simulator processes against one server: the same episodes again
        sharded = evaluate(
            EvalConfig(tasks=["reach", "push"], episodes=2, policy=server.url, workers=2),
            tmp_path / "two.csv",
            progress=False,
        )
    assert local["success"].all()  # the scripted expert solves them: a real comparison
    pd.testing.assert_frame_equal(local[KEYS], remote[KEYS])
    pd.testing.assert_frame_equal(local[KEYS], sharded[KEYS])
    assert set(remote["run"]) == {f"server-127.0.0.1-{server.port}"}
    assert pd.read_csv(tmp_path / "remote.csv")["complete"].all()


def test_a_server_that_is_not_there_fails_fast_and_writes_nothing(tmp_path: Path) -> None:
    url = f"ws://127.0.0.1:{_free_port()}"
    start = time.monotonic()
    with pytest.raises(Exception, match=rf"policy server {url}: connecting.*unreachable"):
        evaluate(EvalConfig(tasks=["reach"], episodes=1, policy=url), tmp_path / "x.csv")
    assert time.monotonic() - start < 30  # bounded retries (2 s + 4 s of back-off)
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize(
    "mode, message",
    [
        ("nan", r"non-finite actions"),
        ("shape", r"shape \(2, 3\); expected \(4,\) or \(chunk, 4\)"),
    ],
)
def test_a_wrong_reply_names_the_server_and_the_episode(tmp_path, mode, message) -> None:
    with Server(sys.executable, str(FAULTY), "{port}", mode) as server:
        with pytest.raises(NotebookError) as caught:
            evaluate(
                EvalConfig(tasks=["reach"], episodes=2, policy=server.url, max_steps=5),
                tmp_path / "out.csv",
                progress=False,
            )
    text = str(caught.value)
    assert "2 of 2 episodes failed" in text
    assert f"policy server {server.url} (task 'reach', episode 0)" in text
    assert len(re.findall(message, text)) == 1


def test_a_slow_server_times_out(tmp_path: Path) -> None:
    with Server(sys.executable, str(FAULTY), "{port}", "slow", "5") as server:
        with pytest.raises(
            NotebookError, match=r"acting \(task 'reach', episode 0\): TimeoutError"
        ):
            evaluate(
                EvalConfig(
                    tasks=["reach"], episodes=1, policy=server.url, max_steps=3, server_timeout=1.0
                ),
                tmp_path / "out.csv",
                progress=False,
            )


def test_a_server_lost_mid_run_keeps_finished_episodes_and_a_rerun_resumes(tmp_path) -> None:
    out = tmp_path / "out.csv"
    # 5 steps of 1 action per episode: the 13th observation is episode 2's third step
    with Server(sys.executable, str(FAULTY), "{port}", "die", "13") as server:
        config = EvalConfig(
            tasks=["reach"], episodes=4, policy=server.url, max_steps=5, run="zeros"
        )
        with pytest.raises(NotebookError) as caught:
            evaluate(config, out, progress=False)
    text = str(caught.value)
    assert "2 of 4 episodes failed; the 2 finished ones are in" in text
    assert f"policy server {server.url}" in text and "(task 'reach', episode 2)" in text
    kept = pd.read_csv(out)
    assert kept["episode"].tolist() == [0, 1] and not kept["complete"].any()

    # the same run against a server that stays up: only episodes 2 and 3 run
    with Server(sys.executable, str(FAULTY), "{port}", "zeros") as server:
        with pytest.raises(ParameterError, match="exists; pass resume=True"):
            evaluate(replace_url(config, server.url), out, progress=False)
        done = evaluate(replace_url(config, server.url), out, progress=False, resume=True)
    assert done["episode"].tolist() == [0, 1, 2, 3]
    final = pd.read_csv(out)
    assert final["episode"].tolist() == [0, 1, 2, 3] and final["complete"].all()
    assert (final["steps"] == 5).all() and not final["success"].any()  # zeros never succeed


def replace_url(config: EvalConfig, url: str) -> EvalConfig:
    from dataclasses import replace

    return replace(config, policy=url)


def test_resume_refuses_another_runs_file(tmp_path: Path) -> None:
    out = tmp_path / "expert.csv"
    evaluate(EvalConfig(tasks=["reach"], episodes=1), out, progress=False)
    with pytest.raises(ParameterError, match=r"cannot resume .*run 'expert'.*run 'random'"):
        evaluate(EvalConfig(tasks=["reach"], episodes=1, policy="random"), out, resume=True)


def test_serve_cli_rejects_bad_flags() -> None:
    run = subprocess.run(
        [*NBLIB, "serve", "expert", "--port", "70000"], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 1
    assert "--port=70000 is invalid; expected an int in 0..65535" in run.stderr
    run = subprocess.run(
        [*NBLIB, "serve", "expert", "--sim", "libero"], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 1 and "LIBERO has no scripted expert" in run.stderr


def test_sessions_of_one_server_do_not_share_episode_state() -> None:
    # Two simulators on different tasks against one server: each session's expert must be
    # its own task's (a shared policy once drove reach episodes with push's expert).
    from nblib.eval.metaworld import MetaWorldTask
    from nblib.eval.policies import ExpertPolicy
    from nblib.serving.client import RemotePolicy

    sim = MetaWorldTask("reach")
    try:
        observation = sim.reset(7, 0)
    finally:
        sim.close()
    expected = ExpertPolicy()
    expected.reset("reach")
    with Server(*NBLIB, "serve", "expert", "--port", "{port}") as server:
        a, b = RemotePolicy(server.url), RemotePolicy(server.url)
        try:
            a.begin_episode("reach", "metaworld", 0, 7)
            b.begin_episode("push", "metaworld", 0, 7)  # the later reset of the two
            b.act(observation, "push the puck")  # a round trip: the server has reset for b
            got = a.act(observation, "reach the goal")
        finally:
            a.close()
            b.close()
    np.testing.assert_allclose(got, expected.act(observation, "reach the goal"), rtol=1e-6)
    expected.reset("push")
    assert not np.allclose(got, expected.act(observation, "x"), atol=1e-3)  # tasks differ here
