"""The compose renderer: golden files, determinism, the real ``docker compose config``
as an external oracle, yamllint's default rules, the health probes run against a
real listener, and one test per mapping rule and per error."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import random
import re
import shutil
import socket
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from parity import model, secrets
from parity.errors import InputError
from parity.model import Selection
from parity.model import File, Port, Readiness, Route, SecretFile, SecretRef, Stack, Storage
from parity.render import RenderContext, default_out, write
from parity.render.compose import COMPOSE_FILE, NGINX_CONF, render_compose
from parity.render.compose.text import _double_quoted, fit_lines

ROOT = Path(__file__).resolve().parent.parent
PHASES = (1, 2, 3)


@functools.lru_cache(maxsize=None)
def stack_of(phase: int) -> Stack:
    return model.load(ROOT, Selection("compose", phase)).stack


def render(stack: Stack) -> dict[str, str]:
    return render_compose(stack, RenderContext())


def compose_doc(stack: Stack) -> dict:
    return yaml.safe_load(render(stack)[COMPOSE_FILE])


def with_service(stack: Stack, name: str, **changes) -> Stack:
    services = dict(stack.services)
    services[name] = dataclasses.replace(services[name], **changes)
    return dataclasses.replace(stack, services=services)


@functools.lru_cache(maxsize=None)
def rich_stack() -> Stack:
    """Phase 3 plus every feature the default stack does not use."""
    stack = stack_of(3)
    api = stack.services["api"]
    assert api.build is not None
    stack = with_service(
        stack, "api",
        env=api.env + (("SHELLISH", "$HOME and $${literal}"), ("FLAG", True), ("COUNT", 3)),
        command=("/app/api",), args=("--greeting", "$USER"), working_dir="/app",
        user="1000:1000",
        build=dataclasses.replace(api.build, dockerfile="Dockerfile.dev", target="dev",
                                  args=(("GREETING", "$NAME"),)),
        secret_files=(SecretFile("signing", "api-session", "signing-key",
                                 "/run/secrets/signing"),),
        resources={"limits": {"cpu": "1500m", "memory": "512Mi"},
                   "requests": {"cpu": "100m", "memory": "128Mi"}},
        replicas=2,
        routes=api.routes + (Route("api-v2", "api", "/v2", "http", "api"),))
    stack = with_service(stack, "postgres", storage=(
        Storage("data", "/var/lib/postgresql/data", "5Gi", "standard"),))
    return with_service(stack, "web", depends_on=("api", "bootstrap-artifacts"))


# --------------------------------------------------------------------------- golden

@pytest.mark.parametrize("phase", PHASES)
def test_golden_render(phase: int, golden) -> None:
    files = render(stack_of(phase))
    assert list(files) == [COMPOSE_FILE, NGINX_CONF]
    golden(f"render/compose-phase{phase}/docker-compose.yaml", files[COMPOSE_FILE])
    golden(f"render/compose-phase{phase}/nginx.conf", files[NGINX_CONF])


def test_render_is_deterministic() -> None:
    first = render(model.load(ROOT, Selection("compose", 3)).stack)
    second = render(model.load(ROOT, Selection("compose", 3)).stack)
    assert first == second
    assert render(rich_stack()) == render(rich_stack())


# --------------------------------------------------------------------------- oracles

def materialize(tmp: Path, stack: Stack) -> Path:
    """Lay the render out as the lane does: .parity/build/compose/phase<N>/ next to
    .parity/secrets/, .parity/ca/ and .parity/tls/."""
    out = default_out(tmp, "compose", stack.phase)
    assert RenderContext.for_output(tmp, out) == RenderContext()
    write(render(stack), out)
    state = tmp / ".parity"
    secrets.ensure(stack, state)
    secrets.write_env_files(stack, state)
    for rel in ("ca/ca.crt", "tls/tls.crt", "tls/tls.key"):
        (state / rel).parent.mkdir(parents=True, exist_ok=True)
        (state / rel).touch()
    return out / COMPOSE_FILE


def compose_config(cli: list[str], file: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    proc = subprocess.run([*cli, "-f", str(file), "config", *args], cwd=file.parent, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    # a warning here would be e.g. an interpolated variable that is not set
    assert proc.stderr.strip() == ""
    return proc


@pytest.mark.parametrize("phase", PHASES)
def test_docker_compose_accepts_the_render(phase: int, tmp_path, compose_cli) -> None:
    stack = stack_of(phase)
    file = materialize(tmp_path, stack)
    compose_config(compose_cli, file, "--quiet")
    resolved = json.loads(compose_config(compose_cli, file, "--format", "json").stdout)
    assert resolved["name"] == stack.name
    assert sorted(resolved["services"]) == sorted(stack.services)
    # compose inlines the env files: that is its output, never what parity writes
    # (declared values such as the username 'platform' are no secrets: skip them)
    stored = [secrets.value(tmp_path / ".parity", s.name, k.name)
              for s in stack.secrets.values() for k in s.keys if k.generate]
    assert len(stored) >= 8
    password = (tmp_path / ".parity/secrets/postgres-admin/password").read_text()
    assert resolved["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"] == password
    text = file.read_text() + (file.parent / NGINX_CONF).read_text()
    assert [v for v in stored if v in text] == []


def test_docker_compose_accepts_every_feature(tmp_path, compose_cli) -> None:
    file = materialize(tmp_path, rich_stack())
    resolved = json.loads(compose_config(compose_cli, file, "--format", "json").stdout)
    api = resolved["services"]["api"]
    # compose writes a literal '$' back as '$$': nothing was interpolated
    assert api["environment"]["SHELLISH"] == "$$HOME and $${literal}"
    assert api["command"] == ["--greeting", "$$USER"]
    assert api["deploy"]["replicas"] == 2
    assert api["deploy"]["resources"]["limits"] == {"cpus": 1.5, "memory": "536870912"}
    assert api["deploy"]["resources"]["reservations"] == {"cpus": 0.1, "memory": "134217728"}
    assert api["secrets"] == [{"source": "api-session__signing-key",
                               "target": "/run/secrets/signing"}]
    assert resolved["secrets"]["api-session__signing-key"]["file"] == str(
        tmp_path / ".parity/secrets/api-session/signing-key")
    assert resolved["services"]["web"]["depends_on"]["bootstrap-artifacts"][
        "condition"] == "service_completed_successfully"


@pytest.mark.parametrize("name", [f"phase{p}" for p in PHASES] + ["rich"])
def test_output_passes_yamllint_default(name: str) -> None:
    from yamllint import linter
    from yamllint.config import YamlLintConfig

    stack = rich_stack() if name == "rich" else stack_of(int(name[-1]))
    problems = list(linter.run(render(stack)[COMPOSE_FILE], YamlLintConfig("extends: default")))
    assert [f"{p.line}: {p.message}" for p in problems] == []


# --------------------------------------------------------------------------- escaping

def test_every_dollar_is_escaped() -> None:
    text = render(rich_stack())[COMPOSE_FILE]
    assert all(len(run) % 2 == 0 for run in re.findall(r"\$+", text))
    api = yaml.safe_load(text)["services"]["api"]
    # the model's "$HOME" stays literal; its "$${literal}" is a literal "${literal}"
    assert api["environment"]["SHELLISH"] == "$$HOME and $${literal}"
    assert api["command"] == ["--greeting", "$$USER"]
    assert api["build"]["args"] == {"GREETING": "$$NAME"}
    configs = yaml.safe_load(text)["configs"]
    assert '"value": "$${PARITY_IDP_USER_DEV_PASSWORD}"' in configs["keycloak-realm"]["content"]
    assert '--username "$$POSTGRES_USER"' in configs["postgres-init-databases"]["content"]


def test_env_values_are_resolved_strings() -> None:
    env = compose_doc(rich_stack())["services"]["api"]["environment"]
    assert env["FLAG"] == "true" and env["COUNT"] == "3"
    assert env["OIDC_ISSUER_URL"] == "https://auth.parity.localhost/realms/parity"
    assert env["DATABASE_HOST"] == "postgres" and env["DATABASE_PORT"] == "5432"
    assert list(env) == sorted(env)


@pytest.mark.parametrize("value", [
    "", "short", "x" * 200, "a b " * 60, "line one\n" + "y " * 70 + "\n\n  indented\n",
    ' "quotes" and \\backslashes\\ ' * 8, "tab\tand\u2028separator and é " * 6,
])
def test_long_values_fold_within_80_columns_and_round_trip(value: str) -> None:
    from parity import yamlio

    doc = {"services": {"s": {"environment": {"K": value}, "command": ["sh", value]}}}
    text = fit_lines(yamlio.dump(doc))
    assert max(len(line) for line in text.split("\n")) <= 80
    assert yaml.safe_load(text) == doc


def test_double_quoted_lines_round_trip() -> None:
    rng = random.Random(7)
    alphabet = ["a", "b", " ", " ", "\n", '"', "\\", "\t", "é", "\x01", "$", "#", ":", "-"]
    for _ in range(3000):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 90)))
        first, room = rng.randint(12, 40), rng.randint(12, 40)
        lines = _double_quoted(value, first, room)
        assert len(lines[0]) <= first and all(len(line) <= room for line in lines[1:])
        text = "k: " + "\n  ".join(lines) + "\n"
        assert yaml.safe_load(text) == {"k": value}


# --------------------------------------------------------------------------- health

def test_healthcheck_http_tcp_exec_and_completion() -> None:
    services = compose_doc(stack_of(3))["services"]
    http = services["api"]["healthcheck"]
    assert http["test"][0] == "CMD-SHELL"
    assert "p='/readyz'" in http["test"][1] and "127.0.0.1:8080" in http["test"][1]
    assert {k: v for k, v in http.items() if k != "test"} == {
        "interval": "5s", "timeout": "3s", "retries": 30, "start_period": "0s"}
    assert services["keycloak"]["healthcheck"]["retries"] == 60
    tcp = services["temporal"]["healthcheck"]["test"]
    assert tcp[0] == "CMD-SHELL" and "bash -c '</dev/tcp/127.0.0.1/7233'" in tcp[1]
    assert "nc -z 127.0.0.1 7233" in tcp[1]
    assert services["postgres"]["healthcheck"]["test"] == [
        "CMD", "pg_isready", "-h", "127.0.0.1", "-p", "5432"]
    job = services["bootstrap-artifacts"]
    assert "healthcheck" not in job and job["restart"] == "no"
    assert job["labels"]["parity.dev/completion-timeout-seconds"] == "300"
    assert {s["restart"] for n, s in services.items() if n != "bootstrap-artifacts"} == {
        "unless-stopped"}


class _Handler(BaseHTTPRequestHandler):
    CODES = {"/ok": 200, "/moved": 302, "/missing": 404, "/broken": 500,
             "/q?verbose=1&x=$(id)": 200}

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        code = self.CODES.get(self.path, 404)
        self.send_response(code)
        if code == 302:
            self.send_header("Location", "/ok")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def listener():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def probe_script(kind: str, port: int, path: str = "/") -> str:
    """The rendered probe of a service listening on ``port``, as the container's
    shell receives it (compose turns '$$' into '$')."""
    readiness = Readiness(kind, "http", path if kind == "http" else None)
    stack = with_service(stack_of(1), "web", ports=(Port("http", port, "http"),),
                         readiness=readiness)
    test = compose_doc(stack)["services"]["web"]["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL"
    return test[1].replace("$$", "$")


def run_probe(script: str, tools: tuple[str, ...], tmp_path: Path) -> int:
    """Run ``script`` with /bin/sh and only ``tools`` on PATH: that picks the branch."""
    bindir = tmp_path / "-".join(tools)
    bindir.mkdir(exist_ok=True)
    for tool in tools:
        found = shutil.which(tool)
        if found is None:
            pytest.fail(f"{tool} is needed on PATH to test its probe branch")
        if not (bindir / tool).exists():
            (bindir / tool).symlink_to(found)
    return subprocess.run(["/bin/sh", "-c", script], env={"PATH": str(bindir)},
                          capture_output=True, timeout=20).returncode


@pytest.mark.parametrize("tools", [("curl",), ("wget",), ("bash",)], ids=lambda t: t[0])
@pytest.mark.parametrize("path,ready", [("/ok", True), ("/moved", True),
                                        ("/missing", False), ("/broken", False),
                                        ("/q?verbose=1&x=$(id)", True)])
def test_http_probe_branches_against_a_listener(tools, path, ready, listener,
                                                tmp_path) -> None:
    assert (run_probe(probe_script("http", listener, path), tools, tmp_path) == 0) is ready


@pytest.mark.parametrize("tools", [("curl",), ("wget",), ("bash",)], ids=lambda t: t[0])
def test_http_probe_fails_on_a_closed_port(tools, tmp_path) -> None:
    assert run_probe(probe_script("http", closed_port(), "/ok"), tools, tmp_path) != 0


def test_tcp_probe_with_bash(listener, tmp_path) -> None:
    assert run_probe(probe_script("tcp", listener), ("bash",), tmp_path) == 0
    assert run_probe(probe_script("tcp", closed_port()), ("bash",), tmp_path) != 0


# --------------------------------------------------------------------------- wiring

def test_probe_path_the_shell_cannot_carry_is_refused() -> None:
    bad = with_service(stack_of(1), "web", readiness=Readiness("http", "http", "/it's"))
    assert error_of(bad) == (
        "services.web.readiness.http.path: '/it's' is not a URL path the compose "
        "healthcheck can send as is\n"
        "  next: percent-encode other characters (a space is %20); no single quotes")


def test_internal_dns_other_than_the_service_name_becomes_an_alias() -> None:
    stack = dataclasses.replace(stack_of(1), internal_dns="{service}.{namespace}.internal")
    services = compose_doc(stack)["services"]
    assert services["postgres"]["networks"] == {
        "default": {"aliases": ["postgres.parity.internal"]}}
    assert services["api"]["environment"]["DATABASE_HOST"] == "postgres.parity.internal"
    assert "edge.parity.internal" in services["edge"]["networks"]["default"]["aliases"]
    assert "set $upstream http://api.parity.internal:8080;" in render(stack)[NGINX_CONF]


def test_depends_on_conditions() -> None:
    services = compose_doc(rich_stack())["services"]
    assert services["web"]["depends_on"] == {
        "api": {"condition": "service_healthy", "required": True},
        "bootstrap-artifacts": {"condition": "service_completed_successfully",
                                "required": True}}
    assert list(services["api"]["depends_on"]) == ["nats", "postgres", "redis", "temporal"]


@pytest.mark.parametrize("phase", PHASES)
def test_only_the_edge_publishes_and_only_on_loopback(phase: int) -> None:
    services = compose_doc(stack_of(phase))["services"]
    assert [n for n, s in services.items() if "ports" in s] == ["edge"]
    assert services["edge"]["ports"] == [
        {"target": 80, "host_ip": "127.0.0.1", "published": "80", "protocol": "tcp"},
        {"target": 443, "host_ip": "127.0.0.1", "published": "443", "protocol": "tcp"}]


@pytest.mark.parametrize("phase", PHASES)
def test_secret_refs_go_to_env_file_never_to_environment(phase: int) -> None:
    stack = stack_of(phase)
    services = compose_doc(stack)["services"]
    for name, svc in stack.services.items():
        refs = {k for k, v in svc.env if isinstance(v, SecretRef)}
        rendered = services[name]
        assert not refs & set(rendered.get("environment", {})), name
        if refs:
            assert rendered["env_file"] == [{"path": f"../../../secrets/env/{name}.env",
                                             "required": True, "format": "raw"}]
        else:
            assert "env_file" not in rendered


def test_secret_files_mount_from_the_store() -> None:
    doc = compose_doc(rich_stack())
    assert doc["secrets"]["api-session__signing-key"]["file"] == \
        "../../../secrets/api-session/signing-key"
    assert doc["services"]["api"]["secrets"] == [
        {"source": "api-session__signing-key", "target": "/run/secrets/signing"}]


def test_files_become_inline_configs() -> None:
    doc = compose_doc(stack_of(1))
    assert doc["services"]["postgres"]["configs"] == [{
        "source": "postgres-init-databases",
        "target": "/docker-entrypoint-initdb.d/10-parity.sh", "mode": "0555"}]
    assert doc["services"]["keycloak"]["configs"][0]["mode"] == "0444"
    realm = json.loads(doc["configs"]["keycloak-realm"]["content"].replace("$$", "$"))
    assert realm["clients"][0]["redirectUris"] == ["https://app.parity.localhost/*"]


def test_edge_aliases_cover_every_route_host() -> None:
    stack = stack_of(3)
    edge = compose_doc(stack)["services"]["edge"]
    hosts = sorted(f"{r.host}.{stack.domain}" for r in stack.routes().values())
    assert edge["networks"]["default"]["aliases"] == hosts
    assert "auth.parity.localhost" in hosts and "registry.parity.localhost" in hosts


def test_edge_mounts_its_config_and_certificate() -> None:
    edge = compose_doc(stack_of(1))["services"]["edge"]
    assert edge["volumes"] == [
        {"type": "bind", "source": "./edge/nginx.conf", "target": "/etc/nginx/nginx.conf",
         "read_only": True},
        {"type": "bind", "source": "../../../tls", "target": "/etc/nginx/tls",
         "read_only": True}]
    api = compose_doc(stack_of(1))["services"]["api"]
    assert {"type": "bind", "source": "../../../ca/ca.crt", "target": "/etc/parity/ca.crt",
            "read_only": True} in api["volumes"]
    assert api["build"] == {"context": "../../../../apps", "dockerfile": "api/Dockerfile"}


def test_nginx_conf_has_a_server_per_route_host() -> None:
    stack = rich_stack()
    conf = render(stack)[NGINX_CONF]
    names = re.findall(r"server_name (\S+);", conf)
    assert names == sorted({f"{r.host}.{stack.domain}" for r in stack.routes().values()})
    assert "resolver 127.0.0.11 valid=10s ipv6=off;" in conf
    assert "set $upstream http://keycloak:8080;\n            proxy_pass $upstream;" in conf
    api = conf.split("server_name api.parity.localhost;")[1].split("\n    }")[0]
    # a path prefix matches whole segments, like a Gateway API PathPrefix
    assert re.findall(r"location (.+) \{", api) == ["/", "= /v2", "/v2/"]
    assert conf.count("listen 443 ssl;") == len(names)
    assert "listen 443 ssl default_server;\n        return 404;" in conf


def test_labels_on_services_volumes_and_network() -> None:
    doc = compose_doc(rich_stack())
    assert doc["services"]["api"]["labels"] == {
        "parity.dev/managed": "true", "parity.dev/stack": "parity",
        "parity.dev/service": "api", "parity.dev/phase": "1"}
    # only labels that never change: compose offers to recreate a volume (losing
    # its data) whose labels differ from the file
    assert doc["volumes"]["postgres-data"] == {"labels": {
        "parity.dev/managed": "true", "parity.dev/stack": "parity",
        "parity.dev/service": "postgres", "parity.dev/phase": "1"}}
    assert doc["volumes"]["nats-data"]["labels"]["parity.dev/phase"] == "2"
    # the network is labelled phase 1 in every phase, so moving on does not recreate it
    for phase in PHASES:
        assert compose_doc(stack_of(phase))["networks"] == {"default": {"labels": {
            "parity.dev/managed": "true", "parity.dev/stack": "parity",
            "parity.dev/phase": "1"}}}
    assert doc["services"]["postgres"]["volumes"] == [
        {"type": "volume", "source": "postgres-data", "target": "/var/lib/postgresql/data"}]


def test_storage_placement_is_recorded_not_applied() -> None:
    doc = compose_doc(rich_stack())
    assert doc["x-parity"] == {"not_applied": {"volumes": {
        "nats-data": {"size": "1Gi"},
        "postgres-data": {"size": "5Gi", "storage_class": "standard"},
        "redis-data": {"size": "1Gi"}, "registry-data": {"size": "5Gi"},
        "temporal-data": {"size": "1Gi"}}}}


def test_a_changed_file_changes_the_config_hash() -> None:
    """Compose recreates a container when its labels change, not when an inline
    config's content or a bind-mounted file does; the digest label bridges that."""
    stack = stack_of(1)

    def hashes(s: Stack) -> dict[str, str]:
        return {n: v["labels"].get("parity.dev/config-hash", "")
                for n, v in compose_doc(s)["services"].items()}

    before = hashes(stack)
    assert {n for n, h in before.items() if h} == {"edge", "keycloak", "postgres"}
    keycloak = stack.services["keycloak"]
    realm = dataclasses.replace(keycloak.files[0], content=keycloak.files[0].content + " ")
    after = hashes(with_service(stack, "keycloak", files=(realm,)))
    assert [n for n in before if before[n] != after[n]] == ["keycloak"]
    api = stack.services["api"]
    moved = with_service(stack, "api", routes=(dataclasses.replace(api.routes[0],
                                                                    host="backend"),))
    assert [n for n, h in hashes(moved).items() if h != before[n]] == ["edge"]
    # the realm names the web route's URL, so moving that one changes keycloak too
    web = stack.services["web"]
    moved = with_service(stack, "web", routes=(dataclasses.replace(web.routes[0],
                                                                    host="www"),))
    assert [n for n, h in hashes(moved).items() if h != before[n]] == ["edge", "keycloak"]


