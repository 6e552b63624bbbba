"""The local secret store: values generated once per clone, never printed.

Layout under ``.parity/secrets/`` (directories 0700, files 0600, git-ignored):

    <secret>/<key>          one value per file (compose ``secrets:`` mount these)
    env/<service>.env       KEY=value lines for a service's secret env references
                            (compose ``env_file``, format raw); rewritten only when
                            changed. ``env`` is therefore not a secret name
                            (the model refuses it, schema.RESERVED_SECRET_NAMES).

Generated values come from :func:`secrets.token_urlsafe` (URL-safe, so they need no
quoting in an env file). A declared ``value`` is a non-sensitive dev default and
is written as given.

A value delivered as an environment variable must survive compose's raw env file
byte for byte, as the kind lane's Secret delivers it: one line per variable, so no
line feed, carriage return or NUL (:data:`ENV_UNSAFE`). Such a value is refused,
naming the secret and key, never the value; deliver it as a file (``secret_files``)
instead. See docs/decisions/0004-local-secret-bootstrap-before-vault.md.
"""

from __future__ import annotations

import re
import secrets as _random
from dataclasses import dataclass
from pathlib import Path

from . import lock
from .errors import InputError, InputErrors
from .fsio import Entry, ensure_dir, write_all

DIR_MODE = 0o700
FILE_MODE = 0o600
MASK = "********"

#: Characters an env-delivered value cannot hold: compose's raw env file ends a
#: value at a line feed and drops a carriage return before it; no process
#: environment can hold a NUL.
ENV_UNSAFE = {"\n": "a line feed", "\r": "a carriage return", "\0": "a NUL byte"}


def store_dir(state: Path) -> Path:
    return state / "secrets"


def env_unsafe(value: str) -> str | None:
    """What in ``value`` an env variable cannot carry (a description, never the
    character's position or the value), or None."""
    found = [what for ch, what in ENV_UNSAFE.items() if ch in value]
    return " and ".join(found) if found else None


def env_refs(stack) -> list[tuple[str, str, object]]:
    """(service, env name, SecretRef) of every secret delivered as env."""
    from .model import SecretRef  # lazy: breaks the cycle model -> secrets -> model

    return [(svc.name, k, v) for svc in stack.services.values() for k, v in svc.env
            if isinstance(v, SecretRef)]


# --------------------------------------------------------------------------- plan


@dataclass
class Plan:
    """What :func:`plan` found: the files to write (path -> text) and the
    ``secret/key`` names it creates. Nothing is written until :func:`apply`."""

    state: Path
    values: dict[tuple[str, str], str]
    files: dict[Path, str]
    created: list[str]

    def entries(self):
        return [Entry(p, text, FILE_MODE, DIR_MODE) for p, text in self.files.items()]


def plan(stack, state: Path, env_files: bool = True) -> Plan:
    """Every value of ``stack``'s secrets (declared values as declared, missing
    generated values generated now, the rest read from the store) and, with
    ``env_files``, the compose env files; validated, nothing written.

    Raises :class:`InputError` when an env-delivered value cannot be delivered."""
    root = store_dir(state)
    values: dict[tuple[str, str], str] = {}
    files: dict[Path, str] = {}
    created: list[str] = []
    for secret in stack.secrets.values():
        for key in secret.keys:
            f = root / secret.name / key.name
            if key.value is not None:
                current = _read(f)
                if current != key.value:
                    files[f] = key.value
                    created.append(f"{secret.name}/{key.name}")
                values[(secret.name, key.name)] = key.value
            else:
                current = _read(f)
                if current is None:
                    n = key.generate or 32
                    current = _random.token_urlsafe(n)[:n]
                    files[f] = current
                    created.append(f"{secret.name}/{key.name}")
                values[(secret.name, key.name)] = current
    out = Plan(state, values, files, created)
    check_env_values(stack, state, values)
    if env_files:
        for name, text in env_texts(stack, values).items():
            files[root / "env" / f"{name}.env"] = text
    return out


def _read(path: Path) -> str | None:
    try:
        # bytes, decoded: read_text would turn a stored \r or \r\n into \n
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the secret value {path}: "
                         f"{getattr(exc, 'strerror', None) or exc.__class__.__name__}",
                         hint="fix its permissions (it must be readable by you), or remove "
                              "it to have parity generate a new value") from None


