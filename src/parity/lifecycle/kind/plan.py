"""The kind lane's plan: what ``up`` will do, computed from what it observed.

Pure: :func:`plan` and :func:`image_actions` read an :class:`Observed` and return
:class:`Action` rows; tests feed them observations, the lane the real ones.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from ...errors import InputError


@dataclass
class Observed:
    """What exists before ``up`` changes anything."""

    cluster_exists: bool = False
    applied_config: str | None = None        # kind-config.yaml the cluster was made from
    node_image_id: str | None = None          # the image ID the node container runs
    edge_digest: str | None = None            # edge.yaml + CRDs the edge was installed from
    edge_ready: bool = False
    node_images: dict[str, str] = field(default_factory=dict)   # name -> image ID
    local_images: dict[str, str] = field(default_factory=dict)  # name -> image ID
    #: stateful service -> the image its existing StatefulSet runs (wrote its PVCs)
    data_images: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Action:
    step: str
    action: str      # create, keep, recreate, install, upgrade, load, skip, apply, prune
    detail: str = ""
    target: str = ""  # the image, for image actions


def config_diff(old: str, new: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                        "cluster (applied)", "kind-config.yaml (rendered)"))


def plan(obs: Observed, desired_config: str, images: list[str], recreate: bool,
         cluster: str, node_image_id: str | None = None, edge_digest: str = "") -> list[Action]:
    """The steps ``up`` will take, from what was observed. Pure: tests feed it
    observations; the driver feeds it the real ones. ``node_image_id``: the local ID
    of the node image kind-config.yaml names (None when unknown, e.g. not pulled)."""
    out: list[Action] = []
    fresh = False
    if not obs.cluster_exists:
        out.append(Action("cluster", "create", f"no kind cluster named {cluster}"))
        fresh = True
    elif obs.applied_config is None:
        raise InputError(
            f"a kind cluster named {cluster} exists, but parity has no record of creating it",
            hint="parity does not adopt clusters it did not create: delete it with "
                 f"kind delete cluster --name {cluster} if it is yours to delete")
    elif obs.applied_config != desired_config:
        diff = config_diff(obs.applied_config, desired_config)
        if not recreate:
            raise InputError(
                f"the cluster {cluster} was created from another kind-config.yaml; a kind "
                f"cluster cannot change it in place:\n{diff.rstrip()}",
                hint="recreate it (its data is lost): inv up --mode kind --recreate")
        out.append(Action("cluster", "recreate", "kind-config.yaml changed"))
        fresh = True
    elif node_image_id and obs.node_image_id and obs.node_image_id != node_image_id:
        if not recreate:
            raise InputError(
                f"the cluster {cluster} runs another build of its node image "
                f"({obs.node_image_id[:19]}; the image is now {node_image_id[:19]}); a "
                "node cannot change its image in place",
                hint="recreate it (its data is lost): inv up --mode kind --recreate, or "
                     "keep the old cluster by going back to the old image")
        out.append(Action("cluster", "recreate", "the node image was rebuilt"))
        fresh = True
    else:
        out.append(Action("cluster", "keep", "exists, created from the same kind-config.yaml"
                                             " and node image"))
    if fresh or not obs.edge_ready or obs.edge_digest is None:
        out.append(Action("edge", "install", "Gateway API CRDs and the edge controller"))
    elif obs.edge_digest != edge_digest:
        out.append(Action("edge", "upgrade", "edge.yaml or the Gateway API CRDs changed"))
    else:
        out.append(Action("edge", "keep", "edge controller ready, unchanged"))
    out += image_actions(obs, images, fresh)
    out.append(Action("apply", "apply", "server-side apply, wave by wave"))
    out.append(Action("prune", "prune", "objects no longer rendered"))
    return out


def image_actions(obs: Observed, images: list[str], fresh: bool) -> list[Action]:
    """Load an image only when the node lacks that exact build (compare image IDs;
    ``kind load`` re-tars every image every time, kubernetes-sigs/kind#380)."""
    out = []
    for image in sorted(images):
        local = obs.local_images.get(image)
        on_node = None if fresh else obs.node_images.get(image)
        if local and on_node == local:
            out.append(Action("images", "skip", f"{image}: the node has {local[:19]}", image))
        else:
            out.append(Action("images", "load", f"{image}: " + (
                "not on the node" if not on_node else "the node has another build"), image))
    return out
