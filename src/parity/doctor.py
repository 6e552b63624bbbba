"""``inv doctor``: every prerequisite of a lane checked at once, nothing changed.

``up`` stops at the first missing prerequisite; the doctor runs the same checks
(the lanes' own preflight functions, so the messages are the ones ``up`` would
print) and a few that only warn, and reports them all: a table, or JSON. It
never creates, pulls or deletes anything, and never connects to a kube context:
the user's current context is read from the kubeconfig file only to say that
parity will not use it.

Exit 0 when the lane can run (warnings allowed), 3 when a prerequisite is
missing.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from . import docker, images
from .browser import CANDIDATES
from .errors import ParityError
from .lifecycle.compose import ComposeLane
from .lifecycle.kind import KindLane, Unreadable, read_small_file
from .modes import mode_record
from .render.edge import CRD_DIR, GATEWAY_API_VERSION, gateway_api_crds

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass
class Finding:
    check: str
    status: str   # ok, warn, fail
    detail: str
    hint: str = ""


def _attempt(check: str, fn, ok_detail) -> Finding:
    """Run one of the lanes' own checks; its error message becomes the finding."""
    try:
        value = fn()
    except ParityError as exc:
        return Finding(check, FAIL, exc.message, exc.hint or "")
    return Finding(check, OK, ok_detail(value))


def _fmt(version) -> str:
    return ".".join(map(str, version))


def _image_store() -> Finding:
    proc = docker.run(["docker", "info", "--format", "{{json .DriverStatus}}"], check=False,
                      timeout=20)
    text = proc.stdout or ""
    if "io.containerd.snapshotter" in text:
        return Finding("image store", WARN, "Docker's containerd image store is enabled",
                       "kind load can fail with it (kubernetes-sigs/kind#3795): if images do "
                       "not reach the node, switch back to the classic store")
    return Finding("image store", OK, "classic (kind load works)")


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


def _kube_context(root: Path, cluster: str) -> Finding:
    """Read (never use) the user's current context, to say parity leaves it alone."""
    current, skipped = user_current_context()
    own = root / ".parity" / "kind" / "kubeconfig"
    detail = (f"your current context '{current}' is never used"
              if current else "no current context of yours")
    detail += (f"; parity talks only to {own.relative_to(root)} (context kind-{cluster}, "
               "on loopback)")
    if skipped:
        detail += "; skipped (unreadable, and unused by parity): " + "; ".join(skipped[:3]) \
            + (f" (and {len(skipped) - 3} more)" if len(skipped) > 3 else "")
    return Finding("kube context", OK, detail)


def _privileged() -> Finding:
    """kind's nodes need docker run --privileged; say whether this engine allows it,
    and through what. The shim (decision 0010) is named, never applied."""
    ok, detail = docker.privileged_probe()
    shim = docker.shim_in_use()
    if ok is False:
        return Finding("privileged nodes", FAIL, detail, docker.SHIM_HINT)
    if ok is None:
        return Finding("privileged nodes", WARN, f"not checked: {detail}",
                       "if kind create fails with 'unable to apply caps': "
                       + docker.SHIM_HINT)
    if shim:
        return Finding("privileged nodes", OK, f"{detail} through the docker shim {shim} "
                                               "(decision 0010: only for machines whose "
                                               "Docker cannot)")
    return Finding("privileged nodes", OK, detail)


def _runtime_images(stack, root: Path) -> list[Finding]:
    """The kind node image and the edge controller: present, or built by up (with
    what it needs), or pulled by kind/the node from a registry."""
    fresh = images.freshness(stack, root)
    out = []
    for check, runtime in (("node image", stack.kind_node), ("edge controller",
                                                             stack.kind_edge)):
        where = stack.where(f"{runtime.name}.image") or runtime.name
        if runtime.image in fresh:
            ib, state = fresh[runtime.image]
            missing = ib.script.missing() if ib.script else []
            if state == "up to date":
                out.append(Finding(check, OK, f"{runtime.image} built, up to date"))
            elif missing:
                out.append(Finding(check, FAIL, f"{runtime.image} ({where}) is {state}; its "
                                   f"build ({ib.rel}) needs "
                                   + ", ".join(n.command for n in missing),
                                   "; ".join(n.hint for n in missing)))
            else:
                out.append(Finding(check, OK, f"{runtime.image}: {state}; up builds it from "
                                   f"{ib.rel} (the first build takes minutes and needs the "
                                   "Go module proxy" + (" and a Debian mirror"
                                                        if ib.script and ib.script.root
                                                        else "") + ")"))
        elif images.local_image(runtime.image) is not None:
            out.append(Finding(check, OK, f"{runtime.image} present"))
        else:
            out.append(_pull_finding(check, [runtime.image], f"not here ({where})",
                                     "kind" if check == "node image" else "the node"))
    out.append(_edge_manifests())
    return out


