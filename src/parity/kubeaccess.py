"""The only way parity reaches a Kubernetes API, and the guard around it.

parity talks to exactly one cluster: its own kind cluster, through its own
kubeconfig file ``.parity/kind/kubeconfig``. It never reads ``~/.kube/config``,
``$KUBECONFIG`` or the current context of any other file, and before the first
request it checks that file (:func:`check_kubeconfig`): a regular file of at most
:data:`MAX_KUBECONFIG_BYTES`, whose current context is the parity cluster's
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

Subprocesses that could reach a cluster (kind, kubectl) get :func:`subprocess_env`:
``KUBECONFIG`` naming only parity's file, ``KUBECACHEDIR`` in parity's state
directory (never ``~/.kube/cache``), and no proxy variables.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import CheckFailed, InputError, ParityError, PrerequisiteMissing

FIELD_MANAGER = "parity"
#: kind's kubeconfig is a few KiB; a larger file is not one parity wrote.
MAX_KUBECONFIG_BYTES = 1024 * 1024
#: Seconds to open a connection to the API server (it is on this machine).
CONNECT_SECONDS = 5.0
#: Seconds to wait for an answer once connected (a server-side apply of a large CRD
#: takes a few).
READ_SECONDS = 30.0
#: Fresh connection attempts after the first; reads are retried once, and only for
#: idempotent requests.
CONNECT_RETRIES = 2
#: Environment variables that would send a request to a proxy instead of the
#: loopback API server (curl's, Go's and Python's spellings; any case).
PROXY_VARS = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "FTP_PROXY", "NO_PROXY")
#: The loopback names a kind cluster's API server is reached by.
LOOPBACK_NO_PROXY = "127.0.0.1,localhost,::1"

_REGENERATE = ("parity writes this file itself: remove it (rm {path}); the next "
               "inv up or inv down --mode kind exports it anew from kind")


def context_name(cluster: str) -> str:
    """kind names the context of cluster X ``kind-X``."""
    return f"kind-{cluster}"


# --------------------------------------------------------------------------- reading

class Unreadable(Exception):
    """A file that is not a small regular file; ``reason`` says what it is."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


_FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
               (stat.S_ISSOCK, "a socket"))


def read_small_file(path: Path, limit: int) -> bytes:
    """The bytes of ``path`` when it is a regular file of at most ``limit`` bytes.

    Never blocks (a FIFO is opened non-blocking and refused), never reads a device
    (``/dev/zero``) or more than ``limit + 1`` bytes; raises :class:`Unreadable`."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise Unreadable("does not exist") from None
    except OSError as exc:
        raise Unreadable(f"cannot be opened ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            what = next((name for test, name in _FILE_KINDS if test(st.st_mode)),
                        "not a file")
            raise Unreadable(f"is {what}, not a regular file")
        if st.st_size > limit:
            raise Unreadable(f"is {st.st_size} bytes, more than the {limit} bytes "
                             "parity reads from a kubeconfig")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(65536, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise Unreadable(f"is more than the {limit} bytes parity reads from a kubeconfig")
        return b"".join(chunks)
    except OSError as exc:
        raise Unreadable(f"cannot be read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- checking

@dataclass
class Target:
    """What the checked kubeconfig says about parity's cluster: where, and how."""

    server: str
    ca_data: str | None = None
    ca_file: str | None = None
    insecure: bool = False
    tls_server_name: str | None = None
    cert: tuple[str, bytes | str] | None = None   # ("data", PEM bytes) or ("file", path)
    key: tuple[str, bytes | str] | None = None
    token: str | None = None
    data: dict = field(default_factory=dict)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def check_kubeconfig(path: Path, cluster: str) -> dict:
    """Parse ``path`` and return it if it points at parity's cluster; refuse otherwise."""
    return load_target(path, cluster).data


def load_target(path: Path, cluster: str) -> Target:
    if not path.exists() and not path.is_symlink():
        raise InputError(f"no kubeconfig for the parity cluster at {path}",
                         hint="create the cluster with inv up --mode kind")
    try:
        raw = read_small_file(path, MAX_KUBECONFIG_BYTES)
    except Unreadable as exc:
        raise InputError(f"parity's kubeconfig {exc.reason}", where=str(path),
                         hint=_REGENERATE.format(path=path)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"parity's kubeconfig is not UTF-8 text ({exc.reason})",
                         where=str(path), hint=_REGENERATE.format(path=path)) from None
    return check_text(text, str(path), cluster, base=path.parent)


