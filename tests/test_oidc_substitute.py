"""The offline profile's Keycloak substitute (apps/oidc-substitute),
run in-process on 127.0.0.1 with a temporary realm file: no Docker needed."""

from __future__ import annotations

import base64
import hashlib
import html
import importlib.util
import json
import re
import secrets
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

jwt = pytest.importorskip("jwt", reason="PyJWT is a dev dependency (pip install PyJWT)")

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "apps" / "oidc-substitute" / "server.py"
ISSUER_BASE = "https://auth.parity.localhost"
CLIENT_ID = "parity-dev"
CLIENT_SECRET = "s3cret-" + "x" * 20
DEV_PASSWORD = "dev-pw-" + "y" * 16
WEB = "https://app.parity.localhost"
AUDIENCE_MAPPER = {"name": "audience-parity-api", "protocol": "openid-connect",
                   "protocolMapper": "oidc-audience-mapper",
                   "config": {"included.client.audience": "parity-api",
                              "access.token.claim": "true", "id.token.claim": "false"}}

# The realm as parity renders it from its model (placeholders kept for the server).
REALM = {
    "realm": "parity", "enabled": True, "sslRequired": "external",
    "users": [
        {"username": "dev", "enabled": True, "email": "dev@parity.localhost",
         "emailVerified": True, "firstName": "Dev", "lastName": "User",
         "credentials": [{"type": "password", "value": "${PARITY_IDP_USER_DEV_PASSWORD}",
                          "temporary": False}]},
    ],
    "clients": [
        {"clientId": "parity-web", "enabled": True, "publicClient": True,
         "standardFlowEnabled": True, "directAccessGrantsEnabled": False,
         "serviceAccountsEnabled": False,
         "redirectUris": [f"{WEB}/*"], "webOrigins": [WEB],
         "attributes": {"pkce.code.challenge.method": "S256",
                        "post.logout.redirect.uris": f"{WEB}/*"},
         "protocolMappers": [AUDIENCE_MAPPER]},
        {"clientId": "parity-api", "enabled": True, "bearerOnly": True},
        {"clientId": "${OIDC_DEV_CLIENT_ID}", "enabled": True, "publicClient": False,
         "secret": "${OIDC_DEV_CLIENT_SECRET}", "serviceAccountsEnabled": True,
         "standardFlowEnabled": False, "directAccessGrantsEnabled": False,
         "protocolMappers": [AUDIENCE_MAPPER]},
    ],
}

def _load_module():
    spec = importlib.util.spec_from_file_location("parity_oidc_substitute", SERVER)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


oidc = _load_module()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import_dir = tmp_path_factory.mktemp("import")
    (import_dir / "parity-realm.json").write_text(json.dumps(REALM), encoding="utf-8")
    env = {"KC_HOSTNAME": ISSUER_BASE, "OIDC_DEV_CLIENT_ID": CLIENT_ID,
           "OIDC_DEV_CLIENT_SECRET": CLIENT_SECRET,
           "PARITY_IDP_USER_DEV_PASSWORD": DEV_PASSWORD}
    app = oidc.App(str(import_dir), env, host="127.0.0.1", http_port=0, management_port=0)
    app.start()
    yield app
    app.stop()


def url(app, path: str) -> str:
    return f"http://127.0.0.1:{app.http_port}{path}"


def discovery(app) -> dict:
    r = requests.get(url(app, "/realms/parity/.well-known/openid-configuration"), timeout=5)
    assert r.status_code == 200
    return r.json()


def local(app, endpoint: str) -> str:
    """An endpoint from discovery (browser-facing URL), reached on the test port."""
    assert endpoint.startswith(ISSUER_BASE)
    return url(app, endpoint[len(ISSUER_BASE):])


def jwks_client(app) -> dict:
    keys = requests.get(url(app, "/realms/parity/protocol/openid-connect/certs"),
                        timeout=5).json()["keys"]
    return {k["kid"]: jwt.PyJWK.from_dict(k) for k in keys}


def verify(app, token: str, audience: str) -> dict:
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwks_client(app)[kid]
    return jwt.decode(token, key.key, algorithms=["RS256"], audience=audience,
                      issuer=f"{ISSUER_BASE}/realms/parity")


# --------------------------------------------------------------------------- discovery

def test_discovery_is_under_the_issuer(server):
    doc = discovery(server)
    issuer = f"{ISSUER_BASE}/realms/parity"
    assert doc["issuer"] == issuer
    for key in ("jwks_uri", "token_endpoint", "authorization_endpoint",
                "userinfo_endpoint"):
        assert doc[key].startswith(issuer + "/protocol/openid-connect/"), key
    assert "client_credentials" in doc["grant_types_supported"]
    assert "S256" in doc["code_challenge_methods_supported"]
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]


def test_jwks_has_one_rs256_signing_key(server):
    r = requests.get(local(server, discovery(server)["jwks_uri"]), timeout=5)
    assert r.status_code == 200
    (key,) = r.json()["keys"]
    assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig"
    assert key["kid"] and key["n"] and key["e"] == "AQAB"
    assert "d" not in key  # never the private part


