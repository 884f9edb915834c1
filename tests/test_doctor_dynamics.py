"""Known answers of the doctor's dynamics checks (action_representation, gripper_polarity,
state_units): the embedded Meta-World demos as they are (ok), copies with one fault
injected each (absolute actions, gripper negated or in [0, 1], eef in millimetres or
offset, deltas in metres), simulators patched to respond otherwise, and the figures."""

from __future__ import annotations

import shutil

import h5py
import matplotlib.pyplot as plt
import numpy as np
import pytest

from nblib.eval.metaworld import MetaWorldTask
from nblib.plots import layout_problems, shown_numbers
from nblib.studies.doctor import (
    DoctorConfig,
    dynamics,
    dynamics_plots,
    engine,
    gripper,
    prepare,
    run_check,
)
from nblib.studies.doctor import sim_response as sr
from nblib.studies.doctor.dynamics_data import compare_levels

CHECKS = ("action_representation", "gripper_polarity", "state_units")


@pytest.fixture(autouse=True)
def fresh_simulators():
    """Measurements are cached per simulator: every test starts and ends without any."""
    dynamics.clear()
    yield
    dynamics.clear()


def embedded_file():
    return prepare(DoctorConfig()).store.path


def study_of(path=None, **config):
    return prepare(DoctorConfig(data=str(path) if path else "metaworld_default", **config))


def faulty_copy(tmp_path, edit):
    """A copy of the embedded demos with ``edit(demo_group)`` applied to every demo."""
    path = tmp_path / "faulty.hdf5"
    shutil.copy(embedded_file(), path)
    with h5py.File(path, "r+") as f:
        demos = [f["data"][d] for d in f["data"]]
        edit(demos)
    return path


def edit_actions(fn):
    def edit(demos):
        for g in demos:
            g["actions"][...] = fn(g["actions"][()], g)

    return edit


def results(study):
    return {name: run_check(study, name) for name in CHECKS}


def test_embedded_demos_are_consistent():
    out = results(study_of())
    assert {n: r.status for n, r in out.items()} == dict.fromkeys(CHECKS, "ok")
    action = out["action_representation"].evidence
    assert action["data_kind"] == action["sim_kind"] == "delta"
    assert min(action["corr_delta"].values()) > 0.7  # 0.79 / 0.92 / 0.86
    assert max(abs(v) for v in action["corr_next"].values()) < 0.2  # 0.07 / -0.06 / 0.06
    assert all(5e-3 < g < 12e-3 for g in action["sim_gain"].values())  # metres per step
    assert all(0.5 < r < 2 for r in action["gain_ratio"].values())
    grip = out["gripper_polarity"].evidence
    assert grip["data_closes_with"] == grip["sim_closes_with"] == "+"
    assert grip["disagreement"] == 0
    state = out["state_units"].evidence
    assert state["moments"] >= 300 and not state["mismatched"]
    assert all(abs(d["scale"] - 1) < 1e-3 for d in state["dims"].values())


def test_absolute_actions_are_a_mismatch(tmp_path):
    def absolute(demos):
        nxt = {g.name: np.concatenate([g["obs/eef_pos"][1:], g["obs/eef_pos"][-1:]]) for g in demos}
        every = np.concatenate(list(nxt.values()))
        lo, hi = every.min(0), every.max(0)
        for g in demos:  # the next position scaled into [-1, 1], as a converter might
            a = g["actions"][()]
            a[:, :3] = 2 * (nxt[g.name] - lo) / (hi - lo) - 1
            g["actions"][...] = a

    out = results(study_of(faulty_copy(tmp_path, absolute)))
    found = out["action_representation"]
    assert found.status == "mismatch"
    assert found.evidence["data_kind"] == "absolute" and found.evidence["sim_kind"] == "delta"
    assert min(found.evidence["corr_next"].values()) > 0.99
    assert "convert the targets to deltas" in found.detail
    assert out["gripper_polarity"].status == "ok"
    assert out["state_units"].status == "ok"  # frame 0 of every demo still matches


def test_deltas_in_metres_are_a_scale_mismatch(tmp_path):
    def metres(a, g):  # the motion itself instead of a command in [-1, 1]
        p = g["obs/eef_pos"][()]
        a[:-1, :3], a[-1, :3] = p[1:] - p[:-1], 0
        return a

    found = run_check(
        study_of(faulty_copy(tmp_path, edit_actions(metres))), "action_representation"
    )
    assert found.status == "mismatch" and found.evidence["data_kind"] == "delta"
    assert all(r > 50 for r in found.evidence["gain_ratio"].values())  # ~110x


