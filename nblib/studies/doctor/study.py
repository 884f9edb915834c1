"""Notebook 06's configuration and what every check reads: the dataset the policy was
trained on (a manifest or a file), the simulator and tasks it is evaluated on, and the
policy itself when one is given (any policy spec, served ones included)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nblib.data.manifest import open_data
from nblib.errors import ParameterError, is_int, require
from nblib.studies import Study, StudyConfig
from nblib.studies.doctor.checks import CHECK_NAMES

SIMULATORS = ("metaworld", "libero")
#: Dataset camera names whose simulator camera is named differently (LIBERO's own files
#: and LeRobot conversions call the wrist camera ``wrist`` / ``eye_in_hand``).
CAMERA_ALIASES = {
    "libero": {"wrist": "robot0_eye_in_hand", "eye_in_hand": "robot0_eye_in_hand"},
    "metaworld": {},
}


@dataclass
class DoctorConfig(StudyConfig):
    data: str = "metaworld_default"  # the training data: a manifest name, a .yaml, an HDF5 file or a LeRobot folder
    policy: str | None = (
        None  # the policy under evaluation (any spec, ws:// and openpi:// included); None skips the policy checks
    )
    sim: str = "metaworld"  # metaworld or libero
    tasks: list[str] | None = None  # Meta-World tasks (None: the dataset's tasks)
    suite: str | None = None  # LIBERO suite (libero_spatial, ..., LIBERO-PRO's *_lan / *_task)
    task_ids: list[int] | None = None  # LIBERO task ids in the suite (None: task 0)
    episodes: int = 2  # closed-loop episodes per task and setting (instruction, chunk checks)
    max_steps: int | None = 60  # per closed-loop episode (None: the simulator's limit)
    replan_values: list[int] = field(
        default_factory=lambda: [1, 4, 8]
    )  # chunk_execution: actions executed per chunk
    results: list[str] = field(
        default_factory=list
    )  # result files whose coverage to check (any format nblib results reads)
    camera_map: dict = field(
        default_factory=dict
    )  # dataset camera -> simulator camera, where the names differ
    mapping: str | None = None  # key mapping of the data (None: the manifest's / the format's)
    checks: list[str] = field(default_factory=lambda: list(CHECK_NAMES))  # which checks to run
    policy_kwargs: dict = field(default_factory=dict)  # your policy's factory's keyword arguments
    seed: int = 0  # closed-loop layouts and sampling

    def __post_init__(self):
        own = "DoctorConfig"
        require(
            isinstance(self.data, str) and self.data,
            own,
            "data",
            self.data,
            "a manifest name or a path",
        )
        p = self.policy
        require(p is None or (isinstance(p, str) and p), own, "policy", p, "None or a policy spec")
        require(self.sim in SIMULATORS, own, "sim", self.sim, f"one of {list(SIMULATORS)}")
        t = self.tasks
        ok = t is None or (isinstance(t, list) and all(isinstance(x, str) for x in t) and t)
        require(ok, own, "tasks", t, "None or a non-empty list of task names")
        s = self.suite
        require(s is None or isinstance(s, str), own, "suite", s, "None or a LIBERO suite name")
        ids = self.task_ids
        ok = ids is None or (
            isinstance(ids, list) and ids and all(is_int(i) and i >= 0 for i in ids)
        )
        require(ok, own, "task_ids", ids, "None or a non-empty list of ints >= 0")
        if self.sim == "libero" and self.tasks is not None:
            raise ParameterError(f"{own}.tasks: LIBERO tasks are chosen with suite and task_ids")
        if self.sim == "metaworld" and (self.suite is not None or self.task_ids is not None):
            raise ParameterError(f"{own}.suite / task_ids are LIBERO's; Meta-World uses tasks")
        e = self.episodes
        require(is_int(e) and e >= 1, own, "episodes", e, "an int >= 1")
        m = self.max_steps
        require(m is None or (is_int(m) and m >= 1), own, "max_steps", m, "None or an int >= 1")
        r = self.replan_values
        ok = isinstance(r, list) and r and all(is_int(v) and v >= 1 for v in r)
        require(ok, own, "replan_values", r, "a non-empty list of ints >= 1")
        ok = isinstance(self.results, list) and all(isinstance(x, str) for x in self.results)
        require(ok, own, "results", self.results, "a list of result file paths")
        cm = self.camera_map
        ok = isinstance(cm, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in cm.items()
        )
        require(ok, own, "camera_map", cm, "a mapping of dataset camera -> simulator camera")
        c = self.checks
        ok = isinstance(c, list) and c and all(x in CHECK_NAMES for x in c)
        require(ok, own, "checks", c, f"a non-empty list of {list(CHECK_NAMES)}")
        pk = self.policy_kwargs
        require(isinstance(pk, dict), own, "policy_kwargs", pk, "a mapping such as {width: 64}")
        require(is_int(self.seed), own, "seed", self.seed, "an int")


@dataclass(frozen=True)
class DoctorStudy(Study):
    store: Any  # the training data's store (nblib.data.store.StoreBase)
    manifest: Any  # its nblib.data.manifest.Manifest, None for a plain file
    policy: Any  # the policy under evaluation (None without config.policy)

    def sim_camera(self, camera: str) -> str:
        """The simulator's name of the dataset's camera ``camera``."""
        config = self.config
        return config.camera_map.get(camera, CAMERA_ALIASES[config.sim].get(camera, camera))

    def eval_config(self, **overrides):
        """The :class:`nblib.eval.rollout.EvalConfig` of the doctor's closed-loop episodes
        (the config's simulator, tasks and policy), with ``overrides``."""
        from nblib.eval.rollout import EvalConfig

        c = self.config
        base: dict = dict(
            sim=c.sim,
            episodes=c.episodes,
            seed=c.seed,
            max_steps=c.max_steps,
            policy=c.policy or "zero",
            policy_kwargs=c.policy_kwargs,
            # the policy's data (a plug-in spec is told its statistics and cameras)
            manifest=self.manifest.name if self.manifest is not None else c.data,
        )
        if c.sim == "libero":
            base |= dict(suite=c.suite or "libero_spatial", task_ids=c.task_ids or [0])
        else:
            base |= dict(tasks=c.tasks or sorted(self.store.tasks()))
        return EvalConfig(**(base | overrides))


def prepare(config: DoctorConfig) -> DoctorStudy:
    """Open the data and build the policy (a served one is connected to once, here)."""
    store, manifest = open_data(config.data, config.mapping)
    policy = None
    study = DoctorStudy(config, store, manifest, None)
    try:
        evaluation = study.eval_config()  # the tasks, suite and task ids checked before any check
    except BaseException:
        store.close()
        raise
    if config.policy is not None:
        from nblib.eval.rollout import build_policy

        policy = build_policy(evaluation)
    return DoctorStudy(config, store, manifest, policy)


def close(study: DoctorStudy) -> None:
    """Close the data and a served policy's connection."""
    if study.policy is not None and hasattr(study.policy, "close"):
        study.policy.close()
    study.store.close()
