"""The live-check runner: discovery, pass/fail/n-a, fail-closed, masking."""

from __future__ import annotations

from pathlib import Path

from parity import checks, model
from parity.layers import Selection

ROOT = Path(__file__).resolve().parent.parent


def test_runner_fails_closed_and_masks_secrets(tmp_path) -> None:
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "demo.py").write_text(
        "from parity.checks import requires\n"
        "def check_ok(t):\n    return 'fine'\n"
        "def check_assert(t):\n    assert False, 'api said no'\n"
        "def check_unreachable(t):\n    raise ConnectionError('refused')\n"
        "@requires('vault')\ndef check_vault(t):\n    return 'x'\n"
        "def check_leak(t):\n    raise RuntimeError('token s3cr3t-value-123 rejected')\n")
    state = tmp_path / ".parity" / "secrets" / "x"
    state.mkdir(parents=True)
    (state / "k").write_text("s3cr3t-value-123")
    resolved = model.load(ROOT, Selection("compose", 1))
    target = checks.Target(tmp_path, resolved, lambda: [])
    results = {r.check: r for r in checks.run(tmp_path, target)}
    assert results["demo.ok"].status == "pass"
    assert results["demo.assert"].status == "fail"
    assert results["demo.assert"].detail == "api said no"
    assert results["demo.unreachable"].status == "fail"
    assert results["demo.unreachable"].detail == "ConnectionError: refused"
    assert results["demo.vault"].status == "n/a"
    assert results["demo.vault"].detail == "vault not enabled in phase 1"
    assert results["demo.leak"].detail == "RuntimeError: token ******** rejected"
    table = checks.format_table(list(results.values()), "t")
    assert table.endswith("1 passed, 3 failed")


def test_the_shipped_checks_are_discovered() -> None:
    names = [n for n, _ in checks.discover(ROOT)]
    for want in ("readiness.every_service_ready", "readiness.database_seeded",
                 "smoke.oidc_issuer_is_browser_facing",
                 "smoke.dev_token_accepted_by_api", "contract.api_received_the_rendered_contract"):
        assert want in names


def test_target_resolves_browser_urls_per_port() -> None:
    resolved = model.load(ROOT, Selection("compose", 1, sets=("stack.edge.https_port=8443",)))
    t = checks.Target(ROOT, resolved, lambda: [])
    assert t.url("auth") == "https://auth.parity.localhost:8443"
    assert t.url("api", "/healthz") == "https://api.parity.localhost:8443/healthz"
    # the browser's port is part of every browser-facing URL, the issuer included
    assert t.env("api")["OIDC_ISSUER_URL"] == "https://auth.parity.localhost:8443/realms/parity"
