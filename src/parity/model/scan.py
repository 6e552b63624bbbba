"""Reading the layer directories strictly: :class:`Scan`.

Nothing here opens a file: entries are classified by ``lstat``/``stat`` only. An
entry that is not a regular file or directory, a symlink that leaves the
repository, an unreadable directory, or a YAML file or directory parity would not
read is an error naming it, never a silent skip or a hang.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import InputError, did_you_mean
from ..yamlio import file_type

#: What a layer file is named: NAME.yaml or NAME.yml (any case).
YAML_SUFFIXES = (".yaml", ".yml")
#: The directories of overlays/ (anything else there would be silently ignored).
OVERLAY_DIRS = ("phases", "modes", "images", "local")


def _is_yaml(name: str) -> bool:
    return name.lower().endswith(YAML_SUFFIXES)


def _ignored(name: str) -> bool:
    """Hidden files (.gitkeep, editor swap and lock files) and backups (x.yaml~)."""
    return name.startswith(".") or name.endswith("~")


class Scan:
    """Reads the layer directories strictly. Nothing here opens a file: entries are
    classified by ``lstat``/``stat`` only, and a symlink is followed only when it
    stays inside the repository."""

    def __init__(self, root: Path):
        self.root = root
        self.real_root = os.path.realpath(root)

    def rel(self, p: Path) -> str:
        return relative(self.root, p)

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
                continue  # a directory beside the profiles is no layer (builds: images/)
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

    def local(self, local: Path,
              modes: tuple[str, ...]) -> tuple[list[Path], dict[str, list[Path]]]:
        """overlays/local/ holds shared YAML files and one directory per mode, nothing
        else: a misnamed directory would otherwise be silently ignored."""
        shared: list[Path] = []
        per_mode: dict[str, list[Path]] = {}
        for p, k in self.entries(local):
            if k == "dir":
                if p.name not in modes:
                    raise InputError(
                        f"unknown local overlay directory '{p.name}'"
                        f"{did_you_mean(p.name, modes)}", where=self.rel(p) + "/",
                        hint="a subdirectory of overlays/local/ applies to one mode "
                             f"and is named after it: {', '.join(m + '/' for m in modes)}; "
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


def relative(root: Path, f: Path) -> str:
    try:
        return str(f.relative_to(root))
    except ValueError:
        return str(f)
