"""The cross-reference lint: clean on the real renders, and each kind of broken
reference, introduced one at a time into a copy, gives exactly one finding whose
text names the object and the field."""

from __future__ import annotations

import copy
import dataclasses
import functools
from pathlib import Path

import pytest

from parity import model
from parity.model import Selection
from parity.lint import Finding, lint_compose, lint_kind
from parity.render.kind import manifest_docs

ROOT = Path(__file__).resolve().parent.parent
DEPENDS_ON = 'metadata.annotations["parity.dev/depends-on"]'
API_CONTAINER = "spec.template.spec.containers[api]"


@functools.cache
def stack(mode: str, phase: int) -> model.Stack:
    return model.load(ROOT, Selection(mode, phase)).stack


@functools.cache
def _docs(phase: int) -> tuple:
    return tuple(manifest_docs(stack("kind", phase)))


def docs(phase: int = 1) -> list[dict]:
    """A deep copy of the phase's rendered documents, free to break."""
    return copy.deepcopy(list(_docs(phase)))


def find(documents: list[dict], kind: str, name: str) -> dict:
    return next(d for d in documents if d["kind"] == kind and d["metadata"]["name"] == name)


def findings(documents: list[dict], phase: int = 1) -> list[str]:
    return [str(f) for f in lint_kind(documents, stack("kind", phase))]


# --------------------------------------------------------------------------- kind

@pytest.mark.parametrize("phase", (1, 2, 3))
def test_real_renders_are_clean(phase):
    assert findings(docs(phase), phase) == []


def test_real_ingress_render_is_clean():
    st = dataclasses.replace(stack("kind", 3), routing="ingress")
    assert lint_kind(manifest_docs(st), st) == []


def test_finding_text():
    f = Finding("Deployment/api", "spec.selector.matchLabels", "is empty")
    assert str(f) == "Deployment/api spec.selector.matchLabels: is empty"


def test_service_selector():
    d = docs()
    find(d, "Service", "api")["spec"]["selector"]["app.kubernetes.io/name"] = "apx"
    assert findings(d) == ["Service/api spec.selector: selects app.kubernetes.io/name=apx, "
                           "which no pod template carries"]


def test_service_selector_mixing_two_pods():
    d = docs()
    find(d, "Service", "api")["spec"]["selector"]["app.kubernetes.io/name"] = "web"
    find(d, "Service", "api")["spec"]["selector"]["parity.dev/service"] = "api"
    assert findings(d) == [
        "Service/api spec.selector: selects app.kubernetes.io/name=web,"
        "app.kubernetes.io/part-of=parity,parity.dev/service=api, which no single pod "
        "template carries"]


def test_readiness_probe_port_name():
    d = docs()
    container = find(d, "Deployment", "api")["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbe"]["httpGet"]["port"] = "htp"
    assert findings(d) == [f"Deployment/api {API_CONTAINER}.readinessProbe.httpGet.port: "
                           "port 'htp' is not a port of container api (ports: http)"]


def test_tcp_readiness_probe_port_name():
    d = docs(2)
    container = find(d, "StatefulSet", "temporal")["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbe"]["tcpSocket"]["port"] = "grcp"
    assert findings(d, 2) == [
        "StatefulSet/temporal spec.template.spec.containers[temporal].readinessProbe."
        "tcpSocket.port: port 'grcp' is not a port of container temporal (ports: grpc, ui)"]


def test_service_target_port_name():
    d = docs()
    find(d, "Service", "api")["spec"]["ports"][0]["targetPort"] = "htp"
    assert findings(d) == ["Service/api spec.ports[http].targetPort: port 'htp' is not "
                           "declared by the pods of Deployment/api (ports: http)"]


def test_secret_key_ref_key():
    d = docs()
    env = find(d, "Deployment", "api")["spec"]["template"]["spec"]["containers"][0]["env"]
    env[0]["valueFrom"]["secretKeyRef"]["key"] = "usernme"
    assert findings(d) == [
        f"Deployment/api {API_CONTAINER}.env[DATABASE_USER].valueFrom.secretKeyRef.key: "
        "Secret/postgres-app has no key 'usernme' (keys: password, username)"]


