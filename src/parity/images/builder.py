"""Build the planned images whose inputs changed: one build at a time per
checkout, each image skipped when its inputs-hash label matches, a Dockerfile or
script build run here (a base recipe: :mod:`parity.images.rootfs`)."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import re
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from .. import docker, fsio
from ..errors import CheckFailed, PrerequisiteMissing
from .fetch import fetch_into
from .hashing import IGNORED_NAMES, inputs_hash
from .local import LocalImage, local_image, local_images, present_images
from .planner import plan
from .records import LABEL_HASH, LABEL_MANAGED, TMP_DIR, ImageBuild, Progress, is_under, labels, rel
from .results import ImageResult
from .rootfs import build_rootfs
from .runlog import failure, run_logged

SCRIPT_CACHE = Path(".parity/cache/build")
LOG_DIR = Path(".parity/logs/images")
LOCK_FILE = Path(".parity/images.lock")


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


def build(stack, root: Path, *, progress: Progress | None = None, force: bool = False
          ) -> list[ImageResult]:
    """Build every image of :func:`plan` whose inputs changed (all with ``force``).
    Returns one result per image, in build order."""
    root = Path(root).resolve()
    say = progress or (lambda _msg: None)
    builds = plan(stack, root)
    if not builds:
        return []
    docker.engine_ok()
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
        docker.run(["docker", "image", "rm", image_id], check=False, timeout=None)
    return results


@contextlib.contextmanager
def _build_lock(root: Path, say: Progress):
    """One image build per checkout at a time (two would debootstrap the same base
    and race on the tags)."""
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
    fsio.ensure_dir(log_path.parent)
    try:
        log = open(log_path, "w", encoding="utf-8")
    except OSError as exc:
        raise fsio.write_error(exc, log_path) from None
    with log:
        if ib.kind == "rootfs":
            build_rootfs(ib, root, digest, log, log_path, say)
        elif ib.kind == "script":
            _build_script(ib, root, digest, log, log_path, say)
        else:
            _build_dockerfile(ib, root, digest, log, log_path, say, missing)
    new = local_image(ib.image)
    if new is None:
        raise CheckFailed(f"{ib.image}: the build reported success but the image is "
                          "not present", hint=f"full log: {rel(root, log_path)}")
    if have is not None and have.id != new.id and have.labels.get(LABEL_MANAGED) == "true" \
            and stale is not None:
        stale.append(have.id)
    seconds = time.monotonic() - start
    say(f"{ib.image}: built in {seconds:.1f}s")
    return ImageResult(ib.image, "built", reason, seconds, digest, new.id, new.size,
                       ib.services)


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
            if is_under(ib.dockerfile, ib.context):
                dockerfile = context / ib.dockerfile.relative_to(ib.context)
            for f in ib.fetch:
                fetch_into(f, context, root, log, log_path, say)
        cmd = ["docker", "build", "-t", ib.image]
        for k, v in labels(digest):
            cmd += ["--label", f"{k}={v}"]
        for k, v in ib.args:
            cmd += ["--build-arg", f"{k}={v}"]
        if ib.target:
            cmd += ["--target", ib.target]
        if ib.network:
            cmd += ["--network", ib.network]
        cmd += ["-f", str(dockerfile), str(context)]
        code, tail = run_logged(cmd, log, cwd=root, env=docker.build_env())
        if code != 0:
            hint = None
            if missing_parents:
                hint = (f"{', '.join(missing_parents)} is not a local image and no "
                        "registry may be reachable: use an image profile that builds "
                        f"it (inv images --profile offline); full log: "
                        f"{rel(root, log_path)}")
            raise failure(f"{ib.image}: docker build failed (exit {code})", tail,
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
    env = {**docker.build_env(), **dict(ib.args), "PARITY_IMAGE": ib.image,
           "PARITY_LABELS": "".join(f"{k}={v}\n" for k, v in labels(digest)),
           "PARITY_CACHE": str(cache)}
    code, tail = run_logged(["bash", str(ib.context / script.script)], log, cwd=ib.context,
                             env=env, echo=say)
    if code != 0:
        raise failure(f"{ib.image}: {ib.rel}/{script.script} failed (exit {code})", tail,
                       log_path, root)
    made = local_image(ib.image)
    if made is None or made.labels.get(LABEL_HASH) != digest:
        raise CheckFailed(f"{ib.image}: {ib.rel}/{script.script} exited 0 but did not "
                          "leave the image with the labels of PARITY_LABELS",
                          hint="the script's final docker build must add each line of "
                               "PARITY_LABELS as --label")
