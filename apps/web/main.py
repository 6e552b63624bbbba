"""parity reference workload: the browser app (standard library only).

Env (base/services/web.yaml), all browser-facing:
  API_URL           the API's public URL
  OIDC_ISSUER_URL   the issuer (Keycloak realm) the browser logs in with
  OIDC_CLIENT_ID    the public client id (authorization code + PKCE S256)

Endpoints:
  GET /, /index.html  the page (static/index.html with the three values above
                      rendered into #api-url, #oidc-issuer, #oidc-client-id), served
                      with a strict Content-Security-Policy: scripts and styles
                      from this origin only, fetch() to this origin, the API's and
                      the issuer's, no framing
  GET /app.js         the page's script (static/app.js): the whole login in the
                      browser (PKCE, token exchange, API session cookie, /me, logout)
  GET /app.css        the page's styles (static/app.css)
  GET /config.json    {"apiUrl", "oidcIssuer", "oidcClientId"}
  GET /healthz        200 {"status":"ok"}
  GET /contract       {"env": {KEY: "sha256:<hex>"}} (same rules as the API, deps.py)

The page's DOM contract (what a browser test can rely on), see static/app.js:
  body[data-state]    signed-out | signing-in | signed-in | error (set once the script runs)
  #login, #logout     buttons; #logout is shown when signed in, #login otherwise
  #user               preferred_username;  #api-data  the JSON GET /me returned
  #status             one line: "signed out", "signing in: ...", "signed in", or the
                      error (also written with console.error)

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
STATIC = os.path.join(HERE, "static")
ASSETS = {"/app.js": ("app.js", "application/javascript; charset=utf-8"),
          "/app.css": ("app.css", "text/css; charset=utf-8")}


def runtime_config() -> dict:
    e = os.environ
    return {"apiUrl": e.get("API_URL", ""), "oidcIssuer": e.get("OIDC_ISSUER_URL", ""),
            "oidcClientId": e.get("OIDC_CLIENT_ID", "")}


def origin_of(url: str) -> str | None:
    """scheme://host[:port] of an absolute http(s) URL, else None."""
    u = urllib.parse.urlsplit((url or "").strip())
    if u.scheme.lower() not in ("http", "https") or not u.netloc or any(c in u.netloc for c in " ;'\","):
        return None
    return f"{u.scheme.lower()}://{u.netloc.rsplit('@', 1)[-1].lower()}"


def content_security_policy() -> str:
    cfg = runtime_config()
    connect = ["'self'"]
    for url in (cfg["apiUrl"], cfg["oidcIssuer"]):
        origin = origin_of(url)
        if origin and origin not in connect:
            connect.append(origin)
    return "; ".join([
        "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
        "connect-src " + " ".join(connect), "object-src 'none'", "base-uri 'none'",
        "form-action 'self'", "frame-ancestors 'none'"])


PAGE_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                "X-Frame-Options": "DENY"}


def render_index() -> bytes:
    with open(os.path.join(STATIC, "index.html"), encoding="utf-8") as fh:
        page = fh.read()
    cfg = runtime_config()
    values = {"API_URL": cfg["apiUrl"], "OIDC_ISSUER_URL": cfg["oidcIssuer"],
              "OIDC_CLIENT_ID": cfg["oidcClientId"]}
    for key, value in values.items():
        page = page.replace("{{" + key + "}}", html.escape(value, quote=True))
    return page.encode("utf-8")


class Web(deps.JsonHandler):
    logger = log
    routes = {
        ("GET", "/"): "index",
        ("GET", "/index.html"): "index",
        ("GET", "/app.js"): "asset",
        ("GET", "/app.css"): "asset",
        ("GET", "/config.json"): "config",
        ("GET", "/healthz"): "healthz",
        ("GET", "/contract"): "contract",
    }

    def index(self):
        self.send_body(200, render_index(), "text/html; charset=utf-8",
                       {**PAGE_HEADERS, "Content-Security-Policy": content_security_policy()})

    def asset(self):
        name, content_type = ASSETS[urllib.parse.urlsplit(self.path).path]
        with open(os.path.join(STATIC, name), "rb") as fh:
            body = fh.read()
        self.send_body(200, body, content_type, {"X-Content-Type-Options": "nosniff"})

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
