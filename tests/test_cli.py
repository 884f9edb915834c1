"""Tests for the ``nblib`` command: help texts, options built from the config dataclasses,
``data check``, ``data ensure``, ``bench``, ``lr analyze --pattern``.

Expected failures must exit with status 1 and one message on stderr, no traceback.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tiny_data import corrupt, write_tiny_dataset

from nblib import __version__
from nblib.cli import build_parser, main
from nblib.cli.options import LazyParser, add_config_options, config_from, field_comments
from nblib.errors import ParameterError

LOGS = Path(__file__).parent / "fixtures" / "training_logs"

SUBCOMMANDS = [
    [],
    ["data"],
    ["data", "generate"],
    ["data", "check"],
    ["data", "ensure"],
    ["run"],
    ["run-all"],
    ["clean"],
    ["bench"],
    ["lr", "analyze"],
    ["batch"],
    ["compare"],
    ["eval"],
    ["results", "summarize"],
    ["results", "baselines"],
]


@pytest.mark.parametrize("words", SUBCOMMANDS, ids=lambda w: " ".join(w) or "nblib")
def test_help_exits_zero(words, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*words, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: nblib" + "".join(f" {w}" for w in words))


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name in ("data", "run", "run-all", "bench"):
        assert name in out


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"nblib {__version__}"


def test_missing_command_is_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main([])
    assert exit_.value.code == 2
    assert "usage: nblib" in capsys.readouterr().err


def test_python_dash_m_nblib():
    result = subprocess.run(
        [sys.executable, "-m", "nblib", "data", "check", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: nblib data check")
    assert "--horizon" in result.stdout


@pytest.fixture
def tiny(tmp_path):
    return write_tiny_dataset(
        tmp_path / "tiny.h5", lengths=(7, 5, 6), tasks=("reach", "push", "reach"), image_size=8
    )


def test_data_check_valid_file(tiny, capsys):
    assert main(["data", "check", str(tiny)]) == 0
    captured = capsys.readouterr()
    assert "demos 3, steps 18" in captured.out
    assert str(tiny) in captured.out and "OK" in captured.out
    assert captured.err == ""


def test_data_check_horizon_too_long(tiny, capsys):
    assert main(["data", "check", str(tiny), "--horizon", "6"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("nblib: error:") and str(tiny) in err
    assert "Traceback" not in err


@pytest.mark.parametrize("what", ["not_hdf5", "truncate"])
def test_data_check_corrupt_file(tiny, capsys, what):
    corrupt(tiny, what)
    assert main(["data", "check", str(tiny)]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("nblib: error:")
    assert str(tiny) in captured.err
    assert captured.out == ""


def test_data_check_missing_key(tiny, capsys):
    corrupt(tiny, "delete", key="data/demo_1/actions")
    assert main(["data", "check", str(tiny)]) == 1
    err = capsys.readouterr().err
    assert str(tiny) in err and "actions" in err


def test_data_check_missing_file(tmp_path, capsys):
    path = tmp_path / "nowhere.h5"
    assert main(["data", "check", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("nblib: error:") and str(path) in err


def test_data_ensure_missing_file(tmp_path, monkeypatch, capsys):
    (tmp_path / "gone.yaml").write_text("name: gone\nkind: dataset\nfile: gone.h5\nsha256: '0'\n")
    monkeypatch.setenv("NBLIB_MANIFESTS", str(tmp_path))
    monkeypatch.setenv("NBLIB_DATA", str(tmp_path))
    assert main(["data", "ensure", "gone", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert str(tmp_path / "gone.h5") in err


def test_data_ensure_unknown_manifest(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NBLIB_MANIFESTS", str(tmp_path))
    assert main(["data", "ensure", "nope"]) == 1
    assert "manifest 'nope' not found" in capsys.readouterr().err


def test_bench_unknown_name(capsys):
    assert main(["bench", "no-such-benchmark"]) == 1
    err = capsys.readouterr().err
    assert "unknown benchmark 'no-such-benchmark'" in err and "loader" in err


def test_generate_rejects_unknown_task(tmp_path, capsys):
    out = tmp_path / "x.hdf5"
    code = main(["data", "generate", "--tasks", "fly-to-the-moon", "--out", str(out), "--quiet"])
    assert code == 1
    assert "fly-to-the-moon" in capsys.readouterr().err
    assert not out.exists()


def _help_text(words: list[str], capsys) -> str:
    """The help of ``nblib WORDS``, whitespace collapsed (argparse wraps at any space)."""
    with pytest.raises(SystemExit):
        main([*words, "--help"])
    return " ".join(capsys.readouterr().out.split())


def _documented(text: str, flag: str, comment: str) -> bool:
    """``flag`` is listed with ``comment`` as its help (after its metavar or choices)."""
    comment = " ".join(comment.split())
    return re.search(re.escape(flag) + r"(?: \S+){1,3} " + re.escape(comment), text) is not None


def test_help_of_nblib_imports_no_config_module():
    code = textwrap.dedent(
        """
        import sys
        from nblib.cli import main
        try:
            main(["--help"])
        except SystemExit:
            pass
        heavy = ("torch", "pandas", "nblib.eval.rollout", "nblib.data.metaworld_gen")
        print([m for m in heavy if m in sys.modules], file=sys.stderr)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "[]"
    assert "eval" in result.stdout and "lr" in result.stdout