def test_unknown_realm_is_404(server):
    r = requests.get(url(server, "/realms/nope/.well-known/openid-configuration"), timeout=5)
    assert r.status_code == 404


# --------------------------------------------------------------------------- client_credentials

@pytest.mark.parametrize("method", ["basic", "post"])
def test_client_credentials_token_verifies_against_jwks(server, method):
    token_url = local(server, discovery(server)["token_endpoint"])
    if method == "basic":
        r = requests.post(token_url, data={"grant_type": "client_credentials"},
                          auth=(CLIENT_ID, CLIENT_SECRET), timeout=5)
    else:
        r = requests.post(token_url, data={"grant_type": "client_credentials",
                                           "client_id": CLIENT_ID,
                                           "client_secret": CLIENT_SECRET}, timeout=5)
    assert r.status_code == 200, r.text
    assert r.headers["Cache-Control"] == "no-store"
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 300
    claims = verify(server, body["access_token"], audience="parity-api")
    assert claims["iss"] == f"{ISSUER_BASE}/realms/parity"
    assert claims["sub"] == f"service-account-{CLIENT_ID}"
    assert claims["aud"] == "parity-api"
    assert claims["azp"] == CLIENT_ID
    assert claims["typ"] == "Bearer"
    assert claims["exp"] - claims["iat"] == 300
    assert claims["jti"] and "profile" in claims["scope"].split()
    assert jwt.get_unverified_header(body["access_token"])["alg"] == "RS256"


def test_wrong_secret_is_invalid_client_401(server):
    token_url = url(server, "/realms/parity/protocol/openid-connect/token")
    r = requests.post(token_url, data={"grant_type": "client_credentials"},
                      auth=(CLIENT_ID, "wrong"), timeout=5)
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"
    assert r.headers["WWW-Authenticate"].startswith("Basic")
    r = requests.post(token_url, data={"grant_type": "client_credentials",
                                       "client_id": CLIENT_ID, "client_secret": "wrong"},
                      timeout=5)
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = requests.post(token_url, data={"grant_type": "client_credentials",
                                       "client_id": "nobody", "client_secret": "x"},
                      timeout=5)
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


@pytest.mark.parametrize("data, error", [
    ({}, "invalid_request"),
    ({"grant_type": "password"}, "unsupported_grant_type"),
    ({"grant_type": "client_credentials", "scope": "no-such-scope"}, "invalid_scope"),
])
def test_token_errors_are_rfc6749_json(server, data, error):
    r = requests.post(url(server, "/realms/parity/protocol/openid-connect/token"),
                      data=data, auth=(CLIENT_ID, CLIENT_SECRET), timeout=5)
    assert r.status_code == 400
    assert r.headers["Content-Type"] == "application/json"
    assert r.json()["error"] == error


def test_two_client_auth_methods_are_rejected(server):
    r = requests.post(url(server, "/realms/parity/protocol/openid-connect/token"),
                      data={"grant_type": "client_credentials",
                            "client_secret": CLIENT_SECRET},
                      auth=(CLIENT_ID, CLIENT_SECRET), timeout=5)
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


def test_public_client_gets_no_client_credentials_token(server):
    r = requests.post(url(server, "/realms/parity/protocol/openid-connect/token"),
                      data={"grant_type": "client_credentials", "client_id": "parity-web"},
                      timeout=5)
    assert r.status_code in (400, 401)
    assert r.json()["error"] in ("unauthorized_client", "invalid_client")


def test_userinfo_of_a_service_account(server):
    token = requests.post(url(server, "/realms/parity/protocol/openid-connect/token"),
                          data={"grant_type": "client_credentials"},
                          auth=(CLIENT_ID, CLIENT_SECRET), timeout=5).json()["access_token"]
    r = requests.get(url(server, "/realms/parity/protocol/openid-connect/userinfo"),
                     headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert r.status_code == 200
    assert r.json()["sub"] == f"service-account-{CLIENT_ID}"
    r = requests.get(url(server, "/realms/parity/protocol/openid-connect/userinfo"),
                     headers={"Authorization": "Bearer not-a-token"}, timeout=5)
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"


# --------------------------------------------------------------------------- browser helpers

def _pkce():
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()
                                         ).rstrip(b"=").decode()
    return verifier, challenge


def set_cookies(r) -> dict[str, dict]:
    """The response's Set-Cookie headers: name -> {"value": ..., attribute: value}."""
    out = {}
    for raw in r.raw.headers.getlist("Set-Cookie"):
        first, *attrs = [part.strip() for part in raw.split(";")]
        name, _, value = first.partition("=")
        cookie = {"value": value}
        for a in attrs:
            k, sep, v = a.partition("=")
            cookie[k.lower()] = v if sep else True
        out[name] = cookie
    return out