def check_text(text: str, where: str, cluster: str, base: Path | None = None) -> Target:
    """Check a kubeconfig's text (``where``: the file, or the command that printed it)
    and return what parity may use of it."""
    from . import yamlio
    from .nodes import Loc, Map, Scalar, Seq, to_plain

    hint = _REGENERATE.format(path=where)
    try:
        root = yamlio.parse_text(text, where, "kubeconfig")
    except InputError as exc:
        exc.hint = hint
        raise InputError(exc.message, where=exc.where, path=exc.path, hint=hint) from None
    want = context_name(cluster)

    def at(node) -> str:
        if node is None:
            return where
        return f"{where}:{node.line if isinstance(node, Loc) else node.loc.line}"

    def refuse(message: str, node=None, key: str | None = None, why_hint: str = hint):
        raise InputError(message, where=at(node), path=key, hint=why_hint)

    current = root.get("current-context")
    name = current.value if isinstance(current, Scalar) else None
    if name != want:
        shown = f"context '{name}'" if isinstance(name, str) else "a kubeconfig without a " \
            "current-context"
        refuse(f"refusing to use {shown}: parity only talks to its own kind cluster, "
               f"context '{want}'", current if current is not None else root,
               why_hint="parity never uses your default kubeconfig or current context; "
                        "run inv down --mode kind and inv up --mode kind to recreate its file")

    def entries(section: str, body: str) -> dict[str, Map]:
        """name -> the entry's ``body`` mapping, for one of clusters/users/contexts."""
        node = root.get(section)
        if node is None:
            return {}
        if not isinstance(node, Seq):
            refuse(f"must be a list, not a {node.kind}", node, section)
        out = {}
        for i, item in enumerate(node.items):
            label = f"{section}[{i}]"
            if not isinstance(item, Map):
                refuse(f"must be a mapping, not a {item.kind}", item, label)
            n = item.get("name")
            key = n.value if isinstance(n, Scalar) and isinstance(n.value, str) else None
            if key is None:
                refuse("has no name", item, label)
            inner = item.get(body)
            if inner is None:
                inner = Map({}, {}, item.hist)
            if not isinstance(inner, Map):
                refuse(f"must be a mapping, not a {inner.kind}", inner,
                       f"{section}[{key}].{body}")
            out[key] = inner
        return out

    clusters, users, contexts = (entries("clusters", "cluster"), entries("users", "user"),
                                 entries("contexts", "context"))
    # nothing in the file may run a command, fetch credentials elsewhere or use a proxy
    for uname, user in users.items():
        for key, why in (("exec", "a credential plugin runs a command on every use"),
                         ("auth-provider", "an auth provider fetches credentials from "
                                           "outside the cluster")):
            if user.get(key) is not None:
                refuse(f"refusing '{key}' in parity's kubeconfig: {why}; parity's kind "
                       "cluster authenticates with the client certificate kind writes",
                       user.keylocs.get(key) or user.get(key), f"users[{uname}].user.{key}")
    for cname, entry in clusters.items():
        if entry.get("proxy-url") is not None:
            refuse("refusing 'proxy-url' in parity's kubeconfig: parity's API server is "
                   "on this machine's loopback and is reached directly, never through a "
                   "proxy", entry.keylocs.get("proxy-url") or entry.get("proxy-url"),
                   f"clusters[{cname}].cluster.proxy-url")
    context = contexts.get(want)
    if context is None:
        refuse(f"has no context named '{want}'", root.get("contexts") or root, "contexts")

    def ref(key: str, table: dict[str, Map], section: str) -> tuple[str, Map]:
        node = context.get(key)
        value = node.value if isinstance(node, Scalar) else None
        if not isinstance(value, str) or value not in table:
            refuse(f"names {section[:-1]} '{value}', which is not in {section}",
                   node or context, f"contexts[{want}].context.{key}")
        return value, table[value]

    cname, entry = ref("cluster", clusters, "clusters")
    uname, user = ref("user", users, "users")
    server_node = entry.get("server")
    server = server_node.value if isinstance(server_node, Scalar) else None
    try:
        parts = urlsplit(server) if isinstance(server, str) else None
        host = (parts.hostname or "") if parts else ""
        port = parts.port if parts else None
    except ValueError:
        parts, host, port = None, "", None
    if not (parts and parts.scheme == "https" and _loopback(host) and port
            and not parts.username and not parts.password):
        refuse(f"refusing to reach {server or 'an unnamed server'}: the parity cluster's "
               "API server is https on 127.0.0.1", server_node or entry,
               f"clusters[{cname}].cluster.server",
               why_hint="recreate the file with inv up --mode kind")

    def scalar(node_map: Map, key: str):
        node = node_map.get(key)
        return node.value if isinstance(node, Scalar) else None

    def blob(key_data: str, key_file: str, label: str) -> tuple[str, bytes | str] | None:
        data, file = scalar(user, key_data), scalar(user, key_file)
        if data:
            try:
                return "data", base64.b64decode("".join(str(data).split()), validate=True)
            except ValueError:
                refuse("is not base64", user.get(key_data), f"users[{label}].user.{key_data}")
        if file:
            p = Path(str(file))
            return "file", str(p if p.is_absolute() or base is None else base / p)
        return None

    target = Target(server=server.rstrip("/"), data=to_plain(root))
    ca = scalar(entry, "certificate-authority-data")
    if ca:
        try:
            target.ca_data = base64.b64decode("".join(str(ca).split()),
                                              validate=True).decode("ascii")
        except (ValueError, UnicodeDecodeError):
            refuse("is not base64 of a PEM certificate", entry.get("certificate-authority-data"),
                   f"clusters[{cname}].cluster.certificate-authority-data")
    ca_file = scalar(entry, "certificate-authority")
    if ca_file and not ca:
        p = Path(str(ca_file))
        target.ca_file = str(p if p.is_absolute() or base is None else base / p)
    target.insecure = scalar(entry, "insecure-skip-tls-verify") is True
    target.tls_server_name = scalar(entry, "tls-server-name") or None
    target.cert = blob("client-certificate-data", "client-certificate", uname)
    target.key = blob("client-key-data", "client-key", uname)
    token = scalar(user, "token")
    target.token = str(token) if token else None
    return target


