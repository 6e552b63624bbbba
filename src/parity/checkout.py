"""Which checkout an environment belongs to (decision 0015).

Two checkouts of the repository on one engine render the same Compose project name
and kind cluster name. parity marks what it creates with the checkout's identity
and refuses to change (up) or remove (down, reset) an environment another checkout
made.

    .parity/checkout.json   {"id": <random>, "path": <absolute repository root>}

The id is made once per checkout. A copied checkout (``cp -r``, with its .parity/)
gets a new id when the original still exists at the recorded path; a moved one
keeps its id and records its new path.

Where the identity is recorded:

    compose   every container: labels :data:`LABEL_CHECKOUT` and
              :data:`LABEL_CHECKOUT_PATH` (a Compose override parity writes to
              .parity/identity/, so the render stays independent of the checkout)
    kind      the cluster's record, ConfigMap kube-system/parity-cluster: keys
              ``checkout-id`` and ``checkout-path``
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import docker, images
from .errors import InputError
from .fsio import ensure_dir
from .modes import mode_record
from .yamlio import write_atomic

LABEL_CHECKOUT = "parity.dev/checkout"
LABEL_CHECKOUT_PATH = "parity.dev/checkout-path"
FILE = "checkout.json"


@dataclass(frozen=True)
class Checkout:
    id: str
    path: str


def identity(root: Path) -> Checkout:
    """This checkout's identity, made on first use."""
    root = Path(root).resolve()
    state = root / ".parity"
    f = state / FILE
    here = str(root)
    known = _read(f)
    if known is not None:
        if known.path == here:
            return known
        if _read(Path(known.path) / ".parity" / FILE) != known:
            mine = Checkout(known.id, here)          # moved: the same checkout
            _write(f, mine)
            return mine
        # a copy of a checkout that still exists: a checkout of its own
    mine = Checkout(secrets.token_hex(8), here)
    ensure_dir(state)
    if known is None and not _create(f, mine):
        return _read(f) or mine                       # another command made it first
    _write(f, mine)
    return mine


def _read(f: Path) -> Checkout | None:
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
        return Checkout(str(data["id"]), str(data["path"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _text(c: Checkout) -> str:
    return json.dumps({"id": c.id, "path": c.path}, indent=2) + "\n"


def _write(f: Path, c: Checkout) -> None:
    write_atomic(f, _text(c))


def _create(f: Path, c: Checkout) -> bool:
    fd, tmp = tempfile.mkstemp(dir=f.parent, prefix=f".{f.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(_text(c))
        os.chmod(tmp, 0o644)
        os.link(tmp, f)
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)


def labels(c: Checkout) -> dict[str, str]:
    return {LABEL_CHECKOUT: c.id, LABEL_CHECKOUT_PATH: c.path}


def other_checkout(what: str, owner_path: str, names: list[str], command: str,
                   name_hint: str) -> InputError:
    """The refusal when an environment belongs to another checkout."""
    gone = "" if Path(owner_path).exists() else " (that directory no longer exists)"
    shown = ", ".join(sorted(names)[:8]) + (f", … ({len(names) - 8} more)"
                                           if len(names) > 8 else "")
    return InputError(
        f"{what} belongs to another checkout of this repository: {owner_path}{gone}"
        + (f" ({shown})" if shown else "")
        + f"; {command} here would change or remove that checkout's environment",
        hint=f"run the command in that checkout (cd {owner_path}), or give this checkout "
             f"its own environment: {name_hint}")


def stack_name_hint(mode: str) -> str:
    return ("another stack name, e.g. inv up" + mode_record(mode).up_flag + " --set stack.name=parity2, or "
            "for good in overlays/local/name.yaml: 'stack: {name: parity2}'")


def refuse_shared_images(stack, root: Path, command: str, force: bool = False) -> None:
    """Images are named by the model, not by the checkout, so two checkouts build
    under the same tags. Before building: refuse when an image this command would
    rebuild (other inputs, or ``force``) is run by a container of another
    checkout's environment (decision 0015). An image whose inputs are the same is
    shared and never rebuilt, so it is no reason to refuse."""
    if not docker.cli_present():
        return  # the build says what is missing
    me = identity(root).id
    proc = docker.run(["docker", "ps", "-a", "--no-trunc", "--format", "{{json .}}",
                       "--filter", f"label={LABEL_CHECKOUT}"], check=False, timeout=60)
    if proc.returncode != 0:
        return  # no engine: the build says so
    rows = docker.json_lines(proc.stdout)
    theirs: dict[str, list[dict]] = {}
    for row in rows:
        owner = _label(row.get("Labels", ""), LABEL_CHECKOUT)
        if owner and owner != me:
            theirs.setdefault(row.get("Image", ""), []).append(row)
    if not theirs:
        return
    clash = sorted(image for image, (_, state) in images.freshness(stack, root).items()
                   if image in theirs and (force or state == "inputs changed"))
    if not clash:
        return
    image = clash[0]
    info = docker.inspect([theirs[image][0]["ID"]])[0]
    path = info["Config"]["Labels"].get(LABEL_CHECKOUT_PATH, "?")
    names = sorted(r.get("Names", "?") for r in theirs[image])
    more = f" (and {', '.join(clash[1:])})" if len(clash) > 1 else ""
    raise InputError(
        f"{command} would rebuild {image}{more} under the same tag, and the environment "
        f"of another checkout runs it: {path} ({', '.join(names)}); its next up would "
        "rebuild it again, and each would replace the other's build",
        hint=f"run {command} in that checkout (cd {path}), or stop that environment there "
             "first (inv down), or give this checkout's images their own names (e.g. "
             "services.<name>.image in overlays/local/)")


def _label(labels: str, key: str) -> str:
    for part in labels.split(","):
        k, _, v = part.partition("=")
        if k == key:
            return v
    return ""
