"""The plug-in contract's edges: specs that name nothing, factories and models that break
the contract, each a PluginError naming the spec. Policies here are written to temporary
files, outside nblib, as a user's would be."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from nblib.errors import PluginError
from nblib.plugins.contract import (
    PolicyInfo,
    build,
    check_chunk,
    check_loss,
    check_module,
    make_batch,
)
from nblib.plugins.spec import absolute_spec, entry_point_names, is_policy_spec, load_factory

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "policies"


def info(action_dim=4, horizon=3) -> PolicyInfo:
    stats = {
        kind: {
            n: np.zeros(d, np.float32) + (1 if n in ("std", "max") else 0)
            for n in "mean std min max".split()
        }
        for kind, d in (("action", action_dim), ("state", 2))
    }
    return PolicyInfo(action_dim, 2, ("front",), (8, 8), horizon, stats, ("push",))


def write(tmp_path: Path, source: str, name: str = "my_policy.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


def test_specs_are_told_from_nblibs_own_policy_names(tmp_path):
    for value in ("tiny", "nblib", "runs/01_overfit_diagnosis", "/abs/ckpt", "default", ""):
        assert not is_policy_spec(value), value
    for value in ("my_policy.py:make", "dir/a.py:make_policy", "lab.adapters:make", "m:f"):
        assert is_policy_spec(value), value
    assert absolute_spec("a.py:make", tmp_path) == f"{tmp_path / 'a.py'}:make"
    assert absolute_spec("lab.adapters:make", tmp_path) == "lab.adapters:make"


@pytest.mark.parametrize(
    "spec, message",
    [
        ("missing_file.py:make", r"no such file .*missing_file\.py"),
        ("no_such_package_xyz.mod:make", r"no module named 'no_such_package_xyz'"),
        ("not_installed_name", r"nor an entry point of group 'nblib\.policies'"),
    ],
)
def test_a_spec_naming_nothing_is_an_error_naming_it(tmp_path, monkeypatch, spec, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PluginError, match=message) as err:
        load_factory(spec)
    assert repr(spec) in str(err.value)


def test_a_missing_factory_lists_the_files_callables(tmp_path):
    path = write(tmp_path, "def make_policy(info):\n    pass\nVALUE = 3\n")
    with pytest.raises(PluginError, match=r"has no 'make'; its callables: make_policy"):
        load_factory(f"{path}:make")
    with pytest.raises(PluginError, match=r"'VALUE' is a int, not a callable"):
        load_factory(f"{path}:VALUE")


def test_a_file_that_fails_to_import_shows_its_error(tmp_path):
    path = write(tmp_path, "import torch\nraise RuntimeError('needs a GPU driver')\n", "bad.py")
    with pytest.raises(PluginError, match=r"importing .*bad\.py failed: RuntimeError: needs a GPU"):
        load_factory(f"{path}:make")


def test_a_file_imports_its_neighbours(tmp_path):
    write(tmp_path, "WIDTH = 7\n", "helpers_for_policy.py")
    path = write(
        tmp_path, "from helpers_for_policy import WIDTH\ndef make(info):\n    return WIDTH\n"
    )
    try:
        assert load_factory(f"{path}:make")(None) == 7
    finally:
        sys.modules.pop("helpers_for_policy", None)


def test_an_installed_entry_point_is_a_spec(tmp_path, monkeypatch):
    # A distribution as pip installs it: a dist-info folder with entry_points.txt.
    package = tmp_path / "lab_adapters_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("def make(info, scale=1):\n    return ('lab', scale)\n")
    dist = tmp_path / "lab_adapters-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: lab-adapters\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[nblib.policies]\nlab_vla = lab_adapters_pkg:make\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "lab_vla" in entry_point_names()
    assert is_policy_spec("lab_vla")
    assert load_factory("lab_vla")(None, scale=2) == ("lab", 2)


class _Chunker(torch.nn.Module):
    def __init__(self, shape=None, fill=0.0):
        super().__init__()
        self.linear = torch.nn.Linear(2, 4)
        self.shape, self.fill = shape, fill

    def predict_action_chunk(self, batch):
        b = batch["observation.state"].shape[0]
        return torch.full(self.shape or (b, 3, 4), self.fill)

    def forward(self, batch):
        return self.linear(batch["observation.state"]).pow(2).mean(), {"mse": 1.0}


def test_what_a_factory_returns_is_checked():
    spec = "mine.py:make"
    with pytest.raises(
        PluginError, match=r"the factory returned a dict; expected a torch\.nn\.Module"
    ):
        build(lambda info: {}, info(), {}, spec)
    with pytest.raises(PluginError, match=r"has no predict_action_chunk"):
        check_module(torch.nn.Linear(2, 2), spec)
    with pytest.raises(PluginError, match=r"the factory raised ValueError: width must be even"):
        build(
            lambda info, width: (_ for _ in ()).throw(ValueError("width must be even")),
            info(),
            {"width": 3},
            spec,
        )
    with pytest.raises(
        PluginError, match=r"probe stage 'trunk' names 'body', which is not a submodule"
    ):
        model = _Chunker()
        model.probe_stages = {"trunk": "body"}
        check_module(model, spec)
    assert check_module(_Chunker(), spec) is not None


def test_chunks_of_the_wrong_shape_dtype_or_with_nan_are_refused():
    spec, i = "mine.py:make", info()
    assert check_chunk(torch.zeros(2, 3, 4), 2, i, spec).shape == (2, 3, 4)
    with pytest.raises(
        PluginError, match=r"shape \(2, 4\); expected \(B, horizon, action_dim\) = \(2, 3, 4\)"
    ):
        check_chunk(torch.zeros(2, 4), 2, i, spec)
    with pytest.raises(PluginError, match=r"dtype torch\.int64; expected floats"):
        check_chunk(torch.zeros(2, 3, 4, dtype=torch.long), 2, i, spec)
    with pytest.raises(PluginError, match=r"1 non-finite value\(s\)"):
        bad = torch.zeros(2, 3, 4)
        bad[1, 2, 3] = float("nan")
        check_chunk(bad, 2, i, spec)
    with pytest.raises(PluginError, match=r"returned a list"):
        check_chunk([[0.0]], 2, i, spec)


def test_losses_that_are_not_finite_scalars_with_a_gradient_are_refused():
    spec = "mine.py:make"
    w = torch.ones(3, requires_grad=True)
    terms = check_loss((w.sum(), {"mse": torch.tensor(0.5)}), spec)
    assert set(terms) == {"loss", "mse"} and float(terms["mse"]) == 0.5
    with pytest.raises(PluginError, match=r"expected \(loss, logs_dict\)"):
        check_loss(w.sum(), spec)
    with pytest.raises(PluginError, match=r"loss is \(3,\); expected a scalar"):
        check_loss((w * 2, {}), spec)
    with pytest.raises(PluginError, match=r"carries no gradient"):
        check_loss((w.sum().detach(), {}), spec)
    with pytest.raises(PluginError, match=r"loss is nan"):
        check_loss(((w * float("nan")).sum(), {}), spec)
    with pytest.raises(PluginError, match=r"logs\['note'\] is a str"):
        check_loss((w.sum(), {"note": "hello"}), spec)


def test_batches_use_lerobots_keys_and_units():
    frames = [[np.full((8, 8, 3), 255, np.uint8)], [np.zeros((8, 8, 3), np.uint8)]]
    batch = make_batch(
        frames,
        ("front",),
        np.array([[1.0, 2.0], [3.0, 4.0]]),
        ["push", "reach"],
        action=np.zeros((2, 3, 4)),
        action_is_pad=np.zeros((2, 3), bool),
    )
    image = batch["observation.images.front"]
    assert image.shape == (2, 3, 8, 8) and image.dtype == torch.float32
    assert float(image[0].min()) == 1.0 and float(image[1].max()) == 0.0
    assert batch["observation.state"].dtype == torch.float32
    assert batch["action"].shape == (2, 3, 4) and batch["action_is_pad"].dtype == torch.bool
    assert batch["task"] == ["push", "reach"]


def test_the_info_round_trips_through_json():
    i = info()
    back = PolicyInfo.from_json(i.to_json())
    assert back.cameras == i.cameras and back.image_size == i.image_size
    np.testing.assert_array_equal(back.stats["action"]["std"], i.stats["action"]["std"])


def test_eval_refuses_a_spec_naming_nothing_before_writing_its_output(tmp_path, capsys):
    from nblib.cli import main

    out = tmp_path / "r.csv"
    argv = ["eval", "--policy", str(tmp_path / "nope.py") + ":make", "--episodes", "1"]
    assert main([*argv, "--policy-kwargs", "{width: 8}", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "no such file" in err and "nope.py" in err and not out.exists()
    with pytest.raises(SystemExit) as exit_code:  # argparse's usage error: not a mapping
        main([*argv, "--policy-kwargs", "[1, 2]", "--out", str(out)])
    assert exit_code.value.code == 2
    assert "--policy-kwargs: expected a mapping" in capsys.readouterr().err
