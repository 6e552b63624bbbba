"""The local secret store: values generated once per clone, never printed.

Layout under ``.parity/secrets/`` (directories 0700, files 0600, git-ignored):

    <secret>/<key>          one value per file (compose ``secrets:`` mount these)
    env/<service>.env       KEY=value lines for a service's secret env references
                            (compose ``env_file``); rewritten only when changed

Generated values come from :func:`secrets.token_urlsafe` (URL-safe, so they need no
quoting in an env file). A declared ``value`` is a non-sensitive dev default and
is written as given. See docs/decisions/0004-local-secret-bootstrap-before-vault.md.
"""

from __future__ import annotations

import os
import secrets as _random
from pathlib import Path

from .errors import InputError

DIR_MODE = 0o700
FILE_MODE = 0o600


def store_dir(state: Path) -> Path:
    return state / "secrets"


def _mkdir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, DIR_MODE)


def _write(path: Path, text: str) -> bool:
    from .yamlio import write_atomic

    return write_atomic(path, text, mode=FILE_MODE)


def ensure(stack, state: Path) -> list[str]:
    """Create every missing secret value of ``stack``; return ``secret/key`` names
    created (never the values). Existing values are kept."""
    root = store_dir(state)
    _mkdir(root)
    created = []
    for secret in stack.secrets.values():
        d = root / secret.name
        _mkdir(d)
        for key in secret.keys:
            f = d / key.name
            if key.value is not None:
                if _write(f, key.value):
                    created.append(f"{secret.name}/{key.name}")
            elif not f.exists() and _create(
                    f, _random.token_urlsafe(key.generate or 32)[: key.generate or 32]):
                created.append(f"{secret.name}/{key.name}")
    return created


def _create(path: Path, text: str) -> bool:
    """Write a generated value only if none exists, atomically: two commands
    generating at once keep the first value, never one each (False: it existed)."""
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, FILE_MODE)
        os.link(tmp, path)  # fails when the value exists: it is kept
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)


def value(state: Path, secret: str, key: str) -> str:
    f = store_dir(state) / secret / key
    try:
        return f.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"secret value {secret}/{key} is missing from {store_dir(state)}",
                         hint="run inv render (or inv up) to generate it") from None


def values(state: Path, secret) -> dict[str, str]:
    """All keys of one secret (for the kind driver's Secret objects)."""
    return {k.name: value(state, secret.name, k.name) for k in secret.keys}


def env_file_name(service: str) -> str:
    return f"secrets/env/{service}.env"


def write_env_files(stack, state: Path) -> list[str]:
    """Write ``env/<service>.env`` for each service with secret env references."""
    from .model import SecretRef

    env_dir = store_dir(state) / "env"
    _mkdir(env_dir)
    changed = []
    for svc in stack.services.values():
        refs = [(k, v) for k, v in svc.env if isinstance(v, SecretRef)]
        if not refs:
            continue
        text = "".join(f"{k}={value(state, v.secret, v.key)}\n" for k, v in refs)
        if _write(env_dir / f"{svc.name}.env", text):
            changed.append(svc.name)
    return changed


def known_values(state: Path) -> list[str]:
    """Every stored value (for masking output such as logs); empty if none."""
    root = store_dir(state)
    if not root.is_dir():
        return []
    out = []
    for f in root.glob("*/*"):
        if f.parent.name != "env" and f.is_file():
            v = f.read_text(encoding="utf-8")
            if len(v) >= 8:
                out.append(v)
    return out


def mask(text: str, state: Path) -> str:
    for v in sorted(known_values(state), key=len, reverse=True):
        text = text.replace(v, "********")
    return text
