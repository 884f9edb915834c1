"""A real single-node SLURM cluster for the batch tests (Debian's slurm-wlm and munge).

Not a test module. :func:`start_cluster` writes a slurm.conf in a temporary folder,
starts munged (when it is not running), slurmctld and slurmd as daemons without systemd,
and waits until the node is idle; :meth:`Cluster.stop` shuts them down. Settings follow
what was found to work on these machines (FACTS.md): SlurmUser root, proctrack/linuxproc,
task/none, no accounting, MailProg /bin/true, a short KillWait; no GPUs configured, so the
tests never ask for one. ``SLURM_CONF`` in os.environ points the client commands (and
submitit) at this cluster while it runs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _missing() -> list[str]:
    return [p for p in ("slurmctld", "slurmd", "sbatch", "munged") if shutil.which(p) is None]


class Cluster:
    def __init__(self, root: Path):
        self.root = root
        self.conf = root / "slurm.conf"
        self.host = socket.gethostname()
        self._previous = os.environ.get("SLURM_CONF")
        self._munged = False

    def _write_conf(self) -> None:
        for folder in ("state", "spool", "logs"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        cpus = os.cpu_count() or 1
        memory = 1024
        lines = [
            "ClusterName=nblib-test",
            f"SlurmctldHost={self.host}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            f"StateSaveLocation={self.root / 'state'}",
            f"SlurmdSpoolDir={self.root / 'spool'}",
            f"SlurmctldPidFile={self.root / 'slurmctld.pid'}",
            f"SlurmdPidFile={self.root / 'slurmd.pid'}",
            f"SlurmctldLogFile={self.root / 'logs' / 'slurmctld.log'}",
            f"SlurmdLogFile={self.root / 'logs' / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "MailProg=/bin/true",
            "KillWait=2",
            # a requeued job waits cred_expire seconds (default 120) before it may start
            # again, and pending jobs are looked at every sched_interval (default 60): the
            # requeue tests would wait minutes for what takes seconds
            "AuthInfo=cred_expire=15",
            "SchedulerParameters=sched_interval=2",
            "ReturnToService=2",
            "SchedulerType=sched/backfill",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            f"NodeName={self.host} CPUs={cpus} RealMemory={memory} State=UNKNOWN",
            f"PartitionName=debug Nodes={self.host} Default=YES MaxTime=INFINITE State=UP",
        ]
        self.conf.write_text("\n".join(lines) + "\n")

    def _run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        env = dict(os.environ, SLURM_CONF=str(self.conf))
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        if check and result.returncode:
            raise RuntimeError(
                f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip()}"
                f"\n{self.logs()}"
            )
        return result

    def logs(self) -> str:
        parts = []
        for name in ("slurmctld.log", "slurmd.log"):
            path = self.root / "logs" / name
            if path.is_file():
                parts.append(f"--- {name}:\n" + "\n".join(path.read_text().splitlines()[-15:]))
        return "\n".join(parts)

    def start(self, timeout: float = 60.0) -> Cluster:
        missing = _missing()
        if missing:
            raise RuntimeError(
                f"SLURM is not installed ({', '.join(missing)} missing): apt-get install "
                f"{' '.join(PACKAGES)} (tools/nb.sh test does when it runs as root)"
            )
        self._write_conf()
        if self._run("pgrep", "-x", "munged", check=False).returncode:
            Path("/run/munge").mkdir(parents=True, exist_ok=True)
            shutil.chown("/run/munge", "munge", "munge")
            self._run("runuser", "-u", "munge", "--", "munged")
            self._munged = True
        self._run("slurmctld", "-f", str(self.conf))
        self._run("slurmd", "-f", str(self.conf))
        os.environ["SLURM_CONF"] = str(self.conf)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self._run("sinfo", "-h", "-o", "%T", check=False).stdout.strip()
            if state.startswith("idle"):
                return self
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"the SLURM node did not become idle in {timeout:.0f} s\n{self.logs()}")

    def stop(self) -> None:
        # end every job first: a job step still finishing when slurmd goes away is orphaned
        # (slurmstepd and srun processes that outlive the cluster)
        self._run("scancel", "--full", "--user", "root", check=False)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            queue = self._run("squeue", "-h", check=False)
            if queue.returncode or not queue.stdout.strip():
                break
            time.sleep(0.5)
        self._run("scontrol", "shutdown", check=False)
        for name in ("slurmd.pid", "slurmctld.pid"):
            pid = self.root / name
            deadline = time.monotonic() + 15
            while pid.exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            # scontrol cannot reach a controller whose munge is gone: end it by its pid,
            # so no daemon (and no job of it) outlives the tests
            if pid.exists():
                with contextlib.suppress(OSError, ValueError):
                    os.kill(int(pid.read_text().split()[0]), signal.SIGKILL)
        if self._munged:
            self._run("pkill", "-x", "munged", check=False)
        if self._previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = self._previous


def start_cluster(root: Path) -> Cluster:
    return Cluster(Path(root)).start()
