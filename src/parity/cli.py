"""What each task does, as plain functions returning text (and an exit code where
a task can fail a check). ``tasks.py`` only parses flags and calls these; tests call
them directly.
"""

from __future__ import annotations

import datetime
import json
import sys
from io import StringIO
from pathlib import Path

from . import lock, model
from .errors import CheckFailed, InputError
from .fsio import Entry, write_all
from .model import ENV_VARS, Selection, schema
from .modes import mode_record, selection  # tasks call cli.selection too
from .render import RenderContext, default_out, render as do_render
from .render.names import LABEL_MANAGED
from .yamlio import dump


def config(root: Path, sel: Selection, fmt: str = "yaml") -> str:
    """The merged model of one mode and phase, secret values masked."""
    if fmt not in ("yaml", "json"):
        raise InputError(f"unknown format '{fmt}'", hint="use --format yaml or --format json")
    resolved = model.load(root, sel)
    data = model.masked_plain(resolved)
    if fmt == "json":
        return json.dumps(data, indent=2, sort_keys=False)
    header = (f"# parity config: mode={sel.mode} phase={sel.phase} "
              f"profile={sel.effective_profile()}\n# layers: {resolved.layer_order}\n")
    return header + dump(data)


def explain(root: Path, sel: Selection, path: str, fmt: str = "text") -> str:
    """The value at PATH and every layer (file:line) that set it, oldest first."""
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
             f"profile={sel.effective_profile()}"]
    if info.get("rendered_from"):
        lines.append(f"  rendered by parity from {info['rendered_from']} (docs/identity.md)")
    lines.append("  set by (oldest first):")
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
    from . import diff as d  # lazy: 10 ms that only inv diff needs

    if level not in ("model", "rendered"):
        raise InputError(f"unknown level '{level}'", hint="use --level model or rendered")
    if fmt not in ("text", "json"):
        raise InputError(f"unknown format '{fmt}'", hint="use --format text or json")
    policy = d.load_policy(root)
    rules = policy.rules
    labels: tuple[str, str] = ("from", "to")
    hidden: list = []
    mode_a, phase_a = parse_side(side_from, phase)
    mode_b, phase_b = parse_side(side_to, phase)
    sel_a = selection(mode_a, phase_a, profile, sets)
    sel_b = selection(mode_b, phase_b, profile, sets)
    if against is not None:
        saved = d.read_dir(Path(against))
        current = do_render(model.load(root, sel_b).stack, RenderContext())
        diffs = d.rendered_diff(saved, current, rules)
        title = f"{against} -> {sel_b.mode}:{sel_b.phase}"
    elif level == "rendered":
        if sel_a.mode != sel_b.mode:
            raise InputError("the rendered level compares renders of one mode (two phases, "
                             "or a saved directory with --against)",
                             hint="compare compose and kind with --level model")
        files_a = do_render(model.load(root, sel_a).stack, RenderContext())
        files_b = do_render(model.load(root, sel_b).stack, RenderContext())
        diffs = d.rendered_diff(files_a, files_b, rules)
        title = f"{sel_a.mode}:{sel_a.phase} -> {sel_b.mode}:{sel_b.phase} (rendered)"
    else:
        a, b = model.load(root, sel_a), model.load(root, sel_b)
        diffs = d.diff_resolved(a, b, rules)
        title = f"{sel_a.mode}:{sel_a.phase} -> {sel_b.mode}:{sel_b.phase}"
        if sel_a.mode != sel_b.mode:
            labels = (sel_a.mode, sel_b.mode)
            # between modes: what the shared overlays/local/*.yaml hide (one more
            # load, only here and only when such a file applies)
            hidden = d.hidden_by_local(root, a, b, diffs, rules, labels)
        else:
            labels = (f"{sel_a.mode}:{sel_a.phase}", f"{sel_b.mode}:{sel_b.phase}")
    diffs, unused = policy.accept(diffs, datetime.date.today(),
                                  "rendered" if against is not None or level == "rendered"
                                  else "model")
    text = d.format_json(diffs, title, unused, hidden) if fmt == "json" \
        else d.format_text(diffs, title, unused, labels, hidden)
    return text, 1 if d.summary(diffs)["contract"] else 0


# --------------------------------------------------------------------------- render

