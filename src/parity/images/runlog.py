"""One step of a build (docker build, debootstrap, a build script, pip download):
its output appended to the image's log, a failure shown with its last lines."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from ..errors import CheckFailed
from .records import Progress, rel

TAIL_LINES = 20

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run_logged(cmd: list[str], log, *, cwd: Path | None = None, env=None,
                stdin=None, echo: Progress | None = None) -> tuple[int, list[str]]:
    """Run ``cmd``, appending its output to ``log``; return (code, last lines).
    ``echo`` gets the lines a build script prints as its progress (``[name ...] ...``)."""
    log.write(f"$ {' '.join(cmd)}\n")
    log.flush()
    tail: list[str] = []
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=stdin, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace")
    assert proc.stdout is not None
    for line in proc.stdout:
        log.write(line)
        tail.append(_ANSI.sub("", line.rstrip("\n")))
        if echo is not None and line.startswith("["):
            echo("  " + tail[-1])
        if len(tail) > TAIL_LINES:
            del tail[0]
    code = proc.wait()
    log.flush()
    return code, tail


def failure(what: str, tail: list[str], log_path: Path, root: Path,
             hint: str | None = None) -> CheckFailed:
    shown = "\n".join("    " + line for line in tail) or "    (no output)"
    return CheckFailed(f"{what}; last {len(tail)} lines of output:\n{shown}",
                       hint=hint or f"full log: {rel(root, log_path)}")
