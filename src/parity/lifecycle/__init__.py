"""Lifecycle drivers, one per mode, each an ordered list of named steps.

A step is a small function with a one-line description; :func:`run_steps` runs
them in order with visible progress, and the driver ends by printing what to run
next (the way kind does).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field


@dataclass
class Step:
    name: str
    doc: str
    fn: Callable[[], str | None]


class UI:
    """Progress on stderr: rich when it is a terminal, plain lines otherwise (CI logs)."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self._console = None
        self.tty = sys.stderr.isatty()

    @property
    def console(self):
        if self._console is None:
            # lazy: rich is only needed on a terminal, and not by inv --list or render
            from rich.console import Console

            self._console = Console(stderr=True, highlight=False)
        return self._console

    def line(self, text: str) -> None:
        if not self.quiet:
            if self.tty:
                self.console.print(text)
            else:
                print(text, file=sys.stderr, flush=True)

    def status(self, text: str):
        """A context manager showing ``text`` while work goes on."""
        if self.tty and not self.quiet:
            return self.console.status(text)
        self.line(text)
        return _Null()


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, *_a, **_k):
        pass


def run_steps(steps: list[Step], ui: UI) -> dict[str, str | None]:
    results: dict[str, str | None] = {}
    total = len(steps)
    for i, step in enumerate(steps, 1):
        started = time.monotonic()
        with ui.status(f"[{i}/{total}] {step.doc} …"):
            detail = step.fn()
        took = time.monotonic() - started
        ui.line(f" ✓ [{i}/{total}] {step.doc}" + (f": {detail}" if detail else "")
                + f" ({took:.1f}s)")
        results[step.name] = detail
    return results


@dataclass
class ServiceStatus:
    service: str
    phase: int
    workload: str
    state: str            # running, exited, created, missing, restarting, ...
    health: str           # healthy, starting, unhealthy, completed, failed, none
    ready: bool
    reason: str = ""
    endpoint: str = ""
    logs: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return asdict(self)


@dataclass
class Delivered:
    """What the runtime started a service's process with (the live contract check
    compares it with the render): its environment, the part of it the image itself
    sets, and the keys the runtime adds on its own (transport, not contract)."""

    env: dict[str, str]
    image_env: dict[str, str]
    platform_keys: frozenset[str] = frozenset()
    where: str = ""                  # the container (or pod) it was read from


@dataclass
class Exec:
    code: int
    stdout: str
    stderr: str


def env_list(items) -> dict[str, str]:
    """``["K=V", ...]`` (the OCI and Docker form) -> a dict."""
    out = {}
    for item in items or []:
        key, _, value = str(item).partition("=")
        out[key] = value
    return out


def status_json(rows: list[ServiceStatus]) -> str:
    return json.dumps({"services": [r.as_json() for r in rows],
                       "ready": all(r.ready for r in rows)}, indent=2)
