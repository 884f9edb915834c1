"""Tests for nblib.models.latent: the latent-action quantiser, token tables and the order ablation,
on a tiny file of moving squares (3 demos of 12, 9 and 15 steps, 32x32 frames)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from tiny_data import write_tiny_dataset

from nblib.errors import DataError, ParameterError
from nblib.models.latent import (
    LatentActionConfig,
    LatentActionModel,
    load_latent_model,
    load_token_file,
    permutation_ablation,
    save_latent_model,
    tokenize_dataset,
    train_latent_model,
)
from nblib.models.latent.tokens import TOKEN_COLUMNS

LENGTHS = (12, 9, 15)
SIZE = 32
TINY = dict(image_size=32, channels=8, codebook_size=8, code_dim=8, seq_len=3)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("latent") / "tiny.h5"
    return write_tiny_dataset(path, lengths=LENGTHS, image_size=SIZE)


@pytest.fixture(scope="module")
def trained(tiny):
    torch.manual_seed(0)
    model, history = train_latent_model(
        tiny,
        stride=2,
        steps=100,
        batch_size=16,
        config=LatentActionConfig(**TINY, restart_dead_every=20),
        progress=False,
        lr=3e-3,
        threads=1,
    )
    return model, history


def _frames(n: int, size: int = SIZE, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _pairs(path, stride=2):
    from nblib.data.dataset import FramePairDataset
    from nblib.data.hdf5 import DemoStore

    ds = FramePairDataset(DemoStore(path), camera="corner", stride=stride)
    frames = np.stack([ds[i]["frames"] for i in range(len(ds))])
    return frames[:, 0], frames[:, 1]


def test_config_rejects_bad_values():
    for bad in (
        dict(image_size=40),  # not a multiple of 16
        dict(codebook_size=1),
        dict(seq_len=0),
        dict(commitment=-1.0),
        dict(dead_threshold=2.0),
        dict(channels=2.5),
        dict(normalize="yes"),
    ):
        with pytest.raises(ParameterError, match=next(iter(bad))):
            LatentActionConfig(**bad)
    with pytest.raises(ParameterError, match="unknown fields"):
        LatentActionConfig.from_dict({"codebook": 3})


def test_shapes_and_dtypes():
    torch.manual_seed(0)
    model = LatentActionModel(LatentActionConfig(**TINY)).eval()
    f_t, f_tk = _frames(5, size=48), _frames(5, size=48, seed=1)  # resized to 32 inside
    tokens = model.encode_tokens(f_t, f_tk)
    assert tokens.shape == (5, 3) and tokens.dtype == torch.long
    assert 0 <= int(tokens.min()) and int(tokens.max()) < 8
    latents = model.latents(torch.from_numpy(f_t), torch.from_numpy(f_tk))
    assert latents.shape == (5, 3, 8) and latents.dtype == torch.float32
    assert model.codebook().shape == (8, 8)
    out = model.decode(f_t, tokens)
    assert out.shape == (5, 32, 32, 3) and out.dtype == torch.uint8
    # The output layer starts at zero: an untrained model copies frame_t (resized).
    same = model.decode(f_t, torch.zeros_like(tokens))
    assert torch.equal(out, same)
    with pytest.raises(ParameterError, match="tokens must lie in"):
        model.decode(f_t, tokens + 8)
    with pytest.raises(ParameterError, match="uint8"):
        model.encode_tokens(f_t.astype(np.float32), f_tk)


def test_training_loss_finite_and_decreasing(trained):
    model, history = trained
    assert len(history) == 100
    for name in ("loss", "recon", "vq", "perplexity", "active", "copy"):
        assert np.isfinite(history.column(name)).all(), name
    recon = history.column("recon")
    assert recon[-10:].mean() < 0.7 * recon[:10].mean()
    assert history.final("recon", 20) < history.final("copy", 20)  # beats copying frame_t
    assert int(model.usage_total.sum()) == 100 * 16 * 3  # every token of every step counted
    assert model.meta["strides"] == [1, 2, 3, 4] and model.meta["stride"] == 2
    assert not model.training


def test_dead_code_restart_reinitialises_unused_codes():
    torch.manual_seed(0)
    cfg = LatentActionConfig(**TINY, restart_dead_every=2)
    model = LatentActionModel(cfg).train()
    batch = {"frames_t": _frames(16), "frames_tk": _frames(16, seed=1)}
    with torch.no_grad():  # every latent ~ v (a large bias), nearest to code 0 = v; rest = -v
        v = torch.nn.functional.normalize(torch.randn(8), dim=0)
        model.to_latents.bias.copy_(10 * v.repeat(3))
        model.codebook_weight.copy_(-v.expand(8, -1))
        model.codebook_weight[0] = v
    assert (model.encode_tokens(**_as_pair(batch)) == 0).all()
    before = model.codebook()
    for _ in range(2):  # two counted steps, all on code 0
        model.loss(batch)
    assert int(model.restarts) == 0
    assert model.usage_window.tolist() == [2 * 16 * 3] + [0] * 7
    model.loss(batch)  # the check runs before quantising this step
    after = model.codebook()
    assert int(model.restarts) == 7
    assert torch.equal(after[0], before[0])  # the used code is kept
    assert not torch.allclose(after[1:], before[1:])
    # restarted codes sit on real encoder outputs, so they now win assignments
    assert len(model.encode_tokens(**_as_pair(batch)).unique()) > 1


def _as_pair(batch):
    return {"frames_t": batch["frames_t"], "frames_tk": batch["frames_tk"]}


def test_save_load_round_trip(trained, tiny, tmp_path):
    model, history = trained
    path = save_latent_model(model, tmp_path / "laq.pt")
    loaded = load_latent_model(path)
    assert loaded.config == model.config and loaded.meta == model.meta
    assert loaded.history is None  # saved without one
    with_history = load_latent_model(save_latent_model(model, tmp_path / "h.pt", history))
    assert len(with_history.history) == len(history)
    assert with_history.history[-1]["loss"] == pytest.approx(history[-1]["loss"])
    f_t, f_tk = _pairs(tiny)
    assert torch.equal(loaded.encode_tokens(f_t, f_tk), model.encode_tokens(f_t, f_tk))
    assert torch.equal(loaded.codebook(), model.codebook())
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(DataError, match="not a latent-action model file"):
        load_latent_model(tmp_path / "other.pt")
    with pytest.raises(DataError, match="no such"):
        load_latent_model(tmp_path / "missing.pt")


def test_tokenize_dataset_one_row_per_pair(trained, tiny):
    model, _ = trained
    df = tokenize_dataset(model, tiny, camera="corner", stride=2, batch_size=7)
    assert len(df) == sum(n - 2 for n in LENGTHS)
    assert list(df.columns) == list(TOKEN_COLUMNS) + ["token_0", "token_1", "token_2"]
    assert df["sample_id"].is_unique and set(df["dataset"]) == {"corner"}
    assert (df["k"] == 2).all() and df["t"].max() == max(LENGTHS) - 3
    assert df["tokens"].map(len).eq(3).all()
    tokens = np.stack(df["tokens"].to_numpy())
    assert np.array_equal(tokens, df[["token_0", "token_1", "token_2"]].to_numpy())
    f_t, f_tk = _pairs(tiny)  # FramePairDataset order = tokenize_dataset order
    assert np.array_equal(tokens, model.encode_tokens(f_t, f_tk).numpy())
    assert df["flow_dx"].isna().all() and np.isfinite(df["action_dx"]).all()
    both = tokenize_dataset(model, tiny, camera="all", stride=2, label=None)
    assert both["dataset"].value_counts().to_dict() == {"corner": len(df), "behindGripper": len(df)}
    labelled = tokenize_dataset(model, tiny, camera="corner", stride=2, label="sim")
    assert labelled["sample_id"].iloc[0].startswith("sim/")


def _table(n: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "sample_id": [f"s{i}" for i in range(n)],
            "dataset": ["bridge"] * 3 + ["rt1"] * (n - 3),
            "file": ["x.h5"] * n,
            "demo": [f"demo_{i % 2}" for i in range(n)],
            "t": np.arange(n),
            "k": np.full(n, 4),
            "flow_dx": rng.normal(size=n),
            "flow_dy": rng.normal(size=n),
            "extra": np.arange(n) * 10,
        }
    )


def _check(df: pd.DataFrame, tokens: np.ndarray):
    assert list(df.columns[: len(TOKEN_COLUMNS)]) == list(TOKEN_COLUMNS)
    assert np.array_equal(np.stack(df["tokens"].to_numpy()), tokens)
    for i in range(tokens.shape[1]):
        assert np.array_equal(df[f"token_{i}"].to_numpy(), tokens[:, i])
    assert df["dataset"].tolist() == ["bridge"] * 3 + ["rt1"] * 3
    assert "extra" in df  # unknown columns are kept


def test_load_token_file_formats(tmp_path):
    table = _table()
    tokens = np.random.default_rng(1).integers(0, 16, (6, 4))
    pq = table.assign(tokens=[list(r) for r in tokens])
    pq.to_parquet(tmp_path / "tok.parquet")
    _check(load_token_file(tmp_path / "tok.parquet"), tokens)

    arrays = {c: table[c].to_numpy() for c in table.columns}
    arrays = {c: (v.astype(str) if v.dtype == object else v) for c, v in arrays.items()}
    arrays["file_"] = arrays.pop("file")  # np.savez reserves "file"
    np.savez(tmp_path / "tok.npz", tokens=tokens, **arrays)
    _check(load_token_file(tmp_path / "tok.npz"), tokens)

    table.assign(tokens=[" ".join(map(str, r)) for r in tokens]).to_csv(
        tmp_path / "tok.csv", index=False
    )
    df = load_token_file(tmp_path / "tok.csv")
    _check(df, tokens)
    assert df["action_dx"].isna().all() and df["camera"].isna().all()

    cols = table.drop(columns=["file", "demo", "t", "k"])  # flow only, token_i columns
    for i in range(4):
        cols[f"token_{i}"] = tokens[:, i]
    cols.to_csv(tmp_path / "cols.csv", index=False)
    _check(load_token_file(tmp_path / "cols.csv"), tokens)


def test_load_token_file_errors(tmp_path):
    table = _table().assign(tokens=["1 2"] * 6)
    table.drop(columns=["sample_id"]).to_csv(tmp_path / "a.csv", index=False)
    with pytest.raises(DataError, match=r"a\.csv.*'sample_id'.*present.*'dataset'"):
        load_token_file(tmp_path / "a.csv")
    table.drop(columns=["tokens"]).to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(DataError, match=r"b\.csv.*'tokens'.*present"):
        load_token_file(tmp_path / "b.csv")
    table.drop(columns=["flow_dx", "k"]).to_csv(tmp_path / "c.csv", index=False)
    with pytest.raises(DataError, match=r"c\.csv.*at least one.*flow_dx.*present"):
        load_token_file(tmp_path / "c.csv")
    table.assign(tokens=["1 -2"] * 6).to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(DataError, match="non-negative integers"):
        load_token_file(tmp_path / "d.csv")
    (tmp_path / "e.json").write_text("{}")
    with pytest.raises(DataError, match="unknown token file type"):
        load_token_file(tmp_path / "e.json")


def test_permutation_ablation(trained, tiny):
    model, _ = trained
    f_t, f_tk = _pairs(tiny)
    out = permutation_ablation(model, f_t, f_tk, seed=0, batch_size=8)
    for name in ("original", "permuted", "reversed", "random", "copy"):
        assert math.isfinite(out[name]) and out[name] >= 0, name
    assert out["n"] == len(f_t) and sorted(out["permutation"]) == [0, 1, 2]
    assert out["permutation"] != [0, 1, 2]
    assert out["original"] < out["copy"]
    # Untrained: the decoder ignores the tokens and copies frame_t, so all five agree.
    torch.manual_seed(0)
    fresh = permutation_ablation(LatentActionModel(LatentActionConfig(**TINY)), f_t, f_tk)
    assert all(fresh[n] == pytest.approx(fresh["copy"], rel=1e-5) for n in ("original", "random"))
