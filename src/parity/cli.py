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


def parse_side(text: str, phase: int | str | None) -> tuple[str, int]:
    """``kind`` or ``kind:2`` -> (mode, phase)."""
    mode, sep, ph = text.partition(":")
    if sep:
        return mode, ph  # type: ignore[return-value]
    return mode, phase if phase is not None else 1  # type: ignore[return-value]


def diff(root: Path, side_from: str, side_to: str, phase=None, level: str = "model",
         fmt: str = "text", against: str | None = None, profile: str | None = None,
         sets=None) -> tuple[str, int]:
    """Classified differences between two selections; exit 1 on contract drift."""
    from . import diff as d

    if level not in ("model", "rendered"):
        raise InputError(f"unknown level '{level}'", hint="use --level model or rendered")
    if fmt not in ("text", "json"):
        raise InputError(f"unknown format '{fmt}'", hint="use --format text or json")
    rules = d.load_policy(root)
    mode_a, phase_a = parse_side(side_from, phase)
    mode_b, phase_b = parse_side(side_to, phase)
    sel_a = selection(mode_a, phase_a, profile, sets)
    sel_b = selection(mode_b, phase_b, profile, sets)
    if against is not None:
        from .render import RenderContext, render
        from . import model

        saved = d.read_dir(Path(against))
        current = render(model.load(root, sel_b).stack, RenderContext())
        diffs = d.rendered_diff(saved, current, rules)
        title = f"{against} -> {sel_b.mode}:{sel_b.phase}"
    elif level == "rendered":
        from .render import RenderContext, render
        from . import model

        if sel_a.mode != sel_b.mode:
            raise InputError("the rendered level compares renders of one mode (two phases, "
                             "or a saved directory with --against)",
                             hint="compare compose and kind with --level model")
        files_a = render(model.load(root, sel_a).stack, RenderContext())
        files_b = render(model.load(root, sel_b).stack, RenderContext())
        diffs = d.rendered_diff(files_a, files_b, rules)
        title = f"{sel_a.mode}:{sel_a.phase} -> {sel_b.mode}:{sel_b.phase} (rendered)"
    else:
        diffs = d.model_diff(root, sel_a, sel_b, rules)
        title = f"{sel_a.mode}:{sel_a.phase} -> {sel_b.mode}:{sel_b.phase}"
    text = d.format_json(diffs, title) if fmt == "json" else d.format_text(diffs, title)
    return text, 1 if d.summary(diffs)["contract"] else 0