# --------------------------------------------------------------------------- placement

@pytest.mark.parametrize("cpu,cpus", [("100m", "0.1"), ("1", "1"), ("1500m", "1.5"),
                                      ("2000m", "2"), ("0.25", "0.25")])
def test_cpu_quantities(cpu: str, cpus: str) -> None:
    stack = with_service(stack_of(1), "web", resources={"limits": {"cpu": cpu}})
    assert compose_doc(stack)["services"]["web"]["deploy"] == {
        "resources": {"limits": {"cpus": cpus}}}


@pytest.mark.parametrize("memory,compose", [("512Mi", "512M"), ("1Gi", "1G"),
                                            ("1.5Gi", "1536M"), ("64Ki", "64K"),
                                            ("500M", "500000000"), ("1k", "1000")])
def test_memory_quantities(memory: str, compose: str) -> None:
    stack = with_service(stack_of(1), "web", resources={"requests": {"memory": memory}})
    assert compose_doc(stack)["services"]["web"]["deploy"] == {
        "resources": {"reservations": {"memory": compose}}}


def test_replicas_and_resources() -> None:
    api = compose_doc(rich_stack())["services"]["api"]
    assert api["deploy"] == {"replicas": 2, "resources": {
        "limits": {"cpus": "1.5", "memory": "512M"},
        "reservations": {"cpus": "0.1", "memory": "128M"}}}
    assert "deploy" not in compose_doc(stack_of(1))["services"]["web"]


