"""The only way parity reaches a Kubernetes API, and the guard around it.

parity talks to exactly one cluster: its own kind cluster, through its own
kubeconfig file ``.parity/kind/kubeconfig``. It never reads ``~/.kube/config``,
``$KUBECONFIG`` or the current context of any other file, and before the first
request it checks that file (:mod:`.kubeconfig`): a regular file of at most
:data:`~.kubeconfig.MAX_KUBECONFIG_BYTES`, whose current context is the parity cluster's
(``kind-parity-<stack>``), whose server is an https URL on the loopback address, and
which holds nothing that would reach beyond that cluster or run a command: no
``exec`` credential plugin, no ``auth-provider``, no ``proxy-url``. Anything else is
refused (exit 2, naming the file, line and key) without a single connection.

The client is built here from those checked values, not by the ``kubernetes``
package's kubeconfig loader (which would honour all of the above): no proxy at all
(``HTTPS_PROXY``/``ALL_PROXY`` are ignored: the API server is on this machine), a
connect and read timeout on every request (:data:`CONNECT_SECONDS`,
:data:`READ_SECONDS`) and few retries, client keys held in memory (``memfd``)
rather than written to a temporary file, and API discovery kept in memory (the
dynamic client's default caches it in the shared temporary directory and reads it
back from there). Every call ends in a parity error: an API server that does not
answer is :class:`~parity.errors.PrerequisiteMissing` (exit 3) naming the server
and the next step, never a urllib3 traceback.

Subprocesses that could reach a cluster (kind, kubectl) get
:func:`~.kubeconfig.subprocess_env`:
``KUBECONFIG`` naming only parity's file, ``KUBECACHEDIR`` in parity's state
directory (never ``~/.kube/cache``), and no proxy variables.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from ...errors import CheckFailed, InputError, ParityError, PrerequisiteMissing
from .kubeconfig import REGENERATE, Target, check_text, load_target

FIELD_MANAGER = "parity"
#: Seconds to open a connection to the API server (it is on this machine).
CONNECT_SECONDS = 5.0
#: Seconds to wait for an answer once connected (a server-side apply of a large CRD
#: takes a few).
READ_SECONDS = 30.0
#: Fresh connection attempts after the first; reads are retried once, and only for
#: idempotent requests.
CONNECT_RETRIES = 2

# --------------------------------------------------------------------------- the client

def _memory_discoverer():
    """The dynamic client's lazy discovery, kept in memory: the default writes it to
    ``$TMPDIR/osrcp-<md5 of the server URL>.json`` and reads it back from there (a
    shared, guessable path another local user could plant)."""
    # lazy: kubernetes costs ~0.3 s to import; only a call to the API needs it
    from kubernetes import __version__
    from kubernetes.dynamic.discovery import LazyDiscoverer

    class MemoryDiscoverer(LazyDiscoverer):
        def _Discoverer__init_cache(self, refresh=False):  # noqa: N802 - overrides a private
            self._cache = {"library_version": __version__}
            self._load_server_info()
            self.discover()

        def _write_cache(self):
            pass

    return MemoryDiscoverer


def _secret_path(data: bytes, keep: list) -> str:
    """A path the TLS library can open for ``data`` (a client key): an anonymous
    in-memory file on Linux, else a private temporary file removed at exit."""
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        fd = os.memfd_create("parity-kube", os.MFD_CLOEXEC)
        os.write(fd, data)
        keep.append(fd)
        return f"/proc/self/fd/{fd}"
    tmp = tempfile.mkdtemp(prefix="parity-kube-")
    atexit.register(shutil.rmtree, tmp, True)
    fd, name = tempfile.mkstemp(dir=tmp)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return name


def _describe(exc: BaseException) -> str:
    """Why a request got no answer, in a few words, from urllib3's wrapped errors."""
    # lazy: urllib3 costs ~0.1 s to import; only a failed request needs it
    from urllib3 import exceptions as u3

    reason = exc.reason if isinstance(exc, u3.MaxRetryError) and exc.reason else exc
    if isinstance(reason, u3.NewConnectionError):  # (a ConnectTimeoutError subclass)
        text = str(reason)
        if "refused" in text.lower():
            return "connection refused"
        return text.split(": ", 1)[-1][:200]
    if isinstance(reason, u3.ConnectTimeoutError):
        return f"no connection within {CONNECT_SECONDS:.0f} s"
    if isinstance(reason, (u3.ReadTimeoutError, TimeoutError)):
        return f"no answer within {READ_SECONDS:.0f} s"
    if isinstance(reason, u3.SSLError):
        text = str(reason)
        if "CERTIFICATE_VERIFY_FAILED" in text:
            return ("its TLS certificate is not signed by the kubeconfig's certificate "
                    "authority (another server, or the file of an earlier cluster)")
        if "EOF" in text or "reset" in text.lower():
            return "the connection was closed during the TLS handshake"
        return f"the TLS handshake failed ({text[:200]})"
    if isinstance(reason, u3.ProtocolError):
        return "the connection was closed without an answer"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason)[:200] or type(reason).__name__