def test_secret_key_ref_name():
    d = docs()
    env = find(d, "Deployment", "api")["spec"]["template"]["spec"]["containers"][0]["env"]
    env[0]["valueFrom"]["secretKeyRef"]["name"] = "postgres-ap"
    assert findings(d) == [
        f"Deployment/api {API_CONTAINER}.env[DATABASE_USER].valueFrom.secretKeyRef.name: "
        "Secret/postgres-ap does not exist"]


def test_config_map_ref_name():
    d = docs()
    container = find(d, "Deployment", "api")["spec"]["template"]["spec"]["containers"][0]
    container["envFrom"][0]["configMapRef"]["name"] = "apx-env"
    assert findings(d) == [f"Deployment/api {API_CONTAINER}.envFrom[0].configMapRef.name: "
                           "ConfigMap/apx-env does not exist"]


def test_config_map_volume_key():
    d = docs()
    volume = find(d, "StatefulSet", "postgres")["spec"]["template"]["spec"]["volumes"][0]
    volume["configMap"]["items"][0]["key"] = "init-database"
    assert findings(d) == [
        "StatefulSet/postgres spec.template.spec.volumes[parity-files].configMap.items"
        "[init-database].key: ConfigMap/postgres-files has no key 'init-database' "
        "(keys: init-databases)"]


def test_http_route_backend_port():
    d = docs()
    find(d, "HTTPRoute", "api")["spec"]["rules"][0]["backendRefs"][0]["port"] = 8081
    assert findings(d) == ["HTTPRoute/api spec.rules[0].backendRefs[0].port: Service/api has "
                           "no port 8081 (ports: 8080)"]


def test_http_route_backend_service():
    d = docs()
    find(d, "HTTPRoute", "api")["spec"]["rules"][0]["backendRefs"][0]["name"] = "apx"
    assert findings(d) == ["HTTPRoute/api spec.rules[0].backendRefs[0].name: Service/apx "
                           "does not exist"]


def test_http_route_listener():
    d = docs()
    find(d, "HTTPRoute", "api")["spec"]["parentRefs"][0]["sectionName"] = "htps"
    assert findings(d) == ["HTTPRoute/api spec.parentRefs[0].sectionName: Gateway/edge has "
                           "no listener 'htps' (listeners: http, https)"]


def test_ingress_backend_port():
    st = dataclasses.replace(stack("kind", 1), routing="ingress")
    d = manifest_docs(st)
    path = find(d, "Ingress", "web")["spec"]["rules"][0]["http"]["paths"][0]
    path["backend"]["service"]["port"]["number"] = 80
    assert [str(f) for f in lint_kind(d, st)] == [
        "Ingress/web spec.rules[0].http.paths[0].backend.service.port: Service/web has no "
        "port 80 (ports: 8080)"]


def test_depends_on_target():
    d = docs()
    notes = find(d, "Deployment", "api")["metadata"]["annotations"]
    notes["parity.dev/depends-on"] = "postgres,rediss"
    assert findings(d) == [f"Deployment/api {DEPENDS_ON}: depends on 'rediss', which is not "
                           "a workload in this render (workloads: api, keycloak, postgres, "
                           "redis, web)"]


def test_depends_on_the_edge_is_the_gateway():
    d = docs()
    find(d, "Deployment", "api")["metadata"]["annotations"]["parity.dev/depends-on"] = "edge"
    assert findings(d) == []


def test_dependency_in_a_later_wave():
    d = docs()
    find(d, "StatefulSet", "postgres")["metadata"]["annotations"]["parity.dev/wave"] = "1"
    assert findings(d) == [
        'Deployment/api metadata.annotations["parity.dev/wave"]: wave 1 is not after wave 1 '
        "of its dependency 'postgres'",
        'Deployment/keycloak metadata.annotations["parity.dev/wave"]: wave 1 is not after '
        "wave 1 of its dependency 'postgres'"]


def test_duplicate_hostname_and_path():
    d = docs()
    find(d, "HTTPRoute", "web")["spec"]["hostnames"] = ["api.parity.localhost"]
    assert findings(d) == ["HTTPRoute/web spec.hostnames: api.parity.localhost path / is also "
                           "routed by HTTPRoute/api"]


def test_missing_readiness_probe():
    d = docs()
    container = find(d, "Deployment", "web")["spec"]["template"]["spec"]["containers"][0]
    del container["readinessProbe"]
    assert findings(d) == ["Deployment/web spec.template.spec.containers[web].readinessProbe: "
                           "missing: parity waits for readiness before it starts the next wave"]


