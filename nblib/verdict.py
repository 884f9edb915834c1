"""The one outcome type of every study: a label, the reasons in words, the numbers behind it.

A notebook's last cell hands its study's ``Verdict`` to :func:`nblib.run.report.finish`,
which writes the label as ``metrics.json``'s ``verdict`` and the reasons and numbers into
its ``metrics``. ``print(verdict)`` shows the label and one reason per line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nblib.errors import ParameterError


@dataclass(frozen=True)
class Verdict:
    """What a study concluded.

    ``label``: a short upper-case word such as ``PASS``, ``PARTIAL``, ``FAIL``, ``WARN``,
    ``CONSISTENT``; ``reasons``: sentences a reader can act on; ``numbers``: the values the
    label was decided from (JSON-able scalars, keyed by name), so a reader can check it.
    """

    label: str
    reasons: tuple[str, ...] = ()
    numbers: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.label, str) or not self.label.strip():
            raise ParameterError(f"Verdict.label={self.label!r} is invalid; expected a word")
        if isinstance(self.reasons, str) or not isinstance(self.reasons, Iterable):
            raise ParameterError(
                f"Verdict.reasons={self.reasons!r} is invalid; expected a list of sentences"
            )
        reasons = tuple(self.reasons)
        if not all(isinstance(r, str) for r in reasons):
            raise ParameterError(f"Verdict.reasons={reasons!r} is invalid; expected strings")
        if not isinstance(self.numbers, Mapping) or not all(
            isinstance(k, str) for k in self.numbers
        ):
            raise ParameterError(
                f"Verdict.numbers={self.numbers!r} is invalid; expected a dict with str keys"
            )
        object.__setattr__(self, "reasons", reasons)
        object.__setattr__(self, "numbers", dict(self.numbers))

    def __str__(self) -> str:
        return "\n- ".join([self.label, *self.reasons])


@dataclass(frozen=True)
class Estimate:
    """A number a verdict is decided from, with its interval: ``value`` (the point
    estimate), ``low`` and ``high`` (a ``level`` interval, e.g. a bootstrap over samples)
    and ``method`` in words ("95 % bootstrap over 331 samples").

    A verdict compares the interval with its thresholds, never the point estimate alone:
    a value sitting on a threshold moves across it with float noise (thread counts, CPU
    kernels), an interval that straddles it says so and keeps its label.
    """

    value: float
    low: float
    high: float
    method: str = ""
    level: float = 0.95

    def __post_init__(self):
        for name in ("value", "low", "high"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ParameterError(f"Estimate.{name}={v!r} is invalid; expected a number")
            object.__setattr__(self, name, float(v))
        if not self.low <= self.high:
            raise ParameterError(f"Estimate: low={self.low} > high={self.high}")

    def below(self, threshold: float) -> bool:
        """The whole interval lies below ``threshold``."""
        return self.high < threshold

    def above(self, threshold: float) -> bool:
        """The whole interval lies above ``threshold``."""
        return self.low > threshold

    def straddles(self, threshold: float) -> bool:
        return not (self.below(threshold) or self.above(threshold))

    def numbers(self, name: str) -> dict[str, float]:
        """``{name, name_low, name_high}`` for a verdict's numbers."""
        return {name: self.value, f"{name}_low": self.low, f"{name}_high": self.high}

    def __str__(self) -> str:
        return f"{self.value:.3g} [{self.low:.3g}, {self.high:.3g}]"


def straddle_note(name: str, estimate: Estimate, thresholds: Iterable[float]) -> str | None:
    """A reason sentence when ``estimate``'s interval straddles one of ``thresholds``
    (the label then takes the cautious side), else None."""
    hit = [t for t in thresholds if estimate.straddles(t)]
    if not hit:
        return None
    return (
        f"{name} {estimate} straddles the threshold {hit[0]:g} "
        f"({estimate.method or 'its interval'}): the label takes the cautious side; "
        "more samples or steps would settle it"
    )
