"""LeRobot evaluation results: ``eval_info.json``.

Both come from ``src/lerobot/scripts/lerobot_eval.py`` (``lerobot/scripts/eval.py`` before
LeRobot 0.4). Shapes, as that source writes them:

``eval_info.json`` of a multi-task evaluation (``eval_policy_all``: LIBERO and every env
since LeRobot added LIBERO in September 2025)::

    {"per_task": [{"task_group": "libero_spatial", "task_id": 0,
                   "metrics": {"sum_rewards": [1.0, ...], "max_rewards": [...],
                               "successes": [true, false, ...], "video_paths": [...]}}, ...],
     "per_group": {"libero_spatial": {"avg_sum_reward": .., "pc_success": 72.0,
                                      "n_episodes": 100, ...}},
     "overall": {"pc_success": 80.75, "n_episodes": 400, "eval_s": .., ...}}

  ``task_group`` is the suite (LeRobot's LIBERO env names its groups after the suites);
  ``successes[i]`` is episode ``i`` of that task. No task text is written, so a task is
  ``task <task_id>`` unless an item carries a description (``task_description``, ``task``).

``eval_info.json`` of a single-task evaluation (``eval_policy``, the older script)::

    {"per_episode": [{"episode_ix": 0, "sum_reward": .., "max_reward": .., "success": true,
                      "seed": 1000}, ...],
     "aggregated": {"avg_sum_reward": .., "pc_success": 50.0, "eval_s": .., "eval_ep_s": ..}}

  It names neither suite nor task: the suite comes from ``suite=`` (or a wrapping key, below)
  and stands in for the task. Items that do carry ``task_group`` / ``task_id`` are grouped
  by them.

Users often keep several evaluations in one file, each under its own key
(``{"libero_spatial": {...}}``, ``{"eval_results_400": {...}}``): every top-level value that
is itself an eval_info is read, and a key that is a LIBERO suite name supplies the suite
when the items do not.

Levels are read in the order ``per_episode`` → ``per_task`` → ``per_group`` →
``overall`` / ``aggregated``; the first one present gives the episodes and every level
below it is checked against them (counts and ``pc_success``), so a file that contradicts
itself is an error naming both numbers. Aggregates alone (k of n per group, or overall)
give n rows with ``episode`` missing and the task :data:`ALL_TASKS`; ``aggregated`` alone
has no episode count and cannot be read.

The printed form of the same metrics is read by :mod:`~nblib.eval.results.lerobot_stdout`.
"""

from __future__ import annotations

import math

from nblib.errors import DataError, is_int
from nblib.eval.results.schema import (
    SUITES,
    Episode,
    base_suite,
    default_run_name,
    normalize_suite,
    normalize_task,
    resolve_suite,
    suite_perturbation,
)

# The task of rows that only an aggregate (k of n over a whole group) gives.
ALL_TASKS = "all tasks"

LEVELS = ("per_episode", "per_task", "per_group", "overall", "aggregated")
# Item keys a fork may use for the task's text (LeRobot itself writes none).
_DESCRIPTION_KEYS = ("task_description", "task", "instruction", "language_instruction")

# ---------------------------------------------------------------------------- eval_info.json


def looks_like_eval_info(obj) -> bool:
    """Whether parsed JSON is a LeRobot ``eval_info.json`` (possibly one level nested)."""
    if _is_info(obj):
        return True
    return isinstance(obj, dict) and any(_is_info(value) for value in obj.values())


def parse_eval_info(
    obj, source: str, suite: str | None = None, run: str | None = None
) -> list[Episode]:
    """Episodes of a parsed ``eval_info.json`` (see the module docstring for the levels)."""
    run = run or default_run_name(source)

    def fail(path: str, message: str) -> DataError:
        return DataError(f"{source}: {path}: {message}")

    if _is_info(obj):
        return parse_info(obj, "", None, fail, source, suite, run)
    if isinstance(obj, dict):
        wrapped = [(key, value) for key, value in obj.items() if _is_info(value)]
        if wrapped:
            episodes: list[Episode] = []
            for key, value in wrapped:
                hint = _suite_key(key)
                episodes += parse_info(value, f"{key}.", hint, fail, source, suite, run)
            return episodes
    raise DataError(
        f"{source}: not a LeRobot eval_info.json: expected per_episode, per_task, per_group "
        "or overall at the top level or one level down"
    )


def _is_info(obj) -> bool:
    if not isinstance(obj, dict):
        return False
    per_episode, per_task = obj.get("per_episode"), obj.get("per_task")
    if isinstance(per_episode, list) and per_episode and isinstance(per_episode[0], dict):
        if {"success", "episode_ix"} & per_episode[0].keys():
            return True
    if isinstance(per_task, list) and per_task and isinstance(per_task[0], dict):
        if {"metrics", "task_group"} & per_task[0].keys():
            return True
    per_group = obj.get("per_group")
    if isinstance(per_group, dict) and any(_is_aggregate(v) for v in per_group.values()):
        return True
    return _is_aggregate(obj.get("overall")) or _is_aggregate(obj.get("aggregated"))


