"""Every study engine follows the one contract of nblib.studies, and every notebook uses it
the same way: config -> prepare -> steps returning values -> evidence -> a pure verdict
-> metrics; cells never assign engine state nor branch on what the engine interprets."""

from __future__ import annotations

import ast
import dataclasses
import inspect

import nbformat
import pytest

from nblib.paths import find_repo_root
from nblib.run.params import notebook_parameters
from nblib.studies import (
    Evidence,
    Study,
    StudyConfig,
    card,
    comparison,
    doctor,
    lr,
    overfit,
    probes,
    tokens,
)

NOTEBOOKS = find_repo_root() / "notebooks"
# engine, its notebook, its config, study and evidence types
ENGINES = {
    "card": (card, "00_dataset_card", card.CardConfig, card.CardStudy, card.CardEvidence),
    "overfit": (
        overfit,
        "01_overfit_diagnosis",
        overfit.OverfitConfig,
        overfit.OverfitStudy,
        overfit.OverfitEvidence,
    ),
    "probes": (
        probes,
        "02_conditioning_probes",
        probes.ProbesConfig,
        probes.ProbesStudy,
        probes.ProbesEvidence,
    ),
    "lr": (lr, "03_lr_schedule_study", lr.LRConfig, lr.LRStudy, lr.LREvidence),
    "tokens": (
        tokens,
        "04_token_compass",
        tokens.CompassConfig,
        tokens.CompassStudy,
        tokens.TokensEvidence,
    ),
    "comparison": (
        comparison,
        "05_libero_comparison",
        comparison.ComparisonConfig,
        comparison.ComparisonStudy,
        comparison.ComparisonEvidence,
    ),
    "doctor": (
        doctor,
        "06_train_eval_consistency",
        doctor.DoctorConfig,
        doctor.DoctorStudy,
        doctor.DoctorEvidence,
    ),
}
# The only parameter a cell may branch on: what the engine never sees.
CELL_FLAGS = {"interactive"}


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_engine_has_the_contracts_shape(name):
    engine, _, config, study, evidence = ENGINES[name]
    assert issubclass(config, StudyConfig) and dataclasses.is_dataclass(config)
    for cls, base in ((study, Study), (evidence, Evidence)):
        assert issubclass(cls, base) and cls.__dataclass_params__.frozen, cls
    for step in ("prepare", "evidence", "verdict", "metrics"):
        assert callable(getattr(engine, step, None)), f"{name}.{step}"
    # a pure verdict over the evidence and the config; metrics over the evidence alone
    assert list(inspect.signature(engine.verdict).parameters) == ["evidence", "config"]
    assert list(inspect.signature(engine.metrics).parameters) == ["evidence"]
    assert list(inspect.signature(engine.prepare).parameters)[0] == "config"


def _code_cells(notebook: str):
    nb = nbformat.read(NOTEBOOKS / f"{notebook}.ipynb", as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "parameters" not in cell.metadata.get("tags", []):
            yield i, ast.parse(cell.source)


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_notebook_cells_call_steps_and_never_assign_engine_state(name):
    _, notebook, config, *_ = ENGINES[name]
    parameters = set(notebook_parameters(NOTEBOOKS / f"{notebook}.ipynb"))
    assert {f.name for f in dataclasses.fields(config)} <= parameters
    for i, tree in _code_cells(notebook):
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, ast.AugAssign | ast.AnnAssign):
                targets = [node.target]
            for target in targets:
                assert not isinstance(target, ast.Attribute | ast.Subscript), (
                    f"{notebook} cell {i} assigns {ast.unparse(target)}: engine state belongs "
                    "to the engine; keep what a step returns in a variable"
                )
            if isinstance(node, ast.If | ast.IfExp | ast.While):
                used = {n.id for n in ast.walk(node.test) if isinstance(n, ast.Name)}
                assert used <= CELL_FLAGS, (
                    f"{notebook} cell {i} branches on {sorted(used - CELL_FLAGS)}: the engine "
                    "interprets parameters and returns what there is to show"
                )


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_the_last_cells_are_evidence_verdict_metrics(name):
    engine, notebook, *_ = ENGINES[name]
    calls = []
    for _, tree in _code_cells(notebook):
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                calls.append(ast.unparse(node.func))
    short = engine.__name__.rsplit(".", 1)[1]
    for step in ("prepare", "evidence", "verdict", "metrics"):
        assert f"{short}.{step}" in calls, f"{notebook} never calls {short}.{step}"
    assert "report.finish" in calls
