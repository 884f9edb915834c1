"""Render demonstrations from Meta-World's scripted expert policies on MuJoCo, headless.

The embedded default dataset is made here: a few Meta-World tasks, a handful of demos each
with freshly randomised object and goal positions, frames from a third-person camera and
the wrist camera, proprio, 4-dim actions (xyz delta of the hand + gripper effort),
success flags and camera parameters, written as robomimic-style HDF5::

    data/                       attrs: total, env_args, generator, instructions (JSON)
      demo_0/                   attrs: num_samples, task, instruction, seed, success, attempts
        obs/corner_image        (T, H, W, 3) uint8
        obs/behindGripper_image (T, H, W, 3) uint8
        obs/eef_pos             (T, 3) float32, metres (world frame)
        obs/gripper_opening     (T, 1) float32, 0 closed .. 1 open
        obs/state               (T, 39) float32, Meta-World's full observation
        actions                 (T, 4) float32 in [-1, 1]
        rewards, success        (T,) float32 / uint8
        camera/<name>/intrinsics  (3, 3) float32 pixels, OpenCV convention
        camera/<name>/extrinsics  (T, 4, 4) float32 world -> camera (OpenCV: x right, y down, z forward)

Observation t is recorded before action t is applied. Rendering uses EGL with shadows,
reflections and multisampling off (~7x faster on a CPU; FACTS.md).
"""

from __future__ import annotations

import json
import os
import warnings
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from nblib.errors import ParameterError
from nblib.paths import atomic_path

GENERATOR_VERSION = "1"
DEFAULT_TASKS = ("reach", "push", "pick-place", "drawer-open", "button-press-topdown")
DEFAULT_CAMERAS = ("corner", "behindGripper")
# Meta-World steps the simulation 5 x 2.5 ms per action (frame_skip 5, timestep 0.0025):
# 80 actions per second (measured as env.dt = 0.0125 s).
METAWORLD_FPS = 80
# Cameras that Meta-World's model renders upside down; their frames are rotated 180 degrees.
UPSIDE_DOWN_CAMERAS = frozenset({"corner"})

# One canonical instruction per task (first) plus paraphrases, for language-probe notebooks.
INSTRUCTIONS: dict[str, list[str]] = {
    "reach": ["reach the goal", "move the gripper to the target", "go to the goal position"],
    "push": ["push the puck to the goal", "slide the puck to the target", "shove the puck over"],
    "pick-place": [
        "pick up the puck and place it at the goal",
        "grasp the puck and put it on the target",
        "move the puck through the air to the goal",
    ],
    "drawer-open": ["open the drawer", "pull the drawer open", "slide the drawer out"],
    "drawer-close": ["close the drawer", "push the drawer shut", "slide the drawer in"],
    "button-press-topdown": [
        "press the button from the top",
        "push the button down",
        "press down on the button",
    ],
    "window-open": ["open the window", "slide the window open", "push the window to the side"],
    "door-open": ["open the door", "pull the door open", "swing the door open"],
}


@dataclass
class GenerateConfig:
    """What to render. Defaults make the embedded dataset (~50 demos, 2 cameras, 128 px)."""

    tasks: tuple[str, ...] = DEFAULT_TASKS
    demos: int = 10  # demos per task, each with a fresh random object/goal layout
    size: int = 128  # frame height = width, pixels
    cameras: tuple[str, ...] = DEFAULT_CAMERAS
    seed: int = 0
    max_steps: int = 150  # an expert that has not succeeded by then is retried
    settle_steps: int = 3  # steps kept after success so the last frames show the result
    max_attempts: int = 3  # fresh layouts tried before a failed demo is kept, flagged
    # Frames keep the top `color_bits` bits of each channel (bin centre filled in). 6 bits
    # (64 levels) halves the gzip size of the rendered textures and keeps the file readable
    # by any h5py/robomimic with no filter plugin; 8 is lossless (~2x larger).
    color_bits: int = 6
    gzip_level: int = 9
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = [t for t in self.tasks if t not in INSTRUCTIONS]
        if unknown:
            raise ParameterError(
                f"tasks: {unknown} have no scripted policy/instructions here; "
                f"choose from {sorted(INSTRUCTIONS)}"
            )
        if self.demos < 1:
            raise ParameterError(f"demos: need at least 1 demo per task, got {self.demos}")
        if not 1 <= self.color_bits <= 8:
            raise ParameterError(f"color_bits: need 1..8 bits per channel, got {self.color_bits}")
        if not 32 <= self.size <= 512:
            raise ParameterError(f"size: frame size must be 32..512 pixels, got {self.size}")


