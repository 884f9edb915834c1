"""nblib batch: grid files, checks before anything runs, local workers, resuming, failures,
collecting, the lock. Kernels are real (papermill), the notebook is tiny (~3 s a run)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from probe_notebook import stepper_state, write_grid, write_probe, write_stepper

from nblib.cli import main
from nblib.errors import NotebookError, ParameterError
from nblib.run import batch
from nblib.run.batch import LocalExecutor, load_grid, run_batch, run_name


def _notebook(folder: Path) -> Path:
    return write_probe(folder)


def _grid(folder: Path, runs: list[dict], **extra) -> Path:
    return write_grid(folder, runs, **extra)


def test_grid_expands_product_zip_and_seeds_with_named_folders(tmp_path):
    _notebook(tmp_path)
    grid = _grid(
        tmp_path,
        [{"notebook": "probe.ipynb", "params": {"fail": False}, "grid": {"x": [1, 2]},
          "zip": {"tag": ["b", "c"]}, "seeds": [0, 1]}],
    )  # fmt: skip
    runs = load_grid(grid)
    assert len(runs) == 2 * 2 * 2
    assert runs[0].params == {"fail": False, "x": 1, "tag": "b", "seed": 0}
    assert runs[0].name == "probe__x=1_tag=b_seed=0"
    assert [r.name for r in runs][-1] == "probe__x=2_tag=c_seed=1"
    assert len({r.name for r in runs}) == 8  # one folder each
    clash = _grid(tmp_path, [{"notebook": "probe.ipynb"}, {"notebook": "probe.ipynb"}])
    with pytest.raises(ParameterError, match="share the folder"):
        load_grid(clash)


def test_grid_errors_name_the_entry_and_nothing_runs(tmp_path):
    _notebook(tmp_path)
    cases = [
        ({"notebook": "probe.ipynb", "grid": {"lr": [1, 2]}}, "runs\\[0\\].*unknown parameter"),
        ({"notebook": "probe.ipynb", "grid": {"x": ["one"]}}, "parameter 'x' expects int"),
        ({"notebook": "missing.ipynb"}, "runs\\[0\\].*not found"),
        ({"notebook": "probe.ipynb", "zip": {"x": [1, 2], "tag": ["a"]}}, "different lengths"),
        ({"notebook": "probe.ipynb", "grid": {"x": 3}}, "non-empty list"),
        ({"notebook": "probe.ipynb", "params": {"seed": 1}, "seeds": [0]}, "set twice"),
        ({"notebook": "probe.ipynb", "sweep": {}}, "unknown key"),
    ]
    for entry, message in cases:
        with pytest.raises(ParameterError, match=message):
            load_grid(_grid(tmp_path, [entry]))
    (tmp_path / "bad.yaml").write_text("runs: {")
    with pytest.raises(ParameterError, match="not valid YAML"):
        load_grid(tmp_path / "bad.yaml")
    with pytest.raises(ParameterError, match="top-level 'runs:'"):
        load_grid(_grid(tmp_path, []))
    with pytest.raises(ParameterError, match="slurm.time_min"):
        load_grid(_grid(tmp_path, [{"notebook": "probe.ipynb"}], slurm={"time_min": "1h"}))
    assert not (tmp_path / "runs").exists()


def test_seeds_set_the_seed_parameter_a_notebook_has(tmp_path):
    """The docs' `seeds:` (docs/running.md, the README) on every notebook: its `seed`, or the LR study's `seeds` list;
    a notebook with neither is an error naming the entry."""
    import nbformat

    from nblib.paths import find_repo_root

    notebooks = find_repo_root() / "notebooks"
    grid = _grid(
        tmp_path,
        [
            {"notebook": str(notebooks / "03_lr_schedule_study.ipynb"), "seeds": [0, 1]},
            {"notebook": str(notebooks / "00_dataset_card.ipynb"), "seeds": [2]},
        ],
    )
    runs = load_grid(grid)
    assert [r.params for r in runs] == [{"seeds": [0]}, {"seeds": [1]}, {"seed": 2}]
    unseeded = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x = 1  # a number")
    cell.metadata["tags"] = ["parameters"]
    unseeded.cells.append(cell)
    nbformat.write(unseeded, tmp_path / "unseeded.ipynb")
    with pytest.raises(ParameterError, match=r"runs\[0\]\.seeds.*neither a `seed` nor"):
        load_grid(_grid(tmp_path, [{"notebook": "unseeded.ipynb", "seeds": [0]}]))


def test_run_names_are_readable_and_bounded():
    nb = Path("notebooks/01_overfit_diagnosis.ipynb")
    assert run_name(nb, {}) == "01_overfit_diagnosis"
    assert run_name(nb, {"lr": 3e-4, "head": "flow"}) == "01_overfit_diagnosis__lr=0.0003_head=flow"
    long = run_name(nb, {f"p{i}": "x" * 20 for i in range(10)})
    assert len(long) <= 120 and long.startswith("01_overfit_diagnosis__p0=")


def test_batch_runs_resumes_and_reports_a_failure_without_losing_the_others(tmp_path):
    _notebook(tmp_path)
    grid = _grid(
        tmp_path, [{"notebook": "probe.ipynb", "grid": {"x": [1, 2], "fail": [False, True]}}]
    )
    out = tmp_path / "out"
    with pytest.raises(NotebookError, match="2 of 4 run\\(s\\) failed") as failure:
        run_batch(grid, out, executor=LocalExecutor(workers=2), progress=False)
    assert "executed notebooks are kept" in str(failure.value)
    table = pd.read_csv(out / "batch.csv")
    assert table["status"].tolist() == ["done", "failed", "done", "failed"]
    assert table["verdict"].tolist() == ["PASS", "ERROR", "PASS", "ERROR"]
    assert table.loc[2, "metric.twice"] == 4 and table.loc[0, "param.x"] == 1
    assert "asked to fail" in table.loc[1, "error"]
    assert (out / "probe__x=1_fail=True" / "probe.ipynb").is_file()  # the failed copy kept
    assert pd.read_parquet(out / "batch.parquet")["run"].tolist() == table["run"].tolist()
    assert "probe__x=2_fail=False" in (out / "index.md").read_text()

    # rerun: the finished runs are skipped, the failed ones redone (and fail again)
    stamp = (out / "probe__x=1_fail=False" / "metrics.json").stat().st_mtime_ns
    with pytest.raises(NotebookError, match="2 of 4"):
        run_batch(grid, out, progress=False)
    assert (out / "probe__x=1_fail=False" / "metrics.json").stat().st_mtime_ns == stamp
    table = pd.read_csv(out / "batch.csv")
    assert table["status"].tolist() == ["skipped", "failed", "skipped", "failed"]

    # an interrupted run (metrics.json but no batch.json) is redone, not trusted
    (out / "probe__x=2_fail=False" / "batch.json").unlink()
    with pytest.raises(NotebookError, match="2 of 4"):
        run_batch(grid, out, progress=False)
    table = pd.read_csv(out / "batch.csv")
    assert table["status"].tolist() == ["skipped", "failed", "done", "failed"]
    # changed parameters are another run: a grid without the failing ones all skipped
    grid = _grid(tmp_path, [{"notebook": "probe.ipynb", "grid": {"x": [1, 2], "fail": [False]}}])
    result = run_batch(grid, out, progress=False)
    assert [r["status"] for r in result.results] == ["skipped", "skipped"]


def test_gpus_give_each_kernel_its_own_device(tmp_path):
    _notebook(tmp_path)
    grid = _grid(tmp_path, [{"notebook": "probe.ipynb", "seeds": [0, 1, 2]}])
    result = run_batch(
        grid, tmp_path / "out", executor=LocalExecutor(2, gpus=["3", "5"]), progress=False
    )
    devices = result.table["metric.gpu"].astype(str).tolist()
    assert sorted(set(devices)) == ["3", "5"] and len(devices) == 3
    with pytest.raises(ParameterError, match="never shared"):
        LocalExecutor(3, gpus=["0", "1"])


def test_a_second_batch_on_the_same_folder_is_refused(tmp_path):
    from filelock import FileLock

    _notebook(tmp_path)
    grid = _grid(tmp_path, [{"notebook": "probe.ipynb"}])
    out = tmp_path / "out"
    out.mkdir()
    with FileLock(str(out / batch.LOCK_FILE)):
        with pytest.raises(NotebookError, match="another batch is writing"):
            run_batch(grid, out, progress=False)


def test_cli_batch(tmp_path, capsys):
    _notebook(tmp_path)
    grid = _grid(tmp_path, [{"notebook": "probe.ipynb", "grid": {"tag": ["p", "q"]}}])
    assert main(["batch", str(grid), "--out", str(tmp_path / "out")]) == 0
    assert "2 run(s) done, 0 skipped" in capsys.readouterr().out
    assert main(["batch", str(grid), "--out", str(tmp_path / "out")]) == 0
    assert "0 run(s) done, 2 skipped" in capsys.readouterr().out
    record = json.loads((tmp_path / "out" / "probe__tag=p" / "batch.json").read_text())
    assert record["params"]["tag"] == "p" and record["code"]
    assert os.environ.get("CUDA_VISIBLE_DEVICES") is None  # the parent's env is untouched


def test_a_kernel_that_does_not_start_is_retried(tmp_path, monkeypatch):
    import nblib.run.runner as runner

    attempts = []

    def flaky(notebook, params, out_dir, progress):
        attempts.append(params)
        if len(attempts) < 3:
            raise NotebookError(
                "probe.ipynb failed: RuntimeError: Kernel died before replying to kernel_info"
            )
        return real(notebook, params, out_dir=out_dir, progress=progress)

    real = runner.run_notebook
    monkeypatch.setattr(runner, "run_notebook", flaky)
    _notebook(tmp_path)
    result = run_batch(
        _grid(tmp_path, [{"notebook": "probe.ipynb"}]), tmp_path / "out", progress=False
    )
    assert len(attempts) == 3 and result.results[0]["status"] == "done"
    # a cell error is not retried
    attempts.clear()
    monkeypatch.setattr(
        runner,
        "run_notebook",
        lambda *a, **k: (
            attempts.append(1)
            or (_ for _ in ()).throw(
                NotebookError("probe.ipynb failed: RuntimeError: asked to fail")
            )
        ),
    )
    with pytest.raises(NotebookError):
        run_batch(_grid(tmp_path, [{"notebook": "probe.ipynb", "params": {"x": 9}}]), tmp_path / "o2",
                  progress=False)  # fmt: skip
    assert attempts == [1]


def test_a_killed_batch_restarts_without_redoing_finished_runs(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    _notebook(tmp_path)
    grid = _grid(
        tmp_path, [{"notebook": "probe.ipynb", "params": {"pause": 2.0}, "zip": {"x": [1, 2, 3]}}]
    )
    out = tmp_path / "out"
    command = [sys.executable, "-m", "nblib", "batch", str(grid), "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)  # fmt: skip
    first, second = out / "probe__x=1", out / "probe__x=2"
    deadline = time.monotonic() + 60
    while not second.is_dir() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (first / "batch.json").exists(), "the first run did not finish"
    time.sleep(0.5)  # the second run is under way
    os.killpg(process.pid, signal.SIGKILL)  # the batch and its kernel, as a node failure would
    process.wait(10)
    assert not (second / "metrics.json").exists()  # an interrupted run does not look finished
    stamp = (first / "metrics.json").stat().st_mtime_ns
    result = run_batch(grid, out, progress=False)
    assert [r["status"] for r in result.results] == ["skipped", "done", "done"]
    assert (first / "metrics.json").stat().st_mtime_ns == stamp


def test_a_killed_batch_resumes_an_unfinished_run_from_its_checkpoint(tmp_path):
    """The rerun runs the notebook into the same folder, whose checkpoints/ it keeps: the
    notebook continues from its latest checkpoint and ends as if never interrupted."""
    import signal
    import subprocess
    import sys
    import time

    write_stepper(tmp_path)
    grid = _grid(
        tmp_path, [{"notebook": "stepper.ipynb", "params": {"steps": 12, "step_seconds": 0.4}}]
    )
    out = tmp_path / "out"
    command = [sys.executable, "-m", "nblib", "batch", str(grid), "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)  # fmt: skip
    latest = out / "stepper" / "checkpoints" / "latest.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (latest.exists() and _step(latest) >= 2):
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)  # the batch, mid-training
    process.wait(10)
    # the kernel (a session of its own) goes once it sees its parent gone (~1 s)
    reached, previous = _step(latest), None
    while reached != previous and time.monotonic() < deadline:
        time.sleep(1.5)
        previous, reached = reached, _step(latest)
    assert 2 <= reached < 12 and not (out / "stepper" / "batch.json").exists()

    result = run_batch(grid, out, progress=False)
    assert [r["status"] for r in result.results] == ["done"]
    metrics = json.loads((out / "stepper" / "metrics.json").read_text())["metrics"]
    assert metrics["resumed_from_step"] == reached  # not started over
    assert metrics["steps"] == 12 and metrics["state"] == stepper_state(12)
    assert result.table.loc[0, "requeues"] == 0  # local: nothing requeued


def _step(path: Path) -> int:
    return json.loads(path.read_text())["step"]


def test_code_version_follows_commits_and_uncommitted_edits(tmp_path):
    import subprocess

    from nblib.run.batch import code_version

    notebook = _notebook(tmp_path)
    outside = code_version(notebook)
    assert outside.startswith("notebook:")  # no repository: the notebook's hash
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "probe.ipynb"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "x"], check=True)
    clean = code_version(notebook)
    assert len(clean) == 40 and "+" not in clean
    notebook.write_text(notebook.read_text().replace("x = 1", "x = 2"))
    first_edit = code_version(notebook)
    assert first_edit.startswith(clean + "+dirty-")
    notebook.write_text(notebook.read_text().replace("x = 2", "x = 3"))
    assert code_version(notebook) not in (first_edit, clean)  # another edit, another version


def test_a_requeued_run_is_reported_as_its_metrics_say_it_continued():
    from nblib.run.batch import requeue_line, resumption

    done = {"name": "r", "status": "done", "error": None, "requeues": 2}
    assert requeue_line(done | {"resumed_from_step": 40}) == (
        "run r: requeued 2x by SLURM, resumed from its checkpoint at step 40"
    )
    # signalled before its first checkpoint: it ran again from step 0, and says so
    assert resumption(done | {"resumed_from_step": None}).startswith("restarted from the")
    # a sweep (notebook 03) records run -> step; runs that started afresh are left out
    sweep = done | {"resumed_from_step": {"cosine": 40, "constant": None}}
    assert resumption(sweep) == "resumed from its checkpoints: cosine at step 40"
    assert resumption(done | {"resumed_from_step": {"cosine": None}}).startswith("restarted")
    assert resumption(done | {"status": "failed"}) == "failed"
