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
``.yml`` is read wherever ``.yaml`` is (the same name with both is an error).
The directories are scanned strictly (:class:`_Scan`): an entry that is not a
regular file or directory, a symlink that leaves the repository, an unreadable
directory, or a YAML file or directory parity would not read is an error naming
it, never a silent skip or a hang.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError, did_you_mean
from ..nodes import ListKey, Loc, Map, Node, Scalar, Seq, format_path
from .overlay import Context, Policy, apply, parse_tag
from . import schema
from ..yamlio import ValueRefused, decode, load_file, read_input

MODES = ("compose", "kind")
PHASES = (1, 2, 3)
DEFAULT_PROFILE = "default"
#: Files in base/ that are not part of the stack model.
BASE_EXCLUDE = ("parity-policy.yaml",)
#: What a layer file is named: NAME.yaml or NAME.yml (any case).
YAML_SUFFIXES = (".yaml", ".yml")
#: The directories of overlays/ (anything else there would be silently ignored).
OVERLAY_DIRS = ("phases", "modes", "images", "local")

#: The documented PARITY_* variables: name -> (model path or None, meaning).
ENV_VARS: dict[str, tuple[str | None, str]] = {
    "PARITY_DOMAIN": ("stack.domain", "the browser-facing domain (default parity.localhost)"),
    "PARITY_HTTP_PORT": ("stack.edge.http_port", "host port the edge serves HTTP on"),
    "PARITY_HTTPS_PORT": ("stack.edge.https_port", "host port the edge serves HTTPS on"),
    "PARITY_IMAGE_PROFILE": (None, "image profile when --profile is not given"),
    "PARITY_DEBUG": (None, "show tracebacks (not a model input)"),
}

POLICY = Policy(strict=schema.is_collection, list_key=schema.list_key,
                item_defaults=schema.item_defaults)


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
    known = sorted(_Scan(root).named_files(root / "overlays" / "images"))
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
    scan = _Scan(root)
    out: list[Layer] = []
    for f in scan.base_files(root / "base"):
        if f.name not in BASE_EXCLUDE:
            out.append(Layer("base", f, _rel(root, f), is_base=True))
    if not out:
        raise InputError("no stack model: base/ has no *.yaml files", where=str(root / "base"),
                         hint="run parity from the repository root")
    overlays = root / "overlays"
    scan.check_overlays(overlays)
    phases = scan.named_files(overlays / "phases", [str(n) for n in PHASES], "phase")
    for n in range(1, sel.phase + 1):
        if str(n) in phases:
            f = phases[str(n)]
            out.append(Layer(f"phase:{n}", f, _rel(root, f)))
    modes = scan.named_files(overlays / "modes", list(MODES), "mode")
    if sel.mode in modes:
        f = modes[sel.mode]
        out.append(Layer(f"mode:{sel.mode}", f, _rel(root, f)))
    profile = sel.effective_profile()
    f = scan.named_files(overlays / "images").get(profile,
                                                  overlays / "images" / f"{profile}.yaml")
    out.append(Layer(f"images:{profile}", f, _rel(root, f)))
    local = overlays / "local"
    if scan.is_dir(local):
        shared, per_mode = scan.local(local)
        if sel.shared_local:
            for f in shared:
                out.append(Layer("local", f, _rel(root, f)))
        for f in per_mode.get(sel.mode, []):
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


def _is_yaml(name: str) -> bool:
    return name.lower().endswith(YAML_SUFFIXES)


def _ignored(name: str) -> bool:
    """Hidden files (.gitkeep, editor swap and lock files) and backups (x.yaml~)."""
    return name.startswith(".") or name.endswith("~")