def demo_seed(seed: int, task: str, index: int, attempt: int) -> int:
    """A stable per-demo seed (crc32, not Python's salted hash) so runs are reproducible."""
    return zlib.crc32(f"{seed}/{task}/{index}/{attempt}".encode()) & 0x7FFFFFFF


def quantize_colors(frames: np.ndarray, bits: int) -> np.ndarray:
    """uint8 frames kept to ``bits`` bits per channel, each value moved to the middle of its
    bin (smaller gzip'd files; closed-loop evaluation renders the same way)."""
    drop = 8 - bits
    if drop <= 0:
        return frames
    return (frames >> drop << drop) | ((1 << drop) >> 1)


def expert_policy(task: str):
    """Meta-World's scripted expert for ``task`` (``get_action(state) -> action``)."""
    from metaworld import policies

    name = "Sawyer" + "".join(p.capitalize() for p in task.split("-")) + "V3Policy"
    return getattr(policies, name)()


def make_env(task: str):
    """The goal-observable Meta-World v3 env of ``task``, sampling a new layout at every
    seeded reset, without Meta-World's own step limit."""
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE as envs

    env = envs[f"{task}-v3-goal-observable"](seed=0)
    # Sample a new layout at each reset from the env's own seeded generator.
    env._freeze_rand_vec = False
    env.seeded_rand_vec = True
    env.max_path_length = 10_000  # we stop episodes ourselves
    return env


def reset_layout(env, seed: int):
    """Reset ``env`` to the layout of ``seed``; returns the first observation.

    Meta-World moves the goal's site in the model at reset, but the site's world position
    in ``data`` is only recomputed by the next physics step, so a frame rendered right after
    reset showed the previous episode's goal marker (one stale first frame per episode).
    The positions of bodies, sites and cameras are recomputed from the state, and nothing
    else: ``mj_forward`` would also reset solver warm-starts, which moves later states by a
    few ulps."""
    import mujoco

    env.seed(int(seed))
    obs, _ = env.reset()
    mujoco.mj_kinematics(env.model, env.data)
    mujoco.mj_camlight(env.model, env.data)
    return obs


class Cameras:
    """Renders several named cameras of one model and reports their OpenCV parameters."""

    def __init__(self, model, names: tuple[str, ...], size: int):
        import mujoco

        self._mujoco = mujoco
        known = [model.camera(i).name for i in range(model.ncam)]
        missing = [n for n in names if n not in known]
        if missing:
            raise ParameterError(f"cameras: {missing} not in the model; available: {known}")
        model.vis.quality.offsamples = 0
        self.names = names
        self.size = size
        self.ids = {n: model.camera(n).id for n in names}
        self.renderer = mujoco.Renderer(model, size, size)
        self.renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
        self.renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
        self.fovy = {n: float(model.cam_fovy[self.ids[n]]) for n in names}

    def intrinsics(self, name: str) -> np.ndarray:
        f = 0.5 * self.size / np.tan(np.deg2rad(self.fovy[name]) / 2)
        c = (self.size - 1) / 2  # pixel-index coordinates: centre of the middle pixel
        return np.array([[f, 0, c], [0, f, c], [0, 0, 1]], dtype=np.float32)

    def extrinsics(self, data, name: str) -> np.ndarray:
        """World -> camera 4x4 in OpenCV axes (MuJoCo cameras look down -z with y up)."""
        cid = self.ids[name]
        rot_world_cam = data.cam_xmat[cid].reshape(3, 3)
        flip = np.diag([1.0, -1.0, -1.0])
        if name in UPSIDE_DOWN_CAMERAS:
            flip = np.diag([-1.0, 1.0, -1.0])  # the 180-degree image rotation, as axes
        rot = flip @ rot_world_cam.T
        out = np.eye(4)
        out[:3, :3] = rot
        out[:3, 3] = -rot @ data.cam_xpos[cid]
        return out.astype(np.float32)

    def render(self, data, name: str) -> np.ndarray:
        self.renderer.update_scene(data, camera=name)
        frame = self.renderer.render()
        if name in UPSIDE_DOWN_CAMERAS:
            frame = frame[::-1, ::-1]
        return np.ascontiguousarray(frame)

    def render_depth(self, data, name: str) -> np.ndarray:
        """(H, W) float32 metric depth along the optical axis, oriented as :meth:`render`
        (geometry tokens, :mod:`nblib.data.geometry`)."""
        self.renderer.enable_depth_rendering()
        try:
            self.renderer.update_scene(data, camera=name)
            depth = self.renderer.render()
        finally:
            self.renderer.disable_depth_rendering()
        if name in UPSIDE_DOWN_CAMERAS:
            depth = depth[::-1, ::-1]
        return np.ascontiguousarray(depth, dtype=np.float32)

    def close(self) -> None:
        self.renderer.close()


