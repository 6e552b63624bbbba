"""The login in a real browser: headless Chromium (Debian's package) driven by
Playwright for Python (docs/decisions/0014-browser-checks.md).

The browser trusts the local CA the way a developer's does: through an NSS
database (``certutil``, package libnss3-tools) in a throwaway ``$HOME``, the store
Chromium reads on Linux. It opens ``https://app.<domain>``, logs in through the
identity host with a seeded user, lands back on the app, sees what the API
returned to the page, checks the API's session cookie as the browser stored it,
and logs out.

On failure it keeps a screenshot, the console log and the network log under
``.parity/logs/browser-<mode>-<time>/`` and names them in the message.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from . import fsio
from .login import Identity, LoginFailed, cookie_problems
from .secrets import mask

#: Chromium flags for a closed network and a container (docs/runbook.md)
FLAGS = ("--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-default-apps", "--metrics-recording-only")
CANDIDATES = ("chromium", "chromium-browser", "google-chrome-stable", "google-chrome")
INSTALL_HINT = ("install Debian's chromium and libnss3-tools and the Python package "
                "playwright: make browser-deps (see docs/runbook.md#browser-checks)")
STEP_TIMEOUT_MS = 20_000


def chromium() -> str:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    raise LoginFailed(f"no Chromium on PATH (looked for {', '.join(CANDIDATES)}); "
                      f"{INSTALL_HINT}")


def trust_ca(home: Path, ca_file: str) -> None:
    """An NSS database under ``home`` that trusts the local CA for websites, as
    ``certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n 'parity local CA' -i ca.crt``
    does on a developer's machine."""
    certutil = shutil.which("certutil")
    if certutil is None:
        raise LoginFailed(f"certutil is missing, so the browser cannot trust the local CA; "
                          f"{INSTALL_HINT}")
    db = home / ".pki" / "nssdb"
    db.mkdir(parents=True)
    for argv in ([certutil, "-d", f"sql:{db}", "-N", "--empty-password"],
                 [certutil, "-d", f"sql:{db}", "-A", "-t", "C,,", "-n", "parity local CA",
                  "-i", ca_file]):
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise LoginFailed(f"certutil failed: {(r.stderr or r.stdout).strip()[:200]}")