class Kube:
    """A guarded client for parity's cluster.

    ``text``/``source``: a kubeconfig held in memory (e.g. printed by ``kind get
    kubeconfig`` for a dry run, which writes no file) instead of ``kubeconfig``."""

    def __init__(self, kubeconfig: Path | None, cluster: str, *, text: str | None = None,
                 source: str | None = None):
        self.kubeconfig = kubeconfig
        self.cluster = cluster
        self.source = source or str(kubeconfig)
        if text is None:
            target = load_target(kubeconfig, cluster)
        else:
            target = check_text(text, self.source, cluster,
                                base=kubeconfig.parent if kubeconfig else None)
        self.server = target.server
        self._fds: list[int] = []
        self.api = self._client(target)
        self._dynamic = None

    def _client(self, t: Target):
        # lazy: kubernetes and urllib3 cost ~0.4 s to import; only a call to the API needs them
        import urllib3
        from kubernetes.client import ApiClient, Configuration

        cfg = Configuration(host=t.server, proxy="", no_proxy="*")
        cfg.proxy = None            # never from HTTPS_PROXY/ALL_PROXY, never proxy-url
        cfg.no_proxy = "*"
        cfg.verify_ssl = not t.insecure
        cfg.ca_cert_data = t.ca_data
        cfg.ssl_ca_cert = t.ca_file
        cfg.tls_server_name = t.tls_server_name
        for attr, blob in (("cert_file", t.cert), ("key_file", t.key)):
            if blob is not None:
                how, value = blob
                setattr(cfg, attr, _secret_path(value, self._fds) if how == "data" else value)
        if t.token:
            cfg.api_key = {"BearerToken": f"Bearer {t.token}"}
        cfg.retries = urllib3.Retry(total=CONNECT_RETRIES + 1, connect=CONNECT_RETRIES,
                                    read=1, status=0, redirect=0, other=0,
                                    backoff_factor=0.2, raise_on_status=False)
        cfg.connection_pool_maxsize = 4
        api = ApiClient(configuration=cfg)
        rest = api.rest_client
        request = rest.request

        def bounded(method, url, *args, _request_timeout=None, **kwargs):
            return request(method, url, *args, _request_timeout=_request_timeout
                           or (CONNECT_SECONDS, READ_SECONDS), **kwargs)

        rest.request = bounded  # the client's default is no timeout at all
        return api

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.api.rest_client.pool_manager.clear()
        for fd in getattr(self, "_fds", ()):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []

    def __del__(self):
        self.close()

    # ------------------------------------------------------------------ errors

    def _unreachable(self, why: str) -> PrerequisiteMissing:
        node = f"{self.cluster}-control-plane"
        return PrerequisiteMissing(
            f"the parity cluster's API server {self.server} (from {self.source}) does not "
            f"answer: {why}",
            hint=f"is the cluster running? docker ps -a --filter name={node} shows its node "
                 f"(start a stopped one: docker start {node}); make kind-parity-status "
                 "shows the rest; recreate it with make kind-parity-down and "
                 "make kind-parity-up")

    @contextlib.contextmanager
    def _call(self, what: str):
        """Every request: a connection or server failure becomes a parity error."""
        # lazy: kubernetes and urllib3 cost ~0.4 s to import; only a call to the API needs them
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            yield
        except ParityError:
            raise
        except HTTPError as exc:
            raise self._unreachable(_describe(exc)) from None
        except ApiException as exc:
            status = int(getattr(exc, "status", 0) or 0)
            if status == 0 or status >= 500:
                raise PrerequisiteMissing(
                    f"the parity cluster's API server {self.server} answered {what} with "
                    f"{status or 'no status'} {getattr(exc, 'reason', '') or ''}: "
                    f"{_api_message(exc)}".replace("  ", " "),
                    hint="it may still be starting or be overloaded: try again in a "
                         "minute; make kind-parity-status shows the node") from None
            if status == 401:
                raise InputError(
                    f"the parity cluster's API server {self.server} refused the "
                    f"credentials in {self.source} (401 Unauthorized)",
                    hint="the file belongs to an earlier cluster: "
                         + REGENERATE.format(path=self.source)) from None
            raise
        except OSError as exc:
            raise self._unreachable(_describe(exc)) from None
        except ValueError as exc:
            if isinstance(exc, json.JSONDecodeError):
                raise CheckFailed(f"the parity cluster's API server {self.server} answered "
                                  f"{what} with something that is not JSON") from None
            raise

    @property
    def dynamic(self):
        if self._dynamic is None:
            # lazy: kubernetes costs ~0.3 s to import; only a call to the API needs it
            from kubernetes.dynamic import DynamicClient

            with self._call("discovery"):
                try:
                    self._dynamic = DynamicClient(self.api, discoverer=_memory_discoverer())
                except (ValueError, AttributeError, TypeError, KeyError):
                    # an answer, but not JSON discovery: not a Kubernetes API server
                    raise PrerequisiteMissing(
                        f"{self.server} (from {self.source}) answered, but not as a "
                        "Kubernetes API server",
                        hint="another program listens on the cluster's port: stop it, or "
                             "recreate the cluster with make kind-parity-down and "
                             "make kind-parity-up") from None
        return self._dynamic

    def resource(self, api_version: str, kind: str):
        with self._call(f"discovery of {kind}"):
            return self.dynamic.resources.get(api_version=api_version, kind=kind)

    # ------------------------------------------------------------------ calls

    def apply(self, doc: dict, force: bool = True) -> Any:
        """Server-side apply (field manager ``parity``)."""
        # lazy: kubernetes costs ~0.3 s to import; only a call to the API needs it
        from kubernetes.client.exceptions import ApiException
        from kubernetes.dynamic.exceptions import ResourceNotFoundError

        meta = doc.get("metadata") or {}
        what = f"{doc['kind']}/{meta.get('name')}"
        try:
            with self._call(f"the apply of {what}"):
                res = self.resource(doc["apiVersion"], doc["kind"])
                return _retrying(lambda: res.server_side_apply(
                    body=doc, name=meta.get("name"), namespace=meta.get("namespace"),
                    field_manager=FIELD_MANAGER, force_conflicts=force))
        except (ApiException, ResourceNotFoundError) as exc:
            raise CheckFailed(f"{what}: server-side apply was refused: "
                              f"{_api_message(exc)}") from None

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None):
        """The object, or None when it does not exist, nor its kind (e.g. the edge's
        CRDs not installed yet after a partial run)."""
        # lazy: kubernetes costs ~0.3 s to import; only a call to the API needs it
        from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError

        try:
            with self._call(f"GET {kind}/{name}"):
                res = self.resource(api_version, kind)
                return _retrying(lambda: res.get(name=name, namespace=namespace).to_dict())
        except (NotFoundError, ResourceNotFoundError):
            return None
        except ParityError:
            raise
        except Exception as exc:  # noqa: BLE001 - a 4xx: the API's message is what matters
            raise CheckFailed(f"GET {kind}/{name}: {_api_message(exc)}") from None

    def list(self, api_version: str, kind: str, namespace: str | None = None,
             selector: str | None = None) -> list[dict]:
        # lazy: kubernetes costs ~0.3 s to import; only a call to the API needs it
        from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError

        try:
            with self._call(f"LIST {kind}"):
                res = self.resource(api_version, kind)
                items = _retrying(lambda: res.get(namespace=namespace,
                                                  label_selector=selector).to_dict())
        except (ResourceNotFoundError, NotFoundError):
            return []  # e.g. Gateway API CRDs not installed yet, or removed since discovery
        except ParityError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise CheckFailed(f"LIST {kind}: {_api_message(exc)}") from None
        return items.get("items") or []

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None,
               propagation: str = "Background") -> None:
        # lazy: kubernetes costs ~0.3 s to import; only a call to the API needs it
        from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError

        try:
            with self._call(f"DELETE {kind}/{name}"):
                res = self.resource(api_version, kind)
                _retrying(lambda: res.delete(name=name, namespace=namespace,
                                             body={"propagationPolicy": propagation}))
        except (NotFoundError, ResourceNotFoundError):
            pass
        except ParityError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise CheckFailed(f"DELETE {kind}/{name}: {_api_message(exc)}") from None


def _transient(exc: Exception) -> bool:
    """An answer that means "ask again in a moment": 429, 503, or a resource whose
    storage is still being set up right after its CRD became Established."""
    status = getattr(exc, "status", None)
    text = str(getattr(exc, "body", None) or exc)
    return status in (429, 503) or "(re)initializing" in text


def _retrying(call, attempts: int = 5):
    """``call()``, again after 0.2, 0.4, 0.8 and 1.6 s while the answer is transient."""
    for attempt in range(attempts):
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - re-raised unless transient
            if attempt == attempts - 1 or not _transient(exc):
                raise
            time.sleep(0.2 * 2 ** attempt)


def _api_message(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if body:
        try:
            return json.loads(body).get("message", str(body))
        except (ValueError, AttributeError):
            return str(body)[:500]
    return str(exc)[:500]
