"""Smoke checks through the edge, as a browser sees it: TLS verified against the
local CA, browser hostnames sent as SNI/Host to 127.0.0.1."""

from parity.checks import requires


def _issuer(t) -> str:
    return t.env("api")["OIDC_ISSUER_URL"]


def check_web_page_loads(t) -> str:
    r = t.http.get(t.url("web", "/"), timeout=10)
    assert r.status_code == 200, f"GET {r.url} -> {r.status_code}"
    assert "parity web" in r.text, f"GET {r.url}: the page does not look like the web app"
    cfg = t.http.get(t.url("web", "/config.json"), timeout=10).json()
    want = {"apiUrl": t.url("api"), "oidcIssuer": _issuer(t)}
    got = {k: cfg.get(k) for k in want}
    assert got == want, f"web runtime config {got} != browser-facing {want}"
    return "page and runtime config served with browser-facing URLs"


def check_http_redirects_to_https(t) -> str:
    url = t.url("web", "/").replace("https://", "http://", 1)
    if t.stack.https_port != 443 or t.stack.http_port != 80:
        url = url.replace(f":{t.stack.https_port}", f":{t.stack.http_port}")
    r = t.http.get(url, timeout=10, allow_redirects=False)
    assert r.status_code in (301, 308), f"GET {url} -> {r.status_code}, expected a redirect"
    assert r.headers.get("Location", "").startswith("https://"), r.headers.get("Location")
    return f"{r.status_code} to https"


def check_api_health_through_edge(t) -> str:
    for path in ("/healthz", "/readyz"):
        r = t.http.get(t.url("api", path), timeout=10)
        assert r.status_code == 200, f"GET {r.url} -> {r.status_code}: {r.text[:200]}"
    return "healthz and readyz 200"


def check_oidc_issuer_is_browser_facing(t) -> str:
    issuer = _issuer(t)
    r = t.http.get(issuer + "/.well-known/openid-configuration", timeout=10)
    assert r.status_code == 200, f"GET {r.url} -> {r.status_code}"
    got = r.json().get("issuer")
    assert got == issuer, f"discovery issuer {got!r} != browser-facing {issuer!r}"
    return issuer


def check_oidc_discovery_from_inside(t) -> str:
    """A service inside the runtime reaches the issuer at its browser URL (compose:
    network aliases; kind: the CoreDNS rewrite), through the edge, trusting the local
    CA: the API runs the discovery request itself."""
    code = ("import json,os,ssl,urllib.request as u;"
            "c=ssl.create_default_context(cafile=os.environ['SSL_CERT_FILE']);"
            "r=u.urlopen(os.environ['OIDC_ISSUER_URL']+'/.well-known/openid-configuration',"
            "context=c,timeout=10);print(json.load(r)['issuer'])")
    r = t.exec("api", ["python3", "-c", code], timeout=30)
    err = (r.stderr.strip().splitlines() or ["no output"])[-1]
    assert r.code == 0, f"discovery from inside the api container failed: {err}"
    assert r.stdout.strip() == _issuer(t), \
        f"issuer seen from inside {r.stdout.strip()!r} != browser-facing {_issuer(t)!r}"
    return f"{_issuer(t)} from inside api"


def check_api_uses_the_same_issuer(t) -> str:
    r = t.http.get(t.url("api", "/config"), timeout=10)
    assert r.status_code == 200, f"GET {r.url} -> {r.status_code}"
    got = r.json().get("oidc_issuer")
    assert got == _issuer(t), f"the API's issuer {got!r} != {_issuer(t)!r}"
    return "API issuer equals the browser's"


@requires("temporal")
def check_temporal_ui_routed(t) -> str:
    r = t.http.get(t.url("temporal-ui", "/"), timeout=10)
    assert r.status_code < 500, f"GET {r.url} -> {r.status_code}"
    return f"{r.status_code}"


@requires("registry")
def check_registry_routed(t) -> str:
    r = t.http.get(t.url("registry", "/v2/"), timeout=10)
    assert r.status_code == 200, f"GET {r.url} -> {r.status_code}"
    return "registry /v2/ 200"


@requires("vault")
def check_vault_routed(t) -> str:
    r = t.http.get(t.url("vault", "/v1/sys/health"), timeout=10)
    assert r.status_code == 200, f"GET {r.url} -> {r.status_code}"
    return "vault unsealed and active"
