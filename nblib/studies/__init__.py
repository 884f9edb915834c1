"""One engine per notebook: the only code a notebook's cells call directly.

``card`` (00), ``overfit`` (01), ``probes`` (02), ``lr`` (03), ``tokens`` (04),
``comparison`` (05). Each has a validated config dataclass
built from the notebook's parameters (:meth:`StudyConfig.from_params`), the steps its
notebook runs, its figures and its :class:`nblib.verdict.Verdict`.
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
