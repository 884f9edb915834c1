"""CPU threads for torch work, set in one place for notebooks, tests and benchmarks.

On a shared 2-core machine a torch job with 2 OpenMP threads collapses as soon as another
job takes a core: each parallel region waits for the thread whose core is busy while its
sibling spins. ``nblib bench threads`` measures it (ms per training step of the overfit
policy and of the latent-action model, medians of 3 runs; the other core idle, busy with
another user's plain 2-thread torch job from the start, or from just after the run chose
its threads; 2 cores, this project's machine):

=======================================  ===========  ===========  ===========
setting                                  idle         busy         busy later
=======================================  ===========  ===========  ===========
2 threads, libgomp defaults              23.7 / 114   79.1 / 470   93.7 / 452
2 threads, ``OMP_WAIT_POLICY=PASSIVE``   37.6 / 133   38.0 / 279   38.6 / 295
2 threads, ``GOMP_SPINCOUNT=1000``       21.9 / 124   52.8 / 306   51.9 / 285
1 thread                                 21.7 / 189   31.2 / 247   32.5 / 283
nblib (all three settings below)         20.2 / 113   31.3 / 279   32.7 / 217
=======================================  ===========  ===========  ===========

(policy ms / latent-model ms per step; single runs with the defaults went up to 424 and
2,608 ms, 20-28x the idle figures.) PASSIVE costs 1.6x on an idle machine; one thread
wins whenever the other core is busy and loses 1.7x on the latent model when it is not.
So nblib does three things:

* ``GOMP_SPINCOUNT=1000`` (unless the user set it or ``OMP_WAIT_POLICY``): threads spin
  briefly, then sleep. It costs nothing measurable idle and bounds the damage until the
  thread count adapts. It must be in the environment before torch loads libgomp, so
  :func:`configure_openmp_env` runs when ``nblib`` is imported (notebooks import it before
  torch) and every process nblib starts (kernels, workers) inherits it.
* :func:`torch_threads`: as many torch threads as cores are idle when a training run
  starts (1 when another job holds a core).
* :class:`ThreadGovernor`: during the run, the threads follow the cores other processes
  leave free, checked every 2 s, so a job started mid-run costs seconds, not minutes.

:func:`nblib.train.train` applies the last two to every training run of the suite.

A thread's scheduling policy is kept here too: :func:`scheduling_kept` gives the calling
thread its policy and priority back after code that changes them (SVT-AV1's encoder, run
as root, leaves the thread real-time; the LeRobot export guards every encoder call).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

#: libgomp's busy-wait before a thread sleeps (its default is 300,000 spins; 0 = PASSIVE).
SPIN_COUNT = "1000"
# How long a probe of idle cores stays valid: tests start hundreds of short runs.
_PROBE_TTL = 30.0
_last_probe: tuple[float, int, int] | None = None  # (time, limit, threads)


#: Pins every torch job of nblib to this many CPU threads (no probing, no governor): for
#: reproducing a run exactly, or checking that a verdict does not depend on the count
#: (``nblib bench verdicts``).
PIN_ENV = "NBLIB_THREADS"


def pinned_threads(env: dict | None = None) -> int | None:
    """The thread count ``NBLIB_THREADS`` pins, or None when it is not set."""
    value = (os.environ if env is None else env).get(PIN_ENV)
    if value is None or value == "":
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{PIN_ENV}={value!r} is invalid; expected a whole number >= 1")
    return int(value)


def configure_openmp_env(env: dict | None = None) -> None:
    """Set ``GOMP_SPINCOUNT`` in ``env`` (default ``os.environ``) unless the user chose a
    wait policy already; with ``NBLIB_THREADS`` set, ``OMP_NUM_THREADS`` too, so torch
    starts with that many threads. Effective for libgomp loaded after this call (and in
    children)."""
    env = os.environ if env is None else env
    if "OMP_WAIT_POLICY" not in env and "GOMP_SPINCOUNT" not in env:
        env["GOMP_SPINCOUNT"] = SPIN_COUNT
    pinned = pinned_threads(env)
    if pinned is not None:
        env["OMP_NUM_THREADS"] = str(pinned)


def _usable_cores() -> list[int] | None:
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None


def _core_ticks(cores: list[int]) -> list[tuple[int, int]]:
    """(idle + iowait, all) clock ticks of each core since boot, from /proc/stat."""
    rows = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *vals = line.split()
        if name.startswith("cpu") and name[3:].isdigit():
            rows[int(name[3:])] = [int(v) for v in vals[:8]]
    return [(rows[c][3] + rows[c][4], sum(rows[c])) for c in cores]


def idle_cores(probe: float = 0.25) -> float | None:
    """How many of the cores this process may use were idle over the next ``probe``
    seconds (from /proc/stat; the 1-minute load average lags and counts a job that just
    ended). None where /proc/stat or CPU affinity is unavailable."""
    cores = _usable_cores()
    if not cores:
        return None
    try:
        before = _core_ticks(cores)
        time.sleep(probe)
        after = _core_ticks(cores)
    except (OSError, KeyError, ValueError, IndexError):
        return None
    return sum(
        (i1 - i0) / max(t1 - t0, 1) for (i0, t0), (i1, t1) in zip(before, after, strict=True)
    )


def fixed_threads(limit: int = 4) -> int:
    """A thread count that does not depend on what else runs: ``NBLIB_THREADS`` when set,
    else the cores this process may use (its affinity: a SLURM job's allocation), at most
    ``limit``. A resumable run trains with it throughout, so a run and its resumption
    reduce in the same order and end bit-identical (the idle-core count of
    :func:`torch_threads` moves with the load, and so would the last digits)."""
    pinned = pinned_threads()
    if pinned is not None:
        return pinned
    cores = _usable_cores()
    return max(1, min(limit, len(cores) if cores else os.cpu_count() or 1))


def torch_threads(limit: int = 4) -> int:
    """Torch CPU threads for a training run: ``NBLIB_THREADS`` when set, else the idle cores
    (1..``limit``), probed at most every 30 s; all usable cores (up to ``limit``) when they
    cannot be measured."""
    global _last_probe
    pinned = pinned_threads()
    if pinned is not None:
        return pinned
    now = time.monotonic()
    if _last_probe is not None and _last_probe[1] == limit and now - _last_probe[0] < _PROBE_TTL:
        return _last_probe[2]
    idle = idle_cores()
    if idle is None:
        cores = _usable_cores()
        threads = max(1, min(limit, len(cores) if cores else os.cpu_count() or 1))
    else:
        threads = max(1, min(limit, round(idle)))
    _last_probe = (now, limit, threads)
    return threads


class ThreadGovernor:
    """Keeps torch's thread count at the cores other processes leave free during a long
    run: every ``every`` seconds (checked cheaply at each :meth:`step`) it compares the CPU
    time all usable cores spent busy with this process's own, so another job starting
    mid-run drops the run to 1 thread within seconds, and its end brings the threads back.

    ``sample`` (for tests) returns (busy seconds of all usable cores, this process's CPU
    seconds); the default reads /proc/stat and ``os.times``. Inert where they are missing.
    """

    def __init__(self, limit: int = 4, every: float = 2.0, sample=None, clock=time.monotonic):
        self.limit, self.every, self.clock = limit, every, clock
        cores = _usable_cores()
        self.n_cores = len(cores) if cores else 0
        self.sample = sample if sample is not None else self._sample
        self.changes: list[tuple[float, int]] = []  # (seconds since start, threads)
        self._start = self._t0 = clock()
        try:
            self._s0 = self.sample()
        except (OSError, KeyError, ValueError, IndexError):
            self._s0 = None  # no /proc: never adjusts

    def _sample(self) -> tuple[float, float]:
        ticks = _core_ticks(_usable_cores())
        busy = sum(total - idle for idle, total in ticks) / os.sysconf("SC_CLK_TCK")
        own = os.times()
        return busy, own.user + own.system

    def step(self) -> int | None:
        """Adjust the threads if a check is due; returns the new count when it changed."""
        import torch

        now = self.clock()
        if self._s0 is None or not self.n_cores or now - self._t0 < self.every:
            return None
        try:
            busy, own = self.sample()
        except (OSError, KeyError, ValueError, IndexError):
            return None
        others = max(0.0, (busy - self._s0[0]) - (own - self._s0[1])) / (now - self._t0)
        self._t0, self._s0 = now, (busy, own)
        target = max(1, min(self.limit, round(self.n_cores - others)))
        if target == torch.get_num_threads():
            return None
        torch.set_num_threads(target)
        self.changes.append((round(now - self._start, 1), target))
        return target


def set_thread_scheduling(policy: int, priority: int = 0) -> None:
    """The calling thread's scheduling, set through ``pthread_setschedparam``. glibc keeps
    its own record of a thread's policy, which ``pthread_getschedparam`` returns and
    threads started later copy; only this call updates it along with the kernel's
    (``os.sched_setscheduler`` changes the kernel's alone, and libzmq, which re-applies
    the record to its I/O threads, then started them real-time)."""
    import ctypes

    libc = ctypes.CDLL(None)
    libc.pthread_self.restype = ctypes.c_ulong
    libc.pthread_setschedparam.argtypes = [ctypes.c_ulong, ctypes.c_int, ctypes.c_void_p]
    err = libc.pthread_setschedparam(
        libc.pthread_self(), policy, ctypes.byref(ctypes.c_int(priority))
    )
    if err:
        raise OSError(err, f"pthread_setschedparam({policy}, {priority}): {os.strerror(err)}")


@contextlib.contextmanager
def scheduling_kept():
    """The calling thread's scheduling policy and priority, restored on exit if changed.

    SVT-AV1 (libsvtav1 4.1, PyAV's wheel), in a process running as root, switches the
    thread that starts an encoder to real-time SCHED_FIFO priority 99 and never switches it
    back (measured: ``os.sched_getscheduler(0)`` is SCHED_FIFO after the first encoded
    frame). Every process and thread that thread starts afterwards inherits it, and a busy
    real-time child then starves the rest of the machine: in CI, after the loader
    benchmark's export, Chromium and Playwright's driver ran real-time at ~94 % CPU each
    and froze pytest, its watchdog threads included.
    """
    if not hasattr(os, "sched_getscheduler"):  # not Linux: nothing to guard
        yield
        return
    policy, param = os.sched_getscheduler(0), os.sched_getparam(0)
    try:
        yield
    finally:
        if (os.sched_getscheduler(0), os.sched_getparam(0)) != (policy, param):
            set_thread_scheduling(policy, param.sched_priority)
