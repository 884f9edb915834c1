"""Geometry tokens (metric point maps of replayed demos) and the compressors in the action
expert, from features to a closed-loop episode (seed 002's ablation, tiny)."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from nblib.data.geometry import (  # noqa: E402
    geometry_tokens,
    point_map,
    point_tokens,
    replay_tokens,
)
from nblib.data.hdf5 import DemoStore  # noqa: E402
from nblib.data.manifest import load_manifest  # noqa: E402
from nblib.errors import DataError, ParameterError  # noqa: E402
from nblib.models.policy import PolicyConfig, VLAPolicy  # noqa: E402


def _rigid(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    out = np.eye(4)
    out[:3, :3], out[:3, 3] = q, rng.normal(size=3)
    return out


def test_point_map_back_projects_to_the_pixels_it_came_from():
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.3, 2.5, size=(32, 48))
    intrinsics = np.array([[40.0, 0, 23.5], [0, 41.0, 15.5], [0, 0, 1]])
    extrinsics = _rigid(1)
    world = point_map(depth, intrinsics, extrinsics).astype(np.float64)
    camera = world @ extrinsics[:3, :3].T + extrinsics[:3, 3]
    assert np.allclose(camera[..., 2], depth, atol=1e-5)
    pixels = camera @ intrinsics.T
    v, u = np.mgrid[0:32, 0:48]
    assert np.allclose(pixels[..., 0] / pixels[..., 2], u, atol=1e-3)
    assert np.allclose(pixels[..., 1] / pixels[..., 2], v, atol=1e-3)


def test_point_tokens_take_each_patch_on_its_lattice_in_row_major_order():
    v, u = np.mgrid[0:32, 0:64].astype(np.float32)
    points = np.stack([u, v, u * 0], axis=-1)  # a point map whose x, y are the pixel
    tokens = point_tokens(points, patch=16, grid=4)
    assert tokens.shape == (2 * 4, 48)
    first = tokens[0].reshape(4, 4, 3)
    assert first[0, 0, :2].tolist() == [2, 2] and first[0, 1, :2].tolist() == [6, 2]
    assert first[1, 0, :2].tolist() == [2, 6]  # the lattice's second row
    assert tokens[1].reshape(4, 4, 3)[0, 0, :2].tolist() == [18, 2]  # next patch right
    assert tokens[4].reshape(4, 4, 3)[0, 0, :2].tolist() == [2, 18]  # next patch row
    with pytest.raises(ParameterError, match="patch size dividing"):
        point_tokens(points[:30], patch=16)


@pytest.fixture(scope="module")
def default_store():
    manifest = load_manifest("metaworld_default")
    if not manifest.data_path.exists():
        pytest.fail(f"{manifest.data_path} is missing: run `nblib data ensure` (make test does)")
    store = DemoStore(manifest.data_path, demos=["demo_0"])
    yield store
    store.close()


def test_replayed_demo_gives_the_scene_in_metres(default_store):
    """Replaying a default demo reproduces its recorded states (checked at every step) and
    its point maps put the table top at z = 0 and the gripper in front of the cameras."""
    record = default_store.replay_records(["demo_0"])["demo_0"]
    tokens = replay_tokens(record, default_store.cameras, 128)
    steps = len(record["actions"])
    assert tokens.shape == (steps, 2 * 64, 48) and tokens.dtype == np.float32
    points = tokens[0].reshape(-1, 3)
    assert np.mean(np.abs(points[:, 2]) < 1e-3) > 0.1  # a tenth of the points on the table
    eef = record["state"][0][:3]
    wrist = tokens[0][64:].reshape(-1, 3)  # the behindGripper camera's points
    assert np.linalg.norm(wrist - eef, axis=1).min() < 0.1

    record["state"] = record["state"].copy()
    record["state"][5, 0] += 0.01  # a recorded state the replay cannot reach
    with pytest.raises(DataError, match="departs from the recorded state at step 5"):
        replay_tokens(record, default_store.cameras, 128)


def test_geometry_tokens_are_cached_per_demo(default_store, tmp_path, monkeypatch):
    first = geometry_tokens(default_store, cache=tmp_path, progress=False)
    assert len(list(tmp_path.glob("*.npy"))) == 1

    def no_replay(*args, **kwargs):
        raise AssertionError("the cache was not used")

    monkeypatch.setattr("nblib.data.geometry.replay_tokens", no_replay)
    again = geometry_tokens(default_store, cache=tmp_path, progress=False)
    assert np.array_equal(first["demo_0"], again["demo_0"])


def test_demos_nblib_did_not_generate_have_no_geometry(tiny_manifest):
    store = DemoStore(load_manifest(tiny_manifest).data_path)
    with pytest.raises(DataError, match="departs from the recorded state at step 0"):
        geometry_tokens(store, demos=store.demos[:1], progress=False)


def _batch(batch=3, geom=True):
    torch.manual_seed(1)
    out = {
        "vlm": torch.randn(batch, 5, 32),
        "vlm_mask": torch.ones(batch, 5, dtype=torch.bool),
        "proprio": torch.randn(batch, 4),
        "actions": torch.randn(batch, 16, 4),
        "action_mask": torch.ones(batch, 16, dtype=torch.bool),
    }
    out["vlm_mask"][0, :2] = False
    if geom:
        out["geom"] = torch.randn(batch, 24, 48)
    return out


def test_the_expert_without_geometry_is_exactly_pytorchs_decoder():
    """The expert runs its decoder layers one by one (to give each its own geometry
    tokens); without geometry that is bit-identical to nn.TransformerDecoder, so saved
    policies predict as before."""
    torch.manual_seed(0)
    policy = VLAPolicy(PolicyConfig(vlm_dim=32, proprio_dim=4, action_dim=4, expert_layers=3))
    batch = _batch(geom=False)
    context, mask, _ = policy._context(batch["vlm"], batch["proprio"], batch["vlm_mask"])
    queries = policy.expert.queries[None].expand(3, -1, -1)
    memory_padding = ~mask
    reference = policy.expert.decoder(queries, context, memory_key_padding_mask=memory_padding)
    assert torch.equal(policy.expert.norm(reference).mean(1), policy.expert(context, mask))


@pytest.mark.parametrize("kind", ["pool", "per_layer", "qformer"])
def test_each_compressor_conditions_every_expert_layer_and_learns(kind):
    torch.manual_seed(0)
    config = PolicyConfig(
        vlm_dim=32, proprio_dim=4, action_dim=4, head="regression", geometry=kind, geom_dim=48
    )
    policy = VLAPolicy(config)
    batch = _batch()
    tokens = policy.geometry(batch["geom"])
    assert tokens.shape == (config.expert_layers, 3, config.geom_tokens, config.d_model)
    before = policy.condition(batch["vlm"], batch["proprio"], batch["vlm_mask"], batch["geom"])
    other = policy.condition(
        batch["vlm"], batch["proprio"], batch["vlm_mask"], batch["geom"].flip(0)
    )
    assert not torch.allclose(before, other)  # the geometry reaches the condition
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-3)
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = policy.loss(batch)
        loss.backward()
        losses.append(float(loss.detach()))
        optimizer.step()
    grads = [p.grad for p in policy.geometry.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)
    assert losses[-1] < 0.5 * losses[0]
    with pytest.raises(ParameterError, match="pass geom"):
        policy.predict({k: v for k, v in batch.items() if k != "geom"})


def test_geometry_settings_are_checked():
    with pytest.raises(ParameterError, match="none or one of"):
        PolicyConfig(vlm_dim=8, proprio_dim=4, action_dim=4, geometry="mesh", geom_dim=48)
    with pytest.raises(ParameterError, match="geom_dim >= 1"):
        PolicyConfig(vlm_dim=8, proprio_dim=4, action_dim=4, geometry="pool")
    with pytest.raises(ParameterError, match="not the infobot head"):
        PolicyConfig(
            vlm_dim=8, proprio_dim=4, action_dim=4, head="infobot", geometry="pool", geom_dim=4
        )


def test_overfit_with_a_compressor_saves_a_policy_that_runs_closed_loop(real_manifest, tmp_path):
    """Notebook 01's engine with geometry='qformer' on real demos: tokens attached to
    every sample, the compressor trained and saved, and the saved policy evaluated in
    Meta-World with depth rendered for its tokens."""
    from nblib.eval.rollout import EvalConfig, evaluate
    from nblib.models.vla import load_policy
    from nblib.studies import overfit

    config = overfit.OverfitConfig(
        manifest=real_manifest, demos=2, val_demos=1, horizon=4, steps=3, warmup_steps=1,
        head="regression", geometry="qformer",
    )  # fmt: skip
    exp = overfit.prepare(config, progress=False)
    assert exp.train.geometry.shape == (len(exp.train), 2 * 4, 48)  # 32 px: 4 patches a camera
    assert "geometry compressor (qformer)" in overfit.describe(exp)
    overfit.save_policy(exp, overfit.fit(exp, progress=False), tmp_path)
    saved = load_policy(tmp_path)
    assert saved.model.policy.config.geometry == "qformer" and saved.meta["geometry"] == "qformer"
    frame = evaluate(
        EvalConfig(tasks=["reach"], policy=str(tmp_path), episodes=1, max_steps=3),
        tmp_path / "geometry.csv",
        progress=False,
    )
    assert frame["steps"].tolist() == [3] and frame["complete"].all()
    with pytest.raises(ParameterError, match="geometry"):
        overfit.OverfitConfig(head="infobot", geometry="pool")


def test_probes_run_on_a_geometry_policy_saved_by_notebook_01(real_manifest, tmp_path):
    """The bug: notebook 02 crashed on a geometry policy (`ParameterError: this policy has a
    'pool' geometry compressor: pass geom`). The probe samples now carry the geometry
    tokens the policy was trained with, through every step that runs the policy."""
    from nblib.studies import overfit, probes

    config = overfit.OverfitConfig(
        manifest=real_manifest, demos=2, val_demos=1, horizon=4, steps=2, warmup_steps=1,
        head="regression", geometry="pool",
    )  # fmt: skip
    exp = overfit.prepare(config, progress=False)
    overfit.save_policy(exp, overfit.fit(exp, progress=False), tmp_path)
    pconfig = probes.ProbesConfig(
        policy=str(tmp_path), manifest=real_manifest, samples=8, isolation_samples=16,
        isolation_steps=2, umap=False,
    )  # fmt: skip
    study = probes.prepare(pconfig, progress=False)
    assert study.samples.geometry is not None
    table = probes.summaries(study, probes.collect(study))
    assert "condition" in table.index
    checks = probes.pipeline_checks(study)
    assert checks["ok"].all(), checks.to_string()
    assert checks["check"].str.contains("geometry compressor (pool)", regex=False).any()
    language = probes.language_reliance(study)
    assert probes.mi_estimate(study) is None  # not an InfoBot policy
    verdict = probes.verdict(probes.evidence(study, table, language, checks), pconfig)
    assert verdict.label in ("DIVERSE", "BOTTLENECK", "COLLAPSED")
