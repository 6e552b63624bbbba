"""The kind renderer, checked against external oracles.

- golden files for the three phases (``pytest --update-golden`` rewrites them);
- determinism: equal input, byte-identical output;
- yamllint's default configuration on every output;
- kubernetes-validate, strict, for Kubernetes 1.31 and the newest version the
  installed package ships, on every core-kind document;
- the real Gateway API v1.2.1 CRD schemas (vendored by
  ``src/parity/schemas/vendor_gateway_api.py``) for Gateway and HTTPRoute, with unknown
  fields rejected as the API server's strict field validation does;
- kind's ``v1alpha4`` Cluster type for kind-config.yaml (a hand-written schema of
  the fields of sigs.k8s.io/kind v0.33.0 ``pkg/apis/config/v1alpha4/types.go`` and
  the value rules of its ``Validate``).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import ipaddress
import re
from pathlib import Path

import jsonschema
import kubernetes_validate
import kubernetes_validate.utils as kv_utils
import pytest
import yaml
from yamllint import linter
from yamllint.config import YamlLintConfig

from parity import model
from parity.errors import InputError
from parity.model import Selection
from parity.model import SecretRef
from parity.render import LABEL_MANAGED, RenderContext, render
from parity.validators import (K8S_OLDEST, KIND_V1ALPHA4, GATEWAY_KINDS, _scalar_lines,
                               gateway_validate, k8s_validate, kind_config_problems)
from parity.validators import newest_k8s as _newest_k8s
from parity.render.kind import (EDGE_NODEPORT_HTTP, EDGE_NODEPORT_HTTPS, EDGE_PROXY_SERVICE,
                                EDGE_TLS_SECRET, escape_k8s, manifest_docs, render_kind)

ROOT = Path(__file__).resolve().parent.parent
PHASES = (1, 2, 3)
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.cache
def stack(phase: int, environ: tuple = ()) -> model.Stack:
    return model.load(ROOT, Selection("kind", phase, environ=dict(environ))).stack


@functools.cache
def rendered(phase: int) -> dict[str, str]:
    return render_kind(stack(phase), RenderContext())


@functools.cache
def docs_of(phase: int) -> list[dict]:
    """The parsed manifests of a phase (shared: copy before changing one)."""
    return list(yaml.load_all(rendered(phase)["manifests.yaml"], Loader=LOADER))


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def with_service(st: model.Stack, name: str, **changes) -> model.Stack:
    services = dict(st.services)
    services[name] = dataclasses.replace(services[name], **changes)
    return dataclasses.replace(st, services=services)


# --------------------------------------------------------------------------- golden

@pytest.mark.parametrize("phase", PHASES)
def test_golden(phase, golden):
    out = rendered(phase)
    assert sorted(out) == ["edge.yaml", "kind-config.yaml", "manifests.yaml"]
    golden(f"render/kind-phase{phase}/manifests.yaml", out["manifests.yaml"])
    golden(f"render/kind-phase{phase}/kind-config.yaml", out["kind-config.yaml"])
    golden(f"render/kind-phase{phase}/edge.yaml", out["edge.yaml"])


def test_golden_offline_profile(golden):
    """The offline profile's kind-config names parity's own node image, and edge.yaml
    its own Traefik build; nothing else of the kind output changes with the node."""
    st = model.load(ROOT, Selection("kind", 1, profile="offline")).stack
    out = render_kind(st, RenderContext())
    golden("render/kind-phase1-offline/kind-config.yaml", out["kind-config.yaml"])
    golden("render/kind-phase1-offline/edge.yaml", out["edge.yaml"])


def test_moved_https_port_gets_its_own_entry_point_and_service_port():
    """A browser https port other than 443 is a Gateway listener (https-host), so
    Traefik needs an entry point on it and the edge Service a port for in-cluster
    callers of browser URLs."""
    st = model.load(ROOT, Selection("kind", 1, environ={"PARITY_HTTPS_PORT": "8443"})).stack
    docs = list(yaml.load_all(render_kind(st, RenderContext())["edge.yaml"], Loader=LOADER))
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--entrypoints.websecure-host.address=:8443" in args
    service = next(d for d in docs if d["kind"] == "Service")
    assert {(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]} == {
        ("http", 80, "web"), ("https", 443, "websecure"), ("https-host", 8443, "websecure-host")}
    gateway = next(d for d in manifest_docs(st) if d["kind"] == "Gateway")
    assert {(l["name"], l["port"]) for l in gateway["spec"]["listeners"]} == {
        ("http", 80), ("https", 443), ("https-host", 8443)}


@pytest.mark.parametrize("phase", PHASES)
def test_deterministic(phase):
    fresh = model.load(ROOT, Selection("kind", phase)).stack
    assert render_kind(fresh, RenderContext()) == render_kind(fresh, RenderContext())
    assert render_kind(fresh, RenderContext()) == rendered(phase)
    # the output does not depend on where it will be written
    assert render_kind(fresh, RenderContext("x", "y")) == rendered(phase)


def test_manifest_docs_are_the_rendered_documents():
    assert manifest_docs(stack(3)) == docs_of(3)


# --------------------------------------------------------------------------- yamllint

YAMLLINT_DEFAULT = YamlLintConfig("extends: default")


@pytest.mark.parametrize("phase", PHASES)
def test_yamllint_default(phase):
    """yamllint's default configuration finds nothing in the structure parity
    writes. Its one rule the output cannot always meet is ``line-length`` (80):
    a line of model content (a shell command, a line of a config file, the CoreDNS
    rewrite) cannot be broken without changing it, and yamlio does not fold
    scalars. So: no problem of any other rule, and every long line must be the
    text of a string value, never structure."""
    for name, text in rendered(phase).items():
        content = _scalar_lines(yaml.load_all(text, Loader=LOADER))
        lines = text.split("\n")
        for p in linter.run(text, YAMLLINT_DEFAULT):
            assert p.rule == "line-length", f"{name}:{p.line}: {p.desc} ({p.rule})"
            line = lines[p.line - 1].strip()
            candidates = {line, line.removeprefix("- "), line.partition(": ")[2]}
            assert candidates & content, f"{name}:{p.line}: long structural line: {line}"


def test_kind_config_is_yamllint_clean():
    """Only the node image reference may run long (kindest/node pinned by digest)."""
    for phase in PHASES:
        problems = list(linter.run(rendered(phase)["kind-config.yaml"], YAMLLINT_DEFAULT))
        assert [(p.rule, p.line) for p in problems] in ([], [("line-length", 7)])
        assert "image: kindest/node:" in rendered(phase)["kind-config.yaml"].splitlines()[6]


# --------------------------------------------------------------------------- kubernetes-validate

def test_kubernetes_validate_ships_the_versions_we_check():
    versions = set(kv_utils.all_versions())
    assert K8S_OLDEST in versions
    assert tuple(map(int, _newest_k8s().split("."))) >= (1, 37, 0)


@pytest.mark.parametrize("version", [K8S_OLDEST, "newest"])
@pytest.mark.parametrize("phase", PHASES)
def test_kubernetes_validate_strict(phase, version):
    version = _newest_k8s() if version == "newest" else version
    checked = 0
    for doc in docs_of(phase):
        if doc["kind"] in GATEWAY_KINDS:
            continue
        try:
            k8s_validate(doc, version)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} (Kubernetes {version}): "
                        f"{exc.message} at {list(exc.absolute_path)}")
        checked += 1
    assert checked >= 20


def test_kubernetes_validate_strict_rejects_unknown_fields():
    """The oracle is not a rubber stamp: a misspelt field fails strict validation."""
    deployment = copy.deepcopy(by_kind(docs_of(1), "Deployment")["api"])
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        k8s_validate(deployment, K8S_OLDEST)


# --------------------------------------------------------------------------- Gateway API

@pytest.mark.parametrize("phase", PHASES)
def test_gateway_api_objects_match_the_crd_schemas(phase):
    docs = [d for d in docs_of(phase) if d["kind"] in GATEWAY_KINDS]
    routes = stack(phase).routes()
    assert sorted(d["metadata"]["name"] for d in docs if d["kind"] == "HTTPRoute") == \
        sorted([*routes, "edge-https-redirect"])
    assert [d["metadata"]["name"] for d in docs if d["kind"] == "Gateway"] == ["edge"]
    for doc in docs:
        assert gateway_validate(doc) == [], f"{doc['kind']}/{doc['metadata']['name']}"


def test_gateway_api_schema_is_strict():
    """Negative controls: the vendored schemas, as used here, do reject mistakes."""
    route = copy.deepcopy(by_kind(docs_of(1), "HTTPRoute")["api"])
    route["spec"]["rules"][0]["backendRef"] = route["spec"]["rules"][0].pop("backendRefs")
    assert any("Additional properties" in e for e in gateway_validate(route))

    route = copy.deepcopy(by_kind(docs_of(1), "HTTPRoute")["api"])
    route["spec"]["rules"][0]["matches"][0]["path"]["type"] = "Prefix"
    assert any("'Prefix' is not one of" in e for e in gateway_validate(route))

    gateway = copy.deepcopy(by_kind(docs_of(1), "Gateway")["edge"])
    gateway["spec"]["listeners"].append(copy.deepcopy(gateway["spec"]["listeners"][0]))
    assert any("duplicate entry" in e for e in gateway_validate(gateway))
    assert "Listener name must be unique within the Gateway" in gateway_validate(gateway)

    gateway = copy.deepcopy(by_kind(docs_of(1), "Gateway")["edge"])
    gateway["metadata"]["nmae"] = "edge"
    assert any(e.startswith("metadata:") for e in gateway_validate(gateway))


# --------------------------------------------------------------------------- kind-config

@pytest.mark.parametrize("phase", PHASES)
def test_kind_config(phase):
    docs = list(yaml.safe_load_all(rendered(phase)["kind-config.yaml"]))
    assert len(docs) == 1
    config = docs[0]
    jsonschema.Draft202012Validator(KIND_V1ALPHA4).validate(config)
    assert kind_config_problems(config) == []
    # the rules of kind's Validate() that the schema cannot state
    assert [n["role"] for n in config["nodes"]].count("control-plane") == 1
    binds = set()
    for node in config["nodes"]:
        for m in node.get("extraPortMappings", []):
            ip = ipaddress.ip_address(m["listenAddress"])
            assert ip.is_loopback, "host ports bind to loopback only"
            key = (m["listenAddress"], m["hostPort"], m.get("protocol", "TCP"))
            assert key not in binds
            binds.add(key)
    st = stack(phase)
    assert config["name"] == f"parity-{st.name}"
    node = config["nodes"][0]
    assert node["labels"]["ingress-ready"] == "true"
    assert node["labels"]["parity.dev/edge"] == "true"
    assert node["labels"][LABEL_MANAGED] == "true"
    assert [(m["hostPort"], m["containerPort"]) for m in node["extraPortMappings"]] == [
        (st.http_port, EDGE_NODEPORT_HTTP), (st.https_port, EDGE_NODEPORT_HTTPS)]


def test_kind_config_follows_the_edge_ports():
    st = model.load(ROOT, Selection("kind", 1, environ={"PARITY_HTTP_PORT": "8080",
                                                        "PARITY_HTTPS_PORT": "8443"})).stack
    out = render_kind(st, RenderContext())
    config = yaml.safe_load(out["kind-config.yaml"])
    assert [m["hostPort"] for m in config["nodes"][0]["extraPortMappings"]] == [8080, 8443]
    redirect = by_kind(list(yaml.safe_load_all(out["manifests.yaml"])), "HTTPRoute")[
        "edge-https-redirect"]
    assert redirect["spec"]["rules"][0]["filters"][0]["requestRedirect"]["port"] == 8443


def test_a_moved_https_port_is_served_inside_the_cluster_too():
    # Browser URLs (the OIDC issuer included) carry :8443, and pods reach them
    # through the CoreDNS rewrite to the edge proxy: the Gateway must listen there.
    st = model.load(ROOT, Selection("kind", 1, environ={"PARITY_HTTPS_PORT": "8443"})).stack
    docs = list(yaml.safe_load_all(render_kind(st, RenderContext())["manifests.yaml"]))
    gw = by_kind(docs, "Gateway")["edge"]
    listeners = {x["name"]: x for x in gw["spec"]["listeners"]}
    assert [(x["name"], x["port"]) for x in gw["spec"]["listeners"]] == [
        ("http", 80), ("https", 443), ("https-host", 8443)]
    assert listeners["https-host"]["tls"] == listeners["https"]["tls"]
    assert listeners["https-host"]["hostname"] == listeners["https"]["hostname"]
    for name, route in by_kind(docs, "HTTPRoute").items():
        if name != "edge-https-redirect":
            assert [p["sectionName"] for p in route["spec"]["parentRefs"]] == [
                "https", "https-host"], name
    # the default port: one https listener, no extra parent
    plain = list(yaml.safe_load_all(render_kind(stack(1), RenderContext())["manifests.yaml"]))
    assert len(by_kind(plain, "Gateway")["edge"]["spec"]["listeners"]) == 2


# --------------------------------------------------------------------------- contract

@pytest.mark.parametrize("phase", PHASES)
def test_every_model_fact_reaches_the_manifests(phase):
    """What the model says a service receives is what its pod template delivers:
    env keys (literal via the ConfigMap, secret via secretKeyRef), image, readiness,
    dependencies, routes."""
    st = stack(phase)
    docs = docs_of(phase)
    configmaps = by_kind(docs, "ConfigMap")
    workloads = {d["metadata"]["name"]: d for d in docs
                 if d["kind"] in ("Deployment", "StatefulSet", "Job")}
    assert set(workloads) == {n for n, s in st.services.items() if s.role != "edge"}
    waves = {n: i for i, w in enumerate(st.order()) for n in w}
    for name, workload in workloads.items():
        svc = st.services[name]
        kind = {"stateless": "Deployment", "stateful": "StatefulSet", "job": "Job"}
        assert workload["kind"] == kind[svc.workload]
        c = workload["spec"]["template"]["spec"]["containers"][0]
        assert c["image"] == svc.image
        literal = {k for k, v in svc.env if not isinstance(v, SecretRef)}
        secret = {k: v for k, v in svc.env if isinstance(v, SecretRef)}
        assert set(configmaps.get(f"{name}-env", {}).get("data", {})) == literal
        got = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c.get("env", [])}
        assert got == {k: {"name": v.secret, "key": v.key} for k, v in secret.items()}
        notes = workload["metadata"]["annotations"]
        assert notes["parity.dev/wave"] == str(waves[name])
        assert notes.get("parity.dev/depends-on", "") == ",".join(svc.depends_on)
        assert ("readinessProbe" in c) == (svc.workload != "job")
    for route in st.routes().values():
        doc = by_kind(docs, "HTTPRoute")[route.name]
        assert doc["spec"]["hostnames"] == [f"{route.host}.{st.domain}"]
        rule = doc["spec"]["rules"][0]
        assert rule["matches"][0]["path"]["value"] == route.path
        assert rule["backendRefs"] == [{"name": route.service, "port": st.services[
            route.service].port(route.port).port}]


@pytest.mark.parametrize("phase", PHASES)
def test_secrets_carry_names_and_keys_never_values(phase):
    docs = docs_of(phase)
    secrets = by_kind(docs, "Secret")
    assert secrets, "phase renders use secrets"
    for name, doc in secrets.items():
        assert doc["type"] == "Opaque"
        assert "data" not in doc and "stringData" not in doc
        model_keys = sorted(k.name for k in stack(phase).secrets[name].keys)
        assert doc["metadata"]["annotations"]["parity.dev/secret-keys"] == ",".join(model_keys)
    assert EDGE_TLS_SECRET not in secrets and "parity-local-ca" not in by_kind(docs, "ConfigMap")


def test_coredns_rewrites_the_domain_to_the_edge():
    corefile = by_kind(docs_of(1), "ConfigMap")["coredns"]["data"]["Corefile"]
    assert (r"rewrite name regex ^(.+)\.parity\.localhost\.$ " + EDGE_PROXY_SERVICE +
            " answer auto") in corefile
    assert corefile.index("rewrite") < corefile.index("kubernetes cluster.local")
    other = stack(1, (("PARITY_DOMAIN", "dev.example.test"),))
    docs = manifest_docs(other)
    corefile = by_kind(docs, "ConfigMap")["coredns"]["data"]["Corefile"]
    assert r"^(.+)\.dev\.example\.test\.$" in corefile
    assert by_kind(docs, "HTTPRoute")["api"]["spec"]["hostnames"] == ["api.dev.example.test"]
    regex = re.search(r"regex (\S+) ", corefile).group(1)
    assert re.match(regex, "auth.dev.example.test.")
    assert not re.match(regex, "auth.dev.example.test.parity.svc.cluster.local.")


def test_the_adopted_corefile_is_kubeadms_plus_one_rewrite_line():
    # parity takes over kind's CoreDNS ConfigMap: everything kubeadm put there must stay
    kubeadm = (ROOT / "tests" / "k8s" / "fakes" / "kubeadm-corefile").read_text(
        encoding="utf-8")
    corefile = by_kind(docs_of(1), "ConfigMap")["coredns"]["data"]["Corefile"]
    lines = corefile.splitlines(keepends=True)
    assert [x.strip().split()[0] for x in lines if x not in kubeadm.splitlines(True)] == [
        "rewrite"]
    assert "".join(x for x in lines if not x.lstrip().startswith("rewrite ")) == kubeadm


def test_ingress_routing():
    st = dataclasses.replace(stack(3), routing="ingress")
    docs = manifest_docs(st)
    assert not [d for d in docs if d["kind"] in GATEWAY_KINDS]
    ingresses = by_kind(docs, "Ingress")
    assert sorted(ingresses) == sorted(st.routes())
    api = ingresses["api"]["spec"]
    assert api["ingressClassName"] == "parity-edge"
    assert api["tls"] == [{"hosts": ["api.parity.localhost"], "secretName": EDGE_TLS_SECRET}]
    assert api["rules"][0]["http"]["paths"][0]["backend"] == {
        "service": {"name": "api", "port": {"number": 8080}}}
    for doc in ingresses.values():
        k8s_validate(doc, K8S_OLDEST)
        k8s_validate(doc, _newest_k8s())


def test_command_dollars_survive_kubernetes_expansion():
    assert escape_k8s("echo $(date) $$ $HOME") == "echo $$(date) $$$ $HOME"
    st = with_service(stack(1), "api", command=("sh", "-c", "echo $(hostname) $$"),
                      args=("$(X)",))
    c = by_kind(manifest_docs(st), "Deployment")["api"]["spec"]["template"]["spec"][
        "containers"][0]
    assert c["command"] == ["sh", "-c", "echo $$(hostname) $$$"]
    assert c["args"] == ["$$(X)"]


def test_files_and_storage_of_a_stateless_service():
    """A stateless service with storage gets its own PVC; an init script is
    executable, other files are read-only; numeric users map to runAsUser/Group."""
    base = stack(1)
    st = with_service(base, "api", storage=base.services["postgres"].storage,
                      files=base.services["postgres"].files + base.services["keycloak"].files,
                      user="1000:2000")
    docs = manifest_docs(st)
    pvc = by_kind(docs, "PersistentVolumeClaim")["api-data"]
    assert pvc["spec"]["resources"]["requests"]["storage"] == "5Gi"
    pod = by_kind(docs, "Deployment")["api"]["spec"]["template"]["spec"]
    items = {i["key"]: i["mode"] for v in pod["volumes"] if "configMap" in v
             and v["configMap"]["name"] == "api-files" for i in v["configMap"]["items"]}
    assert items == {"init-databases": 0o555, "realm": 0o444}
    assert pod["containers"][0]["securityContext"] == {"runAsUser": 1000, "runAsGroup": 2000}
    for doc in docs:
        if doc["kind"] not in GATEWAY_KINDS:
            k8s_validate(doc, K8S_OLDEST)


# --------------------------------------------------------------------------- refusals

def _refusal(st) -> InputError:
    with pytest.raises(InputError) as info:
        render_kind(st, RenderContext())
    return info.value


def test_refuses_a_route_on_the_edge():
    route = dataclasses.replace(stack(1).services["web"].routes[0], name="status",
                                host="status", service="edge")
    err = _refusal(with_service(stack(1), "edge", routes=(route,)))
    assert err.path == "services.edge.routes"
    assert "cannot point at the edge service itself" in err.message


def test_refuses_a_job_with_replicas():
    err = _refusal(with_service(stack(3), "bootstrap-artifacts", replicas=2))
    assert (err.path, err.message) == (
        "services.bootstrap-artifacts.replicas",
        "a job runs once; replicas 2 cannot be represented")


def test_a_refusal_names_the_file_and_line_that_set_the_value(repo_copy):
    (repo_copy / "overlays" / "local").mkdir()
    (repo_copy / "overlays" / "local" / "mine.yaml").write_text(
        "services:\n  bootstrap-artifacts:\n    replicas: 2\n", encoding="utf-8")
    st = model.load(repo_copy, Selection("kind", 3)).stack
    with pytest.raises(InputError) as info:
        render(st, RenderContext())
    assert info.value.render().splitlines()[0] == (
        "overlays/local/mine.yaml:3: services.bootstrap-artifacts.replicas: a job runs "
        "once; replicas 2 cannot be represented")


def test_refuses_a_named_user():
    err = _refusal(with_service(stack(1), "api", user="app"))
    assert err.path == "services.api.user"
    assert err.message == "'app' is not a numeric UID[:GID]; Kubernetes runs containers by " \
                          "number only"


def test_refuses_two_mounts_on_one_path():
    pg = stack(1).services["postgres"]
    clash = dataclasses.replace(pg.files[0], name="other")
    err = _refusal(with_service(stack(1), "postgres", files=pg.files + (clash,)))
    assert err.path == "services.postgres.files[other].path"
    assert err.message == ("path /docker-entrypoint-initdb.d/10-parity.sh is also mounted by "
                           "services.postgres.files[init-databases].path")


def test_refuses_names_kubernetes_rejects():
    st = stack(1)
    web = st.services["web"]

    def with_extra(name: str, **changes) -> model.Stack:
        services = dict(st.services)
        services[name] = dataclasses.replace(web, name=name, env=(), routes=(), **changes)
        return dataclasses.replace(st, services=services)

    bad_port = dataclasses.replace(web.ports[0], name="8080")
    err = _refusal(with_extra("extra", ports=(bad_port,), readiness=None))
    assert (err.path, err.message) == (
        "services.extra.ports[8080].name",
        "'8080' is not a valid Kubernetes port name (it needs a letter, and no '--')")
    err = _refusal(with_extra("9web"))
    assert (err.path, err.message) == (
        "services.9web", "'9web' does not start with a letter; a Kubernetes Service name "
        "must (DNS-1035)")


def test_refuses_a_non_ip_bind():
    err = _refusal(dataclasses.replace(stack(1), edge_bind="localhost"))
    assert err.path == "stack.edge.bind"


def test_collects_every_refusal():
    st = with_service(stack(3), "bootstrap-artifacts", replicas=2)
    st = with_service(st, "api", user="app")
    err = _refusal(st)
    assert sorted(e.path for e in err.errors) == ["services.api.user",
                                                  "services.bootstrap-artifacts.replicas"]
