"""The browser's login, step by step over HTTP: the authorization code flow of a
public client with PKCE, through the edge, exactly as the web app's page runs it
(same endpoints, same Origin header, same cookies), without a browser.

``inv validate`` uses it for the check that the token a browser gets is accepted by
the API; ``inv validate --browser`` (:mod:`parity.browser`) then proves the same in
a real browser. Nothing here prints a password, a code or a token.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import re
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit


class LoginFailed(AssertionError):
    """A step of the login failed; the message names the step and the cause."""


@dataclass(frozen=True)
class Identity:
    """What a check needs of the model's identity contract, resolved for the mode."""

    issuer: str
    client_id: str          # the browser's public client (the web app's OIDC_CLIENT_ID)
    redirect_uri: str       # the web app's origin + "/" (what its page sends)
    origin: str             # the web app's origin
    api: str                # the API's browser URL
    audience: str           # what the API checks (its OIDC_AUDIENCE)
    username: str
    password: str

    @classmethod
    def of(cls, t, username: str = "dev") -> "Identity":
        ident = t.stack.identity
        if ident is None:
            raise LoginFailed("the model has no identity: (base/identity.yaml)")
        if username not in {u.username for u in ident.users}:
            raise LoginFailed(f"identity.users has no user '{username}'")
        user = next(u for u in ident.users if u.username == username)
        web, api = t.env("web"), t.env("api")
        origin = t.url("web")
        return cls(issuer=t.resolve(ident.issuer_template), client_id=web["OIDC_CLIENT_ID"],
                   redirect_uri=origin + "/", origin=origin, api=t.url("api"),
                   audience=api["OIDC_AUDIENCE"], username=username,
                   password=t.secret(user.password.secret, user.password.key))


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)[:64]
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


_FORM = re.compile(r'<form\b[^>]*\bid="kc-form-login"[^>]*>', re.I)
_ACTION = re.compile(r'\baction="([^"]*)"', re.I)
_ERROR = re.compile(r'id="(?:kc-error-message|input-error)"[^>]*>(.*?)</', re.I | re.S)


def page_error(text: str) -> str:
    """The message an identity provider's HTML page shows (Keycloak's element ids)."""
    m = _ERROR.search(text)
    if not m:
        return ""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", m.group(1))).split())


def _cors(resp, origin: str, what: str) -> None:
    allowed = resp.headers.get("Access-Control-Allow-Origin")
    if allowed != origin:
        raise LoginFailed(f"CORS: {what} does not allow the web app's origin {origin} "
                          f"(Access-Control-Allow-Origin: {allowed or 'absent'}); a browser "
                          "blocks the response")


_QUERY = re.compile(r"\?[^\s)'\"]*")


def without_queries(text: str) -> str:
    """``text`` with the query strings of its URLs cut: codes, states and PKCE
    values travel there, and they do not belong in a check's output."""
    return _QUERY.sub("?…", text)


