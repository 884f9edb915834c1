"""The checks `nblib run` / `run-all` / `batch` make before a kernel starts, on the suite's
own notebooks: paths taken from where the user typed the command (the kernel runs in
`notebooks/`), parameters whose default is None typed by their study config, and an empty
notebook folder refused. No kernel starts here."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from papermill.exceptions import PapermillExecutionError

from nblib.errors import NotebookError, ParameterError
from nblib.paths import find_repo_root
from nblib.run import runner
from nblib.run.batch import load_grid
from nblib.run.params import PATH_PARAMETERS, check_parameters, notebook_parameters

NOTEBOOKS = find_repo_root() / "notebooks"
CARD = NOTEBOOKS / "00_dataset_card.ipynb"
PROBES = NOTEBOOKS / "02_conditioning_probes.ipynb"
LR = NOTEBOOKS / "03_lr_schedule_study.ipynb"
COMPASS = NOTEBOOKS / "04_token_compass.ipynb"
COMPARISON = NOTEBOOKS / "05_libero_comparison.ipynb"


@pytest.fixture
def caller(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder the user runs nblib from, holding a notebook-01 run folder and some files."""
    (tmp_path / "runs" / "01_overfit_diagnosis").mkdir(parents=True)
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "a.log").write_text("step 1 loss=1.0\n")
    (tmp_path / "my_tokens.parquet").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_readme_example_resolves_the_run_folder_from_the_callers_folder(caller):
    merged = check_parameters(PROBES, {"policy": "runs/01_overfit_diagnosis"})
    assert merged["policy"] == str(caller / "runs" / "01_overfit_diagnosis")
    assert merged["manifest"] == "metaworld_default"  # defaults are not touched


def test_file_and_list_parameters_become_absolute(caller):
    merged = check_parameters(COMPARISON, {"result_files": ["logs/a.log", "logs"]})
    assert merged["result_files"] == [str(caller / "logs" / "a.log"), str(caller / "logs")]
    merged = check_parameters(LR, {"log_files": ["./logs/a.log"], "loss_key": "train/loss"})
    assert merged["log_files"] == [str(caller / "logs" / "a.log")]
    assert merged["loss_key"] == "train/loss"  # a metric name with a slash, not a path
    merged = check_parameters(COMPASS, {"token_file": "my_tokens.parquet"})
    assert merged["token_file"] == str(caller / "my_tokens.parquet")  # a bare file name


def test_names_stay_names(caller):
    # Folders named like the names change nothing: `-p latent_model train` trains.
    for word in ("tiny", "train", "default", "metaworld_default"):
        (caller / word).mkdir()
    for notebook, params in (
        (PROBES, {"policy": "tiny", "manifest": "metaworld_default"}),
        (COMPASS, {"latent_model": "train"}),
        (COMPASS, {"latent_model": "default"}),
        (COMPARISON, {"run_labels": ["pi0/ft"], "result_files": ["logs"]}),
    ):
        merged = check_parameters(notebook, params)
        for name, value in params.items():
            if name != "result_files":
                assert merged[name] == value, name


def test_a_folder_named_like_a_name_is_reached_with_dot_slash(caller):
    (caller / "train").mkdir()
    merged = check_parameters(COMPASS, {"latent_model": "./train"})
    assert merged["latent_model"] == str(caller / "train")


def test_a_plugin_specs_file_is_taken_from_the_callers_folder(caller):
    OVERFIT = NOTEBOOKS / "01_overfit_diagnosis.ipynb"
    (caller / "policies").mkdir()
    (caller / "policies" / "mine.py").write_text("def make(info):\n    pass\n")
    merged = check_parameters(OVERFIT, {"policy": "policies/mine.py:make"})
    assert merged["policy"] == f"{caller / 'policies' / 'mine.py'}:make"
    merged = check_parameters(OVERFIT, {"policy": "lab_pkg.adapters:make"})
    assert merged["policy"] == "lab_pkg.adapters:make"  # a module is found by import
    with pytest.raises(
        ParameterError, match=r"the file of 'policies/gone\.py:make' does not exist"
    ):
        check_parameters(OVERFIT, {"policy": "policies/gone.py:make"})


def test_the_named_values_are_the_studies_own_words():
    from nblib.run.params import NAMED_VALUES
    from nblib.studies.overfit import OverfitConfig
    from nblib.studies.probes.study import ProbesConfig
    from nblib.studies.tokens.study import BUNDLED, TRAIN

    assert set(NAMED_VALUES["latent_model"]) == {BUNDLED, TRAIN}
    assert NAMED_VALUES["backbone"] == (OverfitConfig().backbone,)
    assert NAMED_VALUES["policy"] == (ProbesConfig().policy,)


def test_a_missing_path_is_an_error_naming_the_parameter(caller):
    with pytest.raises(ParameterError, match=r"parameter 'policy': 'runs/nope' does not exist"):
        check_parameters(PROBES, {"policy": "runs/nope"})
    with pytest.raises(ParameterError, match=r"'result_files': 'missing\.json' does not exist"):
        check_parameters(COMPARISON, {"result_files": ["logs", "missing.json"]})
    with pytest.raises(ParameterError, match=rf"looked for {caller}/my\.yaml"):
        check_parameters(CARD, {"manifest": "my.yaml"})


def test_path_parameters_are_the_notebooks_file_and_folder_parameters():
    specs = {p.name: notebook_parameters(p) for p in sorted(NOTEBOOKS.glob("*.ipynb"))}
    names = {name for spec in specs.values() for name in spec}
    assert PATH_PARAMETERS <= names  # no stale name in the one list
    for notebook, spec in specs.items():
        for name, info in spec.items():
            if any(w in info["help"] for w in (" path", "folder", "directory")):
                assert name in PATH_PARAMETERS, f"{notebook}: {name} takes a path"


