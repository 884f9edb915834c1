"""The policy interface of closed-loop evaluation, and the policies that implement it.

A policy is anything with ``act(observation, instruction) -> actions`` where
``observation`` is a dict (``state``: the simulator's full state vector; ``eef_pos``,
``gripper_opening``; ``images``: camera name → (H, W, 3) uint8 for the cameras in the
policy's ``cameras``) and ``actions`` is an (n, action_dim) chunk in the simulator's action
range; the harness executes the first ``replan`` actions and asks again. ``reset(task)`` is
called before each episode. A user's own model plugs in by implementing these two methods
(:class:`Policy` is the protocol) and naming the cameras it needs. A policy with
``depth = True`` also gets ``depth``, ``intrinsics`` and ``extrinsics`` per camera
(Meta-World), for geometry tokens.

Implementations: :class:`ExpertPolicy` (Meta-World's scripted expert, which must succeed
through the harness: the proof that its success signal is right), :class:`RandomPolicy`,
:class:`ZeroPolicy` and :class:`VLAClosedLoop` (an nblib VLA policy, e.g. one saved by
notebook 01).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from nblib.errors import DataError, ParameterError

BUILTIN = ("expert", "random", "zero")


@runtime_checkable
class Policy(Protocol):
    cameras: tuple[str, ...]  # cameras whose frames the policy reads (() for none)

    def reset(self, task: str) -> None: ...

    def act(self, observation: dict, instruction: str) -> np.ndarray: ...


class ExpertPolicy:
    """Meta-World's scripted expert: reads the full state, ignores images and language."""

    cameras: tuple[str, ...] = ()

    def __init__(self):
        self._experts: dict[str, object] = {}
        self._current = None

    def reset(self, task: str) -> None:
        from nblib.data.metaworld_gen import expert_policy

        if task not in self._experts:
            self._experts[task] = expert_policy(task)
        self._current = self._experts[task]

    def act(self, observation: dict, instruction: str) -> np.ndarray:
        with warnings.catch_warnings():
            # Meta-World's experts warn that their gains exceed [-1, 1]; the env clips.
            warnings.filterwarnings("ignore", message=r"Constant\(s\) may be too high")
            action = self._current.get_action(observation["state"])
        return np.clip(np.asarray(action, dtype=np.float32), -1.0, 1.0)[None]


class RandomPolicy:
    """Uniform actions in [-1, 1]: a policy that must fail (the harness's negative control)."""

    cameras: tuple[str, ...] = ()

    def __init__(self, action_dim: int = 4, seed: int = 0):
        self.action_dim = action_dim
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def reset(self, task: str) -> None:
        pass

    def act(self, observation: dict, instruction: str) -> np.ndarray:
        return self._rng.uniform(-1, 1, size=(1, self.action_dim)).astype(np.float32)


class ZeroPolicy:
    """No motion at all."""

    cameras: tuple[str, ...] = ()

    def __init__(self, action_dim: int = 4):
        self.action_dim = action_dim

    def reset(self, task: str) -> None:
        pass

    def act(self, observation: dict, instruction: str) -> np.ndarray:
        return np.zeros((1, self.action_dim), dtype=np.float32)


class VLAClosedLoop:
    """An nblib VLA policy on its backbone, in the loop: frames of its cameras (rendered at
    its training size and colour depth), proprio (``eef_pos`` + ``gripper_opening``,
    normalised with its training statistics) and the instruction in; a denormalised
    action chunk out. Flow heads sample with a seed per call (``seed`` + call number since
    the episode began), so an episode is reproducible."""

    def __init__(
        self,
        model,
        backbone,
        stats,
        cameras: tuple[str, ...],
        image_size: int,
        color_bits: int = 8,
        seed: int = 0,
    ):
        self.model, self.backbone, self.stats = model, backbone, stats
        self.cameras = tuple(cameras)
        self.image_size, self.color_bits = int(image_size), int(color_bits)
        self.seed = seed
        self._calls = 0
        # a geometry compressor reads point-map tokens made from the cameras' depth
        self.depth = getattr(model.policy.config, "geometry", "none") != "none"

    @property
    def action_dim(self) -> int:
        return int(self.model.policy.config.action_dim)

    @classmethod
    def from_saved(cls, path: str | Path, device: str = "cpu", seed: int = 0) -> VLAClosedLoop:
        """A policy saved by notebook 01 (its run folder, its ``policy/`` folder or the
        ``policy.pt``)."""
        from nblib.models.vla import load_policy

        saved = load_policy(path, device=device)
        rendering = _rendering(saved.meta, Path(path))
        return cls(
            saved.model,
            saved.backbone,
            saved.stats,
            tuple(rendering["cameras"]),
            rendering["size"],
            rendering.get("color_bits", 8),
            seed,
        )

    def reset(self, task: str) -> None:
        self._calls = 0

    def act(self, observation: dict, instruction: str) -> np.ndarray:
        import torch

        from nblib.cache import encode_batch

        images = [[observation["images"][c] for c in self.cameras]]
        proprio = np.concatenate([observation["eef_pos"], observation["gripper_opening"]])
        # the same normalisation as the training samples (ChunkDataset, mean_std)
        proprio = self.stats.proprio.normalize(proprio, "mean_std")
        device = next(self.model.policy.parameters()).device
        with torch.no_grad():
            feats = encode_batch(self.backbone, images, [instruction], output=self.model.output)
            feats = {k: v.to(device) for k, v in feats.items()}
            feats["vlm"] = feats["vlm"].float()
            feats["proprio"] = torch.as_tensor(proprio[None], dtype=torch.float32, device=device)
            if self.depth:
                from nblib.data.geometry import frame_tokens

                geom = frame_tokens(
                    observation["depth"],
                    observation["intrinsics"],
                    observation["extrinsics"],
                    self.cameras,
                )
                feats["geom"] = torch.as_tensor(geom[None], device=device)
            generator = torch.Generator(device=device).manual_seed(self.seed + self._calls)
            chunk = self.model.policy.predict(feats, generator=generator).cpu().numpy()[0]
        self._calls += 1
        actions = self.stats.actions.unnormalize(chunk, "mean_std")
        return np.clip(actions, -1.0, 1.0)


