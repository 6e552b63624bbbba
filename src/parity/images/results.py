"""What a build reports: one :class:`ImageResult` per image, the table of
``inv images`` and the one line a lane's images step ends with."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class ImageResult:
    image: str
    action: str          # "built" | "skipped"
    reason: str
    seconds: float
    inputs_hash: str
    image_id: str = ""
    size_bytes: int = 0
    services: tuple[str, ...] = ()

    def __str__(self) -> str:
        size = f", {_size(self.size_bytes)}" if self.size_bytes else ""
        return f"{self.image}: {self.action} in {self.seconds:.1f}s{size} ({self.reason})"


def report(results: Iterable[ImageResult]) -> str:
    """A table: image, built/skipped, seconds, size, reason."""
    results = list(results)
    if not results:
        return "no images to build for this profile"
    rows = [(r.image, r.action, f"{r.seconds:.1f}s", _size(r.size_bytes), r.reason)
            for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row[:4], widths)) + "  " + row[4]
             for row in rows]
    built = sum(1 for r in results if r.action == "built")
    lines.append(f"{built} built, {len(results) - built} skipped")
    return "\n".join(lines)


def summary(results: Iterable[ImageResult], running: Mapping[str, str] | None = None) -> str:
    """The one line a lane's images step ends with: what this run built, and what it
    found already built, which is not "unchanged" when it differs from what runs
    (``running``: image reference -> the ID its running containers use), e.g. after
    ``inv images --force`` or a build this run waited for."""
    results = list(results)
    built = [r for r in results if r.action == "built"]
    ready = [r for r in results if r.action != "built"]
    text = f"{len(built)} built"
    if built:
        text += f" ({', '.join(r.image for r in built)})"
    text += f", {len(ready)} already up to date"
    newer = sorted(r.image for r in ready if running and r.image in running
                   and r.image_id and running[r.image] != r.image_id)
    if newer:
        text += (f" ({len(newer)} of them rebuilt since the running containers started: "
                 f"{', '.join(newer)})")
    elif any("another build" in r.reason for r in ready):
        text += " (built by another build in this checkout that this one waited for)"
    return text


def _size(n: int) -> str:
    return f"{n / 1e6:.0f}MB" if n else "-"
