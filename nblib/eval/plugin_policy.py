"""A plug-in policy (:mod:`nblib.plugins`) in the closed loop.

The harness's observation becomes the contract's batch of one: the cameras the policy was
given in its info (rendered at its frame size and colour depth), the state in the dataset's
units, the instruction actually given as ``task``. ``reset()`` is called before each
episode; ``predict_action_chunk`` answers a chunk of which the harness executes
``--replan`` actions.

The state: the embedded Meta-World demos record the end-effector position and the gripper
opening (4 values), LIBERO's demos its 8-D proprio vector (the simulator's ``state``); the
policy gets whichever of the two has its ``state_dim``, or an error naming both widths.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from nblib.errors import ParameterError
from nblib.plugins.contract import PolicyInfo, check_chunk, make_batch
from nblib.plugins.runtime import PluginSource, load_plugin, model_device


def dataset_state(observation: dict, state_dim: int, where: str) -> np.ndarray:
    """The observation's state as the dataset recorded it (see the module's docstring)."""
    arm = np.concatenate([observation["eef_pos"], observation["gripper_opening"]])
    full = np.asarray(observation["state"])
    for candidate in (arm, full):
        if candidate.shape == (state_dim,):
            return candidate.astype(np.float32)
    raise ParameterError(
        f"{where}: the policy reads a {state_dim}-D state; the simulator gives the end "
        f"effector and gripper ({arm.size} values) or its state vector ({full.size} values)"
    )


class PluginClosedLoop:
    """A plug-in in the harness (:class:`nblib.eval.policies.Policy`). A sampling policy
    gets the torch seed ``seed`` + call number since the episode began: reproducible."""

    depth = False  # geometry tokens are nblib's own VLA's business

    def __init__(self, model: torch.nn.Module, info: PolicyInfo, spec: str, color_bits=8, seed=0):
        self.model, self.info, self.spec = model.eval(), info, spec
        self.cameras = tuple(info.cameras)
        self.image_size = int(info.image_size[0])
        self.color_bits, self.seed = int(color_bits), int(seed)
        self.action_dim = int(info.action_dim)
        self._calls = 0

    @classmethod
    def from_saved(cls, path: str | Path, device: str = "cpu", seed: int = 0) -> PluginClosedLoop:
        """A plug-in trained by notebook 01 (its run folder, ``policy/`` or ``plugin.json``)."""
        saved = load_plugin(path, device=device)
        bits = saved.meta.get("color_bits", 8)
        return cls(saved.model, saved.source.info, saved.source.spec, bits, seed)

    @classmethod
    def from_spec(
        cls, spec: str, kwargs: dict, manifest: str, device: str = "cpu", seed: int = 0
    ) -> PluginClosedLoop:
        """A plug-in as its factory builds it (e.g. loading its own trained weights), told
        about the data of ``manifest`` (a manifest, or a data file or folder): cameras,
        frame size, widths, statistics."""
        from nblib.data.manifest import open_data
        from nblib.plugins.contract import policy_info
        from nblib.studies.setup import HORIZON

        store, described = open_data(manifest)
        frame = store.frames(store.demos[0], store.cameras[0], 0, 1)[0]
        info = policy_info(store, HORIZON, store.norm_stats(), frame.shape[:2])
        source = PluginSource.create(spec, kwargs, info)
        model = source.new_model(seed).to(device)
        # a plain data file, not a generated manifest: 8-bit frames
        generator = (described.generator if described is not None else None) or {}
        return cls(model, info, source.spec, generator.get("color_bits", 8), seed)

    def reset(self, task: str) -> None:
        self._calls = 0
        reset = getattr(self.model, "reset", None)
        if callable(reset):
            reset()

    @torch.no_grad()
    def act(self, observation: dict, instruction: str) -> np.ndarray:
        where = f"policy {self.spec!r}"
        state = dataset_state(observation, self.info.state_dim, where)
        batch = make_batch(
            [[observation["images"][c] for c in self.cameras]],
            self.cameras,
            state[None],
            [instruction],
            device=model_device(self.model),
        )
        torch.manual_seed(self.seed + self._calls)
        self._calls += 1
        chunk = check_chunk(self.model.predict_action_chunk(batch), 1, self.info, self.spec)
        return np.clip(chunk[0].cpu().numpy(), -1.0, 1.0)
