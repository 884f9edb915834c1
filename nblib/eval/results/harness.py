"""allenai vla-evaluation-harness result JSON (``vla-eval run`` / ``vla-eval merge``).

Shapes, as ``src/vla_eval/results/collector.py`` and ``merge.py`` write them::

    {"benchmark": "LIBEROBenchmark_libero_goal", "mode": "sync", "harness_version": "..",
     "tasks": [{"task": "open the middle drawer of the cabinet",
                "episodes": [{"episode_id": 0, "metrics": {"success": true},
                              "steps": 111, "elapsed_sec": 12.7}, ...],
                "num_episodes": 50, "mean_success": 0.98, "avg_steps": 79.8}, ...],
     "mean_success": 0.982, "metric_keys": {"success": "mean"}, "seed": 7,
     "config": {"benchmark": "vla_eval.benchmarks.libero.benchmark:LIBEROBenchmark",
                "subname": "libero_goal", "episodes_per_task": 50,
                "params": {"suite": "libero_goal", "seed": 7, ...}},
     "merge_info": {"num_shards": 30, "shards_missing": [], "total_episodes": 500}}

Versions up to 0.0.4 (March 2026) put ``success`` directly on the episode, spell the
episode ``"<task>_ep<N>"``, and give ``success_rate`` per task and ``overall_success_rate``;
both spellings are read. An episode that hit an infrastructure error carries
``failure_reason`` and counts as a failure, as the harness counts it.

- ``task`` is the benchmark's task name (for LIBERO, the language instruction).
- ``episode`` is the harness's episode index, which for LIBERO picks the initial state;
  shards are merged task by task in shard order, so episodes arrive out of order and are
  sorted here. Two episodes with the same index in a task are an error (a shard merged
  twice would otherwise count double).
- ``suite`` is ``config.params.suite`` (with LIBERO-Pro's ``perturbation`` suffix), else
  ``config.subname``, else the ``LIBEROBenchmark_<suite>`` name; a file naming none needs
  ``suite=`` (``--suite``).
- ``seed`` is the run's seed (``seed`` / ``config.params.seed``), the same for every episode.
- ``complete`` is False for every episode of a partial merge (``partial``, or shards
  missing) and for a task with fewer episodes than ``config.episodes_per_task``.

Per-task and overall rates and episode counts are checked against the episodes.
"""

from __future__ import annotations

import math
import re

from nblib.errors import DataError, is_int
from nblib.eval.results.schema import (
    Episode,
    default_run_name,
    normalize_task,
    resolve_suite,
    suite_perturbation,
)

# LIBERO-Pro's perturbation names → the suffix it appends to the suite name.
_PRO_SUFFIX = {
    "swap": "swap",
    "position": "swap",
    "object": "object",
    "lan": "lan",
    "language": "lan",
    "task": "task",
    "env": "env",
    "environment": "env",
}
_OLD_EPISODE_ID = re.compile(r"_ep(\d+)$")
# The rate keys of a task and of the whole file, newest first.
_TASK_RATES = ("mean_success", "success_rate")
_FILE_RATES = ("mean_success", "overall_success_rate")


def looks_like(obj) -> bool:
    """Whether parsed JSON is a vla-evaluation-harness result file."""
    if not _shape(obj):
        return False
    tasks = obj["tasks"]
    return not tasks or (isinstance(tasks[0], dict) and "episodes" in tasks[0])


def _shape(obj) -> bool:
    """The top level of a harness file; its tasks are checked one by one in :func:`parse`."""
    return (
        isinstance(obj, dict)
        and isinstance(obj.get("tasks"), list)
        and bool({"benchmark", "harness_version"} & obj.keys())
    )


