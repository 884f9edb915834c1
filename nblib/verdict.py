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
