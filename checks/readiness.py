"""Readiness: every service enabled in the phase is ready (a job has completed)."""


def check_every_service_ready(t) -> str:
    rows = t.statuses()
    bad = [f"{r.service} ({r.state}/{r.health}: {r.reason or 'no reason'})"
           for r in rows if not r.ready]
    assert not bad, "not ready: " + "; ".join(bad)
    return f"{len(rows)} services ready"


def check_database_seeded(t) -> str:
    """The API's schema and seed data exist (after up, and again after reset)."""
    r = t.http.get(t.url("api", "/seed"), timeout=10)
    assert r.status_code == 200, f"GET {r.url} -> {r.status_code}: {r.text[:200]}"
    rows = r.json().get("seed_rows")
    assert rows == 1, f"expected 1 seed row, found {rows}"
    return "schema applied, 1 seed row"
