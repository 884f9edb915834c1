"""nblib.metrics.cost: throughput after warm-up and the wall-time projection's arithmetic."""

from __future__ import annotations

import json

import pytest

from nblib.errors import ParameterError
from nblib.metrics import cost


def timed(seconds, batch=None) -> list[dict]:
    """One record per entry of ``seconds``; samples_per_second = batch / seconds if batch."""
    records = []
    for step, s in enumerate(seconds):
        record = {"step": step, "loss": 1.0, "seconds": s}
        if batch is not None:
            record["samples_per_second"] = batch / s
        records.append(record)
    return records


@pytest.mark.parametrize(
    ("n", "skipped"), [(1, 0), (2, 1), (19, 1), (20, 2), (49, 4), (50, 5), (10_000, 5)]
)
def test_warmup_is_min_5_and_10_percent_but_at_least_the_first_step(n, skipped):
    assert cost.warmup_steps(n) == skipped


def test_throughput_leaves_the_warmup_out():
    """Six slow steps then four fast ones: counted in, the slow ones would be the median."""
    hist = timed([2.0] * 6 + [0.25] * 4, batch=32)
    assert cost.throughput(hist, skip=0)["seconds_per_step"] == 2.0
    measured = cost.throughput(hist, skip=6)
    assert measured == {
        "seconds_per_step": 0.25,
        "samples_per_second": 128.0,
        "steps_measured": 4,
        "steps_skipped": 6,
    }
    assert json.loads(json.dumps(measured)) == measured


def test_throughput_default_skip_and_median():
    # 100 steps: the first 5 are warm-up (a 30 s first step among them); medians then
    # ignore one slow step (an eval or checkpoint) among the rest
    seconds = [30.0, 3.0, 2.0, 2.0, 2.0] + [0.5] * 94 + [9.0]
    got = cost.throughput(timed(seconds, batch=8))
    assert got["steps_skipped"] == 5 and got["steps_measured"] == 95
    assert got["seconds_per_step"] == 0.5 and got["samples_per_second"] == 16.0


def test_throughput_without_samples_per_second():
    got = cost.throughput(timed([1.0, 0.5, 0.5]))
    assert got["samples_per_second"] is None and got["seconds_per_step"] == 0.5


def test_throughput_rejects_bad_input():
    with pytest.raises(ParameterError, match="history is empty"):
        cost.throughput([])
    with pytest.raises(ParameterError, match=r"history\[1\]\['seconds'\]=None"):
        cost.throughput([{"seconds": 1.0}, {"step": 1}])
    with pytest.raises(ParameterError, match=r"skip=3 is invalid; expected an int in \[0, 3\)"):
        cost.throughput(timed([1.0, 1.0, 1.0]), skip=3)
    with pytest.raises(ParameterError, match="skip=-1"):
        cost.throughput(timed([1.0, 1.0, 1.0]), skip=-1)


def test_projection_arithmetic():
    rows = cost.project_wall_time(0.5, steps=(1_000, 50_000), backbone_seconds_per_step=0.25)
    assert [r["steps"] for r in rows] == [1_000, 50_000]
    assert rows[0]["with_cache_seconds"] == 500.0
    assert rows[0]["without_cache_seconds"] == 750.0
    assert rows[1]["with_cache_hours"] == pytest.approx(25_000 / 3600)
    assert rows[1]["without_cache_hours"] == pytest.approx(37_500 / 3600)
    assert json.loads(json.dumps(rows)) == rows


def test_projection_without_backbone_time_and_defaults():
    rows = cost.project_wall_time(0.1)
    assert [r["steps"] for r in rows] == list(cost.PROJECTED_STEPS)
    assert all(r["without_cache_hours"] is None for r in rows)
    assert all(r["without_cache_seconds"] is None for r in rows)
    assert rows[-1]["with_cache_seconds"] == pytest.approx(20_000.0)


def test_seed_001s_speed_projects_to_its_10_hours():
    per_step = cost.SEED_001_SECONDS / cost.SEED_001_STEPS  # 0.74 s per step
    (row,) = cost.project_wall_time(per_step, steps=[50_000])
    assert row["with_cache_hours"] == pytest.approx(cost.seed_001_hours())
    assert 10.2 < cost.seed_001_hours() < 10.3


def test_projection_rejects_bad_input():
    with pytest.raises(ParameterError, match="seconds_per_step=0"):
        cost.project_wall_time(0)
    with pytest.raises(ParameterError, match="backbone_seconds_per_step=-1"):
        cost.project_wall_time(1.0, backbone_seconds_per_step=-1)
    with pytest.raises(ParameterError, match="steps entry 2.5"):
        cost.project_wall_time(1.0, steps=[1000, 2.5])
    with pytest.raises(ParameterError, match="non-empty list of ints"):
        cost.project_wall_time(1.0, steps=[])


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(45, "45 s"), (0.5, "0.5 s"), (720, "12 min"), (3.4 * 3600, "3.4 h"), (36_959, "10 h")]
    + [(25 * 3600, "25 h"), (3 * 86400, "3.0 days"), (None, "unknown")],
)
def test_duration_text(seconds, text):
    assert cost.duration_text(seconds) == text
