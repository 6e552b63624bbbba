"""What the cross-reference lint reports: one :class:`Finding` per broken reference."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable


@dataclass(frozen=True, order=True)
class Finding:
    obj: str       # e.g. Deployment/api, or service/api for compose
    field: str     # e.g. spec.selector.matchLabels
    message: str

    def __str__(self) -> str:
        return f"{self.obj} {self.field}: {self.message}"


def name_list(values: Iterable[Any]) -> str:
    shown = sorted({str(v) for v in values})
    return ", ".join(shown) if shown else "none"
