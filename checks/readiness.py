"""Readiness: every service enabled in the phase is ready (a job has completed)."""


def check_every_service_ready(t) -> str:
    rows = t.statuses()
    bad = [f"{r.service} ({r.state}/{r.health}: {r.reason or 'no reason'})"
           for r in rows if not r.ready]
    assert not bad, "not ready: " + "; ".join(bad)
    return f"{len(rows)} services ready"