def test_negated_gripper_is_a_sign_mismatch(tmp_path):
    def negate(a, g):
        a[:, 3] = -a[:, 3]
        return a

    out = results(study_of(faulty_copy(tmp_path, edit_actions(negate))))
    found = out["gripper_polarity"]
    assert found.status == "mismatch"
    assert found.evidence["data_closes_with"] == "-" and found.evidence["sim_closes_with"] == "+"
    assert found.evidence["disagreement"] > 0.5  # the -1 and -0.6 levels: 70 % of steps
    assert "negate the gripper" in found.detail
    assert out["action_representation"].status == "ok"


def test_gripper_in_unit_range_is_a_range_mismatch(tmp_path):
    def unit(a, g):  # [-1, 1] -> [0, 1]: the data's 0 ("open") becomes 0.5
        a[:, 3] = (a[:, 3] + 1) / 2
        return a

    found = run_check(study_of(faulty_copy(tmp_path, edit_actions(unit))), "gripper_polarity")
    assert found.status == "mismatch"
    assert found.evidence["data_range"] == [0.0, 1.0]
    # Meta-World closes on +0.5: the 984 steps the data keeps open with it read oppositely
    level = found.evidence["levels"]["+0.50"]
    assert level == dict(steps=984, data_closes=0.0, sim="close", read_oppositely=984)
    assert 0.25 < found.evidence["disagreement"] < 0.35
    assert "rescale g → 2g − 1" in found.detail


def test_unit_range_that_means_the_same_is_ok(tmp_path):
    def binary(a, g):  # open -> 0, close -> 1: Meta-World keeps open at 0 and closes at 1
        a[:, 3] = (a[:, 3] > 0.3).astype(np.float32)
        return a

    found = run_check(study_of(faulty_copy(tmp_path, edit_actions(binary))), "gripper_polarity")
    assert found.status == "ok" and found.evidence["data_range"] == [0.0, 1.0]
    assert "every command it uses does there what it does in the data" in found.detail


def test_a_release_the_simulator_only_holds_at_is_counted():
    """A [0, 1] dataset that re-opens with 0, against a simulator where 0 only holds the
    gripper (LIBERO, whose gripper moves by the command's sign): few steps, all missed."""
    levels = dict(
        command=np.array([0.0, 1.0]),
        steps=np.array([200, 100]),
        closes=np.array([0.05, 0.95]),
        drops=np.array([0, 30]),
        rises=np.array([12, 2]),  # 2 rises under 1: the fingers bouncing on an object
    )
    found = compare_levels(levels, ["hold", "close"])
    assert found["disagreement"] == pytest.approx(12 / 300)  # under the 10 % share ...
    assert found["open_missed"] == found["open_events"] == 12  # ... but every release missed
    assert found["close_missed"] == 0 and found["close_events"] == 30
    assert gripper.MIN_EVENTS <= 12


def test_eef_in_millimetres_is_a_units_mismatch(tmp_path):
    def millimetres(demos):
        for g in demos:
            g["obs/eef_pos"][...] = g["obs/eef_pos"][()] * 1000

    out = results(study_of(faulty_copy(tmp_path, millimetres)))
    found = out["state_units"]
    assert found.status == "mismatch"
    assert found.evidence["mismatched"] == ["eef_pos.x", "eef_pos.y", "eef_pos.z"]
    assert all(abs(found.evidence["dims"][f"eef_pos.{a}"]["scale"] - 1000) < 1 for a in "xyz")
    assert "eef_pos x, y, z ×1000 (millimetres vs metres)" in found.detail
    assert "eef_pos x, y, z: divide by 1000" in found.detail
    # the actions are still right: their gain is compared in the simulator's units
    assert out["action_representation"].status == "ok"


def test_eef_offset_is_a_units_mismatch(tmp_path):
    def raised(demos):  # z measured from the floor instead of the table, say
        for g in demos:
            p = g["obs/eef_pos"][()]
            p[:, 2] += 0.9
            g["obs/eef_pos"][...] = p

    found = run_check(study_of(faulty_copy(tmp_path, raised)), "state_units")
    assert found.status == "mismatch" and found.evidence["mismatched"] == ["eef_pos.z"]
    assert abs(found.evidence["dims"]["eef_pos.z"]["offset"] - 0.9) < 1e-3
    assert "eef_pos z offset +0.9" in found.detail and "subtract 0.9" in found.detail


def test_a_simulator_with_the_gripper_inverted_is_found(monkeypatch):
    step = MetaWorldTask.step

    def inverted(self, action):
        action = np.array(action, dtype=np.float64)
        action[3] = -action[3]
        return step(self, action)

    monkeypatch.setattr(MetaWorldTask, "step", inverted)
    found = run_check(study_of(), "gripper_polarity")
    assert found.status == "mismatch" and found.evidence["sim_closes_with"] == "-"