@pytest.mark.parametrize(
    "words, module, name",
    [
        (["eval"], "nblib.eval.rollout", "EvalConfig"),
        (["data", "generate"], "nblib.data.metaworld_gen", "GenerateConfig"),
    ],
)
def test_every_config_field_is_a_flag_with_its_comment_as_help(words, module, name, capsys):
    cls = getattr(importlib.import_module(module), name)
    text = _help_text(words, capsys)
    comments = field_comments(cls)
    assert comments and set(comments) <= {f.name for f in dataclasses.fields(cls)}
    for field in dataclasses.fields(cls):
        flag = "--" + field.name.replace("_", "-")
        assert f"[{flag} " in text or f" {flag} " in text, flag  # in the usage line
        if field.name in comments:
            assert _documented(text, flag, comments[field.name]), (flag, comments[field.name])


def test_eval_max_steps_help_is_the_libero_step_table(capsys):
    from nblib.eval.libero import SUITE_MAX_STEPS

    text = _help_text(["eval"], capsys)
    assert SUITE_MAX_STEPS["libero_10"] == 520  # openvla-oft's run_libero_eval.py
    for suite, steps in SUITE_MAX_STEPS.items():
        assert f"{suite} {steps}" in text


def test_a_bad_config_value_names_the_flag_typed(capsys):
    assert (
        main(["eval", "--policy", "zero", "--episodes", "1", "--max-steps", "0", "--out", "x"]) == 1
    )
    assert capsys.readouterr().err == (
        "nblib: error: --max-steps=0 is invalid; expected None or an int >= 1\n"
    )
    assert main(["data", "generate", "--demos", "0", "--quiet"]) == 1
    assert capsys.readouterr().err == (
        "nblib: error: --demos: need at least 1 demo per task, got 0\n"
    )


TOY = """
from dataclasses import dataclass, field

from nblib.errors import require

MODES = ("fast", "slow")


@dataclass
class ToyConfig:
    \"\"\"A config written the way nblib's are.\"\"\"

    steps: int = 10  # optimizer steps per run
    mode: str = "fast"  # how to run
    # The learning rate at the peak of the schedule,
    # after the warmup.
    peak_lr: float = 1e-3

    tags: list[str] | None = None
    names: tuple[str, ...] = ("a", "b")  # 100% of the names
    verbose: bool = False  # print more
    extra: dict = field(default_factory=dict)  # anything else
{new}
    def __post_init__(self):
        require(self.steps >= 1, "ToyConfig", "steps", self.steps, "an int >= 1")
"""


def _toy_config(tmp_path, monkeypatch, module: str, new: str = ""):
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / f"{module}.py").write_text(TOY.replace("{new}", new))
    return importlib.import_module(module).ToyConfig


