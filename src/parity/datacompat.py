"""Stateful data and the image that wrote it.

Both lanes keep a stateful service's data across ``up`` (compose: named volumes;
kind: the PersistentVolumeClaims of a StatefulSet) until ``reset`` or ``down``.
Switching the image profile swaps every stateful image (the default profile pins
Postgres 16 from Docker Hub, the offline profile builds Postgres 15 from Debian):
Postgres refuses a data directory of another major version, and Redis cannot read
an RDB file written by a newer release. Discovering that as a readiness timeout
with a log line is the failure this module turns into a refusal, before ``up``
changes anything.

The rule, per service that owns storage and already ran:

- the same image: fine;
- another repository (``postgres`` -> ``parity-offline/postgres``): refused;
- the same repository, both tags versions (``16.4-bookworm`` -> ``15-bookworm``):
  refused on another major version or on a downgrade; an upgrade within the
  major version is the normal path and passes;
- the same repository, tags that are not versions (``latest`` -> ``edge``):
  the team changed a tag it owns; passes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import InputError, InputErrors, ParityError

_VERSION = re.compile(r"v?(\d+(?:\.\d+)*)")


def split_image(image: str) -> tuple[str, str]:
    """``registry:5000/team/postgres:16.4@sha256:…`` -> (``registry:5000/team/postgres``,
    ``16.4``). A digest-only or untagged reference has the tag ``latest``."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1:]
    return name, "latest"


def version(tag: str) -> tuple[int, ...] | None:
    m = _VERSION.match(tag)
    return tuple(int(x) for x in m.group(1).split(".")) if m else None


def incompatibility(old: str, new: str) -> str | None:
    """Why data written by image ``old`` cannot be assumed readable by ``new``,
    or None when it can."""
    if old == new:
        return None
    (old_repo, old_tag), (new_repo, new_tag) = split_image(old), split_image(new)
    if old_repo != new_repo:
        return "another image repository"
    old_v, new_v = version(old_tag), version(new_tag)
    if old_v is None or new_v is None:
        return None
    if old_v[0] != new_v[0]:
        return f"major version {old_v[0]} -> {new_v[0]}"
    if new_v < old_v:
        return f"a downgrade {'.'.join(map(str, old_v))} -> {'.'.join(map(str, new_v))}"
    return None


@dataclass(frozen=True)
class Written:
    """One service's data as observed: where it lives and the image that wrote it."""

    service: str
    data: str  # e.g. "volume parity_postgres-data" or "PVC data-postgres-0"
    image: str


def check(written: Iterable[Written], stack, reset_command: str) -> None:
    """Raise (exit 2, nothing changed) for every service whose data would be
    opened by an incompatible image."""
    errors: list[ParityError] = []
    for w in written:
        svc = stack.services.get(w.service)
        if svc is None or not svc.storage:
            continue
        reason = incompatibility(w.image, svc.image)
        if reason is None:
            continue
        path = f"services.{w.service}.image"
        errors.append(InputError(
            f"the data in {w.data} was written by {w.image}; this up would start "
            f"{svc.image} on it ({reason}), which cannot be assumed to read it",
            where=stack.where(path), path=path,
            hint=f"keep the data: run with the image that wrote it (the image profile it "
                 f"ran with?); or start over: {reset_command} (deletes parity's data only)"))
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise InputErrors(errors)
