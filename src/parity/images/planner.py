"""What to build: the images of a stack that have a ``build``, each once, with the
base images made here from a recipe, in build order."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from .dockerfile import dockerfile_parents
from ..errors import InputError
from .recipes import SCRIPT_FILE, find_recipes, load_fetch, load_recipe, load_script
from .records import ImageBuild, rel


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
                          rel=rel(root, context), args=tuple(sorted(
                              (str(k), str(v)) for k, v in b.args)),
                          script=load_script(context, root))
    dockerfile = (context / (b.dockerfile or "Dockerfile")).resolve()
    if not dockerfile.is_file():
        raise InputError(f"no Dockerfile at {rel(root, dockerfile)}", path=where,
                         hint="add one, or name it with build.dockerfile")
    args = tuple(sorted((str(k), str(v)) for k, v in b.args))
    parents = dockerfile_parents(dockerfile.read_text(encoding="utf-8"), dict(args),
                                 target=b.target)
    # A build arg naming an image (BASE_IMAGE=...) is a dependency even when the
    # Dockerfile spells it differently.
    extra = [v for _, v in args if _looks_like_image(v)]
    fetch = load_fetch(context, root)
    return ImageBuild(
        image=svc.image, kind="dockerfile", context=context, rel=rel(root, context),
        dockerfile=dockerfile, target=b.target, args=args,
        parents=tuple(dict.fromkeys([*parents, *extra])), fetch=fetch,
    )


def _rootfs_build(image: str, recipe_dir: Path, root: Path) -> ImageBuild:
    recipe = load_recipe(recipe_dir, root)
    return ImageBuild(image=image, kind="rootfs", context=recipe_dir,
                      rel=rel(root, recipe_dir), recipe=recipe)


_IMAGE_RE = re.compile(r"^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9._-]+)?(@sha256:[0-9a-f]{64})?$")


def _looks_like_image(value: str) -> bool:
    return bool(_IMAGE_RE.match(value)) and ("/" in value or ":" in value)
