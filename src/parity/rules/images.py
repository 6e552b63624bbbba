"""Image rules: which image runs, under which name, and what an image profile may
change (floating tags, one name for two builds or two versions, an image only a
local build makes, a build under an upstream name, a profile that changes more
than images)."""

from __future__ import annotations

import re

from ..model import load_layer
from ..nodes import Map, Node, format_path
from .base import Ctx, rule


FLOATING = {"latest", "stable", "edge", "main", "master", "nightly", "dev", "current", "lts",
            "alpine", "slim", "bookworm"}


def floating_reason(image: str) -> str | None:
    """Why ``image`` may change under the same name, or None when pinned."""
    if "@sha256:" in image:
        return None
    name = image.rsplit("/", 1)[-1]
    if ":" not in name:
        return "has no tag (it means :latest)"
    tag = name.rsplit(":", 1)[1]
    if tag.lower() in FLOATING:
        return f"uses the moving tag '{tag}'"
    if re.fullmatch(r"v?\d+(-[A-Za-z][\w.]*)?", tag):
        return f"tag '{tag}' names a major version only (every minor and patch release " \
               "replaces it)"
    return None


@rule("floating-image-tag", "an image pulled by a tag that moves")
def floating_image_tag(c: Ctx):
    for name, svc in c.services.items():
        if svc.get("build"):
            # built here from its inputs: the tag is a local name, but a moving one
            # ('latest', or none) names whichever build ran last on this machine
            tag = svc["image"].split("@", 1)[0].rsplit("/", 1)[-1]
            if ":" not in tag or tag.rsplit(":", 1)[1].lower() in ("latest", "dev", "main"):
                yield ("services", name, "image"), (
                    f"'{svc['image']}' is built here under a moving tag: it names whichever "
                    "build ran last on this machine, so compose and kind may run different "
                    "builds and nothing says which"), \
                    "tag the build with a version (parity/api:0.1.0) and bump it with the code"
            continue
        why = floating_reason(svc["image"])
        if why:
            yield ("services", name, "image"), f"'{svc['image']}' {why}: compose and kind " \
                f"may run different code on different days", \
                "pin a full version (postgres:16.4-bookworm) or a digest (@sha256:…)"
    kind = (c.data.get("stack") or {}).get("kind") or {}
    for part in ("node", "edge"):
        spec = kind.get(part) or {}
        if spec.get("image") and not spec.get("build"):
            why = floating_reason(spec["image"])
            if part == "node" and not why and "@sha256:" not in spec["image"]:
                why = ("has no digest: kind pins its node images by digest, and a tag can "
                       "be pushed again")
            if why:
                yield ("stack", "kind", part, "image"), f"'{spec['image']}' {why}", \
                    "pin a full version or a digest"
    root = c.root.resolve()
    for name, svc in c.services.items():
        b = svc.get("build")
        if not b:
            continue
        df = (root / b["context"] / (b.get("dockerfile") or "Dockerfile")).resolve()
        if not df.is_relative_to(root):
            continue
        try:
            # lazy: parity.images loads PyYAML and the build machinery; only build rules need it
            from ..images import dockerfile_parents

            text = df.read_text(encoding="utf-8")
            parents = dockerfile_parents(text, b.get("args") or {}, b.get("target"))
        except (OSError, UnicodeDecodeError):
            continue
        rel = df.relative_to(root)
        for parent in parents:
            why = floating_reason(parent)
            if why and not parent.startswith(("parity-", "parity/")):
                line = next((i for i, ln in enumerate(text.splitlines(), 1)
                             if parent in ln), 0)
                at = f"{rel}:{line}" if line else str(rel)
                yield ("services", name, "build"), (f"{at} builds FROM '{parent}', "
                                                    f"which {why}"), \
                    "pin the base image's full version or digest in the Dockerfile"
                break