def render(root: Path, sel: Selection, out: str | None = None) -> str:
    """Render one mode and phase into ``out`` (default .parity/build/<mode>/phase<N>/)."""
    resolved = model.load(root, sel)
    target = Path(out).resolve() if out else default_out(root, sel.mode, sel.phase)
    files = do_render(resolved.stack, RenderContext.for_output(root, target))
    entries = [Entry(target / name, files[name]) for name in sorted(files)]
    # the whole set at once, never mixed with another render's; secret values under
    # their own lock, so two commands generating at once agree on one value
    with lock.render_dir(root, target), lock.material(root / ".parity"):
        # what the mode writes with its render (compose: its secret env files,
        # parity.modes), in the same batch, so a refusal writes nothing
        entries += mode_record(sel.mode).render_extras(resolved.stack, root)
        written = set(write_all(entries))
    changed = [name for name in sorted(files) if target / name in written]
    rel = target.relative_to(root) if target.is_relative_to(root) else target
    names = ", ".join(sorted(files))
    return f"{sel.mode} phase {sel.phase}: {rel}/ ({names}; " + (
        f"{len(changed)} changed)" if changed else "unchanged)")


def lint(root: Path, sel: Selection) -> tuple[str, int]:
    """The model rules of the selection (mistakes both modes would share, and for
    kind what a cluster needs; parity.rules), then the cross-reference lint of a
    fresh render. Exit 1 with any unwaived violation or finding."""
    from . import rules  # lazy: 28 ms of rule definitions that only lint needs

    resolved = model.load(root, sel)
    stack = resolved.stack
    violations = rules.check(resolved, root)
    files = do_render(stack, RenderContext())
    findings = mode_record(sel.mode).lint_render(files, stack)
    failing = [v for v in violations if v.failing]
    lines = []
    if violations:
        lines.append(rules.report(violations, f"{sel.mode} phase {sel.phase}: model rules"))
    else:
        lines.append(f"{sel.mode} phase {sel.phase}: model rules clean "
                     f"({len([r for r in rules.RULES if sel.mode in r.modes])} rules)")
    if findings:
        lines.append(f"{sel.mode} phase {sel.phase}: {len(findings)} findings in the render")
        lines += [f"  {f.obj} {f.field}: {f.message}" for f in findings]
    else:
        lines.append(f"{sel.mode} phase {sel.phase}: lint clean")
    return "\n".join(lines), int(bool(failing or findings))


# --------------------------------------------------------------------------- lifecycle

def lane(root: Path, sel: Selection, timeout: float = 600, quiet: bool = False,
         recreate: bool = False):
    """The lifecycle driver of the selected mode."""
    from .lifecycle import UI  # lazy: the lane machinery only for lifecycle commands

    mode = mode_record(sel.mode)
    return mode.lane(root, model.load(root, sel), UI(quiet=quiet), timeout=timeout,
                     recreate=recreate)


def up(root: Path, sel: Selection, timeout: float = 600, recreate: bool = False) -> str:
    from . import running  # lazy: the running record only for up and down

    driver = lane(root, sel, timeout, recreate=recreate)
    with lock.environment(root, sel.mode, say=driver.ui.line):
        try:
            report = driver.up()
        except CheckFailed:
            # things were started with this selection before it failed: later commands
            # (status, validate, down) look at what now runs (parity.running)
            running.record(root, sel)
            raise
        running.record(root, sel)
    lines = ["", f"parity {sel.mode} phase {sel.phase} is up. Endpoints (trust "
             f"{Path(driver.state, 'ca', 'ca.crt').relative_to(root)} in your browser):"]
    for e in report.get("endpoints", []):
        lines.append(f"  {e['url']:<42} {e['service']}")
    lines.append(f"next: inv validate --mode {sel.mode} --phase {sel.phase}")
    return "\n".join(lines)


def doctor(root: Path, sel: Selection, as_json: bool = False) -> tuple[str, int]:
    """Every prerequisite of a lane at once; nothing changes. Exit 3 if one is missing."""
    from . import doctor as doc  # lazy: 5 ms of checks only doctor runs
    findings = doc.run(root, model.load(root, sel))
    code = doc.exit_code(findings)
    if as_json:
        return doc.as_json(findings, sel.mode), code
    return doc.table(findings, f"parity doctor: {sel.mode} lane, phase {sel.phase}, "
                               f"profile {sel.effective_profile()}"), code


def status(root: Path, sel: Selection, as_json: bool = False) -> tuple[str, int]:
    from . import docker  # lazy: 4 ms that render, lint and config never need
    from .lifecycle import status_json  # lazy: the lane machinery only for lifecycle commands

    driver = lane(root, sel, quiet=True)
    docker.engine_ok()
    rows = driver.status(logs=True)
    cluster = driver.cluster_summary() if mode_record(sel.mode).has_cluster else None
    code = 0 if all(r.ready for r in rows) and (cluster is None or cluster["exists"]) else 1
    if as_json:
        text = status_json(rows)
        if cluster is not None:
            text = json.dumps({"cluster": cluster, **json.loads(text)}, indent=2)
        return text, code
    head = ""
    if cluster is not None:
        nodes = ", ".join(f"{n['name']} {'Ready' if n['ready'] else 'NotReady: ' + n['reason']}"
                          for n in cluster["nodes"]) or "no nodes"
        head = (f"cluster {cluster['cluster']}: " + (nodes if cluster["exists"]
                                                      else "does not exist") + "\n")
    return head + _status_table(rows, sel), code


