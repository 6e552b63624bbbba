"""The kubeconfig guard: which file parity reads, and what it may contain.

parity talks to exactly one cluster: its own kind cluster, through its own
kubeconfig file ``.parity/kind/kubeconfig``. It never reads ``~/.kube/config``,
``$KUBECONFIG`` or the current context of any other file, and before the first
request :class:`~parity.lifecycle.kind.kube.Kube` checks that file
(:func:`check_kubeconfig`): a regular file of at most :data:`MAX_KUBECONFIG_BYTES`,
whose current context is the parity cluster's (``kind-parity-<stack>``), whose server
is an https URL on the loopback address, and which holds nothing that would reach
beyond that cluster or run a command: no ``exec`` credential plugin, no
``auth-provider``, no ``proxy-url``. Anything else is refused (exit 2, naming the
file, line and key) without a single connection.

Subprocesses that could reach a cluster (kind, kubectl) get :func:`subprocess_env`:
``KUBECONFIG`` naming only parity's file, ``KUBECACHEDIR`` in parity's state
directory (never ``~/.kube/cache``), and no proxy variables.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from ... import yamlio
from ...errors import InputError
from ...nodes import Loc, Map, Scalar, Seq, to_plain

#: kind's kubeconfig is a few KiB; a larger file is not one parity wrote.
MAX_KUBECONFIG_BYTES = 1024 * 1024
#: Environment variables that would send a request to a proxy instead of the
#: loopback API server (curl's, Go's and Python's spellings; any case).
PROXY_VARS = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "FTP_PROXY", "NO_PROXY")
#: The loopback names a kind cluster's API server is reached by.
LOOPBACK_NO_PROXY = "127.0.0.1,localhost,::1"

REGENERATE = ("parity writes this file itself: remove it (rm {path}); the next "
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
                         hint=REGENERATE.format(path=path)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"parity's kubeconfig is not UTF-8 text ({exc.reason})",
                         where=str(path), hint=REGENERATE.format(path=path)) from None
    return check_text(text, str(path), cluster, base=path.parent)


def check_text(text: str, where: str, cluster: str, base: Path | None = None) -> Target:
    """Check a kubeconfig's text (``where``: the file, or the command that printed it)
    and return what parity may use of it."""
    hint = REGENERATE.format(path=where)
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


#: The user's kubeconfig is read only to name its current context; a larger file is
#: skipped (kubectl's own files are far smaller).
USER_KUBECONFIG_LIMIT = 16 * 1024 * 1024


def _printable(text: str, limit: int = 80) -> str:
    clean = "".join(ch if ch.isprintable() else "?" for ch in text)
    return clean[:limit] + ("…" if len(clean) > limit else "")


def user_current_context(environ=None) -> tuple[str | None, list[str]]:
    """The current context of the user's kubeconfig, as kubectl would pick it (the
    first file of ``$KUBECONFIG``, a list, that sets one; else ``~/.kube/config``),
    and the entries that could not be read, with why. Reads only regular files of at
    most :data:`USER_KUBECONFIG_LIMIT` bytes, never blocks (a FIFO, ``/dev/zero``),
    never connects, never raises."""
    import yaml  # lazy: PyYAML only when doctor reads the user's kubeconfig

    env = os.environ if environ is None else environ
    value = env.get("KUBECONFIG") or ""
    if value.strip():
        paths = [Path(p) for p in value.split(os.pathsep) if p.strip()]
    else:
        try:
            paths = [Path.home() / ".kube" / "config"]
        except (RuntimeError, KeyError):  # no HOME and no passwd entry
            paths = []
    skipped: list[str] = []
    seen: set[Path] = set()
    for p in paths:
        if p in seen:
            continue
        seen.add(p)
        try:
            raw = read_small_file(p, USER_KUBECONFIG_LIMIT)
        except Unreadable as exc:
            if exc.reason != "does not exist":
                skipped.append(f"{_printable(str(p), 200)} {exc.reason}")
            continue
        try:
            data = yaml.load(raw.decode("utf-8"), Loader=getattr(yaml, "CSafeLoader",
                                                                  yaml.SafeLoader))
        except Exception as exc:  # noqa: BLE001 - anything in a file that is not ours
            why = "is not UTF-8" if isinstance(exc, UnicodeDecodeError) else \
                "is not valid YAML"
            skipped.append(f"{_printable(str(p), 200)} {why}")
            continue
        if data is None:
            continue
        if not isinstance(data, dict):
            skipped.append(f"{_printable(str(p), 200)} is not a kubeconfig (a "
                           f"{type(data).__name__}, not a mapping)")
            continue
        current = data.get("current-context")
        if isinstance(current, str) and current:
            return _printable(current), skipped
    return None, skipped
