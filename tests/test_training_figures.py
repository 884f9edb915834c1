"""nblib.studies.training_plots at paper size from hand-made histories (no training, except
one tiny run of the current loop): each figure fits a page, its legends cover no data, it
shows only numbers metrics.json has (gradient_flow, throughput, memory) and says what is
wrong; plus the current loop's History is accepted as it is."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from figure_checks import legend_overlaps

from nblib import plots
from nblib.memory import CUDA_KIND, MemoryTracker
from nblib.metrics.cost import duration_text, project_wall_time, throughput
from nblib.metrics.gradient_flow import gradient_findings, gradient_flow, module_norms
from nblib.run import report
from nblib.studies import training_plots as tp
from nblib.train import History, TrainConfig, train

matplotlib.use("Agg")

MODULES = ["policy.projector", *(f"policy.expert.layers.{i}" for i in range(6)), "policy.head"]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def history(modules=MODULES, broken=(), steps=300, every=20, seed=0) -> History:
    """A 300-step run: slow first steps, then ~0.05 s per step at batch 32; module norms
    falling ~10x with noise every ``every`` steps. ``broken``: "never" makes the last
    module's norm always 0, "vanished" the first module's 0 from step 150 on."""
    rng = np.random.default_rng(seed)
    records = []
    for step in range(steps):
        seconds = 0.05 * rng.lognormal(0.0, 0.1) * (20.0 if step == 0 else 1.0)
        record = {"step": step, "loss": 1.0, "lr": 1e-3, "seconds": seconds}
        record["samples_per_second"] = 32 / seconds
        record["grad_norm"] = 2.0 * 10 ** (-step / steps)
        if step % every == 0 or step == steps - 1:
            for i, module in enumerate(modules):
                value = 0.1 * (1 + i) * 10 ** (-step / steps) * rng.lognormal(0.0, 0.3)
                if "never" in broken and i == len(modules) - 1:
                    value = 0.0
                if "vanished" in broken and i == 0 and step >= 150:
                    value = 0.0
                record[f"grad_norm/{module}"] = value
        records.append(record)
    return History(records)


def memory_record(kind="host") -> dict:
    if kind == "host":
        tracker = MemoryTracker("cpu")
        for name in ("cache", "train", "eval"):
            with tracker.phase(name):
                pass
        return tracker.record()
    phases = {"cache": 2_500_000_000, "train": 7_100_000_000, "eval": 3_000_000_000}
    return {
        "kind": CUDA_KIND,
        "device": "cuda:0",
        "phases": phases,
        "peak_scope": "phase",
        "peak_bytes": 7_100_000_000,
    }


def metrics_of(hist, memory) -> dict:
    """What the notebook writes to metrics.json from the same functions."""
    return {
        "gradient_flow": gradient_flow(hist),
        "throughput": throughput(hist),
        "memory": memory,
    }


def figures_of(hist, memory, backbone=0.3) -> dict:
    projection = project_wall_time(
        throughput(hist)["seconds_per_step"], backbone_seconds_per_step=backbone
    )
    return {
        "gradient_flow": (tp.plot_gradient_flow(hist)[0], tp.caption_gradient_flow(hist)),
        "training_cost": (
            tp.plot_cost(hist, projection, memory)[0],
            tp.caption_cost(hist, projection, memory),
        ),
    }


def legend_texts(fig) -> list[str]:
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


def _at(metrics, path):
    node = metrics
    for part in path:
        node = node[part]
    return node


@pytest.fixture(scope="module")
def run():
    hist = history(broken=("never", "vanished"))
    memory = memory_record()
    figures = figures_of(hist, memory)
    yield SimpleNamespace(
        hist=hist, memory=memory, figures=figures, metrics=metrics_of(hist, memory)
    )
    plt.close("all")


def test_each_figure_fits_a_paper_page_and_its_legends_cover_no_data(run):
    for name, (fig, caption) in run.figures.items():
        assert plots.layout_problems(fig) == [], name
        assert legend_overlaps(fig) == [], name
        assert caption.strip() and caption.endswith("."), name


def test_shown_numbers_are_the_metrics(run):
    for name, (fig, _) in run.figures.items():
        shown = plots.shown_numbers(fig)
        assert shown, name
        for path, value in shown.items():
            assert _at(run.metrics, path) == pytest.approx(value, rel=1e-9, abs=1e-12), (name, path)
    flow = plots.shown_numbers(run.figures["gradient_flow"][0])
    assert {p[1] for p in flow} == set(MODULES)
    cost = plots.shown_numbers(run.figures["training_cost"][0])
    assert ("throughput", "seconds_per_step") in cost and ("memory", "peak_bytes") in cost


def test_report_accepts_the_figures_in_strict_mode(run, tmp_path, monkeypatch):
    monkeypatch.delenv(report.RUN_DIR_ENV, raising=False)
    monkeypatch.setenv(report.STRICT_FIGURES_ENV, "1")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(plots, "save_figure", lambda fig, stem: [Path(f"{stem}.png")])
    for name, (fig, caption) in run.figures.items():
        report.save(fig, name, "trainfigtest", caption=caption)
    from nblib.verdict import Verdict

    record = report.finish(
        "trainfigtest", Verdict("FAIL", gradient_findings(run.hist)), run.metrics
    )
    assert set(record["captions"]) == set(run.figures)


def test_zero_norms_are_drawn_on_the_strip_and_problems_named(run):
    fig, caption = run.figures["gradient_flow"]
    main, strip = fig.axes[:2]
    assert main.get_yscale() == "log" and main.get_title() == "gradient flow: 2 problems"
    assert [t.get_text() for t in strip.get_yticklabels()] == ["0"]
    # one row of × per module with zeros: the vanished projector (steps 160 to 280 and
    # the last, 299) and the head (all 16 records)
    rows = [line.get_xydata() for line in strip.get_lines()]
    assert [len(r) for r in rows] == [8, 16]
    texts = legend_texts(fig)
    assert "policy.head: last 0 (never a gradient)" in texts
    assert "policy.projector: last 0 (vanished)" in texts
    assert (
        "never received a gradient" in caption and "policy.projector's gradient vanished" in caption
    )


def test_a_healthy_run_has_one_panel_and_says_so():
    hist = history()
    fig, axes = tp.plot_gradient_flow(hist)
    assert (
        len(axes) == 1 and axes[0].get_title() == "gradient flow: every module receives a gradient"
    )
    assert not any("(" in t and "never" in t for t in legend_texts(fig))
    caption = tp.caption_gradient_flow(hist)
    assert "Every module received a gradient and none vanished" in caption
    assert "recorded at 16 steps from 0 to 299" in caption
    assert plots.layout_problems(fig) == [] and legend_overlaps(fig) == []


def test_many_modules_get_a_two_column_legend_that_still_fits():
    modules = [f"policy.expert.layers.{i}" for i in range(24)] + ["policy.head", "backbone"]
    hist = history(modules=modules)
    fig, _ = tp.plot_gradient_flow(hist)
    (legend,) = fig.legends
    assert legend._ncols == 2
    assert plots.layout_problems(fig) == [] and legend_overlaps(fig) == []


def test_layer_stacks_are_shaded_in_depth_order():
    colours = tp._module_colours(MODULES)
    layers = [colours[f"policy.expert.layers.{i}"] for i in range(6)]
    assert len(set(layers)) == 6
    # viridis runs from dark to light: luminance rises with depth
    lum = [sum(matplotlib.colors.to_rgb(c)) for c in layers]
    assert lum == sorted(lum)
    assert colours["policy.head"] not in layers


def test_no_per_module_norms_and_no_cost_inputs():
    hist = history(modules=[])
    fig, (ax,) = tp.plot_gradient_flow(hist)
    assert ax.get_title() == "gradient flow: not recorded"
    assert tp.caption_gradient_flow(hist).startswith("No per-module gradient norms were recorded")
    for record in hist:
        del record["samples_per_second"]
    fig, axes = tp.plot_cost(hist)
    titles = [ax.get_title() for ax in axes]
    assert titles[1:] == ["(b) throughput", "(c) projected wall time", "(d) peak memory"]
    caption = tp.caption_cost(hist)
    assert "(b) Samples per second were not recorded" in caption
    assert "(c) No wall-time projection" in caption and "(d) Memory was not measured." in caption
    assert plots.layout_problems(fig) == [] and legend_overlaps(fig) == []


def test_cost_figure_states_the_speed_projection_and_memory_kind():
    hist = history()
    memory = memory_record("cuda")
    tput = throughput(hist)
    projection = project_wall_time(tput["seconds_per_step"], backbone_seconds_per_step=0.3)
    fig, axes = tp.plot_cost(hist, projection, memory)
    assert axes[0].get_title() == f"(a) step time: median {tput['seconds_per_step']:.3g} s"
    assert axes[3].get_title() == "(d) memory: cuda max_memory_allocated"
    assert axes[3].get_ylabel() == "GB"
    assert [p.get_height() for p in axes[3].patches] == pytest.approx([2.5, 7.1, 3.0])
    caption = tp.caption_cost(hist, projection, memory)
    assert "after 5 warm-up steps" in caption and "the first took 1" in caption  # 20x 0.05 s
    row = next(r for r in projection if r["steps"] == 50_000)
    assert f"50,000 steps {duration_text(row['with_cache_seconds'])}" in caption
    assert "seed 001 took 10.3 h for 50,000 steps" in caption
    assert "largest in train" in caption and "high-water mark" not in caption  # CUDA: per phase
    texts = legend_texts(fig)
    assert "without cache (+ backbone forward)" in texts and "peak allocated in phase" in texts
    assert plots.layout_problems(fig) == [] and legend_overlaps(fig) == []


@pytest.mark.parametrize("scope", ["phase", "process"])
def test_the_host_memory_panel_says_whether_each_peak_is_the_phases_own(scope):
    hist = history()
    memory = {**memory_record("host"), "peak_scope": scope}
    fig, axes = tp.plot_cost(hist, None, memory)
    assert axes[3].get_title() == "(d) memory: host RSS"
    label = "peak RSS in phase" if scope == "phase" else "peak RSS so far (process high-water mark)"
    assert label in legend_texts(fig) and "RSS at phase end" in legend_texts(fig)
    caption = tp.caption_cost(hist, None, memory)
    assert ("reset at each phase's start" in caption) == (scope == "phase")
    assert ("high-water mark since it started" in caption) == (scope == "process")
    assert plots.layout_problems(fig) == [] and legend_overlaps(fig) == []
    plt.close(fig)


def test_functions_accept_the_loops_history():
    """A 6-step run of nblib.train.train with per-module norms every 2 steps: the figures
    and summaries read its records as they are."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    batch = {"x": torch.randn(16, 4), "y": torch.randn(16, 2)}
    hist = train(
        model,
        lambda step: batch,
        lambda m, b: (m(b["x"]) - b["y"]).pow(2).mean(),
        TrainConfig(steps=6, lr=1e-2, progress=False, threads=1, grad_flow_every=2),
    )
    steps, norms = module_norms(hist)["0"]
    assert steps.tolist() == [0, 2, 4, 5] and (norms > 0).all()
    assert set(gradient_flow(hist)) == {"0", "2"}  # the Linear layers; ReLU has no parameters
    assert gradient_findings(hist) == []
    speed = throughput(hist)
    assert speed["steps_skipped"] == 1 and speed["steps_measured"] == 5
    assert speed["seconds_per_step"] > 0 and speed["samples_per_second"] > 0
    projection = project_wall_time(speed["seconds_per_step"])
    for fig, caption in figures_of(hist, memory_record(), backbone=None).values():
        assert plots.layout_problems(fig) == [] and caption.endswith(".")
    assert projection[0]["without_cache_hours"] is None