# --------------------------------------------------------------------------- errors

def error_of(stack: Stack) -> str:
    with pytest.raises(InputError) as exc:
        render(stack)
    return str(exc.value)


def test_memory_in_millibytes_is_refused() -> None:
    ok = with_service(stack_of(1), "api", resources={"limits": {"memory": "100Mi"}})
    assert compose_doc(ok)["services"]["api"]["deploy"]["resources"]["limits"] == {
        "memory": "100M"}
    bad = with_service(stack_of(1), "api", resources={"limits": {"memory": "100m"}})
    assert error_of(bad) == (
        "services.api.resources.limits.memory: memory '100m' is not a whole number of "
        "bytes (in a Kubernetes quantity 'm' means milli)\n"
        "  next: write 100Mi for mebibytes")


def test_cpu_finer_than_a_nano_cpu_is_refused() -> None:
    ok = with_service(stack_of(1), "api", resources={"requests": {"cpu": "0.000000001"}})
    assert compose_doc(ok)["services"]["api"]["deploy"]["resources"]["reservations"] == {
        "cpus": "0.000000001"}
    bad = with_service(stack_of(1), "api", resources={"requests": {"cpu": "0.0000000001"}})
    assert error_of(bad) == (
        "services.api.resources.requests.cpu: cpu '0.0000000001' is finer than the "
        "nano-CPU docker counts\n  next: round it to at most 9 decimal places")


