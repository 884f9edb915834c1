"""The ``camera_orientation`` check: are the frames the simulator gives the policy at
evaluation oriented as the frames it was trained on?

Per dataset camera, the simulator's reset frames (rendered by the eval harness's own
classes, :class:`~nblib.eval.metaworld.MetaWorldTask` / :class:`~nblib.eval.libero.LiberoTask`,
at the dataset's frame size and, for Meta-World, its colour depth) are compared with the
dataset's first frames under the eight rotations and flips of a square (the dihedral
group). Frames are compared as 32x32 grey thumbnails (mean absolute difference in grey
levels, 0-255), so a colour depth or a layout that differs a little moves every transform
alike while an orientation moves one transform far below the others.

Two ways to pair frames: data nblib generated records each demo's seed (the store's
``replay_records``), so the simulator reset with that seed shows the demo's own first
frame (Meta-World: identical pixels). Data without seeds (LIBERO's files, LeRobot
conversions) is compared robustly: the median first frame over the dataset's demos of the
task against the median reset frame over a few of the simulator's initial states.
"""

from __future__ import annotations

import numpy as np

from nblib.errors import ParameterError
from nblib.studies.doctor.checks import mismatch, ok, skipped

CHECK = "camera_orientation"
THUMB = 32  # thumbnail side: coarse enough that object layouts barely matter
DEMOS_PER_TASK = 2  # Meta-World: demos per task paired with their seeds
MEDIAN_DEMOS = 20  # robust mode: dataset first frames whose median is compared
SIM_STATES = 2  # robust mode: simulator initial states (LIBERO resets cost ~1-4 s each)
MARGIN = 2.0  # another transform must be this many times closer than identity (and back)

#: How the dataset's frames can relate to the simulator's (dataset = transform(simulator)):
#: name -> (what it is called, the NumPy expression that applies it to an (H, W, C) frame).
TRANSFORMS = {
    "identity": ("as rendered", "frame"),
    "rot90": ("rotated 90° counter-clockwise", "np.rot90(frame, 1)"),
    "rot180": ("rotated 180°", "frame[::-1, ::-1]"),
    "rot270": ("rotated 90° clockwise", "np.rot90(frame, -1)"),
    "flip_lr": ("flipped left-right", "frame[:, ::-1]"),
    "flip_ud": ("flipped upside down", "frame[::-1]"),
    "transpose": ("transposed", "frame.transpose(1, 0, 2)"),
    "antitranspose": ("mirrored about the anti-diagonal", "np.rot90(frame, 2).transpose(1, 0, 2)"),
}
#: The transform that undoes each one (every element but the quarter turns is its own).
INVERSE = {name: name for name in TRANSFORMS} | {"rot90": "rot270", "rot270": "rot90"}


def apply(name: str, image: np.ndarray) -> np.ndarray:
    """``image`` (H, W[, C]) under the transform ``name`` of :data:`TRANSFORMS`."""
    ops = {
        "identity": lambda a: a,
        "rot90": lambda a: np.rot90(a, 1),
        "rot180": lambda a: a[::-1, ::-1],
        "rot270": lambda a: np.rot90(a, -1),
        "flip_lr": lambda a: a[:, ::-1],
        "flip_ud": lambda a: a[::-1],
        "transpose": lambda a: np.swapaxes(a, 0, 1),
        "antitranspose": lambda a: np.swapaxes(a[::-1, ::-1], 0, 1),
    }
    return np.ascontiguousarray(ops[name](image))


