"""Scale-out of closed-loop evaluation: ``nblib eval --shard I/N`` runs one of N disjoint
slices of a run's (task, episode) list, and :func:`merge_shards` (``nblib results merge``)
joins the shard files back into the run's one results file."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from nblib.errors import ParameterError
from nblib.eval.output import OUTPUT_COLUMNS, read_rows, write_row
from nblib.paths import atomic_write


def parse_shard(shard: str) -> tuple[int, int]:
    """``(index, count)`` of a shard written ``I/N`` (I from 0, as SLURM's
    ``$SLURM_ARRAY_TASK_ID``); a ParameterError naming ``shard`` otherwise."""
    index, _, count = str(shard).partition("/")
    try:
        index, count = int(index), int(count)
    except ValueError:
        index = count = -1
    if count < 1 or not 0 <= index < count:
        raise ParameterError(
            f"EvalConfig.shard={shard!r} is invalid; expected I/N with N >= 1 and I in "
            "0..N-1, e.g. 0/2 and 1/2 for two shards (--shard $SLURM_ARRAY_TASK_ID/2)"
        )
    return index, count


def merge_shards(
    paths: list, out: str | os.PathLike, overwrite: bool = False, expected: list | None = None
) -> dict:
    """Join the shard files of one ``nblib eval --shard I/N`` run into ``out``.

    Refuses two shards holding the same episode (``(run, task, task_id, episode)``) and
    files of different runs. An episode is missing when a task lacks an index below the
    run's largest, or, given ``expected`` (the run's ``(suite, task, task_id, episode)``
    keys, as ``nblib eval --shards`` knows them), when it is not in the files; ``out`` is
    written complete (``complete=True``) only when no episode is missing and every shard
    finished, else incomplete, so a rerun of the missing shard and a new merge complete
    it. Returns ``{"rows", "missing", "complete"}``.
    """
    target = Path(out)
    if target.suffix not in (".csv", ".jsonl"):
        raise ParameterError(f"out={str(target)!r}: expected a .csv or .jsonl file name")
    if target.exists() and not overwrite:
        raise ParameterError(f"out={str(target)!r} exists; pass --overwrite to replace it")
    seen: dict[tuple, Path] = {}
    rows: list[dict] = []
    finished = True
    for path in map(Path, paths):
        if not path.is_file():
            raise ParameterError(f"{path}: no such shard file")
        shard_rows = read_rows(path)
        raw_complete = _all_complete(path)
        finished = finished and raw_complete
        for row in shard_rows:
            key = (row["run"], row["task"], row["task_id"], row["episode"])
            if key in seen:
                raise ParameterError(
                    f"{path} and {seen[key]} both hold run {row['run']!r}, {row['task']!r} "
                    f"episode {row['episode']}: shards must be disjoint (--shard I/N with "
                    "one N and different I)"
                )
            seen[key] = path
            rows.append(row)
    runs = sorted({r["run"] for r in rows})
    if len(runs) > 1:
        raise ParameterError(f"the shards hold {len(runs)} runs {runs}; merge one run at a time")
    episodes = 1 + max((r["episode"] for r in rows), default=-1)
    tasks = dict.fromkeys((r["suite"], r["task"], r["task_id"]) for r in rows)
    present = {(r["suite"], r["task"], r["task_id"], r["episode"]) for r in rows}
    if expected is None:  # the tasks and episode count the files show
        expected = [(*task, i) for task in tasks for i in range(episodes)]
    missing = [f"{key[1]} episode {key[3]}" for key in expected if tuple(key) not in present]
    complete = finished and not missing
    ordered = sorted(
        rows, key=lambda r: (list(tasks).index((r["suite"], r["task"], r["task_id"])), r["episode"])
    )
    with atomic_write(target, "w") as handle:
        if target.suffix == ".csv":
            csv.DictWriter(handle, OUTPUT_COLUMNS, lineterminator="\n").writeheader()
        for row in ordered:
            write_row(handle, row | {"complete": complete}, target.suffix)
    return {"rows": len(rows), "missing": missing, "complete": complete}


def _all_complete(path: Path) -> bool:
    """Whether the shard's run finished (its rows were rewritten with complete=True)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".csv":
        raw = list(csv.DictReader(text.splitlines()))
    else:
        raw = [json.loads(line) for line in text.splitlines() if line.strip()]
    return bool(raw) and all(str(r.get("complete")) in ("True", "true") for r in raw)
