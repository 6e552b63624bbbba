"""The login helpers the identity checks share (parity.login) and the browser
check's plumbing that needs no browser: cookie rules, error extraction, the
runner running @browser checks only on request."""

from __future__ import annotations

from pathlib import Path

from parity import browser, checks
from parity.login import cookie_attributes, cookie_problems, page_error, pkce_pair

ROOT = Path(__file__).resolve().parent.parent


def test_cookie_attributes_drop_the_value() -> None:
    got = cookie_attributes("parity_session=s3cr3t.sig; Path=/; Domain=parity.localhost; "
                            "Max-Age=300; HttpOnly; Secure; SameSite=Lax")
    assert got == {"name": "parity_session", "secure": True, "httponly": True,
                   "samesite": "Lax", "domain": "parity.localhost", "path": "/"}
    assert "s3cr3t" not in repr(got)


def test_a_good_cookie_has_no_problems() -> None:
    good = {"name": "parity_session", "secure": True, "httpOnly": True, "sameSite": "Lax",
            "domain": ".parity.localhost"}
    assert cookie_problems(good, "parity.localhost") == []


def test_each_cookie_fault_is_named() -> None:
    bad = cookie_attributes("parity_session=x; SameSite=None")
    assert cookie_problems(bad, "parity.localhost") == [
        "cookie parity_session is not Secure (it would travel over plain http)",
        "cookie parity_session is not HttpOnly (page scripts can read it)",
        "cookie parity_session has SameSite=None (want Lax or Strict: it is only needed "
        "same-site)",
        "cookie parity_session has Domain=absent (host-only), not the stack's domain "
        "parity.localhost",
    ]


def test_page_error_reads_keycloaks_element_ids() -> None:
    page = ('<html><body><div id="kc-content"><p id="kc-error-message" class="x">'
            'Invalid parameter: <b>redirect_uri</b></p></div></body></html>')
    assert page_error(page) == "Invalid parameter: redirect_uri"
    form = '<span id="input-error" aria-live="polite">Invalid username or password.</span>'
    assert page_error(form) == "Invalid username or password."
    assert page_error("<html>fine</html>") == ""


def test_pkce_pair_is_s256() -> None:
    import base64
    import hashlib

    verifier, challenge = pkce_pair()
    assert 43 <= len(verifier) <= 128
    digest = hashlib.sha256(verifier.encode()).digest()
    assert challenge == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_certificate_errors_are_named_before_anything_else() -> None:
    journal = browser.Journal()
    journal.failed.append(("https://app.parity.localhost/", "net::ERR_CERT_AUTHORITY_INVALID"))
    journal.console.append("0.1s error: Access to fetch at 'x' has been blocked by CORS policy")
    idp = type("I", (), {"origin": "https://app.parity.localhost"})()
    assert browser._explain(RuntimeError("timeout"), journal, idp) == (
        "the browser does not trust https://app.parity.localhost: "
        "net::ERR_CERT_AUTHORITY_INVALID (the edge serves a certificate the local CA did "
        "not sign)")


def test_a_navigation_error_names_the_certificate_too() -> None:
    idp = type("I", (), {"origin": "https://app.parity.localhost"})()
    exc = RuntimeError("Page.goto: net::ERR_CERT_AUTHORITY_INVALID at "
                       "https://app.parity.localhost/\nCall log: ...")
    assert browser._explain(exc, browser.Journal(), idp).startswith(
        "the browser does not trust https://app.parity.localhost: "
        "net::ERR_CERT_AUTHORITY_INVALID")


def test_cors_is_named_from_the_console() -> None:
    journal = browser.Journal()
    journal.console.append("1.0s error: Access to fetch at 'https://api.parity.localhost/"
                           "session' from origin 'https://app.parity.localhost' has been "
                           "blocked by CORS policy: No 'Access-Control-Allow-Origin' header")
    idp = type("I", (), {"origin": "https://app.parity.localhost"})()
    assert browser._explain(RuntimeError("x"), journal, idp).startswith(
        "CORS: the browser blocked a call from https://app.parity.localhost: ")


def test_logs_never_carry_query_strings() -> None:
    assert browser._no_query("https://app.parity.localhost/?code=abc&state=x#f") == \
        "https://app.parity.localhost/"


def test_browser_checks_run_only_when_asked(monkeypatch) -> None:
    ran = []

    def normal(t):
        ran.append("normal")
        return "ok"

    @checks.browser
    def in_browser(t):
        ran.append("browser")
        return "ok"

    monkeypatch.setattr(checks, "discover", lambda root: [("a.normal", normal),
                                                          ("b.in_browser", in_browser)])
    target = type("T", (), {"browser": False, "prepare": lambda self: None,
                            "enabled": lambda self, s: True,
                            "state": Path("/nonexistent")})()
    assert [r.check for r in checks.run(ROOT, target)] == ["a.normal"]
    target.browser = True
    assert [r.check for r in checks.run(ROOT, target)] == ["a.normal", "b.in_browser"]
    assert ran.count("browser") == 1


def test_transport_errors_never_show_query_strings() -> None:
    import requests

    from parity import login

    class Http:
        def get(self, url, **kw):
            raise requests.exceptions.SSLError(
                f"HTTPSConnectionPool(host='127.0.0.1', port=443): Max retries exceeded with "
                f"url: /realms/parity/protocol/openid-connect/auth?client_id=parity-web&"
                f"state=S3CRETSTATE&code_challenge=abc (Caused by SSLError('self-signed'))")

    idp = login.Identity("https://auth.x/realms/p", "parity-web", "https://app.x/",
                         "https://app.x", "https://api.x", "parity-api", "dev", "pw")
    import pytest

    with pytest.raises(login.LoginFailed) as exc:
        login.code_flow(Http(), idp)
    assert str(exc.value) == (
        "SSLError: HTTPSConnectionPool(host='127.0.0.1', port=443): Max retries exceeded "
        "with url: /realms/parity/protocol/openid-connect/auth?… (Caused by "
        "SSLError('self-signed'))")
