"""Run by the throwaway venv's Python (tests/lerobot_venv.py), where LeRobot's own dataset
package (``lerobot-dataset``, imported as ``ledataset``) is installed; nblib is not.

    python lerobot_probe.py read FOLDER OUT.npz    load FOLDER with LeRobotDataset, save items
    python lerobot_probe.py write SRC.npz FOLDER   record SRC's episodes with LeRobotDataset

``read`` saves, for every frame of the dataset, what ``LeRobotDataset.__getitem__`` returns
(actions, states, indices, task text, camera frames as uint8 HWC) plus the metadata it
parsed. LeRobot's video decoders (torchcodec, torchvision) exist on PyPI only as CUDA
builds that cannot load beside CPU torch, so ``decode_video_frames`` is replaced by
:func:`decode_with_pyav`: PyAV (which LeRobot's "pyav" backend uses through torchvision)
with LeRobot's rule for which frame answers a query. Everything else, from the metadata
to the query timestamps of each video, is LeRobot's own code. ``write`` creates a dataset from scratch the way a LeRobot user records one
(``create``, ``add_frame``, ``save_episode``, ``finalize``), with LeRobot's default video
encoding, so nblib's reader is tested on a folder LeRobot itself wrote.
"""

from __future__ import annotations

import json
import sys

import numpy as np


def stub_torchvision() -> None:
    """torchvision's PyPI wheels are CUDA builds that fail to import beside CPU torch
    (``operator torchvision::nms does not exist``). LeRobot's dataset module imports it for
    two things this probe never runs: ToTensor for image features (these folders hold
    videos) and the torchvision video decoder (replaced by :func:`decode_with_pyav`). A stub
    that raises if either is called stands in, so nothing is silently faked."""
    import importlib.machinery
    import types

    import datasets  # noqa: F401  (first: it must see no torchvision, and so never use it)

    def unavailable(*args, **kwargs):
        raise RuntimeError("torchvision is stubbed in lerobot_probe.py and must not be used")

    vision = types.ModuleType("torchvision")
    transforms = types.ModuleType("torchvision.transforms")
    transforms.ToTensor = unavailable
    vision.transforms = transforms
    vision.set_video_backend = unavailable
    vision.io = types.SimpleNamespace(VideoReader=unavailable)
    vision.__spec__ = importlib.machinery.ModuleSpec("torchvision", None)
    transforms.__spec__ = importlib.machinery.ModuleSpec("torchvision.transforms", None)
    sys.modules["torchvision"] = vision
    sys.modules["torchvision.transforms"] = transforms


def decode_with_pyav(video_path, timestamps, tolerance_s, backend=None):
    """Frames of ``video_path`` at ``timestamps`` as LeRobot returns them: (N, C, H, W)
    float32 in [0, 1], each the decoded frame nearest its query, which must lie within
    ``tolerance_s`` (LeRobot asserts the same)."""
    import av
    import torch

    with av.open(str(video_path)) as container:
        stream = container.streams.video[0]
        container.seek(int(min(timestamps) / stream.time_base), stream=stream, backward=True)
        frames, times = [], []
        for frame in container.decode(stream):
            times.append(float(frame.pts * stream.time_base))
            frames.append(frame.to_ndarray(format="rgb24"))
            if times[-1] >= max(timestamps):
                break
    gaps = np.abs(np.asarray(timestamps)[:, None] - np.asarray(times)[None, :])
    nearest = gaps.argmin(axis=1)
    assert (gaps.min(axis=1) < tolerance_s).all(), (timestamps, times, video_path)
    chosen = np.stack([frames[i] for i in nearest])
    return torch.from_numpy(chosen).permute(0, 3, 1, 2).float() / 255


def read(folder: str, out: str) -> None:
    stub_torchvision()
    import ledataset.datasets.lerobot_dataset as lerobot_dataset

    lerobot_dataset.decode_video_frames = decode_with_pyav
    ds = lerobot_dataset.LeRobotDataset("nblib/probe", root=folder)
    cameras = list(ds.meta.video_keys)
    items = [ds[i] for i in range(len(ds))]
    arrays = {
        "action": np.stack([it["action"].numpy() for it in items]),
        "state": np.stack([it["observation.state"].numpy() for it in items]),
        "episode_index": np.array([int(it["episode_index"]) for it in items]),
        "frame_index": np.array([int(it["frame_index"]) for it in items]),
        "timestamp": np.array([float(it["timestamp"]) for it in items]),
    }
    for key in cameras:  # (C, H, W) floats in [0, 1] -> (H, W, C) uint8
        chw = np.stack([it[key].numpy() for it in items])
        arrays["frames:" + key] = np.round(chw.transpose(0, 2, 3, 1) * 255).astype(np.uint8)
    meta = {
        "fps": ds.fps,
        "num_episodes": ds.num_episodes,
        "num_frames": ds.num_frames,
        "cameras": cameras,
        "tasks": [it["task"] for it in items],
        "video_backend": ds.video_backend,
    }
    np.savez(out, meta=json.dumps(meta), **arrays)


def write(source: str, folder: str) -> None:
    stub_torchvision()
    from ledataset.datasets.lerobot_dataset import LeRobotDataset

    src = np.load(source)
    meta = json.loads(str(src["meta"]))
    cameras = meta["cameras"]
    h, w = src["frames:" + cameras[0]].shape[1:3]
    features = {
        "observation.state": {"dtype": "float32", "shape": (src["state"].shape[1],), "names": None},
        "action": {"dtype": "float32", "shape": (src["action"].shape[1],), "names": None},
    }
    for cam in cameras:
        features[f"observation.images.{cam}"] = {
            "dtype": "video",
            "shape": (h, w, 3),
            "names": ["height", "width", "channels"],
        }
    ds = LeRobotDataset.create("nblib/recorded", fps=meta["fps"], features=features, root=folder)
    episodes = src["episode_index"]
    for e in np.unique(episodes):
        for row in np.flatnonzero(episodes == e):
            frame = {
                "observation.state": src["state"][row],
                "action": src["action"][row],
                "task": meta["tasks"][row],
            }
            for cam in cameras:
                frame[f"observation.images.{cam}"] = src["frames:" + cam][row]
            ds.add_frame(frame)
        ds.save_episode()
    ds.finalize()


if __name__ == "__main__":
    {"read": read, "write": write}[sys.argv[1]](*sys.argv[2:])
