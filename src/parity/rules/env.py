"""Env rules: the shape of env values and of the shell lines that read them
(undefined variables, wrong shapes for a key, typos, settings services disagree on,
env that contradicts the command line)."""

from __future__ import annotations

import difflib
import re

from ..nodes import ListKey
from .base import Ctx, outside_refs, rule


SHELL_VAR = re.compile(r"(?<!\$)\$(?:\{([A-Za-z_][A-Za-z0-9_]*)([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
RUNTIME_VARS = {"HOME", "PATH", "HOSTNAME", "PWD", "OLDPWD", "USER", "LOGNAME", "SHELL",
                "TERM", "LANG", "SHLVL", "IFS", "PPID", "RANDOM", "SECONDS", "UID", "EUID",
                "LINENO", "OPTARG", "OPTIND", "BASH_SOURCE", "TMPDIR"}


@rule("undefined-variable", "a shell variable the service's environment never defines")
def undefined_variable(c: Ctx):
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
            for m in SHELL_VAR.finditer(outside_refs(content).replace("$$", "  ")):
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
            m = re.search(r"(?<!\$)\$([A-Za-z_][A-Za-z0-9_]*)", outside_refs(value))
            if m:
                yield ("services", name, "env", key), (
                    f"'${m.group(1)}' in an env value is never expanded: the process "
                    "receives the dollar sign literally"), \
                    "write the value, a reference template (${service:…}, ${route:…}) or " \
                    "a secret reference"


def _set_in_script(script: str, var: str) -> bool:
    """``VAR=…``, ``export VAR``, ``read VAR`` or ``for VAR in`` inside the script."""
    return re.search(rf"(^|[\s;&|(]){var}=|\bexport\s+{var}\b|\bread\s+(-\w+\s+)*{var}\b|"
                     rf"\bfor\s+{var}\s+in\b", script) is not None


# settings that name one thing on a shared server (a database per service is a
# normal design, so database names are not among them)
SHARED_KEY = re.compile(r"(NAMESPACE|REALM|VHOST|CLUSTER_NAME|TENANT|ORG)$")


@rule("settings-disagree", "services that disagree on a shared setting")
def settings_disagree(c: Ctx):
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
def env_shape(c: Ctx):
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
                                          re.search(r"://|:\d+$", outside_refs(v))):
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


def _norm(key: str) -> str:
    return key.lower().replace("-", "_").lstrip("_")


@rule("env-key-typo", "an env key one letter off the one the others use")
def env_key_typo(c: Ctx):
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
def env_contradicts_args(c: Ctx):
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
                        "set one of them, or give both the same value"
                    break
