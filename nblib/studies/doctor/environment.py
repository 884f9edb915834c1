"""The ``environment`` check: is the evaluation's software what the data was made with, and
does the simulator still render the data's frames?

Two comparisons. Versions: the simulator stack (MuJoCo and Meta-World; robosuite, LIBERO
and MuJoCo) recorded in the dataset's manifest (its ``software:`` block, written by
``nblib data generate``) and the model stack (torch, transformers, peft) recorded in the
policy's run folder, each against what is installed now (``importlib.metadata``). A
reference frame: the dataset's first demo reset with its recorded seed and rendered at the
data's size and colour depth, whose SHA-256 must equal the stored frame's; a small pixel
difference is a rendering change (another MuJoCo or OpenGL driver), a large one a frame
this simulator does not make for that seed.

A recorded simulator version that differs from the installed one, or a reference frame
that differs, is a mismatch: MuJoCo versions move rendering and contacts, and LIBERO
scores move by several points with them. Model-stack differences are reported, not judged
(their effect on a trained policy is an open question, and run folders rarely record
them); a version nothing recorded is "not recorded", never a mismatch.
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path

import numpy as np

from nblib.studies.doctor.checks import mismatch, ok
from nblib.versions import DISTRIBUTIONS, MODEL_STACK, installed_version

CHECK = "environment"
SIMULATOR_STACK = {
    "metaworld": ("mujoco", "metaworld"),
    "libero": ("robosuite", "libero", "mujoco"),
}
#: Largest mean absolute difference (grey levels, 0-255) still called a rendering change.
RENDER_NOISE = 2.0
NOT_RECORDED = "not recorded"


def recorded_version(software: dict, package: str) -> str | None:
    for name in DISTRIBUTIONS.get(package, (package,)):
        if name in software:
            return str(software[name])
    return None


def compare_versions(packages, software: dict | None, source: str, stack: str) -> list[dict]:
    """One row per package: recorded (in ``source``) and installed versions and whether
    they agree (``same``, ``differs``, ``not recorded``)."""
    rows = []
    for package in packages:
        recorded = recorded_version(software or {}, package)
        now = installed_version(package)
        status = NOT_RECORDED if recorded is None else "same" if recorded == now else "differs"
        rows.append(
            {
                "package": package,
                "stack": stack,
                "recorded": recorded,
                "installed": now or "not installed",
                "source": source if recorded is not None else None,
                "status": status,
            }
        )
    return rows


def run_folder_software(policy: str | None) -> tuple[dict | None, str]:
    """The versions a policy's run folder records (``meta["software"]`` of its
    ``policy.pt`` or ``plugin.json``) and where they come from, or None and why not."""
    if policy is None:
        return None, "no --policy given"
    from nblib.models.vla import POLICY_FORMAT, policy_file
    from nblib.plugins.runtime import plugin_file

    if (file := plugin_file(policy)) is not None:
        meta = json.loads(Path(file).read_text()).get("meta") or {}
    elif (file := policy_file(policy)) is not None:
        from nblib.models.files import load_tagged

        meta = load_tagged(file, POLICY_FORMAT, "saved policy").get("meta") or {}
    else:
        return None, f"policy {policy!r} is no run folder"
    software = meta.get("software")
    if not isinstance(software, dict) or not software:
        return None, f"its run folder ({file}) records no versions"
    return software, str(file)


def environment(study):
    config, manifest = study.config, study.manifest
    software = manifest.raw.get("software") if manifest is not None else None
    source = f"manifest {manifest.name}" if manifest is not None else "no manifest"
    rows = compare_versions(SIMULATOR_STACK[config.sim], software, source, "simulator")
    model_software, model_source = run_folder_software(config.policy)
    rows += compare_versions(MODEL_STACK, model_software, model_source, "model")
    frame = reference_frame(study)
    evidence = {"packages": rows, "reference_frame": frame}
    problems, fixes = [], []
    moved = [r for r in rows if r["stack"] == "simulator" and r["status"] == "differs"]
    if moved:
        problems.append(
            "; ".join(
                f"{r['package']} {r['recorded']} recorded in the {r['source']}, "
                f"{r['installed']} installed"
                for r in moved
            )
        )
        pins = " ".join(f"{_dist(r['package'])}=={r['recorded']}" for r in moved)
        fixes.append(f"install the recorded versions (pip install {pins})")
    if frame["status"] == "differs":
        problems.append(_frame_sentence(frame))
        fixes.append(_frame_fix(frame))
    if problems:
        fixes.append("or regenerate the data with this stack (`nblib data generate`)")
        detail = f"{'; '.join(problems)}. Fix: {', '.join(fixes)}."
        return mismatch(CHECK, detail, **evidence)
    if model_software is None:
        said = ", ".join(f"{r['package']} {r['installed']}" for r in rows if r["stack"] == "model")
        model = f"model stack {said} installed, {NOT_RECORDED} ({model_source})"
    else:
        model = f"model stack {_versions(rows, 'model')}{_model_note(rows)}"
    detail = (
        f"Simulator stack {_versions(rows, 'simulator')}; {_frame_sentence(frame)}; "
        f"{model}; nothing to fix."
    )
    return ok(CHECK, detail, **evidence)


def _dist(package: str) -> str:
    """The distribution to pip install for ``package`` (the installed one's name)."""
    for name in DISTRIBUTIONS.get(package, (package,)):
        try:
            metadata.version(name)
            return name
        except metadata.PackageNotFoundError:
            continue
    return package


def _versions(rows: list[dict], stack: str) -> str:
    parts = []
    for r in rows:
        if r["stack"] != stack:
            continue
        said = "as recorded" if r["status"] == "same" else r["status"]
        parts.append(f"{r['package']} {r['installed']} ({said})")
    return ", ".join(parts)


def _model_note(rows: list[dict]) -> str:
    moved = [r for r in rows if r["stack"] == "model" and r["status"] == "differs"]
    if not moved:
        return ""
    said = ", ".join(f"{r['package']} {r['recorded']} -> {r['installed']}" for r in moved)
    return f"; the model stack moved since training ({said}), reported, not judged"


# ----------------------------------------------------------------------------- frame


def frame_sha256(frame: np.ndarray) -> str:
    """SHA-256 of a frame's pixels (shape and dtype included, so a resize never matches)."""
    frame = np.ascontiguousarray(frame)
    head = f"{frame.shape}{frame.dtype}".encode()
    return hashlib.sha256(head + frame.tobytes()).hexdigest()


def reference_frame(study) -> dict:
    """The first demo's frame 0 of every camera re-rendered with its seed, against the
    stored one: ``status`` ``same``, ``differs`` or ``not available`` (and why)."""
    store = study.store
    if study.config.sim != "metaworld" or not store.has("replay_records"):
        why = (
            "the data records no seed to reset the simulator to its first frame (only data "
            "nblib generated for Meta-World does)"
        )
        return {"status": "not available", "why": why}
    from nblib.data.metaworld_gen import INSTRUCTIONS
    from nblib.eval.metaworld import MetaWorldTask
    from nblib.studies.doctor.camera import color_bits

    demo = store.demos[0]
    record = store.replay_records([demo])[demo]
    if record["task"] not in INSTRUCTIONS or not store.cameras:
        return {"status": "not available", "why": f"{demo} is no Meta-World task nblib renders"}
    stored = {c: store.frames(demo, c, 0, 1)[0] for c in store.cameras}
    first = stored[store.cameras[0]]
    size, bits = int(first.shape[0]), color_bits(study)
    sim_names = {c: study.sim_camera(c) for c in store.cameras}
    sim = MetaWorldTask(record["task"], tuple(dict.fromkeys(sim_names.values())), size, bits)
    try:
        images = sim.reset(int(record["seed"]))["images"]
    finally:
        sim.close()
    cameras = {c: _frame_row(stored[c], images[sim_names[c]]) for c in store.cameras}
    status = "same" if all(r["same"] for r in cameras.values()) else "differs"
    where = {"demo": demo, "task": record["task"], "seed": int(record["seed"]), "step": 0}
    return {"status": status, **where, "size": size, "color_bits": bits, "cameras": cameras}


def _frame_row(stored: np.ndarray, rendered: np.ndarray) -> dict:
    row = {"stored_sha256": frame_sha256(stored), "rendered_sha256": frame_sha256(rendered)}
    row["same"] = row["stored_sha256"] == row["rendered_sha256"]
    if stored.shape != rendered.shape:
        return row | {"mean_abs_difference": None, "changed_pixels": None}
    diff = np.abs(stored.astype(np.int16) - rendered.astype(np.int16))
    row["mean_abs_difference"] = round(float(diff.mean()), 3)
    row["changed_pixels"] = round(float(diff.max(axis=-1).astype(bool).mean()), 4)
    return row


def _frame_sentence(frame: dict) -> str:
    if frame["status"] == "not available":
        return f"no reference frame ({frame['why']})"
    head = f"{frame['demo']}'s frame 0 ({frame['task']}, seed {frame['seed']}) re-rendered"
    if frame["status"] == "same":
        return f"{head} is bit-identical to the stored one for {', '.join(frame['cameras'])}"
    parts = []
    for camera, row in frame["cameras"].items():
        if row["same"]:
            continue
        if row["mean_abs_difference"] is None:
            parts.append(f"{camera}: another shape")
            continue
        kind = (
            "a rendering change"
            if row["mean_abs_difference"] <= RENDER_NOISE
            else "not what this simulator renders for that seed"
        )
        parts.append(
            f"{camera}: SHA-256 {row['rendered_sha256'][:12]} vs {row['stored_sha256'][:12]} "
            f"stored, mean |difference| {row['mean_abs_difference']:.2f} grey levels over "
            f"{100 * row['changed_pixels']:.1f} % of pixels, {kind}"
        )
    return f"{head} differs from the stored one ({'; '.join(parts)})"


def _frame_fix(frame: dict) -> str:
    big = any(
        (r["mean_abs_difference"] or RENDER_NOISE + 1) > RENDER_NOISE
        for r in frame["cameras"].values()
        if not r["same"]
    )
    if big:
        return "check how the data's frames were made or edited (settings, camera, seed)"
    return "evaluate with the renderer the data was made with (MuJoCo version, OpenGL driver)"
