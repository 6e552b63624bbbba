"""``inv doctor``: every prerequisite of a lane checked at once, nothing changed.

``up`` stops at the first missing prerequisite; the doctor runs the same checks
(each lane's ``preflight()``: named checks whose messages are the ones ``up``
would print) and a few that only warn, and reports them all: a table, or JSON. It
never creates, pulls or deletes anything, and never connects to a kube context:
the user's current context is read from the kubeconfig file only to say that
parity will not use it.

Exit 0 when the lane can run (warnings allowed), 3 when a prerequisite is
missing.
"""

from __future__ import annotations

import importlib.util
import json
import platform
import shutil
import sys
from dataclasses import asdict
from io import StringIO
from pathlib import Path

from . import docker, images
from .browser import CANDIDATES
from .findings import FAIL, OK, WARN, Finding, attempt, pull_finding, version_text
from .lifecycle.compose import ComposeLane
from .modes import mode_record


def _browser() -> Finding:
    """What ``inv validate --browser`` needs; optional (a warning, never a failure)."""
    chromium = next((shutil.which(n) for n in CANDIDATES if shutil.which(n)), None)
    missing = [name for name, ok in (
        ("chromium", chromium), ("certutil (libnss3-tools)", shutil.which("certutil")),
        ("playwright (Python)", importlib.util.find_spec("playwright"))) if not ok]
    if missing:
        return Finding("browser checks", WARN, f"{', '.join(missing)} missing; only "
                       "inv validate --browser needs them", "make browser-deps; make venv")
    return Finding("browser checks", OK, f"{chromium}, certutil, playwright "
                                         "(inv validate --browser)")


def _images(stack) -> Finding:
    mode = mode_record(stack.mode)
    wanted = sorted({s.image for s in stack.services.values() if s.role != "edge"
                     or mode.runs_edge_image})
    present = list(images.present_images(wanted))
    missing = [i for i in wanted if i not in present]
    detail = f"{len(present)} of {len(wanted)} images of profile {stack.profile} present"
    if not missing:
        return Finding("images", OK, detail)
    pulled = [i for i in missing
              if not any(s.image == i and s.build for s in stack.services.values())]
    if pulled:
        return pull_finding("images", pulled, detail, mode.puller)
    return Finding("images", OK, f"{detail}; up builds the other {len(missing)} (the first "
                                 "build of the offline profile needs Debian's mirrors)")


def run(root: Path, resolved) -> list[Finding]:
    stack = resolved.stack
    mode = mode_record(stack.mode)
    out = [Finding("python", OK, f"{platform.python_version()} ({sys.executable})")]
    engine = attempt("docker engine", docker.engine_ok, lambda _: "reachable")
    out.append(engine)
    if engine.status == FAIL:
        return out  # every other check asks the engine
    out.append(attempt("compose plugin", docker.compose_version,
                        lambda v: f"Docker Compose {version_text(v)}"))
    out.append(attempt("disk", ComposeLane.check_disk,
                        lambda free: f"{free / 1024**3:.0f} GiB free for Docker"))
    out += mode.lane(root, resolved).preflight()
    out.append(_images(stack))
    ca = root / ".parity" / "ca" / "ca.crt"
    out.append(Finding("local CA", OK, f"{ca.relative_to(root)}" if ca.exists()
                       else "created by the first up (trust it once to browse without "
                            "warnings: docs/identity.md#trusting-the-local-ca-in-a-desktop-"
                            "browser)"))
    out.append(_browser())
    return out


def exit_code(findings: list[Finding]) -> int:
    return 3 if any(f.status == FAIL for f in findings) else 0


def table(findings: list[Finding], title: str) -> str:
    # lazy: rich costs 30 ms; only the table needs it
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for col in ("check", "status", "detail", "next"):
        t.add_column(col, overflow="fold")
    style = {OK: "green", WARN: "yellow", FAIL: "bold red"}
    for f in findings:
        t.add_row(f.check, f"[{style[f.status]}]{f.status}[/]", f.detail, f.hint)
    buf = StringIO()
    width = shutil.get_terminal_size((120, 20)).columns
    Console(file=buf, width=max(width, 100), no_color=not sys.stdout.isatty()).print(t)
    fails = sum(f.status == FAIL for f in findings)
    warns = sum(f.status == WARN for f in findings)
    verdict = ("ready" if not fails else f"{fails} missing") + (
        f", {warns} warning{'s' if warns != 1 else ''}" if warns else "")
    text = "\n".join(line.rstrip() for line in buf.getvalue().splitlines())
    return text.rstrip() + f"\n{verdict}"


def as_json(findings: list[Finding], mode: str) -> str:
    return json.dumps({"mode": mode, "ready": exit_code(findings) == 0,
                       "checks": [asdict(f) for f in findings]}, indent=2)