def _is_aggregate(value) -> bool:
    return isinstance(value, dict) and "pc_success" in value


def _suite_key(key) -> str | None:
    """A wrapping key that names a LIBERO suite (``libero_spatial``, ``LIBERO-Goal``)."""
    name = normalize_suite(key)
    return name if base_suite(name) in SUITES else None


def parse_info(info, prefix, hint, fail, source, suite, run) -> list[Episode]:
    """One eval_info dict; ``prefix`` is its JSON path, ``hint`` the suite its key names."""
    suites: dict[str | None, str] = {}

    def suite_of(found) -> str:
        found = found if isinstance(found, str) and found.strip() else hint
        if found not in suites:
            suites[found] = resolve_suite(found, suite, source)
        return suites[found]

    def path(rest: str) -> str:
        return prefix + rest

    def row(name, success, task, **kw) -> Episode:
        return Episode(
            run=run,
            suite=name,
            task=task,
            success=success,
            perturbation=suite_perturbation(name),
            source=source,
            **kw,
        )

    if isinstance(info.get("per_episode"), list) and info["per_episode"]:
        groups = _per_episode(info["per_episode"], path, fail, suite_of)
        episodes = [
            row(name, ok, task, episode=ix, seed=seed, task_id=tid)
            for (name, task, tid), items in groups.items()
            for ix, ok, seed in items
        ]
        counts = _counts(episodes)
        _check_levels(info, counts, "per_episode", path, fail, suite_of)
        return episodes
    if isinstance(info.get("per_task"), list) and info["per_task"]:
        tasks = _per_task(info["per_task"], path, fail, suite_of)
        episodes = [
            row(name, ok, task, episode=i, task_id=tid)
            for (name, task, tid), successes in tasks.items()
            for i, ok in enumerate(successes)
        ]
        _check_levels(info, _counts(episodes), "per_task", path, fail, suite_of)
        return episodes
    if isinstance(info.get("per_group"), dict) and info["per_group"]:
        counts = {}
        for group, aggregate in info["per_group"].items():
            where = path(f"per_group.{group}")
            counts[suite_of(group)] = _aggregate_count(aggregate, where, fail)
        episodes = [
            row(name, i < k, ALL_TASKS) for name, (k, n) in counts.items() for i in range(n)
        ]
        _check_overall(info, counts, "per_group", path, fail)
        return episodes
    for key in ("overall", "aggregated"):
        if _is_aggregate(info.get(key)):
            k, n = _aggregate_count(info[key], path(key), fail)
            name = suite_of(None)
            return [row(name, i < k, ALL_TASKS) for i in range(n)]
    raise fail(prefix.rstrip(".") or "<top level>", "holds no episodes, tasks or aggregates")


def _per_episode(items, path, fail, suite_of):
    """per_episode items → {(suite, task, task_id): [(episode, success, seed), ...]}, each
    task's episodes sorted by ``episode_ix``."""
    groups: dict[tuple, list] = {}
    seen: dict[tuple, str] = {}
    for i, item in enumerate(items):
        where = path(f"per_episode[{i}]")
        if not isinstance(item, dict):
            raise fail(where, f"an episode must be an object, not {type(item).__name__}")
        success = item.get("success")
        if not isinstance(success, bool):
            raise fail(f"{where}.success", f"must be true or false, not {success!r}")
        ix = item.get("episode_ix", i)
        if not is_int(ix) or ix < 0:
            raise fail(f"{where}.episode_ix", f"must be a whole number >= 0, not {ix!r}")
        seed = item.get("seed")
        if seed is not None and not is_int(seed):
            raise fail(f"{where}.seed", f"must be a whole number or null, not {seed!r}")
        name = suite_of(item.get("task_group"))
        tid = _task_id(item, f"{where}.task_id", fail)
        key = (name, _task_name(item, tid, name), tid)
        if (key, ix) in seen:
            raise fail(where, f"repeats episode_ix {ix} of {seen[(key, ix)]} ({key[1]!r})")
        seen[(key, ix)] = where
        groups.setdefault(key, []).append((ix, success, seed))
    return {key: sorted(values) for key, values in groups.items()}


