"""nblib.lr_schedule's cosine_with_restarts: warm restarts over a floor (seeds 001, 003)."""

import io
import math

import numpy as np
import pytest
import torch

from nblib.errors import ParameterError
from nblib.lr_schedule import SCHEDULES, lr_curve, make_scheduler, restart_steps
from nblib.train import TrainConfig, train

LR = 1e-3


def config(**kw):
    base = {"steps": 130, "lr": LR, "schedule": "cosine_with_restarts", "warmup_steps": 10}
    return TrainConfig(**base | {"min_lr_rate": 0.1, "cycles": 3, "progress": False} | kw)


def hand_curve(steps, warmup, cycles, floor):
    """The schedule written out: a linear ramp, then ``cycles`` cosines from the peak to
    the floor, each over (steps - warmup) / cycles steps."""
    out = []
    for step in range(steps):
        if step < warmup:
            out.append(LR * step / warmup)
            continue
        position = (cycles * (step - warmup) / (steps - warmup)) % 1.0
        out.append(LR * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * position))))
    return np.asarray(out)


def test_is_a_schedule_name():
    assert "cosine_with_restarts" in SCHEDULES
    with pytest.raises(ParameterError, match="cycles"):
        config(cycles=0)


def test_restarts_jump_back_to_the_peak_at_each_cycle():
    cfg = config()  # 120 steps after warmup: three cycles of 40
    lrs = lr_curve(cfg)
    assert restart_steps(cfg) == [10, 50, 90]
    np.testing.assert_allclose(lrs, hand_curve(130, 10, 3, 0.1), rtol=1e-12, atol=0)
    for start in (50, 90):
        assert lrs[start] == pytest.approx(LR, rel=1e-12)  # back at the peak ...
        assert lrs[start - 1] < 0.11 * LR  # ... straight from the cycle's end near the floor
    # between restarts the lr only falls; it rises only at the restarts and during warmup
    rises = [s for s in range(1, 130) if lrs[s] > lrs[s - 1]]
    assert rises == [*range(1, 11), 50, 90]


def test_warmup_is_the_usual_linear_ramp():
    lrs = lr_curve(config())
    np.testing.assert_allclose(lrs[:11], LR * np.arange(11) / 10, rtol=1e-12, atol=0)
    # no warmup: the run starts at the peak
    assert lr_curve(config(warmup_steps=0))[0] == pytest.approx(LR, rel=1e-12)


@pytest.mark.parametrize("floor", [0.0, 0.1, 0.5])
def test_floor_holds_after_warmup(floor):
    lrs = lr_curve(config(min_lr_rate=floor))
    after = lrs[10:]
    assert after.min() >= floor * LR * (1 - 1e-12)
    assert after.max() <= LR * (1 + 1e-12)
    # each cycle's last step sits close to the floor (cosine's last 1/40 of a half turn)
    for end in (49, 89, 129):
        assert lrs[end] - floor * LR < 0.01 * LR


@pytest.mark.parametrize("floor", [0.0, 0.1])
def test_one_cycle_is_plain_cosine_with_the_same_floor(floor):
    restarts = lr_curve(config(cycles=1, min_lr_rate=floor))
    plain = lr_curve(config(schedule="cosine_with_min_lr", min_lr_rate=floor))
    np.testing.assert_allclose(restarts, plain, rtol=1e-12, atol=1e-18)
    if floor == 0.0:  # without a floor it is transformers' cosine itself
        cosine = lr_curve(config(schedule="cosine"))
        np.testing.assert_allclose(restarts, cosine, rtol=1e-12, atol=1e-18)


def test_uneven_cycles_restart_at_the_first_step_of_each_cycle():
    cfg = config(steps=110, cycles=3)  # 100 steps after warmup: cycles of 33 1/3 steps
    lrs = lr_curve(cfg)
    assert restart_steps(cfg) == [10, 44, 77]
    rises = [s for s in range(11, 110) if lrs[s] > lrs[s - 1]]
    assert rises == [44, 77]
    assert all(lrs[s] > 0.99 * LR for s in rises)  # a fraction of a step past the peak


def test_state_dict_round_trip_continues_the_same_curve():
    cfg = config()
    expected = lr_curve(cfg)

    def scheduler_on_fresh_optimizer():
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.lr)
        return opt, make_scheduler(opt, cfg)

    opt, sched = scheduler_on_fresh_optimizer()
    for _ in range(47):  # stop mid-cycle, three steps before a restart
        opt.step()
        sched.step()
    buffer = io.BytesIO()  # what nblib.checkpoints writes, and how it reads it back
    torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert state["scheduler"]["lr_lambdas"] == [{}]  # nothing but the step is saved

    opt, resumed = scheduler_on_fresh_optimizer()
    opt.load_state_dict(state["optimizer"])
    resumed.load_state_dict(state["scheduler"])
    lrs = []
    for _ in range(47, cfg.steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        resumed.step()
    np.testing.assert_allclose(lrs, expected[47:], rtol=1e-12, atol=0)


def test_training_loop_logs_the_curve_across_a_resume(tmp_path):
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(0))
    batch = {"x": x, "y": x.sum(dim=1, keepdim=True)}

    def mse(model, b):
        return (model(b["x"]) - b["y"]).pow(2).mean()

    kw = dict(steps=12, warmup_steps=2, cycles=2, checkpoint_dir=str(tmp_path / "ck"))
    stop_after_4 = lambda step, record, model: step == 3  # noqa: E731
    train(torch.nn.Linear(4, 1), lambda s: batch, mse, config(**kw), callback=stop_after_4)
    hist = train(torch.nn.Linear(4, 1), lambda s: batch, mse, config(**kw, resume=True))
    np.testing.assert_allclose(hist.column("lr"), lr_curve(config(**kw)), rtol=1e-12, atol=0)
    assert hist.column("lr")[7] == pytest.approx(LR, rel=1e-12)  # the restart after resuming


def test_too_many_cycles_is_a_parameter_error():
    with pytest.raises(ParameterError, match=r"cycles.*steps - warmup_steps = 5"):
        lr_curve(config(steps=15, cycles=6))


def test_lr_study_grid_runs_restarts_with_their_cycles_and_floor():
    from nblib.studies import lr
    from nblib.studies.lr.plots import SCHEDULE_COLOURS

    config = lr.LRConfig(
        schedules=["cosine_with_min_lr", "cosine_with_restarts"],
        peak_lrs=[1e-3],
        steps=90,
        warmups=[10],
        cycles=4,
    )
    specs = lr.sweep_specs(config)
    assert [s["run"] for s in specs] == [
        "cosine_with_min_lr lr=0.001 wu=10 floor=0.1",
        "cosine_with_restarts lr=0.001 wu=10 floor=0.1 cycles=4",
    ]
    preview = lr.lr_preview(lr.prepare(config))
    restarts = preview[preview["run"] == specs[1]["run"]]["lr"].to_numpy()
    np.testing.assert_allclose(restarts, hand_curve(90, 10, 4, 0.1), rtol=1e-12, atol=0)
    with pytest.raises(ParameterError, match="cycles"):
        lr.LRConfig(schedules=["cosine_with_restarts"], steps=90, warmups=[10], cycles=81)
    assert "cosine_with_restarts" in lr.FLOOR_SCHEDULES
    # every schedule a sweep may run has its own colour in notebook 03's figures
    sweepable = [SCHEDULE_COLOURS[s] for s in lr.study.SWEEP_SCHEDULES]
    assert len(set(sweepable)) == len(sweepable)