def thumbnail(frame: np.ndarray, side: int = THUMB) -> np.ndarray:
    """(side, side) float32 grey levels of an (H, W, 3) uint8 frame: block means when the
    size divides, nearest rows and columns otherwise (square, so every transform fits)."""
    grey = np.asarray(frame, dtype=np.float32).mean(axis=-1)
    h, w = grey.shape
    if h % side == 0 and w % side == 0:
        return grey.reshape(side, h // side, side, w // side).mean(axis=(1, 3))
    rows = np.linspace(0, h - 1, side).round().astype(int)
    cols = np.linspace(0, w - 1, side).round().astype(int)
    return grey[np.ix_(rows, cols)]


def distances(groups: list[tuple[list, list]]) -> dict[str, float]:
    """transform -> mean over ``groups`` of the grey-level distance between the median
    dataset thumbnail and the median simulator thumbnail under that transform."""
    totals = dict.fromkeys(TRANSFORMS, 0.0)
    for data, sim in groups:
        d, s = np.median(data, axis=0), np.median(sim, axis=0)
        for name in TRANSFORMS:
            totals[name] += float(np.abs(apply(name, s) - d).mean())
    return {name: round(total / len(groups), 2) for name, total in totals.items()}


def judge(dist: dict[str, float]) -> dict:
    """One camera's verdict: ``mismatch`` when another transform is :data:`MARGIN` times
    closer than identity, ``ok`` when identity is that much closer than every other,
    ``unclear`` otherwise (a symmetric view, or frames that fit no transform)."""
    ranked = sorted(TRANSFORMS, key=lambda name: (dist[name], name != "identity"))
    best = ranked[0]
    runner_up = ranked[1] if best == "identity" else "identity"
    if best != "identity" and dist[best] * MARGIN <= dist["identity"]:
        status = "mismatch"
    elif best == "identity" and dist["identity"] * MARGIN <= dist[runner_up]:
        status = "ok"
    else:
        status = "unclear"
    return {"status": status, "best": best, "runner_up": runner_up, "distance": dist}


def camera_orientation(study):
    store, config = study.store, study.config
    if not store.cameras:
        return skipped(CHECK, "the dataset holds no camera frames, so there is no orientation")
    sim_names = {camera: study.sim_camera(camera) for camera in store.cameras}
    if config.sim == "libero":
        found = _libero_groups(study, sim_names)
    else:
        found = _metaworld_groups(study, sim_names)
    if isinstance(found, str):
        return skipped(CHECK, found)
    groups, examples, setting = found
    cameras = {}
    for camera, camera_groups in groups.items():
        verdict = judge(distances(camera_groups))
        cameras[camera] = {"sim_camera": sim_names[camera], "groups": len(camera_groups)}
        cameras[camera] |= verdict
    missing = [c for c in store.cameras if c not in groups]
    evidence = {**setting, "cameras": cameras, "missing_cameras": missing, "margin": MARGIN}
    artifacts = {"examples": examples}
    detail = _detail(cameras, _compared(setting, missing))
    if any(v["status"] == "mismatch" for v in cameras.values()):
        return mismatch(CHECK, detail, artifacts, **evidence)
    return ok(CHECK, detail, artifacts, **evidence)


def _detail(cameras: dict[str, dict], compared: str) -> str:
    """The evidence per camera and, for each transform some cameras fit, its fix."""
    wrong = {c: v for c, v in cameras.items() if v["status"] == "mismatch"}
    if wrong:
        by_transform: dict[str, dict] = {}
        for camera, verdict in wrong.items():
            by_transform.setdefault(verdict["best"], {})[camera] = verdict
        fixes = " ".join(_fix(best, group) for best, group in by_transform.items())
        others = [_fit(c, v) for c, v in cameras.items() if c not in wrong]
        fine = f"; as rendered: {', '.join(others)}" if others else ""
        return f"{fixes} Compared {compared}{fine}."
    fits = "; ".join(_fit(c, v) for c, v in cameras.items())
    unclear = [c for c, v in cameras.items() if v["status"] == "unclear"]
    if not unclear:
        return (
            f"Every camera's frames fit the simulator's as rendered ({fits}); compared "
            f"{compared}; nothing to fix."
        )
    return (
        f"No camera's frames fit a rotation or flip {MARGIN:g}x better than as rendered "
        f"({fits}); compared {compared}; for {', '.join(unclear)} no transform fits "
        f"{MARGIN:g}x better than the others either (a symmetric view, or a scene that "
        "differs): look at the figure."
    )


def _fit(camera: str, verdict: dict) -> str:
    d, best, other = verdict["distance"], verdict["best"], verdict["runner_up"]
    return f"{camera}: {best} {d[best]:.1f} vs {other} {d[other]:.1f} grey levels"


def _fix(best: str, group: dict[str, dict]) -> str:
    """One sentence for the cameras whose frames fit the same transform ``best``."""
    phrase, code = TRANSFORMS[best]
    undo = TRANSFORMS[INVERSE[best]][1]
    numbers = "; ".join(
        f"{camera} {v['distance'][best]:.1f} vs {v['distance']['identity']:.1f}"
        for camera, v in group.items()
    )
    return (
        f"The dataset's {' and '.join(group)} frames are the simulator's {phrase} "
        f"(grey-level distance that way vs as rendered: {numbers}): give the policy the "
        f"simulator's {' and '.join(v['sim_camera'] for v in group.values())} frames "
        f"{phrase} at evaluation (`{code}`), or turn the training frames back (`{undo}`) "
        "and retrain."
    )


def _compared(setting: dict, missing: list[str]) -> str:
    how = (
        f"{setting['pairs']} demos' first frames against resets with their seeds"
        if setting["mode"] == "paired"
        else "median first frames against the simulator's median reset frame"
    )
    gone = f"; not in the simulator: {', '.join(missing)}" if missing else ""
    return f"{how} on {setting['where']}{gone}"


# ----------------------------------------------------------------------------- Meta-World


def _metaworld_groups(study, sim_names: dict[str, str]):
    from nblib.data.metaworld_gen import INSTRUCTIONS

    store, config = study.store, study.config
    tasks = [t for t in (config.tasks or store.tasks()) if t in INSTRUCTIONS]
    by_task = {t: [d for d in store.demos if store.task_label(d) == t] for t in tasks}
    by_task = {t: demos for t, demos in by_task.items() if demos}
    if not by_task:
        return (
            f"no demo of the dataset is of a Meta-World task nblib renders (tasks "
            f"{config.tasks or store.tasks()})"
        )
    first = next(iter(by_task.values()))[0]
    frame = store.frames(first, store.cameras[0], 0, 1)[0]
    size, bits = int(frame.shape[0]), color_bits(study)
    paired = store.has("replay_records")
    groups: dict[str, list] = {}
    examples: dict[str, dict] = {}
    missing: set[str] = set()
    for task, demos in by_task.items():
        chosen = demos[:DEMOS_PER_TASK] if paired else demos[:MEDIAN_DEMOS]
        seeds = (
            [rec["seed"] for rec in store.replay_records(chosen).values()]
            if paired
            else [config.seed + i for i in range(SIM_STATES)]
        )
        sim_frames = _metaworld_resets(task, sim_names, size, bits, seeds, missing)
        for camera, sim_camera in sim_names.items():
            if sim_camera in missing:
                continue
            data = [store.frames(d, camera, 0, 1)[0] for d in chosen]
            sims = sim_frames[sim_camera]
            examples.setdefault(camera, {"dataset": data[0], "simulator": sims[0]})
            if paired:  # each demo against its own layout
                pairs = [([thumbnail(a)], [thumbnail(b)]) for a, b in zip(data, sims, strict=True)]
            else:
                pairs = [([thumbnail(a) for a in data], [thumbnail(b) for b in sims])]
            groups.setdefault(camera, []).extend(pairs)
    if not groups:
        return _no_camera(sim_names, "Meta-World")
    where = f"Meta-World ({', '.join(by_task)}; {size} px, {bits}-bit colour)"
    mode = "paired" if paired else "median"
    pairs = len(next(iter(groups.values())))
    setting = {"sim": "metaworld", "mode": mode, "where": where, "pairs": pairs}
    return groups, examples, setting | {"size": size, "color_bits": bits}


def _metaworld_resets(task, sim_names, size, bits, seeds, missing) -> dict[str, list]:
    """simulator camera -> its frames after reset with each of ``seeds``; cameras the
    model lacks are added to ``missing``."""
    from nblib.eval.metaworld import MetaWorldTask

    cameras = tuple(dict.fromkeys(c for c in sim_names.values() if c not in missing))
    try:
        sim = MetaWorldTask(task, cameras, size, bits)
    except ParameterError:  # a camera the model lacks: learn its names (a second build)
        probe = MetaWorldTask(task)
        model = probe.env.model
        known = {model.camera(i).name for i in range(model.ncam)}
        probe.close()
        missing.update(c for c in cameras if c not in known)
        cameras = tuple(c for c in cameras if c in known)
        if not cameras:
            return {}
        sim = MetaWorldTask(task, cameras, size, bits)
    try:
        frames: dict[str, list] = {c: [] for c in cameras}
        for seed in seeds:
            images = sim.reset(int(seed))["images"]
            for c in cameras:
                frames[c].append(images[c])
        return frames
    finally:
        sim.close()


def color_bits(study) -> int:
    """The dataset's colour depth: its manifest's generator setting, else read off frames
    (nblib's quantisation leaves every value at the middle of its bin, so the low bits of
    all values agree): the most common depth over the last frames of a few demos, so one
    edited frame cannot decide it."""
    generator = study.manifest.generator if study.manifest is not None else None
    if generator and "color_bits" in generator:
        return int(generator["color_bits"])
    store = study.store
    demos = store.demos[:: max(1, len(store.demos) // 4)][:4]
    depths = [
        _frame_bits(store.frames(d, c, store.lengths[d] - 1, store.lengths[d])[0])
        for d in demos
        for c in store.cameras
    ]
    return max(set(depths), key=depths.count)


def _frame_bits(frame: np.ndarray) -> int:
    values = np.unique(np.asarray(frame))
    for bits in range(1, 8):
        drop = 8 - bits
        if np.all(values & ((1 << drop) - 1) == (1 << drop) >> 1):
            return bits
    return 8


# ----------------------------------------------------------------------------- LIBERO


def _libero_groups(study, sim_names: dict[str, str]):
    from nblib.eval.libero import CAMERAS, LiberoSuite, LiberoTask, check_suite

    config, store = study.config, study.store
    name = check_suite(config.suite or "libero_spatial")  # a wrong name is bad input
    try:
        suite = LiberoSuite(name)
    except ParameterError as error:  # the libero extra is not installed
        return f"LIBERO is not available: {error}"
    task_id = (config.task_ids or [0])[0]
    names = {suite.task_name(task_id), suite.instruction(task_id)}
    demos = [
        d for d in store.demos if store.task_label(d) in names or store.instruction[d] in names
    ]
    of_task = bool(demos)
    demos = (demos or list(store.demos))[:MEDIAN_DEMOS]
    cameras = tuple(dict.fromkeys(c for c in sim_names.values() if c in CAMERAS))
    if not cameras:
        return _no_camera(sim_names, "LIBERO")
    size = int(store.frames(demos[0], store.cameras[0], 0, 1)[0].shape[0])
    sim = LiberoTask(suite, task_id, cameras, size)
    try:
        states = min(SIM_STATES, sim.n_init_states)
        resets = [sim.reset(config.seed, episode)["images"] for episode in range(states)]
    finally:
        sim.close()
    groups, examples = {}, {}
    for camera, sim_camera in sim_names.items():
        if sim_camera not in cameras:
            continue
        data = [store.frames(d, camera, 0, 1)[0] for d in demos]
        sims = [images[sim_camera] for images in resets]
        examples[camera] = {"dataset": data[0], "simulator": sims[0]}
        groups[camera] = [([thumbnail(a) for a in data], [thumbnail(b) for b in sims])]
    which = "its" if of_task else "all the dataset's (none is of this task)"
    where = (
        f"{suite.name} task {task_id} ({len(demos)} of {which} demos, {states} initial "
        f"states, {size} px)"
    )
    setting = {"sim": "libero", "mode": "median", "where": where, "pairs": 1, "size": size}
    return groups, examples, setting | {"states": states, "demos": len(demos)}


def _no_camera(sim_names: dict[str, str], sim: str) -> str:
    named = ", ".join(f"{c} -> {s}" for c, s in sim_names.items())
    return (
        f"no dataset camera is a {sim} camera ({named}); name the simulator's camera of "
        "each with camera_map"
    )
