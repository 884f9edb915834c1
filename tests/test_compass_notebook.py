"""04_token_compass run end to end on a user's token file (nbval runs the defaults, which
train the small latent-action model; this runs the other branch).

The file mixes two datasets: rows that reference frame pairs in a tiny HDF5 file (flow is
computed from the frames, the gallery shows them) and rows that only carry precomputed
flows (no frames). Tokens are the compass bin of the true motion in both, so the known
answer is CONSISTENT."""

from __future__ import annotations

import json

import nbformat
import numpy as np
import pandas as pd
import pytest
from tiny_data import write_tiny_dataset

from nblib.flow import angle_bins, angle_deg
from nblib.paths import find_repo_root
from nblib.run import report, runner

NOTEBOOK = find_repo_root() / "notebooks" / "04_token_compass.ipynb"
BINS = 4
K = 2
PHRASES = ["reach the goal", "go to the goal", "press the button"]  # two kinds of task


def token_table(frames_file) -> pd.DataFrame:
    from nblib.data.hdf5 import DemoStore

    store = DemoStore(frames_file)
    rows = []
    for demo in store.demos:
        acts = store.actions[demo]
        for t in range(store.lengths[demo] - K):
            ax, ay = acts[t : t + K, :2].sum(axis=0)
            rows.append((demo, t, ax, -ay))  # the square moves up on screen for +y
    motion = np.array([(dx, dy) for _, _, dx, dy in rows])
    framed = pd.DataFrame(
        {
            "sample_id": [f"tiny/{d}/{t}" for d, t, _, _ in rows],
            "dataset": "tiny",
            "file": str(frames_file),
            "demo": [d for d, _, _, _ in rows],
            "t": [t for _, t, _, _ in rows],
            "k": K,
            "camera": "corner",
            "token_0": angle_bins(angle_deg(motion), BINS),
            "instruction": [PHRASES[int(d[-1]) % 3] for d, _, _, _ in rows],
        }
    )
    rng = np.random.default_rng(0)
    angles = rng.uniform(0, 2 * np.pi, 300)
    flows = np.stack([np.cos(angles), -np.sin(angles)], 1) * 4.0
    flow_only = pd.DataFrame(
        {
            "sample_id": [f"other/{i}" for i in range(len(angles))],
            "dataset": "other",
            "flow_dx": flows[:, 0],
            "flow_dy": flows[:, 1],
            "token_0": angle_bins(angle_deg(flows), BINS),
            "instruction": rng.choice(PHRASES, len(angles)),
        }
    )
    return pd.concat([framed, flow_only], ignore_index=True)


@pytest.fixture()
def kernel_env(monkeypatch):
    monkeypatch.delenv(report.RUN_DIR_ENV, raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")


def test_notebook_on_a_token_file_finds_the_known_answer(tmp_path, kernel_env):
    frames = write_tiny_dataset(tmp_path / "frames.h5", lengths=(40, 35, 38), image_size=48)
    csv = tmp_path / "tokens.csv"
    table = token_table(frames)
    table.to_csv(csv, index=False)
    out = tmp_path / "run"
    runner.run_notebook(
        NOTEBOOK,
        {
            "token_file": str(csv),
            "codebook_size": BINS,
            "direction_bins": BINS,
            "strides_compared": [K],
            "pairs_per_stride": 30,
            "umap": False,
            "gallery_tokens": 2,
            "gallery_per_token": 2,
            "combine_tokens": True,  # one token per pair: the same ids, through the other branch
            "interactive": True,
            "instruction_clusters": 2,
        },
        out_dir=out,
        progress=False,
        cwd=tmp_path,
    )
    data = json.loads((out / "metrics.json").read_text())
    assert data["verdict"] == "CONSISTENT", data["metrics"]["reasons"]
    views = data["metrics"]
    assert views["across_datasets"]["rows"] == len(table)
    assert views["across_datasets"]["agreement_adjusted"] > 0.8
    assert views["permutation_ablation"] is None and views["latent_model"] is None
    figures = {p.rsplit("/", 1)[-1] for p in data["figures"]}
    assert "token_gallery.png" in figures and "token_compass.pdf" in figures
    assert "umap_latents.png" not in figures  # no model, no latents
    assert data["metrics"]["pairs"] == len(table)
    # instructions are random with respect to motion: clustered, they explain little
    assert views["across_datasets"]["instruction_nmi"] < 0.1
    executed_text = (out / NOTEBOOK.name).read_text()
    assert "c0: " in executed_text and "c1: " in executed_text  # two clusters printed
    assert data["metrics"]["agreement_adjusted"] == views["across_datasets"]["agreement_adjusted"]
    executed = nbformat.read(out / NOTEBOOK.name, as_version=4)
    mimes = {m for c in executed.cells for o in c.get("outputs", []) for m in o.get("data", {})}
    assert "application/vnd.plotly.v1+json" in mimes  # interactive=True drew the plotly scatter
