"""Open-loop action errors, on hand-built arrays."""

import numpy as np
import pytest

from nblib.metrics.openloop import chunk_mae, first_step_mae, open_loop_errors


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
