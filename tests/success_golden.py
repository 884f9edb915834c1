"""Golden numbers of notebook 05 and of ``nblib results summarize`` / ``baselines``.

Every table the comparison study builds from its bundled example results
(``ComparisonConfig()`` defaults: Boschloo + Holm, 2000 bootstrap draws, seed 0; and the
paired tables once more with Fisher + Benjamini-Hochberg) and the CLI's printed summaries
of the same files, as CSV / JSON / text under ``tests/fixtures/success_golden/``.
``tests/test_success_golden.py`` rebuilds them and compares.

They were written by the statistics code before it moved onto statsmodels / SciPy /
rliable (commit of the fixture folder), then rewritten once for two intended changes:
completeness judged from each log's own plan (the LIBERO-Plus log that ends without a
final block is complete: its ``complete`` column False -> True, one incomplete run fewer)
and the verdict's new reason naming the comparisons where the bootstrap interval and the
corrected test disagree (with the Wilson / BH floats the libraries round differently in
the last bits, < 1e-13), and once more for suite intervals that collapsed (issue 22): a
suite with a task of fewer than 10 episodes, or with every task at 0 % or 100 %, takes
Wilson's interval at the effective episode count instead of the stratified bootstrap,
named in a new ``ci_method`` column (the nine Meta-World runs, 5 episodes per task, e.g.
mw-expert [100, 100] -> [86.7, 100], mw-random [0, 0] -> [0, 13.3]; the interrupted
vla_adapter_spatial_killed, 50 + 8 episodes, [43.25, 80.5] -> [42.3, 76.6]; the
verdict's reasons name that method); and once more when the figures' numbers joined
metrics.json (issue 24): ``study.json`` / ``fisher_bh_study.json`` gained the keys
``suite_rates``, ``perturbed_totals`` and ``differences`` (the corrected intervals the
differences figure draws), every earlier key and the verdict unchanged. Regenerate only
when a change of numbers is intended, and say which numbers moved and why:

    PYTHONPATH=$PWD python tests/success_golden.py
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

import pandas as pd

FOLDER = Path(__file__).parent / "fixtures" / "success_golden"


def study_tables(**config) -> dict[str, pd.DataFrame]:
    """Every table of the comparison study on its bundled examples, by fixture name."""
    from nblib.studies import comparison as c

    study = c.prepare(c.ComparisonConfig(**config))
    paired = c.paired_tables(study)
    per_task, per_suite = paired.per_task, paired.per_suite
    perturbed, totals = c.perturbation_table(study)
    return {
        "runs": c.runs_table(study),
        "tasks": study.tasks,
        "task_matrix": c.task_matrix(study).reset_index(),
        "suites": study.suites,
        "average": study.average,
        "suite_table": c.suite_table(study),
        "paired_per_task": per_task,
        "paired_per_suite": per_suite,
        "baseline_tests": c.baseline_tests(study),
        "sample_sizes": c.sample_sizes(study),
        "perturbation": perturbed,
        "perturbation_totals": totals,
    }, _study_json(c, study, paired)


def _study_json(c, study, paired) -> dict:
    evidence = c.evidence(study, paired)
    verdict = c.verdict(evidence, study.config)
    metrics = c.metrics(evidence)
    metrics.pop("sources")  # absolute paths of this checkout
    return {
        "verdict": {
            "label": verdict.label,
            "reasons": list(verdict.reasons),
            "numbers": verdict.numbers,
        },
        "metrics": metrics,
    }


# Fisher + BH: the other correction's path through the paired tables (Boschloo + Holm is
# the default run)
VARIANTS = {"fisher_bh": {"test": "fisher", "correction": "bh"}}


def cli_outputs() -> dict[str, str]:
    """stdout of the results commands on the bundled example files, by fixture name."""
    from nblib.cli import main
    from nblib.studies.comparison import examples_dir

    commands = {
        "summarize_table": ["results", "summarize", str(examples_dir())],
        "summarize_csv": ["results", "summarize", str(examples_dir()), "--format", "csv"],
    }
    for benchmark in ("libero", "libero_plus", "libero_pro"):
        for fmt in ("table", "csv"):
            commands[f"baselines_{benchmark}_{fmt}"] = [
                "results",
                "baselines",
                "--benchmark",
                benchmark,
                "--format",
                fmt,
            ]
    out = {}
    for name, argv in commands.items():
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            code = main(argv)
        if code != 0:
            raise RuntimeError(f"nblib {' '.join(argv)} exited {code}")
        out[name] = buffer.getvalue()
    return out


def build() -> dict[str, object]:
    """file name -> content: DataFrames (CSV), dicts (JSON), strings (text)."""
    files: dict[str, object] = {}
    tables, extra = study_tables()
    files |= {f"{name}.csv": frame for name, frame in tables.items()}
    files["study.json"] = extra
    for variant, config in VARIANTS.items():
        tables, extra = study_tables(**config)
        for name in ("paired_per_task", "paired_per_suite"):
            files[f"{variant}_{name}.csv"] = tables[name]
        files[f"{variant}_study.json"] = extra
    files |= {f"cli_{name}.txt": text for name, text in cli_outputs().items()}
    return files


def to_text(content) -> str:
    """A file's text; CSV keeps every float to the last bit (repr round-trips)."""
    if isinstance(content, pd.DataFrame):
        return content.to_csv(index=False)
    if isinstance(content, dict):
        return json.dumps(content, indent=1, sort_keys=True, allow_nan=True) + "\n"
    return content


def main() -> int:
    FOLDER.mkdir(parents=True, exist_ok=True)
    for name, content in build().items():
        (FOLDER / name).write_text(to_text(content))
        print(FOLDER / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
