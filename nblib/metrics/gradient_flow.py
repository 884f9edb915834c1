"""Does every trainable module of a policy receive a gradient, and does it keep receiving one?

The training loop (:func:`nblib.train.train`) records, every ``grad_flow_every`` steps and
at the last step, one key ``grad_norm/<module>`` per module: the L2 norm of that module's
gradient before clipping, 0.0 when its trainable parameters got no gradient at all or an
exactly zero one. Modules are dotted names (``policy.projector``,
``policy.expert.layers.0``, ``backbone``). This module turns those records into the
``gradient_flow`` entry of metrics.json and into the verdict's reasons.

Seed 001 is why: its LoRA adapters were trainable, saved and counted, but never hooked into
the forward pass, so they never received a gradient and nobody noticed for a whole run.

Everything here is pure numpy on a ``History`` (a list of per-step dicts); records without
per-module keys are skipped, so a history recorded without them gives ``{}`` and ``[]``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from nblib.errors import ParameterError

#: Prefix of the loop's per-module gradient-norm keys: ``grad_norm/<module>``.
PREFIX = "grad_norm/"

# The vanishing rule (see gradient_findings). Healthy modules' norms move by 10-100x over
# training and stay a visible share of the total; six orders of magnitude on both counts
# is far outside that and far above float32 rounding (~1e-7 relative), so the rule cannot
# flip on noise either way.
#: A vanished module's late median is at most this fraction of its early median ...
VANISH_DROP = 1e-6
#: ... and at most this fraction of the total gradient norm over the same late records.
VANISH_SHARE = 1e-6
#: Fewer recorded norms than this: too few to tell a vanished module from one odd step.
MIN_POINTS = 4


def _records(history) -> Sequence[Mapping]:
    if not isinstance(history, Sequence) or isinstance(history, (str, bytes)):
        raise ParameterError(
            f"history must be a History or a list of per-step dicts, got {type(history).__name__}"
        )
    for i, record in enumerate(history):
        if not isinstance(record, Mapping):
            raise ParameterError(
                f"history[{i}] must be a dict (one optimizer step's record), "
                f"got {type(record).__name__}"
            )
    return history


def module_norms(history) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-module gradient norms from the ``grad_norm/<module>`` keys of ``history``.

    Returns ``{module: (steps, norms)}``, both arrays of shape (P,) for the P records that
    carry that module's key (steps int, norms float), modules in order of first appearance;
    ``{}`` when no record has such a key. Raises ParameterError for a record with such a key
    but no ``step``, or a norm that is not a finite number >= 0.
    """
    points: dict[str, tuple[list[int], list[float]]] = {}
    for i, record in enumerate(_records(history)):
        for key, value in record.items():
            if not (isinstance(key, str) and key.startswith(PREFIX)):
                continue
            if "step" not in record:
                raise ParameterError(f"history[{i}] has {key!r} but no 'step'")
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not (ok and math.isfinite(value) and value >= 0):
                raise ParameterError(
                    f"history[{i}][{key!r}]={value!r} is invalid; expected a finite number >= 0"
                )
            steps, norms = points.setdefault(key[len(PREFIX) :], ([], []))
            steps.append(int(record["step"]))
            norms.append(float(value))
    return {
        module: (np.asarray(steps, dtype=int), np.asarray(norms, dtype=float))
        for module, (steps, norms) in points.items()
    }


def gradient_flow(history) -> dict[str, dict[str, float | int]]:
    """metrics.json's ``gradient_flow``: per module (in order of first appearance) its
    ``last``, ``min`` and ``median`` recorded norm (floats) and the number of ``points``
    recorded (int). ``{}`` when the history has no per-module norms."""
    return {
        module: {
            "last": float(norms[-1]),
            "min": float(norms.min()),
            "median": float(np.median(norms)),
            "points": int(norms.size),
        }
        for module, (_, norms) in module_norms(history).items()
    }