class _Scan:
    """Reads the layer directories strictly. Nothing here opens a file: entries are
    classified by ``lstat``/``stat`` only, and a symlink is followed only when it
    stays inside the repository."""

    def __init__(self, root: Path):
        self.root = root
        self.real_root = os.path.realpath(root)

    def rel(self, p: Path) -> str:
        return _rel(self.root, p)

    def kind(self, p: Path) -> str:
        """'file', 'dir', or an error for anything else (or a symlink leaving the repo)."""
        try:
            info = os.lstat(p)
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror}", where=self.rel(p)) from None
        if stat.S_ISLNK(info.st_mode):
            real = os.path.realpath(p)
            if not (real == self.real_root or real.startswith(self.real_root + os.sep)):
                raise InputError("a symlink that resolves outside the repository",
                                 where=self.rel(p),
                                 hint="parity reads only files inside the repository; copy "
                                      "the file in, or remove the link")
            try:
                info = os.stat(p)
            except OSError as exc:
                raise InputError(f"a broken symlink ({exc.strerror})", where=self.rel(p),
                                 hint="fix or remove the link") from None
        if stat.S_ISREG(info.st_mode):
            return "file"
        if stat.S_ISDIR(info.st_mode):
            return "dir"
        from ..yamlio import file_type

        raise InputError(f"not a regular file or directory (a {file_type(info.st_mode)})",
                         where=self.rel(p),
                         hint="parity reads only regular files here; remove it")

    def is_dir(self, p: Path) -> bool:
        if not os.path.lexists(p):
            return False
        return self.kind(p) == "dir"

    def entries(self, d: Path) -> list[tuple[Path, str]]:
        """The (path, kind) of every entry of ``d`` parity looks at, sorted by name."""
        try:
            names = sorted(os.listdir(d))
        except OSError as exc:
            raise InputError(f"cannot read directory: {exc.strerror}",
                             where=self.rel(d) + "/",
                             hint="check its permissions; parity reads every file here") \
                from None
        out = []
        for name in names:
            if _ignored(name):
                continue
            p = d / name
            out.append((p, self.kind(p)))
        return out

    def yaml_files(self, d: Path) -> list[Path]:
        """The YAML files directly in ``d`` (other files are not layers)."""
        return [p for p, k in self.entries(d) if k == "file" and _is_yaml(p.name)]

    def base_files(self, base: Path) -> list[Path]:
        """Every YAML file under base/, subdirectories included, sorted by path."""
        if not self.is_dir(base):
            return []
        out: list[Path] = []
        seen: set[str] = set()
        todo = [base]
        while todo:
            d = todo.pop()
            real = os.path.realpath(d)
            if real in seen:  # a symlinked directory loop
                raise InputError("a directory symlink loop", where=self.rel(d) + "/",
                                 hint="remove the link")
            seen.add(real)
            for p, k in self.entries(d):
                if k == "dir":
                    todo.append(p)
                elif _is_yaml(p.name):
                    out.append(p)
        _no_twins(out, self.rel)
        return sorted(out)

    def named_files(self, d: Path, known: list[str] | None = None,
                    what: str = "") -> dict[str, Path]:
        """NAME -> file for the YAML files directly in ``d``; with ``known``, a YAML
        file or directory whose NAME is not known is an error (it would never be
        read)."""
        if not self.is_dir(d):
            return {}
        out: dict[str, Path] = {}
        for p, k in self.entries(d):
            stem = p.name.rsplit(".", 1)[0] if _is_yaml(p.name) else p.name
            if k == "dir" and known is None:
                continue  # overlays/images/<profile>/: build inputs
            if k == "file" and not _is_yaml(p.name):
                continue  # notes, READMEs: not layers
            if known is not None and (k == "dir" or stem not in known):
                raise InputError(
                    f"unknown {what} {'directory' if k == 'dir' else 'file'} "
                    f"'{p.name}'{did_you_mean(stem, known)}",
                    where=self.rel(p) + ("/" if k == "dir" else ""),
                    hint=f"files here are named after a {what}: "
                         f"{', '.join(n + '.yaml' for n in known)}; parity reads nothing else")
            if stem in out:
                raise _twins(self.rel(out[stem]), self.rel(p))
            out[stem] = p
        return out

    def check_overlays(self, overlays: Path) -> None:
        """overlays/ holds phases/, modes/, images/ and local/: a misnamed directory
        (or a YAML file put there) would otherwise never be read."""
        if not self.is_dir(overlays):
            return
        for p, k in self.entries(overlays):
            if k == "file" and not _is_yaml(p.name):
                continue
            if k == "dir" and p.name in OVERLAY_DIRS:
                continue
            raise InputError(
                f"unknown {'directory' if k == 'dir' else 'file'} '{p.name}' in overlays/"
                f"{did_you_mean(p.name, OVERLAY_DIRS)}",
                where=self.rel(p) + ("/" if k == "dir" else ""),
                hint="overlays/ holds " + ", ".join(d + "/" for d in OVERLAY_DIRS)
                     + "; a file of your own goes in overlays/local/")

    def local(self, local: Path) -> tuple[list[Path], dict[str, list[Path]]]:
        """overlays/local/ holds shared YAML files and one directory per mode, nothing
        else: a misnamed directory would otherwise be silently ignored."""
        shared: list[Path] = []
        per_mode: dict[str, list[Path]] = {}
        for p, k in self.entries(local):
            if k == "dir":
                if p.name not in MODES:
                    raise InputError(
                        f"unknown local overlay directory '{p.name}'"
                        f"{did_you_mean(p.name, MODES)}", where=self.rel(p) + "/",
                        hint="a subdirectory of overlays/local/ applies to one mode "
                             f"and is named after it: {', '.join(m + '/' for m in MODES)}; "
                             "files for every mode go in overlays/local/ itself")
                mode_files: list[Path] = []
                for q, kq in self.entries(p):
                    if kq == "dir":
                        raise InputError(
                            f"a directory in overlays/local/{p.name}/ is not read",
                            where=self.rel(q) + "/",
                            hint=f"put the files for {p.name} directly in "
                                 f"overlays/local/{p.name}/")
                    if _is_yaml(q.name):
                        mode_files.append(q)
                _no_twins(mode_files, self.rel)
                per_mode[p.name] = mode_files
            elif _is_yaml(p.name):
                shared.append(p)
        _no_twins(shared, self.rel)
        return shared, per_mode


