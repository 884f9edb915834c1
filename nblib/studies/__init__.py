"""One engine per notebook: the only code a notebook's cells call directly.

``card`` (00), ``overfit`` (01), ``probes`` (02), ``lr`` (03), ``tokens`` (04),
``comparison`` (05). Every engine has the same shape, the **engine contract**:

1. **Config** — a :class:`StudyConfig` dataclass, one field per parameter of the notebook's
   ``parameters`` cell (same names, same defaults: a test pins it). The first code cell
   builds it with ``XConfig.from_params(globals())``; ``__post_init__`` checks every value,
   so a bad parameter stops the notebook before any work, naming the parameter.
2. **prepare(config) -> study** — a frozen :class:`Study` holding what every later step
   reads (the dataset, the policy, the probe samples, ...). Nothing is filled in later.
3. **Steps** — functions ``step(study, ...) -> value``. A step never assigns to the study;
   the notebook keeps what it returns in a variable and hands it to the steps that need
   it. Cells call steps and plots; they never assign engine state and never branch on a
   parameter the engine has already interpreted.
4. **evidence(study, ...) -> Evidence** — a frozen :class:`Evidence` dataclass gathering
   the step values the verdict and ``metrics.json`` are made of.
5. **verdict(evidence, config) -> Verdict** — pure: numbers and thresholds in, a
   :class:`nblib.verdict.Verdict` out; no I/O, no model, no randomness. Its deciding
   numbers are :class:`nblib.verdict.Estimate` s with intervals (a bootstrap over
   samples, pairs or episodes): a label changes only when an interval clears a threshold,
   and a reason says when one straddles it, so the same run gives the same verdict on any
   machine of the same kind (thread counts and CPU kernels move the last digits).
6. **metrics(evidence) -> dict** — what ``metrics.json`` records beside the verdict's
   numbers (JSON-able).

The last cell of every notebook is therefore::

    evidence = engine.evidence(study, ...)
    verdict = engine.verdict(evidence, config)
    report.finish(NOTEBOOK, verdict, engine.metrics(evidence))

Plots live beside their engine (``plots.py`` or a ``plot_*`` section) and return
``(fig, axes)``; they never save (``nblib.run.report.save`` does). Engines that train a
policy get it from one building block, :mod:`nblib.studies.setup`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from nblib.errors import ParameterError


@dataclass
class StudyConfig:
    """Base of the study configs: each field is one notebook parameter of the same name."""

    @classmethod
    def from_params(cls, params: Mapping[str, Any]):
        """The config from a notebook's parameters (pass ``globals()``): every field is read
        from the parameter of the same name, so none can be forgotten. A field the notebook
        does not define is an error naming it."""
        names = [f.name for f in fields(cls) if f.init]
        missing = [n for n in names if n not in params]
        if missing:
            raise ParameterError(
                f"{cls.__name__}: the notebook defines no parameter(s) {missing}; "
                "add them to its parameters cell"
            )
        return cls(**{n: params[n] for n in names})

    def params(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Study:
    """Base of what an engine's ``prepare`` returns: frozen, so no cell can assign to it."""

    config: StudyConfig


@dataclass(frozen=True)
class Evidence:
    """Base of what an engine's ``evidence`` returns: the measured values its pure
    ``verdict`` and ``metrics`` read."""
