"""nblib.metrics.gradient_flow on hand-made histories: a healthy run, a module that never
receives a gradient, modules whose gradient vanishes, runs that only look alarming (the
whole model converging, a module that is always tiny), and histories without the keys."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nblib.errors import ParameterError
from nblib.metrics import gradient_flow as gf
from nblib.train import History

MODULES = ("policy.projector", "policy.expert.layers.0", "policy.expert.layers.1", "policy.head")


def history(norm, steps=200, every=10, total=None, modules=MODULES, seed=0) -> History:
    """``steps`` records with loss/lr/grad_norm/seconds; every ``every`` steps and at the
    last one a ``grad_norm/<module>`` key per module with value ``norm(module, step, rng)``.
    The total is ``total(step)`` (default: the root sum of squares of the modules' norms)."""
    rng = np.random.default_rng(seed)
    records = []
    for step in range(steps):
        record = {"step": step, "loss": 1.0, "lr": 1e-3, "seconds": 0.01}
        per_module = {}
        if step % every == 0 or step == steps - 1:
            per_module = {m: float(norm(m, step, rng)) for m in modules}
        record["grad_norm"] = (
            float(total(step)) if total is not None else float(np.sqrt(1.0 + rng.random()))
        )
        if per_module and total is None:
            record["grad_norm"] = float(np.sqrt(sum(v * v for v in per_module.values())))
        record |= {f"grad_norm/{m}": v for m, v in per_module.items()}
        records.append(record)
    return History(records)


def healthy(module, step, rng):
    """Norms that fall 100x over 200 steps with 30 % multiplicative noise: a normal run."""
    scale = 1.0 + MODULES.index(module) if module in MODULES else 1.0
    return scale * 0.1 * 100 ** (-step / 200) * rng.lognormal(0.0, 0.3)


def test_module_norms_read_the_per_module_keys_in_order_of_appearance():
    hist = history(healthy)
    hist[5]["grad_norm/policy.late"] = 0.5  # a module first recorded after the others
    norms = gf.module_norms(hist)
    assert list(norms) == [*MODULES, "policy.late"]
    steps, values = norms["policy.head"]
    assert steps.tolist() == [*range(0, 200, 10), 199]  # every 10 steps and the last
    assert values.tolist() == [
        r["grad_norm/policy.head"] for r in hist if "grad_norm/policy.head" in r
    ]
    assert norms["policy.late"][0].tolist() == [5]


def test_a_healthy_run_has_no_findings_and_json_able_flow():
    hist = history(healthy)
    assert gf.gradient_findings(hist) == []
    assert gf.module_problems(hist) == {}
    flow = gf.gradient_flow(hist)
    assert list(flow) == list(MODULES)
    head = flow["policy.head"]
    values = gf.module_norms(hist)["policy.head"][1]
    assert head == {
        "last": values[-1],
        "min": values.min(),
        "median": float(np.median(values)),
        "points": 21,
    }
    assert json.loads(json.dumps(flow)) == flow
    assert all(type(v) is float for f in flow.values() for k, v in f.items() if k != "points")


@pytest.mark.parametrize("seed", range(5))
def test_healthy_runs_never_flip_to_a_finding(seed):
    """Noisy norms falling 100x (a healthy run's range) stay far from the 1e-6 bounds."""
    assert gf.gradient_findings(history(healthy, seed=seed)) == []


def test_a_module_unused_by_the_loss_never_received_a_gradient():
    def norm(module, step, rng):
        return 0.0 if module == "policy.expert.layers.1" else healthy(module, step, rng)

    findings = gf.gradient_findings(history(norm))
    assert len(findings) == 1
    assert findings[0].startswith(
        "module policy.expert.layers.1 never received a gradient (its parameters are "
        "trainable but unused by the loss)"
    )
    assert "all 21 recorded steps" in findings[0]
    assert gf.gradient_flow(history(norm))["policy.expert.layers.1"]["last"] == 0.0


def test_a_vanishing_gradient_is_found():
    """The head's norm falls 1e12-fold in the second half while the rest stays healthy."""

    def norm(module, step, rng):
        value = healthy(module, step, rng)
        return value * 1e-12 if module == "policy.head" and step >= 100 else value

    hist = history(norm)
    problems = gf.module_problems(hist)
    assert list(problems) == ["policy.head"] and problems["policy.head"]["problem"] == "vanished"
    assert problems["policy.head"]["quarter"] == 5  # 21 points: quarters of 5
    (finding,) = gf.gradient_findings(hist)
    assert finding.startswith("module policy.head's gradient vanished: median norm ")
    assert "last 5 recorded steps" in finding and "of the total gradient norm" in finding


def test_a_module_that_stops_receiving_gradients_vanished():
    """Exactly 0 from step 120 on (a freeze or a detach midway), nonzero before."""

    def norm(module, step, rng):
        value = healthy(module, step, rng)
        return 0.0 if module == "policy.projector" and step >= 120 else value

    (finding,) = gf.gradient_findings(history(norm))
    assert finding.startswith("module policy.projector's gradient vanished: median norm 0 ")


def test_the_whole_model_converging_is_not_a_vanished_module():
    """Every norm, the total included, falls 1e9-fold together (a loss going to ~0): each
    module keeps its share of the total, so nothing vanished."""

    def norm(module, step, rng):
        return healthy(module, 0, rng) * 1e-9 ** (step / 199)

    hist = history(norm)
    first, last = gf.module_norms(hist)["policy.head"][1][[0, -1]]
    assert last < 1e-8 * first  # the drop alone would fire
    assert gf.gradient_findings(hist) == []


def test_a_module_always_tiny_but_alive_is_not_vanished():
    """1e-9 of the total at every step: the share alone would fire, the drop does not."""

    def norm(module, step, rng):
        value = healthy(module, step, rng)
        return value * 1e-9 if module == "policy.projector" else value

    assert gf.gradient_findings(history(norm)) == []


def test_a_thousandfold_drop_is_not_vanishing():
    def norm(module, step, rng):
        value = healthy(module, step, rng)
        return value * 1e-3 if module == "policy.head" and step >= 100 else value

    assert gf.gradient_findings(history(norm)) == []


def test_without_a_recorded_total_the_drop_alone_decides():
    def norm(module, step, rng):
        value = healthy(module, step, rng)
        return value * 1e-12 if module == "policy.head" and step >= 100 else value

    hist = history(norm)
    for record in hist:
        del record["grad_norm"]
    (finding,) = gf.gradient_findings(hist)
    assert "policy.head's gradient vanished" in finding and "of the total" not in finding


def test_too_few_points_judge_only_never():
    """Three recorded norms cannot tell a vanished gradient from one odd step; an all-zero
    module is still reported."""

    def norm(module, step, rng):
        if module == "policy.head":
            return 0.0
        return 1.0 if step == 0 else 1e-12

    hist = history(norm, steps=21)  # steps 0, 10, 20
    assert len(gf.module_norms(hist)["policy.projector"][0]) == 3 < gf.MIN_POINTS
    (finding,) = gf.gradient_findings(hist)
    assert "policy.head never received a gradient" in finding


def test_a_history_without_per_module_norms():
    hist = history(healthy)
    for record in hist:
        for key in [k for k in record if k.startswith(gf.PREFIX)]:
            del record[key]
    assert gf.module_norms(hist) == {}
    assert gf.gradient_flow(hist) == {}
    assert gf.gradient_findings(hist) == []
    assert gf.gradient_flow([]) == {}


def test_bad_histories_name_the_record_and_key():
    with pytest.raises(ParameterError, match="history must be a History or a list"):
        gf.gradient_flow({"step": 0})
    with pytest.raises(ParameterError, match=r"history\[1\] must be a dict"):
        gf.module_norms([{"step": 0}, 3.0])
    with pytest.raises(ParameterError, match=r"history\[0\]\['grad_norm/head'\]=-1.0"):
        gf.module_norms([{"step": 0, "grad_norm/head": -1.0}])
    with pytest.raises(ParameterError, match="finite number >= 0"):
        gf.module_norms([{"step": 0, "grad_norm/head": float("nan")}])
    with pytest.raises(ParameterError, match=r"history\[0\] has 'grad_norm/head' but no 'step'"):
        gf.module_norms([{"grad_norm/head": 1.0}])
