"""Dockerfile parsing: its instructions (continuations joined) and the images it is
built FROM. Public so that every reader of Dockerfiles shares one parser (the
rules of ``inv lint`` use it too)."""

from __future__ import annotations

import re
from collections.abc import Mapping

_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-+]([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


def dockerfile_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, instruction) of a Dockerfile: comments and blank lines
    dropped, continuation lines joined."""
    out, buf, start = [], "", 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if not buf:
            start = n
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        out.append((start, buf + line))
        buf = ""
    return out + ([(start, buf)] if buf else [])


def dockerfile_parents(text: str, args: Mapping[str, str], target: str | None = None
                       ) -> list[str]:
    """The images a Dockerfile is built FROM (build stages excluded), with ``ARG``
    defaults before the first ``FROM`` and the given build args substituted."""
    lines = [line for _, line in dockerfile_lines(text)]
    scope: dict[str, str] = {}
    stages: list[tuple[str, str | None]] = []
    seen_from = False
    for line in lines:
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "ARG" and not seen_from:
            for item in rest.split():
                key, eq, default = item.partition("=")
                value = args.get(key, default.strip("\"'") if eq else None)
                if value is not None:
                    scope[key] = value
        elif word == "FROM":
            seen_from = True
            parts = [p for p in rest.split() if not p.startswith("--")]
            if not parts:
                continue
            image = _VAR.sub(lambda m: scope.get(m.group(1) or m.group(3) or "",
                                                 m.group(2) or ""), parts[0])
            alias = parts[2] if len(parts) >= 3 and parts[1].lower() == "as" else None
            stages.append((image, alias))
    names = {alias for _, alias in stages if alias}
    if target:
        # only the stages up to the target are built
        upto = [i for i, (_, a) in enumerate(stages) if a == target]
        if upto:
            stages = stages[:upto[0] + 1]
    out = []
    for image, _ in stages:
        if image not in names and image.lower() != "scratch" and image not in out:
            out.append(image)
    return out
