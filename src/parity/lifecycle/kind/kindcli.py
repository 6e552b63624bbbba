"""Which ``kind`` binary the kind lane runs, and building the pinned one.

The kind CLI and parity's offline node image come from one pin,
``images/kind-node/kind/go.mod`` (a node image is made for the kind
release that ships it). The lane runs, in this order:

1. ``kind`` on PATH, when it is at least :data:`KIND_MIN`;
2. the pinned kind parity built before, ``.parity/cache/tools/kind-<version>/kind``;
3. that pinned kind built now from the Go module proxy (``up`` does this when Go is
   installed, with progress; ``inv doctor`` says it will).

Otherwise a :class:`~parity.errors.PrerequisiteMissing` names both fixes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ... import fsio
from ...errors import CheckFailed, PrerequisiteMissing

KIND_MIN = (0, 30, 0)
MODULE_DIR = Path("images/kind-node/kind")
TOOLS_DIR = Path(".parity/cache/tools")


def pinned_version(root: Path) -> str:
    text = (root / MODULE_DIR / "go.mod").read_text(encoding="utf-8")
    m = re.search(r"^require sigs\.k8s\.io/kind (v\S+)", text, re.M)
    if not m:
        raise CheckFailed(f"{MODULE_DIR / 'go.mod'} does not require sigs.k8s.io/kind")
    return m.group(1)


def install_hint(root: Path) -> str:
    v = pinned_version(root)
    return (f"install Go (https://go.dev/doc/install) and parity builds the pinned kind {v} "
            f"itself on the next up, or: go install sigs.k8s.io/kind@{v} (or a release "
            "binary: https://kind.sigs.k8s.io/docs/user/quick-start/#installation)")


def version_of(path: str) -> tuple[int, ...] | None:
    try:
        out = subprocess.run([path, "version"], capture_output=True, text=True,
                             timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"v?(\d+)\.(\d+)\.(\d+)", out or "")
    return tuple(int(x) for x in m.groups()) if m else None


@dataclass(frozen=True)
class Found:
    path: str | None             # None: not available yet
    version: tuple[int, ...] | None
    how: str                     # "PATH", "parity's build", "to build", or why not
    buildable: bool = False


def cached_path(root: Path) -> Path:
    return root / TOOLS_DIR / f"kind-{pinned_version(root)}" / "kind"


def find(root: Path) -> Found:
    """The kind the lane would run, without building anything."""
    on_path = shutil.which("kind")
    too_old = None
    if on_path:
        v = version_of(on_path)
        if v is not None and v >= KIND_MIN:
            return Found(on_path, v, "PATH")
        too_old = f"kind {'.'.join(map(str, v)) if v else '(unknown version)'} on PATH " \
                  f"({on_path}) is older than {'.'.join(map(str, KIND_MIN))}"
    cached = cached_path(root)
    if cached.is_file() and os.access(cached, os.X_OK):
        return Found(str(cached), version_of(str(cached)), "parity's build")
    if shutil.which("go"):
        return Found(None, None, "to build", buildable=True)
    return Found(None, None, too_old or "kind is not installed")


def ensure(root: Path, say=None) -> str:
    """The path of a usable kind; builds the pinned one when needed and possible."""
    found = find(root)
    if found.path:
        return found.path
    if not found.buildable:
        v = ".".join(map(str, KIND_MIN))
        raise PrerequisiteMissing(f"{found.how}; the kind lane needs kind {v} or newer",
                                  hint=install_hint(root))
    target = cached_path(root)
    fsio.ensure_dir(target.parent)
    if say:
        say(f"  building kind {pinned_version(root)} from the Go module proxy into "
            f"{target.relative_to(root)}")
    env = {**os.environ, "GOWORK": "off", "GOFLAGS": "-mod=readonly", "CGO_ENABLED": "0"}
    tmp = target.with_name("kind.tmp")
    proc = subprocess.run(["go", "build", "-trimpath", "-ldflags=-s -w", "-o", str(tmp),
                           "sigs.k8s.io/kind"], cwd=root / MODULE_DIR, env=env,
                          capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-10:])
        raise PrerequisiteMissing(f"building kind {pinned_version(root)} failed:\n{tail}",
                                  hint=install_hint(root))
    tmp.replace(target)
    return str(target)
