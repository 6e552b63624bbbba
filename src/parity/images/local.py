"""The images present in the local Docker engine, asked through :mod:`parity.docker`."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from .. import docker


@dataclass(frozen=True)
class LocalImage:
    id: str
    labels: dict
    size: int


_INSPECT_FORMAT = "{{json .Id}} {{json .Config.Labels}} {{json .Size}}"


def _parse_inspect_line(line: str) -> LocalImage:
    first, rest = line.strip().split(" ", 1)
    labels_text, size_text = rest.rsplit(" ", 1)
    labels = json.loads(labels_text) or {}
    return LocalImage(json.loads(first), labels, int(json.loads(size_text)))


def local_image(name: str) -> LocalImage | None:
    """The local image of that name, or None."""
    r = docker.run(["docker", "image", "inspect", "--format", _INSPECT_FORMAT, name],
                   check=False, timeout=None)
    if r.returncode != 0:
        return None
    return _parse_inspect_line(r.stdout)


def local_images(names: Iterable[str]) -> dict[str, LocalImage] | None:
    """Every image of ``names`` in one docker call (one line each, in order), or None
    when any is missing or the answer is not one line per name: callers then ask
    image by image. One call instead of one per image is what keeps a repeated
    ``inv up`` with every image up to date fast."""
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return {}
    r = docker.run(["docker", "image", "inspect", "--format", _INSPECT_FORMAT, *wanted],
                   check=False, timeout=None)
    lines = [line for line in r.stdout.splitlines() if line.strip()]
    if r.returncode != 0 or len(lines) != len(wanted):
        return None
    try:
        return {n: _parse_inspect_line(line) for n, line in zip(wanted, lines)}
    except (ValueError, json.JSONDecodeError):
        return None


def present_images(names: Iterable[str]) -> dict[str, LocalImage]:
    """The images of ``names`` that exist here: one docker call when all do
    (:func:`local_images`), else one call per image."""
    found = local_images(names)
    if found is None:
        found = {n: img for n in dict.fromkeys(names) if (img := local_image(n)) is not None}
    return found
