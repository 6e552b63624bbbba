"""What each task does, as plain functions returning text (and an exit code where
a task can fail a check). ``tasks.py`` only parses flags and calls these; tests call
them directly.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import InputError
from .layers import ENV_VARS, Selection, environ_subset


def selection(mode: str, phase: int | str, profile: str | None = None,
              sets: list[str] | tuple[str, ...] | None = None,
              environ: dict[str, str] | None = None) -> Selection:
    try:
        phase_n = int(phase)
    except (TypeError, ValueError):
        raise InputError(f"--phase must be 1, 2 or 3, not '{phase}'") from None
    return Selection(mode=mode, phase=phase_n, profile=profile, sets=tuple(sets or ()),
                     environ=environ_subset(os.environ if environ is None else environ))


def config(root: Path, sel: Selection, fmt: str = "yaml") -> str:
    """The merged model of one mode and phase, secret values masked."""
    from . import model

    if fmt not in ("yaml", "json"):
        raise InputError(f"unknown format '{fmt}'", hint="use --format yaml or --format json")
    resolved = model.load(root, sel)
    data = model.masked_plain(resolved)
    if fmt == "json":
        return json.dumps(data, indent=2, sort_keys=False)
    from .yamlio import dump

    header = (f"# parity config: mode={sel.mode} phase={sel.phase} "
              f"profile={sel.effective_profile()}\n# layers: {resolved.layer_order}\n")
    return header + dump(data)


def explain(root: Path, sel: Selection, path: str, fmt: str = "text") -> str:
    """The value at PATH and every layer (file:line) that set it, oldest first."""
    from . import model

    if not path:
        raise InputError("give the path to explain",
                         hint="for example: inv explain --mode kind services.api.replicas")
    resolved = model.load(root, sel)
    info = model.explain(resolved, path)
    if fmt == "json":
        return json.dumps(info, indent=2)
    value = info["value"]
    shown = json.dumps(value) if not isinstance(value, str) else value
    if isinstance(value, (dict, list)):
        shown = json.dumps(value, sort_keys=False)
    lines = [f"{info['path']} = {shown}", f"  mode={sel.mode} phase={sel.phase} "
             f"profile={sel.effective_profile()}", "  set by (oldest first):"]
    width = max(len(c["layer"]) for c in info["chain"])
    for i, c in enumerate(info["chain"], 1):
        lines.append(f"    {i}. {c['layer']:<{width}}  {c['location']}")
    lines.append(f"  layer order: {info['layer_order']}")
    return "\n".join(lines)


def variables() -> str:
    """The documented PARITY_* variables (all parity ever reads from the environment)."""
    rows = [f"  {k:<22} {v[1]}" + (f"  (sets {v[0]})" if v[0] else "")
            for k, v in ENV_VARS.items()]
    return "PARITY_* variables:\n" + "\n".join(rows)


def schema_json() -> str:
    from . import schema

    return json.dumps({"$schema": "https://json-schema.org/draft/2020-12/schema",
                       "title": "parity stack model", **schema.STACK}, indent=2) + "\n"
