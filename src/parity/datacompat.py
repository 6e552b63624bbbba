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
  the team changed a tag it owns; passes;
- the same reference with another image ID (``inv images --force``, a rebuild of
  changed inputs): a rebuild of the same software; passes.

What is compared is the reference the stack asked for (a container's
``Config.Image``, a StatefulSet's ``image``), never what Docker shows for a
container whose tag has since moved to a rebuilt image (its old ID,
``sha256:…``): an ID names no software and no version, so it is never judged.

``down`` keeps the data (decision 0016) but removes the containers that were the
record of its writer: the lanes :func:`remember` the writers at ``down`` and read
them back here when no container or StatefulSet is left to ask.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError, InputErrors, ParityError
from .yamlio import write_atomic

_VERSION = re.compile(r"v?(\d+(?:\.\d+)*)")
_IMAGE_ID = re.compile(r"(sha256:)?[0-9a-f]{12}([0-9a-f]{52})?")


def is_image_id(image: str) -> bool:
    """``sha256:…`` or a bare 12/64-digit hex ID: what Docker shows for a container
    whose image reference was retagged to another build."""
    return bool(_IMAGE_ID.fullmatch(image.strip()))


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
    if old == new or is_image_id(old) or is_image_id(new):
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
    image: str  # the reference the stack asked for, e.g. postgres:16.4-bookworm
    #: how to copy the data aside before anything else (a command), '' if unknown
    backup: str = ""


def check(written: Iterable[Written], stack, reset_command: str,
          profile: str | None = None) -> None:
    """Raise (exit 2, nothing changed) for every service whose data would be
    opened by an incompatible image. ``profile``: the image profile the data was
    written with, when known (the running record), offered as the way to keep it."""
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
            hint=_hint(w, stack, reset_command, profile)))
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise InputErrors(errors)


def _hint(w: Written, stack, reset_command: str, profile: str | None) -> str:
    if profile and profile != stack.profile:
        keep = f"keep the data: go back to the image that wrote it: --profile {profile}"
    else:
        keep = (f"keep the data: go back to the image that wrote it ({w.image}: the "
                "image profile or overlay it ran with)")
    backup = f"; to move to {stack.services[w.service].image} anyway, back the data " \
             f"up first ({w.backup}) and restore it into the new image" if w.backup else ""
    return (f"{keep}{backup}; or start over without it: {reset_command} (deletes "
            "parity's data)")


# --------------------------------------------------------------------------- writers kept

def _writers_file(state: Path, lane: str) -> Path:
    return Path(state) / "data" / f"writers-{lane}.json"


def remember(state: Path, lane: str, written: Iterable[Written]) -> None:
    """Record who wrote the data ``down`` keeps (service -> data, image), merged
    with what an earlier ``down`` recorded for services not running now."""

    entries = {w.service: w for w in recalled(state, lane)}
    entries.update({w.service: w for w in written})
    if not entries:
        return
    data = {n: {"data": w.data, "image": w.image, "backup": w.backup}
            for n, w in sorted(entries.items())}
    write_atomic(_writers_file(state, lane), json.dumps(data, indent=2) + "\n")


def recalled(state: Path, lane: str) -> list[Written]:
    """What :func:`remember` recorded (empty when nothing or unreadable)."""
    try:
        data = json.loads(_writers_file(state, lane).read_text(encoding="utf-8"))
        return [Written(n, e["data"], e["image"], e.get("backup", ""))
                for n, e in sorted(data.items())]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []


def forget(state: Path, lane: str) -> None:
    """The data is gone (reset, down --volumes): so is the record of its writers."""
    _writers_file(state, lane).unlink(missing_ok=True)
