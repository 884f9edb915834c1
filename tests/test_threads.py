"""nblib.threads: the OpenMP wait setting reaches every process, and training runs use the
idle cores."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from nblib import threads
from nblib.bench.threads import THREAD_SETTINGS, thread_probe
from nblib.train import TrainConfig, train


def test_openmp_setting_respects_the_users_choice():
    env: dict[str, str] = {}
    threads.configure_openmp_env(env)
    assert env == {"GOMP_SPINCOUNT": threads.SPIN_COUNT}
    for mine in ({"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "5"}):
        env = dict(mine)
        threads.configure_openmp_env(env)
        assert env == mine


def test_importing_nblib_sets_it_for_children():
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    code = "import nblib, os, subprocess, sys; "
    code += "print(subprocess.run([sys.executable, '-c', "
    code += "'import os; print(os.environ[\"GOMP_SPINCOUNT\"])'], capture_output=True, "
    code += "text=True).stdout.strip())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == threads.SPIN_COUNT, out.stderr


def test_idle_cores_and_torch_threads_are_within_the_machine():
    idle = threads.idle_cores(probe=0.05)
    usable = len(os.sched_getaffinity(0))
    assert idle is None or 0.0 <= idle <= usable + 1e-6
    n = threads.torch_threads(limit=4)
    assert 1 <= n <= min(4, usable)
    assert threads.torch_threads(limit=4) == n  # cached: tests start many short runs


def test_training_sets_and_restores_the_thread_count():
    before = torch.get_num_threads()
    seen = []
    model = torch.nn.Linear(2, 1)
    config = TrainConfig(steps=2, threads=1, progress=False)
    train(
        model,
        lambda step: torch.ones(4, 2),
        lambda m, b: m(b).pow(2).mean(),
        config,
        callback=lambda *_: seen.append(torch.get_num_threads()),
    )
    assert seen == [1, 1] and torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads"):
        TrainConfig(threads=0)


def test_governor_follows_the_cores_other_jobs_use(monkeypatch):
    """A fake clock and CPU counters: another job takes one core, then leaves."""
    now = [0.0]
    counters = [(0.0, 0.0)]  # (busy seconds of all cores, this process's CPU seconds)
    gov = threads.ThreadGovernor(
        limit=4, every=2.0, sample=lambda: counters[-1], clock=lambda: now[0]
    )
    gov.n_cores = 2
    monkeypatch.setattr(torch, "get_num_threads", lambda: current[0])
    monkeypatch.setattr(torch, "set_num_threads", lambda n: current.__setitem__(0, n))
    current = [2]
    now[0], counters[-1] = 1.0, (2.0, 1.0)
    assert gov.step() is None  # not due yet
    now[0], counters[-1] = 2.0, (4.0, 2.0)  # 2 cores busy, 1 of them ours: another job
    assert gov.step() == 1 and current == [1]
    now[0], counters[-1] = 4.0, (8.0, 4.0)  # both cores busy, one ours: stays at 1
    assert gov.step() is None
    now[0], counters[-1] = 6.0, (10.0, 6.0)  # only our one core busy: the job ended
    assert gov.step() == 2 and gov.changes == [(2.0, 1), (6.0, 2)]


def test_governor_is_inert_without_counters():
    def broken():
        raise OSError("no /proc here")

    gov = threads.ThreadGovernor(every=0.0, sample=broken)
    assert gov.step() is None


def test_thread_probe_times_both_models():
    out = thread_probe(threads=1, steps=2, governed=True)
    assert set(out) == {"policy_ms", "latent_ms", "threads_end"} and out["policy_ms"] > 0
    assert THREAD_SETTINGS["defaults"][0] == {"GOMP_SPINCOUNT": "300000"}  # libgomp's own


def test_nblib_threads_pins_the_count_for_every_torch_job(monkeypatch):
    from nblib import threads

    env = {}
    threads.configure_openmp_env(env)
    assert "OMP_NUM_THREADS" not in env  # not pinned: torch picks, the loop adapts
    env = {threads.PIN_ENV: "1"}
    threads.configure_openmp_env(env)
    assert env["OMP_NUM_THREADS"] == "1"  # torch starts with one thread in that process
    monkeypatch.setenv(threads.PIN_ENV, "2")
    assert threads.pinned_threads() == 2 and threads.torch_threads() == 2
    monkeypatch.setenv(threads.PIN_ENV, "two")
    with pytest.raises(ValueError, match="NBLIB_THREADS='two' is invalid"):
        threads.pinned_threads()
