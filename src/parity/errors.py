"""The one exception hierarchy of parity, and the exit code each class maps to.

Every user-facing error names where the problem is (``file:line`` and the key
path, or the object and field) and the next step. ``tasks.py`` turns these into
``invoke.Exit(message, code)``; a traceback is shown only when the environment
variable ``PARITY_DEBUG`` is set (there is no ``--debug`` flag).

Exit codes: 0 success, 1 a check or parity rule failed, 2 bad input or usage
(nothing written), 3 a prerequisite is missing.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ParityError(Exception):
    """Base class. ``exit_code`` says how the command ends."""

    exit_code = 2

    def __init__(self, message: str, *, where: str | None = None, path: str | None = None,
                 hint: str | None = None, layers: str | None = None):
        self.message = message
        self.where = where
        self.path = path
        self.hint = hint
        self.layers = layers
        super().__init__(self.render())

    def render(self) -> str:
        head = ""
        if self.where:
            head += f"{self.where}: "
        if self.path:
            head += f"{self.path}: "
        lines = [head + self.message]
        if self.layers:
            lines.append(f"  layer order: {self.layers}")
        if self.hint:
            lines.append(f"  next: {self.hint}")
        return "\n".join(lines)


class InputError(ParityError):
    """Bad input or usage: exit 2, nothing written."""

    exit_code = 2


class CheckFailed(ParityError):
    """A check or parity rule failed: exit 1."""

    exit_code = 1


class PrerequisiteMissing(ParityError):
    """A tool or service parity needs is absent: exit 3; the hint says how to get it."""

    exit_code = 3


class InputErrors(InputError):
    """Several input problems found in one pass (validation collects them all)."""

    def __init__(self, errors: Iterable[ParityError]):
        self.errors = list(errors)
        ParityError.__init__(self, "")

    def render(self) -> str:  # noqa: D102 - same contract as the base class
        if len(self.errors) == 1:
            return self.errors[0].render()
        orders = {e.layers for e in self.errors}
        shared = orders.pop() if len(orders) == 1 else None
        parts = []
        for e in self.errors:
            saved, e.layers = e.layers, (None if shared else e.layers)
            parts.append(e.render())
            e.layers = saved
        tail = f"\n  layer order: {shared}" if shared else ""
        return f"{len(self.errors)} problems found:\n" + "\n".join(parts) + tail


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` when a close candidate exists, else ``""``."""
    close = difflib.get_close_matches(str(word), [str(c) for c in candidates], n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def existing(candidates: Iterable[str], limit: int = 12) -> str:
    """A short, sorted listing of what does exist, for 'matched nothing' errors."""
    names = sorted({str(c) for c in candidates})
    if not names:
        return "none"
    shown = ", ".join(names[:limit])
    return shown + (f", … ({len(names) - limit} more)" if len(names) > limit else "")
