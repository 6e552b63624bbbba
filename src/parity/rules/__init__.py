"""Model rules: mistakes both modes make the same way, so no diff between them can
show it, and what a cluster needs that compose never asks for.

The parity diff catches a value that differs between compose and kind. It cannot
catch a literal browser URL written into an env value, a floating image tag or a
service that reaches another without waiting for it: both modes carry the same
mistake. Each rule here is one small function over the merged model of one
selection (mode + phase), with an id, a message naming ``file:line`` (from the
provenance of the value) and the fix. ``inv lint`` and ``nox -s validate`` run them;
docs/errors.md lists every rule.

A team may waive a waivable rule for a path, with a reason and an end date, under
``waivers:`` in ``base/parity-policy.yaml``; a waiver is shown on every run and
fails again once it expires (as accepted differences do).

Rules with ``modes=("kind",)`` are cluster rules: what the kind lane needs and
compose would silently tolerate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any, Callable, Iterator

from .. import templates
from ..errors import InputError, did_you_mean
from ..nodes import ListKey, Map, Node, Scalar, Seq, format_path

POLICY_FILE = Path("base") / "parity-policy.yaml"


@dataclass(frozen=True)
class Violation:
    rule: str
    path: str            # dotted model path
    where: str           # file:line of the value (or of its nearest parent)
    message: str
    fix: str
    waiver: "Waiver | None" = None

    @property
    def failing(self) -> bool:
        return self.waiver is None or self.waiver.expired

    def __str__(self) -> str:
        return f"{self.where}: {self.path}: [{self.rule}] {self.message}"

    def render(self) -> str:
        text = f"{self}\n  next: {self.fix}"
        if self.waiver is not None:
            w = self.waiver
            state = f"EXPIRED on {w.until}" if w.expired else f"until {w.until}"
            text += f"\n  waived by {w.where} ({state}): {w.reason}"
        return text

    def as_json(self) -> dict:
        out = {"rule": self.rule, "path": self.path, "where": self.where,
               "message": self.message, "fix": self.fix, "failing": self.failing}
        if self.waiver is not None:
            out["waiver"] = {"where": self.waiver.where, "until": self.waiver.until.isoformat(),
                             "reason": self.waiver.reason, "expired": self.waiver.expired}
        return out


@dataclass(frozen=True)
class Waiver:
    rule: str
    path: str
    reason: str
    until: date
    where: str
    expired: bool = False

    def matches(self, v: Violation) -> bool:
        from ..diff import glob_pattern

        return v.rule == self.rule and glob_pattern(self.path).fullmatch(v.path) is not None


@dataclass(frozen=True)
class RuleDef:
    id: str
    title: str
    fn: Callable[["Ctx"], Iterator[tuple[tuple, str, str]]]
    modes: tuple[str, ...] = ("compose", "kind")
    waivable: bool = True


RULES: list[RuleDef] = []


def rule(id: str, title: str, modes: tuple[str, ...] = ("compose", "kind"),
         waivable: bool = True):
    def add(fn):
        RULES.append(RuleDef(id, title, fn, modes, waivable))
        return fn

    return add


@dataclass
class Ctx:
    """What a rule reads: the merged tree (provenance), its plain data restricted to
    the enabled services, the typed stack and the repository root."""

    root: Path
    tree: Map
    data: dict
    stack: Any
    services: dict = field(default_factory=dict)
    layers: list = field(default_factory=list)
    #: (context, Dockerfile) -> the source lines it copies, read once per check
    sources: dict = field(default_factory=dict)

    def where(self, path: tuple) -> str | None:
        """file:line of ``path`` in the merged tree, or None when absent."""
        from ..model import locate

        node, loc = locate(self.tree, path)
        if node is None:
            return None
        return str(node.loc if node.loc.layer != "default" else loc)

    def build_contexts(self) -> Iterator[tuple[str, dict, Path]]:
        """(service, build, resolved context) of every build whose context is a
        directory inside the repository (the model refuses the others: model._check_images)."""
        root = self.root.resolve()
        for name, svc in self.services.items():
            b = svc.get("build")
            if not b:
                continue
            ctx = (root / b["context"]).resolve()
            if ctx.is_relative_to(root) and ctx.is_dir():
                yield name, b, ctx

    def strings(self, name: str) -> Iterator[tuple[tuple, str]]:
        """(path, raw string) of every env value and file content of a service."""
        svc = self.services[name]
        for key, value in (svc.get("env") or {}).items():
            if isinstance(value, str):
                yield ("services", name, "env", key), value
        for f in svc.get("files") or []:
            yield ("services", name, "files", ListKey(f["name"]), "content"), f["content"]


_REF = re.compile(r"\$\$\{|\$\{[^}]*\}")


def _outside_refs(text: str) -> str:
    """``text`` with reference templates and ``$${`` escapes blanked out."""
    return _REF.sub(lambda m: " " * len(m.group(0)), text)


# --------------------------------------------------------------------------- model rules

BROWSER_KEY = re.compile(r"PUBLIC|BROWSER|REDIRECT|ORIGIN|CALLBACK|ISSUER|COOKIE|WEB_URL",
                         re.I)


def _identity_strings(c: Ctx) -> Iterator[tuple[tuple, str]]:
    """The browser URIs of the realm's clients (identity.clients.*)."""
    for cid, client in ((c.data.get("identity") or {}).get("clients") or {}).items():
        for f in ("redirect_uris", "web_origins", "post_logout_redirect_uris"):
            for i, value in enumerate((client or {}).get(f) or []):
                if isinstance(value, str):
                    yield ("identity", "clients", cid, f, i), value


@rule("literal-browser-url", "a browser URL or the stack's domain written literally")
def _literal_browser_url(c: Ctx):
    domain = c.stack.domain
    pat = re.compile(r"(?<![\w-])\.?((?:[a-z0-9-]+\.)*" + re.escape(domain) + r")(?![\w-])",
                     re.I)
    # a browser URL assembled by hand around the domain reference
    built = re.compile(r"https?://[\w.-]*\$\{stack:domain\}(:\d+)?", re.I)
    loopback = re.compile(r"(?:\b[a-z][a-z0-9+.-]*://|(?<![\w.-]))(localhost|127\.0\.0\.11|127\.0\.0\.1|"
                          r"\[::1\]|host\.docker\.internal|host\.containers\.internal|"
                          r"gateway\.docker\.internal)(?::(\d+))?(?![\w.-])", re.I)
    routes = {r.host: r.name for r in c.stack.routes().values()}
    strings = [(n, path, value) for n in c.services for path, value in c.strings(n)]
    strings += [(None, path, value) for path, value in _identity_strings(c)]
    for name, path, value in strings:
        text = _outside_refs(value)
        m = pat.search(text)
        if m:
            host = m.group(1).lower()
            sub = host[: -len(domain)].rstrip(".")
            ref = f"${{route:{routes[sub]}}}" if sub in routes else "${stack:domain}"
            yield path, (f"'{m.group(0)}' is written literally: it stays the same "
                         f"when the domain or the https port changes, in every mode"), \
                f"write {ref} (browser URLs follow stack.domain and the edge's port)"
            continue
        m = built.search(value)
        if m:
            yield path, (f"'{m.group(0)}' builds a browser URL by hand around "
                         "${stack:domain}: its scheme, host and port do not follow the "
                         "routes and the edge's https port"), \
                "write ${route:NAME} (the route's browser URL, port included)"
            continue
        m = loopback.search(text)
        if not m:
            continue
        key = str(path[3]) if len(path) > 3 and path[2] == "env" else ""
        own = {p["port"] for p in (c.services.get(name) or {}).get("ports") or []}
        if m.group(2) and int(m.group(2)) in own and SELF_KEY.search(key):
            continue  # the service's own CLI talking to it (BAO_ADDR, …): fine
        what = ("Docker's embedded DNS server, which only compose networks have (kind "
                "pods ask CoreDNS)" if m.group(1) == "127.0.0.11" else
                "the Docker host" if "internal" in m.group(1).lower()
                else "the container itself (in compose and kind alike), never another "
                     "service or the browser's machine")
        yield path, f"'{m.group(0)}' reaches {what}", \
            "use ${route:NAME} for a browser URL or ${service:NAME.PORT} inside"


SELF_KEY = re.compile(r"(^|_)(ADDR|LISTEN|BIND|HEALTHCHECK)(_|$)", re.I)


def _service_names(c: Ctx) -> dict[str, dict[str, int]]:
    return {n: {p["name"]: p["port"] for p in s.get("ports") or []}
            for n, s in c.services.items()}


HOST_KEY = re.compile(r"(^|_)(HOST|HOSTNAME|ADDR|ADDRESS|SERVER|ENDPOINT|URL|URI|DSN)$")


@rule("literal-service-address", "another service's address written literally")
def _literal_service_address(c: Ctx):
    names = _service_names(c)
    if not names:
        return
    alt = "|".join(sorted((re.escape(n) for n in names), key=len, reverse=True))
    ns = re.escape(c.stack.namespace)
    hostport = re.compile(rf"(?<![\w.-])({alt})(?:\.{ns}(?:\.svc(?:\.cluster\.local)?)?)?"
                          rf":(\d+)(?![\d])")
    url = re.compile(rf"\b[a-z][a-z0-9+.-]*://({alt})(?:\.{ns}(?:\.svc(?:\.cluster\.local)?)?)?"
                     rf"(?=[/:?#]|$)")
    container = re.compile(rf"(?<![\w.-]){re.escape(c.stack.name)}[-_]({alt})[-_]\d+(?![\w.-])")
    pod = re.compile(rf"(?<![\w.-])({alt})-\d+\.({alt})(?![\w-])")
    for name in c.services:
        for path, value in c.strings(name):
            text = _outside_refs(value)
            m = pod.search(text)
            if m:
                yield path, (f"'{m.group(0)}' is the DNS name of one pod of a StatefulSet "
                             "behind a headless Service: compose has no such name, and the "
                             f"kind render gives {m.group(1)} a normal Service"), \
                    f"write ${{host:{m.group(1)}}} (or ${{service:{m.group(1)}.PORT}})"
                continue
            m = container.search(text)
            if m:
                yield path, (f"'{m.group(0)}' is a compose container name of {m.group(1)}: "
                             "no such host in kind, and compose renames it with the "
                             "project"), f"write ${{host:{m.group(1)}}}"
                continue
            m = hostport.search(text)
            if m and int(m.group(2)) in names[m.group(1)].values():
                port = next(p for p, n in names[m.group(1)].items() if n == int(m.group(2)))
                yield path, (f"'{m.group(0)}' is {m.group(1)}'s address written literally; it "
                             "is only right where that name resolves (compose DNS or "
                             "one namespace)"), \
                    f"write ${{service:{m.group(1)}.{port}}}"
                continue
            m = url.search(text)
            if m:
                yield path, (f"'{m.group(0)}' names service {m.group(1)} literally"), \
                    f"write ${{host:{m.group(1)}}} (or ${{service:{m.group(1)}.PORT}})"
                continue
            key = path[3] if path[2] == "env" else ""
            bare = text.strip()
            target = bare.split(".", 1)[0] if bare.endswith(
                (f".{c.stack.namespace}.svc.cluster.local", f".{c.stack.namespace}.svc",
                 f".{c.stack.namespace}")) else bare
            if key and HOST_KEY.search(key) and target in names and target != name:
                yield path, (f"'{bare}' is the host of service {target} written literally"), \
                    f"write ${{host:{target}}}"


FLOATING = {"latest", "stable", "edge", "main", "master", "nightly", "dev", "current", "lts",
            "alpine", "slim", "bookworm"}


def floating_reason(image: str) -> str | None:
    """Why ``image`` may change under the same name, or None when pinned."""
    if "@sha256:" in image:
        return None
    name = image.rsplit("/", 1)[-1]
    if ":" not in name:
        return "has no tag (it means :latest)"
    tag = name.rsplit(":", 1)[1]
    if tag.lower() in FLOATING:
        return f"uses the moving tag '{tag}'"
    if re.fullmatch(r"v?\d+(-[A-Za-z][\w.]*)?", tag):
        return f"tag '{tag}' names a major version only (every minor and patch release " \
               "replaces it)"
    return None


@rule("floating-image-tag", "an image pulled by a tag that moves")
def _floating_image_tag(c: Ctx):
    for name, svc in c.services.items():
        if svc.get("build"):
            # built here from its inputs: the tag is a local name, but a moving one
            # ('latest', or none) names whichever build ran last on this machine
            tag = svc["image"].split("@", 1)[0].rsplit("/", 1)[-1]
            if ":" not in tag or tag.rsplit(":", 1)[1].lower() in ("latest", "dev", "main"):
                yield ("services", name, "image"), (
                    f"'{svc['image']}' is built here under a moving tag: it names whichever "
                    "build ran last on this machine, so compose and kind may run different "
                    "builds and nothing says which"), \
                    "tag the build with a version (parity/api:0.1.0) and bump it with the code"
            continue
        why = floating_reason(svc["image"])
        if why:
            yield ("services", name, "image"), f"'{svc['image']}' {why}: compose and kind " \
                f"may run different code on different days", \
                "pin a full version (postgres:16.4-bookworm) or a digest (@sha256:…)"
    kind = (c.data.get("stack") or {}).get("kind") or {}
    for part in ("node", "edge"):
        spec = kind.get(part) or {}
        if spec.get("image") and not spec.get("build"):
            why = floating_reason(spec["image"])
            if part == "node" and not why and "@sha256:" not in spec["image"]:
                why = ("has no digest: kind pins its node images by digest, and a tag can "
                       "be pushed again")
            if why:
                yield ("stack", "kind", part, "image"), f"'{spec['image']}' {why}", \
                    "pin a full version or a digest"
    root = c.root.resolve()
    for name, svc in c.services.items():
        b = svc.get("build")
        if not b:
            continue
        df = (root / b["context"] / (b.get("dockerfile") or "Dockerfile")).resolve()
        if not df.is_relative_to(root):
            continue
        try:
            from ..images import dockerfile_parents

            parents = dockerfile_parents(df.read_text(encoding="utf-8"), b.get("args") or {},
                                         b.get("target"))
        except (OSError, UnicodeDecodeError):
            continue
        text = df.read_text(encoding="utf-8")
        rel = df.relative_to(root)
        for parent in parents:
            why = floating_reason(parent)
            if why and not parent.startswith(("parity-", "parity/")):
                line = next((i for i, ln in enumerate(text.splitlines(), 1)
                             if parent in ln), 0)
                at = f"{rel}:{line}" if line else str(rel)
                yield ("services", name, "build"), (f"{at} builds FROM '{parent}', "
                                                    f"which {why}"), \
                    "pin the base image's full version or digest in the Dockerfile"
                break


def _closure(services: dict) -> dict[str, set[str]]:
    """Every service each service reaches through depends_on, itself excluded.
    Iterative, so a chain of thousands of services cannot exhaust the recursion
    limit."""
    out: dict[str, set[str]] = {}

    def direct(n: str) -> list:
        ds = (services.get(n) or {}).get("depends_on") or []
        return list(ds) if isinstance(ds, list) else []

    for n in services:
        found: set = set()
        todo = direct(n)
        while todo:
            d = todo.pop()
            if d == n or d in found:
                continue
            found.add(d)
            if d in out:  # already complete: take it whole
                found |= out[d] - {n}
                continue
            todo.extend(direct(d))
        out[n] = found
    return out


@rule("undeclared-dependency", "a service reaches another without depending on it")
def _undeclared_dependency(c: Ctx):
    reach = _closure(c.services)
    for name in c.services:
        for path, value in c.strings(name):
            try:
                refs = templates.parse(value)
            except templates.TemplateError:
                continue  # reported by the model's validation
            for ref in refs:
                if ref.kind not in ("service", "host", "port") or ref.target == name:
                    continue
                if ref.target in c.services and ref.target not in reach[name]:
                    deps = c.where(("services", name, "depends_on"))
                    note = f" (its depends_on is set at {deps})" if deps else ""
                    yield path, (f"{name} reaches {ref.target} ({ref.text}) but does not "
                                 f"depend on it, so it may start first in either mode"
                                 f"{note}"), \
                        (f"add {ref.target} to services.{name}.depends_on (in the layer of "
                         f"the phase that adds {ref.target})")
                    break


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
def _plain_credential(c: Ctx):
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
            text = _outside_refs(value)
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


SHELL_VAR = re.compile(r"(?<!\$)\$(?:\{([A-Za-z_][A-Za-z0-9_]*)([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
RUNTIME_VARS = {"HOME", "PATH", "HOSTNAME", "PWD", "OLDPWD", "USER", "LOGNAME", "SHELL",
                "TERM", "LANG", "SHLVL", "IFS", "PPID", "RANDOM", "SECONDS", "UID", "EUID",
                "LINENO", "OPTARG", "OPTIND", "BASH_SOURCE", "TMPDIR"}


@rule("undefined-variable", "a shell variable the service's environment never defines")
def _undefined_variable(c: Ctx):
    for name, svc in c.services.items():
        defined = set(svc.get("env") or {}) | RUNTIME_VARS
        lists = [((field_name,), svc.get(field_name) or []) for field_name in ("command", "args")]
        probe = ((svc.get("readiness") or {}).get("exec") or {}).get("command") or []
        lists.append((("readiness", "exec", "command"), probe))
        for field_path, items in lists:
            for i, item in enumerate(items):
                for m in SHELL_VAR.finditer(item):
                    var = m.group(1) or m.group(3)
                    if m.group(2) and m.group(2)[:2] in (":-", ":=", ":?", ":+"):
                        continue  # a default or an explicit check
                    if var not in defined and not _set_in_script(item, var):
                        yield ("services", name, *field_path, i), (
                            f"${var} is not in {name}'s env, so the shell expands it to "
                            "nothing (compose and kind alike)"), \
                            f"add {var} to services.{name}.env, or give a default: " \
                            f"${{{var}:-value}}"
                        break
        for f in svc.get("files") or []:
            content = f.get("content") or ""
            if not content.startswith("#!") or not re.search(
                    r"(?m)^\s*set\s+-[a-z]*u", content):
                continue  # only scripts that make an unset variable fatal (set -u)
            for m in SHELL_VAR.finditer(_outside_refs(content).replace("$$", "  ")):
                var = m.group(1) or m.group(3)
                if m.group(2) and m.group(2)[:2] in (":-", ":=", ":?", ":+", "-", "="):
                    continue
                if var not in defined and not _set_in_script(content, var):
                    yield ("services", name, "files", ListKey(f["name"]), "content"), (
                        f"script {f['name']} uses ${var} under set -u, but {name}'s env "
                        "has no such variable: the script stops there"), \
                        f"add {var} to services.{name}.env, or fix the name"
                    break
        for key, value in (svc.get("env") or {}).items():
            if not isinstance(value, str):
                continue
            m = re.search(r"(?<!\$)\$([A-Za-z_][A-Za-z0-9_]*)", _outside_refs(value))
            if m:
                yield ("services", name, "env", key), (
                    f"'${m.group(1)}' in an env value is never expanded: the process "
                    "receives the dollar sign literally"), \
                    "write the value, a reference template (${service:…}, ${route:…}) or " \
                    "a secret reference"


LISTEN_FLAG = re.compile(r"(listen|bind|host|addr|address|ip)[\w-]*[= ](127\.0\.0\.1|localhost|"
                         r"\[?::1\]?)(:\d+)?\b", re.I)
LISTEN_KEY = re.compile(r"(LISTEN|BIND)(_|$)|^(HOST|BIND_HOST|LISTEN_HOST|SERVER_HOST|"
                        r"HTTP_HOST|APP_HOST)$", re.I)


@rule("listens-on-loopback", "a service that listens on loopback only")
def _listens_on_loopback(c: Ctx):
    for name, svc in c.services.items():
        if svc.get("role") == "edge" or not svc.get("ports"):
            continue
        for field_name in ("command", "args"):
            items = [str(x) for x in svc.get(field_name) or []]
            for i, item in enumerate(items):
                if not item.startswith("-"):
                    continue
                text = item if "=" in item or i + 1 >= len(items) else f"{item} {items[i + 1]}"
                m = LISTEN_FLAG.search(text)
                if m and m.start() < len(item):
                    yield ("services", name, field_name, i), (
                        f"{name} listens on {m.group(2)} ('{m.group(0)}'): other services "
                        "and the edge cannot reach it, in compose and kind alike"), \
                        "listen on 0.0.0.0 (the container's network is already private)"
                    break
        for key, value in (svc.get("env") or {}).items():
            if isinstance(value, str) and LISTEN_KEY.search(key) and \
                    re.match(r"(127\.0\.0\.1|localhost|::1)(:\d+)?$", value.strip()):
                yield ("services", name, "env", key), (
                    f"{name} binds to {value} ({key}): nothing outside the container "
                    "reaches it"), "bind to 0.0.0.0"


def _set_in_script(script: str, var: str) -> bool:
    """``VAR=…``, ``export VAR``, ``read VAR`` or ``for VAR in`` inside the script."""
    return re.search(rf"(^|[\s;&|(]){var}=|\bexport\s+{var}\b|\bread\s+(-\w+\s+)*{var}\b|"
                     rf"\bfor\s+{var}\s+in\b", script) is not None


@rule("browser-domain", "a stack domain browsers do not resolve to this machine")
def _browser_domain(c: Ctx):
    domain = c.stack.domain.lower()
    if domain == "localhost" or domain.endswith(".localhost"):
        return
    why = ("'.local' is multicast DNS: browsers ask the network, not this machine"
           if domain.endswith(".local") else
           f"browsers resolve only *.localhost to loopback by themselves; "
           f"*.{domain} needs DNS or hosts-file entries on every developer's machine")
    yield ("stack", "domain"), f"stack.domain '{c.stack.domain}': {why}", \
        "use a name under .localhost (parity.localhost)"


@rule("internal-dns", "internal DNS names that do not resolve to the services")
def _internal_dns(c: Ctx):
    st = c.stack
    pattern = st.internal_dns
    probe = "svc-probe"
    if templates.dns_pattern_problem(pattern):
        return  # the model's validation refuses a malformed pattern
    name = templates.expand_dns(pattern, probe, st.namespace)
    if name.endswith("." + st.domain) or name == st.domain:
        yield ("stack", "internal_dns"), (
            f"'{pattern}' puts internal names under the browser domain {st.domain}: "
            f"{{service}}.{st.domain} is also a browser host the edge answers for (and "
            "resolves to loopback in kind), so a service reaches the edge, or itself, "
            "instead of the other service"), \
            "keep internal names off stack.domain: {service} (compose) or " \
            "{service}.{namespace}.svc.cluster.local (kind)"
    elif "{namespace}" not in pattern and re.search(
            rf"(^|\.){re.escape(st.namespace)}\.svc(\.|$)", pattern):
        yield ("stack", "internal_dns"), (
            f"'{pattern}' writes the namespace '{st.namespace}' out instead of "
            "{namespace}: it breaks when stack.namespace changes, and compose has no such "
            "names of its own"), "write {service}.{namespace}.svc.cluster.local"
    elif st.mode == "kind":
        ns = st.namespace
        ok = {probe, f"{probe}.{ns}", f"{probe}.{ns}.svc", f"{probe}.{ns}.svc.cluster.local"}
        if name in ok:
            return
        if "{service}" not in pattern:
            why = "it does not contain {service}, so every service gets the same name"
        elif "{namespace}" not in pattern and ".svc" in pattern:
            why = (f"the namespace is written into it, not {{namespace}}; the render puts "
                   f"the Services in '{ns}'")
        else:
            why = f"a Service '{probe}' in namespace '{ns}' is not reachable as '{name}'"
        yield ("stack", "internal_dns"), f"'{pattern}': {why}", \
            "use {service}.{namespace}.svc.cluster.local (or {service})"
    elif "{service}" not in pattern:
        # compose adds the name as a network alias of each service: any DNS name
        # works, as long as each service gets its own
        yield ("stack", "internal_dns"), (f"'{pattern}' does not contain {{service}}: "
                                          "every service would get the same name"), \
            "keep {service} in internal_dns"


ORIGIN_KEY = re.compile(r"ORIGINS?$", re.I)


@rule("origin-shape", "an origin with a path, or an open redirect")
def _origin_shape(c: Ctx):
    resolve = c.stack.resolve
    checks: list[tuple[tuple, str]] = []
    for name, svc in c.services.items():
        for key, value in (svc.get("env") or {}).items():
            if isinstance(value, str) and ORIGIN_KEY.search(key):
                checks.append((("services", name, "env", key), value))
    for cid, client in ((c.data.get("identity") or {}).get("clients") or {}).items():
        for i, value in enumerate((client or {}).get("web_origins") or []):
            checks.append((("identity", "clients", cid, "web_origins", i), value))
        for field in ("redirect_uris", "post_logout_redirect_uris"):
            for i, value in enumerate((client or {}).get(field) or []):
                v = str(value).strip()
                if v in ("*", "/*", "+") and field == "post_logout_redirect_uris" and v == "+":
                    continue
                if v in ("*", "/*") or re.match(r"https?://\*", v):
                    yield ("identity", "clients", cid, field, i), (
                        f"'{v}' lets the provider send codes (or users) to any site: an "
                        "open redirect"), "list the app's own URLs: ${route:web}/*"
    for path, value in checks:
        for item in str(value).split(","):
            item = item.strip()
            if not item or item in ("+",):
                continue
            if item == "*":
                yield path, ("'*' allows every origin: with credentials a browser refuses "
                             "it, without them any site may call"), \
                    "list the origins: ${route:web}"
                break
            try:
                resolved = resolve(item)
            except (KeyError, ValueError):
                continue
            if not re.fullmatch(r"https?://[^/\s]+", resolved):
                yield path, (f"'{item}' is not an origin ({resolved}): a browser sends "
                             "scheme://host[:port] and nothing else, so it never matches"), \
                    "drop the path and the trailing slash: ${route:web}"
                break


# settings that name one thing on a shared server (a database per service is a
# normal design, so database names are not among them)
SHARED_KEY = re.compile(r"(NAMESPACE|REALM|VHOST|CLUSTER_NAME|TENANT|ORG)$")


@rule("settings-disagree", "services that disagree on a shared setting")
def _settings_disagree(c: Ctx):
    by_key: dict[str, dict[str, list[str]]] = {}
    for name, svc in c.services.items():
        for key, value in (svc.get("env") or {}).items():
            if SHARED_KEY.search(key) and isinstance(value, (str, int)) and \
                    not isinstance(value, bool):
                by_key.setdefault(key, {}).setdefault(str(value), []).append(name)
    for key, values in sorted(by_key.items()):
        if len(values) < 2:
            continue
        ranked = sorted(values.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        top = ranked[0]
        for value, names in ranked[1:]:
            for name in names:
                yield ("services", name, "env", key), (
                    f"{name} sets {key} to '{value}', but {', '.join(top[1])} use "
                    f"'{top[0]}': they look for the same thing in different places"), \
                    f"use one value for {key} (or name them apart if they really differ)"


@rule("image-drift", "one image name or one build under different names")
def _image_drift(c: Ctx):
    def repo_tag(image: str) -> tuple[str, str]:
        ref = image.split("@", 1)[0]
        name, _, tag = ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "")
        return name, tag

    repos: dict[str, dict[str, list[str]]] = {}
    builds: dict[tuple, dict[str, list[str]]] = {}
    for name, svc in sorted(c.services.items()):
        repo, tag = repo_tag(svc["image"])
        repos.setdefault(repo, {}).setdefault(tag, []).append(name)
        b = svc.get("build")
        if b:
            key = (b["context"], b.get("dockerfile") or "Dockerfile", b.get("target"),
                   tuple(sorted((b.get("args") or {}).items())))
            builds.setdefault(key, {}).setdefault(svc["image"], []).append(name)
    for repo, tags in repos.items():
        if len(tags) > 1:
            ranked = sorted(tags.items(), key=lambda kv: (-len(kv[1]), kv[0]))
            for tag, names in ranked[1:]:
                for name in names:
                    yield ("services", name, "image"), (
                        f"{name} runs {repo}:{tag}, while {', '.join(ranked[0][1])} run "
                        f"{repo}:{ranked[0][0]}: one release, two versions"), \
                        f"use one tag for {repo}"
    recipes: dict[str, dict[tuple, list[str]]] = {}
    for key, images in builds.items():
        for image, names in images.items():
            recipes.setdefault(image, {}).setdefault(key, []).append(names)
    for image, by_recipe in recipes.items():
        if len(by_recipe) < 2:
            continue
        ranked = sorted(((k, [n for ns in v for n in ns]) for k, v in by_recipe.items()),
                        key=lambda kv: (-len(kv[1]), kv[1]))
        top_key, top_names = ranked[0]
        for key, names in ranked[1:]:
            for name in names:
                other = c.where(("services", top_names[0], "build")) or "?"
                yield ("services", name, "build"), (
                    f"{name} builds {image} from {key[0]}/{key[1]}, but "
                    f"{', '.join(top_names)} build that name from "
                    f"{top_key[0]}/{top_key[1]} ({other}): whichever builds last wins"), \
                    "give each recipe its own image name, or build both from one"


_INTERNAL_REF = re.compile(r"\$\{(service|host|port):[^}]*\}")
_URL_REF = re.compile(r"\b([a-z][a-z0-9+.-]*)://\$\{(service|host):([a-z][-a-z0-9]*)"
                      r"(?:\.([a-z0-9][-a-z0-9]*))?\}", re.I)
SCHEME_PROTOCOL = {"http": "http", "https": "http", "ws": "http", "wss": "http",
                   "grpc": "grpc", "grpcs": "grpc"}


@rule("internal-address-for-browser", "an address inside the runtime given to a browser")
def _internal_for_browser(c: Ctx):
    strings = [(path, value) for path, value in _identity_strings(c)]
    for name in c.services:
        for path, value in c.strings(name):
            if path[2] == "env" and BROWSER_KEY.search(str(path[3])):
                strings.append((path, value))
    for path, value in strings:
        m = _INTERNAL_REF.search(value)
        if m:
            yield path, (f"{m.group(0)} is an address inside the runtime, but this value "
                         "is used by a browser, which only reaches the edge"), \
                "write ${route:NAME} (or ${identity:issuer})"


@rule("scheme-mismatch", "a URL whose scheme does not fit the port it names")
def _scheme_mismatch(c: Ctx):
    ports = {n: {p["name"]: p.get("protocol", "tcp") for p in s.get("ports") or []}
             for n, s in c.services.items()}
    for name in c.services:
        for path, value in c.strings(name):
            for m in _URL_REF.finditer(value):
                scheme, kind, target, port = (m.group(1).lower(), m.group(2), m.group(3),
                                              m.group(4))
                if scheme in ("https", "wss", "grpcs"):
                    yield path, (f"'{m.group(0)}…': services inside the runtime speak plain "
                                 "protocols; TLS ends at the edge, and the internal name "
                                 "has no certificate"), \
                        f"use {scheme.rstrip('s')}:// inside, or ${{route:NAME}} through the edge"
                    break
                proto = ports.get(target, {}).get(port) if port else None
                want = SCHEME_PROTOCOL.get(scheme, "tcp")
                if proto and proto != "udp" and (proto == "http") != (want == "http") and \
                        not (proto == "grpc" and want == "grpc"):
                    yield path, (f"'{m.group(0)}': {scheme}:// on {target}'s port '{port}', "
                                 f"which speaks {proto}"), \
                        f"name the port of {target} that speaks {scheme}"
                    break


HOST_ONLY = re.compile(r"(^|_)(HOST|HOSTNAME)$")
PORT_ONLY = re.compile(r"(^|_)PORT$")
URL_KEY = re.compile(r"(^|_)(URL|URI|ENDPOINT)$")


ROUTE_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*://\$\{(route|identity):[^}]+\}", re.I)
ROUTE_PORT = re.compile(r"\$\{(route|identity):[^}]+\}:\d+")
HOST_PORT = re.compile(r"\$\{host:([a-z0-9][-a-z0-9]*)\}:\d+")
URL_NO_PORT = re.compile(r"\b([a-z][a-z0-9+.-]*)://\$\{host:([a-z0-9][-a-z0-9]*)\}(?!:)", re.I)
SCHEME_DEFAULT_PORT = {"http": 80, "https": 443, "ws": 80, "wss": 443, "postgres": 5432,
                       "postgresql": 5432, "redis": 6379, "nats": 4222, "amqp": 5672,
                       "mysql": 3306, "grpc": 443}


@rule("env-shape", "an env value of the wrong shape for its key")
def _env_shape(c: Ctx):
    for name in c.services:
        for path, value in c.strings(name):
            m = URL_NO_PORT.search(value)
            if m:
                scheme, target = m.group(1).lower(), m.group(2)
                default = SCHEME_DEFAULT_PORT.get(scheme)
                ports = {p["port"]: p["name"] for p in
                         (c.services.get(target) or {}).get("ports") or []}
                if default and ports and default not in ports:
                    first = sorted(ports.items())[0]
                    yield path, (f"'{m.group(0)}' has no port, so clients dial {scheme}'s "
                                 f"default {default}, but {target} listens on "
                                 f"{', '.join(str(p) for p in sorted(ports))}"), \
                        f"write {scheme}://${{service:{target}.{first[1]}}}"
                    continue
            m = HOST_PORT.search(value)
            if m:
                yield path, (f"'{m.group(0)}' writes {m.group(1)}'s port literally after "
                             "its host: it does not follow the port the model declares"), \
                    f"write ${{service:{m.group(1)}.PORT}} (host and port from the model)"
                continue
            m = ROUTE_SCHEME.search(value) or ROUTE_PORT.search(value)
            if m:
                yield path, (f"'{m.group(0)}': ${{{m.group(1)}:…}} is a whole browser URL "
                             "(https://host, with the edge's port when it is not 443); a "
                             "scheme or port written around it doubles them"), \
                    f"write ${{{m.group(1)}:…}} alone (and a path after it)"
    for name, svc in c.services.items():
        for key, value in (svc.get("env") or {}).items():
            if not isinstance(value, str):
                continue
            path = ("services", name, "env", key)
            v = value.strip()
            if HOST_ONLY.search(key) and (v.startswith("${service:") or
                                          re.search(r"://|:\d+$", _outside_refs(v))):
                yield path, (f"{key} names a host, but '{v}' carries a port or a scheme: "
                             "clients append their own port"), \
                    "write ${host:NAME} here and the port in the matching _PORT key"
            elif PORT_ONLY.search(key) and not re.fullmatch(r"\d+|\$\{port:[^}]+\}", v):
                yield path, f"{key} is a port, but '{v}' is not a port number", \
                    "write ${port:NAME.PORT} or a number"
            elif URL_KEY.search(key) and re.match(r"\$\{(service|host):", v):
                yield path, (f"{key} is a URL, but '{v}' has no scheme; most clients "
                             "refuse it or guess wrong"), \
                    f"write SCHEME://{v} (e.g. http://{v})"


@rule("identity-reference", "an OIDC value that does not match the realm (identity:)")
def _identity_reference(c: Ctx):
    ident = c.data.get("identity")
    if not ident:
        return
    clients = ident.get("clients") or {}
    carried = {a for cid, cl in clients.items() for a in (cl or {}).get("audiences") or []}
    realms = re.compile(r"/realms(/|\s|$)")
    for name, svc in c.services.items():
        if name == ident.get("provider"):
            continue
        for key, value in (svc.get("env") or {}).items():
            if not isinstance(value, str):
                continue
            path = ("services", name, "env", key)
            text = _outside_refs(value)
            if realms.search(text) or "/protocol/openid-connect" in text:
                yield path, (f"'{value}' builds an identity URL by hand (realm path, "
                             f"Keycloak layout): it breaks when the realm or the route "
                             "changes"), \
                    "write ${identity:issuer} (and let the client discover the endpoints)"
                continue
            if re.search(r"CLIENT_?ID$", key) and "${" not in value and \
                    value not in clients:
                yield path, (f"{key} is '{value}', which is not a client of realm "
                             f"'{ident.get('realm')}'{did_you_mean(value, clients)}: every "
                             "login or token request with it fails"), \
                    f"use one of {', '.join(clients) or 'no clients'} or add it to " \
                    "identity.clients"
            elif re.search(r"AUDIENCE$", key) and "${" not in value:
                if value not in clients:
                    yield path, (f"{key} is '{value}', which is not a client of realm "
                                 f"'{ident.get('realm')}'{did_you_mean(value, clients)}: "
                                 "no token will carry it"), \
                        "name a client of identity.clients (the API's own client id)"
                elif value not in carried:
                    yield path, (f"{key} is '{value}', but no client of the realm puts it in "
                                 "its tokens' audiences, so every token is refused"), \
                        f"add {value} to the audiences of the clients that call {name}"
    for cid, cl in clients.items():
        cl = cl or {}
        if cl.get("type") == "public" and cl.get("standard_flow", True) and \
                cl.get("pkce") != "S256":
            what = "PKCE 'plain'" if cl.get("pkce") == "plain" else "no PKCE"
            yield ("identity", "clients", cid, "pkce") if cl.get("pkce") else \
                ("identity", "clients", cid), (
                f"public client {cid} logs users in with {what}: anyone who sees the "
                "redirect can redeem its code"), "pkce: S256"
    yield from _token_paths(c, ident)


def _token_paths(c: Ctx, ident: dict):
    """A service that logs in with client C and calls the browser URL of a service
    that checks audience A: C's tokens must carry A."""
    clients = ident.get("clients") or {}
    audience_of: dict[str, tuple[str, str]] = {}   # route -> (service, audience)
    routes = {r.name: r.service for r in c.stack.routes().values()}
    for name, svc in c.services.items():
        for key, value in (svc.get("env") or {}).items():
            if re.search(r"AUDIENCE$", key) and isinstance(value, str) and value in clients:
                for rname, owner in routes.items():
                    if owner == name:
                        audience_of[rname] = (name, value)
    for name, svc in c.services.items():
        env = svc.get("env") or {}
        cid = next((v for k, v in env.items() if re.search(r"CLIENT_?ID$", k)
                    and isinstance(v, str) and v in clients), None)
        if cid is None:
            continue
        for key, value in env.items():
            if not isinstance(value, str):
                continue
            for ref in re.findall(r"\$\{route:([^}]+)\}", value):
                if ref in audience_of:
                    target, aud = audience_of[ref]
                    if aud != cid and aud not in ((clients[cid] or {}).get("audiences") or []):
                        yield ("identity", "clients", cid, "audiences"), (
                            f"{name} logs in as {cid} and calls {target} ({key}), which "
                            f"accepts only tokens for '{aud}'; {cid}'s tokens do not carry "
                            "it, so every call is refused"), \
                            f"add {aud} to identity.clients.{cid}.audiences"
                        return


@rule("shared-credential", "one secret value for two people or two clients")
def _shared_credential(c: Ctx):
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


@rule("probe-protocol", "an http probe on a port that does not speak http")
def _probe_protocol(c: Ctx):
    from ..model import locate

    for name, svc in c.services.items():
        http = (svc.get("readiness") or {}).get("http")
        if not http:
            continue
        port = next((p for p in svc.get("ports") or [] if p["name"] == http.get("port")), None)
        if port is None:
            continue
        node, loc = locate(c.tree, ("services", name, "ports", ListKey(port["name"]),
                                    "protocol"))
        declared = node is not None and loc.layer != "default"
        http_ports = [p["name"] for p in svc.get("ports") or [] if p.get("protocol") == "http"]
        if port.get("protocol") != "http" and (declared or http_ports):
            yield ("services", name, "readiness", "http", "port"), (
                f"the http probe targets port '{port['name']}' (protocol "
                f"{port['protocol']}): the probe never gets an HTTP answer, so "
                f"{name} never becomes ready"), \
                (f"probe {' or '.join(http_ports)} (the port that speaks http)" if http_ports
                 else "probe a port that speaks http, or use readiness: {tcp: {port: …}}")


_COPY = re.compile(r"^\s*(COPY|ADD)\s+(.*)$", re.I)


@rule("build-context-holds-state", "a build context that sends the repository's state")
def _build_context_state(c: Ctx):
    for name, b, ctx in c.build_contexts():
        ignored = _dockerignore(ctx)
        sent = [d for d in (".parity", ".git", ".venv") if (ctx / d).exists()
                and not any(p.strip("/") in (d, f"{d}/**", f"{d}/*") for p in ignored)]
        if sent:
            yield ("services", name, "build", "context"), (
                f"build context '{b['context']}' holds {', '.join(sent)}: every build sends "
                "them to the builder (.parity has the clone's secrets and CA key)"), \
                "build from the app's directory (apps/), or list them in its .dockerignore"


def _dockerignore(ctx: Path) -> list[str]:
    try:
        return [ln.strip() for ln in (ctx / ".dockerignore").read_text().splitlines()
                if ln.strip() and not ln.startswith("#")]
    except OSError:
        return []


JUNK = re.compile(r"(^|/)(__pycache__|\.git|node_modules|\.mypy_cache|\.pytest_cache)(/|$)|"
                  r"\.(pyc|pyo)$")


def _line_of(path: Path, text: str) -> int:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return 0
    return next((i for i, ln in enumerate(lines, 1) if ln.strip() == text), 0)


def _ignored(src: str, patterns: list[str]) -> str | None:
    """The .dockerignore pattern that excludes ``src`` (last match wins, ``!`` re-includes)."""
    import fnmatch

    path = src.strip("/").removeprefix("./")
    hit = None
    for pat in patterns:
        neg = pat.startswith("!")
        p = pat[1:] if neg else pat
        p = p.strip("/").removeprefix("./")
        if not p:
            continue
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatchcase(x, p) for x in prefixes):
            hit = None if neg else pat
    return hit


@rule("build-source-missing", "a Dockerfile COPY of a path the build context lacks")
def _build_source_missing(c: Ctx):
    from ..images import dockerfile_lines

    root = c.root.resolve()
    for name, b, ctx in c.build_contexts():
        if (ctx / "build.yaml").is_file():
            continue  # a script build (images.py): no Dockerfile COPY to check
        fetched = _fetched(ctx, root)
        ignores = _dockerignore(ctx)
        df = (ctx / (b.get("dockerfile") or "Dockerfile"))
        try:
            text = df.read_text(encoding="utf-8")
        except OSError:
            yield ("services", name, "build", "dockerfile"), (
                f"no Dockerfile at {df.relative_to(root) if df.is_relative_to(root) else df}"), \
                "fix build.dockerfile (relative to build.context)"
            continue
        where = df.relative_to(root) if df.is_relative_to(root) else df
        for lineno, line in dockerfile_lines(text):
            m = _COPY.match(line)
            if not m:
                continue
            words = [w for w in m.group(2).split() if not w.startswith("--")]
            if "--from" in m.group(2) or len(words) < 2 or words[0].startswith("["):
                continue
            remote = [w for w in words[:-1] if re.match(r"https?://", w)]
            if remote and "--checksum" not in m.group(2):
                yield ("services", name, "build", "dockerfile"), (
                    f"{where}:{lineno} downloads {remote[0]} with no --checksum: each build "
                    "may get other bytes (and an offline build cannot get any)"), \
                    "pin a release URL with ADD --checksum=sha256:…, or vendor the file"
                break
            for src in words[:-1]:
                if "://" in src or "$" in src:
                    continue
                ignored = _ignored(src, ignores)
                inner = None
                if not ignored and ignores and (ctx / src.lstrip("/")).is_dir():
                    for f in sorted((ctx / src.lstrip("/")).rglob("*")):
                        rel = str(f.relative_to(ctx))
                        if f.is_file() and not JUNK.search(rel):
                            hit = _ignored(rel, ignores)
                            if hit:
                                ignored, inner = hit, rel
                                break
                if ignored and inner:
                    yield ("services", name, "build", "context"), (
                        f"{where}:{lineno} copies '{src}', but "
                        f"{b['context']}/.dockerignore:{_line_of(ctx / '.dockerignore', ignored)} "
                        f"('{ignored}') leaves {inner} out of it: the image ships without it "
                        "in every mode"), \
                        f"narrow '{ignored}' in .dockerignore (or add !{inner})"
                    break
                if ignored:
                    yield ("services", name, "build", "context"), (
                        f"{where}:{lineno} copies '{src}', which "
                        f"{b['context']}/.dockerignore:{_line_of(ctx / '.dockerignore', ignored)} "
                        f"excludes ('{ignored}'): the build fails in every mode"), \
                        f"remove '{ignored}' from .dockerignore, or stop copying {src}"
                    break
                if src.strip("/") not in fetched and not list(ctx.glob(src.lstrip("/"))):
                    yield ("services", name, "build", "context"), (
                        f"{where}:{lineno} copies '{src}', which is not in the context "
                        f"{b['context']}: the build fails in every mode"), \
                        "point build.context at the directory that holds it, or fix the path"
                    break


def _fetched(ctx: Path, root: Path) -> set[str]:
    """What ``inv images`` puts into a copy of the context before building
    (``fetch.yaml``: pinned wheels' members); a broken list is images' to report."""
    from ..errors import ParityError
    from ..images import load_fetch

    try:
        return {f.dest.strip("/") for f in load_fetch(ctx, root)}
    except ParityError:
        return set()


@rule("image-not-buildable", "an image only a build makes, with no build")
def _image_not_buildable(c: Ctx):
    built = {s["image"].split("@", 1)[0].rsplit(":", 1)[0]: n for n, s in c.services.items()
             if s.get("build")}
    for name, svc in c.services.items():
        if svc.get("build"):
            continue
        repo = svc["image"].split("@", 1)[0].rsplit(":", 1)[0]
        if repo in built:
            yield ("services", name), (
                f"{name} runs {svc['image']} without a build, an image only "
                f"{built[repo]}'s build makes: it exists where someone built it, and "
                "nowhere else (no registry has it)"), \
                f"give {name} the build of {built[repo]}"


def _norm(key: str) -> str:
    return key.lower().replace("-", "_").lstrip("_")


@rule("env-key-typo", "an env key one letter off the one the others use")
def _env_key_typo(c: Ctx):
    import difflib

    users: dict[str, set[str]] = {}
    for name, svc in c.services.items():
        for key in svc.get("env") or {}:
            users.setdefault(key, set()).add(name)
    keys = sorted(users)
    for name, svc in c.services.items():
        own = set(svc.get("env") or {})
        for key in sorted(own):
            if len(users[key]) > 1 or len(key) < 8:
                continue
            near = [k for k in difflib.get_close_matches(key, keys, n=3, cutoff=0.9)
                    if k != key and k not in own and len(users[k]) >= 1
                    and k.split("_")[0] == key.split("_")[0]]
            if near:
                yield ("services", name, "env", key), (
                    f"{key} is set only here, and {', '.join(sorted(users[near[0]]))} "
                    f"use {near[0]}: a program reading {near[0]} never sees it"), \
                    f"rename it {near[0]}"


@rule("env-contradicts-args", "an env value that contradicts a command-line argument")
def _env_contradicts_args(c: Ctx):
    for name, svc in c.services.items():
        items = [str(x) for x in [*(svc.get("command") or []), *(svc.get("args") or [])]]
        flags: dict[str, str] = {}
        for i, item in enumerate(items):
            if not item.startswith("--"):
                continue
            flag, eq, value = item[2:].partition("=")
            if not eq:
                value = items[i + 1] if i + 1 < len(items) and \
                    not items[i + 1].startswith("-") else ""
            if value:
                flags[_norm(flag)] = value
        for key, value in (svc.get("env") or {}).items():
            if not isinstance(value, str) or "${" in value:
                continue
            for flag, arg in flags.items():
                if (_norm(key) == flag or _norm(key).endswith("_" + flag)) and arg != value:
                    yield ("services", name, "env", key), (
                        f"{key}={value} but {name} is started with --{flag} {arg}: which "
                        "one wins depends on the program"), \
                        f"set one of them, or give both the same value"
                    break


# --------------------------------------------------------------------------- cluster rules

KIND_STORAGE_CLASSES = ("standard",)   # kind's local-path provisioner (node image)


DEV_MODE = re.compile(r"(--?dev|start-dev|--?dev-mode|server-dev|--?in-memory)", re.I)


@rule("stateful-replicas", "a stateful service with more than one replica")
def _stateful_replicas(c: Ctx):
    for name, svc in c.services.items():
        dev = next((a for a in [*(svc.get("command") or []), *(svc.get("args") or [])]
                    if DEV_MODE.fullmatch(str(a))), None)
        if dev and (svc.get("replicas") or 0) > 1:
            yield ("services", name, "replicas"), (
                f"{name} runs a dev-mode server ('{dev}') with {svc['replicas']} replicas: "
                "each keeps its state in its own memory, so requests land on instances "
                "that do not know each other"), "replicas: 1 for a dev-mode server"
            continue
        if svc.get("storage") and svc.get("workload") != "stateful" and \
                (svc.get("replicas") or 0) > 1:
            yield ("services", name, "replicas"), (
                f"{name} keeps data on a volume ({svc['storage'][0]['path']}) and runs "
                f"{svc['replicas']} replicas: they write one volume at once (compose) or "
                "each its own (kind)"), "replicas: 1 for a service with storage"
            continue
        if svc.get("workload") == "stateful" and (svc.get("replicas") or 0) > 1:
            yield ("services", name, "replicas"), (
                f"{name} is stateful with {svc['replicas']} replicas: each replica gets its "
                "own volume, so they hold different data and nothing replicates it"), \
                "replicas: 1 (run a replicated system, e.g. a Postgres operator, if you " \
                "need more)"


@rule("dependency-scaled-to-zero", "a dependency with no replica", modes=("kind",))
def _dependency_scaled_to_zero(c: Ctx):
    for name, svc in c.services.items():
        if svc.get("workload") == "job" or not svc.get("replicas"):
            continue
        for dep in svc.get("depends_on") or []:
            d = c.services.get(dep)
            if d and d.get("workload") != "job" and d.get("replicas") == 0:
                yield ("services", dep, "replicas"), (
                    f"{dep} has 0 replicas but {name} depends on it: up waits for it forever "
                    "and the cluster never starts it"), \
                    f"give {dep} at least 1 replica, or remove it from {name}'s depends_on"


def quantity(text: str) -> float:
    """A quantity in base units (cores, bytes); NaN when it is not one (the schema
    refuses those first)."""
    from ..schema import quantity as exact

    try:
        return float(exact(text))
    except ValueError:
        return float("nan")


@rule("resource-units", "a resource quantity in a unit nobody means")
def _resource_units(c: Ctx):
    for name, svc in c.services.items():
        res = svc.get("resources") or {}
        for part in ("requests", "limits"):
            mem = (res.get(part) or {}).get("memory")
            if mem is None:
                continue
            path = ("services", name, "resources", part, "memory")
            if str(mem).endswith("m"):
                yield path, (f"memory '{mem}' is in millibytes (m), a thousandth of a "
                             "byte"), f"write {str(mem)[:-1]}Mi (mebibytes) or {str(mem)[:-1]}M"
            elif quantity(mem) < 4 * 1024 ** 2:
                yield path, (f"memory '{mem}' is under 4 MiB: no container starts in it "
                             "(a unit is missing?)"), "write the unit: Mi or Gi"


@rule("limits-below-requests", "a resource limit below its request", modes=("kind",))
def _limits_below_requests(c: Ctx):
    for name, svc in c.services.items():
        res = svc.get("resources") or {}
        for r, req in (res.get("requests") or {}).items():
            lim = (res.get("limits") or {}).get(r)
            if lim is not None and quantity(lim) < quantity(req):
                yield ("services", name, "resources", "limits", r), (
                    f"the {r} limit {lim} is below the request {req}: the API server "
                    "refuses the pod"), \
                    f"raise limits.{r} to at least {req}, or lower requests.{r}"


def _machine() -> tuple[float, float]:
    """CPUs and bytes of memory of this machine (the kind node runs here)."""
    import os

    mem = float("inf")
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = float(line.split()[1]) * 1024
    except OSError:
        pass
    return float(os.cpu_count() or 1), mem


@rule("requests-exceed-node", "requests no kind node can satisfy", modes=("kind",))
def _requests_exceed_node(c: Ctx):
    cpus, mem = _machine()
    for name, svc in c.services.items():
        req = (svc.get("resources") or {}).get("requests") or {}
        reps = max(1, svc.get("replicas") or 1)
        for r, cap, shown in (("cpu", cpus, f"{cpus:g} CPUs"),
                              ("memory", mem, f"{mem / 1024 ** 3:.1f} GiB")):
            if r in req and quantity(req[r]) > cap:
                yield ("services", name, "resources", "requests", r), (
                    f"{name} requests {r} {req[r]} per replica ({reps}), more than the "
                    f"kind node has ({shown} on this machine): the pod stays Pending"), \
                    f"lower requests.{r} (cpu in cores or millicores: 500m is half a core)"


DATA_FLAG = re.compile(r"(data|store|storage|db|state|dir|path|file)", re.I)


@rule("data-outside-volume", "a stateful service writing where no volume is mounted")
def _data_outside_volume(c: Ctx):
    for name, svc in c.services.items():
        if svc.get("workload") != "stateful":
            continue
        mounts = [v["path"].rstrip("/") for v in svc.get("storage") or []]
        items = [str(x) for x in [*(svc.get("command") or []), *(svc.get("args") or [])]]
        for i, item in enumerate(items):
            flag, eq, value = item.partition("=")
            if not eq:
                value = items[i + 1] if i + 1 < len(items) else ""
            if not (flag.startswith("-") and DATA_FLAG.search(flag) and value.startswith("/")):
                continue
            if not any(value == m or value.startswith(m + "/") for m in mounts):
                field_name = "command" if i < len(svc.get("command") or []) else "args"
                idx = i if field_name == "command" else i - len(svc.get("command") or [])
                yield ("services", name, field_name, idx), (
                    f"{name} keeps its data in {value} ({flag}), where no volume is "
                    "mounted: it lives in the container's layer, which a pod restart in "
                    "kind throws away"), \
                    f"add storage: [{{name: data, path: {_data_dir(value)}}}]"
                break


def _data_dir(path: str) -> str:
    last = path.rstrip("/").rsplit("/", 1)
    return (last[0] or "/") if len(last) == 2 and "." in last[1] else path.rstrip("/")


@rule("unknown-storage-class", "a storage class the kind cluster does not have",
      modes=("kind",))
def _unknown_storage_class(c: Ctx):
    for name, svc in c.services.items():
        for v in svc.get("storage") or []:
            sc = v.get("storage_class")
            if sc is not None and sc not in KIND_STORAGE_CLASSES:
                yield ("services", name, "storage", ListKey(v["name"]), "storage_class"), (
                    f"storage class '{sc}' does not exist in the kind cluster "
                    f"(it has {', '.join(KIND_STORAGE_CLASSES)}): the claim stays Pending"
                    f"{did_you_mean(sc, KIND_STORAGE_CLASSES)}"), \
                    "use standard (local-path) or leave storage_class out (the default class)"


# --------------------------------------------------------------------------- running

# --------------------------------------------------------------------------- wiring rules

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
def _ca_bundle_path(c: Ctx):
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
                    "(the issuer, every https route) in any mode"),                     f"set {key}: {bundle} (or move ca_bundle)"