def test_jobs_need_no_readiness_probe():
    job = find(docs(3), "Job", "bootstrap-artifacts")
    assert "readinessProbe" not in job["spec"]["template"]["spec"]["containers"][0]
    assert findings(docs(3), 3) == []


def test_missing_parity_label():
    d = docs()
    del find(d, "ConfigMap", "web-env")["metadata"]["labels"]["parity.dev/managed"]
    find(d, "Service", "web")["metadata"]["labels"]["parity.dev/stack"] = "other"
    assert findings(d) == [
        "ConfigMap/web-env metadata.labels: missing label parity.dev/managed=true",
        "Service/web metadata.labels: label parity.dev/stack is 'other', expected 'parity'"]


def test_selector_not_on_own_pod_template():
    d = docs()
    labels = find(d, "Deployment", "web")["spec"]["template"]["metadata"]["labels"]
    labels["app.kubernetes.io/name"] = "webb"
    assert findings(d) == [
        "Service/web spec.selector: selects app.kubernetes.io/name=web, which no pod "
        "template carries",
        "Deployment/web spec.selector.matchLabels: selects app.kubernetes.io/name=web, which "
        "its own pod template does not carry"]


def test_volume_claim_template_and_pvc():
    d = docs()
    mounts = find(d, "StatefulSet", "postgres")["spec"]["template"]["spec"]["containers"][0][
        "volumeMounts"]
    mounts[0]["name"] = "dta"
    assert findings(d) == [
        "StatefulSet/postgres spec.template.spec.containers[postgres].volumeMounts"
        "[/var/lib/postgresql/data].name: no volume or volumeClaimTemplate named 'dta' "
        "(volumes: data, parity-files)"]
    # a stateless service's storage is a PVC of its own
    base = stack("kind", 1)
    st = dataclasses.replace(base, services={**base.services, "web": dataclasses.replace(
        base.services["web"], storage=base.services["redis"].storage)})
    d = manifest_docs(st)
    assert lint_kind(d, st) == []
    d = [x for x in d if x["kind"] != "PersistentVolumeClaim"]
    assert [str(f) for f in lint_kind(d, st)] == [
        "Deployment/web spec.template.spec.volumes[data].persistentVolumeClaim.claimName: "
        "PersistentVolumeClaim/web-data does not exist"]


def test_governing_service():
    d = [x for x in docs() if not (x["kind"] == "Service"
                                   and x["metadata"]["name"] == "redis-headless")]
    assert findings(d) == ["StatefulSet/redis spec.serviceName: Service/redis-headless does "
                           "not exist"]


def test_driver_provided_objects_count_as_present():
    """parity-local-ca and parity-edge-tls are created by the driver, not rendered."""
    d = docs()
    kinds = {(x["kind"], x["metadata"]["name"]) for x in d}
    assert ("ConfigMap", "parity-local-ca") not in kinds
    assert ("Secret", "parity-edge-tls") not in kinds
    assert findings(d) == []
    gateway = find(d, "Gateway", "edge")
    gateway["spec"]["listeners"][1]["tls"]["certificateRefs"][0]["name"] = "parity-edge-tsl"
    assert findings(d) == ["Gateway/edge spec.listeners[https].tls.certificateRefs[0].name: "
                           "Secret/parity-edge-tsl does not exist"]


def test_secret_volume_key():
    base = stack("kind", 1)
    sf = model.SecretFile("session", "api-session", "signing-key", "/run/secrets/session")
    st = dataclasses.replace(base, services={**base.services, "api": dataclasses.replace(
        base.services["api"], secret_files=(sf,))})
    d = manifest_docs(st)
    assert lint_kind(d, st) == []
    volume = next(v for v in find(d, "Deployment", "api")["spec"]["template"]["spec"]["volumes"]
                  if "secret" in v)
    volume["secret"]["items"][0]["key"] = "signing"
    assert [str(f) for f in lint_kind(d, st)] == [
        "Deployment/api spec.template.spec.volumes[secret-session].secret.items[signing].key: "
        "Secret/api-session has no key 'signing' (keys: signing-key)"]


# --------------------------------------------------------------------------- compose

