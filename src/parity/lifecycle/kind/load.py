"""Images and the kind node: which built images the node needs, which it has
(compared by image ID), ``kind load`` of the missing ones, and the pod-template
annotation that rolls pods when an image is rebuilt.

:class:`KindImages` is one part of :class:`~parity.lifecycle.kind.lane.KindLane`.
"""

from __future__ import annotations

import json

from ... import docker, images
from .apply import WORKLOAD_KINDS
from .plan import image_actions

#: Pod template annotation: the local image ID of each built image the pod runs.
ANNOTATION_IMAGE_IDS = "parity.dev/image-ids"


class KindImages:
    """The node's images and loading them."""

    def wanted_node_image(self) -> str | None:
        """The local ID of the node image kind-config.yaml names (None: not local)."""
        img = images.local_image(self.stack.kind_node.image)
        return img.id if img else None

    def built_images(self) -> list[str]:
        """Images built here that the node needs (kind load): what the image builder
        builds for this lane (the services' and the edge controller's), but the node
        image, which kind creates the node from."""
        return sorted({b.image for b in images.buildable(self.stack).values()
                       if b.build is not None and b is not self.stack.kind_node})

    def local_images(self) -> dict[str, str]:
        return {n: img.id for n, img in images.present_images(self.built_images()).items()}

    def node_images(self) -> dict[str, str]:
        """Image name -> ID as the node's containerd has it (the same ID Docker shows
        for an image kind loaded)."""
        proc = docker.run(["docker", "exec", self.node(), "crictl", "images", "-o", "json"],
                          check=False, timeout=60)
        if proc.returncode != 0:
            return {}
        out = {}
        for img in json.loads(proc.stdout or "{}").get("images") or []:
            for tag in img.get("repoTags") or []:
                name = tag.removeprefix("docker.io/library/").removeprefix("docker.io/")
                out[name] = img.get("id", "")
        return out

    def load_images(self) -> str:
        """kind load, in one call, every built image the node lacks (shared layers are
        written once)."""
        self.observed.local_images = self.local_images()
        if self._action("cluster") != "keep":
            self.observed.node_images = self.node_images()
        actions = image_actions(self.observed, self.built_images(), fresh=False)
        missing = [a.target for a in actions if a.action == "load"]
        if missing:
            self.ui.line(f"    loading {', '.join(missing)}")
            self.kind("load", "docker-image", "--name", self.cluster, *missing, timeout=1800)
        return f"{len(missing)} loaded, {len(actions) - len(missing)} already on the node"

    def with_image_ids(self, doc: dict) -> dict:
        """A workload whose containers run locally built images, its pod template
        annotated with their IDs: a rebuilt image (same tag) changes the template and
        so rolls the pods, as compose recreates a container whose image changed. The
        same build gives the same annotation, so a repeated up restarts nothing."""
        if doc.get("kind") not in WORKLOAD_KINDS:
            return doc
        ids = self.observed.local_images
        template = doc["spec"]["template"]
        containers = [*template["spec"].get("initContainers", []),
                      *template["spec"]["containers"]]
        used = sorted({c["image"] for c in containers if c.get("image") in ids})
        if not used:
            return doc
        value = ",".join(f"{image}={ids[image].removeprefix('sha256:')[:16]}"
                         for image in used)
        meta = dict(template.get("metadata") or {})
        meta["annotations"] = {**(meta.get("annotations") or {}), ANNOTATION_IMAGE_IDS: value}
        return {**doc, "spec": {**doc["spec"], "template": {**template, "metadata": meta}}}