def _names_in_key(key: str, names: set[str]) -> list[str]:
    """Service names a variable's name starts with (REDIS_PORT -> redis)."""
    k = key.lower().replace("-", "_")
    return [n for n in sorted(names, key=len, reverse=True)
            if k.startswith(n.replace("-", "_") + "_")]


_REF_TARGET = re.compile(r"\$\{(service|host|port):([a-z0-9][-a-z0-9]*)")


@rule("reference-to-another-service", "a variable named after one service that points at another")
def _reference_to_another_service(c: Ctx):
    names = set(c.services) | set((c.data.get("services") or {}))
    stack = re.escape(c.stack.name)
    routes = {r.name: r.service for r in c.stack.routes().values()}
    for name, svc in c.services.items():
        for key, value in (svc.get("env") or {}).items():
            if not isinstance(value, str):
                continue
            path = ("services", name, "env", key)
            meant = _names_in_key(key, names)
            targets = {m.group(2) for m in _REF_TARGET.finditer(value)}
            if meant and targets and meant[0] not in targets and meant[0] != name and \
                    all(t in names for t in targets):
                other = sorted(targets)[0]
                yield path, (f"{key} is named after {meant[0]}, but '{value}' points at "
                             f"{other}: {name} reaches {other} where it means {meant[0]}, "
                             "in every mode"), \
                    f"point it at {meant[0]}: ${{{_REF_TARGET.search(value).group(1)}:" \
                    f"{meant[0]}{'.PORT' if _REF_TARGET.search(value).group(1) != 'host' else ''}}}"
                continue
            rrefs = re.findall(r"\$\{route:([^}/]+)\}", value)
            if rrefs and routes:
                tokens = set(key.lower().split("_"))
                named = {t for t in tokens if t in routes or t in names}
                hit = {r for r in rrefs} | {routes[r] for r in rrefs if r in routes}
                if named and not named & hit and all(r in routes for r in rrefs):
                    want = sorted(named)[0]
                    route = want if want in routes else next(
                        (r for r, svc in routes.items() if svc == want), None)
                    if route and route not in rrefs:
                        yield path, (f"{key} is named after {want}, but '{value}' is the "
                                     f"browser URL of {rrefs[0]} ({routes[rrefs[0]]}): it "
                                     f"sends callers to the wrong service, in every mode"), \
                            f"write ${{route:{route}}}"
                        continue
            m = re.search(rf"\$\{{stack:(name|namespace)\}}[-_.]([a-z0-9][-a-z0-9]*)", value)
            if m and m.group(2).split(".")[0] in names:
                target = m.group(2).split(".")[0]
                yield path, (f"'{value}' assembles a host name from ${{stack:{m.group(1)}}}: "
                             f"no runtime calls {target} that (compose knows the service "
                             "name, kind the Service's DNS name)"), \
                    f"write ${{host:{target}}}"
            elif HOST_KEY.search(key) and \
                    re.search(rf"(?<![\w.-]){stack}[-_]([a-z0-9][-a-z0-9]*)", _outside_refs(value)):
                m2 = re.search(rf"(?<![\w.-]){stack}[-_]([a-z0-9][-a-z0-9]*)", value)
                target = m2.group(1)
                for n in sorted(names, key=len, reverse=True):
                    if target == n or target.startswith(n + "-") or target.startswith(n + "_"):
                        yield path, (f"'{m2.group(0)}' is a container-style name of {n}: "
                                     "no such host in kind, and compose names it after the "
                                     "project"), f"write ${{host:{n}}}"
                        break