def _edge_manifests() -> Finding:
    """The Gateway API CRDs up installs: vendored, and every file as pinned."""
    try:
        crds, _ = gateway_api_crds()
    except (ParityError, OSError) as exc:
        message = exc.message if isinstance(exc, ParityError) else str(exc)
        return Finding("edge manifests", FAIL, message,
                       "git checkout -- src/parity/schemas (the vendored CRDs)")
    return Finding("edge manifests", OK, f"Gateway API {GATEWAY_API_VERSION} standard CRDs, "
                                         f"{len(crds)} files match {CRD_DIR.name}/SHA256SUMS")


def _kubectl(lane) -> Finding:
    version = lane.check_kubectl()
    node = lane.node()
    if version is None:
        return Finding("kubectl", WARN, "not installed; parity does not need it",
                       f"to look around yourself: docker exec {node} kubectl --kubeconfig "
                       "/etc/kubernetes/admin.conf get pods -A")
    return Finding("kubectl", OK, f"kubectl {_fmt(version)} (yours; parity talks to the API "
                                  f"itself): kubectl --kubeconfig .parity/kind/kubeconfig …")


def _browser() -> Finding:
    """What ``inv validate --browser`` needs; optional (a warning, never a failure)."""
    import importlib.util

    chromium = next((shutil.which(n) for n in CANDIDATES if shutil.which(n)), None)
    missing = [name for name, ok in (
        ("chromium", chromium), ("certutil (libnss3-tools)", shutil.which("certutil")),
        ("playwright (Python)", importlib.util.find_spec("playwright"))) if not ok]
    if missing:
        return Finding("browser checks", WARN, f"{', '.join(missing)} missing; only "
                       "inv validate --browser needs them", "make browser-deps; make venv")
    return Finding("browser checks", OK, f"{chromium}, certutil, playwright "
                                         "(inv validate --browser)")


def registry_of(image: str) -> str:
    """The registry (host or host:port) an image reference is pulled from, by
    Docker's rules: a first path component with a dot, a port or ``localhost``."""
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return "registry-1.docker.io"


def reachable(registry: str, seconds: float = 3.0) -> str | None:
    """None when a TCP connection to the registry opens within ``seconds``, else why
    not. Nothing is sent: it only tells whether a pull could start."""
    import socket

    host, _, port_text = registry.rpartition(":") if registry.count(":") == 1 \
        else (registry, "", "")
    port = int(port_text) if port_text.isdigit() else 443
    try:
        with socket.create_connection((host, port), timeout=seconds):
            return None
    except socket.gaierror:
        return f"{host} does not resolve"
    except OSError as exc:
        return f"{host}:{port} does not answer ({exc.strerror or exc})"


def _pull_finding(check: str, images_to_pull: list[str], detail: str, who: str) -> Finding:
    """A finding for images that must be pulled: FAIL when their registry cannot even
    be reached from here (up would fail), else WARN (a pull may still be refused)."""
    hosts = sorted({registry_of(i) for i in images_to_pull})
    down = {h: why for h in hosts if (why := reachable(h))}
    hint = ("where no container registry is reachable use the offline profile "
            "(PROFILE=offline), which builds every image")
    if down:
        return Finding(check, FAIL, f"{detail}; {who} pulls {images_to_pull[0]}"
                       + (f" and {len(images_to_pull) - 1} more" if len(images_to_pull) > 1
                          else "") + " from " + ", ".join(hosts) + ", which cannot be "
                       "reached: " + "; ".join(down.values()), hint)
    return Finding(check, WARN, f"{detail}; {who} pulls {images_to_pull[0]}"
                   + (f" and {len(images_to_pull) - 1} more" if len(images_to_pull) > 1
                      else "") + f" from {', '.join(hosts)}", hint)