def test_batch_grid_paths_are_absolute_and_folders_keep_the_given_names(caller):
    grid = caller / "grid.yaml"
    grid.write_text(
        f"runs:\n  - notebook: {PROBES}\n    grid: {{policy: [runs/01_overfit_diagnosis, tiny]}}\n"
    )
    runs = load_grid(grid)
    assert [r.params["policy"] for r in runs] == [
        str(caller / "runs" / "01_overfit_diagnosis"),
        "tiny",
    ]
    assert runs[0].name == "02_conditioning_probes__policy=runs-01-overfit-diagnosis"
    grid.write_text(f"runs:\n  - notebook: {PROBES}\n    params: {{policy: runs/nope}}\n")
    with pytest.raises(ParameterError, match=r"runs\[0\].*'policy': 'runs/nope' does not exist"):
        load_grid(grid)


def test_parameters_with_a_none_default_are_typed_by_the_study_config():
    with pytest.raises(ParameterError, match=r"'train_demos' expects int or None") as error:
        check_parameters(CARD, {"train_demos": "five"})
    assert "CardConfig.train_demos" in str(error.value)
    assert check_parameters(CARD, {"train_demos": 3})["train_demos"] == 3
    with pytest.raises(ParameterError, match=r"'train_demos' expects int or None"):
        check_parameters(CARD, {"train_demos": True})  # a bool is no count
    with pytest.raises(ParameterError) as error:
        check_parameters(COMPARISON, {"suite": 5})
    # names the parameter and what it accepts (the type, and the help's example)
    assert "'suite' expects str or None" in str(error.value)
    assert '"libero_spatial"' in str(error.value)
    assert check_parameters(COMPARISON, {"suite": "libero_goal"})["suite"] == "libero_goal"
    with pytest.raises(ParameterError, match=r"'baseline' expects str or None"):
        check_parameters(LR, {"baseline": ["a"]})
    with pytest.raises(ParameterError, match=r"'peak_lrs' expects list\[float\]"):
        check_parameters(LR, {"peak_lrs": [1e-3, "fast"]})  # the default's type says "list"


def test_a_notebook_without_a_config_accepts_anything_for_a_none_default(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = None", metadata={"tags": ["parameters"]})]
    nb.cells.append(nbformat.v4.new_code_cell("%matplotlib inline\nprint(x)"))
    path = tmp_path / "plain.ipynb"
    nbformat.write(nb, path)
    assert check_parameters(path, {"x": "anything"})["x"] == "anything"


def test_run_all_on_a_folder_without_notebooks_is_an_error(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(NotebookError, match=rf"no notebooks \(\*\.ipynb\) in {empty}"):
        runner.run_all(empty, tmp_path / "runs", progress=False, workers=1)
    assert not (tmp_path / "runs" / "index.md").exists()


def test_a_failed_run_shows_the_cells_error_before_the_kernel_log(tmp_path):
    log = tmp_path / "kernel.log"
    log.write_text("[IPKernelApp] WARNING | Could not destroy zmq context\n")
    traceback = [
        "\x1b[0;31m---------------------------------------------------------------\x1b[0m",
        "\x1b[0;31mValueError\x1b[0m    Traceback (most recent call last)",
        "Cell \x1b[0;32mIn[3], line 1\x1b[0m\n----> 1 raise ValueError('boom')",
        "\x1b[0;31mValueError\x1b[0m: boom",
    ]
    failure = PapermillExecutionError(
        2, 3, "raise ValueError('boom')", "ValueError", "boom", traceback
    )
    details = runner.failure_details(failure, log)
    assert details[0].startswith("traceback, last lines:")
    assert details[0].splitlines()[-1] == "ValueError: boom" and "\x1b" not in details[0]
    assert "raise ValueError('boom')" in details[0]
    assert details[1].startswith(f"kernel log ({log})") and "zmq" in details[1]
    assert runner.failure_details(TimeoutError("no reply"), tmp_path / "none.log") == [
        "error: TimeoutError: no reply"
    ]


def test_a_missing_policy_folder_is_named_policy_in_the_probes_notebook(tmp_path):
    from nblib.studies import probes
    from nblib.studies.setup import prepare_training

    missing = tmp_path / "runs" / "01_overfit_diagnosis"
    setup = probes.ProbesConfig(policy=str(missing)).setup_config()
    with pytest.raises(ParameterError, match=r"ProbesConfig\.policy=.*no such folder") as error:
        prepare_training(setup, progress=False)
    assert "backbone" not in str(error.value)  # notebook 02 has no such parameter


def test_the_doctors_data_and_results_are_taken_from_the_callers_folder(caller):
    doctor = NOTEBOOKS / "06_train_eval_consistency.ipynb"
    (caller / "demos.hdf5").write_bytes(b"")
    (caller / "eval.csv").write_text("run\n")
    merged = check_parameters(doctor, {"data": "demos.hdf5", "results": ["eval.csv"]})
    assert merged["data"] == str(caller / "demos.hdf5")
    assert merged["results"] == [str(caller / "eval.csv")]
    assert check_parameters(doctor, {"data": "metaworld_default"})["data"] == "metaworld_default"
    with pytest.raises(ParameterError, match="parameter 'data': 'missing.hdf5' does not exist"):
        check_parameters(doctor, {"data": "missing.hdf5"})