COOKIE_DOMAIN = re.compile(r"COOKIE_?DOMAIN$", re.I)


@rule("cookie-domain", "a cookie domain the service's own host cannot set")
def _cookie_domain(c: Ctx):
    hosts: dict[str, list[str]] = {}
    for r in c.stack.routes().values():
        hosts.setdefault(r.service, []).append(f"{r.host}.{c.stack.domain}".lower())
    for name, svc in c.services.items():
        own = hosts.get(name)
        if not own:
            continue
        for key, value in (svc.get("env") or {}).items():
            if not isinstance(value, str) or not COOKIE_DOMAIN.search(key):
                continue
            v = value.replace("${stack:domain}", c.stack.domain).strip().lstrip(".").lower()
            if not v or "${" in v:
                continue
            bad = [h for h in own if h != v and not h.endswith("." + v)]
            if bad:
                yield ("services", name, "env", key), (
                    f"{key} is '{v}', but {name} answers on {', '.join(bad)}: a browser "
                    "drops a cookie whose domain does not contain the host that sets it, in "
                    "every mode"), \
                    "use ${stack:domain} (shared by every route) or the service's own host"


@rule("client-without-secret", "a service given a confidential client without its secret")
def _client_without_secret(c: Ctx):
    clients = (c.data.get("identity") or {}).get("clients") or {}
    provider = (c.data.get("identity") or {}).get("provider")
    for name, svc in c.services.items():
        if name == provider:
            continue
        env = svc.get("env") or {}
        for key, value in env.items():
            if not (isinstance(value, str) and re.search(r"CLIENT_?ID$", key)
                    and value in clients):
                continue
            cl = clients[value] or {}
            if cl.get("type") != "confidential":
                continue
            secret = cl.get("secret") or {}
            given = any(isinstance(v, dict) and v.get("secret") == secret.get("secret")
                        and v.get("key") == secret.get("key") for v in env.values())
            given |= any(f.get("secret") == secret.get("secret")
                         for f in svc.get("secret_files") or [])
            if not given:
                routed = any(r.service == name for r in c.stack.routes().values())
                why = (" and a browser cannot keep one: a browser app needs a public client"
                       if routed else "")
                yield ("services", name, "env", key), (
                    f"{name} uses client {value}, a confidential client, but is not given "
                    f"its secret ({secret.get('secret')}/{secret.get('key')}){why}: every "
                    "token request fails in every mode"), \
                    (f"use a public client with PKCE for {name}" if routed else
                     f"add the client secret: {{secret: {secret.get('secret')}, key: "
                     f"{secret.get('key')}}}")


