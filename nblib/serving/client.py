"""``nblib eval --policy ws://HOST:PORT``: a vla-eval model server (``nblib serve``, or any
of vla-eval's own: pi0, OpenVLA, GR00T, ...) as an nblib closed-loop policy.

:class:`RemotePolicy` implements :class:`nblib.eval.policies.Policy` over
``vla_eval.connection.Connection``, vla-eval's own client: HELLO on connect, EPISODE_START
with the task, suite, episode and seed, one OBSERVATION → ACTION exchange per chunk,
EPISODE_END with the outcome. The connection's coroutines run on an event loop in a
background thread (anyio's blocking portal), so the simulator loop stays synchronous.
Every failure names the URL and the episode; a server that cannot be reached after the
bounded retries ends every later episode at once instead of retrying again.
"""

from __future__ import annotations

import numpy as np

from nblib.errors import NblibError, ParameterError
from nblib.serving import require_vla_eval
from nblib.serving.wire import VLA_EVAL_LIBERO_SIZE, actions_from, to_wire


class ServerError(NblibError, RuntimeError):
    """The policy server failed, went away or did not answer in time."""


def foreign_server_frames(sim: str, cameras: tuple[str, ...], wrist: bool) -> dict:
    """The cameras and frame size to render for a server that is not ``nblib serve``:
    LIBERO as vla-eval's LIBERO benchmark renders it (the scene camera, the wrist camera
    when the server asks for it with ``send_wrist_image``, 256²); Meta-World, for which
    vla-eval has no benchmark, ``cameras`` or else nblib's demo cameras at 128²."""
    if sim == "libero":
        chosen = cameras or ("agentview",) + (("robot0_eye_in_hand",) if wrist else ())
        return {"cameras": list(chosen), "image_size": VLA_EVAL_LIBERO_SIZE}
    from nblib.data.metaworld_gen import DEFAULT_CAMERAS

    return {"cameras": list(cameras or DEFAULT_CAMERAS), "image_size": 128}


class RemotePolicy:
    """A policy served at ``url`` (vla-eval protocol). ``cameras``, ``image_size`` and
    ``color_bits`` come from the server's HELLO reply (``observation_params["nblib"]``)
    when it is an ``nblib serve``; other servers get the frames of
    :func:`foreign_server_frames`."""

    def __init__(
        self,
        url: str,
        sim: str = "metaworld",
        action_dim: int | None = None,
        cameras: tuple[str, ...] = (),
        timeout: float = 60.0,
        retries: int = 3,
    ):
        require_vla_eval()
        from anyio.from_thread import start_blocking_portal
        from vla_eval.connection import Connection

        from nblib.eval.sims import action_dim as sim_action_dim

        self.url, self.sim = url, sim
        self.action_dim = action_dim or sim_action_dim(sim)
        self._where = f"policy server {url}"
        self._episode: dict = {}
        self._started = False
        self._dead: str | None = None
        self._closed = False
        self._portal_context = start_blocking_portal()
        self._portal = self._portal_context.__enter__()
        # vla-eval waits backoff_base ** attempt seconds between attempts: 2 s, 4 s
        self._connection = Connection(url, timeout=timeout, max_retries=retries, backoff_base=2.0)
        try:
            self._call(self._connection.connect, what="connecting")
        except BaseException:
            # the portal's event-loop thread would keep the process alive at exit
            self._closed = True
            self._portal_context.__exit__(None, None, None)
            raise
        asked = self._connection.server_info.get("observation_params") or {}
        params = asked.get("nblib")
        if params is None:  # another vla-eval model server: its benchmarks' convention
            params = foreign_server_frames(sim, cameras, bool(asked.get("send_wrist_image")))
        self.cameras = tuple(params.get("cameras", cameras))
        self.image_size = int(params.get("image_size", 128))
        self.color_bits = int(params.get("color_bits", 8))
        served_dim = params.get("action_dim")
        if served_dim is not None and int(served_dim) != self.action_dim:
            self.close()
            raise ParameterError(
                f"{self._where} serves a policy of {served_dim}-D actions; {sim} takes "
                f"{self.action_dim}-D actions"
            )

    def _call(self, function, *args, what: str):
        """``function(*args)`` on the connection's event loop; a :class:`ServerError`
        naming the URL, the episode and ``what`` was being done when it fails."""
        if self._dead:
            raise ServerError(f"{self._where} is unavailable since {self._dead}")
        try:
            return self._portal.call(function, *args)
        except (ConnectionError, OSError, TimeoutError) as exc:
            self._dead = f"{what}{self._episode_text()}: {type(exc).__name__}: {exc}"
            raise ServerError(f"{self._where}: {self._dead}") from exc
        except RuntimeError as exc:  # vla-eval's "Server error: ..." reply, a lost socket
            raise ServerError(f"{self._where}{self._episode_text()}: {exc}") from exc
        except Exception as exc:  # websockets' ConnectionClosed and kin
            self._dead = f"{what}{self._episode_text()}: {type(exc).__name__}: {exc}"
            raise ServerError(f"{self._where}: {self._dead}") from exc

    def _episode_text(self) -> str:
        if not self._episode:
            return ""
        e = self._episode
        return f" (task {e.get('task')!r}, episode {e.get('episode')})"

    def begin_episode(self, task: str, suite: str, episode: int, seed: int) -> None:
        """EPISODE_START for the episode the harness is about to run."""
        self._end_open_episode({})
        self._episode = {"task": task, "suite": suite, "episode": int(episode), "seed": int(seed)}
        self._call(self._connection.start_episode, dict(self._episode), what="starting")
        self._started = True

    def reset(self, task: str) -> None:  # the plain Policy protocol: no episode details
        self.begin_episode(task, "", -1, -1)

    def end_episode(self, result: dict) -> None:
        """EPISODE_END with the episode's outcome (``success``, ``steps``)."""
        self._end_open_episode(result)

    def _end_open_episode(self, result: dict) -> None:
        if self._started and not self._dead:
            self._started = False
            self._call(self._connection.end_episode, dict(result), what="ending")

    def act(self, observation: dict, instruction: str) -> np.ndarray:
        payload = self._call(
            self._connection.act, to_wire(observation, instruction, self.sim), what="acting"
        )
        try:
            return actions_from(payload, self.action_dim, f"{self._where}{self._episode_text()}")
        except ParameterError as exc:
            raise ServerError(str(exc)) from exc

    def close(self) -> None:
        """End the open episode, close the socket and the event loop thread."""
        if self._closed:
            return
        self._closed = True
        try:
            # no EPISODE_END over a lost connection: vla-eval would reconnect to send it
            if not self._dead and self._connection.is_connected:
                self._end_open_episode({})
            self._portal.call(self._connection.close)
        except Exception:  # closing a connection that already failed: nothing to keep
            pass
        finally:
            self._portal_context.__exit__(None, None, None)

    def __del__(self):  # a worker process exits without calling close(): no network here
        if not getattr(self, "_closed", True):
            self._closed = True
            try:
                self._portal_context.__exit__(None, None, None)
            except Exception:
                pass
