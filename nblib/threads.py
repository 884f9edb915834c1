"""CPU threads for torch work, set in one place for notebooks, tests and benchmarks.

On a shared 2-core machine a torch job with 2 OpenMP threads collapses as soon as another
job takes a core: each parallel region waits for the thread whose core is busy while its
sibling spins. Measured on this project's machine (ms per training step: the overfit policy
at batch 32 and the latent-action model at batch 32, 3 runs each; "busy" = the other core
runs a 2-thread torch training loop; ``nblib bench threads`` measures it again):

=======================  =============  ==============  =============  ==============
setting                  policy, idle   latent, idle    policy, busy   latent, busy
=======================  =============  ==============  =============  ==============
2 threads, defaults      17-23          98-107          92-171         307-592
2 threads, PASSIVE       37-43          110-127         35-53          267-269
2 threads, spin 1000     20-24          98-107          52-71          272-295
1 thread                 20-22          160-170         29-32          225-233
=======================  =============  ==============  =============  ==============

(Single runs with defaults under load went up to 424 ms and 2,608 ms: 20-28x.) So two
settings, both applied here:

* ``GOMP_SPINCOUNT=1000`` (unless the user set it or ``OMP_WAIT_POLICY``): threads spin
  briefly, then sleep. It costs nothing on an idle machine (``PASSIVE`` doubles the policy
  step there) and bounds the damage when a job starts on the other core mid-run. It must
  be in the environment before torch loads libgomp, so :func:`configure_openmp_env` runs
  when ``nblib`` is imported (notebooks import it before torch) and every process nblib
  starts (kernels, workers) inherits it.
* :func:`torch_threads`: as many torch threads as cores are idle when a training run starts
  (1 when another job holds a core: the fastest setting then), used by
  :func:`nblib.train.train` for every training run of the suite.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

#: libgomp's busy-wait before a thread sleeps (its default is 300,000 spins; 0 = PASSIVE).
SPIN_COUNT = "1000"
# How long a probe of idle cores stays valid: tests start hundreds of short runs.
_PROBE_TTL = 30.0
_last_probe: tuple[float, int, int] | None = None  # (time, limit, threads)


def configure_openmp_env(env: dict | None = None) -> None:
    """Set ``GOMP_SPINCOUNT`` in ``env`` (default ``os.environ``) unless the user chose a
    wait policy already. Effective for libgomp loaded after this call (and in children)."""
    env = os.environ if env is None else env
    if "OMP_WAIT_POLICY" not in env and "GOMP_SPINCOUNT" not in env:
        env["GOMP_SPINCOUNT"] = SPIN_COUNT


def idle_cores(probe: float = 0.25) -> float | None:
    """How many of the cores this process may use were idle over the next ``probe``
    seconds (from /proc/stat; the 1-minute load average lags and counts a job that just
    ended). None where /proc/stat or CPU affinity is unavailable."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    if not cores:
        return None

    def ticks() -> list[tuple[int, int]]:
        rows = {}
        for line in Path("/proc/stat").read_text().splitlines():
            name, *vals = line.split()
            if name.startswith("cpu") and name[3:].isdigit():
                rows[int(name[3:])] = [int(v) for v in vals[:8]]
        return [(rows[c][3] + rows[c][4], sum(rows[c])) for c in cores]  # idle+iowait, all

    try:
        before = ticks()
        time.sleep(probe)
        after = ticks()
    except (OSError, KeyError, ValueError, IndexError):
        return None
    return sum(
        (i1 - i0) / max(t1 - t0, 1) for (i0, t0), (i1, t1) in zip(before, after, strict=True)
    )


def torch_threads(limit: int = 4) -> int:
    """Torch CPU threads for a training run: the idle cores (1..``limit``), probed at most
    every 30 s; all usable cores (up to ``limit``) when they cannot be measured."""
    global _last_probe
    now = time.monotonic()
    if _last_probe is not None and _last_probe[1] == limit and now - _last_probe[0] < _PROBE_TTL:
        return _last_probe[2]
    idle = idle_cores()
    if idle is None:
        usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        threads = max(1, min(limit, usable or os.cpu_count() or 1))
    else:
        threads = max(1, min(limit, round(idle)))
    _last_probe = (now, limit, threads)
    return threads