def compose_file() -> dict:
    """A small hand-made compose file in the shape the compose renderer writes."""
    health = {"test": ["CMD", "true"], "interval": "5s"}
    return {
        "name": "parity",
        "services": {
            "edge": {"image": "nginx", "healthcheck": dict(health),
                     "ports": ["127.0.0.1:80:8080",
                               {"target": 8443, "published": "443", "host_ip": "127.0.0.1"}],
                     "depends_on": {"api": {"condition": "service_healthy"}}},
            "api": {"image": "parity/api:0.1.0", "healthcheck": dict(health),
                    "env_file": ["../../../secrets/env/api.env"],
                    "depends_on": {"postgres": {"condition": "service_healthy"}},
                    "configs": [{"source": "api-ca", "target": "/etc/parity/ca.crt"}]},
            "postgres": {"image": "postgres", "healthcheck": dict(health),
                         "secrets": ["postgres-admin-password"],
                         "volumes": ["postgres-data:/var/lib/postgresql/data",
                                     "./init.sh:/docker-entrypoint-initdb.d/10.sh:ro"]},
            "bootstrap-artifacts": {"image": "parity/worker:0.1.0", "depends_on": ["api"]},
        },
        "volumes": {"postgres-data": {}},
        "secrets": {"postgres-admin-password": {"file": "../../../secrets/postgres-admin/"
                                                        "password"}},
        "configs": {"api-ca": {"file": "../../../ca/ca.crt"}},
    }


def compose_findings(compose: dict) -> list[str]:
    return [str(f) for f in lint_compose(compose, stack("compose", 3))]


def test_compose_clean():
    assert compose_findings(compose_file()) == []


def test_compose_depends_on_target():
    c = compose_file()
    c["services"]["api"]["depends_on"]["postgre"] = c["services"]["api"]["depends_on"].pop(
        "postgres")
    assert compose_findings(c) == ["service/api depends_on.postgre: 'postgre' is not a "
                                   "service of this file (services: api, bootstrap-artifacts, "
                                   "edge, postgres)"]


def test_compose_healthcheck():
    c = compose_file()
    del c["services"]["api"]["healthcheck"]
    c["services"]["postgres"]["healthcheck"] = {"disable": True}
    c["services"]["edge"]["healthcheck"] = {"test": ["NONE"]}
    assert compose_findings(c) == [
        "service/api healthcheck: missing: dependents wait for service_healthy, and parity "
        "waits for readiness",
        "service/edge healthcheck: missing: dependents wait for service_healthy, and parity "
        "waits for readiness",
        "service/postgres healthcheck: missing: dependents wait for service_healthy, and "
        "parity waits for readiness"]


def test_compose_undeclared_secret_config_volume():
    c = compose_file()
    c["services"]["postgres"]["secrets"] = ["postgres-admin-pasword"]
    c["services"]["api"]["configs"][0]["source"] = "api-cert"
    c["services"]["postgres"]["volumes"][0] = {"type": "volume", "source": "pg-data",
                                               "target": "/var/lib/postgresql/data"}
    assert compose_findings(c) == [
        "service/api configs.api-cert: 'api-cert' is not declared under top-level configs: "
        "(declared: api-ca)",
        "service/postgres secrets.postgres-admin-pasword: 'postgres-admin-pasword' is not "
        "declared under top-level secrets: (declared: postgres-admin-password)",
        "service/postgres volumes.pg-data: named volume 'pg-data' is not declared under "
        "top-level volumes: (declared: postgres-data)"]


def test_compose_env_file_of_another_service():
    c = compose_file()
    c["services"]["api"]["env_file"] = ["../../../secrets/env/postgres.env",
                                        "/home/me/api.env"]
    assert compose_findings(c) == [
        "service/api env_file: '../../../secrets/env/postgres.env' is the secret env file of "
        "service 'postgres'; a service reads only its own",
        "service/api env_file: '/home/me/api.env' is absolute; renders refer to files "
        "relative to the output directory"]


def test_compose_only_the_edge_publishes_on_loopback():
    c = compose_file()
    c["services"]["api"]["ports"] = ["8080:8080"]
    c["services"]["edge"]["ports"][0] = "80:8080"
    c["services"]["edge"]["ports"][1]["host_ip"] = "0.0.0.0"
    assert compose_findings(c) == [
        "service/api ports: publishes 8080:8080; only the edge (edge) publishes host ports",
        "service/edge ports: publishes 80:8080 on every interface; parity binds host ports "
        "to 127.0.0.1 only",
        "service/edge ports: publishes 0.0.0.0:443:8443 on 0.0.0.0; parity binds host ports "
        "to 127.0.0.1 only"]