def test_edge_that_is_not_nginx_is_refused() -> None:
    assert render(with_service(stack_of(1), "edge", image="mirror.local/library/nginx:1.27"))
    bad = with_service(stack_of(1), "edge", image="traefik:v3.2")
    assert error_of(bad) == (
        "services.edge.image: compose renders the edge as an nginx proxy with a generated "
        "nginx.conf; 'traefik:v3.2' is not an nginx image\n"
        "  next: use an nginx image for the edge (e.g. nginx:1.27.3-bookworm)")


def test_edge_replicas_are_refused() -> None:
    bad = with_service(stack_of(1), "edge", replicas=2)
    assert error_of(bad) == (
        "services.edge.replicas: compose publishes the edge's host ports from one "
        "container; 2 replicas cannot share them\n"
        "  next: keep the edge at replicas: 1 in compose")


def test_route_to_a_grpc_port_is_refused() -> None:
    temporal = stack_of(2).services["temporal"]
    ok = with_service(stack_of(2), "temporal", routes=temporal.routes)
    assert "temporal.parity.localhost" in render(ok)[NGINX_CONF]
    bad = with_service(stack_of(2), "temporal", routes=(
        Route("temporal-ui", "temporal", "/", "grpc", "temporal"),))
    assert error_of(bad) == (
        "services.temporal.routes[temporal-ui].port: the compose edge proxies HTTP; port "
        "'grpc' speaks grpc\n  next: route an http port")


