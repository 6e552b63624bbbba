"""Runs the live checks in ``checks/`` against a running environment.

A check is a function ``check_<name>(t: Target) -> str`` in a module of
``checks/``; it returns a one-line detail or raises (an ``AssertionError`` with a
message, or any error: a target it cannot reach **fails**, it never skips).
``@requires("vault")`` marks a check that only applies when a service is enabled
in the phase; it is then reported as ``n/a``, visibly.

The same checks run in both modes: :class:`Target` resolves URLs, secrets and
service status for the mode, and connects through the edge on 127.0.0.1 with the
browser hostname as SNI/Host.
"""

from __future__ import annotations

import hashlib
import importlib.util
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from . import secrets, tls
from .edgehttp import session
from .errors import CheckFailed
from .modes import mode_record


def requires(*services: str):
    def mark(fn):
        fn.parity_requires = services
        return fn

    return mark


def browser(fn):
    """A check that drives a real browser: it runs only with ``--browser``."""
    fn.parity_browser = True
    return fn


@dataclass
class Result:
    check: str
    status: str      # pass, fail, n/a
    detail: str
    seconds: float

    def as_json(self) -> dict:
        return asdict(self)


class Target:
    """What a check may use, resolved for one mode."""

    def __init__(self, root: Path, resolved, statuses: Callable[[], list], runtime=None,
                 browser: bool = False):
        self.root = root
        self.resolved = resolved
        self.stack = resolved.stack
        self.mode = self.stack.mode
        self.state = root / ".parity"
        self.address = "127.0.0.1"
        self.ca_file = str(tls.ca_paths(self.state)[0])
        self._statuses = statuses
        self._runtime = runtime      # the lane's driver: delivered() and exec()
        self._http = None
        self.browser = browser       # run the @browser checks too
        self.logs = self.state / "logs"

    def new_http(self):
        """A fresh session through the edge, with its own cookie jar (a login)."""
        return session(self.address, self.stack.http_port, self.stack.https_port,
                       self.ca_file)

    def url(self, route: str, path: str = "") -> str:
        """The browser-facing URL of a route (port added when not the default)."""
        r = self.stack.routes()[route]
        return self.stack.transport.browser_url(r.host, r.path) + path

    def resolve(self, value: str) -> str:
        return self.stack.resolve(value)

    def env(self, service: str) -> dict:
        """A service's contract env: resolved strings, secrets as model.SecretRef."""
        out = {}
        for k, v in self.stack.services[service].env:
            out[k] = self.stack.resolve(v) if isinstance(v, str) else (
                str(v).lower() if isinstance(v, bool) else v if not isinstance(v, (int, float))
                else str(v))
        return out

    def secret(self, name: str, key: str) -> str:
        return secrets.value(self.state, name, key)

    def enabled(self, service: str) -> bool:
        return service in self.stack.services

    def statuses(self) -> list:
        return self._statuses()

    def delivered(self, service: str):
        """What the runtime started the service with (:class:`parity.lifecycle.
        Delivered`), or None when it has no running container (a completed job)."""
        return self._runtime.delivered(service)

    def exec(self, service: str, argv: list[str], timeout: float = 60):
        """Run a command inside the service's running container (compose) or a ready
        pod of it (kind); returns :class:`parity.lifecycle.Exec`."""
        return self._runtime.exec(service, argv, timeout)

    @property
    def http(self):
        if self._http is None:
            self._http = self.new_http()
        return self._http

    def prepare(self) -> None:
        """Import and build what the checks share before they run in threads: a
        first import of ``requests`` in six threads at once can meet a module
        another thread has half initialised, and the kind lane's API client is
        built once (the mode's ``prepare_checks``, parity.modes)."""
        import requests  # noqa: F401  (lazy: third-party HTTP stack; only live checks use it)

        self.http  # noqa: B018
        if self._runtime is not None:
            mode_record(self.mode).prepare_checks(self._runtime)

    @staticmethod
    def sha256(value: str) -> str:
        return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


def discover(root: Path) -> list[tuple[str, Callable]]:
    found = []
    for path in sorted((root / "checks").glob("*.py")):
        if path.name.startswith("_"):
            continue
        spec = importlib.util.spec_from_file_location(f"parity_checks.{path.stem}", path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for name in sorted(vars(module)):
            fn = getattr(module, name)
            if name.startswith("check_") and callable(fn):
                found.append((f"{path.stem}.{name.removeprefix('check_')}", fn))
    if not found:
        raise CheckFailed("no checks found in checks/", hint="restore checks/ from git")
    return found


def _run_one(name: str, fn: Callable, target: Target) -> Result:
    need = getattr(fn, "parity_requires", ())
    missing = [s for s in need if not target.enabled(s)]
    if missing:
        return Result(name, "n/a", f"{', '.join(missing)} not enabled in phase "
                                   f"{target.stack.phase}", 0.0)
    started = time.monotonic()
    try:
        detail = fn(target) or ""
        status = "pass"
    except AssertionError as exc:
        detail, status = str(exc) or "assertion failed", "fail"
    except Exception as exc:  # noqa: BLE001 - a check that cannot run fails
        detail, status = f"{type(exc).__name__}: {exc}", "fail"
    detail = secrets.mask(detail, target.state)
    return Result(name, status, detail, time.monotonic() - started)


def run(root: Path, target: Target, parallel: int = 6) -> list[Result]:
    """Run every check (independent ones in parallel); results in a stable order.
    Browser checks run only when the target asks for them."""
    checks = [(n, fn) for n, fn in discover(root)
              if target.browser or not getattr(fn, "parity_browser", False)]
    target.prepare()
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        futures = [pool.submit(_run_one, name, fn, target) for name, fn in checks]
        return [f.result() for f in futures]


def format_table(results: list[Result], title: str) -> str:
    width = max(len(r.check) for r in results)
    lines = [title]
    for r in results:
        mark = {"pass": "PASS", "fail": "FAIL", "n/a": "n/a "}[r.status]
        lines.append(f"  {mark}  {r.check:<{width}}  {r.detail}")
    passed = sum(r.status == "pass" for r in results)
    failed = sum(r.status == "fail" for r in results)
    lines.append(f"{passed} passed, {failed} failed")
    return "\n".join(lines)