def parse(obj, source: str, suite: str | None = None, run: str | None = None) -> list[Episode]:
    """Episodes of a parsed harness result file (see the module docstring)."""
    if not _shape(obj):
        raise DataError(
            f"{source}: not a vla-evaluation-harness result: expected 'benchmark' and a "
            "'tasks' list"
        )
    run = run or default_run_name(source)
    name = resolve_suite(_suite_of(obj), suite, source)
    config = obj.get("config") if isinstance(obj.get("config"), dict) else {}
    params = config.get("params") if isinstance(config.get("params"), dict) else {}
    seed = obj.get("seed") if is_int(obj.get("seed")) else params.get("seed")
    seed = seed if is_int(seed) else None
    merge_info = obj.get("merge_info") if isinstance(obj.get("merge_info"), dict) else {}
    partial = bool(obj.get("partial")) or bool(merge_info.get("shards_missing"))
    expected = config.get("episodes_per_task")
    expected = expected if is_int(expected) else None

    def fail(path: str, message: str) -> DataError:
        return DataError(f"{source}: {path}: {message}")

    episodes: list[Episode] = []
    seen_tasks: dict[str, str] = {}
    total_k = total_n = 0
    for i, task in enumerate(obj["tasks"]):
        where = f"tasks[{i}]"
        if not isinstance(task, dict):
            raise fail(where, f"a task must be an object, not {type(task).__name__}")
        text = task.get("task")
        if not isinstance(text, str) or not text.strip():
            raise fail(f"{where}.task", f"must be the task's name, not {text!r}")
        label = normalize_task(text)
        if label in seen_tasks:
            raise fail(where, f"repeats task {label!r} of {seen_tasks[label]}")
        seen_tasks[label] = where
        rows = _episodes(task.get("episodes"), f"{where}.episodes", fail)
        k, n = sum(ok for _, ok, _ in rows), len(rows)
        _check_rate(task, _TASK_RATES, "num_episodes", k, n, where, fail)
        total_k, total_n = total_k + k, total_n + n
        complete = not partial and (expected is None or n >= expected)
        episodes += [
            Episode(
                run=run,
                suite=name,
                task=label,
                success=ok,
                episode=index,
                steps=steps,
                perturbation=suite_perturbation(name),
                seed=seed,
                complete=complete,
                source=source,
            )
            for index, ok, steps in rows
        ]
    _check_rate(obj, _FILE_RATES, "num_episodes_total", total_k, total_n, "", fail)
    if merge_info:
        _check_rate(merge_info, (), "total_episodes", total_k, total_n, "merge_info", fail)
    return episodes


def _suite_of(obj) -> str | None:
    """The suite the file states, or None."""
    config = obj.get("config") if isinstance(obj.get("config"), dict) else {}
    params = config.get("params") if isinstance(config.get("params"), dict) else {}
    suite = params.get("suite")
    if isinstance(suite, str) and suite.strip():
        perturbation = params.get("perturbation")
        suffix = _PRO_SUFFIX.get(str(perturbation).strip().lower()) if perturbation else None
        if suffix and not suite.endswith(f"_{suffix}"):
            suite = f"{suite}_{suffix}"
        return suite
    subname = config.get("subname")
    if isinstance(subname, str) and subname.strip():
        return subname
    # resolved_name() is "<Class>_<subname>"; only LIBERO's subnames are suites.
    match = re.match(r"LIBERO\w*?Benchmark_(\w+)$", str(obj.get("benchmark", "")))
    return match.group(1) if match else None


def _episodes(items, where, fail) -> list[tuple[int, bool, int | None]]:
    """A task's episodes → [(episode index, success, steps)] sorted by index."""
    if not isinstance(items, list):
        raise fail(where, "missing: each task needs a list of episodes")
    rows, seen = [], {}
    for j, item in enumerate(items):
        at = f"{where}[{j}]"
        if not isinstance(item, dict):
            raise fail(at, f"an episode must be an object, not {type(item).__name__}")
        metrics = item.get("metrics")
        if isinstance(metrics, dict):
            success, key = metrics.get("success"), f"{at}.metrics.success"
        else:
            success, key = item.get("success"), f"{at}.success"
        if not isinstance(success, bool):
            raise fail(key, f"must be true or false, not {success!r}")
        index = _episode_index(item.get("episode_id"))
        if index is None:
            raise fail(
                f"{at}.episode_id",
                f"must be a whole number >= 0 or '<task>_ep<N>', not {item.get('episode_id')!r}",
            )
        if index in seen:
            raise fail(
                at,
                f"repeats episode {index} of {seen[index]}; a shard merged twice would "
                "count it double",
            )
        seen[index] = at
        steps = item.get("steps")
        if steps is not None and (not is_int(steps) or steps < 0):
            raise fail(f"{at}.steps", f"must be a whole number >= 0, not {steps!r}")
        rows.append((index, success, steps))
    return sorted(rows)


def _episode_index(value) -> int | None:
    if is_int(value):
        return value if value >= 0 else None
    if isinstance(value, str):
        match = _OLD_EPISODE_ID.search(value)
        if match:
            return int(match.group(1))
    return None


def _check_rate(record, rate_keys, count_key, k, n, where, fail) -> None:
    """The record's episode count and success rate (a fraction, rounded to 4 places by
    newer harness versions) must match the k successes in n episodes it holds."""
    prefix = f"{where}." if where else ""
    count = record.get(count_key)
    if count is not None and count != n:
        raise fail(
            f"{prefix}{count_key}",
            f"says {count} episodes but {n} are listed; the file contradicts itself",
        )
    for key in rate_keys:
        rate = record.get(key)
        if rate is None:
            continue
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or math.isnan(rate):
            raise fail(f"{prefix}{key}", f"must be a number, not {rate!r}")
        if n and abs(rate - k / n) > 5e-5 + 1e-9:
            raise fail(
                f"{prefix}{key}",
                f"says {rate} but the episodes hold {k} successes in {n} ({k / n:.4g}); "
                "the file contradicts itself",
            )
        return