# --------------------------------------------------------------------------- subprocesses

def subprocess_env(kubeconfig: Path | str, cache_dir: Path | str, *,
                   keep_proxy: bool = False, base: dict | None = None) -> dict[str, str]:
    """The environment for a kind or kubectl parity runs: ``KUBECONFIG`` naming only
    parity's file, ``KUBECACHEDIR`` (kubectl's discovery and HTTP cache, by default
    ``~/.kube/cache``) in parity's state, and no proxy for the loopback API server.

    ``keep_proxy``: for ``kind create cluster``, which hands the proxy variables to
    its nodes (they may need them to pull images): kept, with the loopback names
    added to ``NO_PROXY``."""
    env = dict(os.environ if base is None else base)
    proxies = {k: v for k, v in env.items() if k.upper() in PROXY_VARS}
    for k in proxies:
        del env[k]
    if keep_proxy:
        env.update({k: v for k, v in proxies.items() if k.upper() != "NO_PROXY"})
        if any(k.upper() != "NO_PROXY" for k in proxies):
            for k in ("NO_PROXY", "no_proxy"):
                old = [h for h in (proxies.get(k) or "").split(",") if h.strip()]
                env[k] = ",".join(old + [h for h in LOOPBACK_NO_PROXY.split(",")
                                         if h not in old])
    env.pop("KUBECACHEDIR", None)
    env["KUBECONFIG"] = str(kubeconfig)
    env["KUBECACHEDIR"] = str(cache_dir)
    return env


# --------------------------------------------------------------------------- the client

def _memory_discoverer():
    """The dynamic client's lazy discovery, kept in memory: the default writes it to
    ``$TMPDIR/osrcp-<md5 of the server URL>.json`` and reads it back from there (a
    shared, guessable path another local user could plant)."""
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
    import atexit
    import shutil

    tmp = tempfile.mkdtemp(prefix="parity-kube-")
    atexit.register(shutil.rmtree, tmp, True)
    fd, name = tempfile.mkstemp(dir=tmp)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return name


def _describe(exc: BaseException) -> str:
    """Why a request got no answer, in a few words, from urllib3's wrapped errors."""
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
                         + _REGENERATE.format(path=self.source)) from None
            raise
        except OSError as exc:
            raise self._unreachable(_describe(exc)) from None
        except ValueError as exc:
            import json

            if isinstance(exc, json.JSONDecodeError):
                raise CheckFailed(f"the parity cluster's API server {self.server} answered "
                                  f"{what} with something that is not JSON") from None
            raise

    @property
    def dynamic(self):
        if self._dynamic is None:
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
    import time

    for attempt in range(attempts):
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - re-raised unless transient
            if attempt == attempts - 1 or not _transient(exc):
                raise
            time.sleep(0.2 * 2 ** attempt)


def _api_message(exc: Exception) -> str:
    import json

    body = getattr(exc, "body", None)
    if body:
        try:
            return json.loads(body).get("message", str(body))
        except (ValueError, AttributeError):
            return str(body)[:500]
    return str(exc)[:500]
