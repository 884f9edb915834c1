"""Tests for nblib.data.training_logs: real logs from public repositories, own samples, bad files.

Fixtures live in tests/fixtures/training_logs/ (README.md there gives the line ranges kept).
Real excerpts, copied line for line from public GitHub repositories:

- wandb_chart_nanogpt.csv: druidowm/nanoGPT, wandb_export.csv @ 520e651 (W&B chart export)
- slm_training/metrics.jsonl, slm_training_resumed.jsonl: akawslearn-ai/slm_training,
  metrics.jsonl @ ef8f1bd
- parlatent_metrics.jsonl: 6elphegor/parlatent, metrics.jsonl @ 11b93a2
- nanogpt_train.log: ChenZihua-cn/nanoGPT, train.log @ b84cd16 (nanoGPT stdout)

Real lines from an issue thread: xtuner_mmengine_train.log (InternLM/xtuner issue #187).

Written for these tests: vla_finetune_stdout.log, lerobot_act_train.log (LeRobot's format),
hf_style_metrics.jsonl, plain_metrics.csv, hf_trainer_stdout.log (transformers' Trainer
stdout, numbers of AnswerDotAI/ModernBERT issue #233), salt_vla_sweep_stdout.log (seed 003's
"[train] ... loss=" lines) and the malformed bad_json_line.jsonl, short_row.csv,
bad_loss_value.log, no_loss_column.csv.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nblib.data.training_logs import FORMATS, detect_format, read_log, read_logs
from nblib.errors import DataError, ParameterError

FIXTURES = Path(__file__).parent / "fixtures" / "training_logs"
COLUMNS = ["run", "step", "loss", "lr", "grad_norm"]
WANDB_RUNS = {  # run -> rows with a train/loss value in the excerpt (counted with csv)
    "gpt2_last_char_to_char1729642919.4054031": 9,
    "gpt2_augmented_char_to_token1729630560.5729918": 15,
    "gpt2_last_char_token_to_char1729587337.8266432": 22,
    "gpt2_char_to_token1729578574.2848036": 21,
    "gpt2_char_to_token1729534595.422701": 17,
    "gpt2": 22,
    "gpt2_last_char_token_to_token1729493675.529459": 17,
    "gpt2_char_to_token1729491541.2756786": 17,
}


def _error(path: Path, *parts: str, kind=DataError, **kw) -> str:
    """Read ``path``, expect ``kind`` naming the file and every string in ``parts``."""
    with pytest.raises(kind) as info:
        read_log(path, **kw)
    message = str(info.value)
    for part in (path.name, *parts):
        assert part in message, f"{part!r} missing from: {message}"
    return message


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _check_table(df) -> None:
    assert list(df.columns) == COLUMNS
    assert df["step"].dtype == np.int64
    for column in ("loss", "lr", "grad_norm"):
        assert df[column].dtype == np.float64
    assert df.index.tolist() == list(range(len(df)))


# --- format detection -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("wandb_chart_nanogpt.csv", "csv"),
        ("plain_metrics.csv", "csv"),
        ("slm_training/metrics.jsonl", "jsonl"),
        ("parlatent_metrics.jsonl", "jsonl"),
        ("hf_style_metrics.jsonl", "jsonl"),
        ("nanogpt_train.log", "text"),
        ("vla_finetune_stdout.log", "text"),  # its lines start with "[2025-...]", not JSON
        ("lerobot_act_train.log", "text"),
    ],
)
def test_detect_format_of_fixtures(name: str, expected: str) -> None:
    assert FORMATS == ("jsonl", "csv", "text")
    assert detect_format(FIXTURES / name) == expected


def test_format_comes_from_content_not_suffix(tmp_path: Path) -> None:
    jsonl = shutil.copy(FIXTURES / "parlatent_metrics.jsonl", tmp_path / "log.txt")
    table = shutil.copy(FIXTURES / "plain_metrics.csv", tmp_path / "metrics.log")
    text = shutil.copy(FIXTURES / "nanogpt_train.log", tmp_path / "stdout.jsonl")
    assert detect_format(jsonl) == "jsonl"
    assert detect_format(table) == "csv"
    assert detect_format(text) == "text"
    assert len(read_log(jsonl)) == 12 and len(read_log(table)) == 4 and len(read_log(text)) == 19
    # A text log whose lines hold commas is not a CSV: no row there is a number.
    commas = _write(
        tmp_path / "commas.log", "iter 0: loss 4.2, time 9ms\niter 1: loss 4.1, t 8ms\n"
    )
    assert detect_format(commas) == "text"


# --- real files -----------------------------------------------------------------------------


def test_wandb_chart_export_gives_one_run_per_column_group() -> None:
    df = read_log(FIXTURES / "wandb_chart_nanogpt.csv")
    _check_table(df)
    assert df.groupby("run", sort=False).size().to_dict() == WANDB_RUNS
    assert list(dict.fromkeys(df["run"])) == list(WANDB_RUNS)  # header order
    # Empty cells mean "not logged at this step": no NaN rows are made for them.
    assert not df["loss"].isna().any()
    assert df["lr"].isna().all() and df["grad_norm"].isna().all()
    first = df[df["run"] == "gpt2_last_char_to_char1729642919.4054031"]
    assert first["step"].tolist() == [0, 1, 2, 3, 4, 5, 48, 49, 50]
    assert first["loss"].iloc[0] == 25.48284149169922
    assert first["loss"].iloc[-1] == 3.7747888565063477
    # This run has no value at step 147 in the export (a gap, not the end of the run).
    gap = df[df["run"] == "gpt2_char_to_token1729578574.2848036"]["step"].tolist()
    assert 146 in gap and 147 not in gap and 148 in gap


def test_wandb_export_with_explicit_loss_key_and_run_rules(tmp_path: Path) -> None:
    path = FIXTURES / "wandb_chart_nanogpt.csv"
    assert read_log(path, loss_key="train/loss").equals(read_log(path))
    message = _error(path, "holds 8 runs", "run=", kind=ParameterError, run="mine")
    assert "'gpt2'" in message
    one = _write(
        tmp_path / "one.csv",
        '"Step","happy-fox-3 - train/loss","happy-fox-3 - train/loss__MIN",'
        '"happy-fox-3 - train/loss__MAX"\n"0","2.5","2.5","2.5"\n"10","NaN","NaN","NaN"\n',
    )
    df = read_log(one, run="baseline")
    assert df["run"].tolist() == ["baseline", "baseline"] and df["step"].tolist() == [0, 10]
    assert df["loss"].iloc[0] == 2.5 and math.isnan(df["loss"].iloc[1])


def test_wandb_export_without_the_loss_metric_lists_columns(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "acc.csv",
        '"Step","run-a - eval/success","run-a - eval/success__MIN","run-a - eval/success__MAX"\n'
        '"0","0.1","0.1","0.1"\n',
    )
    _error(path, "W&B export", "'run-a - eval/success'", "loss_key=")
    assert read_log(path, loss_key="eval/success")["loss"].tolist() == [0.1]


def test_wandb_export_against_epoch_uses_each_runs_own_step(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "by_epoch.csv",
        '"epoch","r1 - _step","r1 - _step__MIN","r1 - _step__MAX","r1 - train/loss",'
        '"r1 - train/loss__MIN","r1 - train/loss__MAX"\n'
        '"0","0","0","0","3.0","3.0","3.0"\n"1","50","50","50","2.0","2.0","2.0"\n',
    )
    df = read_log(path)
    assert df["step"].tolist() == [0, 50] and df["loss"].tolist() == [3.0, 2.0]


def test_wandb_runs_table_is_refused(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "wandb_export.csv",
        '"Name","State","Notes","User","Tags","Created","Runtime","Sweep","iter","train/loss"\n'
        '"baseline","finished","-","","full","2026-05-25T10:42:25.000Z","703","","5000","0.63"\n',
    )
    _error(path, "runs table", "not a history")


def test_trainer_metrics_jsonl_names_the_run_after_its_folder() -> None:
    df = read_log(FIXTURES / "slm_training" / "metrics.jsonl")
    _check_table(df)
    assert set(df["run"]) == {"slm_training"}
    assert df["step"].tolist() == list(range(20, 620, 20))
    assert df["loss"].iloc[0] == 8.552507877349854
    assert df["lr"].iloc[0] == 2.9884415999999995e-05 and df["lr"].notna().all()
    assert df["grad_norm"].isna().all()  # this trainer logs none
    assert read_log(FIXTURES / "slm_training" / "metrics.jsonl", run="r1")["run"].eq("r1").all()


def test_resumed_run_logging_a_step_twice_is_an_error() -> None:
    # Real: the trainer resumed from step 7500 and appended steps 7520.. again.
    _error(
        FIXTURES / "slm_training_resumed.jsonl",
        "run 'slm_training_resumed'",
        "step 7520 twice",
        "2.2500650882720947 (line 1)",
        "2.205518923699856 (line 5)",
    )


def test_eval_records_without_the_loss_key_are_skipped() -> None:
    df = read_log(FIXTURES / "parlatent_metrics.jsonl")
    _check_table(df)
    # Lines 1 and 12 are eval records (their losses are nested under "eval"): skipped.
    assert df["step"].tolist() == [0, 50, 100, 150, 200, 250, 300, 350, 400, 450, 500, 550]
    assert df["loss"].iloc[0] == 2.6961750984191895  # train_loss, not the eval loss 2.70
    assert set(df["run"]) == {"parlatent_metrics"}


def test_nanogpt_stdout_keeps_the_nan_tail_and_skips_eval_lines() -> None:
    df = read_log(FIXTURES / "nanogpt_train.log")
    _check_table(df)
    steps = [0, 5, 10, 15, 95, 100, 105, 395, *range(400, 455, 5)]
    assert df["step"].tolist() == steps
    # "step 0: train loss 4.2367, val loss 4.2475" is an eval estimate; iter 0 logged 4.2709.
    assert df["loss"].iloc[0] == 4.2709
    assert df.loc[df["step"] == 100, "loss"].item() == 3.4880
    diverged = df[df["step"] >= 425]
    assert len(diverged) == 6 and diverged["loss"].isna().all()
    assert df.loc[df["step"] < 425, "loss"].notna().all()


# --- own samples ----------------------------------------------------------------------------


def test_default_text_pattern_reads_the_common_spellings() -> None:
    df = read_log(FIXTURES / "vla_finetune_stdout.log")
    _check_table(df)
    assert df["step"].tolist() == [10, 20, 30, 40, 50, 60]
    assert df["loss"].iloc[:3].tolist() == [1.2345, 1.1021, 0.9812]
    assert math.isinf(df["loss"].iloc[3]) and df["loss"].iloc[3] > 0
    assert math.isnan(df["loss"].iloc[4])
    assert df["loss"].iloc[5] == 0.7504
    np.testing.assert_array_equal(df["lr"], [2e-5, 4e-5, 6e-5, 8e-5, np.nan, 1e-4])
    np.testing.assert_array_equal(df["grad_norm"], [3.21, 2.87, np.nan, np.inf, np.nan, 1.9])
    assert set(df["run"]) == {"vla_finetune_stdout"}


def test_lerobot_rounded_steps_are_an_error_not_a_wrong_curve() -> None:
    # step:1K covers steps 1000-1999: reading it as step 1 (or dropping it) would be wrong.
    _error(FIXTURES / "lerobot_act_train.log", "line 8", "'1K'", "rounded")
    df = read_log(
        FIXTURES / "lerobot_act_train.log",
        pattern=r"step:(?P<step>\d+) .* loss:(?P<loss>\S+) grdn:(?P<grad_norm>\S+)",
    )
    assert df["step"].tolist() == [200, 400, 600, 800]  # the lines with whole steps
    assert df["loss"].tolist() == [4.117, 2.902, 2.288, 1.976]
    assert df["grad_norm"].iloc[0] == 102.554 and df["lr"].isna().all()


def test_hf_style_jsonl_keys_run_id_and_non_finite_losses() -> None:
    df = read_log(FIXTURES / "hf_style_metrics.jsonl")
    _check_table(df)
    assert set(df["run"]) == {"openvla-lora-r32"}
    # The eval record (line 3) and the summary (line 8) are skipped; the exact repeat of
    # step 400 (line 6) is dropped; NaN and Infinity stay as logged.
    assert df["step"].tolist() == [100, 200, 300, 400]
    assert df["loss"].iloc[0] == 0.8123 and math.isinf(df["loss"].iloc[2])
    assert math.isnan(df["loss"].iloc[3])
    assert df["lr"].tolist() == [2e-05, 4e-05, 6e-05, 8e-05]
    assert df["grad_norm"].iloc[1] == 3.1
    eval_df = read_log(FIXTURES / "hf_style_metrics.jsonl", loss_key="eval/loss")
    assert eval_df["step"].tolist() == [200] and eval_df["loss"].tolist() == [0.7012]


def test_plain_csv_skips_rows_without_a_loss_and_keeps_nan_inf() -> None:
    df = read_log(FIXTURES / "plain_metrics.csv")
    _check_table(df)
    assert df["step"].tolist() == [0, 100, 300, 400]  # step 200 logged val_loss only
    assert df["loss"].iloc[:2].tolist() == [2.5, 1.75]
    assert math.isnan(df["loss"].iloc[2]) and math.isinf(df["loss"].iloc[3])
    assert df["lr"].tolist() == [0.0001, 0.0002, 0.0003, 0.0004]
    # Reading val_loss, the training rows hold an lr but no val_loss: they are left out,
    # with a warning (a NaN loss written as an empty cell would look the same).
    with pytest.warns(UserWarning, match=r"3 row\(s\) have an empty 'val_loss' cell.*2, 5, 6"):
        val = read_log(FIXTURES / "plain_metrics.csv", loss_key="val_loss")
    assert val["step"].tolist() == [100, 200] and val["loss"].tolist() == [1.9, 1.6]


def test_csv_run_column_splits_runs(tmp_path: Path) -> None:
    path = _write(tmp_path / "runs.csv", "run,step,loss\na,0,1.0\nb,0,2.0\na,1,0.5\n,1,9.0\n")
    df = read_log(path)
    assert df["run"].tolist() == ["a", "b", "a", "runs"]  # an empty cell: the file's name
    assert df["loss"].tolist() == [1.0, 2.0, 0.5, 9.0]


def test_custom_pattern_and_text_loss_key(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "custom.log",
        "Ep 1 | it 00010 | L 0.512 | LR 1e-4\nnoise\nEp 1 | it 00020 | L nan | LR 2e-4\n",
    )
    df = read_log(path, pattern=r"it (?P<step>\d+) \| L (?P<loss>\S+) \| LR (?P<lr>\S+)")
    assert df["step"].tolist() == [10, 20] and df["loss"].iloc[0] == 0.512
    assert math.isnan(df["loss"].iloc[1]) and df["lr"].tolist() == [1e-4, 2e-4]
    _error(
        path,
        "no line has a step and a loss",
        "it (?P<step>",
        pattern=r"it (?P<step>\d+)x(?P<loss>\d)",
    )

    named = _write(tmp_path / "named.log", "step 5 total_loss=0.3 loss_bc=0.1\nstep 6 loss=2\n")
    df = read_log(named, loss_key="total_loss")
    assert df["step"].tolist() == [5] and df["loss"].tolist() == [0.3]
    _error(named, "no line has a step and a loss", "action_loss", loss_key="action_loss")


def test_text_eval_lines_and_val_losses_are_not_training_losses(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "mixed.log",
        "step 100: train loss 2.4, val loss 2.5\n"  # an evaluation summary
        "step 100 val loss 2.6\n"
        "step 101 | loss 2.3 | val_loss 2.7\n"  # a training line that also reports val_loss
        "step 102 train_loss=2.2\n"
        "step 103 loss 0.5ms per batch\n"  # "0.5ms" is no number, and no "=" / ":" says it is
        "step 104 saving checkpoint, best loss so far 2.2\n",
    )
    df = read_log(path)
    assert df["step"].tolist() == [101, 102] and df["loss"].tolist() == [2.3, 2.2]


# --- malformed files ------------------------------------------------------------------------


def test_bad_json_line_names_the_line() -> None:
    _error(FIXTURES / "bad_json_line.jsonl", "line 3 is not valid JSON", "one JSON object per line")


def test_csv_short_row_names_the_line() -> None:
    _error(FIXTURES / "short_row.csv", "line 4 has 2 fields", "header (line 1) has 3")


def test_text_loss_that_is_not_a_number_names_the_line() -> None:
    _error(FIXTURES / "bad_loss_value.log", "line 3", "'abc'", "not a number")


def test_missing_loss_column_lists_the_columns() -> None:
    _error(
        FIXTURES / "no_loss_column.csv",
        "no loss column",
        "['step', 'val_loss', 'lr', 'grad_norm', 'epoch']",
        "loss_key=",
    )
    _error(FIXTURES / "no_loss_column.csv", "no column 'total'", loss_key="total")


def test_missing_loss_key_lists_the_first_30_keys(tmp_path: Path) -> None:
    record = ", ".join(f'"metric_{i:02d}": {i}' for i in range(40))
    path = _write(tmp_path / "wide.jsonl", f'{{"step": 1, {record}}}\n')
    message = _error(path, "no record has a loss key", "'metric_28'", "(11 more)", "loss_key=")
    assert "'metric_29'" not in message


def test_more_bad_jsonl_files(tmp_path: Path) -> None:
    _error(_write(tmp_path / "list.jsonl", '{"step": 1, "loss": 1}\n[1, 2]\n'), "line 2", "list")
    no_step = _write(tmp_path / "nostep.jsonl", '{"epoch": 0.1, "loss": 1.0}\n')
    _error(no_step, "line 1", "no step key", "'epoch'")
    later = _write(tmp_path / "later.jsonl", '{"step": 1, "loss": 1}\n{"loss": 2}\n')
    _error(later, "line 2", "no 'step'")
    _error(_write(tmp_path / "frac.jsonl", '{"step": 1.5, "loss": 1}\n'), "line 1", "1.5")
    _error(_write(tmp_path / "word.jsonl", '{"step": 1, "loss": "high"}\n'), "line 1", "'high'")
    pretty = _write(tmp_path / "trainer_state.json", '{\n  "log_history": []\n}\n')
    _error(pretty, "line 1 is not valid JSON", "one JSON document")


def test_text_duplicate_step_with_other_loss_names_both_lines(tmp_path: Path) -> None:
    path = _write(tmp_path / "dup.log", "step 1 loss=0.5\nstep 2 loss=0.4\nstep 2 loss=0.45\n")
    _error(path, "run 'dup'", "step 2 twice", "0.4 (line 2)", "0.45 (line 3)")
    same = _write(tmp_path / "same.log", "step 1 loss=0.5\nstep 1 loss=0.5\n")
    assert read_log(same)["step"].tolist() == [1]


def test_unreadable_paths(tmp_path: Path) -> None:
    _error(tmp_path / "absent.jsonl", "no such file")
    _error(_write(tmp_path / "blank.log", "\n  \n"), "is empty")
    (tmp_path / "adir").mkdir()
    _error(tmp_path / "adir", "is a directory")
    binary = tmp_path / "weights.log"
    binary.write_bytes(b"\x80\x81\x82 step 1 loss=1")
    _error(binary, "not UTF-8 text")
    _error(_write(tmp_path / "prose.log", "hello\nworld\n"), "no line has a step and a loss")


def test_bad_arguments(tmp_path: Path) -> None:
    path = FIXTURES / "nanogpt_train.log"
    with pytest.raises(ParameterError, match="run=''"):
        read_log(path, run="")
    with pytest.raises(ParameterError, match="loss_key=3"):
        read_log(path, loss_key=3)
    with pytest.raises(ParameterError, match="not a valid regex"):
        read_log(path, pattern="step (?P<step>")
    with pytest.raises(ParameterError, match=r"no named group \['loss'\]"):
        read_log(path, pattern=r"iter (?P<step>\d+)")
    with pytest.raises(ParameterError, match="both given"):
        read_log(path, pattern=r"(?P<step>\d+) (?P<loss>\S+)", loss_key="loss")
    with pytest.raises(ParameterError, match="reads as jsonl"):
        read_log(FIXTURES / "parlatent_metrics.jsonl", pattern=r"(?P<step>\d+) (?P<loss>\S+)")


# --- several files --------------------------------------------------------------------------


def test_read_logs_keeps_same_named_runs_apart(tmp_path: Path) -> None:
    a = _write(tmp_path / "a" / "metrics.jsonl", '{"step": 1, "loss": 1.0, "run": "seed0"}\n')
    b = _write(tmp_path / "b" / "metrics.jsonl", '{"step": 1, "loss": 2.0, "run": "seed0"}\n')
    c = _write(tmp_path / "c" / "metrics.jsonl", '{"step": 1, "loss": 3.0, "run": "seed0"}\n')
    df = read_logs([a, b, str(c)])
    _check_table(df)
    assert df["run"].tolist() == ["seed0", "seed0 (2)", "seed0 (3)"]
    assert df["loss"].tolist() == [1.0, 2.0, 3.0]


def test_read_logs_mixes_formats_and_applies_pattern_to_text_only() -> None:
    files = [
        FIXTURES / "wandb_chart_nanogpt.csv",
        FIXTURES / "slm_training" / "metrics.jsonl",
        FIXTURES / "nanogpt_train.log",
    ]
    df = read_logs(files)
    _check_table(df)
    sizes = df.groupby("run", sort=False).size().to_dict()
    assert sizes == {**WANDB_RUNS, "slm_training": 30, "nanogpt_train": 19}
    assert df.index.tolist() == list(range(len(df)))
    only_iters = read_logs(files, pattern=r"iter (?P<step>\d+): loss (?P<loss>\S+),")
    assert only_iters.equals(df)  # same lines, read with the caller's regex


def test_read_logs_arguments() -> None:
    with pytest.raises(ParameterError, match="one path"):
        read_logs(str(FIXTURES / "nanogpt_train.log"))
    with pytest.raises(ParameterError, match="empty"):
        read_logs([])
    with pytest.raises(DataError, match="short_row.csv: line 4"):
        read_logs([FIXTURES / "nanogpt_train.log", FIXTURES / "short_row.csv"])


# --- broken runs stay visible: NaN / inf / zero rows in every format ----------------------

# One run whose loss breaks: NaN, +inf, -inf, then exactly 0 (a masked NaN).
BROKEN_STEPS = [10, 20, 30, 40, 50, 60]
BROKEN_LOSS = [0.9, 0.5, math.nan, math.inf, -math.inf, 0.0]


def _broken_files(tmp_path: Path) -> dict[str, Path]:
    """The same run written by each format's usual writer."""
    pairs = list(zip(BROKEN_STEPS, BROKEN_LOSS, strict=True))
    jsonl = "".join(json.dumps({"step": s, "loss": v}) + "\n" for s, v in pairs)  # NaN, Infinity
    table = pd.DataFrame({"step": BROKEN_STEPS, "loss": BROKEN_LOSS, "lr": 1e-4})
    wandb = '"Step","r1 - train/loss","r1 - train/loss__MIN","r1 - train/loss__MAX"\n' + "".join(
        f'"{s}","{v}","{v}","{v}"\n'.replace("nan", "NaN") for s, v in pairs
    )
    return {
        "jsonl": _write(tmp_path / "broken.jsonl", jsonl),
        "csv": _write(tmp_path / "broken.csv", table.to_csv(index=False, na_rep="nan")),
        "wandb": _write(tmp_path / "wandb_export.csv", wandb),
        "text": _write(
            tmp_path / "broken.log", "".join(f"step {s} | Loss={v:.4f}\n" for s, v in pairs)
        ),
        "pattern": _write(tmp_path / "own.log", "".join(f"{s}: {v:.4f}\n" for s, v in pairs)),
    }