def test_route_path_nginx_would_need_quoted_is_refused() -> None:
    web = stack_of(1).services["web"]
    bad = with_service(stack_of(1), "web", routes=(
        dataclasses.replace(web.routes[0], path="/a b;"),))
    assert error_of(bad) == (
        "services.web.routes[web].path: '/a b;' has characters nginx.conf would need "
        "quoted\n  next: use letters, digits and . _ ~ / % : @ + , = -")


def test_files_with_clashing_config_names_are_refused() -> None:
    # service "a" file "b-c" and service "a-b" file "c" would both be config "a-b-c"
    stack = stack_of(1)
    web = stack.services["web"]
    services = dict(stack.services)
    services["a"] = dataclasses.replace(web, name="a", routes=(),
                                        files=(File("b-c", "/x", "1"),))
    services["a-b"] = dataclasses.replace(web, name="a-b", routes=(),
                                          files=(File("c", "/y", "2"),))
    assert error_of(dataclasses.replace(stack, services=services)) == (
        "services.a-b.files[c]: compose config name 'a-b-c' is also produced by another "
        "service\n  next: rename the service or the item")


def test_a_moved_https_port_is_part_of_browser_urls_and_served_inside():
    """With the edge on 8443, the issuer the browser sees carries the port, and
    services calling that same URL inside the network reach the edge on it."""
    from parity.render.compose import render_compose as _render

    st = model.load(ROOT, Selection("compose", 1, environ={"PARITY_HTTPS_PORT": "8443"})).stack
    files = _render(st, RenderContext())
    compose = yaml.safe_load(files["docker-compose.yaml"])
    assert compose["services"]["api"]["environment"]["OIDC_ISSUER_URL"] == \
        "https://auth.parity.localhost:8443/realms/parity"
    assert {"target": 443, "host_ip": "127.0.0.1", "published": "8443", "protocol": "tcp"} \
        in compose["services"]["edge"]["ports"]
    assert "        listen 443 ssl;\n        listen 8443 ssl;\n        server_name " \
           "auth.parity.localhost;" in files["edge/nginx.conf"]