class Browser:
    """What a browser does for the issuer (https://auth.parity.localhost, so it sends
    its Secure cookies), talking to the test port: keeps the cookies under
    /realms/<realm>/, never follows redirects."""

    def __init__(self, app, base: str = ISSUER_BASE):
        self.app = app
        self.base = base
        self.jar: dict[str, str] = {}

    def local(self, target: str) -> str:
        if target.startswith(self.base):
            target = target[len(self.base):]
        assert target.startswith("/"), target
        return url(self.app, target)

    def request(self, method: str, target: str, **kw):
        headers = dict(kw.pop("headers", {}))
        if self.jar:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        r = requests.request(method, self.local(target), headers=headers,
                             allow_redirects=False, timeout=5, **kw)
        for name, c in set_cookies(r).items():
            assert c["path"].startswith("/realms/")
            if c.get("max-age") == "0":
                self.jar.pop(name, None)
            else:
                self.jar[name] = c["value"]
        return r

    def authorize(self, realm: str = "parity", **params):
        base = {"client_id": "parity-web", "response_type": "code", "scope": "openid",
                "redirect_uri": f"{WEB}/callback", "state": "st-1", "nonce": "n-1"}
        base.update(params)
        query = urlencode({k: v for k, v in base.items() if v is not None})
        return self.request("GET", f"/realms/{realm}/protocol/openid-connect/auth?{query}")

    def submit(self, page, username: str, password: str):
        """Fill in and send Keycloak's login form (#kc-form-login)."""
        assert page.status_code == 200, page.text
        return self.request("POST", form_action(page.text, "kc-form-login"),
                            data={"username": username, "password": password,
                                  "credentialId": "", "login": "Sign In"})

    def login(self, username: str = "dev", password: str = DEV_PASSWORD, **params):
        """The whole login: authorization request, form, credentials. The response is
        the redirect back to the application."""
        r = self.submit(self.authorize(**params), username, password)
        assert r.status_code == 302, r.text
        return r


def form_action(page: str, form_id: str) -> str:
    m = re.search(rf'<form id="{form_id}" action="([^"]+)" method="post"', page)
    assert m, page
    return html.unescape(m.group(1))


def query_of(r) -> dict[str, str]:
    loc = urlsplit(r.headers["Location"])
    return {k: v[0] for k, v in parse_qs(loc.query).items()}


def exchange(server, code: str, verifier: str, **extra):
    return requests.post(url(server, "/realms/parity/protocol/openid-connect/token"),
                         data={"grant_type": "authorization_code", "code": code,
                               "client_id": "parity-web", "redirect_uri": f"{WEB}/callback",
                               "code_verifier": verifier, **extra}, timeout=5)


def refresh(server, token: str, client_id: str = "parity-web"):
    return requests.post(url(server, "/realms/parity/protocol/openid-connect/token"),
                         data={"grant_type": "refresh_token", "refresh_token": token,
                               "client_id": client_id}, timeout=5)


def signed_in(server, browser: Browser | None = None, **params):
    """A browser logged in as dev, and the tokens of its first code."""
    browser = browser or Browser(server)
    verifier, challenge = _pkce()
    r = browser.login(code_challenge=challenge, code_challenge_method="S256", **params)
    t = exchange(server, query_of(r)["code"], verifier)
    assert t.status_code == 200, t.text
    return browser, t.json(), r


def is_error_page(r, message: str) -> None:
    assert r.status_code == 400, r.text
    assert "Location" not in r.headers
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "<title>We are sorry...</title>" in r.text
    m = re.search(r'<div id="kc-error-message">\s*<p class="instruction">([^<]*)</p>', r.text)
    assert m and html.unescape(m.group(1)) == message, r.text


# --------------------------------------------------------------------------- login page

def test_login_form_is_served_with_keycloaks_ids(server):
    _, challenge = _pkce()
    r = Browser(server).authorize(code_challenge=challenge, code_challenge_method="S256")
    assert r.status_code == 200 and "Location" not in r.headers
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["X-Frame-Options"] == "DENY"
    csp = r.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "script-src" not in csp and "unsafe-inline" not in csp
    page = r.text
    assert "<title>Sign in to parity</title>" in page
    action = form_action(page, "kc-form-login")
    assert action.startswith(f"{ISSUER_BASE}/realms/parity/login-actions/authenticate?")
    assert {"session_code", "execution", "client_id", "tab_id"} <= set(
        parse_qs(urlsplit(action).query))
    assert re.search(r'<input [^>]*id="username" name="username"', page)
    assert re.search(r'<input [^>]*id="password" name="password" type="password"', page)
    assert re.search(r'<input [^>]*type="submit" id="kc-login" [^>]*value="Sign In"', page)
    assert 'id="input-error"' not in page
    # the request is kept on the server, nothing of it is in the page
    assert "st-1" not in page and challenge not in page and "n-1" not in page
    cookie = set_cookies(r)["AUTH_SESSION_ID"]
    assert cookie["path"] == "/realms/parity/" and cookie["httponly"] is True


