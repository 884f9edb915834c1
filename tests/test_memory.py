"""nblib.memory.MemoryTracker: the host path measured for real, the CUDA path's calls
checked against a stand-in torch.cuda (no GPU here)."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest
import torch

from nblib import memory
from nblib.errors import ParameterError
from nblib.memory import CUDA_KIND, HOST_KIND, MemoryTracker

MB = 1 << 20


def test_host_phases_record_positive_bytes_in_order():
    tracker = MemoryTracker("cpu")
    with tracker.phase("load"):
        pass
    with tracker.phase("train"):
        held = np.ones(128 * MB // 8)  # 128 MB, touched, still held after the phase
    with tracker.phase("eval"):
        pass
    record = tracker.record()
    assert record["kind"] == HOST_KIND and record["device"] == "cpu"
    assert list(record["phases"]) == ["load", "train", "eval"]
    peaks = list(record["phases"].values())
    assert all(isinstance(p, int) and p > 0 for p in peaks)
    assert peaks[1] - peaks[0] > 64 * MB  # the 128 MB array is in train's peak, not load's
    assert record["peak_bytes"] == max(peaks)
    current = record["current_bytes"]
    assert list(current) == ["load", "train", "eval"] and all(c > 0 for c in current.values())
    assert current["train"] - current["load"] > 64 * MB  # the array shows in the RSS
    assert record["phases"]["train"] >= current["train"] - MB  # peak >= what is resident
    assert json.loads(json.dumps(record)) == record
    del held


def test_statm_fallback_agrees_with_psutil(monkeypatch):
    pytest.importorskip("psutil")
    if not os.path.exists("/proc/self/statm"):
        pytest.skip("no /proc")
    with_psutil = memory.host_rss_bytes()
    monkeypatch.setitem(sys.modules, "psutil", None)  # import psutil now raises ImportError
    from_proc = memory.host_rss_bytes()
    assert from_proc > 0 and abs(from_proc - with_psutil) < 0.1 * with_psutil


def test_phases_may_not_nest_and_a_repeated_name_keeps_its_larger_peak(monkeypatch):
    readings = iter([100, 300, 200])
    monkeypatch.setattr(memory, "host_peak_rss_bytes", lambda: next(readings))
    tracker = MemoryTracker()
    for _ in range(2):
        with tracker.phase("eval"):
            pass
    with tracker.phase("train"):
        with pytest.raises(ParameterError, match="phase 'inner' started inside phase 'train'"):
            with tracker.phase("inner"):
                pass
    assert tracker.record()["phases"] == {"eval": 300, "train": 200}


def test_a_phase_that_raises_is_still_recorded():
    tracker = MemoryTracker()
    with pytest.raises(RuntimeError, match="out of memory"):
        with tracker.phase("train"):
            raise RuntimeError("out of memory")
    assert tracker.record()["phases"]["train"] > 0
    with tracker.phase("after"):  # the failed phase did not stay active
        pass


def test_bad_names_and_devices():
    with pytest.raises(ParameterError, match="phase name=''"):
        with MemoryTracker().phase(""):
            pass
    with pytest.raises(ParameterError, match="device='gpu0' is invalid"):
        MemoryTracker("gpu0")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback")
def test_a_cuda_device_without_cuda_measures_the_host():
    assert MemoryTracker("cuda").kind == HOST_KIND


def test_the_cuda_path_resets_the_peak_at_phase_start(monkeypatch):
    """A stand-in allocator: reset_peak_memory_stats sets the peak to what is allocated
    now, and the phase's body allocates; each phase records only its own peak."""
    state = {"allocated": 1000, "peak": 5000, "resets": []}

    def reset(device):
        state["resets"].append(str(device))
        state["peak"] = state["allocated"]

    def allocate(n):
        state["allocated"] += n
        state["peak"] = max(state["peak"], state["allocated"])

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", reset)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device: state["peak"])
    tracker = MemoryTracker("cuda:0")
    with tracker.phase("train"):
        allocate(4000)
        allocate(-4000)
    with tracker.phase("eval"):
        allocate(500)
    record = tracker.record()
    assert record["kind"] == CUDA_KIND and record["device"] == "cuda:0"
    assert record["phases"] == {"train": 5000, "eval": 1500}  # not the 5000 before "eval"
    assert record["peak_bytes"] == 5000 and "current_bytes" not in record
    assert record["peak_scope"] == "phase"
    assert state["resets"] == ["cuda:0", "cuda:0"]


def big_then_small(tracker: MemoryTracker) -> dict:
    with tracker.phase("big"):
        block = np.ones(256 * MB // 8)  # 256 MB touched, then returned to the OS (mmap)
        del block
    with tracker.phase("small"):
        pass
    return tracker.record()


@pytest.mark.skipif(not memory.reset_host_peak(), reason="the host peak cannot be reset here")
def test_the_host_peak_is_reset_at_each_phase_start():
    """Linux: a phase after one that allocated and freed 256 MB records its own (smaller)
    peak, not the process's high-water mark."""
    record = big_then_small(MemoryTracker("cpu"))
    assert record["peak_scope"] == "phase"
    assert record["phases"]["big"] - record["phases"]["small"] > 128 * MB
    assert record["peak_bytes"] == record["phases"]["big"]


def test_where_the_reset_is_refused_the_host_peak_counts_from_process_start(monkeypatch):
    monkeypatch.setattr(memory, "reset_host_peak", lambda: False)
    record = big_then_small(MemoryTracker("cpu"))
    assert record["peak_scope"] == "process"
    assert record["phases"]["small"] >= record["phases"]["big"]  # a high-water mark


def test_the_peak_falls_back_to_getrusage_without_proc(monkeypatch):
    monkeypatch.setattr(memory, "_vm_hwm_bytes", lambda: None)
    assert memory.reset_host_peak() is False  # a reset would not show in getrusage
    assert memory.host_peak_rss_bytes() >= memory.host_rss_bytes() - MB