def _quarter(n: int) -> int:
    """Records in the first / last quarter of n (at least 1; disjoint for n >= 2)."""
    return max(1, n // 4)


def _total_norms(history) -> dict[int, float]:
    """step -> the total ``grad_norm`` of that step's record, where recorded and finite."""
    out = {}
    for record in history:
        value = record.get("grad_norm")
        if "step" in record and isinstance(value, (int, float)) and math.isfinite(value):
            out[int(record["step"])] = float(value)
    return out


def module_problems(history) -> dict[str, dict[str, float | int | str]]:
    """The modules with a gradient-flow problem, ``{module: facts}`` in order of first
    appearance; ``facts["problem"]`` is ``"never"`` or ``"vanished"`` (rules in
    :func:`gradient_findings`), with the numbers the reason quotes (``points``, and for a
    vanished module ``quarter``, ``early``, ``late`` and ``share``, the late median over
    the total norm, NaN when the loop recorded no total)."""
    norms_by_module = module_norms(history)
    totals = _total_norms(history) if norms_by_module else {}
    problems: dict[str, dict] = {}
    for module, (steps, norms) in norms_by_module.items():
        n = norms.size
        if not norms.any():
            problems[module] = {"problem": "never", "points": n}
            continue
        if n < MIN_POINTS:
            continue
        q = _quarter(n)
        early, late = float(np.median(norms[:q])), float(np.median(norms[-q:]))
        total = [totals[s] for s in steps[-q:].tolist() if s in totals]
        total_late = float(np.median(total)) if total else math.nan
        dropped = early > 0 and late <= VANISH_DROP * early
        # Without a recorded total only the drop can be judged.
        negligible = math.isnan(total_late) or late <= VANISH_SHARE * total_late
        if dropped and negligible:
            share = late / total_late if total_late > 0 else math.nan
            problems[module] = {
                "problem": "vanished",
                "points": n,
                "quarter": q,
                "early": early,
                "late": late,
                "share": share,
            }
    return problems


def gradient_findings(history) -> list[str]:
    """One reason per gradient-flow problem, for the verdict; ``[]`` when every module is
    healthy or the history has no per-module norms.

    Rules, per module, on its P recorded norms:

    - **never received a gradient**: every recorded norm is exactly 0.0 (the loop writes
      0.0 when the module's trainable parameters got no gradient or an exactly zero one).
      Exact zero is not a threshold: a module on the loss's path gets a nonzero norm.
    - **vanished**: with P >= :data:`MIN_POINTS` and q = max(1, P // 4) records per
      quarter, the median of the last q norms ("late") is at most :data:`VANISH_DROP`
      (1e-6) times the median of the first q ("early", which must be > 0), *and* at most
      :data:`VANISH_SHARE` (1e-6) times the median total gradient norm (``grad_norm``)
      of those same last q records (this half is skipped when no total was recorded).
      Medians make one odd step irrelevant; the drop alone would also fire when the whole
      model converges until every gradient is tiny, which the share rules out; the share
      alone would fire for a module that is always tiny but alive. Healthy norms change by
      10-100x, so neither bound sits anywhere near a healthy run's numbers.
    """
    reasons = []
    for module, facts in module_problems(history).items():
        if facts["problem"] == "never":
            reasons.append(
                f"module {module} never received a gradient (its parameters are trainable but "
                f"unused by the loss): its gradient norm was 0 at all {facts['points']} "
                "recorded steps"
            )
        else:
            share = facts["share"]
            of_total = f", {share:.1e} of the total gradient norm"
            # nothing to add without a total, with a zero total or a zero late median
            if math.isnan(share) or share == 0:
                of_total = ""
            reasons.append(
                f"module {module}'s gradient vanished: median norm {facts['late']:.3g} over its "
                f"last {facts['quarter']} recorded steps against {facts['early']:.3g} over its "
                f"first {facts['quarter']}{of_total}"
            )
    return reasons
