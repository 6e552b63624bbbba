"""The layer order, owned by one function: :func:`plan_layers`.

    base/                       every *.yaml (one file per service is fine), a union
    overlays/phases/<N>.yaml    for N = 1 .. the chosen phase, in order
    overlays/modes/<mode>.yaml
    overlays/images/<profile>.yaml
    overlays/local/*.yaml       the developer's own (git-ignored), sorted, every mode
    overlays/local/<mode>/*.yaml  the developer's own, for the chosen mode only
    PARITY_* variables          the documented ones only (see ENV_VARS)
    --set path=value            in the order given

Nothing else influences the merged model: no other file, no other variable.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError, did_you_mean
from .nodes import ListKey, Loc, Map, Node, Scalar, Seq, format_path
from .overlay import Context, Policy, apply, parse_tag
from . import schema
from .yamlio import load_file

MODES = ("compose", "kind")
PHASES = (1, 2, 3)
DEFAULT_PROFILE = "default"
#: Files in base/ that are not part of the stack model.
BASE_EXCLUDE = ("parity-policy.yaml",)

#: The documented PARITY_* variables: name -> (model path or None, meaning).
ENV_VARS: dict[str, tuple[str | None, str]] = {
    "PARITY_DOMAIN": ("stack.domain", "the browser-facing domain (default parity.localhost)"),
    "PARITY_HTTP_PORT": ("stack.edge.http_port", "host port the edge serves HTTP on"),
    "PARITY_HTTPS_PORT": ("stack.edge.https_port", "host port the edge serves HTTPS on"),
    "PARITY_IMAGE_PROFILE": (None, "image profile when --profile is not given"),
    "PARITY_DEBUG": (None, "show tracebacks (not a model input)"),
}

POLICY = Policy(strict=schema.is_collection, list_key=schema.list_key)


@dataclass(frozen=True)
class Selection:
    """What the user chose: the inputs of :func:`plan_layers`."""

    mode: str
    phase: int
    profile: str | None = None
    sets: tuple[str, ...] = ()
    environ: Mapping[str, str] = field(default_factory=dict)
    #: apply the shared ``overlays/local/*.yaml``; ``inv diff`` compares without them
    #: too, to warn when a value set for both modes hides a difference between them
    shared_local: bool = True

    def effective_profile(self) -> str:
        return self.profile or self.environ.get("PARITY_IMAGE_PROFILE") or DEFAULT_PROFILE


@dataclass(frozen=True)
class Layer:
    name: str                  # base, phase:2, mode:kind, images:offline, local,
                               # local:kind, env, set
    file: Path | None = None   # None for env/--set layers
    rel: str = ""
    text: str | None = None    # for synthesized layers (env, --set): a path=value item
    is_base: bool = False


def check_selection(sel: Selection, root: Path) -> None:
    if sel.mode not in MODES:
        raise InputError(f"unknown mode '{sel.mode}'{did_you_mean(sel.mode, MODES)}",
                         hint=f"use --mode {' or --mode '.join(MODES)}")
    if sel.phase not in PHASES:
        raise InputError(f"unknown phase '{sel.phase}'", hint="use --phase 1, 2 or 3")
    profile = sel.effective_profile()
    images = root / "overlays" / "images"
    known = sorted(p.stem for p in images.glob("*.yaml")) if images.is_dir() else []
    if profile not in known:
        raise InputError(f"unknown image profile '{profile}'{did_you_mean(profile, known)}",
                         hint=f"profiles are the files in overlays/images/: "
                              f"{', '.join(known) or 'none'}")
    for var in sel.environ:
        if var.startswith("PARITY_") and var not in ENV_VARS:
            raise InputError(f"{var} is not a parity variable{did_you_mean(var, ENV_VARS)}",
                             where="environment",
                             hint="unset it; the documented variables are "
                                  + ", ".join(ENV_VARS))


def plan_layers(root: Path, sel: Selection) -> list[Layer]:
    """THE layer order. Every other module asks this function; none builds its own."""
    check_selection(sel, root)
    out: list[Layer] = []
    for f in sorted((root / "base").rglob("*.yaml")):
        if f.name not in BASE_EXCLUDE:
            out.append(Layer("base", f, _rel(root, f), is_base=True))
    if not out:
        raise InputError("no stack model: base/ has no *.yaml files", where=str(root / "base"),
                         hint="run parity from the repository root")
    for n in range(1, sel.phase + 1):
        f = root / "overlays" / "phases" / f"{n}.yaml"
        if f.exists():
            out.append(Layer(f"phase:{n}", f, _rel(root, f)))
    f = root / "overlays" / "modes" / f"{sel.mode}.yaml"
    if f.exists():
        out.append(Layer(f"mode:{sel.mode}", f, _rel(root, f)))
    profile = sel.effective_profile()
    f = root / "overlays" / "images" / f"{profile}.yaml"
    out.append(Layer(f"images:{profile}", f, _rel(root, f)))
    local = root / "overlays" / "local"
    if local.is_dir():
        _check_local_dirs(root, local)
        if sel.shared_local:
            for f in sorted(local.glob("*.yaml")):
                out.append(Layer("local", f, _rel(root, f)))
        for f in sorted((local / sel.mode).glob("*.yaml")):
            out.append(Layer(f"local:{sel.mode}", f, _rel(root, f)))
    for var, (path, _) in ENV_VARS.items():
        if path and var in sel.environ:
            out.append(Layer("env", None, f"${var}", f"{path}={sel.environ[var]}"))
    for item in sel.sets:
        out.append(Layer("set", None, set_label(item), item))
    return out


def set_label(item: str) -> str:
    """How a ``--set`` item is named in messages and provenance: in full, except
    that a value under ``secrets`` is masked (it may be a secret value)."""
    path_text, sep, _ = item.partition("=")
    if sep and re.match(r"\s*secrets(?![^.\[=\s])", path_text):
        return f"--set {path_text}=********"
    return f"--set {item}"


def _check_local_dirs(root: Path, local: Path) -> None:
    """overlays/local/ holds shared *.yaml and one directory per mode, nothing else:
    a misnamed directory would otherwise be silently ignored."""
    for d in sorted(p for p in local.iterdir() if p.is_dir()):
        if d.name not in MODES:
            raise InputError(f"unknown local overlay directory '{d.name}'"
                             f"{did_you_mean(d.name, MODES)}", where=_rel(root, d) + "/",
                             hint="a subdirectory of overlays/local/ applies to one mode "
                                  f"and is named after it: {', '.join(m + '/' for m in MODES)}; "
                                  "files for every mode go in overlays/local/ itself")


def describe(layers: list[Layer]) -> str:
    """``base -> phase:1 -> mode:kind -> images:default`` (consecutive duplicates folded)."""
    names: list[str] = []
    for layer in layers:
        if not names or names[-1] != layer.name:
            names.append(layer.name)
    return " -> ".join(names)


def _rel(root: Path, f: Path) -> str:
    try:
        return str(f.relative_to(root))
    except ValueError:
        return str(f)


# --------------------------------------------------------------------------- loading

_cache: dict[tuple[str, str, str], Map] = {}


def _load_layer(layer: Layer) -> Map:
    """Parse a file layer; parsed trees are cached by content hash (they are
    immutable, so every render in the process can share them)."""
    assert layer.file is not None
    try:
        data = layer.file.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror}", where=layer.rel) from None
    key = (layer.rel, layer.name, hashlib.sha256(data).hexdigest())
    hit = _cache.get(key)
    if hit is None:
        parser = None if layer.is_base else parse_tag
        from .yamlio import MAX_INPUT_BYTES

        if len(data) > MAX_INPUT_BYTES:
            load_file(layer.file, layer.rel, layer.name)  # raises the size error
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"not UTF-8 text ({exc.reason})", where=layer.rel) from None
        hit = load_file(layer.file, layer.rel, layer.name, tag_parser=parser, text=text)
        _cache[key] = hit
    return hit


_PATH_PART = re.compile(r"([^.\[\]]+)|\[([^\]]+)\]")


def assignment_tree(item: str, layer: Layer) -> Map:
    """``services.api.ports[http].port=8081`` -> an overlay tree setting that leaf."""
    loc = Loc(layer.rel, 0, layer.name)
    path_text, sep, raw = item.partition("=")
    if not sep or not path_text.strip():
        raise InputError(f"'{item}' is not PATH=VALUE", where=layer.rel,
                         hint="for example --set services.api.replicas=2")
    parts: list[tuple[str, bool]] = []
    pos = 0
    text = path_text.strip()
    while pos < len(text):
        if text[pos] == ".":
            pos += 1
            continue
        m = _PATH_PART.match(text, pos)
        if not m:
            raise InputError(f"cannot read the path '{text}'", where=layer.rel,
                             hint="write keys with dots and list items as [name]")
        parts.append((m.group(1), False) if m.group(1) else (m.group(2), True))
        pos = m.end()
    value = Scalar(_scalar(raw), (loc,))
    node: Node = value
    for name, is_item in reversed(parts):
        if is_item:
            node = Seq((Map({"name": Scalar(name, (loc,)), **(
                node.entries if isinstance(node, Map) else {})},
                {"name": loc, **(node.keylocs if isinstance(node, Map) else {})}, (loc,)),),
                (loc,))
        else:
            node = Map({name: node}, {name: loc}, (loc,))
    if not isinstance(node, Map):
        raise InputError(f"'{item}' does not start with a key", where=layer.rel)
    return node


def _scalar(raw: str):
    from .yamlio import parse_text

    try:
        tree = parse_text(f"v: {raw}", "--set", "set")
    except InputError:
        return raw
    v = tree.entries.get("v")
    return v.value if isinstance(v, Scalar) else raw


def union(a: Map, b: Map, path: tuple = ()) -> Map:
    """Base files together form one tree; the same leaf written twice is an error."""
    entries = dict(a.entries)
    keylocs = dict(a.keylocs)
    for k, v in b.entries.items():
        if k in entries:
            mine = entries[k]
            if isinstance(mine, Map) and isinstance(v, Map):
                entries[k] = union(mine, v, path + (k,))
                continue
            raise InputError(f"defined twice in base/: first at {a.keylocs[k]}",
                             where=str(b.keylocs[k]), path=format_path(path + (k,)),
                             hint="keep one definition; change values in overlays/")
        entries[k] = v
        keylocs[k] = b.keylocs[k]
    return Map(entries, keylocs, a.hist)


def merged_tree(root: Path, sel: Selection) -> tuple[Map, list[Layer]]:
    """Load every layer in :func:`plan_layers` order and apply them."""
    layers = plan_layers(root, sel)
    order = describe(layers)
    tree: Map | None = None
    ctx = Context(POLICY, order)
    for layer in layers:
        if layer.is_base:
            node = _load_layer(layer)
            tree = node if tree is None else union(tree, node)
            continue
        assert tree is not None
        if layer.file is not None:
            if not layer.file.exists():
                raise InputError("the layer file is missing", where=layer.rel,
                                 hint="create it (it may be empty)")
            overlay = _load_layer(layer)
        else:
            overlay = assignment_tree(layer.text or "", layer)
        tree = apply(tree, overlay, ctx)
    assert tree is not None
    return tree, layers


def environ_subset(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The PARITY_* part of the environment: all parity ever reads from it."""
    env = os.environ if environ is None else environ
    return {k: v for k, v in env.items() if k.startswith("PARITY_")}


def leaf_path_key(part) -> str:
    return f"[{part}]" if isinstance(part, ListKey) else str(part)