def _roll_out(env, policy, cams: Cameras, cfg: GenerateConfig, seed: int) -> dict:
    obs = reset_layout(env, seed)
    record: dict[str, list] = {k: [] for k in ("state", "actions", "rewards", "success")}
    frames = {n: [] for n in cams.names}
    extr = {n: [] for n in cams.names}
    succeeded_at = None
    for step in range(cfg.max_steps):
        for name in cams.names:
            frames[name].append(cams.render(env.data, name))
            extr[name].append(cams.extrinsics(env.data, name))
        action = np.clip(policy.get_action(obs), -1.0, 1.0).astype(np.float32)
        record["state"].append(obs.astype(np.float32))
        record["actions"].append(action)
        obs, reward, _, _, info = env.step(action)
        record["rewards"].append(float(reward))
        record["success"].append(bool(info["success"]))
        if info["success"] and succeeded_at is None:
            succeeded_at = step
        if succeeded_at is not None and step >= succeeded_at + cfg.settle_steps:
            break
    state = np.stack(record["state"])
    return {
        "frames": {n: np.stack(v) for n, v in frames.items()},
        "extrinsics": {n: np.stack(v) for n, v in extr.items()},
        "state": state,
        "eef_pos": state[:, 0:3],
        "gripper_opening": state[:, 3:4],
        "actions": np.stack(record["actions"]),
        "rewards": np.asarray(record["rewards"], dtype=np.float32),
        "success": np.asarray(record["success"], dtype=np.uint8),
        "succeeded": succeeded_at is not None,
    }


def _write_demo(group, demo: dict, cfg: GenerateConfig) -> None:
    obs = group.create_group("obs")
    size = cfg.size
    for name, frames in demo["frames"].items():
        frames = quantize_colors(frames, cfg.color_bits)
        # One frame per chunk: a random-access loader decompresses only what it reads.
        obs.create_dataset(
            f"{name}_image",
            data=frames,
            chunks=(1, size, size, 3),
            compression="gzip",
            compression_opts=cfg.gzip_level,
        )
    obs.create_dataset("eef_pos", data=demo["eef_pos"])
    obs.create_dataset("gripper_opening", data=demo["gripper_opening"])
    obs.create_dataset("state", data=demo["state"])
    group.create_dataset("actions", data=demo["actions"])
    group.create_dataset("rewards", data=demo["rewards"])
    group.create_dataset("success", data=demo["success"])
    for name in demo["frames"]:
        cam = group.create_group(f"camera/{name}")
        cam.create_dataset("intrinsics", data=demo["intrinsics"][name])
        cam.create_dataset("extrinsics", data=demo["extrinsics"][name])


_WORKER_ENVS: dict = {}  # per worker process: task -> (env, policy, cameras)


def _render_demo(cfg: GenerateConfig, task: str, index: int) -> tuple[dict, int, int]:
    """Roll out demo ``index`` of ``task`` (fresh layouts until the expert succeeds, at most
    ``max_attempts``); returns the demo, its seed and the attempts it took. Each process
    keeps the environment of the task it rendered last: a demo depends only on its seed,
    not on the demos rolled out before it in that environment (the file is byte-identical
    either way)."""
    if task not in _WORKER_ENVS:
        # one live renderer per process: a second EGL context beside the first renders
        # slightly different pixels, so the previous task's is closed first (tasks come in
        # order), as a single process rendering them one after the other does
        _close_envs()
        env = make_env(task)
        _WORKER_ENVS[task] = (env, expert_policy(task), Cameras(env.model, cfg.cameras, cfg.size))
    env, policy, cams = _WORKER_ENVS[task]
    for attempt in range(cfg.max_attempts):
        seed = demo_seed(cfg.seed, task, index, attempt)
        demo = _roll_out(env, policy, cams, cfg, seed)
        if demo["succeeded"]:
            break
    demo["intrinsics"] = {name: cams.intrinsics(name) for name in cams.names}
    return demo, seed, attempt + 1