@pytest.mark.parametrize("kind", ["jsonl", "csv", "wandb", "text", "pattern"])
def test_every_format_keeps_nan_inf_and_zero_losses(tmp_path: Path, kind: str) -> None:
    path = _broken_files(tmp_path)[kind]
    pattern = r"^(?P<step>\d+): (?P<loss>\S+)$" if kind == "pattern" else None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is left out, so nothing to warn about
        df = read_log(path, pattern=pattern)
    _check_table(df)
    assert df["step"].tolist() == BROKEN_STEPS
    np.testing.assert_array_equal(df["loss"], BROKEN_LOSS)  # NaN == NaN here


def test_pandas_csv_with_empty_nan_cells_warns_with_the_lines(tmp_path: Path) -> None:
    # pandas writes NaN as an empty cell by default: the row looks like "loss not logged".
    table = pd.DataFrame({"step": [0, 1, 2], "loss": [1.0, math.nan, 0.5], "lr": 1e-4})
    path = _write(tmp_path / "pandas.csv", table.to_csv(index=False))
    with pytest.warns(UserWarning, match=r"pandas.csv: 1 row\(s\).*'loss'.*'lr' \(lines 3\)"):
        df = read_log(path)
    assert df["step"].tolist() == [0, 2]
    # Lightning-style sparse rows (an eval metric only) are left out without a warning.
    sparse = _write(tmp_path / "sparse.csv", "step,loss,val_loss\n0,1.0,\n0,,1.2\n1,0.5,\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_log(sparse)["loss"].tolist() == [1.0, 0.5]


def test_seed000_style_text_log_keeps_the_zero_tail(tmp_path: Path) -> None:
    # Seed 000: NaN outputs were masked and the log printed Loss=0.0000 from step 1850 on.
    lines = [
        f"[rank0] Epoch 0 | Step {s}/200000 | Loss={0.0412 if s < 1850 else 0.0:.4f} | LR=5.00e-04"
        for s in range(1800, 1900, 10)
    ]
    df = read_log(_write(tmp_path / "job_6213.out", "\n".join(lines) + "\n"))
    assert df["step"].tolist() == list(range(1800, 1900, 10))
    assert df.loc[df["step"] >= 1850, "loss"].eq(0.0).all()
    assert df.loc[df["step"] < 1850, "loss"].eq(0.0412).all() and df["lr"].eq(5e-4).all()


# --- text logs read with the user's own regex -----------------------------------------------

SALT_PATTERN = (
    r"^\[(?P<run>[^\]]+)\] \[train\] ep \d+ it (?P<step>\d+)/\d+ "
    r"loss=(?P<loss>\S+) lr=(?P<lr>\S+)"
)
HF_PATTERN = (
    r"\| (?P<step>\d+)/\d+ \[[^\]]*\]\{'loss': '?(?P<loss>[^,']+)'?, "
    r"'grad_norm': '?(?P<grad_norm>[^,']+)'?, 'learning_rate': '?(?P<lr>[^,']+)'?"
)
MMENGINE_PATTERN = (
    r"Epoch\(train\) \[1\]\[(?P<step>\d+)/\d+\]\s+lr: (?P<lr>\S+)"
    r".*\sloss: (?P<loss>\S+)\s+grad_norm: (?P<grad_norm>\S+)"
)


def test_user_regex_reads_seed003_train_lines_with_a_run_group() -> None:
    path = FIXTURES / "salt_vla_sweep_stdout.log"
    # "it 100/15820" is no step word the default reading knows: the regex is needed.
    _error(path, "no line has a step and a loss", "pass pattern=")
    df = read_logs([path], pattern=SALT_PATTERN)
    _check_table(df)
    assert df.groupby("run", sort=False).size().to_dict() == {"lr3e-4": 4, "lr4.5e-4": 3}
    first = df[df["run"] == "lr3e-4"]
    assert first["step"].tolist() == [100, 200, 300, 400]  # the [val] line is not read
    assert first["loss"].tolist() == [15.5904, 13.9431, 11.4512, 12.2107]
    assert first["lr"].tolist() == [1.5e-4, 3e-4, 3e-4, 2.99e-4]
    assert df["grad_norm"].isna().all()
    # run= renames a file's one run; it cannot merge the two runs the run group found
    message = _error(
        path, "holds 2 runs", "run group", kind=ParameterError, run="x", pattern=SALT_PATTERN
    )
    assert "'lr4.5e-4'" in message
    one_run = SALT_PATTERN.replace(r"(?P<run>[^\]]+)", r"lr3e-4")
    assert read_log(path, pattern=one_run, run="x")["run"].eq("x").all()


def test_user_regex_reads_a_huggingface_trainer_stdout(tmp_path: Path) -> None:
    path = FIXTURES / "hf_trainer_stdout.log"
    assert detect_format(path) == "text"
    _error(path, "no line has a step and a loss")  # the dicts carry no step of their own
    df = read_log(path, pattern=HF_PATTERN)
    _check_table(df)
    assert df["step"].tolist() == [500, 1000, 1500, 2000]  # eval and summary dicts skipped
    assert df["loss"].tolist() == [0.3907, 0.2051, 0.0, 0.0]  # the zeros stay
    assert df["grad_norm"].iloc[0] == 7.779932022094727 and df["grad_norm"].iloc[1:].isna().all()
    assert df["lr"].iloc[1] == 9.774074342405685e-06
    # transformers 5 prints the values as strings ('loss': '0.3907'): the same pattern
    # reads them
    text = path.read_text(encoding="utf-8")
    for key in ("loss", "grad_norm", "learning_rate"):
        text = re.sub(rf"'{key}': ([^,]+),", rf"'{key}': '\1',", text)
    assert "'loss': '0.0', 'grad_norm': 'nan'" in text
    quoted = read_log(_write(tmp_path / "hf5.log", text), pattern=HF_PATTERN)
    assert quoted.drop(columns="run").equals(df.drop(columns="run"))


def test_user_regex_reads_real_mmengine_lines() -> None:
    path = FIXTURES / "xtuner_mmengine_train.log"
    _error(path, "no line has a step and a loss")
    df = read_log(path, pattern=MMENGINE_PATTERN)
    assert df["step"].tolist() == [200, 210, 220, 230, 240, 250]
    assert df["loss"].tolist() == [2.7522, 2.615, 2.6687, 2.7682, 2.5128, 2.4566]
    assert df["lr"].iloc[0] == 1.987e-4
    assert df["grad_norm"].iloc[:4].tolist() == [3.0608, 2.7647, 2.7647, 2.5099]
    assert df["grad_norm"].iloc[4:].isna().all()  # "grad_norm: nan" kept as NaN
    assert set(df["run"]) == {"xtuner_mmengine_train"}


def test_user_regex_errors_name_the_pattern_and_the_file(tmp_path: Path) -> None:
    path = FIXTURES / "hf_trainer_stdout.log"
    with pytest.raises(ParameterError) as info:
        read_logs([path], pattern=r"(?P<step>\d+")
    assert "is not a valid regex: missing ), unterminated subpattern" in str(info.value)
    assert r"pattern='(?P<step>\\d+'" in str(info.value)
    with pytest.raises(ParameterError, match=r"no named group \['step'\]"):
        read_logs([path], pattern=r"loss': (?P<loss>\S+)")
    with pytest.raises(ParameterError, match=r"no named group \['step', 'loss'\]"):
        read_logs([path], pattern=r"(\d+)/\d+")
    # a group name this reader does not know would leave its column silently empty
    with pytest.raises(ParameterError, match=r"\['learning_rate'\], which are not read"):
        read_logs([path], pattern=HF_PATTERN.replace("P<lr>", "P<learning_rate>"))
    # a pattern matching no line of one of the files: that file is named, with the pattern
    with pytest.raises(DataError) as info:
        read_logs([path, FIXTURES / "salt_vla_sweep_stdout.log"], pattern=HF_PATTERN)
    message = str(info.value)
    assert "salt_vla_sweep_stdout.log: no line has a step and a loss" in message
    assert "matching pattern" in message and "'grad_norm'" in message
    # a step group that caught no whole number names the line
    bad = _write(tmp_path / "bad_step.log", "step 1.5 loss 0.3\n")
    _error(
        bad,
        "line 1",
        "'1.5'",
        "not a whole number",
        pattern=r"step (?P<step>\S+) loss (?P<loss>\S+)",
    )