@rule("image-drift", "one image name or one build under different names")
def image_drift(c: Ctx):
    def repo_tag(image: str) -> tuple[str, str]:
        ref = image.split("@", 1)[0]
        name, _, tag = ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "")
        return name, tag

    repos: dict[str, dict[str, list[str]]] = {}
    builds: dict[tuple, dict[str, list[str]]] = {}
    for name, svc in sorted(c.services.items()):
        repo, tag = repo_tag(svc["image"])
        repos.setdefault(repo, {}).setdefault(tag, []).append(name)
        b = svc.get("build")
        if b:
            key = (b["context"], b.get("dockerfile") or "Dockerfile", b.get("target"),
                   tuple(sorted((b.get("args") or {}).items())))
            builds.setdefault(key, {}).setdefault(svc["image"], []).append(name)
    for repo, tags in repos.items():
        if len(tags) > 1:
            ranked = sorted(tags.items(), key=lambda kv: (-len(kv[1]), kv[0]))
            for tag, names in ranked[1:]:
                for name in names:
                    yield ("services", name, "image"), (
                        f"{name} runs {repo}:{tag}, while {', '.join(ranked[0][1])} run "
                        f"{repo}:{ranked[0][0]}: one release, two versions"), \
                        f"use one tag for {repo}"
    recipes: dict[str, dict[tuple, list[str]]] = {}
    for key, images in builds.items():
        for image, names in images.items():
            recipes.setdefault(image, {}).setdefault(key, []).append(names)
    for image, by_recipe in recipes.items():
        if len(by_recipe) < 2:
            continue
        ranked = sorted(((k, [n for ns in v for n in ns]) for k, v in by_recipe.items()),
                        key=lambda kv: (-len(kv[1]), kv[1]))
        top_key, top_names = ranked[0]
        for key, names in ranked[1:]:
            for name in names:
                other = c.where(("services", top_names[0], "build")) or "?"
                yield ("services", name, "build"), (
                    f"{name} builds {image} from {key[0]}/{key[1]}, but "
                    f"{', '.join(top_names)} build that name from "
                    f"{top_key[0]}/{top_key[1]} ({other}): whichever builds last wins"), \
                    "give each recipe its own image name, or build both from one"


@rule("image-not-buildable", "an image only a build makes, with no build")
def image_not_buildable(c: Ctx):
    built = {s["image"].split("@", 1)[0].rsplit(":", 1)[0]: n for n, s in c.services.items()
             if s.get("build")}
    for name, svc in c.services.items():
        if svc.get("build"):
            continue
        repo = svc["image"].split("@", 1)[0].rsplit(":", 1)[0]
        if repo in built:
            yield ("services", name), (
                f"{name} runs {svc['image']} without a build, an image only "
                f"{built[repo]}'s build makes: it exists where someone built it, and "
                "nowhere else (no registry has it)"), \
                f"give {name} the build of {built[repo]}"


@rule("build-under-upstream-name", "a local build tagged with an upstream image's name")
def build_under_upstream_name(c: Ctx):
    for name, svc in c.services.items():
        if not svc.get("build"):
            continue
        ref = svc["image"].split("@", 1)[0]
        first = ref.split("/", 1)[0]
        if "/" not in ref or "." in first or ":" in first or first == "localhost" or \
                first == "library":
            yield ("services", name, "image"), (
                f"{name} is built here but tagged '{svc['image']}', the name of an image a "
                "registry serves: a pull and this build give two different images under one "
                "name, and which one runs depends on the machine's cache"), \
                f"tag the build with a name of your own (e.g. {c.stack.name}/{name}:…)"


#: what an image profile may set: which image runs and how it is built
PROFILE_KEYS = ("image", "build")


@rule("image-profile-scope", "an image profile that changes more than images")
def image_profile_scope(c: Ctx):
    for layer in c.layers:
        if not layer.name.startswith("images:") or layer.file is None:
            continue
        profile = layer.name.split(":", 1)[1]
        tree = load_layer(layer)
        stack: list[tuple[tuple, Node]] = [((), tree)]
        while stack:
            path, node = stack.pop()
            if path and path[-1] in PROFILE_KEYS:
                continue
            if isinstance(node, Map) and node.op is None and node.entries:
                for key, child in node.entries.items():
                    stack.append((path + (key,), child))
                continue
            if not path:
                continue
            yield path, (
                f"image profile '{profile}' sets {format_path(path)} "
                f"({node.loc}): a profile chooses which image runs and how it is built; "
                "what a service is told (env, identity, readiness, routes) must not depend on "
                "it, or the lanes test another contract under each profile"), \
                "move it to base/ (every profile) or to a mode overlay, and keep only " \
                "image: and build: in the profile"