def _per_task(items, path, fail, suite_of):
    """per_task items → {(suite, task, task_id): [success of episode 0, 1, ...]}."""
    tasks: dict[tuple, list[bool]] = {}
    seen: dict[tuple, str] = {}
    for i, item in enumerate(items):
        where = path(f"per_task[{i}]")
        if not isinstance(item, dict):
            raise fail(where, f"a task must be an object, not {type(item).__name__}")
        metrics = item.get("metrics")
        if not isinstance(metrics, dict):
            raise fail(f"{where}.metrics", "missing: each task needs metrics.successes")
        successes = metrics.get("successes")
        if not isinstance(successes, list):
            raise fail(
                f"{where}.metrics.successes",
                "missing: each task needs a list of true/false, one per episode",
            )
        for j, value in enumerate(successes):
            if not isinstance(value, bool):
                raise fail(
                    f"{where}.metrics.successes[{j}]", f"must be true or false, not {value!r}"
                )
        for other in ("sum_rewards", "max_rewards"):
            values = metrics.get(other)
            if isinstance(values, list) and len(values) != len(successes):
                raise fail(
                    f"{where}.metrics.{other}",
                    f"has {len(values)} entries but successes has {len(successes)}",
                )
        name = suite_of(item.get("task_group"))
        tid = _task_id(item, f"{where}.task_id", fail)
        key = (name, _task_name(item, tid, name), tid)
        if key in seen:
            raise fail(
                where, f"repeats {name} {key[1]!r} of {seen[key]}; its episodes would count twice"
            )
        seen[key] = where
        tasks[key] = list(successes)
    return tasks


def _task_id(item, where, fail) -> int | None:
    tid = item.get("task_id")
    if tid is not None and (not is_int(tid) or tid < 0):
        raise fail(where, f"must be a whole number >= 0, not {tid!r}")
    return tid


def _task_name(item, task_id, suite) -> str:
    for key in _DESCRIPTION_KEYS:
        text = item.get(key)
        if isinstance(text, str) and text.strip():
            return normalize_task(text)
    # A single-task file names no task; its suite (the env's task) stands in for it.
    return f"task {task_id}" if task_id is not None else suite


def _counts(episodes) -> dict[str, tuple[int, int]]:
    """{suite: (successes, episodes)}."""
    counts: dict[str, tuple[int, int]] = {}
    for e in episodes:
        k, n = counts.get(e.suite, (0, 0))
        counts[e.suite] = (k + e.success, n + 1)
    return counts


def _aggregate_count(aggregate, where, fail) -> tuple[int, int]:
    """(k, n) of an aggregate: ``n_episodes`` and ``pc_success`` (a percentage of n)."""
    if not isinstance(aggregate, dict):
        raise fail(where, f"must be an object with pc_success and n_episodes, not {aggregate!r}")
    n = aggregate.get("n_episodes")
    if n is None:
        raise fail(
            f"{where}.n_episodes",
            "missing: a success percentage without an episode count gives no episodes "
            "(LeRobot's single-task eval writes per_episode next to it; read that file whole)",
        )
    if not is_int(n) or n < 0:
        raise fail(f"{where}.n_episodes", f"must be a whole number >= 0, not {n!r}")
    pc = _percent(aggregate.get("pc_success"), f"{where}.pc_success", fail)
    if n == 0:
        return 0, 0
    if pc is None:
        raise fail(f"{where}.pc_success", f"missing or nan for {n} episodes")
    k = pc * n / 100
    if abs(k - round(k)) > 1e-6 * n or not 0 <= round(k) <= n:
        raise fail(
            f"{where}.pc_success", f"{pc} % of {n} episodes is not a whole number of successes"
        )
    return round(k), n


def _percent(value, where, fail) -> float | None:
    """``pc_success`` as a float; None when missing or nan (LeRobot's empty group)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise fail(where, f"must be a number, not {value!r}")
    return None if math.isnan(value) else float(value)


def _check_levels(info, counts, level, path, fail, suite_of) -> None:
    """Check per_group / overall / aggregated against the episodes ``level`` gave."""
    per_group = info.get("per_group")
    if isinstance(per_group, dict):
        for group, aggregate in per_group.items():
            name = suite_of(group)
            k, n = counts.get(name, (0, 0))
            _check_one(k, n, f"{level} ({name})", aggregate, path(f"per_group.{group}"), fail)
    k = sum(c[0] for c in counts.values())
    n = sum(c[1] for c in counts.values())
    for key in ("overall", "aggregated"):
        if isinstance(info.get(key), dict):
            _check_one(k, n, level, info[key], path(key), fail)


def _check_overall(info, counts, level, path, fail) -> None:
    k = sum(c[0] for c in counts.values())
    n = sum(c[1] for c in counts.values())
    if isinstance(info.get("overall"), dict):
        _check_one(k, n, level, info["overall"], path("overall"), fail)


def _check_one(k, n, what, aggregate, where, fail) -> None:
    if not isinstance(aggregate, dict):
        return
    count = aggregate.get("n_episodes")
    if count is not None and count != n:
        raise fail(
            f"{where}.n_episodes",
            f"says {count} episodes but {what} holds {n}; the file contradicts itself",
        )
    pc = _percent(aggregate.get("pc_success"), f"{where}.pc_success", fail)
    if pc is not None and n and abs(pc - 100 * k / n) > 1e-6:
        raise fail(
            f"{where}.pc_success",
            f"says {pc} % but {what} has {k} successes in {n} episodes "
            f"({100 * k / n:.4g} %); the file contradicts itself",
        )
