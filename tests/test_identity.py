"""The identity contract (base/identity.yaml): rendered into the provider's realm
import with secrets as placeholders, delivered as secret env, referenced by
``${identity:issuer}``; the same in both modes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from parity import identity, model
from parity.model import Selection
from parity.model import SecretRef

ROOT = Path(__file__).resolve().parent.parent


def load(mode: str = "compose", root: Path = ROOT, phase: int = 1):
    return model.load(root, Selection(mode, phase)).stack


def realm_of(stack) -> dict:
    f = next(f for f in stack.services["keycloak"].files if f.name == identity.FILE_NAME)
    assert f.path == "/opt/keycloak/data/import/parity-realm.json"
    return json.loads(stack.resolve(f.content))


def test_realm_import_follows_the_model() -> None:
    realm = realm_of(load())
    assert realm["realm"] == "parity"
    clients = {c["clientId"]: c for c in realm["clients"]}
    web = clients["parity-web"]
    assert web["publicClient"] is True and web["standardFlowEnabled"] is True
    assert web["redirectUris"] == ["https://app.parity.localhost/*"]
    assert web["webOrigins"] == ["https://app.parity.localhost"]
    assert web["attributes"] == {"pkce.code.challenge.method": "S256",
                                 "post.logout.redirect.uris": "https://app.parity.localhost/*"}
    [mapper] = web["protocolMappers"]
    assert mapper["protocolMapper"] == "oidc-audience-mapper"
    assert mapper["config"]["included.client.audience"] == "parity-api"
    assert clients["parity-api"] == {"clientId": "parity-api", "enabled": True,
                                     "protocol": "openid-connect", "bearerOnly": True}
    assert clients["parity-dev"]["secret"] == "${PARITY_IDP_CLIENT_PARITY_DEV_SECRET}"
    assert clients["parity-dev"]["serviceAccountsEnabled"] is True
    users = {u["username"]: u for u in realm["users"]}
    assert sorted(users) == ["dev", "ops"]
    assert users["dev"]["credentials"] == [{"type": "password", "temporary": False,
                                            "value": "${PARITY_IDP_USER_DEV_PASSWORD}"}]


def test_secrets_are_delivered_as_env_never_written_into_the_file() -> None:
    stack = load()
    env = dict(stack.services["keycloak"].env)
    assert env["PARITY_IDP_USER_DEV_PASSWORD"] == SecretRef("oidc-users", "dev")
    assert env["PARITY_IDP_USER_OPS_PASSWORD"] == SecretRef("oidc-users", "ops")
    assert env["PARITY_IDP_CLIENT_PARITY_DEV_SECRET"] == SecretRef("oidc-dev-client",
                                                                   "client-secret")


@pytest.mark.parametrize("mode", ["compose", "kind"])
def test_issuer_reference_is_the_browser_url_in_every_mode(mode: str) -> None:
    stack = load(mode)
    for svc in ("api", "web"):
        value = dict(stack.services[svc].env)["OIDC_ISSUER_URL"]
        assert value == "${identity:issuer}"
        assert stack.resolve(value) == "https://auth.parity.localhost/realms/parity"


def test_issuer_follows_the_edge_port(repo_copy: Path) -> None:
    (repo_copy / "overlays" / "local").mkdir()
    (repo_copy / "overlays" / "local" / "port.yaml").write_text(
        "stack:\n  edge:\n    https_port: 8443\n    http_port: 8080\n")
    stack = load(root=repo_copy)
    assert stack.resolve("${identity:issuer}") == \
        "https://auth.parity.localhost:8443/realms/parity"
    assert realm_of(stack)["clients"][0]["redirectUris"] == \
        ["https://app.parity.localhost:8443/*"]


def test_both_modes_render_the_same_realm() -> None:
    assert realm_of(load("compose")) == realm_of(load("kind"))


def test_env_names_that_collide_are_refused(repo_copy: Path) -> None:
    from parity.errors import InputErrors

    (repo_copy / "base" / "secrets.yaml").write_text(
        (repo_copy / "base" / "secrets.yaml").read_text()
        .replace("      ops: {generate: 20}", "      ops: {generate: 20}\n"
                 "      a.b: {generate: 20}\n      a-b: {generate: 20}"))
    (repo_copy / "overlays" / "local").mkdir()
    (repo_copy / "overlays" / "local" / "users.yaml").write_text(
        "identity:\n  users:\n    a.b: !merge(missing_ok)\n"
        "      password: {secret: oidc-users, key: a.b}\n"
        "    a-b: !merge(missing_ok)\n      password: {secret: oidc-users, key: a-b}\n")
    with pytest.raises(InputErrors) as exc:
        load(root=repo_copy)
    assert "env name PARITY_IDP_USER_A_B_PASSWORD is also used by identity.users.a.b" \
        in exc.value.render()


def test_explain_names_the_identity_value_behind_what_parity_adds() -> None:
    resolved = model.load(ROOT, Selection("compose", 1))
    info = model.explain(resolved, "services.keycloak.env.PARITY_IDP_CLIENT_PARITY_DEV_SECRET")
    assert info["rendered_from"] == "identity.clients.parity-dev.secret"
    assert info["value"] == {"secret": "oidc-dev-client", "key": "client-secret"}
    assert info["chain"][0]["location"].startswith("base/identity.yaml:")
    assert model.explain(resolved, "services.keycloak.files[realm]")["rendered_from"] == \
        "identity"