class Journal:
    """What the browser did: console messages, requests and their outcome."""

    def __init__(self):
        self.console: list[str] = []
        self.network: list[str] = []
        self.failed: list[tuple[str, str]] = []    # (url, error text)
        self.started = time.monotonic()

    def _t(self) -> str:
        return f"{time.monotonic() - self.started:7.3f}s"

    def attach(self, page) -> None:
        page.on("console", lambda m: self.console.append(f"{self._t()} {m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.console.append(f"{self._t()} pageerror: {e}"))
        page.on("requestfailed", self._failed)
        page.on("response", lambda r: self.network.append(
            f"{self._t()} {r.request.method} {_no_query(r.url)} -> {r.status}"))

    def _failed(self, request) -> None:
        text = request.failure or "failed"
        self.failed.append((request.url, text))
        self.network.append(f"{self._t()} {request.method} {_no_query(request.url)} -> "
                            f"FAILED {text}")

    def cors_errors(self) -> list[str]:
        return [c for c in self.console if "CORS policy" in c]


def _no_query(url: str) -> str:
    """Codes, states and tokens travel in query strings: never in a log."""
    return url.split("?", 1)[0].split("#", 1)[0]


def run(t, logs_root: Path) -> str:
    """The whole login in a browser; returns a one-line detail or raises
    :class:`LoginFailed` naming the cause and the kept evidence."""
    try:
        # lazy: playwright and its driver: only inv validate --browser needs them
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise LoginFailed(f"the Python package playwright is missing; {INSTALL_HINT}") \
            from None
    executable = chromium()
    idp = Identity.of(t)
    journal = Journal()
    home = Path(tempfile.mkdtemp(prefix="parity-browser-"))
    try:
        trust_ca(home, t.ca_file)
        with sync_playwright() as p:
            # the edge listens on loopback; *.localhost resolves there anyway, this
            # covers any stack.domain
            resolver = f"--host-resolver-rules=MAP *.{t.stack.domain} {t.address}"
            browser = p.chromium.launch(executable_path=executable, headless=True,
                                        args=[*FLAGS, resolver],
                                        env={**os.environ, "HOME": str(home)})
            try:
                context = browser.new_context()
                page = context.new_page()
                page.set_default_timeout(STEP_TIMEOUT_MS)
                journal.attach(page)
                try:
                    return _login(page, context, idp, journal, t.stack.domain)
                except (LoginFailed, PlaywrightError) as exc:
                    raise LoginFailed(_explain(exc, journal, idp) + " — " +
                                      _keep(page, journal, logs_root, t)) from None
            finally:
                browser.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _state(page) -> str:
    return page.get_attribute("body", "data-state") or ""


def _wait_state(page, states: tuple[str, ...]) -> str:
    # a selector, not wait_for_function: the app's CSP forbids eval (as it should)
    page.wait_for_selector(", ".join(f'body[data-state="{s}"]' for s in states),
                           timeout=STEP_TIMEOUT_MS)
    return _state(page)


def _status(page) -> str:
    try:
        return page.inner_text("#status", timeout=2000).strip()
    except Exception:  # noqa: BLE001 - the page may not be the app
        return ""


def _login(page, context, idp: Identity, journal: Journal, domain: str) -> str:
    page.goto(idp.origin + "/", wait_until="load")
    _wait_state(page, ("signed-out", "signed-in", "error"))
    page.click("#login")
    # the identity host's login form, or an error page of it
    page.wait_for_url(lambda url: not url.startswith(idp.origin), timeout=STEP_TIMEOUT_MS)
    page.wait_for_load_state("load")
    if page.locator("#kc-form-login").count() == 0:
        error = _page_error(page)
        raise LoginFailed(f"the identity provider refused the login request at "
                          f"{_no_query(page.url)}: {error or 'no login form'}"
                          f"{_redirect_hint(error, idp)}")
    page.fill("#username", idp.username)
    page.fill("#password", idp.password)
    page.click("#kc-login")
    # back on the app (its body gets a data-state), or the form again with an error
    page.wait_for_selector("#input-error, #kc-error-message, body[data-state]",
                           timeout=STEP_TIMEOUT_MS)
    if not page.url.startswith(idp.origin):
        raise LoginFailed(f"login as {idp.username} was refused: {_page_error(page)}")
    state = _wait_state(page, ("signed-in", "error"))
    if state != "signed-in":
        raise LoginFailed(f"back on the app, the page says: {_status(page) or state}")
    user = page.inner_text("#user").strip()
    if user != idp.username:
        raise LoginFailed(f"the page shows user {user!r}, not {idp.username!r}")
    data = json.loads(page.inner_text("#api-data"))
    if data.get("user") != idp.username:
        raise LoginFailed(f"the API returned {data!r} to the page, not {idp.username}'s data")
    api_host = idp.api.split("://", 1)[1].split("/", 1)[0].split(":")[0]
    cookies = [c for c in context.cookies(idp.api) if c["name"] not in
               ("KEYCLOAK_IDENTITY", "KEYCLOAK_SESSION")]
    if not cookies:
        raise LoginFailed(f"the browser kept no session cookie for {api_host}")
    problems = [p for c in cookies for p in cookie_problems(c, domain)]
    if problems:
        raise LoginFailed("; ".join(problems))
    page.click("#logout")
    # the app ends its API session, the identity host its own, and sends the browser back
    if _wait_state(page, ("signed-out", "error")) != "signed-out":
        raise LoginFailed(f"after logout the page says: {_status(page)}")
    left = [c["name"] for c in context.cookies([idp.api, idp.issuer])
            if c["name"] in ("KEYCLOAK_IDENTITY", cookies[0]["name"])]
    if left:
        raise LoginFailed(f"after logout the browser still holds {', '.join(left)}")
    return (f"{idp.username} logged in at {idp.issuer}, the page showed the API's data "
            f"(seed_rows {data.get('seed_rows')}), cookie {cookies[0]['name']} Secure "
            f"HttpOnly SameSite={cookies[0]['sameSite']} Domain={domain}, logged out")


def _page_error(page) -> str:
    for sel in ("#kc-error-message", "#input-error"):
        if page.locator(sel).count():
            return " ".join(page.inner_text(sel).split())
    return page.title()


def _redirect_hint(error: str, idp: Identity) -> str:
    if "redirect_uri" in error:
        return (f" (the app's redirect URI {idp.redirect_uri} is not in "
                f"identity.clients.{idp.client_id}.redirect_uris)")
    if "Client not found" in error:
        return f" (no client {idp.client_id} in identity.clients)"
    return ""


def _explain(exc: Exception, journal: Journal, idp: Identity) -> str:
    """The cause in the words of the failing part, most specific first."""
    failed = list(journal.failed)
    if "ERR_CERT" in str(exc):   # a navigation that failed before any request event
        m = re.search(r"(net::ERR_CERT_[A-Z_]+).*?at (https?://\S+)", str(exc), re.S)
        if m:
            failed.insert(0, (m.group(2), m.group(1)))
    for url, text in failed:
        if "ERR_CERT" in text:
            host = url.split("://", 1)[-1].split("/", 1)[0]
            return (f"the browser does not trust https://{host}: {text} (the edge serves a "
                    "certificate the local CA did not sign)")
    cors = journal.cors_errors()
    if cors:
        return f"CORS: the browser blocked a call from {idp.origin}: {cors[0].split(': ', 1)[-1]}"
    if isinstance(exc, LoginFailed):
        return str(exc)
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"the browser step failed: {text}"


def _keep(page, journal: Journal, logs_root: Path, t) -> str:
    out = logs_root / f"browser-{t.mode}-{time.strftime('%Y%m%d-%H%M%S')}"

    fsio.ensure_dir(out)
    kept = []
    try:
        page.screenshot(path=str(out / "screenshot.png"), full_page=True)
        kept.append("screenshot.png")
    except Exception:  # noqa: BLE001 - a crashed page has no screenshot
        pass
    for name, lines in (("console.log", journal.console), ("network.log", journal.network)):
        fsio.write_atomic(out / name, mask("\n".join(lines) + "\n", t.state))
    kept += ["console.log", "network.log"]
    return f"kept {', '.join(kept)} in {out}"
