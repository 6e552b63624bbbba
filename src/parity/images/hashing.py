"""The inputs hash of a planned image: what decides whether it is rebuilt. Any
change here changes every hash, and so rebuilds every image once (bump
:data:`HASH_SCHEME` when the meaning changes on purpose)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from .records import ImageBuild

#: Bumped when the meaning of the hash (or a build recipe in this package) changes,
#: so every image is rebuilt once.
HASH_SCHEME = "parity-images/1"
#: Not inputs: caches a local run of the code leaves next to it.
IGNORED_NAMES = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache"})
IGNORED_SUFFIXES = (".pyc", ".pyo")


def context_files(context: Path) -> list[Path]:
    """Every file under ``context`` (symlinks as links), sorted by relative path,
    without the caches a local run leaves (``__pycache__``, ``*.pyc``)."""
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(context, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_NAMES)
        for d in dirnames:
            p = Path(dirpath) / d
            if p.is_symlink():
                out.append(p)
        for name in filenames:
            if name.endswith(IGNORED_SUFFIXES):
                continue
            out.append(Path(dirpath) / name)
    return sorted(out, key=lambda p: p.relative_to(context).as_posix())


def tree_digest(context: Path) -> str:
    """sha256 over the context: for each file in path order its path, type,
    executable bit and content (a symlink: its target)."""
    h = hashlib.sha256()
    for p in context_files(context):
        rel = p.relative_to(context).as_posix()
        st = p.lstat()
        if stat.S_ISLNK(st.st_mode):
            kind, body = "link", os.readlink(p).encode()
        elif stat.S_ISREG(st.st_mode):
            kind = "exec" if st.st_mode & 0o111 else "file"
            body = file_sha(p).encode()
        else:
            kind, body = "other", b""
        h.update(f"{rel}\0{kind}\0".encode() + body + b"\n")
    return h.hexdigest()


def file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def inputs_hash(ib: ImageBuild, parent_ids: Mapping[str, str] | None = None) -> str:
    """The inputs hash of one planned image. ``parent_ids`` maps each image it is
    built FROM to its local image ID (absent: not present locally)."""
    parent_ids = parent_ids or {}
    doc = {
        "scheme": HASH_SCHEME,
        "kind": ib.kind,
        "context": tree_digest(ib.context),
    }
    if ib.kind == "dockerfile":
        assert ib.dockerfile is not None
        doc["dockerfile"] = file_sha(ib.dockerfile)
        doc["target"] = ib.target or ""
        doc["args"] = [list(a) for a in ib.args]
        doc["parents"] = {p: parent_ids.get(p, "absent:" + p) for p in ib.parents}
        doc["fetch"] = [[f.requirement, f.member, f.dest, [list(s) for s in f.sha256]]
                        for f in ib.fetch]
    elif ib.kind == "script":
        assert ib.script is not None
        doc["script"] = ib.script.script
        doc["args"] = [list(a) for a in ib.args]
    else:
        doc["recipe"] = ib.recipe
    blob = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()
