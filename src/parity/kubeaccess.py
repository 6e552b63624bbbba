"""The only way parity reaches a Kubernetes API, and the guard around it.

parity talks to exactly one cluster: its own kind cluster, through its own
kubeconfig file ``.parity/kind/kubeconfig``. It never reads ``~/.kube/config``,
``$KUBECONFIG`` or the current context of any other file, and before the first
request it checks that the file's current context is the parity cluster's
(``kind-parity-<stack>``) and that its server is on the loopback address. Anything
else is refused (exit 2) without a single connection.

Requests go through the official ``kubernetes`` Python client built from that one
file's contents (``new_client_from_config_dict``), never from the defaults.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import CheckFailed, InputError

FIELD_MANAGER = "parity"


def context_name(cluster: str) -> str:
    """kind names the context of cluster X ``kind-X``."""
    return f"kind-{cluster}"


def check_kubeconfig(path: Path, cluster: str) -> dict:
    """Parse ``path`` and return it if it points at parity's cluster; refuse otherwise."""
    import yaml

    want = context_name(cluster)
    if not path.exists():
        raise InputError(f"no kubeconfig for the parity cluster at {path}",
                         hint="create the cluster with inv up --mode kind")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"{path} is not a kubeconfig: {exc}") from None
    current = data.get("current-context")
    if current != want:
        raise InputError(
            f"refusing to use context '{current}': parity only talks to its own kind "
            f"cluster, context '{want}'", where=str(path),
            hint="parity never uses your default kubeconfig or current context; "
                 "run inv down --mode kind and inv up --mode kind to recreate its file")
    contexts = {c.get("name"): c.get("context") or {} for c in data.get("contexts") or []}
    clusters = {c.get("name"): c.get("cluster") or {} for c in data.get("clusters") or []}
    server = clusters.get(contexts.get(want, {}).get("cluster"), {}).get("server", "")
    host = urlsplit(server).hostname or ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise InputError(
            f"refusing to reach {server or 'an unnamed server'}: the parity cluster's API "
            "server is on 127.0.0.1", where=str(path),
            hint="recreate the file with inv up --mode kind")
    return data


class Kube:
    """A guarded client for parity's cluster."""

    def __init__(self, kubeconfig: Path, cluster: str):
        self.kubeconfig = kubeconfig
        self.cluster = cluster
        data = check_kubeconfig(kubeconfig, cluster)
        from kubernetes import config as kconfig
        from kubernetes.dynamic import DynamicClient

        self.api = kconfig.new_client_from_config_dict(data, context=context_name(cluster))
        self.dynamic = DynamicClient(self.api)

    def resource(self, api_version: str, kind: str):
        return self.dynamic.resources.get(api_version=api_version, kind=kind)

    def apply(self, doc: dict, force: bool = True) -> Any:
        """Server-side apply (field manager ``parity``)."""
        meta = doc.get("metadata") or {}
        res = self.resource(doc["apiVersion"], doc["kind"])
        try:
            return res.server_side_apply(body=doc, name=meta.get("name"),
                                         namespace=meta.get("namespace"),
                                         field_manager=FIELD_MANAGER, force_conflicts=force)
        except Exception as exc:  # noqa: BLE001 - the API's message is the useful part
            raise CheckFailed(f"{doc['kind']}/{meta.get('name')}: server-side apply was "
                              f"refused: {_api_message(exc)}") from None

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None):
        """The object, or None when it does not exist, nor its kind (e.g. the edge's
        CRDs not installed yet after a partial run)."""
        from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError

        try:
            return self.resource(api_version, kind).get(name=name, namespace=namespace).to_dict()
        except (NotFoundError, ResourceNotFoundError):
            return None

    def list(self, api_version: str, kind: str, namespace: str | None = None,
             selector: str | None = None) -> list[dict]:
        from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError

        try:
            res = self.resource(api_version, kind)
            items = res.get(namespace=namespace, label_selector=selector).to_dict()
        except (ResourceNotFoundError, NotFoundError):
            return []  # e.g. Gateway API CRDs not installed yet, or removed since discovery
        return items.get("items") or []

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None,
               propagation: str = "Background") -> None:
        from kubernetes.dynamic.exceptions import NotFoundError

        try:
            self.resource(api_version, kind).delete(
                name=name, namespace=namespace, body={"propagationPolicy": propagation})
        except NotFoundError:
            pass


def _api_message(exc: Exception) -> str:
    import json

    body = getattr(exc, "body", None)
    if body:
        try:
            return json.loads(body).get("message", str(body))
        except (ValueError, AttributeError):
            return str(body)[:500]
    return str(exc)[:500]
