"""openpi's protocol both ways (nblib.serving.openpi): `nblib serve --protocol openpi`
driven by the real openpi-client package (a venv of its own: it pins numpy < 2) and by
`nblib eval --policy openpi://`, which must give the in-process episodes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from openpi_venv import run_probe
from test_serving import NBLIB, Server

from nblib.eval.rollout import EvalConfig, evaluate
from nblib.serving.openpi import pack, unpack

REPO = Path(__file__).resolve().parents[1]
CONV_MLP = str(REPO / "examples" / "policies" / "conv_mlp.py") + ":make_policy"
KEYS = ["task", "episode", "success", "steps", "seed"]


def test_openpi_codec_round_trips_arrays_and_scalars() -> None:
    message = {
        "observation/image": np.arange(12, dtype=np.uint8).reshape(2, 2, 3),
        "observation/state": np.array([0.5, -1.0], dtype=np.float32),
        "nested": {"x": np.float64(2.5), "ids": np.array([[1, 2]], dtype=np.int64)},
        "prompt": "push",
    }
    back = unpack(pack(message))
    np.testing.assert_array_equal(back["observation/image"], message["observation/image"])
    assert back["observation/state"].dtype == np.float32
    assert back["nested"]["x"] == 2.5 and back["nested"]["ids"].shape == (1, 2)
    assert back["prompt"] == "push"
    with pytest.raises(TypeError, match="no object arrays|no O"):
        pack({"bad": np.array([object()])})


def test_real_openpi_client_drives_nblib_serve() -> None:
    # a plug-in written outside nblib, reading both cameras: images cross the wire
    with Server(*NBLIB, "serve", CONV_MLP, "--protocol", "openpi", "--port", "{port}") as server:
        report = run_probe("127.0.0.1", server.port, 4, 3)
    assert report["numpy"].startswith("1.")  # really openpi-client's own venv
    assert report["metadata"]["cameras"] == ["corner", "behindGripper"]
    assert report["metadata"]["server"] == "nblib"
    assert len(report["shapes"]) == 3 and report["finite"]
    assert all(len(s) == 2 and s[1] == 4 and s[0] >= 1 for s in report["shapes"])


def test_openpi_client_gives_the_in_process_episodes(tmp_path: Path) -> None:
    local = evaluate(EvalConfig(tasks=["reach", "push"], episodes=2), tmp_path / "l.csv")
    with Server(*NBLIB, "serve", "expert", "--protocol", "openpi", "--port", "{port}") as srv:
        url = f"openpi://127.0.0.1:{srv.port}"
        remote = evaluate(
            EvalConfig(tasks=["reach", "push"], episodes=2, policy=url), tmp_path / "r.csv"
        )
    assert local["success"].all()
    pd.testing.assert_frame_equal(local[KEYS], remote[KEYS])


def test_a_server_side_failure_reaches_openpi_client_as_openpi_reports_it() -> None:
    # the expert needs the simulator's full state, which openpi's LIBERO keys do not carry:
    # the server sends the traceback as text, which openpi-client raises
    with Server(*NBLIB, "serve", "expert", "--protocol", "openpi", "--port", "{port}") as srv:
        with pytest.raises(AssertionError, match=r"Error in inference server"):
            run_probe("127.0.0.1", srv.port, 4, 1)


def test_an_openpi_server_that_is_not_there_fails_fast(tmp_path: Path) -> None:
    import time

    from test_serving import _free_port

    url = f"openpi://127.0.0.1:{_free_port()}"
    start = time.monotonic()
    with pytest.raises(Exception, match=rf"policy server {url}: unreachable after 3 attempts"):
        evaluate(EvalConfig(tasks=["reach"], episodes=1, policy=url), tmp_path / "x.csv")
    assert time.monotonic() - start < 30 and not (tmp_path / "x.csv").exists()
