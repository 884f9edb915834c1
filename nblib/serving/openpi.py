"""openpi's policy-server protocol, both ways: ``nblib serve POLICY --protocol openpi`` and
``nblib eval --policy openpi://HOST:PORT``.

openpi (Physical Intelligence's pi0 / pi0.5) serves a policy over a plain websocket: on
connect the server sends its metadata; then each client message is one observation and
each reply one action dict (``{"actions": (chunk, action_dim), ...}``), both msgpack with
NumPy arrays as maps ``{"__ndarray__": True, "data": bytes, "dtype": str, "shape": list}``
(``openpi_client.msgpack_numpy``); a server-side failure arrives as a text frame holding
the traceback. The openpi server is not on PyPI and its client pins numpy < 2, so this
module speaks the format itself; tests prove it against the real ``openpi-client`` package
in a venv of its own.

Observations use openpi's LIBERO example keys: ``observation/image`` (the scene camera),
``observation/wrist_image`` (the wrist camera), ``observation/state`` (the dataset's proprio
vector) and ``prompt`` (the instruction given). The protocol has no episode messages; nblib's
client adds ``nblib/episode`` (task, suite, episode, seed) to an episode's first
observation, which ``nblib serve`` uses to reset its policy (other servers ignore the key).
"""

from __future__ import annotations

import copy
import logging

import numpy as np

from nblib.errors import ParameterError
from nblib.serving import require_vla_eval
from nblib.serving.client import ServerError
from nblib.serving.wire import (
    LIBERO_WIRE_NAMES,
    VLA_EVAL_LIBERO_SIZE,
    actions_from,
    from_wire,
    images_to_wire,
    resize_frame,
    served_image_size,
)

log = logging.getLogger(__name__)

IMAGE, WRIST, STATE, PROMPT, EPISODE = (
    "observation/image",
    "observation/wrist_image",
    "observation/state",
    "prompt",
    "nblib/episode",
)


def _encode(obj):
    """msgpack ``default`` hook: NumPy arrays and scalars in openpi's map form."""
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind in "VOc":
            raise TypeError(f"openpi's format carries no {obj.dtype} arrays")
        return {
            b"__ndarray__": True,
            b"data": np.ascontiguousarray(obj).tobytes(),
            b"dtype": obj.dtype.str,
            b"shape": list(obj.shape),
        }
    if isinstance(obj, np.generic):
        return {b"__npgeneric__": True, b"data": obj.item(), b"dtype": obj.dtype.str}
    raise TypeError(f"cannot send {type(obj).__name__} in openpi's format")


def _decode(obj: dict):
    if b"__ndarray__" in obj:
        return np.frombuffer(obj[b"data"], dtype=np.dtype(obj[b"dtype"])).reshape(obj[b"shape"])
    if b"__npgeneric__" in obj:
        return np.dtype(obj[b"dtype"]).type(obj[b"data"])
    return obj


def pack(obj) -> bytes:
    import msgpack  # installed with the serve extra (vla-eval's dependency)

    return msgpack.packb(obj, default=_encode, use_bin_type=True)


def unpack(data: bytes):
    import msgpack

    return msgpack.unpackb(data, object_hook=_decode, raw=False)


#: openpi's LIBERO example sends both cameras resized to this size (its client's
#: ``image_tools.resize_with_pad``).
OPENPI_LIBERO_SIZE = 224


def to_openpi(
    observation: dict,
    instruction: str,
    sim: str,
    cameras: tuple[str, ...],
    size: int | None = None,
) -> dict:
    """An nblib observation in openpi's LIBERO-example keys: LIBERO's scene and wrist
    cameras by name, in the wire convention (:mod:`nblib.serving.wire`); Meta-World's
    ``cameras`` in order (first the scene, second the wrist). Frames resized to ``size``."""
    if sim == "metaworld":
        state = np.concatenate([observation["eef_pos"], observation["gripper_opening"]])
    else:
        state = observation["state"]
    out = {STATE: np.asarray(state, dtype=np.float32), PROMPT: str(instruction)}
    images = images_to_wire(observation.get("images", {}), sim)
    names = ("agentview", "wrist") if sim == "libero" else cameras
    for key, name in zip((IMAGE, WRIST), names, strict=False):
        if name in images:
            out[key] = resize_frame(images[name], size)
    if "state" in observation and sim == "metaworld":
        out["nblib/sim_state"] = np.asarray(observation["state"], dtype=np.float64)
    return out


def from_openpi(
    obs: dict, cameras: tuple[str, ...], sim: str, image_size: int | None = None
) -> tuple[dict, str]:
    """openpi keys back to nblib's observation of simulator ``sim`` (through the wire
    convention's checks), frames resized to ``image_size``."""
    if not isinstance(obs, dict) or STATE not in obs:
        keys = sorted(obs) if isinstance(obs, dict) else type(obs).__name__
        raise ParameterError(f"an openpi observation needs {STATE!r}; got {keys}")
    names = ("agentview", "wrist") if sim == "libero" else cameras
    images = {c: obs[k] for k, c in zip((IMAGE, WRIST), names, strict=False) if k in obs}
    if sim == "libero":  # openpi's LIBERO client sends both: keep the ones the policy reads
        read = {LIBERO_WIRE_NAMES[c] for c in cameras}
        images = {name: image for name, image in images.items() if name in read}
    wire = {"images": images, "state": obs[STATE], "task_description": obs.get(PROMPT, "")}
    if "nblib/sim_state" in obs:
        wire["sim_state"] = obs["nblib/sim_state"]
    return from_wire(wire, "openpi observation", sim, image_size)


