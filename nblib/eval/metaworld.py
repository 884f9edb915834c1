"""Meta-World tasks as closed-loop evaluation environments (MuJoCo, headless).

The same environments, cameras and expert policies the embedded demonstrations were
rendered with (:mod:`nblib.data.metaworld_gen`), so a policy trained on those demos is
evaluated on the scenes it learned from. Each episode resets with its own seed (a new
object and goal layout drawn from Meta-World's reset space); ``position_noise`` widens
that space by the given metres in x and y, for layouts the demonstrations never showed.
Success is the simulator's own ``info["success"]``. Frames are rendered only for the
cameras a policy reads (and the video camera), as the training frames were: same size, no
shadows or reflections, the same colour quantisation.
"""

from __future__ import annotations

import os

# Headless rendering; must be set before MuJoCo is first imported (FACTS.md: EGL works here).
os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402

from nblib.data.metaworld_gen import (  # noqa: E402
    INSTRUCTIONS,
    Cameras,
    make_env,
    quantize_colors,
    reset_layout,
)
from nblib.errors import ParameterError, is_number  # noqa: E402
from nblib.eval.actions import sim_action  # noqa: E402

# Meta-World's own step limit (max_path_length) for every v3 task.
MAX_STEPS = 500
ACTION_DIM = 4
VIDEO_CAMERA = "corner"


class MetaWorldTask:
    """One Meta-World task: ``reset(seed)`` → observation, ``step(action)`` →
    (observation, success). Observations: ``state`` (39-D), ``eef_pos``,
    ``gripper_opening`` and ``images`` for ``cameras``; with ``depth``, also ``depth``
    (metric, per camera) and the cameras' OpenCV ``intrinsics`` and ``extrinsics``."""

    def __init__(
        self,
        task: str,
        cameras: tuple[str, ...] = (),
        size: int = 128,
        color_bits: int = 8,
        position_noise: float = 0.0,
        depth: bool = False,
    ):
        if task not in INSTRUCTIONS:
            raise ParameterError(
                f"task {task!r} is not one of the Meta-World tasks nblib knows: {sorted(INSTRUCTIONS)}"
            )
        if not is_number(position_noise) or position_noise < 0:
            raise ParameterError(f"position_noise={position_noise!r}: expected metres >= 0")
        self.task = task
        self.env = make_env(task)
        if position_noise:
            _widen_reset_space(self.env, float(position_noise))
        self.cameras = tuple(cameras)
        self.depth = bool(depth)
        if self.depth and not self.cameras:
            raise ParameterError("depth=True renders the policy's cameras: name some cameras")
        self.color_bits = int(color_bits)
        self._cams = Cameras(self.env.model, self.cameras, size) if self.cameras else None
        self._video = None
        self._obs = None

    def reset(self, seed: int, episode: int | None = None) -> dict:
        """A new layout drawn with ``seed`` (``episode`` is for simulators with fixed
        initial states, such as LIBERO; here the seed alone decides)."""
        self._obs = reset_layout(self.env, seed)
        return self.observation()

    def step(self, action: np.ndarray) -> tuple[dict, bool]:
        action = sim_action(action, ACTION_DIM, "Meta-World", self.task, "dx, dy, dz, gripper")
        self._obs, _, _, _, info = self.env.step(action)
        return self.observation(), bool(info["success"])

    def observation(self) -> dict:
        state = np.asarray(self._obs, dtype=np.float32)
        obs = {"state": state, "eef_pos": state[0:3], "gripper_opening": state[3:4]}
        if self._cams is not None:
            obs["images"] = {name: self._frame(name) for name in self.cameras}
        if self.depth:  # what geometry tokens are made of (nblib.data.geometry)
            data = self.env.data
            obs["depth"] = {c: self._cams.render_depth(data, c) for c in self.cameras}
            obs["intrinsics"] = {c: self._cams.intrinsics(c) for c in self.cameras}
            obs["extrinsics"] = {c: self._cams.extrinsics(data, c) for c in self.cameras}
        return obs

    def _frame(self, name: str) -> np.ndarray:
        # the generator's quantisation, so frames match the training data
        return quantize_colors(self._cams.render(self.env.data, name), self.color_bits)

    def video_frame(self, size: int = 256) -> np.ndarray:
        """A frame of the third-person camera for an MP4 (rendered on demand)."""
        if self._video is None:
            self._video = Cameras(self.env.model, (VIDEO_CAMERA,), size)
        return self._video.render(self.env.data, VIDEO_CAMERA)

    def close(self) -> None:
        for cams in (self._cams, self._video):
            if cams is not None:
                cams.close()
        self.env.close()


def _widen_reset_space(env, metres: float) -> None:
    """Widen the object/goal reset box by ``metres`` in x and y (z stays: objects rest on
    the table). The box holds xyz triples (object, goal, ...)."""
    from gymnasium.spaces import Box

    space = env._random_reset_space
    low, high = space.low.astype(np.float64).copy(), space.high.astype(np.float64).copy()
    planar = np.arange(low.size) % 3 != 2
    low[planar] -= metres
    high[planar] += metres
    env._random_reset_space = Box(low, high, dtype=np.float64)