def _rendering(meta: dict, path: Path) -> dict:
    """How the policy's training frames were rendered (cameras, size, colour bits): what
    its saved metadata records, else its manifest's generator settings."""
    from nblib.data.manifest import load_manifest

    if meta.get("cameras") and meta.get("image_size"):
        return {
            "cameras": meta["cameras"],
            "size": meta["image_size"],
            "color_bits": meta.get("color_bits", 8),
        }
    generator = load_manifest(meta["manifest"]).generator if meta.get("manifest") else None
    if not generator:
        raise DataError(
            f"{path}: the saved policy records neither its cameras nor a generated manifest; "
            "closed-loop evaluation needs to render what it was trained on"
        )
    return generator


def check_policy(spec: str, sim: str) -> None:
    """A :class:`ParameterError` when ``spec`` can name no policy for simulator ``sim``:
    neither built in, nor a plug-in spec whose factory loads, nor an existing path; or the
    scripted expert outside Meta-World. Nothing is built, so a run checks it before it
    creates its output file."""
    from nblib.plugins.spec import is_policy_spec, load_factory
    from nblib.serving import check_url, is_remote

    if sim == "libero" and spec == "expert":
        raise ParameterError(
            "policy='expert': LIBERO has no scripted expert (Meta-World has); use random, "
            "zero, a saved policy or your own object"
        )
    if spec in BUILTIN or Path(spec).expanduser().exists():
        return
    if is_remote(spec):
        check_url(spec)
        return
    if is_policy_spec(spec):
        load_factory(spec)  # a missing file, module or factory fails now
        return
    raise ParameterError(
        f"policy={spec!r} is neither one of {list(BUILTIN)}, nor an existing path (a "
        "notebook-01 run folder, its policy/ folder or a policy.pt), nor a plug-in spec "
        "(path/to/file.py:factory, package.module:factory or an installed entry point), "
        "nor a policy server (ws://HOST:PORT)"
    )


def make_policy(
    spec: str,
    action_dim: int = 4,
    seed: int = 0,
    device: str = "cpu",
    policy_kwargs: dict | None = None,
    manifest: str = "metaworld_default",
):
    """``expert``, ``random``, ``zero``, a run folder of notebook 01 (nblib's VLA or a
    plug-in it trained), or a plug-in spec built with ``policy_kwargs`` and told about the
    data of ``manifest`` (:class:`nblib.eval.plugin_policy.PluginClosedLoop`)."""
    from nblib.eval.plugin_policy import PluginClosedLoop
    from nblib.plugins.runtime import plugin_file
    from nblib.plugins.spec import is_policy_spec

    if spec == "expert":
        return ExpertPolicy()
    if spec == "random":
        return RandomPolicy(action_dim=action_dim, seed=seed)
    if spec == "zero":
        return ZeroPolicy(action_dim=action_dim)
    check_policy(spec, "metaworld")
    if plugin_file(spec) is not None:
        return PluginClosedLoop.from_saved(spec, device=device, seed=seed)
    if not Path(spec).expanduser().exists() and is_policy_spec(spec):
        return PluginClosedLoop.from_spec(spec, policy_kwargs or {}, manifest, device, seed)
    return VLAClosedLoop.from_saved(spec, device=device, seed=seed)


def local_policy(spec: str, sim: str, seed=0, device="cpu", policy_kwargs=None, manifest=None):
    """The policy ``spec`` names, built in this process for simulator ``sim`` (checked:
    the name, then its action width against the simulator's)."""
    from nblib.eval.sims import action_dim, check_action_dim

    check_policy(spec, sim)
    policy = make_policy(
        spec,
        action_dim=action_dim(sim),
        seed=seed,
        device=device,
        policy_kwargs=policy_kwargs or {},
        manifest=manifest or "metaworld_default",
    )
    check_action_dim(policy, sim)
    return policy
