"""``nblib serve POLICY``: any nblib policy spec (``expert``, a notebook-01 run folder, a
plug-in) as a vla-eval model server, so that simulators elsewhere (``nblib eval --policy
ws://...``, vla-eval's own benchmark clients) evaluate it over a websocket.

The server is a ``vla_eval.model_servers.predict.PredictModelServer``: vla-eval's framework
owns the socket, the message format, sessions and (with ``chunk_size``) the chunk buffer;
this module only turns an observation into nblib's form and asks the policy. With
``chunk_size`` None the whole predicted chunk goes back and the client executes ``--replan``
actions of it (nblib's own clients); vla-eval's benchmark clients take one action per
observation, so serve them with ``chunk_size`` K: the server then answers K observations
from each chunk it predicts.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field

import numpy as np

from nblib.errors import ParameterError, is_int, require
from nblib.serving import require_vla_eval
from nblib.serving.wire import from_wire, served_image_size, wants_wrist

log = logging.getLogger(__name__)

PROTOCOLS = ("vla-eval", "openpi")


@dataclass
class ServeConfig:
    policy: str  # expert, random, zero, a notebook-01 run folder, or a plug-in spec
    protocol: str = "vla-eval"  # vla-eval (AllenAI's vla-evaluation-harness) or openpi
    sim: str = "metaworld"  # the simulator whose actions the policy predicts
    host: str = "127.0.0.1"  # 0.0.0.0 to accept connections from other machines
    port: int = 8000  # 0: any free port (printed)
    chunk_size: int | None = (
        None  # actions answered from each predicted chunk (None: the whole chunk)
    )
    seed: int = 0  # random policy and flow sampling
    device: str = "cpu"  # where the policy runs (cuda on a GPU node)
    policy_kwargs: dict = field(default_factory=dict)  # your policy's factory's keyword arguments
    manifest: str | None = None  # your policy's data (cameras, state, statistics)

    def __post_init__(self):
        from nblib.eval.rollout import SIMULATORS

        own = "ServeConfig"
        require(
            isinstance(self.policy, str) and self.policy,
            own,
            "policy",
            self.policy,
            "a policy spec",
        )
        require(self.sim in SIMULATORS, own, "sim", self.sim, f"one of {list(SIMULATORS)}")
        ok = self.protocol in PROTOCOLS
        require(ok, own, "protocol", self.protocol, f"one of {list(PROTOCOLS)}")
        require(
            isinstance(self.host, str) and self.host,
            own,
            "host",
            self.host,
            "a host name or address",
        )
        ok = is_int(self.port) and 0 <= self.port <= 65535
        require(ok, own, "port", self.port, "an int in 0..65535 (0: any free port)")
        cs = self.chunk_size
        require(
            cs is None or (is_int(cs) and cs >= 1), own, "chunk_size", cs, "None or an int >= 1"
        )
        require(is_int(self.seed), own, "seed", self.seed, "an int")
        pk = self.policy_kwargs
        require(isinstance(pk, dict), own, "policy_kwargs", pk, "a mapping such as {width: 64}")


def served_policy(config: ServeConfig):
    """The nblib policy ``config`` names, checked for what a served policy can do."""
    from nblib.eval.policies import local_policy
    from nblib.serving import is_remote

    if is_remote(config.policy):
        raise ParameterError(
            f"policy={config.policy!r} is served already; nblib serve serves a local policy "
            "(expert, random, zero, a run folder or a plug-in)"
        )
    policy = local_policy(
        config.policy, config.sim, config.seed, config.device, config.policy_kwargs, config.manifest
    )
    if getattr(policy, "depth", False):
        raise ParameterError(
            f"policy={config.policy!r} reads depth-based geometry tokens, which the vla-eval "
            "observation does not carry; evaluate it in-process (nblib eval --policy PATH)"
        )
    return policy


def model_server(config: ServeConfig, policy=None):
    """The vla-eval model server (not yet listening) that answers with ``config.policy``
    (or the already built ``policy``)."""
    require_vla_eval()
    from vla_eval.model_servers.predict import PredictModelServer

    from nblib.eval.sims import action_dim as sim_action_dim

    policy = served_policy(config) if policy is None else policy
    action_dim = sim_action_dim(config.sim)
    image_size = served_image_size(policy)

    class NblibPolicyServer(PredictModelServer):
        """One nblib policy behind vla-eval's model-server protocol. Each session (one
        simulator's connection) gets its own shallow copy of the policy: the weights are
        shared, the per-episode state (the task's expert, a sampling generator) is not, so
        simulators evaluating different tasks at once do not steer each other's episodes.
        vla-eval runs one ``predict`` at a time; each episode starts with ``reset``."""

        sessions: dict = {}

        def _policy(self, ctx):
            if ctx.session_id not in self.sessions:
                self.sessions[ctx.session_id] = copy.copy(policy)
            return self.sessions[ctx.session_id]

        def get_observation_params(self) -> dict:
            # Sent in the HELLO reply. vla-eval's orchestrator passes these keys to its
            # benchmark's constructor: its LIBERO benchmark then sends the proprio state
            # (and the wrist camera for a two-camera policy). nblib's client reads what to
            # render from "nblib" (vla-eval logs one warning that it cannot forward it).
            cameras = list(getattr(policy, "cameras", ()))
            return {
                "send_state": True,
                "send_wrist_image": wants_wrist(cameras, config.sim),
                "nblib": {
                    "cameras": cameras,
                    "image_size": int(getattr(policy, "image_size", 128) or 128),
                    "color_bits": int(getattr(policy, "color_bits", 8)),
                    "action_dim": action_dim,
                    "policy": config.policy,
                },
            }

        async def on_episode_start(self, start: dict, ctx) -> None:
            task = start.get("task")
            if isinstance(task, dict):  # vla-eval's benchmark clients send a task dict
                task = task.get("name") or task.get("env_name") or ""
            self._policy(ctx).reset(str(task or ""))
            log.info("episode start: %s", {k: start.get(k) for k in ("task", "suite", "episode")})
            await super().on_episode_start(start, ctx)

        def predict(self, obs: dict, ctx) -> dict:
            observation, instruction = from_wire(
                obs, f"observation {ctx.step}", config.sim, image_size
            )
            acting = self._policy(ctx)
            actions = np.asarray(acting.act(observation, instruction), dtype=np.float32)
            if not np.isfinite(actions).all():
                # vla-eval sends the error to the client, which names the episode
                raise ParameterError(f"policy {config.policy!r} predicted NaN/Inf actions")
            return {"actions": actions if actions.ndim == 2 else actions[None]}

    return NblibPolicyServer(chunk_size=config.chunk_size)


def serve(config: ServeConfig, ready=None) -> None:
    """Serve ``config.policy`` in ``config.protocol`` until interrupted. ``ready(url)`` is
    called once the socket listens (the CLI prints the URL; with port 0 it holds the port
    chosen)."""
    if config.protocol == "openpi":
        from nblib.serving.openpi import serve_openpi

        policy = served_policy(config)
        try:
            serve_openpi(policy, config, ready)
        except OSError as exc:
            raise ParameterError(
                f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}"
            ) from exc
        return
    import anyio
    from vla_eval.model_servers.serve import serve_async

    server = model_server(config)

    async def main() -> None:
        async with anyio.create_task_group() as group:
            port = await group.start(serve_async, server, config.host, config.port)
            if ready is not None:
                ready(f"ws://{config.host}:{port}")

    try:
        anyio.run(main)
    except OSError as exc:  # the port is taken, the host is not this machine's
        raise ParameterError(
            f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}"
        ) from exc
