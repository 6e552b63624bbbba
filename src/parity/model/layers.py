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
The directories are scanned strictly (:class:`~parity.model.scan.Scan`): an entry that is not a
regular file or directory, a symlink that leaves the repository, an unreadable
directory, or a YAML file or directory parity would not read is an error naming
it, never a silent skip or a hang.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError, did_you_mean
from .scan import Scan, relative

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
    known = sorted(Scan(root).named_files(root / "overlays" / "images"))
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
    scan = Scan(root)
    out: list[Layer] = []
    for f in scan.base_files(root / "base"):
        if f.name not in BASE_EXCLUDE:
            out.append(Layer("base", f, relative(root, f), is_base=True))
    if not out:
        raise InputError("no stack model: base/ has no *.yaml files", where=str(root / "base"),
                         hint="run parity from the repository root")
    overlays = root / "overlays"
    scan.check_overlays(overlays)
    phases = scan.named_files(overlays / "phases", [str(n) for n in PHASES], "phase")
    for n in range(1, sel.phase + 1):
        if str(n) in phases:
            f = phases[str(n)]
            out.append(Layer(f"phase:{n}", f, relative(root, f)))
    modes = scan.named_files(overlays / "modes", list(MODES), "mode")
    if sel.mode in modes:
        f = modes[sel.mode]
        out.append(Layer(f"mode:{sel.mode}", f, relative(root, f)))
    profile = sel.effective_profile()
    f = scan.named_files(overlays / "images").get(profile,
                                                  overlays / "images" / f"{profile}.yaml")
    out.append(Layer(f"images:{profile}", f, relative(root, f)))
    local = overlays / "local"
    if scan.is_dir(local):
        shared, per_mode = scan.local(local, MODES)
        if sel.shared_local:
            for f in shared:
                out.append(Layer("local", f, relative(root, f)))
        for f in per_mode.get(sel.mode, []):
            out.append(Layer(f"local:{sel.mode}", f, relative(root, f)))
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


def describe(layers: list[Layer]) -> str:
    """``base -> phase:1 -> mode:kind -> images:default`` (consecutive duplicates folded)."""
    names: list[str] = []
    for layer in layers:
        if not names or names[-1] != layer.name:
            names.append(layer.name)
    return " -> ".join(names)


def environ_subset(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The PARITY_* part of the environment: all parity ever reads from it."""
    env = os.environ if environ is None else environ
    return {k: v for k, v in env.items() if k.startswith("PARITY_")}