def _images(stack) -> Finding:
    mode = mode_record(stack.mode)
    wanted = sorted({s.image for s in stack.services.values() if s.role != "edge"
                     or mode.runs_edge_image})
    present = list(images.present_images(wanted))
    missing = [i for i in wanted if i not in present]
    detail = f"{len(present)} of {len(wanted)} images of profile {stack.profile} present"
    if not missing:
        return Finding("images", OK, detail)
    pulled = [i for i in missing
              if not any(s.image == i and s.build for s in stack.services.values())]
    if pulled:
        return _pull_finding("images", pulled, detail, mode.puller)
    return Finding("images", OK, f"{detail}; up builds the other {len(missing)} (the first "
                                 "build of the offline profile needs Debian's mirrors)")


def compose_preflight(root: Path, resolved) -> list[Finding]:
    """What the compose lane needs besides the engine, the compose plugin and disk
    (the compose :class:`parity.modes.Mode`'s ``preflight``)."""
    stack = resolved.stack
    lane = ComposeLane(root, resolved)
    return [_attempt("host ports", lane.check_ports,
                     lambda _: f"{stack.edge_bind}:{stack.http_port} and "
                               f":{stack.https_port} free (or parity's)"),
            _attempt("data", lane.check_data,
                     lambda _: "no data written by another image")]


def kind_preflight(root: Path, resolved) -> list[Finding]:
    """What the kind lane needs besides the engine, the compose plugin and disk
    (the kind :class:`parity.modes.Mode`'s ``preflight``)."""
    stack = resolved.stack
    lane = KindLane(root, resolved)
    out = [_attempt("kind", lane.check_kind, lambda detail: detail), _privileged()]
    out += _runtime_images(stack, root)
    out.append(_attempt("docker memory", KindLane.check_memory,
                        lambda m: f"{m / 1024**3:.1f} GiB"))
    out.append(_attempt("host ports", lane.check_ports,
                        lambda _: f"{stack.edge_bind}:{stack.http_port} and "
                                  f":{stack.https_port} free (or the cluster's)"))
    out.append(_image_store())
    out.append(_kubectl(lane))
    out.append(_kube_context(root, lane.cluster))
    return out


def run(root: Path, resolved) -> list[Finding]:
    stack = resolved.stack
    mode = mode_record(stack.mode)
    out = [Finding("python", OK, f"{platform.python_version()} ({sys.executable})")]
    engine = _attempt("docker engine", docker.engine_ok, lambda _: "reachable")
    out.append(engine)
    if engine.status == FAIL:
        return out  # every other check asks the engine
    out.append(_attempt("compose plugin", docker.compose_version,
                        lambda v: f"Docker Compose {_fmt(v)}"))
    out.append(_attempt("disk", ComposeLane.check_disk,
                        lambda free: f"{free / 1024**3:.0f} GiB free for Docker"))
    out += mode.preflight(root, resolved)
    out.append(_images(stack))
    ca = root / ".parity" / "ca" / "ca.crt"
    out.append(Finding("local CA", OK, f"{ca.relative_to(root)}" if ca.exists()
                       else "created by the first up (trust it once to browse without "
                            "warnings: docs/identity.md#trusting-the-local-ca-in-a-desktop-"
                            "browser)"))
    out.append(_browser())
    return out


def exit_code(findings: list[Finding]) -> int:
    return 3 if any(f.status == FAIL for f in findings) else 0


def table(findings: list[Finding], title: str) -> str:
    from io import StringIO

    # lazy: rich costs 30 ms; only the table needs it
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for col in ("check", "status", "detail", "next"):
        t.add_column(col, overflow="fold")
    style = {OK: "green", WARN: "yellow", FAIL: "bold red"}
    for f in findings:
        t.add_row(f.check, f"[{style[f.status]}]{f.status}[/]", f.detail, f.hint)
    buf = StringIO()
    width = shutil.get_terminal_size((120, 20)).columns
    Console(file=buf, width=max(width, 100), no_color=not sys.stdout.isatty()).print(t)
    fails = sum(f.status == FAIL for f in findings)
    warns = sum(f.status == WARN for f in findings)
    verdict = ("ready" if not fails else f"{fails} missing") + (
        f", {warns} warning{'s' if warns != 1 else ''}" if warns else "")
    text = "\n".join(line.rstrip() for line in buf.getvalue().splitlines())
    return text.rstrip() + f"\n{verdict}"


def as_json(findings: list[Finding], mode: str) -> str:
    return json.dumps({"mode": mode, "ready": exit_code(findings) == 0,
                       "checks": [asdict(f) for f in findings]}, indent=2)
