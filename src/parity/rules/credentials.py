"""Credential rules: secrets given as plain values, one secret for two owners, and
a trust store variable that misses the local CA the model mounts."""

from __future__ import annotations

import re

from ..nodes import ListKey
from .base import Ctx, outside_refs, rule


CREDENTIAL = re.compile(r"(PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|"
                        r"ACCESS_?KEY|CREDENTIALS?|SIGNING_?KEY|ENCRYPTION_?KEY|(^|_)PW$|"
                        r"(^|_)PWD$)", re.I)
NOT_CREDENTIAL = re.compile(r"(_FILE|_PATH|_DIR|_ID|_NAME|_URL|_URI|PUBLIC|_LENGTH|_TTL|"
                            r"_ENABLED|_HEADER|_ISSUER|_ALGORITHM|_TYPE|_MODE|_REALM|_METHOD|"
                            r"_POLICY|_ROTATION|_EXPIRY|_EXPIRES|_LIFESPAN)$", re.I)
CREDENTIAL_FLAG = re.compile(r"^--?([\w.-]*(password|passwd|secret|token|api-?key|"
                             r"private-?key|access-?key|credentials?)[\w.-]*|"
                             r"(requirepass|masterauth|[\w.]*[-_]pass|pass))(=(.*))?$", re.I)
#: a credential flag inside a shell line (sh -c '… --requirepass x')
SHELL_CREDENTIAL = re.compile(r"(?:^|\s)--?([\w.-]*(?:password|passwd|secret|token|api-?key|"
                              r"requirepass|masterauth|[-_]pass))(?:=|\s+)(['\"]?)([^\s'\"]+)",
                              re.I)
#: a password written into SQL (CREATE ROLE … PASSWORD 'x')
SQL_PASSWORD = re.compile(r"(?i)\b(password)\s+'([^']+)'")
PRIVATE_KEY = re.compile(r"-----BEGIN ([A-Z]+ )?PRIVATE KEY-----")
CREDENTIAL_FILE = re.compile(r"(^|[._-])(pgpass|netrc|htpasswd|credentials?|secrets?|"
                             r"passwords?|id_rsa|id_ed25519|token)([._-]|$)")
PASSWORD_HASH = re.compile(r"(?m)^[\w.@-]+:(\$2[aby]\$\d\d\$|\$[156]\$|\{SHA\}|\$apr1\$)")


def looks_like_credential(key: str) -> bool:
    key = key.replace("-", "_").replace(".", "_")
    return bool(CREDENTIAL.search(key)) and not NOT_CREDENTIAL.search(key)


@rule("plain-credential", "a credential given as a plain value")
def plain_credential(c: Ctx):
    for name, svc in c.services.items():
        for key, value in (svc.get("env") or {}).items():
            if looks_like_credential(key) and not isinstance(value, dict) and \
                    str(value).strip():
                yield ("services", name, "env", key), (
                    f"{key} looks like a credential but is a plain value: it lands in the "
                    "compose file, a kind ConfigMap and every diff"), \
                    "declare it under secrets: (generate: N) and write {secret: NAME, key: KEY}"
    userinfo = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s/:@]+:([^\s/@]+)@", re.I)
    assignment = re.compile(r"(?im)^[ \t]*[\w.-]*(password|passwd|secret|token|api_?key)"
                            r"[\w.-]*[ \t]*[:=][ \t]*['\"]?([^\s'\"#]+)")
    for name in c.services:
        for path, value in c.strings(name):
            text = outside_refs(value)
            m = userinfo.search(text)
            if m and not m.group(1).startswith("$"):
                yield path, ("a URL carries a password in its user info "
                             f"('{m.group(0)[:m.start(1) - m.start(0)]}…@'): it lands in "
                             "the compose file, a ConfigMap and every diff"), \
                    "deliver the password as a secret ({secret: NAME, key: KEY}) and let " \
                    "the app build the URL"
                continue
            if path[2] == "files":
                m = assignment.search(value) or SQL_PASSWORD.search(value)
                # raw: a $${VAR} placeholder is fine
                if m and not m.group(2).startswith(("$", "{", "<", "%")) and \
                        m.group(2).strip() and m.group(2) not in ("null", "none", "''"):
                    yield path, (f"the file sets {m.group(1).lower()} to a plain value: files "
                                 "are ConfigMaps in kind and plain files in compose"), \
                        "mount the value with secret_files (a Secret), or read it from a " \
                        "secret env variable"
    for name, svc in c.services.items():
        for field_name in ("command", "args"):
            items = svc.get(field_name) or []
            for i, item in enumerate(items):
                m = CREDENTIAL_FLAG.match(str(item))
                if not m:
                    inline = SHELL_CREDENTIAL.search(str(item))
                    if inline and not inline.group(3).startswith(("$", "-", "/")):
                        yield ("services", name, field_name, i), (
                            f"the shell line gives --{inline.group(1)} a plain value: it shows "
                            "in the process list, the compose file and the pod spec"), \
                            f"write --{inline.group(1)} \"$VAR\" with VAR a secret env variable"
                        break
                    continue
                value = m.group(5) if m.group(4) else (items[i + 1] if i + 1 < len(items)
                                                       else "")
                if value and not str(value).startswith(("$", "-", "/")):
                    yield ("services", name, field_name, i), (
                        f"{m.group(1)} is given on the command line as a plain value: it "
                        "shows in the process list, the compose file and the pod spec"), \
                        "put it in a secret env variable and pass \"$VAR\" (or read it " \
                        "from a secret file)"
                    break
        for key, value in ((svc.get("build") or {}).get("args") or {}).items():
            m = userinfo.search(str(value))
            if (looks_like_credential(key) and str(value).strip() and
                    not str(value).startswith("$")) or (m and not m.group(1).startswith("$")):
                yield ("services", name, "build", "args", key), (
                    f"build arg {key} carries a credential: build args stay in the image "
                    "history (docker history) of every image built from it"), \
                    "use a BuildKit secret mount, or fetch without credentials"
        for f in svc.get("files") or []:
            base = f.get("path", "").rsplit("/", 1)[-1].lower()
            content = f.get("content") or ""
            if PRIVATE_KEY.search(content) or (CREDENTIAL_FILE.search(base) and
                                               content.strip()):
                yield ("services", name, "files", ListKey(f["name"]), "content"), (
                    f"file {f['name']} ({f.get('path')}) holds credentials: files are "
                    "ConfigMaps in kind and plain files in compose"), \
                    "deliver it with secret_files from a secret"
                continue
            if PASSWORD_HASH.search(content):
                yield ("services", name, "files", ListKey(f["name"]), "content"), (
                    f"file {f['name']} holds password hashes: a ConfigMap in kind, a plain "
                    "file in compose, readable to anyone who can read the render"), \
                    "mount it with secret_files from a secret"
    for sname, secret in (c.data.get("secrets") or {}).items():
        for key, spec in ((secret or {}).get("keys") or {}).items():
            if isinstance(spec, dict) and "value" in spec and looks_like_credential(key):
                yield ("secrets", sname, "keys", key, "value"), (
                    f"secret key '{key}' looks like a credential but has a fixed value "
                    "(declared values are meant for non-sensitive defaults)"), \
                    "use generate: N so each clone gets its own value"


