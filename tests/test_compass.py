"""Token-compass analysis steps on hand-built token tables (no model needed)."""

import numpy as np
import pandas as pd
import pytest

from nblib import compass
from nblib.errors import DataError, ParameterError


def table(n=400, seed=0, perfect=True):
    rng = np.random.default_rng(seed)
    angles = rng.uniform(0, 2 * np.pi, n)
    motion = np.stack([np.cos(angles), -np.sin(angles)], 1) * 3.0  # image axes: y down
    bins = np.floor(((np.degrees(angles) + 22.5) % 360) / 45).astype(int)
    tok = bins if perfect else rng.integers(0, 8, n)
    return pd.DataFrame(
        {
            "dataset": np.where(np.arange(n) % 2, "cam_a", "cam_b"),
            "task": "t",
            "instruction": "x",
            "token_0": tok,
            "token_1": rng.integers(0, 8, n),
            "flow_dx": motion[:, 0],
            "flow_dy": motion[:, 1],
        }
    )


def test_token_ids_position_and_combined():
    df = table(10)
    ids, n = compass.token_ids(df, 0, 8)
    assert n == 8 and np.array_equal(ids, df["token_0"].to_numpy())
    combined, n = compass.token_ids(df, "combined", 8)
    assert n == 64 and np.array_equal(combined, df["token_0"] * 8 + df["token_1"])
    with pytest.raises(ParameterError):
        compass.token_ids(df, 2, 8)
    with pytest.raises(DataError):
        compass.token_matrix(df.drop(columns=["token_0", "token_1"]))


def test_perfect_tokens_are_consistent_and_random_ones_are_not():
    good = table(perfect=True)
    ids, n = compass.token_ids(good, 0, 8)
    verdict, reasons = compass.verdict(compass.analyse(good, ids, n))
    assert verdict == "CONSISTENT", reasons
    bad = table(perfect=False)
    ids, n = compass.token_ids(bad, 0, 8)
    verdict, reasons = compass.verdict(compass.analyse(bad, ids, n))
    assert verdict == "INCONSISTENT", reasons


def test_flow_reference_agreement_measures_angles():
    df = pd.DataFrame(
        {
            "dataset": ["c"] * 3,
            "flow_dx": [1.0, 0.0, 5.0],
            "flow_dy": [0.0, -1.0, 0.0],
            "ref_dx": [1.0, 1.0, 0.1],
            "ref_dy": [0.0, 0.0, 0.0],
        }
    )
    out = compass.flow_reference_agreement(df, min_pixels=0.5)["c"]
    assert out["pairs"] == 2  # the third reference moves < 0.5 px
    assert out["median_deg"] == pytest.approx(45.0)  # errors 0 and 90 degrees