def test_wrong_password_shows_the_form_again(server):
    browser = Browser(server)
    _, challenge = _pkce()
    page = browser.authorize(code_challenge=challenge, code_challenge_method="S256")
    for username, password in (("dev", "wrong-password-123"), ("nobody", DEV_PASSWORD),
                               ('"><script>alert(1)</script>', "pw-not-echoed-1"),
                               ("dev", "")):
        r = browser.submit(page, username, password)
        assert r.status_code == 200 and "Location" not in r.headers
        assert re.search(r'<span id="input-error"[^>]*>Invalid username or password\.</span>',
                         r.text)
        assert not password or password not in r.text
        assert "<script>" not in r.text
        assert f'value="{html.escape(username, quote=True)}"' in r.text
        page = r
    # after failures the same form still logs in
    r = browser.submit(page, "dev", DEV_PASSWORD)
    assert r.status_code == 302


def test_authorization_code_with_pkce(server):
    browser, tokens, r = signed_in(server)
    loc = urlsplit(r.headers["Location"])
    assert f"{loc.scheme}://{loc.netloc}{loc.path}" == f"{WEB}/callback"
    q = query_of(r)
    assert list(q) == ["code", "session_state", "state", "iss"]
    assert q["state"] == "st-1" and q["iss"] == f"{ISSUER_BASE}/realms/parity"
    access = verify(server, tokens["access_token"], audience="parity-api")
    assert access["aud"] == "parity-api" and access["azp"] == "parity-web"
    assert access["preferred_username"] == "dev"
    assert access["email"] == "dev@parity.localhost" and access["email_verified"] is True
    assert access["name"] == "Dev User"
    assert access["sub"] == str(oidc.uuid.uuid5(oidc.uuid.NAMESPACE_URL,
                                                "parity-oidc/parity/dev"))
    assert access["sid"] == q["session_state"] == tokens["session_state"]
    idt = verify(server, tokens["id_token"], audience="parity-web")
    assert idt["nonce"] == "n-1" and idt["sub"] == access["sub"]
    r = requests.get(url(server, "/realms/parity/protocol/openid-connect/userinfo"),
                     headers={"Authorization": f"Bearer {tokens['access_token']}"}, timeout=5)
    assert r.status_code == 200 and r.json()["preferred_username"] == "dev"


def test_sso_cookies_as_keycloak_sets_them(server):
    browser, tokens, r = signed_in(server)
    cookies = set_cookies(r)
    identity, session = cookies["KEYCLOAK_IDENTITY"], cookies["KEYCLOAK_SESSION"]
    for c in (identity, session):
        assert c["path"] == "/realms/parity/"
        assert c["secure"] is True and c["samesite"] == "None"  # KC_HOSTNAME is https
        assert "max-age" not in c  # browser-session cookies
    assert identity["httponly"] is True and "httponly" not in session
    assert len(identity["value"]) >= 32
    sub = jwt.decode(tokens["access_token"], options={"verify_signature": False})["sub"]
    assert session["value"] == f"parity/{sub}/{tokens['session_state']}"


def test_second_authorization_uses_the_sso_cookie(server):
    browser, tokens, _ = signed_in(server)
    verifier, challenge = _pkce()
    r = browser.authorize(code_challenge=challenge, code_challenge_method="S256",
                          state="st-2")
    assert r.status_code == 302, r.text
    q = query_of(r)
    assert q["state"] == "st-2" and q["session_state"] == tokens["session_state"]
    t = exchange(server, q["code"], verifier)
    assert t.status_code == 200 and t.json()["session_state"] == tokens["session_state"]
    # prompt=none with a session: straight back with a code
    r = browser.authorize(code_challenge=challenge, code_challenge_method="S256",
                          prompt="none")
    assert r.status_code == 302 and "code" in query_of(r)


def test_prompt_login_shows_the_form_and_keeps_the_session(server):
    browser, tokens, _ = signed_in(server)
    _, challenge = _pkce()
    page = browser.authorize(code_challenge=challenge, code_challenge_method="S256",
                             prompt="login")
    assert page.status_code == 200 and 'id="kc-form-login"' in page.text
    assert 'value="dev"' in page.text  # the person re-authenticates
    r = browser.submit(page, "dev", DEV_PASSWORD)
    assert r.status_code == 302 and query_of(r)["session_state"] == tokens["session_state"]


def test_prompt_none_without_a_session_is_login_required(server):
    _, challenge = _pkce()
    r = Browser(server).authorize(code_challenge=challenge, code_challenge_method="S256",
                                  prompt="none")
    assert r.status_code == 302
    q = query_of(r)
    assert q["error"] == "login_required" and q["state"] == "st-1" and "code" not in q


def test_login_post_is_bound_to_the_browser(server):
    browser = Browser(server)
    _, challenge = _pkce()
    page = browser.authorize(code_challenge=challenge, code_challenge_method="S256")
    action = form_action(page.text, "kc-form-login")
    creds = {"username": "dev", "password": DEV_PASSWORD}
    # another browser (no AUTH_SESSION_ID cookie) cannot use the form
    r = Browser(server).request("POST", action, data=creds)
    is_error_page(r, "Cookie not found. Please make sure cookies are enabled in your "
                     "browser.")
    # an action URL that was not issued
    forged = action.replace("tab_id=", "tab_id=x")
    r = browser.request("POST", forged, data=creds)
    is_error_page(r, "Your login attempt timed out.  Login will start from the beginning.")
    # expired (accessCodeLifespanLogin)
    for pending in server.provider.pending.values():
        pending.expires = 0
    r = browser.request("POST", action, data=creds)
    is_error_page(r, "Your login attempt timed out.  Login will start from the beginning.")