class OpenpiPolicy:
    """A policy served with openpi's protocol at ``openpi://HOST:PORT``, as an nblib
    closed-loop policy. The cameras and frame size come from the server's metadata when
    it is an ``nblib serve``; another server of a LIBERO policy gets what openpi's LIBERO
    example sends (both cameras at 224²)."""

    def __init__(self, url: str, sim: str = "metaworld", timeout: float = 60.0, retries: int = 3):
        import time

        require_vla_eval()  # websockets and msgpack come with the serve extra
        from websockets.sync.client import connect

        from nblib.eval.sims import action_dim
        from nblib.serving import check_url

        host, port = check_url(url.replace("openpi://", "ws://", 1))
        self.url, self.sim, self.timeout = url, sim, timeout
        self.action_dim = action_dim(sim)
        self._episode: dict | None = None
        for attempt in range(1, retries + 1):  # bounded: 2 s, 4 s between attempts
            try:
                self._socket = connect(
                    f"ws://{host}:{port}", compression=None, max_size=None, open_timeout=timeout
                )
                break
            except (OSError, TimeoutError) as exc:
                if attempt == retries:
                    raise ServerError(
                        f"policy server {url}: unreachable after {retries} attempts: {exc}"
                    ) from exc
                time.sleep(2.0**attempt)
        metadata = self._receive("connecting")
        self.metadata = metadata if isinstance(metadata, dict) else {}
        self.wire_size = None  # the size frames are resized to before they are sent
        if self.metadata.get("server") == "nblib":
            self.cameras = tuple(self.metadata.get("cameras", ()))
            self.image_size = int(self.metadata.get("image_size", 128))
        elif sim == "libero":  # as openpi's LIBERO example: both cameras, 256² → 224²
            self.cameras = ("agentview", "robot0_eye_in_hand")
            self.image_size, self.wire_size = VLA_EVAL_LIBERO_SIZE, OPENPI_LIBERO_SIZE
        else:  # openpi has no Meta-World example: nblib's demo cameras
            from nblib.data.metaworld_gen import DEFAULT_CAMERAS

            self.cameras, self.image_size = tuple(DEFAULT_CAMERAS), 128
        self.color_bits = int(self.metadata.get("color_bits", 8))

    def _receive(self, what: str):
        try:
            reply = self._socket.recv(timeout=self.timeout)
        except Exception as exc:  # a timeout, a closed socket
            raise ServerError(
                f"policy server {self.url}{self._where()}: {what}: {type(exc).__name__}: {exc}"
            ) from exc
        if isinstance(reply, str):  # openpi sends a server-side traceback as text
            raise ServerError(
                f"policy server {self.url}{self._where()}: server error: {reply.strip()[-500:]}"
            )
        return unpack(reply)

    def _where(self) -> str:
        e = self._episode
        return f" (task {e['task']!r}, episode {e['episode']})" if e else ""

    def begin_episode(self, task: str, suite: str, episode: int, seed: int) -> None:
        self._episode = {"task": task, "suite": suite, "episode": int(episode), "seed": int(seed)}
        self._first = True

    def reset(self, task: str) -> None:
        self.begin_episode(task, "", -1, -1)

    def act(self, observation: dict, instruction: str) -> np.ndarray:
        message = to_openpi(observation, instruction, self.sim, self.cameras, self.wire_size)
        if getattr(self, "_first", False) and self._episode:
            message[EPISODE] = dict(self._episode)
            self._first = False
        try:
            self._socket.send(pack(message))
        except Exception as exc:
            raise ServerError(f"policy server {self.url}{self._where()}: sending: {exc}") from exc
        reply = self._receive("acting")
        try:
            return actions_from(reply, self.action_dim, f"policy server {self.url}{self._where()}")
        except ParameterError as exc:
            raise ServerError(str(exc)) from exc

    def close(self) -> None:
        try:
            self._socket.close()
        except Exception:
            pass


def serve_openpi(policy, config, ready=None) -> None:
    """Serve ``policy`` with openpi's protocol on ``config.host:config.port`` until
    interrupted; each connection gets its own shallow copy of the policy."""
    import asyncio
    import traceback

    require_vla_eval()
    from websockets.asyncio.server import serve

    metadata = {
        "cameras": list(getattr(policy, "cameras", ())),
        "image_size": int(getattr(policy, "image_size", 128) or 128),
        "color_bits": int(getattr(policy, "color_bits", 8)),
        "policy": config.policy,
        "server": "nblib",
    }
    cameras = tuple(metadata["cameras"])
    image_size = served_image_size(policy)
    lock = asyncio.Lock()  # one inference at a time, as on a GPU

    async def handler(socket) -> None:
        own = copy.copy(policy)
        await socket.send(pack(metadata))
        async for message in socket:
            try:
                obs = unpack(message)
                episode = obs.get(EPISODE) if isinstance(obs, dict) else None
                if episode:
                    own.reset(str(episode.get("task", "")))
                observation, instruction = from_openpi(obs, cameras, config.sim, image_size)
                async with lock:
                    actions = await asyncio.to_thread(own.act, observation, instruction)
                actions = np.asarray(actions, dtype=np.float32)
                if not np.isfinite(actions).all():
                    raise ParameterError(f"policy {config.policy!r} predicted NaN/Inf actions")
                await socket.send(
                    pack({"actions": actions if actions.ndim == 2 else actions[None]})
                )
            except Exception:  # openpi's convention: the traceback as text, then close
                await socket.send(traceback.format_exc())
                await socket.close()
                return

    async def main() -> None:
        async with serve(
            handler, config.host, config.port, compression=None, max_size=None
        ) as server:
            port = server.sockets[0].getsockname()[1] if server.sockets else config.port
            if ready is not None:
                ready(f"openpi://{config.host}:{port}")
            await server.serve_forever()

    asyncio.run(main())
