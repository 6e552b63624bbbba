"""The selection a lane is running with, remembered from ``up``.

``inv up --phase 3 --profile offline`` records mode, phase, image profile and the
``--set`` values in ``.parity/running.json`` (atomically, one entry per mode);
``down`` clears the mode's entry. Every later lifecycle command (status, validate,
doctor, down, reset, up itself) defaults to that record for each value the user
does not pass (``up`` takes no ``--set`` from it: an override is one-off), so ``make up PHASE=3`` followed by plain ``make validate`` checks phase
3. A value passed explicitly always wins; where it differs from the running one the
command says so (:func:`resolve` returns the note), because a check of phase 1
against a phase-3 environment reports the difference, not a fault.

Nothing refuses: ``up`` with another phase grows or shrinks the stack (that is how
it is done), ``up`` with another profile is guarded by :mod:`parity.datacompat`,
``reset`` with other values starts over with them (its purpose), and ``down``
removes everything parity created for the lane whatever the phase
(docs/runbook-compose.md, "The running selection").
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .yamlio import write_atomic

RECORD = Path(".parity") / "running.json"


@dataclass(frozen=True)
class Running:
    mode: str
    phase: int
    profile: str
    sets: tuple[str, ...] = ()

    def describe(self) -> str:
        sets = "".join(f" --set {s}" for s in self.sets)
        return f"phase {self.phase}, profile {self.profile}{sets}"


def _path(root: Path) -> Path:
    return Path(root) / RECORD


def read(root: Path) -> dict[str, Running]:
    """mode -> the selection recorded by the last ``up`` of that mode. A missing or
    unreadable record is no record (it is a convenience, never a source of truth
    for what may be deleted)."""
    try:
        data = json.loads(_path(root).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    out = {}
    for mode, entry in (data.items() if isinstance(data, dict) else ()):
        try:
            out[mode] = Running(mode, int(entry["phase"]), str(entry["profile"]),
                                tuple(str(s) for s in entry.get("sets") or ()))
        except (KeyError, TypeError, ValueError):
            continue
    return out


def _write(root: Path, entries: dict[str, Running]) -> None:
    path = _path(root)
    if not entries:
        path.unlink(missing_ok=True)
        return
    data = {m: {"phase": r.phase, "profile": r.profile, "sets": list(r.sets)}
            for m, r in sorted(entries.items())}
    write_atomic(path, json.dumps(data, indent=2) + "\n")


def record(root: Path, sel) -> None:
    """Remember ``sel`` (a :class:`parity.model.Selection`) as its mode's running
    selection."""
    entries = read(root)
    entries[sel.mode] = Running(sel.mode, sel.phase, sel.effective_profile(), tuple(sel.sets))
    _write(root, entries)


def clear(root: Path, mode: str) -> None:
    entries = read(root)
    if entries.pop(mode, None) is not None:
        _write(root, entries)


def resolve(root: Path, mode: str | None, phase, profile: str | None, sets,
            environ: dict[str, str] | None = None, command: str = "") -> tuple:
    """(mode, phase, profile, sets, note): the user's values, each one not given
    (None, or no --set) taken from the running record of the mode, else the
    defaults (compose, 1, the profile's own default). ``note``: what the command
    should say when an explicit value differs from the running one ('' if none)."""
    env = os.environ if environ is None else environ
    entries = read(root)
    if mode is None:
        mode = next(iter(entries)) if len(entries) == 1 else "compose"
    run = entries.get(mode)
    if run is None:
        return mode, 1 if phase is None else phase, profile, tuple(sets or ()), ""
    differs = []
    if phase is None:
        phase = run.phase
    elif str(phase) != str(run.phase):
        differs.append(f"phase {phase}")
    env_profile = env.get("PARITY_IMAGE_PROFILE")
    if profile is None and not env_profile:
        profile = run.profile
    elif (profile or env_profile) != run.profile:
        differs.append(f"profile {profile or env_profile}")
    dropped = ""
    if not sets and command == "up" and run.sets:
        # an up without --set applies none: a --set is a one-off override, and there
        # would be no way to drop one if up kept re-applying it
        dropped = (f"note: the running {mode} environment was brought up with "
                   f"{' '.join('--set ' + x for x in run.sets)}; this up applies none")
    elif not sets:
        sets = run.sets
    note = ""
    if differs:
        what = {"up": "this up changes it to", "reset": "this reset starts over with",
                "down": "down removes the whole lane whatever the phase; asked for"}.get(
            command, "this shows what you asked for:")
        note = (f"note: the running {mode} environment is {run.describe()} (recorded by "
                f"inv up); {what} {', '.join(differs)}")
    note = "\n".join(n for n in (note, dropped) if n)
    return mode, phase, profile, tuple(sets or ()), note
