"""The rendered-level diff: the rendered documents of two renders, aligned by
``apiVersion/kind/namespace/name`` (kind manifests) or ``services/<name>`` (compose
file), for comparing two phases of one mode or a render against a saved directory
(``--against DIR``, read by :func:`read_dir`). Rendered ``Secret`` data is masked
before comparison."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import yamlio
from ..errors import InputError
from ..yamlio import decode, read_input
from .difference import ABSENT, MASK, Difference, flatten
from .policy import Rule, classify


def identities(files: dict[str, str]) -> dict[str, Any]:
    """``{identity: document}`` for every document of a render; Secret data masked."""
    out: dict[str, Any] = {}
    for fname in sorted(files):
        if not fname.endswith((".yaml", ".yml")):
            out[f"file/{fname}"] = files[fname]
            continue
        for doc in yamlio.load_docs(files[fname]):
            if fname == "docker-compose.yaml" or "services" in doc and "kind" not in doc:
                for section in ("services", "volumes", "networks", "secrets", "configs"):
                    for name, body in (doc.get(section) or {}).items():
                        out[f"compose/{section}/{name}"] = body
                continue
            meta = doc.get("metadata") or {}
            ident = "/".join(str(x) for x in (doc.get("apiVersion"), doc.get("kind"),
                                              meta.get("namespace", ""), meta.get("name"))
                             if x != "")
            if doc.get("kind") == "Secret":
                doc = {**doc, **{k: {kk: MASK for kk in (doc.get(k) or {})}
                                 for k in ("data", "stringData") if k in doc}}
            out[ident] = doc
    return out


def rendered_diff(files_a: dict[str, str], files_b: dict[str, str],
                  rules: list[Rule]) -> list[Difference]:
    ia, ib = identities(files_a), identities(files_b)
    out: list[Difference] = []
    for ident in sorted(set(ia) | set(ib)):
        if ident not in ia or ident not in ib:
            cls, rule, reason = classify(rules, ident, "rendered", False)
            out.append(Difference(ident, "(present)" if ident in ia else ABSENT,
                                  "(present)" if ident in ib else ABSENT, cls, rule, reason))
            continue
        fa, fb = flatten(ia[ident]), flatten(ib[ident])
        for path in sorted(set(fa) | set(fb)):
            va, vb = fa.get(path, ABSENT), fb.get(path, ABSENT)
            if va != vb:
                full = f"{ident}:{path}"
                cls, rule, reason = classify(rules, full, "rendered", False)
                out.append(Difference(full, va, vb, cls, rule, reason))
    return out


def read_dir(directory: Path) -> dict[str, str]:
    if not directory.is_dir():
        raise InputError(f"{directory} is not a directory",
                         hint="give --against a directory written by inv render --out")
    files = {}
    for p in sorted(directory.rglob("*")):
        if p.is_symlink() or not p.is_file():
            if p.is_symlink() or not p.is_dir():
                raise InputError(f"{p} is not a regular file",
                                 hint="--against reads a directory inv render --out wrote; "
                                      "remove what parity did not write there")
            continue
        rel = str(p.relative_to(directory))
        files[rel] = decode(read_input(p, str(p), limit=RENDER_LIMIT), str(p))
    if not files:
        raise InputError(f"{directory} holds no rendered files", hint="render into it first")
    for name, text in files.items():
        if name.endswith((".yaml", ".yml")):
            try:
                yamlio.load_docs(text)
            except (RecursionError, Exception) as exc:  # yaml.YAMLError and its kin
                first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
                raise InputError(f"{directory / name} is not a render parity can read: "
                                 f"{first[:200]}",
                                 hint="render into it again: inv render --out DIR") from None
    return files


#: a saved render read by ``--against`` (renders of thousands of services are large)
RENDER_LIMIT = 64 * 1024 * 1024