#: env keys that say where a program keeps its data
DATA_ENV = re.compile(r"^(PGDATA|[A-Z0-9_]*_(DATA|DATA_DIR|DATADIR|STORAGE_PATH|DATA_PATH|"
                      r"STORE_DIR|STATE_DIR|ROOTDIRECTORY|ROOT_DIR|STORAGE_DIR|DB_PATH|"
                      r"DATA_ROOT))$")


@rule("data-env-outside-volume", "a data directory variable that points outside the volume")
def _data_env_outside_volume(c: Ctx):
    for name, svc in c.services.items():
        mounts = [v["path"].rstrip("/") for v in svc.get("storage") or []]
        if not mounts:
            continue
        for key, value in (svc.get("env") or {}).items():
            if not isinstance(value, str) or not DATA_ENV.match(key) or \
                    not value.startswith("/"):
                continue
            if not any(value == m or value.startswith(m + "/") for m in mounts):
                yield ("services", name, "env", key), (
                    f"{key} puts {name}'s data in {value}, but its volume is mounted at "
                    f"{', '.join(mounts)}: the data lives in the container's layer and is "
                    "gone with the container (compose) or the pod (kind)"), \
                    f"keep {key} under {mounts[0]} (or move the storage path)"


_ENV_NAME = re.compile(r"""["'`]([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)["'`]|\$\{?([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)""")
_SOURCE_SUFFIX = {".py", ".js", ".mjs", ".ts", ".go", ".sh", ".rb", ".java", ".kt", ".rs"}


