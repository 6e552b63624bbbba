"""The parity diff: the drift catalogue (contract cases exit 1, allowed ones 0),
output formats, policy errors, and the rendered level."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from parity import cli
from parity.errors import InputError, ParityError

ROOT = Path(__file__).resolve().parent.parent

KIND_OVERLAY = "overlays/modes/kind.yaml"


def kind_overlay(root: Path, text: str) -> None:
    """Replace the kind overlay with the default one plus ``text`` merged in by hand."""
    (root / KIND_OVERLAY).write_text(text, encoding="utf-8")


def run_diff(root: Path, phase: int = 1) -> tuple[dict, int]:
    text, code = cli.diff(root, "compose", "kind", phase, "model", "json")
    return json.loads(text), code


@pytest.mark.parametrize("phase", [1, 2, 3])
def test_default_stack_has_no_contract_drift(phase: int) -> None:
    data, code = run_diff(ROOT, phase)
    assert code == 0
    assert data["contract_differences"] == 0
    classes = {d["class"] for d in data["differences"]}
    assert classes == {"transport", "placement"}
    for d in data["differences"]:
        assert set(d) == {"path", "from", "to", "class", "rule", "reason", "from_source",
                          "to_source"}
        for side in ("from_source", "to_source"):
            assert set(d[side]) == {"layer", "file", "line", "absent"}
    assert data["hidden_by_local"] == []


CONTRACT_CASES = {
    "env-key-renamed": ("services:\n  api:\n    env: !merge(children_missing_ok)\n"
                        "      DATABASE_HOST: !remove\n      DB_HOST: ${host:postgres}\n",
                        ["services.api.env.DATABASE_HOST", "services.api.env.DB_HOST"]),
    "env-meaning-changed": ("services:\n  api:\n    env:\n      DATABASE_HOST: ${host:redis}\n",
                            ["services.api.env.DATABASE_HOST"]),
    "env-literal-changed": ("services:\n  api:\n    env:\n      DATABASE_NAME: platform_kind\n",
                            ["services.api.env.DATABASE_NAME"]),
    "secret-name-differs": ("services:\n  api:\n    env:\n      DATABASE_PASSWORD: "
                            "{secret: postgres-admin, key: password}\n",
                            ["services.api.env.DATABASE_PASSWORD.secret"]),
    "secret-key-differs": ("services:\n  api:\n    env:\n      DATABASE_USER: "
                           "{secret: postgres-app, key: password}\n",
                           ["services.api.env.DATABASE_USER.key"]),
    "image-tag-differs": ("services:\n  postgres:\n    image: postgres:16.5-bookworm\n",
                          ["services.postgres.image"]),
    "route-host-differs": ("services:\n  web:\n    routes:\n      - {name: web, host: www}\n",
                           ["services.web.routes[web].host"]),
    "route-path-differs": ("services:\n  api:\n    routes:\n      - {name: api, path: /api}\n",
                           ["services.api.routes[api].path"]),
    "readiness-path-differs": ("services:\n  api:\n    readiness:\n      http: {path: /healthz}\n",
                               ["services.api.readiness.http.path"]),
    "dependency-dropped": ("services:\n  api:\n    depends_on:\n      - !remove redis\n",
                           ["services.api.depends_on[redis]"]),
    "port-name-differs": ("services:\n  web:\n    ports:\n"
                          "      - !replace(by=port) {name: web, port: 8080}\n"
                          "    readiness:\n      http: {port: web}\n    routes:\n"
                          "      - {name: web, port: web}\n",
                          ["services.web.ports[http].port", "services.web.ports[web].port"]),
    # the identity contract (issue 12): what a browser and the API meet
    "identity-redirect-uri": ("identity:\n  clients:\n    parity-web:\n      redirect_uris: "
                              "!replace ['https://localhost:3000/*']\n",
                              ["identity.clients.parity-web.redirect_uris"]),
    "identity-audience-dropped": ("identity:\n  clients:\n    parity-web:\n"
                                  "      audiences: !replace []\n",
                                  ["identity.clients.parity-web.audiences"]),
    "identity-realm-renamed": ("identity:\n  realm: parity-kind\n",
                               ["identity.realm"]),
    "identity-client-id-of-web": ("services:\n  web:\n    env:\n      OIDC_CLIENT_ID: "
                                  "parity-dev\n", ["services.web.env.OIDC_CLIENT_ID"]),
    "identity-client-type": ("identity:\n  clients:\n    parity-dev:\n      pkce: S256\n",
                             ["identity.clients.parity-dev.pkce"]),
    "service-missing": ("services:\n  api:\n    depends_on:\n      - !remove redis\n"
                        "    env:\n      REDIS_HOST: !remove\n      REDIS_PORT: !remove\n"
                        "      REDIS_PASSWORD: !remove\n  redis: !remove\n",
                        ["services.redis"]),
}


@pytest.mark.parametrize("case", sorted(CONTRACT_CASES))
def test_contract_drift_exits_1_and_names_path_and_rule(case: str, repo_copy: Path) -> None:
    overlay, paths = CONTRACT_CASES[case]
    kind_overlay(repo_copy, overlay)
    data, code = run_diff(repo_copy)
    assert code == 1
    contract = {d["path"]: d for d in data["differences"] if d["class"] == "contract"}
    for path in paths:
        assert path in contract, f"{path} not reported as contract: {sorted(contract)}"
        assert contract[path]["rule"] == "(none)"
        assert contract[path]["reason"] == "no rule covers it (contract by default)"
    text, code = cli.diff(repo_copy, "compose", "kind", 1)
    assert code == 1
    assert "CONTRACT (not allowed between modes)" in text
    assert f"  {paths[0]}\n" in text


ALLOWED_CASES = {
    "host-port-bindings": ("stack:\n  edge:\n    http_port: 8080\n    https_port: 8443\n",
                           {"stack.edge.http_port": ("transport", "host-ports")}),
    "internal-dns": ("stack:\n  internal_dns: '{service}.{namespace}.svc'\n",
                     {"stack.internal_dns": ("transport", "internal-dns"),
                      "services.api.env.DATABASE_HOST": ("transport", "resolved-reference")}),
    "replicas": ("services:\n  keycloak:\n    replicas: 3\n",
                 {"services.keycloak.replicas": ("placement", "replicas")}),
    "resources": ("services:\n  redis:\n    resources:\n      limits: {memory: 1Gi}\n",
                  {"services.redis.resources.limits.memory": ("placement", "resources")}),
    "storage-class": ("services:\n  redis:\n    storage:\n      - {name: data, storage_class: "
                      "fast}\n", {"services.redis.storage[data].storage_class":
                                  ("placement", "storage-class")}),
}


@pytest.mark.parametrize("case", sorted(ALLOWED_CASES))
def test_allowed_differences_exit_0_and_are_classified(case: str, repo_copy: Path) -> None:
    overlay, expected = ALLOWED_CASES[case]
    kind_overlay(repo_copy, overlay)
    data, code = run_diff(repo_copy)
    assert code == 0, [d for d in data["differences"] if d["class"] == "contract"]
    found = {d["path"]: (d["class"], d["rule"]) for d in data["differences"]}
    for path, want in expected.items():
        assert found.get(path) == want, path


def test_secret_values_never_appear(repo_copy: Path) -> None:
    kind_overlay(repo_copy, "secrets:\n  keycloak-admin:\n    keys:\n"
                            "      username: {value: root-kind}\n")
    data, code = run_diff(repo_copy)
    assert code == 1  # a changed secret value is contract drift ...
    [d] = [d for d in data["differences"] if d["class"] == "contract"]
    assert d["path"] == "secrets.keycloak-admin.keys.username.value"
    assert (d["from"], d["to"]) == ("********", "********")  # ... and is never shown
    text, _ = cli.diff(repo_copy, "compose", "kind", 1)
    assert "root-kind" not in text and "admin\n" not in text


def test_phases_compare_and_new_services_are_contract() -> None:
    text, code = cli.diff(ROOT, "kind:1", "kind:2", None, "model", "json")
    data = json.loads(text)
    assert code == 1
    paths = {d["path"] for d in data["differences"] if d["class"] == "contract"}
    assert "services.nats" in paths and "services.api.env.NATS_URL" in paths


def test_policy_errors_name_file_and_line(repo_copy: Path) -> None:
    policy = repo_copy / "base" / "parity-policy.yaml"
    policy.write_text("rules:\n  - id: x\n    path: stack.name\n    class: transprt\n"
                      "    reason: r\n")
    with pytest.raises(InputError) as exc:
        cli.diff(repo_copy, "compose", "kind", 1)
    assert exc.value.render() == (
        "base/parity-policy.yaml:4: rules[0].class: class 'transprt' is not one of "
        "transport, placement, contract (did you mean 'transport'?)")


def test_uncovered_difference_fails_closed(repo_copy: Path) -> None:
    policy = repo_copy / "base" / "parity-policy.yaml"
    policy.write_text("rules: []\n")
    data, code = run_diff(repo_copy)
    assert code == 1
    assert all(d["class"] == "contract" for d in data["differences"])


def test_rendered_level_compares_phases_by_object_identity() -> None:
    text, code = cli.diff(ROOT, "kind:1", "kind:2", None, "rendered", "json")
    data = json.loads(text)
    assert code == 1  # phase 2 adds services: contract by the policy's default
    paths = {d["path"] for d in data["differences"]}
    assert "apps/v1/StatefulSet/parity/nats" in paths
    assert any(p.startswith("v1/ConfigMap/parity/api-env:data.NATS_URL") for p in paths)


def test_rendered_level_refuses_to_compare_modes() -> None:
    with pytest.raises(InputError) as exc:
        cli.diff(ROOT, "compose", "kind", 1, "rendered")
    assert exc.value.render() == (
        "the rendered level compares renders of one mode (two phases, or a saved directory "
        "with --against)\n  next: compare compose and kind with --level model")


def test_against_a_saved_render_shows_what_an_overlay_change_does(repo_copy: Path,
                                                                   tmp_path: Path) -> None:
    saved = tmp_path / "before"
    cli.render(repo_copy, cli.selection("kind", 1, environ={}), str(saved))
    text, code = cli.diff(repo_copy, "kind", "kind", 1, "model", "json", str(saved))
    assert (json.loads(text)["differences"], code) == ([], 0)
    text, code = cli.diff(repo_copy, "kind", "kind", 1, "model", "json", str(saved),
                          sets=["services.api.replicas=5"])
    found = {d["path"]: (d["from"], d["to"], d["class"], d["rule"])
             for d in json.loads(text)["differences"]}
    assert found == {"apps/v1/Deployment/parity/api:spec.replicas":
                     (2, 5, "placement", "rendered-replicas")}
    assert code == 0


def test_secret_data_is_masked_at_the_rendered_level(tmp_path: Path) -> None:
    from parity.diff import identities

    docs = identities({"manifests.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n"
                                         "  name: s\n  namespace: n\ndata:\n  k: c2VjcmV0\n"})
    assert docs["v1/Secret/n/s"]["data"] == {"k": "********"}


# --------------------------------------------------------------------------- accepted

def accept(root: Path, entries: str) -> None:
    policy = root / "base" / "parity-policy.yaml"
    policy.write_text(policy.read_text(encoding="utf-8") + "accepted:\n" + entries,
                      encoding="utf-8")


ACCEPT_ENTRY = ("  - id: kind-db-name\n"
                "    path: services.api.env.DATABASE_NAME\n"
                "    reason: the shared cluster's database is named platform_kind until PLAT-42\n"
                "    until: {until}\n")


def test_an_accepted_contract_difference_passes_and_is_shown(repo_copy: Path) -> None:
    kind_overlay(repo_copy, CONTRACT_CASES["env-literal-changed"][0])
    accept(repo_copy, ACCEPT_ENTRY.format(until="2099-12-31"))
    data, code = run_diff(repo_copy)
    assert code == 0
    assert data["contract_differences"] == 0 and data["counts"]["accepted"] == 1
    [d] = [d for d in data["differences"] if d["class"] == "contract"]
    assert d["accepted"] == {"id": "kind-db-name", "until": "2099-12-31", "reason":
                             "the shared cluster's database is named platform_kind until "
                             "PLAT-42"}
    text, code = cli.diff(repo_copy, "compose", "kind", 1)
    assert code == 0
    assert "(0 contract, 1 accepted, " in text.splitlines()[0]
    assert ("ACCEPTED CONTRACT (allowed until the date shown)\n"
            "  services.api.env.DATABASE_NAME\n"
            "      platform  ->  platform_kind\n"
            "      compose: base/services/api.yaml:13 (base)   "
            "kind: overlays/modes/kind.yaml:4 (mode:kind)\n"
            "      rule: (none) — no rule covers it (contract by default)\n"
            "      accepted: kind-db-name until 2099-12-31 — the shared cluster's database is "
            "named platform_kind until PLAT-42") in text
    assert "CONTRACT (not allowed" not in text


def test_an_expired_acceptance_fails_again_and_says_so(repo_copy: Path) -> None:
    kind_overlay(repo_copy, CONTRACT_CASES["env-literal-changed"][0])
    accept(repo_copy, ACCEPT_ENTRY.format(until="2020-01-31"))
    text, code = cli.diff(repo_copy, "compose", "kind", 1)
    assert code == 1
    assert ("CONTRACT (not allowed between modes)\n  services.api.env.DATABASE_NAME\n"
            in text)
    line = [x for x in text.splitlines() if "expired" in x][0]
    assert line.startswith("      accepted: kind-db-name expired on 2020-01-31 "
                           "(base/parity-policy.yaml:")
    assert line.endswith("): fix the drift, or renew the date in review")


def test_an_acceptance_covers_only_contract_and_unused_ones_are_listed(repo_copy: Path) -> None:
    # the default stack has no contract drift: the acceptance matches nothing
    accept(repo_copy, ACCEPT_ENTRY.format(until="2099-12-31")
           + "  - id: all-env\n    path: services.*.env.*\n    reason: r\n"
             "    until: 2099-12-31\n")
    data, code = run_diff(repo_copy)
    assert code == 0 and data["unused_acceptances"] == ["kind-db-name", "all-env"]
    assert all("accepted" not in d for d in data["differences"])  # transport stays transport
    text, _ = cli.diff(repo_copy, "compose", "kind", 1)
    assert "ACCEPTED, BUT MATCHED NOTHING HERE (remove them once the drift is fixed)\n" \
           "  kind-db-name: services.api.env.DATABASE_NAME (base/parity-policy.yaml:" in text


@pytest.mark.parametrize("entry, message", [
    ("  - id: a\n    path: stack.name\n    reason: r\n",
     "base/parity-policy.yaml:{line}: accepted[0]: missing required key 'until'\n"
     "  next: an accepted difference needs an id, a path, the reason and the date it ends "
     "(until: YYYY-MM-DD)"),
    ("  - id: a\n    path: stack.name\n    reason: r\n    until: next week\n",
     "base/parity-policy.yaml:{line+3}: accepted[0].until: until 'next week' is not a date\n"
     "  next: write the last day it holds as YYYY-MM-DD"),
    ("  - id: a\n    path: stack.name\n    reason: r\n    until: 2099-01-01\n    ticket: X\n",
     "base/parity-policy.yaml:{line+4}: accepted[0]: unknown key 'ticket'\n"
     "  next: keys of an accepted difference: id, path, reason, until, level"),
    ("  - id: replicas\n    path: stack.name\n    reason: r\n    until: 2099-01-01\n",
     "base/parity-policy.yaml:{line}: accepted[0].id: duplicate id 'replicas' (rules and "
     "accepted differences share one set of ids)"),
])
def test_accepted_entries_are_checked_with_file_and_line(repo_copy: Path, entry: str,
                                                         message: str) -> None:
    policy = repo_copy / "base" / "parity-policy.yaml"
    line = len(policy.read_text(encoding="utf-8").splitlines()) + 2
    accept(repo_copy, entry)
    with pytest.raises(InputError) as exc:
        cli.diff(repo_copy, "compose", "kind", 1)
    expected = message.replace("{line+3}", str(line + 3)).replace(
        "{line+4}", str(line + 4)).replace("{line}", str(line))
    assert exc.value.render() == expected


# --------------------------------------------------------------------------- provenance

def by_path(data: dict) -> dict[str, dict]:
    return {d["path"]: d for d in data["differences"]}


def src(layer: str, file: str | None, line: int | None, absent: bool = False) -> dict:
    return {"layer": layer, "file": file, "line": line, "absent": absent}


def test_each_difference_names_the_layer_file_and_line_of_both_values() -> None:
    diffs = by_path(run_diff(ROOT)[0])
    replicas = diffs["services.api.replicas"]
    assert replicas["from_source"] == src("base", "base/services/api.yaml", 6)
    assert replicas["to_source"] == src("mode:kind", "overlays/modes/kind.yaml", 9)
    # a resolved reference points at the line of the env entry, on both sides
    host = diffs["services.api.env.DATABASE_HOST"]
    assert host["from_source"] == host["to_source"] == src("base", "base/services/api.yaml", 11)
    # absent on one side: the nearest existing parent's location, marked absent
    memory = diffs["services.api.resources.limits.memory"]
    assert memory["from_source"] == src("base", "base/services/api.yaml", 3, absent=True)
    assert memory["to_source"] == src("mode:kind", "overlays/modes/kind.yaml", 12)
    text, _ = cli.diff(ROOT, "compose", "kind", 1)
    assert ("  services.api.replicas\n"
            "      1  ->  2\n"
            "      compose: base/services/api.yaml:6 (base)   "
            "kind: overlays/modes/kind.yaml:9 (mode:kind)\n"
            "      rule: replicas — how many copies run\n") in text
    assert ("      compose: absent; parent last changed at base/services/api.yaml:3 (base)   "
            "kind: overlays/modes/kind.yaml:12 (mode:kind)\n") in text


def test_a_removed_dependency_points_at_the_overlay_that_removed_it(repo_copy: Path) -> None:
    kind_overlay(repo_copy, CONTRACT_CASES["dependency-dropped"][0])
    d = by_path(run_diff(repo_copy)[0])["services.api.depends_on[redis]"]
    assert d["from_source"] == src("base", "base/services/api.yaml", 34)
    assert d["to_source"] == src("mode:kind", "overlays/modes/kind.yaml", 4, absent=True)


def test_values_from_the_environment_and_set_name_their_layer(repo_copy: Path) -> None:
    text, _ = cli.diff(repo_copy, "compose:1", "kind:1", None, "model", "json",
                       sets=["services.web.replicas=3"])
    d = by_path(json.loads(text))["services.api.replicas"]
    assert d["from_source"]["layer"] == "base"
    text, _ = cli.diff(repo_copy, "kind:1", "kind:2", None, "model", "json")
    nats = by_path(json.loads(text))["services.nats"]
    # a service of a later phase is absent because of its phase: that line is the cause
    assert nats["from_source"] == src("base", "base/services/nats.yaml", 4, absent=True)
    assert nats["to_source"] == src("base", "base/services/nats.yaml", 3)
    text, _ = cli.diff(repo_copy, "kind:1", "kind:2", None)
    assert ("      kind:1: absent; starts in phase 2 at base/services/nats.yaml:4 (base)   "
            "kind:2: base/services/nats.yaml:3 (base)\n") in text


def test_the_rendered_level_has_no_source() -> None:
    text, _ = cli.diff(ROOT, "kind:1", "kind:2", None, "rendered", "json")
    data = json.loads(text)
    assert data["differences"]
    assert all(d["from_source"] is None and d["to_source"] is None
               for d in data["differences"])
    text, _ = cli.diff(ROOT, "kind:1", "kind:2", None, "rendered")
    assert "kind:1: " not in text


# --------------------------------------------------------------------------- the edge

EDGE_REALISATION = ("services:\n  {svc}:\n    image: traefik:v3.6.12\n"
                    "    command: [traefik]\n    args: ['--entryPoints.web.address=:80']\n"
                    "    working_dir: /srv\n    user: '65532'\n")


def test_the_edge_realisation_differs_as_transport(repo_copy: Path) -> None:
    kind_overlay(repo_copy, EDGE_REALISATION.format(svc="edge"))
    data, code = run_diff(repo_copy)
    assert code == 0, [d for d in data["differences"] if d["class"] == "contract"]
    found = {p: (d["class"], d["rule"]) for p, d in by_path(data).items()
             if p.startswith("services.edge.")}
    assert found == {"services.edge.image": ("transport", "edge-image"),
                     "services.edge.command": ("transport", "edge-command"),
                     "services.edge.args": ("transport", "edge-args"),
                     "services.edge.working_dir": ("transport", "edge-working-dir"),
                     "services.edge.user": ("transport", "edge-user")}
    image = by_path(data)["services.edge.image"]
    assert image["reason"] == ("decision 0007 realises the edge per mode (nginx in compose, "
                               "the edge controller in kind); its ports, routes, env and "
                               "readiness stay contract")
    assert image["to_source"] == src("mode:kind", "overlays/modes/kind.yaml", 3)


def test_the_same_change_to_another_service_stays_contract(repo_copy: Path) -> None:
    kind_overlay(repo_copy, EDGE_REALISATION.format(svc="web"))
    data, code = run_diff(repo_copy)
    assert code == 1
    contract = {p: d["rule"] for p, d in by_path(data).items() if d["class"] == "contract"}
    assert contract == {f"services.web.{f}": "(none)"
                        for f in ("image", "command", "args", "working_dir", "user")}


def test_the_edge_contract_stays_contract(repo_copy: Path) -> None:
    kind_overlay(repo_copy, "services:\n  edge:\n    ports:\n      - {name: https, port: 8443}\n"
                            "    env: !merge(missing_ok)\n      LOG_LEVEL: debug\n"
                            "    readiness:\n      http: {path: /ready}\n")
    data, code = run_diff(repo_copy)
    assert code == 1
    contract = {p for p, d in by_path(data).items() if d["class"] == "contract"}
    assert contract == {"services.edge.ports[https].port", "services.edge.env.LOG_LEVEL",
                        "services.edge.readiness.http.path"}


def test_when_edge_is_a_known_condition(repo_copy: Path) -> None:
    policy = repo_copy / "base" / "parity-policy.yaml"
    policy.write_text("rules:\n  - id: x\n    path: stack.name\n    class: transport\n"
                      "    when: egde\n    reason: r\n")
    with pytest.raises(InputError) as exc:
        cli.diff(repo_copy, "compose", "kind", 1)
    assert exc.value.render() == ("base/parity-policy.yaml:5: rules[0].when: when 'egde' is "
                                  "not one of same-reference, edge")


# --------------------------------------------------------------------------- local overlays

def local(root: Path, rel: str, text: str) -> None:
    path = root / "overlays" / "local" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_a_shared_local_value_that_hides_a_mode_difference_warns(repo_copy: Path) -> None:
    local(repo_copy, "x.yaml", "services:\n  api:\n    replicas: 3\n")
    text, code = cli.diff(repo_copy, "compose", "kind", 1)
    assert code == 0
    assert "  services.api.replicas\n" not in text
    assert text.endswith(
        "\n\nWARNING: overlays/local/x.yaml:3 sets services.api.replicas for both modes and "
        "hides a difference overlays/modes/kind.yaml:9 introduced (compose 1, kind 2)\n"
        "  (overlays/local/*.yaml applies to every mode; a change for one mode goes in "
        "overlays/local/<mode>/. The exit code ignores these warnings.)")
    data, code = run_diff(repo_copy)
    assert code == 0
    assert data["hidden_by_local"] == [{
        "path": "services.api.replicas", "from": 1, "to": 2, "class": "placement",
        "class_with_local": None,
        "local_source": src("local", "overlays/local/x.yaml", 3),
        "introduced_by": [src("mode:kind", "overlays/modes/kind.yaml", 9)],
        "message": "WARNING: overlays/local/x.yaml:3 sets services.api.replicas for both "
                   "modes and hides a difference overlays/modes/kind.yaml:9 introduced "
                   "(compose 1, kind 2)"}]


def test_a_shared_local_value_that_turns_contract_into_transport_warns(repo_copy: Path) -> None:
    kind_overlay(repo_copy, "stack:\n  internal_dns: '{service}.{namespace}.svc.cluster.local'\n"
                            "services:\n  api:\n    env:\n      DATABASE_HOST: ${host:redis}\n")
    local(repo_copy, "x.yaml", "services:\n  api:\n    env:\n"
                               "      DATABASE_HOST: ${host:postgres}\n")
    data, code = run_diff(repo_copy)
    assert code == 0  # the warning does not change the exit code
    [hidden] = data["hidden_by_local"]
    assert (hidden["class"], hidden["class_with_local"]) == ("contract", "transport")
    assert hidden["message"] == (
        "WARNING: overlays/local/x.yaml:4 sets services.api.env.DATABASE_HOST for both modes "
        "and hides a difference overlays/modes/kind.yaml:6 introduced (compose postgres, kind "
        "redis.parity.svc.cluster.local): contract without the shared local layers, "
        "transport with them")


def test_a_shared_local_removal_is_located_in_the_local_file(repo_copy: Path) -> None:
    kind_overlay(repo_copy, "services:\n  api:\n    env: !merge(children_missing_ok)\n"
                            "      DEBUG_PORT: '5005'\n")
    local(repo_copy, "x.yaml", "services:\n  api:\n    env:\n      DATABASE_NAME: platform\n"
                               "      DEBUG_PORT: !remove(missing_ok)\n")
    [hidden] = run_diff(repo_copy)[0]["hidden_by_local"]
    assert hidden["path"] == "services.api.env.DEBUG_PORT"
    assert hidden["local_source"] == src("local", "overlays/local/x.yaml", 5)
    assert hidden["introduced_by"] == [src("mode:kind", "overlays/modes/kind.yaml", 4)]


def test_a_one_mode_local_value_is_a_difference_not_a_warning(repo_copy: Path) -> None:
    local(repo_copy, "kind/x.yaml", "services:\n  api:\n    replicas: 3\n")
    data, code = run_diff(repo_copy)
    assert code == 0 and data["hidden_by_local"] == []
    d = by_path(data)["services.api.replicas"]
    assert (d["from"], d["to"]) == (1, 3)
    assert d["to_source"] == src("local:kind", "overlays/local/kind/x.yaml", 3)


def test_the_extra_load_happens_only_between_modes_with_shared_local_files(
        repo_copy: Path, monkeypatch) -> None:
    from parity import model

    loads = []
    real = model.load
    monkeypatch.setattr(model, "load", lambda root, sel: loads.append(sel) or real(root, sel))
    run_diff(repo_copy)
    assert len(loads) == 2  # no overlays/local/*.yaml: nothing more
    local(repo_copy, "x.yaml", "{}\n")
    loads.clear()
    cli.diff(repo_copy, "kind:1", "kind:2", None)
    assert len(loads) == 2  # one mode: nothing more
    loads.clear()
    run_diff(repo_copy)
    assert [s.shared_local for s in loads] == [True, True, False, False]


# --------------------------------------------------------------------------- --against input

@pytest.mark.parametrize("case", ["fifo", "deep", "malformed", "binary", "link-out"])
def test_against_refuses_what_is_not_a_render_without_hanging(case, repo_copy, tmp_path):
    """A saved render is read like any input: no FIFO blocks, no deep or broken YAML
    crashes, nothing outside the directory is followed (exit 2, the file named)."""
    saved = tmp_path / "saved"
    cli.render(repo_copy, cli.selection("kind", 1), out=str(saved))
    target = saved / "manifests.yaml"
    target.unlink()
    if case == "fifo":
        os.mkfifo(target)
    elif case == "deep":
        target.write_text("a: " + "[" * 5000 + "]" * 5000 + "\n")
    elif case == "malformed":
        target.write_text("a: [unclosed\n")
    elif case == "binary":
        target.write_bytes(b"\xff\xfe\x00")
    else:
        target.symlink_to("/etc/hostname")
    with pytest.raises(ParityError) as exc:
        cli.diff(repo_copy, "kind", "kind", 1, "rendered", "text", against=str(saved))
    assert exc.value.exit_code == 2
    assert "manifests.yaml" in exc.value.render()