def _status_table(rows, sel: Selection) -> str:
    # lazy: rich costs 30 ms; only tables need it
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"parity {sel.mode} phase {sel.phase}", title_justify="left")
    for col in ("service", "phase", "state", "health", "ready", "endpoint / reason"):
        table.add_column(col)
    for r in rows:
        table.add_row(r.service, str(r.phase), r.state, r.health, "yes" if r.ready else "NO",
                      r.reason if not r.ready else r.endpoint)
    buf = StringIO()
    Console(file=buf, width=140, color_system=None).print(table)
    out = buf.getvalue().rstrip()
    for r in rows:
        if not r.ready and r.logs:
            out += f"\n\nlast log lines of {r.service}:\n" + "\n".join(
                f"  | {line}" for line in r.logs[-10:])
    return out


def validate(root: Path, sel: Selection, as_json: bool = False,
             browser: bool = False) -> tuple[str, int]:
    """The live checks in checks/ against the running environment; ``browser`` adds
    the checks that drive a real browser (checks/browser.py)."""
    from . import checks, docker  # lazy: 10 ms that only the live commands need

    driver = lane(root, sel, quiet=True)
    docker.engine_ok()
    target = checks.Target(root, driver.resolved, driver.status, runtime=driver,
                           browser=browser)
    results = checks.run(root, target)
    failed = any(r.status == "fail" for r in results)
    if as_json:
        return json.dumps({"results": [r.as_json() for r in results],
                           "passed": not failed}, indent=2), int(failed)
    return checks.format_table(results, f"parity {sel.mode} phase {sel.phase} checks"), \
        int(failed)


def down(root: Path, sel: Selection, dry_run: bool = False, volumes: bool = False) -> str:
    """Remove what parity created for the lane; its data volumes only with ``volumes``
    (reset, ``inv down --volumes``)."""
    from . import running  # lazy: the running record only for up and down

    driver = lane(root, sel, quiet=True)
    if dry_run:  # names what would go, changes nothing: no lock
        return driver.down(dry_run, volumes=volumes)
    with lock.environment(root, sel.mode, say=_say):
        text = driver.down(dry_run, volumes=volumes)
        running.clear(root, sel.mode)
    return text


def environment_lock(root: Path, sel: Selection):
    """The lock ``up``, ``down`` and ``reset`` hold (re-entrant: ``reset`` holds it
    across its ``down`` and ``up``)."""
    return lock.environment(root, sel.mode, say=_say)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def images(root: Path, sel: Selection, force: bool = False) -> str:
    from . import checkout, images as images_mod  # lazy: images costs 29 ms; only inv images builds
    from .lifecycle import UI  # lazy: the lane machinery only for lifecycle commands

    stack = model.load(root, sel).stack
    checkout.refuse_shared_images(stack, root, "inv images", force=force)
    results = images_mod.build(stack, root, progress=UI().line, force=force)
    return "\n".join(str(r) for r in results) or "no images to build"


def validate_offline(root: Path, live: bool = False) -> tuple[str, int]:
    """Render, validate, lint and diff all six combinations; with ``live`` also run
    the live checks of the running compose environment."""
    from . import offline  # lazy: the offline lane's validators; only validate-offline runs them
    rows, seconds = offline.run(root)
    text = offline.table(rows, seconds)
    code = 0 if all(r.ok for r in rows) else 1
    if live:
        for mode in ("compose",):
            live_text, live_code = validate(root, selection(mode, _running_phase(root)))
            text += "\n\n" + live_text
            code = code or live_code
    return text, code


def _running_phase(root: Path) -> int:
    """The phase of the running compose environment (from its containers' labels)."""
    from . import docker  # lazy: 4 ms that render, lint and config never need

    rows = docker.labelled("container", {LABEL_MANAGED: "true"})
    phases = [int(p) for r in rows for part in r.get("Labels", "").split(",")
              if part.startswith("parity.dev/phase=") for p in [part.split("=", 1)[1]]
              if p.isdigit()]
    if not phases:
        raise InputError("no running parity environment to check live",
                         hint="start one with inv up, or drop --live")
    return max(phases)