def _source_names(c: Ctx, ctx: Path, dockerfile: Path) -> dict[str, str]:
    """UPPER_SNAKE names the sources a Dockerfile copies mention (name -> file:line)."""
    out: dict[str, str] = {}
    for rel, n, line in _source_lines(c, ctx, dockerfile):
        for m in _ENV_NAME.finditer(line):
            out.setdefault(m.group(1) or m.group(2), f"{rel}:{n}")
    return out


def _abbreviates(a: str, b: str) -> bool:
    """DB_HOST and DATABASE_HOST: the same words but the first, which one shortens."""
    wa, wb = a.split("_"), b.split("_")
    if len(wa) != len(wb) or len(wa) < 2 or wa[1:] != wb[1:] or wa[0] == wb[0]:
        return False
    short, long_ = sorted((wa[0], wb[0]), key=len)
    it = iter(long_)
    return short[0] == long_[0] and all(ch in it for ch in short)


@rule("env-key-the-app-never-reads", "an env key the service's code never reads, next to one it does")
def _env_key_unread(c: Ctx):
    import difflib

    for name, b, ctx in c.build_contexts():
        df = ctx / (b.get("dockerfile") or "Dockerfile")
        read = _source_names(c, ctx, df)
        if not read:
            continue
        env = svc_env = c.services[name].get("env") or {}
        unset = [k for k in read if k not in svc_env]
        for key in sorted(env):
            if key in read:
                continue
            stem = key.split("_")[:2]
            near = [k for k in unset if k.startswith(key) or key.startswith(k)] or \
                difflib.get_close_matches(key, unset, n=1, cutoff=0.85) or \
                sorted(k for k in unset if len(stem) == 2 and k.split("_")[:2] == stem) or \
                sorted(k for k in unset if _abbreviates(key, k))
            if near:
                yield ("services", name, "env", key), (
                    f"{name}'s code never reads {key}; it reads {near[0]} "
                    f"({b['context']}/{read[near[0]]}), which the model does not set"), \
                    f"rename {key} to {near[0]}"


