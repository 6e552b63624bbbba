"""The offline profile's Keycloak substitute (overlays/images/offline/keycloak-substitute),
run in-process on 127.0.0.1 with a temporary realm file: no Docker needed."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import secrets
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

jwt = pytest.importorskip("jwt", reason="PyJWT is a dev dependency (pip install PyJWT)")

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "overlays" / "images" / "offline" / "keycloak-substitute" / "server.py"
ISSUER_BASE = "https://auth.parity.localhost"
CLIENT_ID = "parity-dev"
CLIENT_SECRET = "s3cret-" + "x" * 20
WEB = "https://app.parity.localhost"

# The realm as base/services/keycloak.yaml renders it (placeholders kept for the server).
REALM = {
    "realm": "parity",
    "enabled": True,
    "clients": [
        {"clientId": "parity-web", "publicClient": True, "standardFlowEnabled": True,
         "redirectUris": [f"{WEB}/*"], "webOrigins": [WEB]},
        {"clientId": "parity-api", "bearerOnly": True},
        {"clientId": "${OIDC_DEV_CLIENT_ID}", "secret": "${OIDC_DEV_CLIENT_SECRET}",
         "publicClient": False, "serviceAccountsEnabled": True,
         "standardFlowEnabled": False,
         "protocolMappers": [{
             "name": "audience-parity-api", "protocol": "openid-connect",
             "protocolMapper": "oidc-audience-mapper",
             "config": {"included.client.audience": "parity-api",
                        "access.token.claim": "true"}}]},
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
           "OIDC_DEV_CLIENT_SECRET": CLIENT_SECRET}
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


# --------------------------------------------------------------------------- authorization code

def _pkce():
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()
                                         ).rstrip(b"=").decode()
    return verifier, challenge


def _authorize(server, **params):
    base = {"client_id": "parity-web", "response_type": "code", "scope": "openid",
            "redirect_uri": f"{WEB}/callback", "state": "st-1", "nonce": "n-1"}
    base.update(params)
    return requests.get(url(server, "/realms/parity/protocol/openid-connect/auth"),
                        params={k: v for k, v in base.items() if v is not None},
                        allow_redirects=False, timeout=5)


def test_authorization_code_with_pkce(server):
    verifier, challenge = _pkce()
    r = _authorize(server, code_challenge=challenge, code_challenge_method="S256")
    assert r.status_code == 302
    loc = urlsplit(r.headers["Location"])
    assert f"{loc.scheme}://{loc.netloc}{loc.path}" == f"{WEB}/callback"
    q = {k: v[0] for k, v in parse_qs(loc.query).items()}
    assert q["state"] == "st-1" and q["iss"] == f"{ISSUER_BASE}/realms/parity"
    token_url = url(server, "/realms/parity/protocol/openid-connect/token")
    form = {"grant_type": "authorization_code", "code": q["code"], "client_id": "parity-web",
            "redirect_uri": f"{WEB}/callback", "code_verifier": verifier}
    r = requests.post(token_url, data=form, timeout=5)
    assert r.status_code == 200, r.text
    body = r.json()
    access = verify(server, body["access_token"], audience="parity-web")
    assert access["preferred_username"] == "dev" and access["azp"] == "parity-web"
    idt = verify(server, body["id_token"], audience="parity-web")
    assert idt["nonce"] == "n-1" and idt["sub"] == access["sub"]
    # a code is used once
    r = requests.post(token_url, data=form, timeout=5)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    # the refresh token gives a new access token
    r = requests.post(token_url, data={"grant_type": "refresh_token",
                                       "refresh_token": body["refresh_token"],
                                       "client_id": "parity-web"}, timeout=5)
    assert r.status_code == 200 and r.json()["access_token"]


def test_pkce_mismatch_is_invalid_grant(server):
    _, challenge = _pkce()
    r = _authorize(server, code_challenge=challenge, code_challenge_method="S256")
    code = parse_qs(urlsplit(r.headers["Location"]).query)["code"][0]
    r = requests.post(url(server, "/realms/parity/protocol/openid-connect/token"),
                      data={"grant_type": "authorization_code", "code": code,
                            "client_id": "parity-web", "redirect_uri": f"{WEB}/callback",
                            "code_verifier": secrets.token_urlsafe(48)}, timeout=5)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_foreign_redirect_uri_is_not_followed(server):
    r = _authorize(server, redirect_uri="https://evil.example/cb")
    assert r.status_code == 400 and "Location" not in r.headers
    assert r.json()["error"] == "invalid_request"


def test_confidential_client_without_standard_flow_is_redirected_with_error(server):
    r = _authorize(server, client_id=CLIENT_ID, redirect_uri=None)
    # no redirect URI registered for it: an error page, not a redirect
    assert r.status_code == 400


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
    verifier, challenge = _pkce()
    r = _authorize(server, code_challenge=challenge, code_challenge_method="S256")
    code = parse_qs(urlsplit(r.headers["Location"]).query)["code"][0]
    err = capfd.readouterr().err
    assert "/protocol/openid-connect/token\" 200" in err
    assert CLIENT_SECRET not in err and code not in err and challenge not in err
    assert "st-1" not in err  # no query strings


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
