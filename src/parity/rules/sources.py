"""Reading build contexts: the one Dockerfile reader of the rules
(``dockerfile_instructions``), the source files a Dockerfile copies, read once per
check, and the rule those sources feed (env keys the app never reads)."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from .base import Ctx, rule


COPY = re.compile(r"^\s*(COPY|ADD)\s+(.*)$", re.I)


def dockerfile_instructions(path: Path) -> list[tuple[int, str]]:
    """(first line number, instruction) of the Dockerfile at ``path``
    (images.dockerfile_lines: comments dropped, continuations joined). Raises
    OSError or UnicodeDecodeError: each caller decides what an unreadable file means."""
    # lazy: parity.images loads PyYAML and the build machinery; only build rules need it
    from ..images import dockerfile_lines

    return dockerfile_lines(path.read_text(encoding="utf-8"))


def _source_files(ctx: Path, dockerfile: Path) -> list[Path]:
    """The source files a Dockerfile copies from its context (its own COPY lines)."""
    try:
        lines = dockerfile_instructions(dockerfile)
    except (OSError, UnicodeDecodeError):
        return []
    files: list[Path] = []
    for _, line in lines:
        m = COPY.match(line)
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


def source_match(c: Ctx, ctx: Path, dockerfile: Path,
                 pattern: re.Pattern) -> tuple[str, str] | None:
    """(first group, file:line) of the first line of the copied sources that
    ``pattern`` matches, or None."""
    for rel, n, line in _source_lines(c, ctx, dockerfile):
        m = pattern.search(line)
        if m:
            return m.group(1), f"{rel}:{n}"
    return None


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
def env_key_unread(c: Ctx):
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
