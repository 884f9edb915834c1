"""Open-loop action errors and the overfit verdict, on hand-built arrays."""

import numpy as np
import pytest

from nblib.errors import ParameterError
from nblib.metrics.openloop import chunk_mae, first_step_mae, open_loop_errors, overfit_verdict


def test_known_errors():
    true = np.zeros((2, 3, 2))
    pred = np.zeros((2, 3, 2))
    pred[:, 0, 0] = 1.0  # first step, dim 0 off by 1
    pred[1, 2, 1] = 4.0  # last step of sample 1, dim 1 off by 4 ...
    mask = np.ones((2, 3), bool)
    np.testing.assert_allclose(first_step_mae(pred, true), [1.0, 0.0])
    np.testing.assert_allclose(chunk_mae(pred, true, mask), [2 / 6, 4 / 6])
    mask[1, 2] = False  # ... but that step is padding
    np.testing.assert_allclose(chunk_mae(pred, true, mask), [2 / 5, 0.0])
    errors = open_loop_errors(pred, true, mask, action_std=np.array([2.0, 1.0]))
    np.testing.assert_allclose(errors["relative_chunk"], [0.2, 0.0])
    assert errors["relative_mean"] == pytest.approx(0.1)


def test_mean_predictor_scores_about_point_eight():
    rng = np.random.default_rng(0)
    true = rng.normal(size=(4000, 4, 3))
    errors = open_loop_errors(np.zeros_like(true), true, None, true.reshape(-1, 3).std(0))
    assert errors["relative_mean"] == pytest.approx(np.sqrt(2 / np.pi), abs=0.02)


@pytest.mark.parametrize(
    ("head", "rel", "expected"),
    [
        ("regression", 0.1, "PASS"),
        ("regression", 0.3, "PARTIAL"),
        ("regression", 0.5, "FAIL"),
        ("flow", 0.2, "PASS"),
        ("flow", 0.4, "PARTIAL"),
        ("flow", 0.8, "FAIL"),
    ],
)
def test_verdict_thresholds_fit_the_head(head, rel, expected):
    errors = {"relative_mean": rel, "relative_chunk": [rel, rel]}
    assert overfit_verdict(errors, head).verdict == expected


def test_custom_thresholds_and_bad_ones():
    errors = {"relative_mean": 0.3, "relative_chunk": [0.3]}
    assert overfit_verdict(errors, "regression", {"pass": 0.4}).verdict == "PASS"
    with pytest.raises(ParameterError):
        overfit_verdict(errors, "regression", {"pass": 0.5, "partial": 0.2})
    with pytest.raises(ParameterError):
        overfit_verdict(errors, "diffusion")
