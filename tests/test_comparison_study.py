"""Notebook 05's engine and the `nblib results` commands, on real evaluation outputs."""

import csv
import io
import json
from pathlib import Path

import pandas as pd
import pytest

from nblib.cli import main
from nblib.errors import DataError, ParameterError
from nblib.paths import find_repo_root
from nblib.plots import PALETTES
from nblib.run import report, runner
from nblib.studies import comparison
from nblib.studies.comparison import plots

ROOT = find_repo_root(Path(__file__).parent)
EXAMPLES = ROOT / "data_manifests" / "results"
FIXTURES = Path(__file__).parent / "fixtures" / "eval_results"
PI0 = EXAMPLES / "pi0_libero_goal_harness.json"
SMOLVLA = EXAMPLES / "smolvla_libero_eval_info.json"
KILLED = EXAMPLES / "vla_adapter_spatial_killed.txt"
PLUS = EXAMPLES / "quantvla_fp16_libero_plus_spatial.log"


def verdict_of(study):
    evidence = comparison.evidence(study, comparison.paired_tables(study))
    return comparison.verdict(evidence, study.config)


def test_config_checks_name_the_parameter():
    with pytest.raises(ParameterError, match="ComparisonConfig.test='t'"):
        comparison.ComparisonConfig(test="t")
    with pytest.raises(ParameterError, match="run_labels"):
        comparison.ComparisonConfig(result_files=["a.log"], run_labels=["x", "y"])
    with pytest.raises(ParameterError, match="baseline_benchmark"):
        comparison.ComparisonConfig(baseline_benchmark="calvin")
    with pytest.raises(ParameterError, match="alpha"):
        comparison.ComparisonConfig(alpha=1.5)


def test_unknown_reference_or_policy_is_an_error():
    with pytest.raises(DataError, match="reference_run='nope'"):
        comparison.prepare(
            comparison.ComparisonConfig(result_files=[str(PI0)], reference_run="nope")
        )
    with pytest.raises(DataError, match="baseline_policies"):
        comparison.prepare(
            comparison.ComparisonConfig(result_files=[str(PI0)], baseline_policies=["GPT-9"])
        )


def _study(**kw):
    kw.setdefault("n_boot", 500)
    return comparison.prepare(comparison.ComparisonConfig(**kw))


def test_two_real_runs_paired_by_task_across_tools():
    # pi0 through the vla-evaluation-harness (tasks by instruction), SmolVLA through
    # LeRobot (tasks by index): the LIBERO task table pairs them on libero_goal
    study = _study(result_files=[str(PI0), str(SMOLVLA)], run_labels=["pi0", "smolvla"])
    assert study.runs == ["pi0", "smolvla"] and study.reference is None
    assert comparison.run_pairs(study) == [("smolvla", "pi0")]  # the one pair sharing tasks
    averages = study.average
    assert averages["run"].tolist() == ["smolvla"]  # pi0 ran one suite: no average
    paired = comparison.paired_tables(study)
    per_task, per_suite = paired.per_task, paired.per_suite
    assert len(per_task) == 10 and set(per_task["suite"]) == {"libero_goal"}
    drawer = per_task.set_index("task").loc["open the top drawer and put the bowl inside"]
    assert (drawer.successes_a, drawer.trials_a, drawer.successes_b, drawer.trials_b) == (
        5,
        10,
        48,
        50,
    )
    assert drawer.significant  # 5/10 against 48/50 survives Holm over 10 tasks
    goal = per_suite.set_index("scope").loc["libero_goal"]
    assert goal["diff"] == pytest.approx(87.0 - 98.2, abs=1e-9)
    assert goal.ci_low < goal["diff"] < goal.ci_high < 0
    assert goal.significant and goal.reference == "pi0"
    verdict = verdict_of(study)
    assert verdict.label == "DIFFERENT"
    assert verdict.numbers["significant_comparisons"] == 1


def test_suite_table_puts_runs_beside_published_baselines():
    study = _study(result_files=[str(SMOLVLA)], baseline_policies=["OpenVLA-OFT"])
    table = comparison.suite_table(study)
    runs = table[table.kind == "run"].set_index("suite")
    assert runs.loc["libero_object", "success_rate"] == pytest.approx(99.0)
    assert runs.loc["libero_10", "episodes"] == 100
    published = table[table.kind == "published"].set_index("suite")
    assert published.loc["libero_10", "success_rate"] == 94.5
    # all four suites evaluated: an average beside the published one
    assert runs.loc["average", "success_rate"] == pytest.approx((72 + 99 + 87 + 65) / 4)
    assert runs.loc["average", "episodes"] == 400
    assert published.loc["average", "success_rate"] == 97.1
    tests = comparison.baseline_tests(study).set_index("suite")
    assert tests.loc["libero_10", "significant"]  # 65/100 vs 472/500
    assert not tests.loc["libero_object", "significant"]  # 99/100 vs 492/500
    sizes = comparison.sample_sizes(study).set_index("suite")
    assert sizes.loc["libero_goal", "mdd_pp"] > 5  # 100 episodes cannot see small gains
    # one run and no shared tasks: nothing to test pairwise
    verdict = verdict_of(study)
    assert verdict.label == "INCONCLUSIVE" and "share a task" in str(verdict)