def _twins(a: str, b: str) -> InputError:
    return InputError(f"both {a} and {b} exist: the same layer twice", where=b,
                      hint="keep one of the two (.yaml and .yml are read alike)")


def _no_twins(files: list[Path], rel) -> None:
    seen: dict[tuple[Path, str], Path] = {}
    for f in sorted(files):
        key = (f.parent, f.name.rsplit(".", 1)[0].lower())
        if key in seen:
            raise _twins(rel(seen[key]), rel(f))
        seen[key] = f


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


def load_layer(layer: Layer) -> Map:
    """Parse a file layer; parsed trees are cached by content hash (they are
    immutable, so every render in the process can share them)."""
    assert layer.file is not None
    data = read_input(layer.file, layer.rel)
    key = (layer.rel, layer.name, hashlib.sha256(data).hexdigest())
    hit = _cache.get(key)
    if hit is None:
        parser = None if layer.is_base else parse_tag
        text = decode(data, layer.rel)
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
    value, text = _scalar(raw, layer)
    node: Node = Scalar(value, (loc,), None, text)
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


def _scalar(raw: str, layer: Layer) -> tuple[object, str | None]:
    """(value, text as written) of a --set or PARITY_* value: a YAML scalar, else the
    text itself; a number parity refuses (NaN, beyond 64 bits) is an error."""
    from ..yamlio import parse_text

    if any(c in raw for c in "\n\r\x85\u2028\u2029"):
        return raw, None  # one line, or it would be read as more keys
    try:
        tree = parse_text(f"v: {raw}", "--set", "set")
    except ValueRefused as exc:
        raise InputError(exc.message, where=layer.rel, hint=exc.hint) from None
    except InputError:
        return raw, None
    v = tree.entries.get("v")
    if isinstance(v, Scalar) and len(tree.entries) == 1:
        return v.value, v.text
    return raw, None


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
            node = load_layer(layer)
            tree = node if tree is None else union(tree, node)
            continue
        assert tree is not None
        if layer.file is not None:
            if not layer.file.exists():
                raise InputError("the layer file is missing", where=layer.rel,
                                 hint="create it (it may be empty)")
            overlay = load_layer(layer)
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