def test_fit_lines_reads_only_the_entry_around_a_long_line_and_folds_as_the_whole_file():
    from parity.render.compose import text as T

    long_value = " ".join(["word"] * 40)
    doc = ("name: x\nservices:\n  a:\n    image: a\n  b:\n    command:\n      - " + long_value
           + "\n    environment:\n      K: short\nconfigs:\n  c:\n    content: |\n      "
           + long_value + "\n      z\n")
    lines = doc.split("\n")
    long = {i for i, line in enumerate(lines) if len(line) > T.MAX_LINE}
    entries = list(T._entries(lines, long))
    assert [lines[s].strip() for s, _, _ in entries] == ["b:", "c:"]
    whole = sorted(T._long_scalars(lines, long, 0, len(lines), 0))
    parts = sorted(span for s, e, d in entries for span in T._long_scalars(lines, long, s, e, d))
    assert parts == whole and len(whole) == 2
    folded = T.fit_lines(doc)
    assert max(map(len, folded.split("\n"))) <= T.MAX_LINE
    import yaml
    assert yaml.safe_load(folded) == yaml.safe_load(doc)


def test_fit_lines_falls_back_to_the_whole_file_when_an_entry_alone_does_not_parse():
    from parity.render.compose import text as T

    long_value = " ".join(["word"] * 40)
    doc = ("x-common: &common\n  K: v\nservices:\n  a:\n    environment: *common\n"
           "    command:\n      - " + long_value + "\n")
    folded = T.fit_lines(doc)   # the entry 'a' alone has an alias to an anchor outside it
    assert max(map(len, folded.split("\n"))) <= T.MAX_LINE
    import yaml
    assert yaml.safe_load(folded) == yaml.safe_load(doc)