def test_interrupted_and_perturbed_runs_are_kept_apart():
    study = _study(result_files=[str(KILLED), str(PLUS)])
    table = comparison.runs_table(study).set_index("run")
    assert not table.loc["vla_adapter_spatial_killed", "complete"]
    assert table.loc["vla_adapter_spatial_killed", "episodes"] == 58
    # the LIBERO-Plus variants are not part of the suite's standard-protocol rate ...
    suites = study.suites
    assert suites["run"].tolist() == ["vla_adapter_spatial_killed"]
    # ... they are in the perturbation breakdown
    perturbed, totals = comparison.perturbation_table(study)
    rows = perturbed.set_index(["method", "perturbation"])
    assert rows.loc[("quantvla_fp16_libero_plus_spatial", "camera"), "successes"] == 0
    assert set(totals["method"]) == {"quantvla_fp16_libero_plus_spatial"}
    assert "interrupted" in str(verdict_of(study))


def test_libero_plus_baseline_breakdown_has_plain_and_weighted_totals():
    with pytest.raises(DataError, match=r"not in the libero_plus table.*shows all"):
        _study(result_files=[str(PLUS)], baseline_benchmark="libero_plus")  # LIBERO's names
    study = _study(result_files=[str(PLUS)], baseline_benchmark="libero_plus", baseline_policies=[])
    _, totals = comparison.perturbation_table(study)
    oft = totals.set_index("method").loc["OpenVLA-OFT"]
    assert oft.mean_plain == pytest.approx(71.4, abs=0.05)
    assert oft.total_weighted == pytest.approx(69.6, abs=0.05)
    # runs: the run palette; published policies: one neutral grey (named on the axes,
    # hatched), so a colour never suggests a published policy is one of the runs
    assert study.colours["quantvla_fp16_libero_plus_spatial"] in PALETTES["run"]
    assert {study.colours[p] for p in study.baseline["policy"]} == {plots.PUBLISHED_COLOUR}


def test_no_result_files_means_baselines_only(monkeypatch, tmp_path):
    monkeypatch.setattr(comparison.study, "examples_dir", lambda: tmp_path / "none")
    study = _study()
    assert study.runs == []
    assert verdict_of(study).label == "BASELINES"
    table = comparison.suite_table(study)
    assert set(table["kind"]) == {"published"} and table["suite"].nunique() == 5  # + average


def test_export_tables_write_latex_and_markdown(tmp_path):
    study = _study(result_files=[str(PI0), str(SMOLVLA)], run_labels=["pi0", "smolvla"])
    written = comparison.export_tables(study, comparison.paired_tables(study), tmp_path)
    assert sorted(p.name for p in written) == [
        "paired_comparison.md",
        "paired_comparison.tex",
        "suite_success.md",
        "suite_success.tex",
    ]
    tex = (tmp_path / "suite_success.tex").read_text()
    assert "\\toprule" in tex and "98.2 [" in tex
    md = (tmp_path / "paired_comparison.md").read_text()
    assert md.startswith("| run") and "libero_goal" in md


