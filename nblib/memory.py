"""Peak memory per phase of a notebook (cache building, training, evaluation).

On a CUDA device the number is ``torch.cuda.max_memory_allocated``: the peak of tensor
memory allocated by torch during the phase (the peak is reset when the phase starts). It
excludes the caching allocator's reserve and the CUDA context, so ``nvidia-smi`` shows
more. On the CPU the number is the host process's peak resident set size (RSS) during the
phase: Linux keeps one high-water mark per process (``VmHWM``) and resets it to the current
RSS when 5 is written to ``/proc/self/clear_refs`` (proc(5), Linux 4.0 and later), which
each phase does at its start. Where that reset is refused (another OS, a locked-down
/proc) the peak is the process's high-water mark since it started, so a phase's peak
includes every phase before it; ``peak_scope`` in the record says which ("phase" or
"process"). The current RSS at each phase's end is recorded beside the peak to show what
the phase still holds.

Example::

    memory = MemoryTracker(device)
    with memory.phase("cache"):
        build_cache()
    with memory.phase("train"):
        train(...)
    metrics["memory"] = memory.record()
"""

from __future__ import annotations

import os
import resource
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from nblib.errors import ParameterError

#: ``kind`` of the numbers on a CUDA device and on the CPU.
CUDA_KIND = "cuda max_memory_allocated"
HOST_KIND = "host RSS"


def _vm_hwm_bytes() -> int | None:
    """``VmHWM`` of /proc/self/status in bytes (None where there is no such line)."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # "VmHWM:   123456 kB"
    except (OSError, IndexError, ValueError):
        pass
    return None


def host_peak_rss_bytes() -> int:
    """The process's peak resident set size in bytes: since the last
    :func:`reset_host_peak` where that worked, else since the process started."""
    # VmHWM, not getrusage: ru_maxrss also folds in the high-water mark the kernel saved
    # when a thread exited, so after a reset it can report an earlier phase's peak.
    hwm = _vm_hwm_bytes()
    if hwm is not None:
        return hwm
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


def reset_host_peak() -> bool:
    """Reset the process's peak RSS to its current RSS (Linux: write 5 to
    /proc/self/clear_refs); False where that is not possible, so the peak keeps counting
    from the process's start."""
    if _vm_hwm_bytes() is None:  # the reset would not show in what host_peak_rss_bytes reads
        return False
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        return False
    return True


def host_rss_bytes() -> int | None:
    """The process's resident set size now, in bytes (psutil when installed, else
    /proc/self/statm); None where neither is available."""
    try:
        import psutil
    except ImportError:
        pass
    else:
        return int(psutil.Process().memory_info().rss)
    try:
        with open("/proc/self/statm") as handle:
            resident_pages = int(handle.read().split()[1])  # fields: size resident shared ...
    except (OSError, IndexError, ValueError):
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


class MemoryTracker:
    """Peak memory of named phases on ``device`` (a torch device or its name; CUDA when it
    is a CUDA device and CUDA is available, the host otherwise). Phases may not nest (a
    CUDA phase resets the peak its outer phase is measuring); a name used again keeps the
    larger peak."""

    def __init__(self, device: torch.device | str = "cpu"):
        try:
            device = torch.device(device)
        except (RuntimeError, TypeError) as error:
            raise ParameterError(
                f"device={device!r} is invalid; expected a torch device or its name ({error})"
            ) from None
        self.device = device
        self.cuda = device.type == "cuda" and torch.cuda.is_available()
        self.kind = CUDA_KIND if self.cuda else HOST_KIND
        self.phases: dict[str, int] = {}  # name -> peak bytes, in order of first use
        self.current: dict[str, int | None] = {}  # host only: RSS at the phase's end
        # "phase" while every phase's peak was reset at its start; "process" once one was not
        self.scope = "phase"
        self._active: str | None = None

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Measure the peak memory of the ``with`` block as phase ``name``. The peak is
        recorded also when the block raises (an out-of-memory error is when it matters)."""
        if not (isinstance(name, str) and name):
            raise ParameterError(f"phase name={name!r} is invalid; expected a non-empty string")
        if self._active is not None:
            raise ParameterError(
                f"phase {name!r} started inside phase {self._active!r}; phases may not nest"
            )
        self._active = name
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
        elif not reset_host_peak():
            self.scope = "process"
        try:
            yield
        finally:
            self._active = None
            peak = self._peak_now()
            self.phases[name] = max(peak, self.phases.get(name, 0))
            if not self.cuda:
                self.current[name] = host_rss_bytes()

    def _peak_now(self) -> int:
        """The kind's peak since the phase's reset (on the host: where it worked)."""
        if self.cuda:
            return int(torch.cuda.max_memory_allocated(self.device))
        return host_peak_rss_bytes()

    def record(self) -> dict:
        """JSON-able ``{"kind", "device", "phases": {name: peak bytes}, "peak_scope",
        "peak_bytes"}``, plus on the host ``"current_bytes": {name: RSS bytes at the phase's
        end or None}``. ``peak_scope``: "phase" (each peak is the phase's own) or "process"
        (host peaks since the process started). ``peak_bytes`` is the largest phase peak
        (the peak now when no phase ran)."""
        out = {
            "kind": self.kind,
            "device": str(self.device),
            "phases": dict(self.phases),
            "peak_scope": self.scope,
            "peak_bytes": max(self.phases.values()) if self.phases else self._peak_now(),
        }
        if not self.cuda:
            out["current_bytes"] = dict(self.current)
        return out