def _transport_errors(fn):
    """A connection or TLS error of a step, as a LoginFailed without query strings."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        # lazy: requests costs ~60 ms on import; only the live checks talk HTTP
        import requests

        try:
            return fn(*args, **kwargs)
        except requests.RequestException as exc:
            raise LoginFailed(f"{type(exc).__name__}: {without_queries(str(exc))}") from None

    return wrapper


@_transport_errors
def code_flow(http, idp: Identity) -> dict:
    """Log ``idp.username`` in through the provider's login form and exchange the code
    as the page does; returns the token response. ``http`` keeps cookies."""
    verifier, challenge = pkce_pair()
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    oidc = idp.issuer.rstrip("/") + "/protocol/openid-connect"
    query = urlencode({"client_id": idp.client_id, "redirect_uri": idp.redirect_uri,
                       "response_type": "code", "scope": "openid profile email",
                       "state": state, "nonce": nonce, "code_challenge": challenge,
                       "code_challenge_method": "S256"})
    r = http.get(f"{oidc}/auth?{query}", timeout=15, allow_redirects=False)
    form = _FORM.search(r.text) if r.status_code == 200 else None
    if form is None:
        why = page_error(r.text) or (f"redirected to {r.headers.get('Location', '')[:120]}"
                                     if r.is_redirect else r.text[:160].strip())
        raise LoginFailed(f"the identity provider did not show its login form for client "
                          f"{idp.client_id} and redirect URI {idp.redirect_uri}: HTTP "
                          f"{r.status_code} {why}")
    action = _ACTION.search(form.group(0))
    if action is None:
        raise LoginFailed("the login form has no action")
    r = http.post(urljoin(r.url, html.unescape(action.group(1))), timeout=15,
                  allow_redirects=False,
                  data={"username": idp.username, "password": idp.password})
    if not r.is_redirect:
        raise LoginFailed(f"login as {idp.username} failed: HTTP {r.status_code} "
                          f"{page_error(r.text) or 'no redirect back to the app'}")
    location = r.headers["Location"]
    if not location.startswith(idp.redirect_uri):
        raise LoginFailed(f"after login the provider redirected to {location[:120]}, not to "
                          f"the app at {idp.redirect_uri}")
    params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    if "error" in params:
        raise LoginFailed(f"the identity provider returned error={params['error']}: "
                          f"{params.get('error_description', '')}")
    if params.get("state") != state:
        raise LoginFailed("the state returned with the code is not the one sent")
    if params.get("iss") not in (None, idp.issuer):
        raise LoginFailed(f"the code came back with iss {params['iss']!r}, not {idp.issuer!r}")
    r = http.post(f"{oidc}/token", timeout=15, headers={"Origin": idp.origin}, data={
        "grant_type": "authorization_code", "client_id": idp.client_id,
        "code": params.get("code", ""), "redirect_uri": idp.redirect_uri,
        "code_verifier": verifier})
    if r.status_code != 200:
        raise LoginFailed(f"token exchange failed: HTTP {r.status_code} {_oauth_error(r)}")
    _cors(r, idp.origin, f"the token endpoint {oidc}/token")
    return r.json()


def _oauth_error(resp) -> str:
    try:
        body = resp.json()
        return f"{body.get('error')} {body.get('error_description', '')}".strip()
    except ValueError:
        return resp.text[:160]


@_transport_errors
def api_session(http, idp: Identity, access_token: str) -> dict:
    """What the page does with the token: a CORS preflight, ``POST /session`` with
    the bearer token (the API sets its session cookie), then ``GET /me`` with the
    cookie alone. Returns ``/me``'s body and the cookie's attributes."""
    session_url = idp.api.rstrip("/") + "/session"
    pre = http.options(session_url, timeout=15, headers={
        "Origin": idp.origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization"})
    _cors(pre, idp.origin, f"the API's preflight for {session_url}")
    r = http.post(session_url, timeout=15, headers={
        "Origin": idp.origin, "Authorization": f"Bearer {access_token}"})
    if r.status_code != 200:
        raise LoginFailed(f"the API refused the browser's token: HTTP {r.status_code} "
                          f"{_api_error(r)}")
    _cors(r, idp.origin, f"the API's response to POST {session_url}")
    cookie = cookie_attributes(r.headers.get("Set-Cookie", ""))
    if not cookie:
        raise LoginFailed(f"POST {session_url} set no session cookie")
    r = http.get(idp.api.rstrip("/") + "/me", timeout=15, headers={"Origin": idp.origin})
    if r.status_code != 200:
        raise LoginFailed(f"GET {idp.api}/me with the session cookie -> HTTP "
                          f"{r.status_code} {_api_error(r)}")
    _cors(r, idp.origin, f"the API's response to GET {idp.api}/me")
    return {"me": r.json(), "cookie": cookie}


def _api_error(resp) -> str:
    try:
        return str(resp.json().get("error", ""))
    except ValueError:
        return resp.text[:160]


def cookie_attributes(header: str) -> dict:
    """``name=value; Path=/; Secure; ...`` -> {"name", "secure", "httponly", "samesite",
    "domain", "path"} (the value is dropped: never shown)."""
    if not header:
        return {}
    parts = [p.strip() for p in header.split(";")]
    name = parts[0].split("=", 1)[0]
    out: dict = {"name": name, "secure": False, "httponly": False, "samesite": None,
                 "domain": None, "path": None}
    for p in parts[1:]:
        key, _, value = p.partition("=")
        key = key.strip().lower()
        if key in ("secure", "httponly"):
            out[key] = True
        elif key in ("samesite", "domain", "path"):
            out[key] = value.strip()
    return out


def cookie_problems(cookie: dict, domain: str) -> list[str]:
    """What a real deployment would not accept in the API's session cookie.
    ``cookie``: ``secure``, ``httpOnly``/``httponly``, ``sameSite``/``samesite``,
    ``domain`` (a browser's cookie jar or :func:`cookie_attributes`)."""
    name = cookie.get("name", "?")
    problems = []
    if not cookie.get("secure"):
        problems.append(f"cookie {name} is not Secure (it would travel over plain http)")
    if not (cookie.get("httponly") or cookie.get("httpOnly")):
        problems.append(f"cookie {name} is not HttpOnly (page scripts can read it)")
    same_site = str(cookie.get("samesite") or cookie.get("sameSite") or "").capitalize()
    if same_site not in ("Lax", "Strict"):
        problems.append(f"cookie {name} has SameSite={same_site or 'absent'} (want Lax or "
                        "Strict: it is only needed same-site)")
    got = (cookie.get("domain") or "").lstrip(".")
    if got != domain:
        problems.append(f"cookie {name} has Domain={got or 'absent (host-only)'}, not the "
                        f"stack's domain {domain}")
    return problems
