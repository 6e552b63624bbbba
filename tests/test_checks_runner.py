"""The live-check runner: discovery, pass/fail/n-a, fail-closed, masking."""

from __future__ import annotations

from pathlib import Path

import pytest

from parity import checks, model
from parity.model import Selection

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
                 "identity.service_account_token_accepted_by_api",
                 "identity.browser_token_path_accepted_by_api",
                 "browser.login_in_a_real_browser",
                 "contract.api_received_the_rendered_contract"):
        assert want in names


def test_target_resolves_browser_urls_per_port() -> None:
    resolved = model.load(ROOT, Selection("compose", 1, sets=("stack.edge.https_port=8443",)))
    t = checks.Target(ROOT, resolved, lambda: [])
    assert t.url("auth") == "https://auth.parity.localhost:8443"
    assert t.url("api", "/healthz") == "https://api.parity.localhost:8443/healthz"
    # the browser's port is part of every browser-facing URL, the issuer included
    assert t.env("api")["OIDC_ISSUER_URL"] == "https://auth.parity.localhost:8443/realms/parity"


# --------------------------------------------------------------------------- the contract check

def _contract_check():
    return dict(checks.discover(ROOT))["contract.every_service_received_its_rendered_contract"]


class _Runtime:
    """What a lane reports of a running service (a stand-in: the real lanes read
    Docker's container config and containerd's OCI spec, tested end to end)."""

    def __init__(self, target, tweak):
        from parity.lifecycle import Delivered

        self.delivered_by_service = {}
        for name, svc in target.stack.services.items():
            if svc.workload == "job" or svc.role == "edge":
                continue
            env = {k: (target.secret(v.secret, v.key) if isinstance(v, model.SecretRef) else v)
                   for k, v in target.env(name).items()}
            image_env = {"PATH": "/usr/bin", "LANG": "C.UTF-8"}
            env = {**image_env, **env, "HOSTNAME": "pod-1", "KUBERNETES_SERVICE_HOST": "10.96.0.1"}
            self.delivered_by_service[name] = Delivered(
                env, image_env, frozenset({"HOSTNAME", "KUBERNETES_SERVICE_HOST"}), f"pod {name}-0")
        tweak(self.delivered_by_service)

    def delivered(self, service):
        return self.delivered_by_service.get(service)


@pytest.mark.parametrize("tweak, detail", [
    (lambda d: None, "5 services received exactly their rendered env"),
    (lambda d: d["api"].env.update(POSTGRES_PORT="tcp://10.96.3.4:5432"),
     "api (pod api-0): received but not in the contract: POSTGRES_PORT"),
    (lambda d: d["api"].env.update(DATABASE_NAME="platform_kind"),
     "api (pod api-0): values differ from the render: DATABASE_NAME"),
    (lambda d: d["web"].env.pop("API_URL"),
     "web (pod web-0): not received: API_URL"),
    (lambda d: d.pop("redis"), "redis: no running container"),
    (lambda d: d["api"].env.update(PATH="/opt/bin"),   # the image's own key, changed
     "api (pod api-0): received but not in the contract: PATH"),
])
def test_the_contract_check_compares_what_the_runtime_delivered(tmp_path, tweak, detail):
    from parity import secrets

    resolved = model.load(ROOT, Selection("kind", 1))
    target = checks.Target(tmp_path, resolved, lambda: [])   # secrets under tmp_path/.parity
    secrets.ensure(resolved.stack, tmp_path / ".parity")
    target._runtime = _Runtime(target, tweak)
    fn = _contract_check()
    if detail.endswith("rendered env"):
        assert fn(target) == detail
    else:
        with pytest.raises(AssertionError) as exc:
            fn(target)
        assert str(exc.value) == detail
