"""Build rules: what a build context sends and what its Dockerfile copies, declares
and exposes (state in the context, missing or ignored sources, undeclared build
args, ports the image listens on)."""

from __future__ import annotations

import difflib
import fnmatch
import re
from pathlib import Path

from ..errors import ParityError
from .base import Ctx, rule
from .sources import COPY, dockerfile_instructions


@rule("build-context-holds-state", "a build context that sends the repository's state")
def build_context_state(c: Ctx):
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
def build_source_missing(c: Ctx):
    root = c.root.resolve()
    for name, b, ctx in c.build_contexts():
        if (ctx / "build.yaml").is_file():
            continue  # a script build (parity.images): no Dockerfile COPY to check
        fetched = _fetched(ctx, root)
        ignores = _dockerignore(ctx)
        df = (ctx / (b.get("dockerfile") or "Dockerfile"))
        try:
            lines = dockerfile_instructions(df)
        except OSError:
            yield ("services", name, "build", "dockerfile"), (
                f"no Dockerfile at {df.relative_to(root) if df.is_relative_to(root) else df}"), \
                "fix build.dockerfile (relative to build.context)"
            continue
        where = df.relative_to(root) if df.is_relative_to(root) else df
        for lineno, line in lines:
            m = COPY.match(line)
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
    # lazy: parity.images loads PyYAML and the build machinery; only build rules need it
    from ..images import load_fetch

    try:
        return {f.dest.strip("/") for f in load_fetch(ctx, root)}
    except ParityError:
        return set()


_ARG = re.compile(r"^\s*ARG\s+([A-Za-z_][A-Za-z0-9_]*)", re.I)
_EXPOSE = re.compile(r"^\s*EXPOSE\s+(.*)$", re.I)
_RUN_LINE = re.compile(r"^\s*(CMD|ENTRYPOINT)\s+(.*)$", re.I)
_PORT_FLAG = re.compile(r"(?:^|[\s\[\",])--?(?:port|http[-_]port|listen[-_]port)(?:[=\s\",]+)(\d{2,5})\b",
                        re.I)


def _dockerfile(c: Ctx, b: dict, ctx: Path) -> tuple[str, list[tuple[int, str]]] | None:
    """(repo-relative path, instructions) of a build's Dockerfile, or None."""
    df = ctx / (b.get("dockerfile") or "Dockerfile")
    try:
        lines = dockerfile_instructions(df)
    except (OSError, UnicodeDecodeError):
        return None
    root = c.root.resolve()
    rel = str(df.relative_to(root)) if df.resolve().is_relative_to(root) else str(df)
    return rel, lines


@rule("build-arg-not-declared", "a build arg the Dockerfile never declares")
def build_arg_not_declared(c: Ctx):
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
def image_port_not_declared(c: Ctx):
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
