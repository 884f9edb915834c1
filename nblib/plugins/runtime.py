"""A plug-in policy at work: built from its spec, trained and queried on the suite's demo
samples, saved into a run folder and loaded back.

:class:`PluginSource` is the second implementation of the training set-up's policy source
(:mod:`nblib.studies.setup`; the first is nblib's own VLA): ``new_model``, ``loss_fn``,
``predict`` (action units) and ``save``. A saved plug-in is ``policy/plugin.json`` (the
spec with its file made absolute, ``policy_kwargs``, the info, what the run recorded) and
``policy/weights.pt`` (the state dict); loading calls the factory again and loads the
weights strictly.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nblib.errors import DataError, PluginError
from nblib.plugins.contract import PolicyInfo, build, check_chunk, check_loss, make_batch
from nblib.plugins.spec import absolute_spec, load_factory

PLUGIN_FORMAT = "nblib.plugin_policy/1"
PLUGIN_FILE = "plugin.json"
WEIGHTS_FILE = "weights.pt"


def model_device(model: torch.nn.Module) -> torch.device:
    """Where the model's parameters are (the CPU for a model without any)."""
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def samples_batch(
    samples,
    idx,
    stats,
    cameras,
    actions=None,
    action_mask=None,
    device="cpu",
    targets: bool = True,
    instructions: list[str] | None = None,
):
    """The contract's batch of ``samples`` (:class:`nblib.models.vla.Samples`, normalised
    with ``stats``) at ``idx``, in the dataset's units. With ``targets`` it holds the
    action chunks (``actions``, normalised, e.g. a control's re-paired ones, and
    ``action_mask`` default to the samples' own); without, it is what prediction sees.
    ``instructions`` (one per sample of ``samples``) replace the samples' own."""
    idx = np.asarray(idx)
    state = stats.proprio.unnormalize(samples.proprio[idx], "mean_std")
    texts = samples.instructions if instructions is None else instructions
    action = action_is_pad = None
    if targets:
        if actions is None:
            actions, action_mask = samples.actions[idx], samples.mask[idx]
        action = stats.actions.unnormalize(np.asarray(actions), "mean_std")
        if action_mask is not None:
            action_is_pad = ~np.asarray(action_mask, dtype=bool)
    return make_batch(
        [samples.images[i] for i in idx],
        cameras,
        state,
        [texts[i] for i in idx],
        action=action,
        action_is_pad=action_is_pad,
        device=device,
    )


@dataclass(frozen=True)
class PluginSource:
    """A plug-in spec with its kwargs and the data's info: builds, trains, predicts, saves."""

    spec: str
    kwargs: dict
    info: PolicyInfo

    @classmethod
    def create(cls, spec: str, kwargs: dict | None, info: PolicyInfo) -> PluginSource:
        load_factory(spec)  # a missing file, module or factory fails before any work
        return cls(absolute_spec(spec), dict(kwargs or {}), info)

    def new_model(self, seed: int) -> torch.nn.Module:
        from nblib.train import seed_everything

        seed_everything(seed)
        return build(load_factory(self.spec), self.info, self.kwargs, self.spec)

    def loss_fn(self, samples, stats):
        """The training loop's ``loss_fn(model, batch)``: the plug-in's own ``forward``
        loss on the batch's samples (``batch["actions"]``: normalised, maybe re-paired)."""
        cameras, spec = self.info.cameras, self.spec

        def loss(model, batch):
            inputs = samples_batch(
                samples,
                batch["idx"],
                stats,
                cameras,
                batch["actions"].cpu().numpy(),
                batch["action_mask"].cpu().numpy(),
                model_device(model),
            )
            return check_loss(model(inputs), spec)

        return loss

    def check(self, model, samples, stats) -> None:
        """Ask ``model`` for two samples' chunks and its loss on them, so that a broken
        plug-in fails in seconds with the contract's error, not after a long set-up."""
        idx = np.arange(min(2, len(samples)))
        device = model_device(model)
        with torch.no_grad():
            batch = samples_batch(
                samples, idx, stats, self.info.cameras, device=device, targets=False
            )
            was_training = model.training
            model.eval()
            check_chunk(model.predict_action_chunk(batch), len(idx), self.info, self.spec)
            model.train(was_training)
        batch = samples_batch(samples, idx, stats, self.info.cameras, device=device)
        check_loss(model(batch), self.spec)
        model.zero_grad(set_to_none=True)

    def predict(self, model, samples, stats, seed: int = 0, batch_size: int = 64) -> np.ndarray:
        """(N, horizon, action_dim) chunks in action units for every sample (the torch
        seed set first, so a sampling policy is reproducible)."""
        return predict_samples(model, samples, stats, self.info, self.spec, seed, batch_size)

    def save(self, folder: str | Path, model: torch.nn.Module, meta: dict, stats=None) -> Path:
        return save_plugin(folder, model, self.spec, self.kwargs, self.info, meta, stats)


