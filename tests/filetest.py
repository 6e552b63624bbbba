"""Golden file tests in the spirit of ytt's filetests: one file per case, sections
separated by ``=== NAME`` lines; success and error cases side by side."""

from __future__ import annotations

import re
from pathlib import Path

_SECTION = re.compile(r"^=== (.+)$", re.M)


def read_case(path: Path) -> dict[str, str]:
    text = path.read_text(encoding="utf-8")
    parts = _SECTION.split(text)
    sections: dict[str, str] = {"_comment": parts[0]}
    for name, body in zip(parts[1::2], parts[2::2]):
        sections[name.strip()] = body[1:] if body.startswith("\n") else body
    return sections


def write_case(path: Path, sections: dict[str, str]) -> None:
    out = sections.get("_comment", "")
    for name, body in sections.items():
        if name == "_comment":
            continue
        out += f"=== {name}\n{body}"
        if not out.endswith("\n"):
            out += "\n"
    path.write_text(out, encoding="utf-8")


def apply_edits(root: Path, sections: dict[str, str]) -> None:
    """Apply a case's edits to a copy of the repository: ``file: PATH`` writes the
    file, ``append: PATH`` adds to it, ``generate: PATH`` writes what the Python
    expression evaluates to, ``fifo: PATH`` makes a named pipe there and
    ``symlink: PATH`` a symbolic link to the target in the body (``{root}`` is the
    copy's root, ``{outside}`` a file outside it)."""
    import os
    for name, body in sections.items():
        if name.startswith("file: "):
            target = root / name[6:].strip()
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(body, encoding="utf-8")
        elif name.startswith("append: "):
            target = root / name[8:].strip()
            target.write_text(target.read_text(encoding="utf-8") + body, encoding="utf-8")
        elif name.startswith("generate: "):
            target = root / name[10:].strip()
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(eval(body, {}), encoding="utf-8")  # noqa: S307 - test data
        elif name.startswith("fifo: "):
            target = root / name[6:].strip()
            target.parent.mkdir(parents=True, exist_ok=True)
            os.mkfifo(target)
        elif name.startswith("symlink: "):
            target = root / name[9:].strip()
            target.parent.mkdir(parents=True, exist_ok=True)
            outside = root.parent / "outside.yaml"
            outside.write_text("secret: do-not-echo-this-line\n", encoding="utf-8")
            target.symlink_to(body.strip().format(root=root, outside=outside))