# --------------------------------------------------------------------------- refused requests

def test_foreign_redirect_uri_is_not_followed(server):
    for redirect in ("https://evil.example/cb", f"{WEB}.evil.example/cb",
                     "https://app.parity.localhost@evil.example/",
                     f"{WEB}/cb#frag", f"{WEB}\\@evil.example"):
        r = Browser(server).authorize(redirect_uri=redirect)
        is_error_page(r, "Invalid parameter: redirect_uri")


def test_unknown_client_is_an_error_page(server):
    r = Browser(server).authorize(client_id="<script>alert(1)</script>")
    is_error_page(r, "Client not found.")
    assert "<script>" not in r.text
    r = Browser(server).authorize(client_id=None)
    is_error_page(r, "Missing parameters: client_id")
    r = Browser(server).authorize(client_id="parity-api")
    is_error_page(r, "Bearer-only applications are not allowed to initiate browser login")


def test_confidential_client_without_standard_flow_is_redirected_with_error(server):
    r = Browser(server).authorize(client_id=CLIENT_ID, redirect_uri=None)
    # no redirect URI registered for it: an error page, not a redirect
    is_error_page(r, "Invalid parameter: redirect_uri")


@pytest.mark.parametrize("params, description", [
    ({}, "Missing parameter: code_challenge_method"),
    ({"code_challenge_method": "S256"}, "Missing parameter: code_challenge"),
    ({"code_challenge": "a" * 43}, "Missing parameter: code_challenge_method"),
    ({"code_challenge": "a" * 43, "code_challenge_method": "plain"},
     "Invalid parameter: code challenge method is not configured one"),
    ({"code_challenge": "short", "code_challenge_method": "S256"},
     "Invalid parameter: code_challenge"),
])
def test_pkce_is_required_for_parity_web(server, params, description):
    r = Browser(server).authorize(**params)
    assert r.status_code == 302, r.text
    q = query_of(r)
    assert q == {"error": "invalid_request", "error_description": description,
                 "state": "st-1", "iss": f"{ISSUER_BASE}/realms/parity"}


