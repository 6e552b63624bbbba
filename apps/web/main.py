"""parity reference workload: the browser app (standard library only).

Env (base/services/web.yaml), all browser-facing:
  API_URL           the API's public URL
  OIDC_ISSUER_URL   the issuer (Keycloak realm) the browser logs in with
  OIDC_CLIENT_ID    the public client id

Endpoints:
  GET /, /index.html  the page: the URLs above and a "Log in" link to the issuer's
                      authorization endpoint ({issuer}/protocol/openid-connect/auth,
                      Keycloak's path) with client_id, response_type=code, scope=openid
  GET /config.json    {"apiUrl", "oidcIssuer", "oidcClientId"}
  GET /healthz        200 {"status":"ok"}
  GET /contract       {"env": {KEY: "sha256:<hex>"}} (same rules as the API, deps.py)

Usage: python3 main.py [--host 0.0.0.0] [--port 8080]
"""

from __future__ import annotations

import html
import os
import sys
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
# from the source tree, deps.py is in apps/common (in the image, beside main.py)
sys.path.insert(1, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))

import deps  # noqa: E402

log = deps.setup_logging("web")
REQUIRED_ENV = ("API_URL", "OIDC_ISSUER_URL", "OIDC_CLIENT_ID")


def runtime_config() -> dict:
    e = os.environ
    return {"apiUrl": e.get("API_URL", ""), "oidcIssuer": e.get("OIDC_ISSUER_URL", ""),
            "oidcClientId": e.get("OIDC_CLIENT_ID", "")}


def login_url(host: str) -> str:
    """The authorization request; redirect_uri assumes https://<Host>/ (the page's
    script replaces it with the real origin)."""
    cfg = runtime_config()
    query = urllib.parse.urlencode({
        "client_id": cfg["oidcClientId"], "response_type": "code", "scope": "openid",
        "redirect_uri": f"https://{host}/" if host else "/"})
    return f"{cfg['oidcIssuer'].rstrip('/')}/protocol/openid-connect/auth?{query}"


def render_index(host: str) -> bytes:
    with open(os.path.join(HERE, "static", "index.html"), encoding="utf-8") as fh:
        page = fh.read()
    cfg = runtime_config()
    values = {"API_URL": cfg["apiUrl"], "OIDC_ISSUER_URL": cfg["oidcIssuer"],
              "OIDC_CLIENT_ID": cfg["oidcClientId"], "LOGIN_URL": login_url(host)}
    for key, value in values.items():
        page = page.replace("{{" + key + "}}", html.escape(value, quote=True))
    return page.encode("utf-8")


class Web(deps.JsonHandler):
    logger = log
    routes = {
        ("GET", "/"): "index",
        ("GET", "/index.html"): "index",
        ("GET", "/config.json"): "config",
        ("GET", "/healthz"): "healthz",
        ("GET", "/contract"): "contract",
    }

    def index(self):
        host = (self.headers.get("X-Forwarded-Host") or self.headers.get("Host") or "").split(",")[0].strip()
        self.send_body(200, render_index(host), "text/html; charset=utf-8",
                       {"X-Content-Type-Options": "nosniff"})

    def config(self):
        self.send_json(200, runtime_config())

    def healthz(self):
        self.send_json(200, {"status": "ok"})

    def contract(self):
        self.send_json(200, {"env": deps.contract_env()})


def main(argv=None) -> int:
    return deps.run_server(Web, "parity reference web app", REQUIRED_ENV, log, argv)


if __name__ == "__main__":
    sys.exit(main())
