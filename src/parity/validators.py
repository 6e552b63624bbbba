"""External validators for rendered output, shared by the tests and the offline
parity lane (``nox -s verify``).

- kubernetes-validate, strict, for core kinds (Kubernetes 1.31 and the newest
  schemas the installed package ships);
- the real Gateway API v1.4.0 CRD schemas (``schemas/gateway-api-v1.4.0``, vendored
  from the Go module proxy by ``schemas/vendor_gateway_api.py``; the version the
  kind lane's edge controller implements and installs) for Gateway, HTTPRoute and
  GatewayClass, with unknown fields rejected as the API server's strict field
  validation does, list-type uniqueness, and the CEL rules our objects can meet
  restated in Python (no CEL evaluator is available);
- kind's ``v1alpha4`` Cluster type for kind-config.yaml (a hand-written schema of the
  fields of sigs.k8s.io/kind v0.33.0 ``pkg/apis/config/v1alpha4/types.go``);
- ``docker compose config --quiet`` with the real Compose v2 plugin;
- yamllint's default configuration. Its one rule generated output cannot always
  meet is ``line-length`` (80): a line of model content (a shell command, a line of
  a config file, the CoreDNS rewrite) cannot be broken without changing it. So: no
  problem of any other rule, and every long line must be the text of a string
  value, never structure.
"""

from __future__ import annotations

import functools
import ipaddress
import json
from pathlib import Path

from . import docker
from .render.edge import GATEWAY_API_VERSION  # the vendored CRDs' release, one place

SCHEMAS = Path(__file__).resolve().parent / "schemas" / f"gateway-api-{GATEWAY_API_VERSION}"
K8S_OLDEST = "1.31.0"
GATEWAY_KINDS = {"Gateway": "gateway", "HTTPRoute": "httproute",
                 "GatewayClass": "gatewayclass"}


def _loader():
    # lazy: PyYAML is imported only by the commands that read or write YAML here
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# --------------------------------------------------------------------------- yamllint

def _scalar_lines(docs) -> set[str]:
    out: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
        elif isinstance(node, str):
            out.update(line.strip() for line in node.split("\n"))

    for d in docs:
        walk(d)
    return out



def yamllint_problems(text: str) -> list[str]:
    """yamllint (default rules) findings, except long lines of string content."""
    # lazy: PyYAML is imported only by the commands that read or write YAML here
    import yaml
    from yamllint import linter
    from yamllint.config import YamlLintConfig

    config = YamlLintConfig("extends: default")
    content = None
    lines = text.split("\n")
    out = []
    for p in linter.run(text, config):
        if p.rule == "line-length":
            if content is None:
                content = _scalar_lines(yaml.load_all(text, Loader=_loader()))
            line = lines[p.line - 1].strip()
            candidates = {line, line.removeprefix("- "), line.partition(": ")[2]}
            if candidates & content:
                continue
        out.append(f"line {p.line}: {p.desc} ({p.rule})")
    return out


# --------------------------------------------------------------------------- kubernetes-validate

@functools.cache
def newest_k8s() -> str:
    """The newest Kubernetes version whose schemas the installed package ships."""
    # lazy: kubernetes-validate loads its schemas; only inv verify needs it
    import kubernetes_validate

    return kubernetes_validate.latest_version()


@functools.cache
def _patch_schema_cache() -> None:
    # Each validate() call re-reads the JSON schemas; cache the reader.
    # lazy: kubernetes-validate loads its schemas; only inv verify needs it
    import kubernetes_validate.utils as kv_utils

    kv_utils.schema_contents = functools.lru_cache(maxsize=None)(kv_utils.schema_contents)


def k8s_validate(doc: dict, version: str) -> None:
    """Raise kubernetes_validate.ValidationError when ``doc`` is invalid (strict)."""
    # lazy: kubernetes-validate loads its schemas; only inv verify needs it
    import kubernetes_validate

    _patch_schema_cache()
    kubernetes_validate.validate(doc, version, strict=True)


def k8s_problems(doc: dict, version: str) -> list[str]:
    # lazy: kubernetes-validate loads its schemas; only inv verify needs it
    import kubernetes_validate

    try:
        k8s_validate(doc, version)
    except kubernetes_validate.ValidationError as exc:
        return [f"{exc.message} at {list(exc.absolute_path)}"]
    return []


# --------------------------------------------------------------------------- Gateway API