def test_pkce_mismatch_is_invalid_grant(server):
    _, challenge = _pkce()
    r = Browser(server).login(code_challenge=challenge, code_challenge_method="S256")
    r = exchange(server, query_of(r)["code"], secrets.token_urlsafe(48))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_code_reuse_revokes_what_the_code_gave(server):
    browser = Browser(server)
    verifier, challenge = _pkce()
    r = browser.login(code_challenge=challenge, code_challenge_method="S256")
    code = query_of(r)["code"]
    first = exchange(server, code, verifier)
    assert first.status_code == 200
    tokens = first.json()
    # the refresh token works ...
    r = refresh(server, tokens["refresh_token"])
    assert r.status_code == 200 and r.json()["access_token"]
    # ... until the code is used again
    again = exchange(server, code, verifier)
    assert again.status_code == 400
    assert again.json() == {"error": "invalid_grant", "error_description": "Code not valid"}
    r = refresh(server, tokens["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    r = requests.get(url(server, "/realms/parity/protocol/openid-connect/userinfo"),
                     headers={"Authorization": f"Bearer {tokens['access_token']}"}, timeout=5)
    assert r.status_code == 401
    # the session is over: the browser sees the login form again
    r = browser.authorize(code_challenge=challenge, code_challenge_method="S256")
    assert r.status_code == 200 and 'id="kc-form-login"' in r.text


def test_expired_session_shows_the_form(server):
    browser, tokens, _ = signed_in(server)
    server.provider.sessions[tokens["session_state"]].last -= 1801  # ssoSessionIdleTimeout
    _, challenge = _pkce()
    r = browser.authorize(code_challenge=challenge, code_challenge_method="S256")
    assert r.status_code == 200 and 'id="kc-form-login"' in r.text
    r = refresh(server, tokens["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


# --------------------------------------------------------------------------- CORS

def test_token_endpoint_cors_is_for_the_requesting_clients_origins(server):
    token_url = url(server, "/realms/parity/protocol/openid-connect/token")
    r = requests.options(token_url, headers={
        "Origin": WEB, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"}, timeout=5)
    assert r.status_code in (200, 204)
    assert r.headers["Access-Control-Allow-Origin"] == WEB
    assert r.headers["Access-Control-Allow-Credentials"] == "true"
    assert "POST" in r.headers["Access-Control-Allow-Methods"]
    allowed = [h.strip().lower() for h in r.headers["Access-Control-Allow-Headers"].split(",")]
    assert "content-type" in allowed and "authorization" in allowed
    assert "Origin" in r.headers["Vary"]
    r = requests.options(token_url, headers={"Origin": "https://evil.example",
                                             "Access-Control-Request-Method": "POST"},
                         timeout=5)
    assert "Access-Control-Allow-Origin" not in r.headers

    # the exchange itself, from the web app's origin and from another one
    for origin, allowed_origin in ((WEB, WEB), ("https://evil.example", None)):
        verifier, challenge = _pkce()
        r = Browser(server).login(code_challenge=challenge, code_challenge_method="S256")
        r = requests.post(token_url, headers={"Origin": origin}, data={
            "grant_type": "authorization_code", "code": query_of(r)["code"],
            "client_id": "parity-web", "redirect_uri": f"{WEB}/callback",
            "code_verifier": verifier}, timeout=5)
        assert r.status_code == 200
        assert r.headers.get("Access-Control-Allow-Origin") == allowed_origin
    # a client without webOrigins gets none, even from the web app's origin
    r = requests.post(token_url, headers={"Origin": WEB},
                      data={"grant_type": "client_credentials"},
                      auth=(CLIENT_ID, CLIENT_SECRET), timeout=5)
    assert r.status_code == 200 and "Access-Control-Allow-Origin" not in r.headers
    # and errors carry it for the web app (it can read why)
    r = requests.post(token_url, headers={"Origin": WEB},
                      data={"grant_type": "authorization_code", "code": "nope",
                            "client_id": "parity-web"}, timeout=5)
    assert r.status_code == 400 and r.headers["Access-Control-Allow-Origin"] == WEB


# --------------------------------------------------------------------------- logout

def test_logout_with_id_token_hint_ends_the_session(server):
    browser, tokens, _ = signed_in(server)
    r = browser.request("GET", "/realms/parity/protocol/openid-connect/logout?" + urlencode({
        "id_token_hint": tokens["id_token"], "post_logout_redirect_uri": f"{WEB}/bye",
        "state": "lo-1"}))
    assert r.status_code == 302
    assert r.headers["Location"] == f"{WEB}/bye?state=lo-1"
    cleared = set_cookies(r)
    for name in ("KEYCLOAK_IDENTITY", "KEYCLOAK_SESSION"):
        assert cleared[name]["max-age"] == "0" and cleared[name]["value"] == ""
        assert cleared[name]["path"] == "/realms/parity/" and cleared[name]["secure"] is True
    assert "KEYCLOAK_IDENTITY" not in browser.jar
    _, challenge = _pkce()
    r = browser.authorize(code_challenge=challenge, code_challenge_method="S256")
    assert r.status_code == 200 and 'id="kc-form-login"' in r.text
    r = refresh(server, tokens["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    # an expired id_token_hint is still good for logging out (as Keycloak)
    browser, tokens, _ = signed_in(server)
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    claims.update(iat=claims["iat"] - 3600, exp=claims["iat"] - 3000)
    expired = server.provider._sign(server.provider.realms["parity"], claims)
    r = browser.request("GET", "/realms/parity/protocol/openid-connect/logout?" + urlencode({
        "id_token_hint": expired, "post_logout_redirect_uri": f"{WEB}/bye"}))
    assert r.status_code == 302 and r.headers["Location"] == f"{WEB}/bye"
    assert refresh(server, tokens["refresh_token"]).status_code == 400


def test_logout_refuses_an_unregistered_post_logout_redirect_uri(server):
    browser, tokens, _ = signed_in(server)
    logout = "/realms/parity/protocol/openid-connect/logout?"
    r = browser.request("GET", logout + urlencode({
        "id_token_hint": tokens["id_token"],
        "post_logout_redirect_uri": "https://evil.example/"}))
    is_error_page(r, "Invalid redirect uri")
    r = browser.request("GET", logout + urlencode({
        "post_logout_redirect_uri": f"{WEB}/bye"}))
    is_error_page(r, "Missing parameters: id_token_hint")
    r = browser.request("GET", logout + urlencode({
        "id_token_hint": tokens["id_token"][:-4] + "AAAA",
        "post_logout_redirect_uri": f"{WEB}/bye"}))
    is_error_page(r, "Invalid parameter: id_token_hint")
    # none of these logged anybody out
    r = refresh(server, tokens["refresh_token"])
    assert r.status_code == 200


def test_logout_without_hint_asks_for_confirmation(server):
    browser, tokens, _ = signed_in(server)
    r = browser.request("GET", "/realms/parity/protocol/openid-connect/logout?"
                        + urlencode({"client_id": "parity-web",
                                     "post_logout_redirect_uri": f"{WEB}/bye"}))
    assert r.status_code == 200 and 'id="kc-logout"' in r.text
    assert "Do you want to log out?" in r.text
    assert refresh(server, tokens["refresh_token"]).status_code == 200  # not yet
    m = re.search(r'<form class="form-actions" action="([^"]+)" method="POST">', r.text)
    code = re.search(r'name="session_code" value="([^"]+)"', r.text).group(1)
    action = html.unescape(m.group(1))
    # another browser cannot confirm it
    r = Browser(server).request("POST", action, data={"session_code": code,
                                                      "confirmLogout": "Logout"})
    is_error_page(r, "Logout failed")
    r = browser.request("POST", action, data={"session_code": code,
                                              "confirmLogout": "Logout"})
    assert r.status_code == 302 and r.headers["Location"] == f"{WEB}/bye"
    assert refresh(server, tokens["refresh_token"]).status_code == 400


def test_logout_page_without_redirect(server):
    browser, tokens, _ = signed_in(server)
    r = browser.request("GET", "/realms/parity/protocol/openid-connect/logout?"
                        + urlencode({"id_token_hint": tokens["id_token"]}))
    assert r.status_code == 200 and "You are logged out" in r.text
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert set_cookies(r)["KEYCLOAK_IDENTITY"]["max-age"] == "0"
    assert refresh(server, tokens["refresh_token"]).status_code == 400


# --------------------------------------------------------------------------- other realms

TEAM_REALM = {
    "realm": "team", "enabled": True,
    "users": [
        {"username": "Alice", "id": "11111111-1111-1111-1111-111111111111", "enabled": True,
         "email": "alice@team.example", "firstName": "Alice",
         "credentials": [{"type": "password", "value": "${ALICE_PW}"}]},
        {"username": "bob", "enabled": True, "lastName": "Builder",
         "credentials": [{"type": "password", "value": "bob-pw-1234"}]},
        {"username": "carol", "enabled": False,
         "credentials": [{"type": "password", "value": "carol-pw-1234"}]},
        {"username": "dave", "enabled": True},
    ],
    "clients": [
        {"clientId": "team-web", "publicClient": True, "redirectUris": ["http://team.test/*"],
         "webOrigins": ["+"]},
    ],
}
EMPTY_REALM = {"realm": "empty", "enabled": True, "clients": [
    {"clientId": "web", "publicClient": True, "redirectUris": ["http://empty.test/cb"]}]}


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """No KC_HOSTNAME: the issuer comes from the request (plain http here)."""
    import_dir = tmp_path_factory.mktemp("import-plain")
    (import_dir / "team.json").write_text(json.dumps(TEAM_REALM), encoding="utf-8")
    (import_dir / "empty.json").write_text(json.dumps(EMPTY_REALM), encoding="utf-8")
    app = oidc.App(str(import_dir), {"ALICE_PW": "alice-pw-1234", "KC_PROXY_HEADERS": "xforwarded"},
                   host="127.0.0.1", http_port=0, management_port=0)
    app.start()
    yield app
    app.stop()


def test_a_realm_with_several_users_logs_in_each(plain):
    base = f"http://127.0.0.1:{plain.http_port}"
    seen = {}
    for login, password, username in (("alice", "alice-pw-1234", "alice"),
                                       ("ALICE@team.example", "alice-pw-1234", "alice"),
                                       ("bob", "bob-pw-1234", "bob")):
        browser = Browser(plain, base)
        page = browser.authorize("team", client_id="team-web",
                                 redirect_uri="http://team.test/cb")
        r = browser.submit(page, login, password)
        assert r.status_code == 302, r.text
        cookies = set_cookies(r)
        assert "secure" not in cookies["KEYCLOAK_IDENTITY"]  # plain http issuer
        assert cookies["KEYCLOAK_IDENTITY"]["path"] == "/realms/team/"
        t = requests.post(url(plain, "/realms/team/protocol/openid-connect/token"), data={
            "grant_type": "authorization_code", "code": query_of(r)["code"],
            "client_id": "team-web", "redirect_uri": "http://team.test/cb"}, timeout=5)
        assert t.status_code == 200, t.text
        claims = jwt.decode(t.json()["access_token"], options={"verify_signature": False})
        assert claims["preferred_username"] == username
        assert claims["iss"] == f"{base}/realms/team"
        assert claims["aud"] == "team-web"
        assert claims["allowed-origins"] == ["http://team.test"]
        seen[login] = claims
    assert seen["alice"]["sub"] == "11111111-1111-1111-1111-111111111111"
    assert seen["alice"]["name"] == "Alice" and seen["alice"]["email"] == "alice@team.example"
    assert seen["bob"]["sub"] != seen["alice"]["sub"]
    assert seen["bob"]["family_name"] == "Builder" and "email" not in seen["bob"]
    # one user's password is not another's; disabled and password-less users cannot log in
    browser = Browser(plain, base)
    page = browser.authorize("team", client_id="team-web", redirect_uri="http://team.test/cb")
    for login, password, message in (("bob", "alice-pw-1234", "Invalid username or password."),
                                     ("carol", "wrong", "Invalid username or password."),
                                     ("carol", "carol-pw-1234",
                                      "Account is disabled, contact your administrator."),
                                     ("dave", "", "Invalid username or password.")):
        page = browser.submit(page, login, password)
        assert page.status_code == 200 and "Location" not in page.headers
        assert re.search(rf'id="input-error"[^>]*>{re.escape(message)}<', page.text), login


def test_a_realm_without_users_shows_the_form_and_refuses_everybody(plain):
    browser = Browser(plain, f"http://127.0.0.1:{plain.http_port}")
    page = browser.authorize("empty", client_id="web", redirect_uri="http://empty.test/cb")
    assert page.status_code == 200 and 'id="kc-form-login"' in page.text
    for login in ("dev", "admin", ""):
        page = browser.submit(page, login, "dev")
        assert page.status_code == 200 and "Invalid username or password." in page.text


def test_https_is_required_from_outside(plain):
    """sslRequired external (Keycloak's default): plain http only from private
    addresses."""
    auth = url(plain, "/realms/team/protocol/openid-connect/auth?" + urlencode({
        "client_id": "team-web", "response_type": "code",
        "redirect_uri": "http://team.test/cb"}))
    r = requests.get(auth, headers={"X-Forwarded-For": "203.0.113.9"}, timeout=5,
                     allow_redirects=False)
    assert r.status_code == 403 and "HTTPS required" in r.text
    for headers in ({"X-Forwarded-For": "10.1.2.3"},
                    {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}):
        r = requests.get(auth, headers=headers, timeout=5, allow_redirects=False)
        assert r.status_code == 200, headers
    r = requests.post(url(plain, "/realms/team/protocol/openid-connect/token"),
                      headers={"X-Forwarded-For": "203.0.113.9"},
                      data={"grant_type": "client_credentials"}, timeout=5)
    assert r.status_code == 403 and r.json()["error_description"] == "HTTPS required"


def test_realm_users_need_a_username(tmp_path):
    (tmp_path / "r.json").write_text(json.dumps(
        {"realm": "x", "users": [{"email": "a@b.c"}]}), encoding="utf-8")
    app = oidc.App(str(tmp_path), {}, host="127.0.0.1", http_port=0, management_port=0)
    try:
        with pytest.raises(ValueError, match="no username"):
            app.start()
    finally:
        app.stop()


def test_passwords_are_kept_hashed(server):
    user = server.provider.realms["parity"].users["dev"]
    assert DEV_PASSWORD not in repr(user) and user.password_hash
    assert DEV_PASSWORD.encode() not in user.password_hash
    assert user.check_password(DEV_PASSWORD) and not user.check_password(DEV_PASSWORD + "x")


# --------------------------------------------------------------------------- health, logging

def test_health_ready(server):
    r = requests.get(f"http://127.0.0.1:{server.management_port}/health/ready", timeout=5)
    assert r.status_code == 200 and r.json()["status"] == "UP"
    r = requests.get(f"http://127.0.0.1:{server.management_port}/health/live", timeout=5)
    assert r.status_code == 200


def test_not_ready_before_the_realm_is_loaded(tmp_path):
    app = oidc.App(str(tmp_path), {}, host="127.0.0.1", http_port=0, management_port=0)
    app._serve(app.mgmt, "management")  # what start() does before loading realms
    try:
        r = requests.get(f"http://127.0.0.1:{app.management_port}/health/ready", timeout=5)
        assert r.status_code == 503 and r.json()["status"] == "DOWN"
    finally:
        app.stop()


def test_logs_never_show_secrets(server, capfd):
    requests.post(url(server, "/realms/parity/protocol/openid-connect/token"),
                  data={"grant_type": "client_credentials"},
                  auth=(CLIENT_ID, CLIENT_SECRET), timeout=5)
    browser = Browser(server)
    verifier, challenge = _pkce()
    page = browser.authorize(code_challenge=challenge, code_challenge_method="S256")
    browser.submit(page, "dev", "not-the-password-42")
    r = browser.submit(page, "dev", DEV_PASSWORD)
    code = query_of(r)["code"]
    tokens = exchange(server, code, verifier).json()
    browser.request("GET", "/realms/parity/protocol/openid-connect/logout?" + urlencode(
        {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": f"{WEB}/bye",
         "state": "st-1"}))
    err = capfd.readouterr().err
    assert "/protocol/openid-connect/token\" 200" in err
    assert "/login-actions/authenticate\" 302" in err and "login=ok user=dev" in err
    assert "login=failed" in err
    for secret in (CLIENT_SECRET, DEV_PASSWORD, "not-the-password-42", code, challenge,
                   verifier, tokens["access_token"], tokens["refresh_token"],
                   tokens["id_token"], *browser.jar.values(),
                   *[c["value"] for c in set_cookies(r).values()]):
        assert secret not in err
    assert "st-1" not in err and "session_code" not in err  # no query strings


def test_placeholders_resolve_like_keycloak():
    text, missing = oidc.substitute('{"a": "${A}", "b": "${B:dflt}", "c": "${C}"}',
                                    {"A": "x"})
    assert json.loads(text) == {"a": "x", "b": "dflt", "c": "${C}"}
    assert missing == ["C"]


def test_bad_realm_file_fails_start(tmp_path):
    (tmp_path / "r.json").write_text("{not json", encoding="utf-8")
    app = oidc.App(str(tmp_path), {}, host="127.0.0.1", http_port=0, management_port=0)
    try:
        with pytest.raises(ValueError, match="not JSON"):
            app.start()
    finally:
        app.stop()
