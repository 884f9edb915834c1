"""Runs in the openpi-client venv (tests/openpi_venv.py): drives a policy server with the
real ``openpi_client.websocket_client_policy.WebsocketClientPolicy`` as openpi's LIBERO
example does, and prints one JSON line with what came back.

    python openpi_probe.py HOST PORT STATE_WIDTH STEPS
"""

import json
import sys

import numpy as np
from openpi_client import websocket_client_policy

host, port, width, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
client = websocket_client_policy.WebsocketClientPolicy(host, port)
metadata = client.get_server_metadata()
rng = np.random.default_rng(0)
shapes, finite = [], True
for _ in range(steps):
    element = {
        "observation/image": rng.integers(0, 255, (128, 128, 3), dtype=np.uint8),
        "observation/wrist_image": rng.integers(0, 255, (128, 128, 3), dtype=np.uint8),
        "observation/state": rng.normal(size=width).astype(np.float32),
        "prompt": "reach the goal",
    }
    actions = client.infer(element)["actions"]
    shapes.append(list(np.asarray(actions).shape))
    finite = finite and bool(np.isfinite(actions).all())
print(
    json.dumps({"metadata": metadata, "shapes": shapes, "finite": finite, "numpy": np.__version__})
)
