"""The layer order, environment variables, --set, and provenance."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from parity import model
from parity.errors import InputError
from parity.model import Selection, describe, plan_layers
from parity.nodes import to_plain

ROOT = Path(__file__).resolve().parent.parent


def test_layer_order_is_base_phases_mode_profile_local_env_set(repo_copy: Path) -> None:
    local = repo_copy / "overlays" / "local"
    local.mkdir()
    (local / "me.yaml").write_text("{}\n")
    sel = Selection("kind", 3, sets=("stack.domain=x.localhost",),
                    environ={"PARITY_HTTP_PORT": "8080"})
    layers = plan_layers(repo_copy, sel)
    assert describe(layers) == ("base -> phase:2 -> phase:3 -> mode:kind -> images:default"
                                " -> local -> env -> set")
    assert layers[0].rel == "base/identity.yaml"  # base files sorted, policy excluded
    assert all(layer.rel != "base/parity-policy.yaml" for layer in layers)


def test_set_wins_over_environment_which_wins_over_files(repo_copy: Path) -> None:
    sel = Selection("compose", 1, sets=("stack.edge.http_port=8081",),
                    environ={"PARITY_HTTP_PORT": "8080", "PARITY_DOMAIN": "dev.localhost"})
    resolved = model.load(repo_copy, sel)
    assert resolved.stack.http_port == 8081
    assert resolved.stack.domain == "dev.localhost"
    chain = model.explain(resolved, "stack.edge.http_port")["chain"]
    assert [c["location"] for c in chain] == [
        "base/stack.yaml:11", "$PARITY_HTTP_PORT", "--set stack.edge.http_port=8081"]


def test_local_overlay_applies_and_is_explained(repo_copy: Path) -> None:
    local = repo_copy / "overlays" / "local"
    local.mkdir()
    (local / "me.yaml").write_text("services:\n  api:\n    replicas: 3\n")
    resolved = model.load(repo_copy, Selection("kind", 1))
    info = model.explain(resolved, "services.api.replicas")
    assert info["value"] == 3
    assert [c["location"] for c in info["chain"]] == [
        "base/services/api.yaml:6", "overlays/modes/kind.yaml:9", "overlays/local/me.yaml:3"]


def test_per_mode_local_overlays_apply_after_the_shared_ones_to_their_mode_only(
        repo_copy: Path) -> None:
    local = repo_copy / "overlays" / "local"
    (local / "kind").mkdir(parents=True)
    (local / "me.yaml").write_text("services:\n  api:\n    replicas: 3\n")
    (local / "kind" / "more.yaml").write_text("services:\n  api:\n    replicas: 4\n")
    (local / "kind" / "notes.txt").write_text("not a layer\n")
    kind = model.load(repo_copy, Selection("kind", 1))
    assert describe(kind.layers) == "base -> mode:kind -> images:default -> local -> local:kind"
    assert [layer.rel for layer in kind.layers if layer.name == "local:kind"] == [
        "overlays/local/kind/more.yaml"]
    info = model.explain(kind, "services.api.replicas")
    assert info["value"] == 4
    assert [(c["layer"], c["location"]) for c in info["chain"]] == [
        ("base", "base/services/api.yaml:6"), ("mode:kind", "overlays/modes/kind.yaml:9"),
        ("local", "overlays/local/me.yaml:3"), ("local:kind", "overlays/local/kind/more.yaml:3")]
    compose = model.load(repo_copy, Selection("compose", 1))
    assert describe(compose.layers) == "base -> mode:compose -> images:default -> local"
    assert compose.stack.services["api"].replicas == 3


def test_a_selection_can_leave_out_the_shared_local_overlays_only(repo_copy: Path) -> None:
    local = repo_copy / "overlays" / "local"
    (local / "compose").mkdir(parents=True)
    (local / "me.yaml").write_text("{}\n")
    (local / "compose" / "mine.yaml").write_text("{}\n")
    layers = plan_layers(repo_copy, Selection("compose", 1, shared_local=False))
    assert describe(layers) == "base -> mode:compose -> images:default -> local:compose"


@pytest.mark.parametrize("mode", ["compose", "kind"])
def test_an_unknown_local_subdirectory_is_an_error_in_every_mode(repo_copy: Path,
                                                                 mode: str) -> None:
    (repo_copy / "overlays" / "local" / "kinds").mkdir(parents=True)
    with pytest.raises(InputError) as exc:
        model.load(repo_copy, Selection(mode, 1))
    assert exc.value.exit_code == 2
    assert exc.value.render() == (
        "overlays/local/kinds/: unknown local overlay directory 'kinds' (did you mean "
        "'kind'?)\n  next: a subdirectory of overlays/local/ applies to one mode and is "
        "named after it: compose/, kind/; files for every mode go in overlays/local/ itself")


def test_phase_overlay_adds_env_and_dependencies() -> None:
    p1 = model.load(ROOT, Selection("compose", 1)).stack.services["api"]
    p2 = model.load(ROOT, Selection("compose", 2)).stack.services["api"]
    assert "NATS_URL" not in dict(p1.env)
    assert dict(p2.env)["NATS_URL"] == "nats://${service:nats.client}"
    assert p2.depends_on == ("postgres", "redis", "nats", "temporal")


@pytest.mark.parametrize("phase,count", [(1, 6), (2, 11), (3, 14)])
def test_phase_selects_services(phase: int, count: int) -> None:
    stack = model.load(ROOT, Selection("kind", phase)).stack
    assert len(stack.services) == count
    assert all(s.phase <= phase for s in stack.services.values())


def test_phase1_is_the_api_web_auth_ingress_slice() -> None:
    stack = model.load(ROOT, Selection("compose", 1)).stack
    assert sorted(stack.services) == ["api", "edge", "keycloak", "postgres", "redis", "web"]


def test_model_loading_does_not_mutate_cached_layers() -> None:
    a = model.load(ROOT, Selection("kind", 3))
    model.load(ROOT, Selection("compose", 3, sets=("services.api.replicas=5",)))
    b = model.load(ROOT, Selection("kind", 3))
    assert to_plain(a.tree) == to_plain(b.tree)
    assert b.stack.services["api"].replicas == 2


def test_references_resolve_per_mode_with_identical_browser_urls() -> None:
    compose = model.load(ROOT, Selection("compose", 2)).stack
    kind = model.load(ROOT, Selection("kind", 2)).stack
    env_c, env_k = dict(compose.services["api"].env), dict(kind.services["api"].env)
    assert compose.resolve(env_c["DATABASE_HOST"]) == "postgres"
    assert kind.resolve(env_k["DATABASE_HOST"]) == "postgres.parity.svc.cluster.local"
    assert compose.resolve(env_c["OIDC_ISSUER_URL"]) == kind.resolve(env_k["OIDC_ISSUER_URL"]) \
        == "https://auth.parity.localhost/realms/parity"
    assert kind.resolve(env_k["TEMPORAL_ADDRESS"]) == "temporal.parity.svc.cluster.local:7233"


def test_literal_dollar_brace_escape() -> None:
    stack = model.load(ROOT, Selection("compose", 1)).stack
    realm = next(f for f in stack.services["keycloak"].files if f.name == "realm").content
    out = stack.resolve(realm)
    assert '"value": "${PARITY_IDP_USER_DEV_PASSWORD}"' in out
    assert '"https://app.parity.localhost/*"' in out


def test_dependency_waves_respect_depends_on() -> None:
    stack = model.load(ROOT, Selection("kind", 3)).stack
    seen: set[str] = set()
    for wave in stack.order():
        for name in wave:
            assert set(stack.services[name].depends_on) <= seen, name
        seen.update(wave)
    assert seen == set(stack.services)


def test_secret_values_are_masked_in_config_and_explain() -> None:
    resolved = model.load(ROOT, Selection("compose", 1))
    data = model.masked_plain(resolved)
    assert data["secrets"]["keycloak-admin"]["keys"]["username"] == {"value": "********"}
    assert model.explain(resolved, "secrets.keycloak-admin.keys.username.value")["value"] \
        == "********"
    assert model.explain(resolved, "secrets.keycloak-admin.keys.username")["value"] \
        == {"value": "********"}


def test_explain_unknown_path_suggests() -> None:
    resolved = model.load(ROOT, Selection("compose", 1))
    with pytest.raises(InputError) as exc:
        model.explain(resolved, "services.api.ports[htp].port")
    assert exc.value.render() == (
        "services.api.ports[htp].port: no 'htp' under services.api.ports (did you mean "
        "'http'?)\n  next: keys under services.api.ports: http")


def run_inv(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PARITY_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, text=True,
                          capture_output=True, env=full_env)


def test_inv_config_json_lists_services_by_name() -> None:
    import json

    out = run_inv("config", "--mode", "kind", "--phase", "3", "--format", "json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert len(data["services"]) == 14
    assert "password" not in json.dumps(data["secrets"]).replace('"password": {"generate"', "") \
        .replace("passwords of the people", "")


def test_inv_explain_shows_base_and_overlay_lines() -> None:
    out = run_inv("explain", "--mode", "kind", "--phase", "1", "services.api.replicas")
    assert out.returncode == 0, out.stderr
    assert "1. base       base/services/api.yaml:6" in out.stdout
    assert "2. mode:kind  overlays/modes/kind.yaml:9" in out.stdout


def test_inv_bad_input_exits_2_with_message() -> None:
    out = run_inv("config", "--set", "services.api.replicass=2")
    assert out.returncode == 2
    assert out.stderr.startswith("error: --set services.api.replicass=2: "
                                 "services.api.replicass: unknown key 'replicass' "
                                 "(did you mean 'replicas'?)")
    out = run_inv("config", env={"PARITY_DOMIAN": "x"})
    assert out.returncode == 2
    assert "PARITY_DOMIAN is not a parity variable (did you mean 'PARITY_DOMAIN'?)" in out.stderr


def test_inv_list_names_every_task() -> None:
    out = run_inv("--list")
    assert out.returncode == 0
    for name in ("config", "explain"):
        assert f"  {name} " in out.stdout


def test_inv_diff_lint_and_render_tasks() -> None:
    out = run_inv("diff", "--from", "compose", "--to", "kind", "--phase", "2")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("compose:2 -> kind:2: 20 differences (0 contract, ")
    drift = run_inv("diff", "--set", "services.api.image=parity/api:9")
    assert drift.returncode == 0  # --set applies to both sides: no drift between them
    out = run_inv("lint", "--mode", "kind", "--phase", "3")
    from parity import rules

    count = len([r for r in rules.RULES if "kind" in r.modes])
    assert (out.returncode, out.stdout.strip()) == (
        0, f"kind phase 3: model rules clean ({count} rules)\nkind phase 3: lint clean")



def test_inv_render_writes_atomically_into_out(tmp_path) -> None:
    out = run_inv("render", "--mode", "kind", "--phase", "1", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["edge.yaml", "kind-config.yaml",
                                                          "manifests.yaml"]
    again = run_inv("render", "--mode", "kind", "--phase", "1", "--out", str(tmp_path))
    assert again.stdout.rstrip().endswith("unchanged)")
