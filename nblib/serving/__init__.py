"""Policies over the network, both ways, through AllenAI's vla-evaluation-harness protocol
(the ``vla-eval`` package's own websocket classes; nblib does not re-implement its wire
format).

- :mod:`nblib.serving.wire`: nblib's closed-loop observations in vla-eval's convention
  (``images``, ``task_description``, ``state``, ``sim_state``) and back.
- :mod:`nblib.serving.server`: ``nblib serve POLICY``, any policy spec as a vla-eval model
  server (a ``vla_eval.model_servers.predict.PredictModelServer``).
- :mod:`nblib.serving.client`: ``nblib eval --policy ws://HOST:PORT``, any vla-eval model
  server as an nblib closed-loop policy (through ``vla_eval.connection.Connection``).

The ``serve`` extra installs ``vla-eval`` (``pip install -e '.[serve]'``; ``make test``
installs it).
"""

from __future__ import annotations

from nblib.errors import ParameterError

#: Policy specs that name a policy served elsewhere: a vla-eval model server (ws://) or
#: an openpi policy server (openpi://).
REMOTE_SCHEMES = ("ws://", "wss://", "openpi://")


def is_remote(spec: object) -> bool:
    """Whether ``spec`` names a served policy (``ws://HOST:PORT``, ``openpi://HOST:PORT``)
    rather than a local one."""
    return isinstance(spec, str) and spec.startswith(REMOTE_SCHEMES)


def check_url(spec: str) -> tuple[str, int]:
    """``(host, port)`` of a ``ws://HOST:PORT`` policy spec; a ParameterError otherwise."""
    from urllib.parse import urlsplit

    parts = urlsplit(spec)
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None or parts.path not in ("", "/"):
        raise ParameterError(
            f"policy={spec!r}: a policy server is named ws://HOST:PORT or openpi://HOST:PORT "
            "(e.g. ws://127.0.0.1:8000, the address `nblib serve` prints)"
        )
    return parts.hostname, port


def require_vla_eval():
    """The ``vla_eval`` module, or a ParameterError saying how to install it."""
    try:
        import vla_eval
    except ImportError as exc:
        raise ParameterError(
            "policy servers need the vla-eval package (AllenAI's vla-evaluation-harness "
            "protocol): pip install -e '.[serve]' (or pip install vla-eval==0.8.0)"
        ) from exc
    return vla_eval
