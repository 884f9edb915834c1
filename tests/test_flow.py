"""Known-answer tests for nblib.flow: dense/mean flow on synthetic shifts, projection, angles."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from nblib.errors import ParameterError
from nblib.flow import (
    WEIGHTINGS,
    angle_bins,
    angle_deg,
    angular_error_deg,
    commanded_motion,
    dense_flow,
    flows_for_pairs,
    mean_flow,
    project_points,
    projected_motion,
    wrap_degrees,
)

SIZE = 128


def texture(seed: int = 0, size: int = SIZE, sigma: float = 2.0) -> np.ndarray:
    """Smooth random RGB texture (Gaussian-blurred noise), uint8 (size, size, 3)."""
    rng = np.random.default_rng(seed)
    noise = rng.random((size, size, 3)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), sigma)
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    return (smooth * 255).astype(np.uint8)


def shifted(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(img, m, img.shape[1::-1], borderMode=cv2.BORDER_REFLECT)


@pytest.fixture(scope="module")
def base() -> np.ndarray:
    return texture()


@pytest.mark.parametrize("shift", [(3, 0), (0, -2), (2, 2), (-1.5, 2.5)])
def test_known_shift_direction_and_magnitude(base, shift):
    flow = dense_flow(base, shifted(base, *shift))
    assert flow.shape == (SIZE, SIZE, 2) and flow.dtype == np.float32
    truth = np.array([shift], dtype=np.float64)
    for weighting in WEIGHTINGS:
        m = mean_flow(flow, weighting)
        assert m.shape == (2,)
        assert angular_error_deg(m[None], truth)[0] < 5, (weighting, m)
        assert abs(np.linalg.norm(m) / np.linalg.norm(truth) - 1) < 0.2, (weighting, m)


def test_static_pair_has_no_flow(base):
    flow = dense_flow(base, base.copy())
    # Farneback leaves ~0.2 px of noise along the image border, none inside
    assert np.abs(flow[8:-8, 8:-8]).max() < 1e-2 and np.abs(flow).max() < 0.5
    for weighting in WEIGHTINGS:
        assert np.linalg.norm(mean_flow(flow, weighting)) < 0.02
    assert np.array_equal(mean_flow(flow, "threshold"), np.zeros(2))


@pytest.mark.parametrize("background", ["white", "noisy"])
def test_small_moving_patch_magnitude_beats_plain(background):
    """A 24-px textured object moves (3, -2) px (~3.5% of the pixels move).

    On a white background the plain mean has the right direction but ~1/10 of the length;
    with a static textured background and sensor noise its direction drifts too.
    """
    obj = texture(seed=1, size=24)
    d = np.array([3.0, -2.0])
    if background == "white":
        a = np.full((SIZE, SIZE, 3), 255, np.uint8)
    else:
        a = (texture(seed=2) // 4 + 160).astype(np.uint8)
    b = a.copy()
    a[60:84, 40:64] = obj
    b[58:82, 43:67] = obj
    if background == "noisy":
        rng = np.random.default_rng(0)
        a, b = (np.clip(x + rng.normal(0, 4, x.shape), 0, 255).astype(np.uint8) for x in (a, b))
    flow = dense_flow(a, b)
    plain, mag = mean_flow(flow, "plain"), mean_flow(flow, "magnitude")
    err_plain = angular_error_deg(plain[None], d[None])[0]
    err_mag = angular_error_deg(mag[None], d[None])[0]
    assert err_mag < 5 and err_mag <= err_plain + 0.5
    ratio_plain = np.linalg.norm(plain) / np.linalg.norm(d)
    ratio_mag = np.linalg.norm(mag) / np.linalg.norm(d)
    assert ratio_plain < 0.2  # diluted by the static background
    assert ratio_mag > 0.5
    assert abs(ratio_mag - 1) < abs(ratio_plain - 1) / 2


def test_mean_flow_weightings_exact():
    flow = np.zeros((4, 4, 2), np.float32)
    flow[0, 0] = (3, 4)  # |f| = 5
    flow[1, 1] = (0.1, 0)  # below the threshold
    np.testing.assert_allclose(mean_flow(flow, "plain"), [3.1 / 16, 4 / 16])
    np.testing.assert_allclose(mean_flow(flow, "magnitude"), [(15 + 0.01) / 5.1, 20 / 5.1])
    np.testing.assert_allclose(mean_flow(flow, "threshold", threshold=0.5), [3, 4])
    batch = np.stack([flow, np.zeros_like(flow)])
    out = mean_flow(batch, "magnitude")
    assert out.shape == (2, 2) and np.array_equal(out[1], [0, 0])
    np.testing.assert_allclose(out[0], mean_flow(flow, "magnitude"))


def test_threshold_is_zero_when_nothing_moves():
    flow = np.full((8, 8, 2), 0.1, np.float32)
    assert np.array_equal(mean_flow(flow, "threshold", threshold=0.5), [0, 0])


def test_unknown_weighting_names_choices():
    with pytest.raises(ParameterError, match="magnitude"):
        mean_flow(np.zeros((4, 4, 2)), "median")


def test_flows_for_pairs_matches_serial_in_order(base):
    shifts = [(3, 0), (0, -2), (2, 2), (-1.5, 2.5), (1, -1), (0, 0)]
    pairs = [(base, shifted(base, *s)) for s in shifts]
    serial = np.stack([mean_flow(dense_flow(a, b)) for a, b in pairs])
    parallel = flows_for_pairs(iter(pairs), workers=2, progress=False)  # a generator works
    assert parallel.shape == (len(shifts), 2)
    np.testing.assert_allclose(parallel, serial, atol=1e-6)
    one = flows_for_pairs(pairs, weighting="plain", workers=1, progress=False)
    np.testing.assert_allclose(one, [mean_flow(dense_flow(a, b), "plain") for a, b in pairs])


def test_raft_without_torchvision_or_weights_raises(base, tmp_path):
    with pytest.raises(ParameterError, match="farneback"):
        dense_flow(base, base, method="raft")
    with pytest.raises(ParameterError, match="farneback"):
        dense_flow(base, base, method="raft", raft_weights=tmp_path / "missing.pth")
    with pytest.raises(ParameterError, match="farneback"):
        dense_flow(base, base, method="lucas-kanade")
    with pytest.raises(ParameterError, match="winsize"):
        dense_flow(base, base, window=5)


# --------------------------------------------------------------------------- projection

K = np.array([[100.0, 0, 64], [0, 100.0, 64], [0, 0, 1]])


def test_project_points_hand_made_camera():
    pts = np.array([[0, 0, 2], [0.2, 0, 2], [0, -0.4, 2], [0, 0, -1]], dtype=float)
    pix = project_points(pts, K, np.eye(4))
    np.testing.assert_allclose(pix[:3], [[64, 64], [74, 64], [64, 44]])
    assert np.isnan(pix[3]).all()  # behind the camera
    per_point = project_points(pts[:3], K, np.broadcast_to(np.eye(4), (3, 4, 4)))
    np.testing.assert_allclose(per_point, pix[:3])


def test_projected_motion_rightward():
    T = 5
    eef = np.stack([np.linspace(0, 0.4, T), np.zeros(T), np.full(T, 2.0)], axis=1)
    extr = np.broadcast_to(np.eye(4), (T, 4, 4))
    motion = projected_motion(eef, K, extr, t=[0, 1, 2], k=2)
    assert motion.shape == (3, 2)
    np.testing.assert_allclose(motion, [[10, 0]] * 3)
    assert (angle_deg(motion) == 0).all()
    with pytest.raises(ParameterError):
        projected_motion(eef, K, extr, t=[3], k=2)


def test_projected_motion_uses_camera_pose_per_step():
    """A static point seen by a camera moving +x appears to move left."""
    T = 3
    eef = np.tile([0.0, 0.0, 2.0], (T, 1))
    extr = np.tile(np.eye(4), (T, 1, 1))
    extr[:, 0, 3] = -np.array([0.0, 0.1, 0.2])  # camera centre at x = 0, 0.1, 0.2
    motion = projected_motion(eef, K, extr, t=[0], k=2)
    np.testing.assert_allclose(motion, [[-10, 0]])


def test_commanded_motion_scales_clips_and_ignores_what_the_hand_did():
    T = 4
    eef = np.tile([0.0, 0.0, 2.0], (T, 1))  # the hand never moves (blocked)
    actions = np.zeros((T, 4))
    actions[:, 0] = [1.0, 3.0, 0.5, 0.0]  # 3.0 is clipped to 1 as the simulator does
    extr = np.broadcast_to(np.eye(4), (T, 4, 4))
    cmd = commanded_motion(eef, actions, K, extr, t=[0, 1], k=2, action_scale=0.01)
    # K has fx = 100 px at depth 2 m -> 50 px per metre: (1 + 1) * 0.01 m -> 1 px, then 0.75
    np.testing.assert_allclose(cmd, [[1.0, 0.0], [0.75, 0.0]])
    assert np.allclose(projected_motion(eef, K, extr, t=[0, 1], k=2), 0)
    with pytest.raises(ParameterError, match="actions"):
        commanded_motion(eef, actions[:, :2], K, extr, t=[0], k=1, action_scale=0.01)
    with pytest.raises(ParameterError, match="extrinsics"):
        commanded_motion(eef, actions, K, extr[:2], t=[0], k=1, action_scale=0.01)


# --------------------------------------------------------------------------- angles

COMPASS = np.array(
    [[1, 0], [1, -1], [0, -1], [-1, -1], [-1, 0], [-1, 1], [0, 1], [1, 1]], dtype=float
)


def test_angle_convention():
    np.testing.assert_allclose(angle_deg(COMPASS), np.arange(8) * 45.0)
    assert angle_deg(np.array([[0.0, -3.0]]))[0] == 90  # up is -y in the image


def test_angular_error_wraps():
    a = np.array([[np.cos(np.radians(350)), -np.sin(np.radians(350))]])
    b = np.array([[np.cos(np.radians(10)), -np.sin(np.radians(10))]])
    np.testing.assert_allclose(angular_error_deg(a, b), [20.0])
    np.testing.assert_allclose(angular_error_deg(COMPASS[:1], COMPASS[4:5]), [180.0])
    assert np.isnan(angular_error_deg(np.zeros((1, 2)), COMPASS[:1])[0])


def test_angle_conventions_and_compass_bins():
    motion = np.array([[1.0, 0.0], [0.0, -1.0], [-1.0, 0.0], [0.0, 1.0]])  # right up left down
    np.testing.assert_allclose(angle_deg(motion), [0, 90, 180, 270])
    assert angle_bins(angle_deg(COMPASS * 2)).tolist() == list(range(8))
    # bin 0 is centred on 0°: just below 360° and just above 0° are both bin 0
    np.testing.assert_array_equal(
        angle_bins([0, 22, 23, 90, 180, 270, 350, 359.9], 8), [0, 0, 1, 2, 4, 6, 0, 0]
    )
    assert angle_bins(angle_deg(COMPASS), n_bins=4).tolist() == [0, 1, 1, 2, 2, 3, 3, 0]
    assert wrap_degrees(np.array([-1e-14, -90.0, 720.0])).tolist() == [0.0, 270.0, 0.0]
    with pytest.raises(ParameterError, match="n_bins"):
        angle_bins([0.0], 0)
