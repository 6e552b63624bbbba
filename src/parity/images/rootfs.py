"""Base images made without a registry: debootstrap a root file system from a
recipe, upgrade and clean it, and ``docker import`` it.

The root file system is written directly (not through :mod:`parity.fsio`): it is a
temporary tree under ``.parity/tmp``, not parity state, and is removed afterwards."""

from __future__ import annotations

import fnmatch
import glob
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .. import docker
from ..errors import PrerequisiteMissing
from .recipes import read_packages
from .records import TMP_DIR, ImageBuild, Progress, labels, rel
from .runlog import TAIL_LINES, failure, run_logged

DEBOOTSTRAP_CACHE = Path(".parity/cache/debootstrap")
DEBOOTSTRAP_HINT = "apt-get install -y debootstrap"


def build_rootfs(ib: ImageBuild, root: Path, digest: str, log, log_path: Path,
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
        code, tail = run_logged(cmd, log)
        if code != 0:
            extra = rootfs / "debootstrap" / "debootstrap.log"
            if extra.exists():
                tail = extra.read_text(errors="replace").splitlines()[-TAIL_LINES:]
            raise failure(f"{ib.image}: debootstrap failed (exit {code})", tail, log_path,
                           root, f"check the package names in {ib.rel}/{recipe['packages']}"
                                 f" (apt-cache policy NAME); full log: "
                                 f"{rel(root, log_path)}")
        if recipe.get("sources") or recipe.get("upgrade"):
            say(f"{ib.image}: apt-get upgrade from {len(recipe.get('sources') or [])} "
                "sources (security and stable updates)")
            _upgrade_rootfs(ib, rootfs, recipe, root, log, log_path)
        _clean_rootfs(rootfs, recipe, log)
        changes = [f"ENV {k}={v}" for k, v in recipe.get("env", {}).items()]
        changes += [f"LABEL {k}={v}" for k, v in labels(digest)]
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
            code, tail = run_logged(imp, log, stdin=tar.stdout, env=docker.build_env())
        finally:
            assert tar.stdout is not None
            tar.stdout.close()
            tar_code = tar.wait()
        if code != 0 or tar_code != 0:
            raise failure(f"{ib.image}: docker import failed (tar exit {tar_code}, "
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
            code, tail = run_logged(["chroot", str(rootfs), *cmd], log, env=env)
            if code != 0:
                raise failure(f"{ib.image}: {' '.join(cmd)} in the new rootfs failed "
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