def test_a_simulator_taking_absolute_targets_is_found(monkeypatch):
    """The eval path wraps the simulator in a position controller: an action is the hand's
    target in a box, and the wrapper steers toward it, so a held command settles."""
    step = MetaWorldTask.step
    low, high = np.array([-0.5, 0.4, 0.05]), np.array([0.5, 1.0, 0.5])

    def absolute(self, action):
        action = np.array(action, dtype=np.float64)
        target = low + (action[:3] + 1) / 2 * (high - low)
        action[:3] = np.clip((target - self.observation()["eef_pos"]) / 0.01, -1, 1)
        return step(self, action)

    monkeypatch.setattr(MetaWorldTask, "step", absolute)
    found = run_check(study_of(), "action_representation")
    assert found.status == "mismatch"
    assert found.evidence["sim_kind"] == "absolute" and found.evidence["data_kind"] == "delta"


def test_what_the_data_lacks_is_skipped(tmp_path):
    def no_seeds(demos):
        for g in demos:
            del g.attrs["seed"]

    out = results(study_of(faulty_copy(tmp_path, no_seeds)))
    assert out["state_units"].status == "skipped" and "seed" in out["state_units"].detail
    assert out["action_representation"].status == "ok"  # no replay needed
    libero = run_check(study_of(sim="libero"), "state_units")
    assert libero.status == "skipped" and "LIBERO" in libero.detail


@pytest.mark.parametrize("fault", [None, "negate"])
def test_figures_render_at_paper_size(tmp_path, fault):
    def negate(a, g):
        a[:, 3] = -a[:, 3]
        return a

    path = faulty_copy(tmp_path, edit_actions(negate)) if fault else None
    out = results(study_of(path))
    metrics = engine.metrics(engine.DoctorEvidence(tuple(out.values())))
    for name, result in out.items():
        fig, _ = getattr(dynamics_plots, f"figure_{name}")(result)
        assert layout_problems(fig) == []
        assert getattr(dynamics_plots, f"caption_{name}")(result).endswith(f"{result.status}.")
        shown = shown_numbers(fig)
        assert shown
        for keys, value in shown.items():  # every number drawn is metrics.json's
            node = metrics
            for key in keys:
                node = node[key]
            assert node == pytest.approx(value, rel=1e-9)
        plt.close(fig)
    skipped = dynamics.skipped("state_units", "no seeds")
    assert dynamics_plots.figure_state_units(skipped) == (None, None)


def test_libero_layout_data_against_libero(tmp_path):
    """LIBERO's own HDF5 layout (ee_pos, gripper_states, 7-D actions), recorded here from
    LIBERO itself with delta commands, is consistent with LIBERO; negated, it is not."""
    pytest.importorskip("libero.libero", reason="the LIBERO extra is not installed")
    sim = sr.open_sim("libero", suite="libero_spatial", task_id=0)
    obs, rows = sim.reset(0), []
    for t in range(45):
        action = np.zeros(7)
        action[:3] = 0.6 * np.sin(t / 5), 0.6 * np.cos(t / 7), 0.4 * np.sin(t / 4)
        action[6] = 1.0 if 15 <= t < 30 else -1.0  # LIBERO: +1 closes
        rows.append((obs["eef_pos"], obs["gripper_qpos"], action))
        obs = sim.step(action)
    path = tmp_path / "libero_demo.hdf5"
    with h5py.File(path, "w") as f:
        group = f.create_group("data")
        group.attrs["problem_info"] = '{"language_instruction": "pick up the black bowl"}'
        demo = group.create_group("demo_0")
        demo["obs/ee_pos"] = np.array([r[0] for r in rows], np.float32)
        demo["obs/ee_ori"] = np.zeros((len(rows), 3), np.float32)
        demo["obs/gripper_states"] = np.array([r[1] for r in rows], np.float32)
        demo["actions"] = np.array([r[2] for r in rows], np.float32)
    config = dict(mapping="libero", sim="libero", suite="libero_spatial", task_ids=[0])
    out = results(study_of(path, **config))
    assert out["action_representation"].status == "ok"
    assert out["action_representation"].evidence["sim_kind"] == "delta"
    assert out["gripper_polarity"].status == "ok"
    assert out["state_units"].status == "skipped"
    with h5py.File(path, "r+") as f:
        f["data/demo_0/actions"][:, 6] *= -1
    found = run_check(study_of(path, **config), "gripper_polarity")
    assert found.status == "mismatch" and found.evidence["data_closes_with"] == "-"
