"""Address rules: how one service names another, and what a browser is given.

A literal browser URL or service host, a loopback address, internal DNS names that
do not resolve, a URL whose scheme does not fit its port, a variable named after
one service that points at another, an ops port given to a program.
"""

from __future__ import annotations

import re
from typing import Iterator

from ..model import templates
from .base import Ctx, outside_refs, rule


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
def literal_browser_url(c: Ctx):
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
        text = outside_refs(value)
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
def literal_service_address(c: Ctx):
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
            text = outside_refs(value)
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


LISTEN_FLAG = re.compile(r"(listen|bind|host|addr|address|ip)[\w-]*[= ](127\.0\.0\.1|localhost|"
                         r"\[?::1\]?)(:\d+)?\b", re.I)
LISTEN_KEY = re.compile(r"(LISTEN|BIND)(_|$)|^(HOST|BIND_HOST|LISTEN_HOST|SERVER_HOST|"
                        r"HTTP_HOST|APP_HOST)$", re.I)


@rule("listens-on-loopback", "a service that listens on loopback only")
def listens_on_loopback(c: Ctx):
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


@rule("browser-domain", "a stack domain browsers do not resolve to this machine")
def browser_domain(c: Ctx):
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
def internal_dns(c: Ctx):
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


_INTERNAL_REF = re.compile(r"\$\{(service|host|port):[^}]*\}")
_URL_REF = re.compile(r"\b([a-z][a-z0-9+.-]*)://\$\{(service|host):([a-z][-a-z0-9]*)"
                      r"(?:\.([a-z0-9][-a-z0-9]*))?\}", re.I)
SCHEME_PROTOCOL = {"http": "http", "https": "http", "ws": "http", "wss": "http",
                   "grpc": "grpc", "grpcs": "grpc"}


@rule("internal-address-for-browser", "an address inside the runtime given to a browser")
def internal_for_browser(c: Ctx):
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
def scheme_mismatch(c: Ctx):
    ports = {n: {p["name"]: p.get("protocol", "tcp") for p in s.get("ports") or []}
             for n, s in c.services.items()}
    for name in c.services:
        for path, value in c.strings(name):
            for m in _URL_REF.finditer(value):
                scheme, target, port = m.group(1).lower(), m.group(3), m.group(4)
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


def _names_in_key(key: str, names: set[str]) -> list[str]:
    """Service names a variable's name starts with (REDIS_PORT -> redis)."""
    k = key.lower().replace("-", "_")
    return [n for n in sorted(names, key=len, reverse=True)
            if k.startswith(n.replace("-", "_") + "_")]


_REF_TARGET = re.compile(r"\$\{(service|host|port):([a-z0-9][-a-z0-9]*)")


@rule("reference-to-another-service", "a variable named after one service that points at another")
def reference_to_another_service(c: Ctx):
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
            m = re.search(r"\$\{stack:(name|namespace)\}[-_.]([a-z0-9][-a-z0-9]*)", value)
            if m and m.group(2).split(".")[0] in names:
                target = m.group(2).split(".")[0]
                yield path, (f"'{value}' assembles a host name from ${{stack:{m.group(1)}}}: "
                             f"no runtime calls {target} that (compose knows the service "
                             "name, kind the Service's DNS name)"), \
                    f"write ${{host:{target}}}"
            elif HOST_KEY.search(key) and \
                    re.search(rf"(?<![\w.-]){stack}[-_]([a-z0-9][-a-z0-9]*)", outside_refs(value)):
                m2 = re.search(rf"(?<![\w.-]){stack}[-_]([a-z0-9][-a-z0-9]*)", value)
                target = m2.group(1)
                for n in sorted(names, key=len, reverse=True):
                    if target == n or target.startswith(n + "-") or target.startswith(n + "_"):
                        yield path, (f"'{m2.group(0)}' is a container-style name of {n}: "
                                     "no such host in kind, and compose names it after the "
                                     "project"), f"write ${{host:{n}}}"
                        break


OPS_PORT = re.compile(r"^(ui|web|console|admin|dashboard|metrics|monitor|management|"
                      r"debug|status)$", re.I)


@rule("ops-port-as-address", "a program given another service's UI or ops port as its address")
def ops_port_as_address(c: Ctx):
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