def test_results_summarize_csv_has_one_row_per_run_suite_task(capsys):
    assert main(["results", "summarize", str(SMOLVLA), str(KILLED), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    needed = ["run", "suite", "task", "episodes", "successes", "success_rate", "ci_low"]
    needed += ["ci_high", "complete"]
    assert set(needed) <= set(rows[0])
    keys = [(r["run"], r["suite"], r["task"]) for r in rows]
    assert len(keys) == len(set(keys)) == 40 + 2  # no total rows
    killed = [r for r in rows if r["run"] == "vla_adapter_spatial_killed"]
    assert [r["complete"] for r in killed] == ["False", "False"]
    assert [r["episodes"] for r in killed] == ["50", "8"]


def test_results_summarize_json_table_and_errors(capsys, tmp_path):
    assert main(["results", "summarize", str(PI0), "--format", "json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 10 and sum(line["successes"] for line in lines) == 491
    assert main(["results", "summarize", str(KILLED)]) == 0
    out = capsys.readouterr().out
    assert "per suite" in out and "interrupted" in out
    no_suite = FIXTURES / "text_logs" / "l1-b3-er0-vla-log.txt"
    assert main(["results", "summarize", str(no_suite)]) == 1
    assert "--suite" in capsys.readouterr().err
    assert main(["results", "summarize", str(no_suite), "--suite", "libero_spatial"]) == 0
    capsys.readouterr()
    assert main(["results", "summarize", str(PI0), "--label", "a", "--label", "b"]) == 1
    assert "one label per path" in capsys.readouterr().err


def test_results_baselines_command(capsys):
    assert main(["results", "baselines", "--benchmark", "libero_plus", "--format", "csv"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert {"mean_plain", "total_weighted", "published_total", "source"} <= set(table.columns)
    assert main(["results", "baselines", "--format", "json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 55 and {"ci_low", "ci_high", "source"} <= set(rows[0])
    assert main(["results", "baselines", "--benchmark", "libero_pro"]) == 0
    assert "figures only" in capsys.readouterr().out


def test_notebook_on_user_files_with_libero_plus(tmp_path, monkeypatch):
    monkeypatch.delenv(report.RUN_DIR_ENV, raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    out = tmp_path / "run"
    runner.run_notebook(
        ROOT / "notebooks" / "05_libero_comparison.ipynb",
        {
            "result_files": [str(PLUS), str(SMOLVLA)],
            "run_labels": ["quantvla", "smolvla"],
            "baseline_benchmark": "libero_plus",
            "baseline_policies": [],
            "interactive": True,
        },
        out_dir=out,
        progress=False,
        cwd=tmp_path,
    )
    data = json.loads((out / "metrics.json").read_text())
    assert data["verdict"] == "INCONCLUSIVE"  # the two runs share no task
    figures = {Path(f).name for f in data["figures"]}
    assert {"suite_success.png", "task_heatmap.png", "perturbations.png"} <= figures
    assert "differences.png" not in figures
    assert (out / "tables" / "suite_success.tex").is_file()


def test_browser_redraws_for_the_chosen_runs_and_suites(monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    study = _study(result_files=[str(PI0), str(SMOLVLA)], run_labels=["pi0", "smolvla"])
    shown = []
    monkeypatch.setattr(plt, "show", lambda: shown.append(plt.gcf()))
    widget = comparison.browser(study)
    runs, suites = widget.children[0], widget.children[1]
    assert runs.options == ("pi0", "smolvla")
    assert set(suites.options) == {
        "libero_goal",
        "libero_10",
        "libero_object",
        "libero_spatial",
        "average",
    }
    shown.clear()
    runs.value = ("smolvla",)
    suites.value = ("libero_10",)
    bars, heatmap = shown[-2], shown[-1]
    panels = [ax.get_title(loc="left") for ax in bars.axes if ax.get_visible()]
    assert panels == ["Long (10)"]  # one panel per suite: only the chosen one
    assert [t.get_text() for t in heatmap.axes[0].get_xticklabels()] == ["smolvla"]
    assert len(heatmap.axes[0].get_yticklabels()) == 10  # libero_10's tasks only
    plt.close("all")


def test_closed_loop_results_of_this_suite_compare_too(tmp_path):
    from nblib.eval.rollout import EvalConfig, evaluate

    for policy in ("expert", "zero"):
        config = EvalConfig(tasks=["reach"], policy=policy, episodes=3, max_steps=60)
        evaluate(config, tmp_path / f"{policy}.csv", progress=False)
    study = _study(result_files=[str(tmp_path)], reference_run="zero", test="fisher")
    sizes = comparison.sample_sizes(study).set_index("run")
    assert pd.isna(sizes.loc["expert", "mdd_pp"])  # 100 %: nothing left to detect
    per_suite = comparison.paired_tables(study).per_suite
    assert per_suite.set_index("run").loc["expert", "diff"] == 100.0
    assert verdict_of(study).label in ("DIFFERENT", "INCONCLUSIVE")
    # without a reference: every pair of runs, corrected over the whole table
    evaluate(
        EvalConfig(tasks=["reach"], policy="random", episodes=3, max_steps=60),
        tmp_path / "random.csv",
        progress=False,
    )
    study = _study(result_files=[str(tmp_path)], test="fisher")
    assert sorted(comparison.run_pairs(study)) == [
        ("random", "expert"),
        ("zero", "expert"),
        ("zero", "random"),
    ]
    per_suite = comparison.paired_tables(study).per_suite
    tested = per_suite.dropna(subset=["p_value"])
    assert len(tested) == 2 and (tested["p_adjusted"] >= tested["p_value"]).all()
    zero_random = per_suite.set_index(["run", "reference"]).loc[("zero", "random")]
    # both 0/3: nothing to test (CMH is NaN, never significant)
    assert zero_random["diff"] == 0.0 and pd.isna(zero_random.p_value)
    assert not zero_random.significant


def test_a_run_whose_completeness_is_unknown_is_named_not_called_complete(tmp_path):
    """A log that ends on an episode's last line, with no summary and no stated plan: the
    file cannot tell whether more episodes followed. It is neither complete nor
    interrupted in the runs table, and the verdict says so (it used to crash on <NA>)."""
    lines = (FIXTURES / "text_logs" / "l1-b3-er0-vla-log.txt").read_text().split("\n")
    cut = tmp_path / "cut.log"
    cut.write_text("\n".join(lines[:22]) + "\n")
    study = _study(result_files=[str(cut)], run_labels=["cut"], suite="libero_spatial")
    assert comparison.runs_table(study).set_index("run").loc["cut", "complete"] is None
    verdict = verdict_of(study)
    assert verdict.numbers["completeness_unknown_runs"] == 1
    assert verdict.numbers["incomplete_runs"] == 0
    assert "completeness unknown" in str(verdict)