def _toy_parser(cls) -> LazyParser:
    parser = LazyParser(prog="toy")
    add_config_options(parser, cls, flags={"steps": "--iters"}, choices={"mode": ("fast", "slow")})
    return parser


def test_config_options_from_a_throwaway_dataclass(tmp_path, monkeypatch, capsys):
    cls = _toy_config(tmp_path, monkeypatch, "toy_config_v1")
    assert field_comments(cls) == {
        "steps": "optimizer steps per run",
        "mode": "how to run",
        "peak_lr": "The learning rate at the peak of the schedule, after the warmup.",
        "names": "100% of the names",
        "verbose": "print more",
        "extra": "anything else",
    }
    parser = _toy_parser(cls)
    text = " ".join(parser.format_help().split())
    assert _documented(text, "--iters", "optimizer steps per run (default: 10)")
    assert _documented(text, "--mode", "how to run (default: fast)")
    assert _documented(text, "--names", "100% of the names (default: a b)")
    assert "--verbose, --no-verbose print more" in text
    assert "--steps" not in text

    args = parser.parse_args(
        ["--iters", "3", "--names", "x", "y", "--tags", "t", "--verbose", "--extra", "{k: 1}"]
    )
    config = config_from(args)
    assert config == cls(
        steps=3, names=("x", "y"), tags=["t"], verbose=True, extra={"k": 1}, peak_lr=1e-3
    )
    assert config_from(parser.parse_args([])) == cls()

    with pytest.raises(ParameterError, match=r"^--iters=0 is invalid; expected an int >= 1$"):
        config_from(parser.parse_args(["--iters", "0"]))
    for bad, message in (
        (["--iters", "x"], "argument --iters: invalid int value: 'x'"),
        (["--mode", "medium"], "argument --mode: invalid choice: 'medium'"),
        (["--extra", "[1]"], "argument --extra: expected a mapping"),
    ):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)
        assert message in capsys.readouterr().err


def test_a_field_added_to_a_config_becomes_an_option_with_no_other_edit(tmp_path, monkeypatch):
    before = _toy_config(tmp_path, monkeypatch, "toy_config_v2a")
    after = _toy_config(
        tmp_path, monkeypatch, "toy_config_v2b", new="    warmup_steps: int = 0  # linear warmup\n"
    )
    assert "--warmup-steps" not in _toy_parser(before).format_help()
    parser = _toy_parser(after)  # the same call as before the field existed
    assert _documented(" ".join(parser.format_help().split()), "--warmup-steps", "linear warmup")
    assert config_from(parser.parse_args(["--warmup-steps", "5"])).warmup_steps == 5


def test_lr_analyze_flags_keep_their_names_and_fill_lr_config():
    parser = build_parser()
    args = parser.parse_args(
        ["lr", "analyze", "a.log", "b.csv", "--window", "7", "--threshold", "0.2", "--warmup",
         "5", "--smoothing", "3", "--loss-key", "train/loss", "--pattern", r"(?P<step>\d+)"]
    )  # fmt: skip
    config = config_from(args, log_files=args.files)
    assert config.log_files == ["a.log", "b.csv"] and config.loss_key == "train/loss"
    assert (config.plateau_window, config.plateau_threshold) == (7, 0.2)
    assert (config.log_warmup_steps, config.smoothing) == (5, 3)
    assert config.log_pattern == r"(?P<step>\d+)"


def test_lr_analyze_pattern_reads_a_log_the_default_patterns_reject(capsys):
    # LeRobot's training stdout rounds its steps (step:1K); its whole-step lines hold
    # losses 4.117, 2.902, 2.288, 1.976 at steps 200..800 (tests/test_training_logs.py).
    log = str(LOGS / "lerobot_act_train.log")
    assert main(["lr", "analyze", log]) == 1
    assert "rounded" in capsys.readouterr().err
    pattern = r"step:(?P<step>\d+) .* loss:(?P<loss>\S+) grdn:(?P<grad_norm>\S+)"
    assert main(["lr", "analyze", log, "--pattern", pattern, "--format", "json"]) == 0
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert line["run"] == "lerobot_act_train" and line["steps"] == 801
    assert line["min_loss"] == 1.976 and line["diverged"] is False