def check_env_values(stack, state: Path, values: dict[tuple[str, str], str] | None = None,
                     only: str | None = None) -> None:
    """Refuse an env-delivered secret value an env file cannot carry (both modes:
    they must deliver the same bytes). ``only``: just the references to that
    secret. The message names the secret, key and variable, never the value."""
    problems = []
    for service, env, ref in env_refs(stack):
        if only is not None and ref.secret != only:
            continue
        v = (values or {}).get((ref.secret, ref.key))
        if v is None:
            v = value(state, ref.secret, ref.key)
        why = env_unsafe(v)
        if why:
            where = store_dir(state) / ref.secret / ref.key
            problems.append(InputError(
                f"the value of secret {ref.secret}/{ref.key} ({where}) holds {why}, which "
                f"an environment variable cannot carry unchanged in both modes",
                path=f"services.{service}.env.{env}",
                hint=f"deliver it as a file instead (secret_files: with secret: {ref.secret}, "
                     f"key: {ref.key}), or store a value without line breaks"))
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise InputErrors(problems)


def env_texts(stack, values: dict[tuple[str, str], str]) -> dict[str, str]:
    """``{service: env file text}`` for each service with secret env references
    (values already checked by :func:`check_env_values`)."""
    out: dict[str, str] = {}
    for svc in stack.services.values():
        from .model import SecretRef  # lazy: breaks the cycle model -> secrets -> model

        refs = [(k, v) for k, v in svc.env if isinstance(v, SecretRef)]
        if refs:
            out[svc.name] = "".join(f"{k}={values[(v.secret, v.key)]}\n" for k, v in refs)
    return out


def apply(p: Plan) -> list[Path]:
    """Write what :func:`plan` decided (atomically, one batch)."""

    ensure_dir(store_dir(p.state), DIR_MODE)
    return write_all(p.entries())


# --------------------------------------------------------------------------- API


def ensure(stack, state: Path) -> list[str]:
    """Create every missing secret value of ``stack``; return ``secret/key`` names
    created (never the values). Existing values are kept."""

    with lock.material(state):  # two commands generating at once agree on one value
        p = plan(stack, state, env_files=False)
        apply(p)
    return p.created



def value(state: Path, secret: str, key: str) -> str:
    got = _read(store_dir(state) / secret / key)
    if got is None:
        raise InputError(f"secret value {secret}/{key} is missing from {store_dir(state)}",
                         hint="run inv render (or inv up) to generate it") from None
    return got


def values(state: Path, secret) -> dict[str, str]:
    """All keys of one secret (for the kind driver's Secret objects)."""
    return {k.name: value(state, secret.name, k.name) for k in secret.keys}


def env_file_name(service: str) -> str:
    return f"secrets/env/{service}.env"


def write_env_files(stack, state: Path) -> list[str]:
    """Write ``env/<service>.env`` for each service with secret env references."""
    vals = {(ref.secret, ref.key): value(state, ref.secret, ref.key)
            for _, _, ref in env_refs(stack)}
    check_env_values(stack, state, vals)

    root = store_dir(state) / "env"
    texts = env_texts(stack, vals)
    written = write_all([Entry(root / f"{name}.env", text, FILE_MODE, DIR_MODE)
                         for name, text in texts.items()])
    return sorted(p.stem for p in written)


def known_values(state: Path) -> list[str]:
    """Every stored value (for masking output such as logs); empty if none."""
    root = store_dir(state)
    if not root.is_dir():
        return []
    out = []
    for f in root.glob("*/*"):
        if f.parent.name != "env" and f.is_file():
            try:
                v = f.read_bytes().decode("utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            if v:
                out.append(v)
                if v.strip() and v.strip() != v:
                    out.append(v.strip())  # as a tool prints it, without the newline
    return out


#: Below this length a value is masked only as a whole word: masking every
#: occurrence of a short value would garble unrelated text it happens to be part of.
SHORT = 8


def mask(text: str, state: Path) -> str:
    """``text`` with every stored secret value replaced by ********, whatever its
    length (a short one wherever it stands alone, not inside a longer word)."""
    for v in sorted(set(known_values(state)), key=len, reverse=True):
        text = mask_value(text, v)
    return text


def mask_value(text: str, v: str) -> str:
    if not v:
        return text
    if len(v) >= SHORT:
        return text.replace(v, MASK)
    return re.sub(rf"(?<![A-Za-z0-9]){re.escape(v)}(?![A-Za-z0-9])", MASK, text)
