"""Renderers: pure functions from a :class:`parity.model.Stack` to final files.

``render(stack, ctx)`` returns ``{relative filename: text}``; nothing here touches
the disk, the clock or the environment, so equal inputs give byte-identical output.
:func:`write` puts the files under the output directory atomically.

Anything a mode cannot represent is an :class:`~parity.errors.InputError`, never a
silent drop.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, InputErrors
from ..fsio import Entry, write_all
from ..modes import mode_record
from .names import (LABEL_COMPONENT, LABEL_MANAGED, LABEL_MANAGED_BY,  # noqa: F401  (re-exported)
                    LABEL_PART_OF, LABEL_PHASE, LABEL_SERVICE, LABEL_STACK)


@dataclass(frozen=True)
class RenderContext:
    """Paths the output refers to, relative to the output directory, so that the
    output does not depend on where the repository is checked out."""

    root_rel: str = "../../../.."   # output dir -> repository root
    state_rel: str = "../../.."     # output dir -> .parity/

    @classmethod
    def for_output(cls, root: Path, out: Path) -> "RenderContext":
        root = root.resolve()
        out = out.resolve()
        return cls(os.path.relpath(root, out), os.path.relpath(root / ".parity", out))


def default_out(root: Path, mode: str, phase: int) -> Path:
    return root / ".parity" / "build" / mode / f"phase{phase}"


def render(stack, ctx: RenderContext) -> dict[str, str]:
    """Dispatch on ``stack.mode`` (its :class:`parity.modes.Mode` record); a refusal names the ``file:line`` that set the
    refused value (renderers know model paths, the stack knows where they came from)."""
    try:
        return mode_record(stack.mode).render(stack, ctx)
    except InputError as exc:
        for err in getattr(exc, "errors", None) or [exc]:
            if err.path and not err.where:
                err.where = stack.where(err.path)
        if isinstance(exc, InputErrors):
            raise InputErrors(exc.errors) from None
        raise InputError(exc.message, where=exc.where, path=exc.path, hint=exc.hint,
                         layers=exc.layers) from None


def write(files: dict[str, str], out: Path) -> list[str]:
    """Write every file atomically, as one batch (none is replaced unless all could
    be written; parity.fsio); return the names whose content changed."""
    written = set(write_all([Entry(out / name, files[name]) for name in sorted(files)]))
    return [name for name in sorted(files) if out / name in written]