def _close_envs() -> None:
    for env, _, cams in _WORKER_ENVS.values():
        cams.close()
        env.close()
    _WORKER_ENVS.clear()


def _render_job(job: tuple) -> tuple[dict, int, int]:
    return _render_demo(*job)


def _quiet_worker() -> None:
    os.environ.setdefault("MUJOCO_GL", "egl")
    warnings.filterwarnings("ignore", message="Constant\\(s\\) may be too high")


def _rendered(cfg: GenerateConfig, workers: int):
    """Every demo (task by task, in order) as it is rendered: in this process, or in
    ``workers`` spawned processes (rendering is single-threaded: two cores render two
    demos at once while this process compresses and writes)."""
    jobs = [(cfg, task, i) for task in cfg.tasks for i in range(cfg.demos)]
    if workers <= 1:
        try:
            yield from map(_render_job, jobs)
        finally:
            _close_envs()
        return
    from multiprocessing import get_context

    with get_context("spawn").Pool(workers, initializer=_quiet_worker) as pool:
        yield from pool.imap(_render_job, jobs)  # in order: the file does not depend on it


def generate(
    cfg: GenerateConfig, out: str | Path, progress: bool = True, workers: int | None = None
) -> dict:
    """Render ``cfg`` into the HDF5 file ``out`` atomically; returns a summary dict.

    The file appears only when complete (written to a temporary name, then renamed), so an
    interrupted run never leaves a half-written dataset that looks valid. ``workers`` > 1
    renders in that many processes (None: one per usable core, at most 2, ~1.8x faster on
    2 cores); the file is the same byte for byte.
    """
    os.environ.setdefault("MUJOCO_GL", "egl")
    import h5py
    from tqdm.auto import tqdm

    if workers is None:
        workers = min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
    if not (isinstance(workers, int) and workers >= 1):
        raise ParameterError(f"workers={workers!r} is invalid; expected an int >= 1")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    summary = {"tasks": {}, "demos": 0, "steps": 0, "failed_demos": []}
    bar = tqdm(total=len(cfg.tasks) * cfg.demos, desc="rendering demos", disable=not progress)
    # The scripted policies' gains trip a UserWarning on every call; the env clips anyway.
    warnings.filterwarnings("ignore", message="Constant\\(s\\) may be too high")
    try:
        with atomic_path(out) as tmp, h5py.File(tmp, "w") as f:
            data = f.create_group("data")
            lengths: dict[str, list[int]] = {task: [] for task in cfg.tasks}
            rendered = _rendered(cfg, workers)
            for index, (demo, seed, attempts) in enumerate(rendered):
                task = cfg.tasks[index // cfg.demos]
                group = data.create_group(f"demo_{index}")
                _write_demo(group, demo, cfg)
                steps = len(demo["actions"])
                group.attrs.update(
                    num_samples=steps,
                    task=task,
                    instruction=INSTRUCTIONS[task][0],
                    seed=seed,
                    attempts=attempts,
                    success=bool(demo["succeeded"]),
                )
                if not demo["succeeded"]:
                    summary["failed_demos"].append(f"demo_{index}")
                lengths[task].append(steps)
                bar.update(1)
            for task, task_lengths in lengths.items():
                summary["tasks"][task] = {
                    "demos": len(task_lengths),
                    "steps": int(sum(task_lengths)),
                }
            summary["demos"] = len(cfg.tasks) * cfg.demos
            summary["steps"] = int(sum(t["steps"] for t in summary["tasks"].values()))
            gen = asdict(cfg)
            gen.update(version=GENERATOR_VERSION, tasks=list(cfg.tasks), cameras=list(cfg.cameras))
            data.attrs["total"] = summary["steps"]
            data.attrs["generator"] = json.dumps(gen)
            data.attrs["instructions"] = json.dumps({t: INSTRUCTIONS[t] for t in cfg.tasks})
            data.attrs["env_args"] = json.dumps(
                {"env_name": "metaworld-v3", "type": "metaworld", "env_kwargs": {}}
            )
    finally:
        bar.close()
    return summary
