"""LeRobot dataset folders (v3.0, v2.1, v2.0) behind the store interface, read with pyarrow
and PyAV (the layouts: :mod:`nblib.data.lerobot_layout`).

Low-dimensional columns are read into memory once; a camera frame is decoded on demand,
seeking to the key frame before it and decoding forward to it, so a sample costs only the
frames it needs.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np

from nblib.data.lerobot_layout import (
    INFO,
    TOLERANCE_S,
    episode_name,
    load_layout,
    read_frame_rows,
    resolve_mapping,
)
from nblib.data.mapping import KeyMapping, load_mapping
from nblib.data.store import StoreBase
from nblib.errors import DataError

# Why a LeRobot folder lacks the capabilities it lacks (see nblib.data.store).
LACKING = {
    "success_flags": "LeRobot episodes carry no success flag",
    "instruction_phrasings": "a LeRobot folder keeps one text per task",
    "camera_calibration": "LeRobot folders store no camera calibration",
    "replay_records": "replaying needs the HDF5 file nblib generated (task, seed, obs/state); "
    "a lerobot dataset cannot be replayed",
    "eef_positions": "the key mapping names no proprio feature *eef_pos or *ee_pos of width 3",
}


class VideoFrames:
    """Decodes frames of MP4 files by timestamp, keeping recently used files open."""

    MAX_OPEN = 32

    def __init__(self):
        self._open: OrderedDict[Path, object] = OrderedDict()

    def _container(self, path: Path):
        import av

        container = self._open.get(path)
        if container is None:
            if not path.exists():
                raise DataError(f"{path}: video file missing")
            try:
                container = av.open(str(path))
            except Exception as err:  # av.error.InvalidDataError and kin
                raise DataError(f"{path}: not a readable video ({err})") from err
            self._open[path] = container
            if len(self._open) > self.MAX_OPEN:
                self._open.popitem(last=False)[1].close()
        else:
            self._open.move_to_end(path)
        return container

    def read(
        self, path: Path, times: np.ndarray, episode: int | None = None, first: int = 0
    ) -> np.ndarray:
        """Frames at ``times`` (seconds, ascending) as (n, H, W, 3) uint8; ``episode`` and
        ``first`` (its frame at ``times[0]``) only name the frame in errors."""
        container = self._container(path)
        stream = container.streams.video[0]
        # Seek to the key frame at or before the first time, then decode forward.
        container.seek(max(int(times[0] / stream.time_base), 0), stream=stream, backward=True)
        out: list[np.ndarray] = []
        for frame in container.decode(stream):
            t = float(frame.pts * stream.time_base)
            if t < times[len(out)] - TOLERANCE_S:
                continue
            if abs(t - times[len(out)]) > TOLERANCE_S:
                break  # the frame asked for is not in the file
            out.append(frame.to_ndarray(format="rgb24"))
            if len(out) == len(times):
                return np.stack(out)
        where = "" if episode is None else f" (episode {episode}, frame {first + len(out)})"
        raise DataError(
            f"{path}: no frame at {times[len(out)]:.4f} s{where}: the video is shorter than "
            "its episode, or its timestamps disagree with the data's"
        )

    def close(self) -> None:
        for container in self._open.values():
            container.close()
        self._open = OrderedDict()


class LeRobotStore(StoreBase):
    """The episodes of one LeRobot folder (v3.0, v2.1 or v2.0), with the attributes and
    methods of every store (:class:`~nblib.data.store.StoreBase`): ``demos``
    (``episode_<index>``), ``lengths``, ``actions``, ``proprio``, ``instruction``,
    ``task``, ``frames()``; ``timestamps`` per demo (seconds) and ``fps``. Capabilities:
    the control rate (``fps``) and end-effector positions when the mapping names them."""

    def __init__(
        self,
        path: str | Path,
        mapping: str | KeyMapping = "lerobot",
        demos: list[str] | None = None,
        cameras: list[str] | None = None,
    ):
        self.path = Path(path)
        self.layout = load_layout(self.path)
        raw = mapping if isinstance(mapping, KeyMapping) else load_mapping(mapping)
        self.mapping = resolve_mapping(raw, self.layout.info, self.path)
        self._set_cameras(cameras)
        self.fps = self.layout.fps
        episodes = self.layout.episodes
        self._episode = {
            episode_name(int(e)): row
            for e, row in zip(episodes["episode_index"], episodes.to_dict("records"), strict=True)
        }
        available = list(self._episode)
        demos = available if demos is None else list(demos)
        missing = [d for d in demos if d not in self._episode]
        if missing:
            raise DataError(
                f"{self.path}: episodes {missing[:5]} not in the folder (it has {available[:3]}...)"
            )
        self.demos = demos
        self._read_rows()
        self._video = VideoFrames()
        self.capabilities = frozenset({"control_rate", *self._mapping_capabilities()})
        self.lacking = {k: v for k, v in LACKING.items() if k not in self.capabilities}

    def _read_rows(self) -> None:
        """Actions, proprio, timestamps and task text of every episode, file by file."""
        by_file: dict[Path, list[str]] = {}
        for name in self.demos:
            by_file.setdefault(self.layout.data_file(self._episode[name]), []).append(name)
        self.actions, self.proprio, self.timestamps = {}, {}, {}
        self.instruction, self.task = {}, {}
        m = self.mapping
        for path, names in by_file.items():
            rows_of = read_frame_rows(path, m)
            episode, frame = rows_of["episode_index"], rows_of["frame_index"]
            actions, times, tasks = rows_of[m.actions], rows_of["timestamp"], rows_of["task_index"]
            proprio = [rows_of[k] for k in m.proprio]
            for name in names:
                index = int(self._episode[name]["episode_index"])
                rows = np.flatnonzero(episode == index)
                rows = rows[np.argsort(frame[rows], kind="stable")]
                length = int(self._episode[name]["length"])
                if len(rows) != length or (len(rows) and (frame[rows] != np.arange(length)).any()):
                    raise DataError(
                        f"{path}: episode {index} has {len(rows)} rows (frame_index "
                        f"{frame[rows][:3].tolist()}...), its metadata says {length} frames "
                        "0..length-1; run `nblib data check` on the folder"
                    )
                self.actions[name] = actions[rows]
                self.proprio[name] = (
                    np.concatenate([p[rows] for p in proprio], axis=1)
                    if proprio
                    else np.zeros((length, 0), np.float32)
                )
                self.timestamps[name] = times[rows]
                text = self.layout.tasks.get(int(tasks[rows[0]])) if length else None
                self.instruction[name] = self._text("instruction", text)
                self.task[name] = self._text("task", text)
        self.lengths = {d: len(self.actions[d]) for d in self.demos}

    def _text(self, what: str, task_text: str | None) -> str | None:
        spec = getattr(self.mapping, what)
        return spec["constant"] if "constant" in spec else task_text

    def frames(self, demo: str, camera: str, start: int, stop: int) -> np.ndarray:
        """Frames [start, stop) of one camera as (n, H, W, 3) uint8, decoded from its video."""
        episode = self._episode[demo]
        key = self.mapping.images[camera]
        if start >= min(stop, self.lengths[demo]):  # an empty window, as h5py gives it
            return np.zeros((0, *self.layout.info["features"][key]["shape"]), np.uint8)
        path = self.layout.video_file(episode, key)
        times = self.layout.video_start(episode, key) + self.timestamps[demo][start:stop]
        return self._video.read(path, times, int(episode["episode_index"]), start)

    def close(self) -> None:
        self._video.close()

    def _control_rate(self) -> float:
        return self.fps

    def stamp(self) -> str:
        files = [self.path / INFO, *self.layout.data_files()]
        stats = [f.stat() for f in files]
        return f"{sum(s.st_size for s in stats)}:{max(s.st_mtime_ns for s in stats)}"

    def __getstate__(self) -> dict:
        # Open video containers cannot cross process boundaries; workers reopen lazily.
        state = self.__dict__.copy()
        state["_video"] = VideoFrames()
        return state