@rule("shared-credential", "one secret value for two people or two clients")
def shared_credential(c: Ctx):
    ident = c.data.get("identity") or {}
    owners: dict[tuple, str] = {}
    entries = [(("identity", "users", u, "password"), f"user {u}", (v or {}).get("password"))
               for u, v in (ident.get("users") or {}).items()]
    entries += [(("identity", "clients", k, "secret"), f"client {k}", (v or {}).get("secret"))
                for k, v in (ident.get("clients") or {}).items()]
    for path, who, ref in entries:
        if not isinstance(ref, dict):
            continue
        key = (ref.get("secret"), ref.get("key"))
        if key in owners:
            yield path, (f"{who} uses secret {key[0]}/{key[1]}, which {owners[key]} uses "
                         "too: one leak or rotation hits both"), \
                f"give {who} its own key (secrets.{key[0]}.keys)"
        owners.setdefault(key, who)


#: env keys whose value is a trust store path (the variable names the tools read)
CA_KEY = re.compile(r"^(SSL_CERT_FILE|REQUESTS_CA_BUNDLE|CURL_CA_BUNDLE|NODE_EXTRA_CA_CERTS|"
                    r"GRPC_DEFAULT_SSL_ROOTS_FILE_PATH|GIT_SSL_CAINFO|AWS_CA_BUNDLE|"
                    r"[A-Z0-9_]*_CA_(FILE|CERT|BUNDLE|PATH))$")


def _mounted(svc: dict) -> set[str]:
    """Paths a service gets from the model: its files, secret files and CA bundle."""
    paths = {f.get("path") for f in svc.get("files") or []}
    paths |= {f.get("path") for f in svc.get("secret_files") or []}
    if svc.get("ca_bundle"):
        paths.add(svc["ca_bundle"])
    return {p for p in paths if p}


@rule("ca-bundle-path", "a trust store variable that misses the local CA the model mounts")
def ca_bundle_path(c: Ctx):
    for name, svc in c.services.items():
        bundle = svc.get("ca_bundle")
        if not bundle:
            continue
        mounted = _mounted(svc)
        for key, value in (svc.get("env") or {}).items():
            if not isinstance(value, str) or not CA_KEY.match(key) or "${" in value:
                continue
            if value.startswith("/") and value not in mounted:
                yield ("services", name, "env", key), (
                    f"{key} points at {value}, but parity mounts the local CA at "
                    f"ca_bundle {bundle}: {name} does not trust the edge's certificate "
                    "(the issuer, every https route) in any mode"), \
                    f"set {key}: {bundle} (or move ca_bundle)"