LIVENESS_PATHS = {"/healthz", "/livez", "/health", "/ping", "/alive", "/status"}
_READY_ROUTE = re.compile(r"""["'](/readyz|/ready|/health/ready)["']""")


@rule("readiness-on-liveness", "a readiness probe on the liveness endpoint of an app that has a readiness one")
def _readiness_on_liveness(c: Ctx):
    for name, b, ctx in c.build_contexts():
        http = ((c.services[name].get("readiness") or {}).get("http") or {})
        path = str(http.get("path") or "")
        if path.rstrip("/") not in LIVENESS_PATHS:
            continue
        df = ctx / (b.get("dockerfile") or "Dockerfile")
        found = _source_match(c, ctx, df, _READY_ROUTE)
        if found:
            what, where = found
            yield ("services", name, "readiness", "http", "path"), (
                f"{name}'s readiness asks {path}, which answers as soon as the process "
                f"runs; its code serves {what} ({b['context']}/{where}), which checks its "
                "dependencies: it is reported ready before it can serve, in every mode"), \
                f"path: {what}"


def _source_files(ctx: Path, dockerfile: Path) -> list[Path]:
    """The source files a Dockerfile copies from its context (its own COPY lines)."""
    from ..images import dockerfile_lines

    try:
        lines = dockerfile_lines(dockerfile.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return []
    files: list[Path] = []
    for _, line in lines:
        m = _COPY.match(line)
        if not m or "--from" in m.group(2):
            continue
        words = [w for w in m.group(2).split() if not w.startswith("--")]
        for src in words[:-1]:
            if "://" in src or "$" in src or src.startswith("["):
                continue
            for hit in ctx.glob(src.lstrip("/")):
                items = [hit] if hit.is_file() else sorted(hit.rglob("*"))
                files += [f for f in items if f.is_file() and f.suffix in _SOURCE_SUFFIX]
    return files[:400]


def _source_lines(c: Ctx, ctx: Path, dockerfile: Path) -> list[tuple[str, int, str]]:
    """(file, line number, line) of the sources a Dockerfile copies; read once per
    check, as several services and rules share one build context."""
    key = (ctx, dockerfile)
    if key not in c.sources:
        out: list[tuple[str, int, str]] = []
        for f in _source_files(ctx, dockerfile):
            try:
                if f.stat().st_size > 512 * 1024:
                    continue
                text = f.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            rel = str(f.relative_to(ctx))
            out += [(rel, n, line) for n, line in enumerate(text.splitlines(), 1)]
        c.sources[key] = out
    return c.sources[key]


def _source_match(c: Ctx, ctx: Path, dockerfile: Path,
                  pattern: re.Pattern) -> tuple[str, str] | None:
    for rel, n, line in _source_lines(c, ctx, dockerfile):
        m = pattern.search(line)
        if m:
            return m.group(1), f"{rel}:{n}"
    return None


@rule("build-under-upstream-name", "a local build tagged with an upstream image's name")
def _build_under_upstream_name(c: Ctx):
    for name, svc in c.services.items():
        if not svc.get("build"):
            continue
        ref = svc["image"].split("@", 1)[0]
        first = ref.split("/", 1)[0]
        if "/" not in ref or "." in first or ":" in first or first == "localhost" or \
                first == "library":
            yield ("services", name, "image"), (
                f"{name} is built here but tagged '{svc['image']}', the name of an image a "
                "registry serves: a pull and this build give two different images under one "
                "name, and which one runs depends on the machine's cache"), \
                f"tag the build with a name of your own (e.g. {c.stack.name}/{name}:…)"


_ARG = re.compile(r"^\s*ARG\s+([A-Za-z_][A-Za-z0-9_]*)", re.I)
_EXPOSE = re.compile(r"^\s*EXPOSE\s+(.*)$", re.I)
_RUN_LINE = re.compile(r"^\s*(CMD|ENTRYPOINT)\s+(.*)$", re.I)
_PORT_FLAG = re.compile(r"(?:^|[\s\[\",])--?(?:port|http[-_]port|listen[-_]port)(?:[=\s\",]+)(\d{2,5})\b",
                        re.I)


def _dockerfile(c: Ctx, b: dict, ctx: Path) -> tuple[str, list[tuple[int, str]]] | None:
    """(repo-relative path, instructions) of a build's Dockerfile, or None."""
    from ..images import dockerfile_lines

    df = ctx / (b.get("dockerfile") or "Dockerfile")
    try:
        text = df.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    root = c.root.resolve()
    rel = str(df.relative_to(root)) if df.resolve().is_relative_to(root) else str(df)
    return rel, dockerfile_lines(text)


@rule("build-arg-not-declared", "a build arg the Dockerfile never declares")
def _build_arg_not_declared(c: Ctx):
    import difflib

    for name, b, ctx in c.build_contexts():
        args = b.get("args") or {}
        if not args or (ctx / "build.yaml").is_file():
            continue
        df = _dockerfile(c, b, ctx)
        if df is None:
            continue
        declared = {m.group(1) for _, line in df[1] for m in [_ARG.match(line)] if m}
        for key in sorted(args):
            if key not in declared:
                near = difflib.get_close_matches(key, sorted(declared), n=1, cutoff=0.75)
                yield ("services", name, "build", "args", key), (
                    f"build arg {key} is not an ARG of {df[0]}"
                    + (f" (it declares {near[0]})" if near else "")
                    + ": the build ignores it, and the Dockerfile's default is used in "
                    "every mode"), \
                    (f"rename it {near[0]}" if near else f"declare ARG {key} in {df[0]}, or "
                     "remove it")


@rule("image-port-not-declared", "an image that listens on a port the model does not declare")
def _image_port_not_declared(c: Ctx):
    for name, b, ctx in c.build_contexts():
        svc = c.services[name]
        ports = {p["port"] for p in svc.get("ports") or []}
        if not ports or svc.get("command") or svc.get("args"):
            continue
        df = _dockerfile(c, b, ctx)
        if df is None:
            continue
        exposed: list[int] = []
        exposed_at = 0
        for lineno, line in df[1]:
            m = _EXPOSE.match(line)
            if m:
                exposed += [int(p.split("/")[0]) for p in m.group(1).split()
                            if p.split("/")[0].isdigit()]
                exposed_at = exposed_at or lineno
            m = _RUN_LINE.match(line)
            if m:
                for pm in _PORT_FLAG.finditer(m.group(2)):
                    if int(pm.group(1)) not in ports:
                        yield ("services", name, "ports"), (
                            f"{df[0]}:{lineno} starts {name} on port {pm.group(1)}, but the "
                            f"model declares {', '.join(str(p) for p in sorted(ports))}: "
                            "probes, routes and references reach a port nobody listens on, "
                            "in every mode"), \
                            f"declare port {pm.group(1)} in the model, or start it on one the " \
                            "model declares"
                        break
        if exposed and not ports & set(exposed):
            yield ("services", name, "ports"), (
                f"{df[0]}:{exposed_at} exposes {', '.join(map(str, exposed))}, none of the "
                f"ports the model declares for {name} "
                f"({', '.join(str(p) for p in sorted(ports))})"), \
                "make the model's ports and the image's agree"


HEALTH_PORT = re.compile(r"(health|management|admin|monitor|metrics|status|probe)", re.I)


@rule("readiness-port-unused", "readiness on a port no dependent uses")
def _readiness_port_unused(c: Ctx):
    used: dict[str, set[str]] = {}
    for name, svc in c.services.items():
        for _, value in c.strings(name):
            for m in re.finditer(r"\$\{(?:service|port):([a-z0-9][-a-z0-9]*)\.([a-z0-9][-a-z0-9]*)\}",
                                 value):
                if m.group(1) != name:
                    used.setdefault(m.group(1), set()).add(m.group(2))
    for name, svc in c.services.items():
        rd = svc.get("readiness") or {}
        probe = (rd.get("http") or rd.get("tcp") or {}).get("port")
        if not probe or HEALTH_PORT.search(str(probe)) or name not in used:
            continue
        protocol = {p["name"]: p.get("protocol") for p in svc.get("ports") or []}
        # only where the port dependents use speaks a protocol with its own readiness
        # (grpc, http); a mail or cache server's plain tcp port says no more than its UI
        app = {u for u in used[name] if protocol.get(u) in ("grpc", "http")}
        if probe not in used[name] and app:
            yield ("services", name, "readiness"), (
                f"{name} is ready when port '{probe}' answers, but the services that depend "
                f"on it use {', '.join(sorted(used[name]))}: they are started before what "
                "they call serves, in every mode"), \
                f"probe {' or '.join(sorted(used[name]))} (the port its dependents use)"


@rule("redirect-on-another-host", "a client's redirect URI on a host its app does not serve")
def _redirect_on_another_host(c: Ctx):
    ident = c.data.get("identity") or {}
    clients = ident.get("clients") or {}
    routes = c.stack.routes()
    owner = {r.name: r.service for r in routes.values()}
    users: dict[str, set[str]] = {}
    for name, svc in c.services.items():
        for key, value in (svc.get("env") or {}).items():
            if re.search(r"CLIENT_?ID$", key) and isinstance(value, str) and value in clients:
                users.setdefault(value, set()).add(name)
    for cid, cl in clients.items():
        apps = {n for n in users.get(cid, set()) if n in owner.values()}
        if not apps:
            continue
        for f in ("redirect_uris", "post_logout_redirect_uris", "web_origins"):
            for i, value in enumerate((cl or {}).get(f) or []):
                for r in re.findall(r"\$\{route:([^}/]+)\}", str(value)):
                    if r in owner and owner[r] not in apps:
                        yield ("identity", "clients", cid, f, i), (
                            f"client {cid} is used by {', '.join(sorted(apps))}, but its "
                            f"{f} entry '{value}' is on {owner[r]}'s route: the provider "
                            "refuses the app's own origin, in every mode"), \
                            f"use ${{route:{next(k for k, v in owner.items() if v in apps)}}}"


#: what an image profile may set: which image runs and how it is built
PROFILE_KEYS = ("image", "build")


@rule("image-profile-scope", "an image profile that changes more than images")
def _image_profile_scope(c: Ctx):
    from ..layers import load_layer

    for layer in c.layers:
        if not layer.name.startswith("images:") or layer.file is None:
            continue
        profile = layer.name.split(":", 1)[1]
        tree = load_layer(layer)
        stack: list[tuple[tuple, Node]] = [((), tree)]
        while stack:
            path, node = stack.pop()
            if path and path[-1] in PROFILE_KEYS:
                continue
            if isinstance(node, Map) and node.op is None and node.entries:
                for key, child in node.entries.items():
                    stack.append((path + (key,), child))
                continue
            if not path:
                continue
            yield path, (
                f"image profile '{profile}' sets {format_path(path)} "
                f"({node.loc}): a profile chooses which image runs and how it is built; "
                "what a service is told (env, identity, readiness, routes) must not depend on "
                "it, or the lanes test another contract under each profile"), \
                "move it to base/ (every profile) or to a mode overlay, and keep only " \
                "image: and build: in the profile"


OPS_PORT = re.compile(r"^(ui|web|console|admin|dashboard|metrics|monitor|management|"
                      r"debug|status)$", re.I)


@rule("ops-port-as-address", "a program given another service's UI or ops port as its address")
def _ops_port_as_address(c: Ctx):
    for name, svc in c.services.items():
        for key, value in (svc.get("env") or {}).items():
            if not isinstance(value, str):
                continue
            for m in re.finditer(r"\$\{(service|port):([a-z0-9][-a-z0-9]*)\.([a-z0-9][-a-z0-9]*)\}",
                                 value):
                target, port = m.group(2), m.group(3)
                ports = (c.services.get(target) or {}).get("ports") or []
                others = [p["name"] for p in ports if p["name"] != port
                          and not OPS_PORT.match(p["name"])]
                if target == name or not OPS_PORT.match(port) or not others or \
                        port.lower() in key.lower() or \
                        re.search(r"(UI|WEB|CONSOLE|ADMIN|DASHBOARD|METRICS|MONITOR|MANAGEMENT|"
                                  r"DEBUG|STATUS|BROWSER|PUBLIC)", key, re.I):
                    continue
                yield ("services", name, "env", key), (
                    f"{key} points at {target}'s '{port}' port, which serves people and "
                    f"operators; programs talk to {target} on {', '.join(others)}"), \
                    f"write ${{{m.group(1)}:{target}.{others[0]}}}"
                break


@rule("tcp-readiness-on-http", "readiness by an open socket where the port speaks http")
def _tcp_readiness_on_http(c: Ctx):
    for name, svc in c.services.items():
        tcp = (svc.get("readiness") or {}).get("tcp")
        if not tcp:
            continue
        proto = {p["name"]: p.get("protocol") for p in svc.get("ports") or []}
        if proto.get(tcp.get("port")) == "http":
            yield ("services", name, "readiness", "tcp"), (
                f"{name}'s readiness only checks that port '{tcp['port']}' accepts a "
                "connection; an HTTP server opens its socket before it can answer (imports, "
                "migrations, a realm import), so dependents start against it too early"), \
                f"use readiness: {{http: {{port: {tcp['port']}, path: /…}}}} (its health path)"


_PROBE_PORT = re.compile(r"(?:^|\s)(?:-p|--port)(?:=|\s+)(\d{2,5})\b|(?:localhost|127\.0\.0\.1):(\d{2,5})\b")


@rule("probe-port-undeclared", "a readiness command that checks a port the service does not declare")
def _probe_port_undeclared(c: Ctx):
    for name, svc in c.services.items():
        cmd = ((svc.get("readiness") or {}).get("exec") or {}).get("command") or []
        ports = {p["port"] for p in svc.get("ports") or []}
        if not ports:
            continue
        for item in [" ".join(str(x) for x in cmd)]:  # [pg_isready, -p, "5433"] too
            for m in _PROBE_PORT.finditer(item):
                port = int(m.group(1) or m.group(2))
                if port not in ports:
                    yield ("services", name, "readiness", "exec", "command"), (
                        f"the readiness command checks port {port}, but {name} declares "
                        f"{', '.join(str(p) for p in sorted(ports))}: it never succeeds (or "
                        "checks something else), in every mode"), \
                        f"probe {sorted(ports)[0]}, or ${{port:{name}.NAME}}"
                    return


def load_waivers(root: Path, today: date | None = None) -> list[Waiver]:
    """``waivers:`` of the policy file (bad entries are InputError, exit 2)."""
    from ..diff import parse_until
    from ..yamlio import load_file

    path = root / POLICY_FILE
    if not path.exists():
        return []
    tree = load_file(path, str(POLICY_FILE), "policy")
    node = tree.entries.get("waivers")
    if node is None:
        return []
    if not isinstance(node, Seq):
        raise InputError("'waivers' must be a list", where=str(node.loc), path="waivers")
    today = today or date.today()
    ids = {r.id: r for r in RULES}
    out: list[Waiver] = []
    for i, item in enumerate(node.items):
        base, where = f"waivers[{i}]", str(item.loc)
        if not isinstance(item, Map):
            raise InputError("each waiver is a mapping", where=where, path=base)
        data: dict[str, Any] = {}
        for k, v in item.entries.items():
            if k not in ("rule", "path", "reason", "until"):
                raise InputError(f"unknown key '{k}'"
                                 f"{did_you_mean(k, ('rule', 'path', 'reason', 'until'))}",
                                 where=str(item.keylocs[k]), path=base,
                                 hint="a waiver has rule, path, reason and until")
            data[k] = v.value if isinstance(v, Scalar) else None
        for k in ("rule", "path", "reason", "until"):
            if not data.get(k):
                raise InputError(f"missing required key '{k}'", where=where, path=base,
                                 hint="a waiver needs the rule id, the path it covers, the "
                                      "reason and the last day it holds (until: YYYY-MM-DD)")
        if data["rule"] not in ids:
            raise InputError(f"unknown rule '{data['rule']}'{did_you_mean(data['rule'], ids)}",
                             where=str(item.entries["rule"].loc), path=f"{base}.rule",
                             hint="the rule ids are in docs/errors.md#model-rules")
        if not ids[data["rule"]].waivable:
            raise InputError(f"rule '{data['rule']}' cannot be waived",
                             where=str(item.entries["rule"].loc), path=f"{base}.rule",
                             hint="fix the model instead")
        until = parse_until(data["until"], item, base)
        out.append(Waiver(data["rule"], str(data["path"]), str(data["reason"]), until,
                          where, expired=until < today))
    return out


def check(resolved, root: Path, waivers: list[Waiver] | None = None) -> list[Violation]:
    """Every rule for the selection of ``resolved``, waivers applied; stable order."""
    from ..model import enabled_tree, locate
    from ..nodes import to_plain

    tree = enabled_tree(resolved)
    data = to_plain(tree)
    stack = resolved.stack
    ctx = Ctx(root, tree, data, stack, data.get("services") or {}, list(resolved.layers))
    waivers = load_waivers(root) if waivers is None else waivers
    out: list[Violation] = []
    for r in RULES:
        if stack.mode not in r.modes:
            continue
        for path, message, fix in r.fn(ctx):
            node, loc = locate(resolved.tree, path)
            if node is not None and node.loc.layer != "default":
                loc = node.loc  # the layer that last set it (a list replaced in an overlay)
            up = path
            while loc.layer == "default" and up:
                up = up[:-1]  # filled by a default: point at the nearest written parent
                parent, loc = locate(resolved.tree, up)
                if parent is not None and parent.loc.layer != "default":
                    loc = parent.loc
            v = Violation(r.id, format_path(path), str(loc), message, fix)
            w = next((w for w in waivers if w.matches(v)), None) if r.waivable else None
            out.append(replace(v, waiver=w) if w else v)
    return sorted(out, key=lambda v: (v.where.split(":")[0], _line(v.where), v.rule))


def _line(where: str) -> int:
    tail = where.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def report(violations: list[Violation], title: str) -> str:
    failing = [v for v in violations if v.failing]
    waived = [v for v in violations if not v.failing]
    lines = [title]
    for v in failing:
        lines.append(v.render())
    for v in waived:
        lines.append("WAIVED " + v.render())
    lines.append(f"{len(failing)} rule violations, {len(waived)} waived")
    return "\n".join(lines)