@torch.no_grad()
def predict_samples(
    model,
    samples,
    stats,
    info,
    spec,
    seed=0,
    batch_size=64,
    instructions: list[str] | None = None,
    after_batch: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Every sample's checked chunk (N, horizon, action_dim) in action units, in eval
    mode, the torch seed set once first. ``instructions`` replace the samples' own;
    ``after_batch(n)`` runs after each batch of ``n`` samples (notebook 02 collects the
    stages its hooks saw there)."""
    was_training = model.training
    model.eval()
    torch.manual_seed(seed)
    device = model_device(model)
    out = []
    for start in range(0, len(samples), batch_size):
        idx = np.arange(start, min(start + batch_size, len(samples)))
        batch = samples_batch(
            samples, idx, stats, info.cameras, device=device, targets=False,
            instructions=instructions,
        )  # fmt: skip
        chunk = check_chunk(model.predict_action_chunk(batch), len(idx), info, spec)
        out.append(chunk.cpu().numpy())
        if after_batch is not None:
            after_batch(len(idx))
    model.train(was_training)
    return np.concatenate(out)


def save_plugin(
    folder, model, spec: str, kwargs: dict, info: PolicyInfo, meta: dict, stats=None
) -> Path:
    """Write ``folder/plugin.json`` and ``folder/weights.pt``; returns ``folder``.
    ``stats``: the :class:`~nblib.data.normalization.NormStats` of its training demos (the
    suite normalises probe samples with them, as for its own policy)."""
    from dataclasses import asdict

    from nblib.paths import atomic_path, write_text_atomic

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(folder / WEIGHTS_FILE) as tmp:  # a killed save leaves no half file
        torch.save(state, tmp)
    record = {
        "format": PLUGIN_FORMAT,
        "spec": spec,
        "policy_kwargs": kwargs,
        "info": info.to_json(),
        "norm_stats": asdict(stats) if stats is not None else None,
        "meta": meta,
    }
    write_text_atomic(folder / PLUGIN_FILE, json.dumps(record, indent=1, default=str))
    return folder


def plugin_file(path: str | Path) -> Path | None:
    """The ``plugin.json`` of a saved plug-in: ``path`` itself, ``path/plugin.json`` or
    ``path/policy/plugin.json`` (a notebook-01 run folder); None when there is none."""
    from nblib.models.files import saved_file

    return saved_file(path, PLUGIN_FILE)


def saved_spec(path: str | Path) -> tuple[str, dict] | None:
    """The spec and ``policy_kwargs`` a saved plug-in was built with (a notebook-01 run
    folder, its ``policy/`` or ``plugin.json``), without building it; None when ``path``
    holds no saved plug-in."""
    file = plugin_file(path)
    if file is None:
        return None
    try:
        record = json.loads(file.read_text())
        return record["spec"], dict(record["policy_kwargs"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataError(f"{file}: not a readable plug-in record ({exc})") from exc


@dataclass(frozen=True)
class SavedPlugin:
    model: torch.nn.Module
    source: PluginSource
    meta: dict
    stats: object = None  # NormStats of the training demos, when recorded


def load_plugin(path: str | Path, device: str = "cpu") -> SavedPlugin:
    """A plug-in saved by :func:`save_plugin`, rebuilt from its spec with its weights, in
    eval mode."""
    file = plugin_file(path)
    if file is None:
        raise DataError(f"{path}: no saved plug-in policy here (expected {PLUGIN_FILE})")
    try:
        record = json.loads(file.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{file}: not a readable plug-in record ({exc})") from exc
    if record.get("format") != PLUGIN_FORMAT:
        raise DataError(f"{file}: format {record.get('format')!r}; expected {PLUGIN_FORMAT!r}")
    source = PluginSource(
        record["spec"], record["policy_kwargs"], PolicyInfo.from_json(record["info"])
    )
    model = source.new_model(seed=0)
    state = torch.load(file.parent / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise PluginError(
            f"{file.parent}: the saved weights do not fit policy {source.spec!r} built with "
            f"policy_kwargs {source.kwargs} (was the plug-in's code changed since?): {exc}"
        ) from exc
    model.to(device).eval()
    return SavedPlugin(model, source, record.get("meta", {}), _norm_stats(record))


def _norm_stats(record: dict):
    from nblib.data.normalization import NormStats, Stats

    data = record.get("norm_stats")
    if not data:
        return None
    return NormStats(Stats(**data["actions"]), Stats(**data["proprio"]), data["demos"])