def _strict(schema):
    """Unknown fields are errors, as with the API server's strict field validation
    (kubectl's default): close every object schema that lists its properties and
    neither sets additionalProperties nor preserves unknown fields."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == "properties":
            out[key] = {name: _strict(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
            out[key] = _strict(value)
        else:
            out[key] = value
    if ("properties" in out and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


def _list_type(validator, list_type, instance, schema):
    # lazy: jsonschema costs ~70 ms on import; only a schema check needs it
    import jsonschema

    """x-kubernetes-list-type: the API server rejects duplicate keys (map) or items
    (set); jsonschema would not, so check it here."""
    if not isinstance(instance, list):
        return
    if list_type == "map":
        keys = schema.get("x-kubernetes-list-map-keys", [])
        seen = set()
        for item in instance:
            key = tuple(json.dumps(item.get(k), sort_keys=True) for k in keys)
            if key in seen:
                yield jsonschema.ValidationError(f"duplicate entry for key {keys}={key}")
            seen.add(key)
    elif list_type == "set":
        items = [json.dumps(i, sort_keys=True) for i in instance]
        if len(items) != len(set(items)):
            yield jsonschema.ValidationError("duplicate items in a list-type set")


# x-kubernetes-* keys other than list-type are annotations here: jsonschema ignores
# unknown keywords. CEL rules (x-kubernetes-validations) need a CEL evaluator; the
# ones our objects can meet are restated in Python in _gateway_api_cel().
@functools.cache
def _crd_validator_class():
    # lazy: jsonschema costs ~70 ms on import; only a schema check needs it
    import jsonschema

    return jsonschema.validators.extend(
        jsonschema.Draft202012Validator, {"x-kubernetes-list-type": _list_type})


@functools.cache
def _gateway_validator(kind: str, version: str):
    data = json.loads((SCHEMAS / f"{GATEWAY_KINDS[kind]}.json").read_text(encoding="utf-8"))
    assert data["bundle_version"] == GATEWAY_API_VERSION and data["channel"] == "standard"
    schema = _strict(data["versions"][version])
    cls = _crd_validator_class()
    cls.check_schema(schema)
    return cls(schema)


def _gateway_api_cel(doc: dict) -> list[str]:
    """The CEL rules of the v1.4.0 CRDs that apply to what parity renders,
    restated (message text as in the CRD)."""
    errors = []
    spec = doc["spec"]
    if doc["kind"] == "GatewayClass":
        return errors  # its one rule (controllerName is immutable) needs an old object
    if doc["kind"] == "Gateway":
        listeners = spec["listeners"]
        if len({l["name"] for l in listeners}) != len(listeners):
            errors.append("Listener name must be unique within the Gateway")
        combos = [(l["port"], l["protocol"], l.get("hostname")) for l in listeners]
        if len(set(combos)) != len(combos):
            errors.append("Combination of port, protocol and hostname must be unique for "
                          "each listener")
        for l in listeners:
            if l["protocol"] in ("HTTP", "TCP", "UDP") and "tls" in l:
                errors.append("tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']")
            tls = l.get("tls")
            if l["protocol"] == "HTTPS" and tls and tls.get("mode", "Terminate") != "Terminate":
                errors.append("tls mode must be Terminate for protocol HTTPS")
            if tls and tls.get("mode", "Terminate") == "Terminate" and not (
                    tls.get("certificateRefs") or tls.get("options")):
                errors.append("certificateRefs or options must be specified when mode is "
                              "Terminate")
    else:
        parents = [(p.get("group", "gateway.networking.k8s.io"), p.get("kind", "Gateway"),
                    p["name"], p.get("namespace", ""), p.get("sectionName", ""))
                   for p in spec.get("parentRefs", [])]
        if len(set(parents)) != len(parents):
            errors.append("sectionName must be unique when parentRefs includes 2 or more "
                          "references to the same parent")
        for rule in spec.get("rules", []):
            if rule.get("backendRefs") and any("requestRedirect" in f
                                               for f in rule.get("filters", [])):
                errors.append("RequestRedirect filter must not be used together with "
                              "backendRefs")
            for ref in rule.get("backendRefs", []):
                if ref.get("group", "") == "" and ref.get("kind", "Service") == "Service" \
                        and "port" not in ref:
                    errors.append("Must have port for Service reference")
            for f in rule.get("filters", []):
                field = {"RequestRedirect": "requestRedirect", "URLRewrite": "urlRewrite",
                         "RequestHeaderModifier": "requestHeaderModifier"}.get(f["type"])
                if field is None or field not in f:
                    errors.append(f"filter.{field} must be specified for {f['type']} "
                                  "filter.type")
            for m in rule.get("matches", []):
                path = m.get("path", {})
                value = path.get("value", "/")
                if path.get("type", "PathPrefix") in ("Exact", "PathPrefix"):
                    if not value.startswith("/") or any(s in value for s in (
                            "//", "/./", "/../", "%2f", "%2F", "#")) \
                            or value.endswith(("/..", "/.")):
                        errors.append(f"invalid path value {value!r}")
    return errors


def gateway_validate(doc: dict) -> list[str]:
    group, _, version = doc["apiVersion"].partition("/")
    if group != "gateway.networking.k8s.io" or doc.get("kind") not in GATEWAY_KINDS:
        return [f"not a Gateway API object: {doc['apiVersion']}"]
    errors = [f"{e.message} at {list(e.absolute_path)}"
              for e in _gateway_validator(doc["kind"], version).iter_errors(doc)]
    # The CRD schema leaves metadata open; the API server checks it as ObjectMeta.
    errors += [f"metadata: {p}" for p in k8s_problems(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": doc["metadata"]}, K8S_OLDEST)]
    return errors + _gateway_api_cel(doc)




# --------------------------------------------------------------------------- kind-config

_PORT = {"type": "integer", "minimum": 0, "maximum": 65535}
_STR_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_PATCH6902 = {"type": "object", "additionalProperties": False,
              "required": ["group", "version", "kind", "patch"],
              "properties": {k: {"type": "string"} for k in ("group", "version", "kind",
                                                               "patch")}}
#: sigs.k8s.io/kind v0.33.0, pkg/apis/config/v1alpha4/types.go (json tags), and the
#: value rules of pkg/internal/apis/config/validate.go. kind decodes strictly, so an
#: unknown key is an error there too.
KIND_V1ALPHA4 = {
    "type": "object", "additionalProperties": False,
    "required": ["kind", "apiVersion"],
    "properties": {
        "kind": {"const": "Cluster"},
        "apiVersion": {"const": "kind.x-k8s.io/v1alpha4"},
        "name": {"type": "string", "pattern": "^[a-z0-9.-]+$"},
        "nodes": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "role": {"enum": ["control-plane", "worker"]},
                "image": {"type": "string"},
                "labels": _STR_MAP,
                "extraMounts": {"type": "array", "items": {
                    "type": "object", "additionalProperties": False, "properties": {
                        "containerPath": {"type": "string"}, "hostPath": {"type": "string"},
                        "readOnly": {"type": "boolean"}, "selinuxRelabel": {"type": "boolean"},
                        "propagation": {"enum": ["None", "HostToContainer", "Bidirectional"]},
                    }}},
                "extraPortMappings": {"type": "array", "items": {
                    "type": "object", "additionalProperties": False, "properties": {
                        "containerPort": _PORT, "hostPort": _PORT,
                        "listenAddress": {"type": "string"},
                        "protocol": {"enum": ["TCP", "UDP", "SCTP"]},
                    }}},
                "kubeadmConfigPatches": {"type": "array", "items": {"type": "string"}},
                "kubeadmConfigPatchesJSON6902": {"type": "array", "items": _PATCH6902},
            }}},
        "networking": {"type": "object", "additionalProperties": False, "properties": {
            "ipFamily": {"enum": ["ipv4", "ipv6", "dual"]},
            "apiServerPort": _PORT, "apiServerAddress": {"type": "string"},
            "podSubnet": {"type": "string"}, "serviceSubnet": {"type": "string"},
            "disableDefaultCNI": {"type": "boolean"},
            "kubeProxyMode": {"enum": ["iptables", "ipvs", "nftables", "none"]},
            "dnsSearch": {"type": "array", "items": {"type": "string"}},
        }},
        "featureGates": {"type": "object", "additionalProperties": {"type": "boolean"}},
        "runtimeConfig": _STR_MAP,
        "kubeadmConfigPatches": {"type": "array", "items": {"type": "string"}},
        "kubeadmConfigPatchesJSON6902": {"type": "array", "items": _PATCH6902},
        "containerdConfigPatches": {"type": "array", "items": {"type": "string"}},
        "containerdConfigPatchesJSON6902": {"type": "array", "items": {"type": "string"}},
    },
}



def kind_config_problems(config: dict) -> list[str]:
    # lazy: jsonschema costs ~70 ms on import; only a schema check needs it
    import jsonschema

    problems = [f"{e.message} at {list(e.absolute_path)}" for e in
                jsonschema.Draft202012Validator(KIND_V1ALPHA4).iter_errors(config)]
    nodes = config.get("nodes") or []
    if [n.get("role") for n in nodes].count("control-plane") != 1:
        problems.append("exactly one control-plane node is required")
    binds = set()
    for node in nodes:
        for m in node.get("extraPortMappings", []):
            if not ipaddress.ip_address(m.get("listenAddress", "0.0.0.0")).is_loopback:
                problems.append(f"hostPort {m.get('hostPort')} does not bind to loopback")
            key = (m.get("listenAddress"), m.get("hostPort"), m.get("protocol", "TCP"))
            if key in binds:
                problems.append(f"hostPort {m.get('hostPort')} is mapped twice")
            binds.add(key)
    return problems


# --------------------------------------------------------------------------- compose

def compose_problems(compose_file: Path) -> list[str]:
    """``docker compose config --quiet`` with the real plugin (resolves paths and
    env files relative to the file, as ``up`` will)."""

    docker.compose_version()
    proc = docker.run(["docker", "compose", "-f", str(compose_file), "config", "--quiet"],
                      check=False, timeout=60)
    if proc.returncode != 0:
        return [line for line in (proc.stderr or proc.stdout).strip().splitlines()][-5:]
    return []
