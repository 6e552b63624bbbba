"""The kind lane: create, update, check and remove parity's kind cluster.

``up`` is an ordered list of steps (kind's own create is one too):

    preflight   Docker reachable and its memory, a kind CLI (PATH, parity's pinned
                build, or Go to build it), Docker able to run kind's privileged
                nodes, host ports free or ours. No Kubernetes API is contacted here.
    render      kind-config.yaml, manifests.yaml and edge.yaml
    build       the kind CLI when missing, then every image the profile builds
                (the offline profile: the node image, the edge controller and the
                services), each skipped when its inputs did not change
    observe     what exists: the cluster, what it was created from (recorded in
                ConfigMap kube-system/parity-cluster: kind-config.yaml, the node
                image's ID, the edge's digest), the edge controller, the node's images
    plan        computed from what was observed (:func:`plan`), printed before anything
                is changed; a cluster whose config or node image changed is recreated
                only with --recreate
    cluster     kind create cluster, writing .parity/kind/kubeconfig (never ~/.kube)
    load        kind load, in one call, the built images whose ID the node lacks
    edge        the Gateway API CRDs (vendored, pinned by SHA-256) and edge.yaml: the
                edge controller (Traefik) on node ports 30080/30443, which kind-config
                maps to 127.0.0.1:80/443; installed, upgraded when edge.yaml or the
                CRDs changed, else kept
    dns         the CoreDNS rewrite of the browser domain to the edge
    secrets     local CA ConfigMap, edge TLS Secret, secret values from .parity/secrets
    apply       server-side apply (field manager parity) wave by wave, waiting for
                each wave's workloads before the next; pod templates of locally built
                images carry the image ID, so a rebuilt image rolls its pods
    routes      wait until the controller has programmed the Gateway and accepted
                every HTTPRoute with its references resolved; fail with its reason
    prune       delete parity-labelled objects that are no longer rendered

Every API call goes through :class:`parity.kubeaccess.Kube`, which refuses any
kubeconfig context but the parity cluster's.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import fsio
from .. import docker
from ..errors import CheckFailed, InputError, ParityError, PrerequisiteMissing
from ..render import default_out
from ..render.edge import gateway_api_crds
from ..render.names import (ANNOTATION_ADOPTED, ANNOTATION_WAVE, EDGE_DEPLOYMENT, EDGE_NAMESPACE,
                            EDGE_TLS_SECRET, GATEWAY_NAME, KIND_DATA_HOST_DIR, KIND_DATA_NODE_DIR,
                            LABEL_MANAGED, LABEL_STACK, LOCAL_CA_CONFIGMAP, LOCAL_CA_KEY)
from . import UI, Delivered, Exec, ServiceStatus, Step, env_list, kindcli, run_steps

MIN_DOCKER_MEMORY = 6 * 1024**3
#: How long the edge may take to program the Gateway and accept every route; never
#: more than --timeout.
EDGE_READY_SECONDS = 300
STATE_CONFIGMAP = "parity-cluster"
#: The Docker network kind puts every kind cluster's nodes on.
KIND_NETWORK = "kind"
#: Pod template annotation: the local image ID of each built image the pod runs.
ANNOTATION_IMAGE_IDS = "parity.dev/image-ids"
KIND_CLUSTER_LABEL = "io.x-k8s.kind.cluster"
WORKLOAD_KINDS = {"Deployment": "apps/v1", "StatefulSet": "apps/v1", "Job": "batch/v1"}
#: Kinds parity renders into the namespace; prune looks for stale ones of these.
#: Not PersistentVolumeClaims: like compose's named volumes, data outlives a service
#: leaving the phase (``inv down`` removes it with the cluster).
PRUNABLE = (("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"), ("batch/v1", "Job"),
            ("v1", "Service"), ("v1", "ConfigMap"), ("v1", "Secret"),
            ("networking.k8s.io/v1", "Ingress"),
            ("gateway.networking.k8s.io/v1", "HTTPRoute"),
            ("gateway.networking.k8s.io/v1", "Gateway"))


# --------------------------------------------------------------------------- plan

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


# --------------------------------------------------------------------------- driver

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


def _version(text: str) -> tuple[int, int, int] | None:
    m = re.search(r"v?(\d+)\.(\d+)\.(\d+)", text or "")
    return tuple(int(x) for x in m.groups()) if m else None  # type: ignore[return-value]


class KindLane:
    def __init__(self, root: Path, resolved, ui: UI | None = None, timeout: float = 900,
                 recreate: bool = False):
        self.root = root
        self.resolved = resolved
        self.stack = resolved.stack
        self.ui = ui or UI()
        self.timeout = timeout
        self.recreate = recreate
        self.state = root / ".parity"
        self.kind_dir = self.state / "kind"
        self.kubeconfig = self.kind_dir / "kubeconfig"
        self.out = default_out(root, "kind", self.stack.phase)
        self.cluster = f"parity-{self.stack.name}"
        self.files: dict[str, str] = {}
        self.observed = Observed()
        self.actions: list[Action] = []
        self.report: dict = {}
        self.kind_bin: str | None = None
        self._privileged_unknown = False  # preflight had no local image to probe with
        self._unowned = False  # the cluster's record names no checkout yet
        self._kube = None

    # ------------------------------------------------------------------ helpers

    @property
    def kube(self):
        if self._kube is None:
            from ..kubeaccess import Kube

            self._kube = Kube(self.kubeconfig, self.cluster)
        return self._kube

    def kind(self, *args: str, check: bool = True, timeout: float = 900):
        if self.kind_bin is None:
            self.kind_bin = kindcli.ensure(self.root, self.ui.line)
        # in the checkout: kind-config.yaml's data hostPath is relative to it
        return docker.run([self.kind_bin, *args], check=check, timeout=timeout,
                          env=self.kind_env(create=args[:2] == ("create", "cluster")),
                          cwd=self.root)

    def kind_env(self, create: bool = False) -> dict[str, str]:
        """kind sees only parity's kubeconfig (a kind command without --kubeconfig
        edits $KUBECONFIG or ~/.kube/config) and no proxy for the loopback API; only
        ``create`` keeps the proxy variables, which kind hands to its nodes for pulls,
        with the loopback names added to NO_PROXY."""
        from ..kubeaccess import subprocess_env

        return subprocess_env(self.kubeconfig, self.kind_dir / "cache", keep_proxy=create)

    def node(self) -> str:
        return f"{self.cluster}-control-plane"

    def node_containers(self) -> list[dict]:
        """The cluster's node containers, by kind's own label (no kind CLI needed)."""
        return docker.json_lines(docker.run(
            ["docker", "ps", "-a", "--no-trunc", "--format", "{{json .}}", "--filter",
             f"label={KIND_CLUSTER_LABEL}={self.cluster}"], timeout=30).stdout)

    def cluster_exists(self) -> bool:
        """kind's own answer when a kind is at hand, else its node containers' label
        (what ``kind get clusters`` reads): status and down need no kind build."""
        found = self.kind_bin or kindcli.find(self.root).path
        if found:
            self.kind_bin = found
            return self.cluster in self.kind("get", "clusters", timeout=60).stdout.split()
        return bool(self.node_containers())

    def docs(self, name: str = "manifests.yaml") -> list[dict]:
        from ..yamlio import load_docs

        return load_docs(self.files[name])

    def edge_digest(self, crds: str | None = None) -> str:
        """What the edge was installed from: edge.yaml and the vendored CRDs (``crds``:
        their digest, when the caller has already read them)."""
        if crds is None:
            _, crds = gateway_api_crds()
        return hashlib.sha256((self.files["edge.yaml"] + crds).encode()).hexdigest()

    # ------------------------------------------------------------------ up

    def up(self) -> dict:
        steps = [
            Step("preflight", "preflight: Docker, kind, privileged nodes, ports, memory",
                 self.preflight),
            Step("render", "render kind-config.yaml, manifests.yaml and edge.yaml",
                 self.render),
            Step("build", "build: the node image, the edge controller, the services "
                          "(unchanged inputs are skipped)", self.build),
            Step("observe", "observe the cluster, the edge and the node's images",
                 self.observe),
            Step("plan", "plan", self.make_plan),
            Step("cluster", f"cluster {self.cluster}", self.ensure_cluster),
            Step("load", "load the images the node lacks", self.load_images),
            Step("edge", "edge controller and Gateway API CRDs", self.ensure_edge),
            Step("dns", "CoreDNS rewrite of the browser domain to the edge", self.ensure_dns),
            Step("secrets", "local CA, edge certificate and secret values", self.ensure_secrets),
            Step("apply", "apply and wait, wave by wave", self.apply_waves),
            Step("routes", "wait until the Gateway is programmed and every route accepted",
                 self.wait_edge),
            Step("prune", "prune objects no longer rendered", self.prune),
        ]
        run_steps(steps, self.ui)
        self.report["endpoints"] = self.endpoints()
        return self.report

    def preflight(self) -> str:
        docker.engine_ok()
        if self.node_containers():
            self.check_owner_early()
        kind = self.check_kind()
        self.check_privileged()
        memory = self.check_memory()
        self.check_ports()
        return f"{kind}, Docker memory {memory / 1024**3:.0f} GiB"

    def check_kind(self) -> str:
        """The kind the lane runs (found, or to be built by the build step)."""
        found = kindcli.find(self.root)
        if found.path:
            self.kind_bin = found.path
            return f"kind {'.'.join(map(str, found.version or ()))} ({found.how})"
        if found.buildable:
            return f"kind {kindcli.pinned_version(self.root)} (built by the next step: Go found)"
        raise PrerequisiteMissing(
            f"{found.how}; the kind lane needs kind "
            f"{'.'.join(map(str, kindcli.KIND_MIN))} or newer",
            hint=kindcli.install_hint(self.root))

    def check_privileged(self) -> str:
        """kind starts its nodes with docker run --privileged: say so before kind does."""
        ok, detail = docker.privileged_probe()
        shim = docker.shim_in_use()
        if ok is False:
            raise PrerequisiteMissing(f"kind cannot start its nodes here: {detail}",
                                      hint=docker.SHIM_HINT)
        if ok is None:
            self._privileged_unknown = True
            return f"not checked: {detail}"
        self._privileged_unknown = False
        return f"{detail} (through the docker shim {shim}, decision 0010)" if shim else detail

    @staticmethod
    def check_kubectl() -> tuple[int, ...] | None:
        """kubectl is for you, not for parity: the lane talks to the API itself."""
        if shutil.which("kubectl") is None:
            return None
        from ..kubeaccess import subprocess_env

        try:
            out = docker.run(["kubectl", "version", "--client", "-o", "json", "--kubeconfig",
                              os.devnull], timeout=30,
                             env=subprocess_env(os.devnull, os.devnull)).stdout
        except CheckFailed:
            return None
        return _version(json.loads(out).get("clientVersion", {}).get("gitVersion", ""))

    @staticmethod
    def check_memory() -> int:
        memory = int(docker.run(["docker", "info", "--format", "{{.MemTotal}}"],
                                timeout=30).stdout.strip() or 0)
        if memory and memory < MIN_DOCKER_MEMORY:
            raise PrerequisiteMissing(
                f"Docker has {memory / 1024**3:.1f} GiB of memory; the kind lane needs 6 GiB",
                hint="Docker Desktop: Settings -> Resources -> Memory, then restart Docker")
        return memory

    def check_ports(self) -> None:
        from . import compose as compose_lane

        for port, var in ((self.stack.http_port, "PARITY_HTTP_PORT"),
                          (self.stack.https_port, "PARITY_HTTPS_PORT")):
            if compose_lane.port_free(self.stack.edge_bind, port):
                continue
            ours = docker.json_lines(docker.run(
                ["docker", "ps", "--format", "{{json .}}", "--filter",
                 f"label={KIND_CLUSTER_LABEL}={self.cluster}", "--filter", f"publish={port}"],
                timeout=30).stdout)
            if ours:
                continue
            raise PrerequisiteMissing(
                f"{self.stack.edge_bind}:{port} is in use by another process"
                f"{compose_lane.who_listens(port)}",
                hint=f"stop it (the compose lane? inv down), or move the port: {var}="
                     f"{port + 8000} inv up --mode kind (a kind port change recreates the "
                     "cluster)")

    def render(self) -> str:
        from .. import lock
        from ..render import RenderContext, render, write

        self.files = render(self.stack, RenderContext.for_output(self.root, self.out))
        with lock.render_dir(self.root, self.out):
            changed = write(self.files, self.out)
        return f"{self.out.relative_to(self.root)}/ ({'changed' if changed else 'unchanged'})"

    def build(self) -> str:
        from .. import checkout, images

        if self.kind_bin is None:
            self.kind_bin = kindcli.ensure(self.root, self.ui.line)
        checkout.refuse_shared_images(self.stack, self.root, "inv up --mode kind")
        results = images.build(self.stack, self.root, progress=self.ui.line)
        if self._privileged_unknown:
            self.check_privileged()  # preflight had no image to probe with; now there is
        return images.summary(results)

    def observe(self) -> str:
        obs = Observed(cluster_exists=self.cluster_exists())
        if obs.cluster_exists and not self.kubeconfig.exists():
            fsio.ensure_dir(self.kind_dir)
            self.kind("export", "kubeconfig", "--name", self.cluster, "--kubeconfig",
                      str(self.kubeconfig), timeout=60)
        if obs.cluster_exists:
            data = (self.kube.get("v1", "ConfigMap", STATE_CONFIGMAP, "kube-system")
                    or {}).get("data") or {}
            self.check_owner(data, "up")
            self._unowned = "checkout-id" not in data  # made by an older parity
            obs.applied_config = data.get("kind-config.yaml")
            obs.edge_digest = data.get("edge.sha256")
            obs.node_image_id = self.running_node_image()
            obs.edge_ready = self._controller_available()
            obs.node_images = self.node_images()
            obs.data_images = self.data_images()
        obs.local_images = self.local_images()
        self.observed = obs
        return ("cluster exists" if obs.cluster_exists else "no cluster") + (
            ", edge ready" if obs.edge_ready else "")

    def running_node_image(self) -> str | None:
        proc = docker.run(["docker", "container", "inspect", "--format", "{{.Image}}",
                           self.node()], check=False, timeout=30)
        if proc.returncode != 0:
            return None
        return proc.stdout.strip() or None

    def wanted_node_image(self) -> str | None:
        """The local ID of the node image kind-config.yaml names (None: not local)."""
        from .. import images

        img = images.local_image(self.stack.kind_node.image)
        return img.id if img else None

    def data_images(self) -> dict[str, str]:
        out = {}
        for svc in self.stack.services.values():
            if svc.workload != "stateful" or not svc.storage:
                continue
            sts = self.kube.get("apps/v1", "StatefulSet", svc.name, self.stack.namespace)
            containers = (((sts or {}).get("spec") or {}).get("template") or {}).get(
                "spec", {}).get("containers") or []
            image = next((c.get("image") for c in containers if c.get("name") == svc.name),
                         None)
            if image:
                out[svc.name] = image
        return out

    def built_images(self) -> list[str]:
        """Images built here that the node needs (kind load): what the image builder
        builds for this lane (the services' and the edge controller's), but the node
        image, which kind creates the node from."""
        from .. import images

        return sorted({b.image for b in images.buildable(self.stack).values()
                       if b.build is not None and b is not self.stack.kind_node})

    def local_images(self) -> dict[str, str]:
        from .. import images

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

    def make_plan(self) -> str:
        self.actions = plan(self.observed, self.files["kind-config.yaml"],
                            self.built_images(), self.recreate, self.cluster,
                            self.wanted_node_image(), self.edge_digest())
        self.check_data()
        for a in self.actions:
            self.ui.line(f"    {a.step:<8} {a.action:<9} {a.detail}")
        changes = [a for a in self.actions if a.action not in ("keep", "skip")]
        return f"{len(changes)} actions"

    def check_data(self) -> None:
        """Refuse an image on data another image wrote (parity.datacompat): a kept
        cluster's StatefulSets are the record; a new cluster finds the data ``down``
        kept in .parity/data/kind/ and what ``down`` remembered of its writers."""
        from .. import running
        from ..datacompat import Written, check, recalled

        if self._action("cluster") == "keep":
            written = [Written(name, f"the PVCs of StatefulSet {name}", image,
                               self._backup_command(name))
                       for name, image in sorted(self.observed.data_images.items())]
        else:
            kept = set(self.kept_data())
            written = [w for w in recalled(self.state, "kind")
                       if any(d in kept for d in w.data.split())]
        run = running.read(self.root).get("kind")
        check(written, self.stack, f"inv reset --mode kind --phase {self.stack.phase} "
                                   f"--profile {self.stack.profile}",
              profile=run.profile if run else None)

    # ------------------------------------------------------------------ data (0016)

    @property
    def data_dir(self) -> Path:

        return self.root / KIND_DATA_HOST_DIR

    def claims(self) -> list[tuple[str, str, dict]]:
        """(StatefulSet, PVC name, claim template) of every PVC the rendered
        StatefulSets make (``<template>-<statefulset>-<ordinal>``: stable names)."""
        out = []
        for doc in self.docs():
            if doc["kind"] != "StatefulSet":
                continue
            name = doc["metadata"]["name"]
            for tpl in doc["spec"].get("volumeClaimTemplates") or []:
                for i in range(int(doc["spec"].get("replicas", 1))):
                    out.append((name, f"{tpl['metadata']['name']}-{name}-{i}", tpl))
        return out

    def data_dir_name(self, claim: str) -> str:
        return f"{self.stack.namespace}_{claim}"

    def kept_data(self) -> list[str]:
        """The data directories in .parity/data/kind/ (one per PVC that ever ran)."""
        if not self.data_dir.is_dir():
            return []
        return sorted(p.name for p in self.data_dir.iterdir() if p.is_dir())

    def ensure_data_volumes(self) -> int:
        """A PersistentVolume for each PVC of the rendered StatefulSets, pre-bound to
        it (claimRef) and backed by its own directory under local-path-provisioner's
        path, which kind-config.yaml mounts from .parity/data/kind/: a PVC made in a
        new cluster binds to the same data the last cluster wrote."""

        default_class = self.default_storage_class()
        ns = self.stack.namespace
        made = 0
        for sts, claim, tpl in self.claims():
            spec = tpl.get("spec") or {}
            directory = self.data_dir / self.data_dir_name(claim)
            fsio.ensure_dir(directory, 0o777)  # as local-path-provisioner makes its directories
            name = f"parity-{ns}-{claim}"
            if self.kube.get("v1", "PersistentVolume", name) is not None:
                continue
            self.kube.apply({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {
                "name": name, "labels": {LABEL_MANAGED: "true", LABEL_STACK: self.stack.name}},
                "spec": {
                    "capacity": {"storage": spec["resources"]["requests"]["storage"]},
                    "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": spec.get("storageClassName") or default_class,
                    "claimRef": {"namespace": ns, "name": claim},
                    "hostPath": {"path": f"{KIND_DATA_NODE_DIR}/{self.data_dir_name(claim)}",
                                 "type": "DirectoryOrCreate"}}})
            made += 1
        return made

    def default_storage_class(self) -> str:
        for sc in self.kube.list("storage.k8s.io/v1", "StorageClass"):
            notes = sc["metadata"].get("annotations") or {}
            if notes.get("storageclass.kubernetes.io/is-default-class") == "true":
                return sc["metadata"]["name"]
        return "standard"

    def _backup_command(self, service: str) -> str:
        dirs = [self.data_dir_name(c) for s, c, _ in (self.claims() if self.files else [])
                if s == service]
        if not dirs:
            return ""
        rel = self.data_dir.relative_to(self.root)
        return f"sudo cp -a {rel}/{dirs[0]} {dirs[0]}.backup"

    def remove_data(self) -> None:
        """Delete .parity/data/kind/ (reset, down --volumes). Its files belong to the
        containers' users (often root): through the node while it runs, else a
        throwaway container of the node image, when the checkout's user cannot."""

        if not self.data_dir.exists():
            return
        if self.node_containers():
            docker.run(["docker", "exec", self.node(), "sh", "-c",
                        f"rm -rf {KIND_DATA_NODE_DIR}/* {KIND_DATA_NODE_DIR}/.[!.]*"],
                       check=False, timeout=300)
        try:
            shutil.rmtree(self.data_dir)
        except PermissionError:
            docker.run(["docker", "run", "--rm", "-v", f"{self.data_dir}:/data",
                        "--entrypoint", "sh", self.stack.kind_node.image, "-c",
                        "rm -rf /data/* /data/.[!.]*"], timeout=300)
            shutil.rmtree(self.data_dir)

    def _action(self, step: str) -> str:
        return next((a.action for a in self.actions if a.step == step), "keep")

    def record(self) -> None:
        """What the cluster was made from, for the next up's plan."""
        self.kube.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": STATE_CONFIGMAP, "namespace": "kube-system",
            "labels": {LABEL_MANAGED: "true", LABEL_STACK: self.stack.name}},
            "data": {"kind-config.yaml": self.files["kind-config.yaml"],
                     "node-image-id": self.running_node_image() or "",
                     "edge.sha256": self.observed.edge_digest or "",
                     **self.owner_record()}})

    # ------------------------------------------------------------------ ownership

    def owner_record(self) -> dict[str, str]:
        """This checkout's identity, as the cluster's record keeps it (decision 0015)."""
        from .. import checkout

        me = checkout.identity(self.root)
        return {"checkout-id": me.id, "checkout-path": me.path}

    def check_owner(self, record: dict, command: str) -> None:
        """Refuse a cluster another checkout created (a record without an owner was
        made by an older parity: it is taken as this checkout's)."""
        from .. import checkout

        owner = (record or {}).get("checkout-id")
        if owner and owner != checkout.identity(self.root).id:
            raise checkout.other_checkout(
                f"the kind cluster {self.cluster}", record.get("checkout-path") or "?", [],
                f"inv {command} --mode kind", checkout.stack_name_hint("kind"))

    def check_owner_early(self) -> None:
        """Before anything is built: read the record through the node itself (no
        kind CLI, no kubeconfig needed); a node that does not answer is left to
        the observe step."""
        proc = docker.run(["docker", "exec", self.node(), "kubectl", "--kubeconfig",
                           "/etc/kubernetes/admin.conf", "-n", "kube-system", "get",
                           "configmap", STATE_CONFIGMAP, "-o", "json"], check=False,
                          timeout=60)
        if proc.returncode == 0:
            try:
                record = json.loads(proc.stdout).get("data") or {}
            except ValueError:
                return
            self.check_owner(record, "up")

    def ensure_cluster(self) -> str:
        action = self._action("cluster")
        if action == "keep":
            if self._unowned:  # record this checkout as the owner (decision 0015)
                self.record()
            return "kept"
        if action == "recreate":
            self.kind("delete", "cluster", "--name", self.cluster, "--kubeconfig",
                      str(self.kubeconfig), timeout=300)
        fsio.ensure_dir(self.kind_dir)
        fsio.ensure_dir(self.data_dir)  # the user's, not the engine's
        network_before = self._network_exists()
        self.kind("create", "cluster", "--name", self.cluster, "--config",
                  str(self.out / "kind-config.yaml"), "--kubeconfig", str(self.kubeconfig),
                  "--wait", "180s", timeout=900)
        if not network_before and self._network_exists():
            # kind made its shared network for this cluster: down may remove it again
            fsio.write_atomic(self.kind_dir / "created-network", KIND_NETWORK + "\n")
        self._kube = None
        self.observed.edge_digest = None
        self.record()
        return f"{action}d from {self.stack.kind_node.image}"

    @staticmethod
    def _network_exists() -> bool:
        return docker.run(["docker", "network", "inspect", KIND_NETWORK], check=False,
                          timeout=30).returncode == 0

    def _remove_network_we_created(self, dry_run: bool) -> str | None:
        """The ``kind`` network, when parity's create made it and no container (another
        kind cluster, anything of yours) is attached to it any more."""
        marker = self.kind_dir / "created-network"
        if not marker.is_file() or not self._network_exists():
            return None
        attached = docker.run(["docker", "network", "inspect", "--format",
                               "{{range .Containers}}{{.Name}} {{end}}", KIND_NETWORK],
                              check=False, timeout=30).stdout.split()
        ours = {row.get("Names") for row in self.node_containers()} if dry_run else set()
        if set(attached) - ours:
            return None
        if not dry_run:
            docker.run(["docker", "network", "rm", KIND_NETWORK], check=False, timeout=60)
        return f"network {KIND_NETWORK}"

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

    # ------------------------------------------------------------------ edge

    def _controller_available(self) -> bool:
        from .. import kreadiness

        return kreadiness.evaluate(self.kube.get("apps/v1", "Deployment", EDGE_DEPLOYMENT,
                                                 EDGE_NAMESPACE)).ready

    def ensure_edge(self) -> str:
        action = self._action("edge")
        if action == "keep":
            return "kept"
        from ..yamlio import load_docs

        crds, crds_digest = gateway_api_crds()
        docs = [d for _, raw in crds for d in load_docs(raw.decode("utf-8"))]
        for doc in docs:
            self.kube.apply(doc)
        self.wait_for(lambda: all(self._established(d) for d in docs),
                      "the Gateway API CRDs", 120)
        self._kube = None  # rediscover the new API groups
        edge = [self.with_image_ids(d) for d in self.docs("edge.yaml")]
        for doc in edge:
            self.kube.apply(doc)
        deployment = next(d for d in edge if d["kind"] == "Deployment")
        self.wait_workloads("edge", [deployment], namespace=EDGE_NAMESPACE)
        self.observed.edge_digest = self.edge_digest(crds_digest)
        self.record()
        return f"{action}ed {len(docs)} CRDs and {len(edge)} objects ({self.stack.kind_edge.image})"

    def _established(self, crd: dict) -> bool:
        got = self.kube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition",
                            crd["metadata"]["name"])
        return any(c.get("type") == "Established" and c.get("status") == "True"
                   for c in ((got or {}).get("status") or {}).get("conditions") or [])

    # ------------------------------------------------------------------ dns, secrets

    def ensure_dns(self) -> str:
        corefile_doc = next(d for d in self.docs() if d["kind"] == "ConfigMap"
                            and d["metadata"]["name"] == "coredns")
        self.kube.apply(corefile_doc)
        digest = hashlib.sha256(corefile_doc["data"]["Corefile"].encode()).hexdigest()[:16]
        # restart CoreDNS only when the Corefile changed (a deterministic annotation)
        self.kube.apply({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {
            "name": "coredns", "namespace": "kube-system"}, "spec": {"template": {
                "metadata": {"annotations": {"parity.dev/corefile-hash": digest}}}}})
        return f"Corefile {digest}"

    def ensure_secrets(self) -> str:
        import base64

        from .. import secrets, tls

        secrets.ensure(self.stack, self.state)
        material = tls.ensure(self.state, self.stack.domain)  # checked, read under its lock
        for note in material.notes:
            self.ui.line(f"    {note}")
        ns = self.stack.namespace
        labels = {LABEL_MANAGED: "true", LABEL_STACK: self.stack.name}
        self.kube.apply({"apiVersion": "v1", "kind": "Namespace",
                         "metadata": {"name": ns, "labels": labels}})
        ca_crt = material.ca_pem.decode("ascii")
        self.kube.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": LOCAL_CA_CONFIGMAP, "namespace": ns, "labels": labels},
            "data": {LOCAL_CA_KEY: ca_crt}})
        self.kube.apply({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                         "metadata": {"name": EDGE_TLS_SECRET, "namespace": ns,
                                      "labels": labels},
                         "data": {"tls.crt": base64.b64encode(material.cert_pem).decode(),
                                  "tls.key": base64.b64encode(material.key_pem).decode()}})
        return "CA, certificate and secret store ready"

    def with_secret_values(self, doc: dict) -> dict:
        """A rendered Secret (names and keys only) filled from the local store, in
        the same apply (a separate one would let SSA drop the data)."""
        from .. import secrets

        if doc.get("kind") != "Secret" or doc.get("type", "Opaque") != "Opaque":
            return doc
        secret = self.stack.secrets.get(doc["metadata"]["name"])
        if secret is None:
            return doc
        return {**doc, "stringData": secrets.values(self.state, secret)}

    # ------------------------------------------------------------------ images

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

    # ------------------------------------------------------------------ apply

    def waves(self) -> list[tuple[str, list[dict]]]:
        """Stack-level objects first, then each dependency wave in order."""
        first, by_wave = [], {}
        for doc in self.docs():
            if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "coredns":
                continue  # applied by the dns step
            wave = (doc["metadata"].get("annotations") or {}).get(ANNOTATION_WAVE)
            if wave is None:
                first.append(doc)
            else:
                by_wave.setdefault(int(wave), []).append(doc)
        return [("stack", first)] + [(f"wave {w}", by_wave[w]) for w in sorted(by_wave)]

    def apply_waves(self) -> str:
        self.ensure_data_volumes()  # before any StatefulSet makes its PVCs
        total = 0
        waves = self.waves()
        for name, docs in waves:
            for doc in docs:
                doc = self.with_image_ids(self.with_secret_values(doc))
                if doc["kind"] == "Job":
                    self.replace_changed_job(doc)
                self.kube.apply(doc)
            total += len(docs)
            workloads = [d for d in docs if d["kind"] in WORKLOAD_KINDS]
            if workloads:
                self.wait_workloads(name, workloads)
        return f"{total} objects in {len(waves)} groups"

    def replace_changed_job(self, doc: dict) -> None:
        """A Job's pod template cannot change: when its config or image did, delete the
        old Job (and its pods) so the apply creates it anew and it runs again, as
        compose reruns a one-off whose config changed. An unchanged Job is left alone
        (it does not run again)."""
        meta = doc["metadata"]
        old = self.kube.get("batch/v1", "Job", meta["name"], meta["namespace"])
        if old is None:
            return
        def notes(obj: dict) -> dict:
            return {k: v for k, v in ((((obj.get("spec") or {}).get("template") or {})
                                       .get("metadata") or {}).get("annotations") or {}).items()
                    if k.startswith("parity.dev/")}
        if notes(old) == notes(doc):
            return
        self.ui.line(f"    {meta['name']}: its config or image changed; the Job runs again")
        self.kube.delete("batch/v1", "Job", meta["name"], meta["namespace"],
                         propagation="Foreground")
        self.wait_for(lambda: self.kube.get("batch/v1", "Job", meta["name"],
                                            meta["namespace"]) is None,
                      f"deleting Job {meta['name']}", 120)

    def deadline_for(self, name: str) -> float:
        """Seconds a workload may take: a job its completion timeout; a service the
        time its readiness probe may fail (delay + period x threshold) plus time to
        pull and start; never more than --timeout."""
        svc = self.stack.services.get(name)
        r = svc.readiness if svc else None
        if r is None:
            return self.timeout
        if r.kind == "completion":
            seconds = float(r.completion_timeout_seconds or self.timeout)
        else:
            seconds = r.initial_delay_seconds + r.period_seconds * r.failure_threshold + 180
        return min(self.timeout, seconds)

    def wait_workloads(self, wave: str, workloads: list[dict],
                       namespace: str | None = None) -> None:
        started = time.monotonic()
        deadlines = {d["metadata"]["name"]: self.deadline_for(d["metadata"]["name"])
                     for d in workloads}
        with self.ui.status(f"{wave}: waiting") as status:
            while True:
                verdicts = {d["metadata"]["name"]: self.verdict(d["kind"], d["metadata"]["name"],
                                                                namespace)
                            for d in workloads}
                failed = {n: v for n, v in verdicts.items() if v.state == "failed"}
                if failed:
                    raise CheckFailed(f"{wave}: " + "; ".join(
                        f"{n}: {v.reason}" for n, v in failed.items()),
                        hint="inv status --mode kind shows every service with its reason")
                pending = {n: v for n, v in verdicts.items() if not v.ready}
                if not pending:
                    return
                elapsed = time.monotonic() - started
                late = {n: v for n, v in pending.items() if elapsed > deadlines[n]}
                if late:
                    raise CheckFailed(f"{wave}: not ready in time: " + "; ".join(
                        f"{n} (after {deadlines[n]:.0f} s): {v.reason or v.state}"
                        for n, v in late.items()), hint="inv status --mode kind")
                status.update(f"{wave}: waiting for " + ", ".join(
                    f"{n} ({v.reason or v.state})" for n, v in pending.items()))
                time.sleep(2)

    def verdict(self, kind: str, name: str, namespace: str | None = None):
        from .. import kreadiness

        ns = namespace or self.stack.namespace
        obj = self.kube.get(WORKLOAD_KINDS[kind], kind, name, ns)
        if obj is None:
            return kreadiness.evaluate(None)
        selector = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        if kind == "Job":
            selector = {"job-name": name}
        pods = kreadiness.pods_for(selector, self.kube.list("v1", "Pod", ns))
        pvcs = []
        if kind == "StatefulSet":
            pvcs = kreadiness.pvcs_for(obj, self.kube.list("v1", "PersistentVolumeClaim", ns))
        return kreadiness.evaluate(obj, pods, pvcs)

    def prune(self) -> str:
        rendered = {(d["kind"], (d["metadata"].get("namespace") or ""), d["metadata"]["name"])
                    for d in self.docs()}
        selector = f"{LABEL_MANAGED}=true,{LABEL_STACK}={self.stack.name}"
        keep_names = {LOCAL_CA_CONFIGMAP, EDGE_TLS_SECRET}
        removed = []
        for api_version, kind in PRUNABLE:
            for obj in self.kube.list(api_version, kind, self.stack.namespace, selector):
                meta = obj["metadata"]
                ident = (kind, meta.get("namespace") or "", meta["name"])
                if ident in rendered or meta["name"] in keep_names:
                    continue
                if (meta.get("annotations") or {}).get(ANNOTATION_ADOPTED):
                    continue
                self.kube.delete(api_version, kind, meta["name"], meta.get("namespace"))
                removed.append(f"{kind}/{meta['name']}")
        return f"removed {len(removed)}" + (f": {', '.join(removed)}" if removed else "")

    def edge_objects(self) -> list[tuple[str, str]]:
        """(kind, name) of the rendered Gateway and HTTPRoutes."""
        return [(d["kind"], d["metadata"]["name"]) for d in self.docs()
                if d["kind"] in ("Gateway", "HTTPRoute")]

    def edge_verdicts(self, objects: list[tuple[str, str]] | None = None) -> dict[str, "object"]:
        """``Gateway/<name>`` and ``HTTPRoute/<name>`` -> verdict, for what is rendered."""
        from .. import kreadiness

        gateway = GATEWAY_NAME
        ns = self.stack.namespace
        out = {}
        for kind, name in self.edge_objects() if objects is None else objects:
            if kind == "Gateway":
                out[f"Gateway/{name}"] = kreadiness.gateway_verdict(
                    self.kube.get("gateway.networking.k8s.io/v1", kind, name, ns))
            elif kind == "HTTPRoute":
                out[f"HTTPRoute/{name}"] = kreadiness.route_verdict(
                    self.kube.get("gateway.networking.k8s.io/v1", kind, name, ns), gateway)
        return out

    def wait_edge(self) -> str:
        """Workloads being ready is not the stack being reachable: wait for the
        controller to program the Gateway and accept every route, and fail with its
        reason (a route no listener takes, a backend it cannot resolve)."""
        if self.stack.routing != "gateway":
            return "Ingress routing: no route status to wait for"
        seconds = min(self.timeout, EDGE_READY_SECONDS)
        started = time.monotonic()
        hint = (f"kubectl --kubeconfig {self.kubeconfig.relative_to(self.root)} -n "
                f"{self.stack.namespace} describe gateway,httproute; inv lint --mode kind "
                "names broken references")
        objects = self.edge_objects()  # parsed once, polled many times
        with self.ui.status("routes: waiting") as status:
            while True:
                verdicts = self.edge_verdicts(objects)
                failed = {n: v for n, v in verdicts.items() if v.state == "failed"}
                if failed:
                    raise CheckFailed("edge: " + "; ".join(f"{n}: {v.reason}"
                                                           for n, v in failed.items()), hint=hint)
                pending = {n: v for n, v in verdicts.items() if not v.ready}
                if not pending:
                    routes = sum(1 for n in verdicts if n.startswith("HTTPRoute/"))
                    served = self.wait_served(started + seconds, status)
                    return f"Gateway programmed, {routes} routes accepted, {served}"
                if time.monotonic() - started > seconds:
                    raise CheckFailed(f"edge: not ready after {seconds:.0f} s: " + "; ".join(
                        f"{n}: {v.reason}" for n, v in pending.items()), hint=hint)
                status.update("routes: waiting for " + ", ".join(
                    f"{n} ({v.reason})" for n, v in pending.items()))
                time.sleep(1)

    def wait_served(self, deadline: float, status) -> str:
        """Accepted is not served: the controller programs a route's backends from
        the EndpointSlices a moment after the pods became ready, and until then the
        edge answers 503 "no available server". Ask each route through the edge, as
        a browser would, until its service answers."""
        from .. import tls
        from ..edgehttp import session

        try:
            nodes = self.node_containers()
        except ParityError:
            nodes = []
        if not nodes:
            # no node container publishes the edge on this machine (the k8s suite's
            # stand-in kind): nothing to ask through the edge
            return "no node container publishes the edge here"
        http = session("127.0.0.1", self.stack.http_port, self.stack.https_port,
                       str(tls.ca_paths(self.state)[0]))
        waiting = {e["route"]: e["url"] for e in self.endpoints()}
        last: dict[str, str] = {}
        while True:
            for route, url in list(waiting.items()):
                try:
                    r = http.get(url, timeout=5, allow_redirects=False)
                    answer = f"{r.status_code} {r.text[:40].strip()}"
                    # the edge's own answers: no backend yet, or no route for the host
                    if not (r.status_code in (502, 503) and "no available server" in r.text
                            or r.status_code == 404 and r.text.strip() == "404 page not found"):
                        del waiting[route]
                        continue
                except Exception as exc:  # noqa: BLE001 - connection refused while it starts
                    answer = exc.__class__.__name__
                last[route] = answer
            if not waiting:
                http.close()
                return "every route served"
            if time.monotonic() > deadline:
                http.close()
                raise CheckFailed("edge: routes accepted but not served: " + "; ".join(
                    f"{r} ({waiting[r]}): {last.get(r, '?')}" for r in sorted(waiting)),
                    hint=f"kubectl --kubeconfig {self.kubeconfig.relative_to(self.root)} -n "
                         f"{self.stack.namespace} get endpointslices; inv status --mode kind")
            status.update("routes: waiting for the edge to serve " + ", ".join(sorted(waiting)))
            time.sleep(1)

    def wait_for(self, fn, what: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not fn():
            if time.monotonic() > deadline:
                raise CheckFailed(f"{what} not ready after {seconds:.0f} s",
                                  hint="inv status --mode kind; kubectl --kubeconfig "
                                       f"{self.kubeconfig} get pods -A")
            time.sleep(2)

    # ------------------------------------------------------------------ status

    def endpoints(self) -> list[dict]:
        return [{"route": r.name, "service": r.service,
                 "url": self.stack.transport.browser_url(r.host, r.path)}
                for r in sorted(self.stack.routes().values(), key=lambda r: r.name)]

    def status(self, logs: bool = False) -> list[ServiceStatus]:
        urls = {}
        for e in self.endpoints():
            urls.setdefault(e["service"], e["url"])
        if not self.cluster_exists() or not self.kubeconfig.exists():
            return [ServiceStatus(n, s.phase, s.workload, "missing", "none", False,
                                  f"no cluster {self.cluster}", urls.get(n, ""))
                    for n, s in self.stack.services.items()]
        self.kube  # the context guard runs before anything else
        from .. import kreadiness

        rows = []
        for name, svc in self.stack.services.items():
            if svc.role == "edge":
                rows.append(self.edge_status(name, svc.phase))
                continue
            kind = {"stateless": "Deployment", "stateful": "StatefulSet",
                    "job": "Job"}[svc.workload]
            v = self.verdict(kind, name)
            rows.append(kreadiness.service_status(name, svc.phase, svc.workload, v,
                                                  urls.get(name, "")))
        return rows

    def edge_status(self, name: str, phase: int) -> ServiceStatus:
        """The edge's row: the Gateway's verdict, else the first route that is not
        served (a ready Gateway with a rejected route is not a working edge)."""
        if not self.files:
            from ..render import RenderContext, render

            self.files = render(self.stack, RenderContext.for_output(self.root, self.out))
        verdicts = self.edge_verdicts()
        gateway = next((v for n, v in verdicts.items() if n.startswith("Gateway/")), None)
        if gateway is None:  # Ingress routing
            return ServiceStatus(name, phase, "ingress", "applied", "healthy", True, "")
        if not gateway.ready:
            return ServiceStatus(name, phase, "gateway", gateway.state, gateway.health, False,
                                 gateway.reason)
        bad = [(n, v) for n, v in verdicts.items() if not v.ready]
        if bad:
            n, v = bad[0]
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            return ServiceStatus(name, phase, "gateway", v.state, v.health, False,
                                 f"{n}: {v.reason}{more}")
        return ServiceStatus(name, phase, "gateway", "programmed", "healthy", True, "")

    def cluster_summary(self) -> dict:
        """The cluster and its nodes, for the head of ``status``."""
        if not self.cluster_exists() or not self.kubeconfig.exists():
            return {"cluster": self.cluster, "exists": False, "nodes": []}
        nodes = []
        for node in self.kube.list("v1", "Node"):
            ready = next((c for c in (node.get("status") or {}).get("conditions") or []
                          if c.get("type") == "Ready"), {})
            nodes.append({"name": node["metadata"]["name"],
                          "ready": ready.get("status") == "True",
                          "reason": "" if ready.get("status") == "True"
                          else ready.get("message") or ready.get("reason") or "no Ready condition"})
        return {"cluster": self.cluster, "exists": True, "nodes": nodes}

    # ------------------------------------------------------------------ live checks

    #: Keys kubelet adds to every container by itself (the API server's Service and
    #: the pod's name): the platform's transport, never the stack's contract.
    PLATFORM_KEYS = frozenset({"HOSTNAME", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT",
                               "KUBERNETES_SERVICE_PORT_HTTPS", "KUBERNETES_PORT",
                               "KUBERNETES_PORT_443_TCP", "KUBERNETES_PORT_443_TCP_PROTO",
                               "KUBERNETES_PORT_443_TCP_PORT", "KUBERNETES_PORT_443_TCP_ADDR"})

    def _container(self, service: str) -> tuple[str, str, str] | None:
        """(pod, containerd ID, image) of a running, ready container of the service."""
        from .. import kreadiness

        pods = kreadiness.pods_for({"app.kubernetes.io/name": service,
                                    "app.kubernetes.io/part-of": self.stack.name},
                                   self.kube.list("v1", "Pod", self.stack.namespace))
        for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
            if (pod.get("status") or {}).get("phase") != "Running":
                continue
            for cs in (pod.get("status") or {}).get("containerStatuses") or []:
                if cs.get("name") == service and cs.get("ready") and cs.get("containerID"):
                    return (pod["metadata"]["name"], cs["containerID"].split("://", 1)[-1],
                            cs.get("imageID") or cs.get("image", ""))
        return None

    def _crictl(self, *args: str, timeout: float = 60):
        return docker.run(["docker", "exec", self.node(), "crictl", *args], check=False,
                          timeout=timeout)

    def delivered(self, service: str) -> Delivered | None:
        """The environment containerd started the service's container with (its OCI
        spec, read on the node), and the image's own (None: no ready container)."""
        found = self._container(service)
        if found is None:
            return None
        pod, cid, _ = found
        spec = self._crictl("inspect", "-o", "json", cid)
        if spec.returncode == 0:
            info = json.loads(spec.stdout)
            img = self._crictl("inspecti", "-o", "json", info["status"]["image"]["image"])
        if spec.returncode != 0 or img.returncode != 0:
            raise CheckFailed(f"cannot inspect {service}'s container {cid[:12]} on the node: "
                              + (spec.stderr or img.stderr).strip()[-200:])
        env = info["info"]["runtimeSpec"]["process"].get("env")
        image_env = (json.loads(img.stdout).get("info", {}).get("imageSpec", {})
                     .get("config", {}).get("Env"))
        return Delivered(env_list(env), env_list(image_env), self.PLATFORM_KEYS, f"pod {pod}")

    def exec(self, service: str, argv: list[str], timeout: float = 60) -> Exec:
        """Run ``argv`` inside a ready container of the service (on the node, through
        the container runtime: the same process namespace kubectl exec reaches)."""
        found = self._container(service)
        if found is None:
            raise CheckFailed(f"{service} has no ready pod to run a command in")
        proc = self._crictl("exec", found[1], *argv, timeout=timeout)
        return Exec(proc.returncode, proc.stdout, proc.stderr)

    # ------------------------------------------------------------------ down

    def down(self, dry_run: bool = False, volumes: bool = False) -> str:
        """Delete parity's cluster and the local artifacts made for it, nothing else,
        and keep the data in .parity/data/kind/ for the next up (decision 0016);
        ``volumes`` (reset, ``inv down --volumes``) deletes it too. ``dry_run``: name
        what would go, delete nothing."""
        from ..datacompat import Written, forget, remember

        removed = []
        data = self.kept_data()
        if self.cluster_exists():
            if not self.kubeconfig.exists() and dry_run:
                # a dry run writes nothing: kind prints the kubeconfig, held in memory
                # (and a dry run builds no kind either)
                from ..kubeaccess import Kube

                if self.kind_bin is None:
                    raise PrerequisiteMissing(
                        f"down --dry-run reads the record of the cluster {self.cluster} "
                        "through kind, which is not installed; nothing was built or removed",
                        hint=kindcli.install_hint(self.root))
                text = self.kind("get", "kubeconfig", "--name", self.cluster,
                                 timeout=60).stdout
                self._kube = Kube(self.kubeconfig, self.cluster, text=text,
                                  source=f"kind get kubeconfig --name {self.cluster}")
            elif not self.kubeconfig.exists():
                fsio.ensure_dir(self.kind_dir)
                self.kind("export", "kubeconfig", "--name", self.cluster, "--kubeconfig",
                          str(self.kubeconfig), timeout=60)
            record = self.kube.get("v1", "ConfigMap", STATE_CONFIGMAP, "kube-system")
            if record is None:
                raise InputError(
                    f"the kind cluster {self.cluster} has no parity record; parity only "
                    "deletes clusters it created", hint=f"kind delete cluster --name "
                    f"{self.cluster} if it is yours to delete")
            self.check_owner(record.get("data") or {}, "down")
            if not dry_run and not volumes:
                # the StatefulSets are the record of who wrote the data: keep it
                self.files = self.files or self._rendered()
                remember(self.state, "kind", [
                    Written(name, " ".join(self.data_dir_name(c) for s, c, _ in self.claims()
                                           if s == name) or f"StatefulSet {name}", image,
                            self._backup_command(name))
                    for name, image in sorted(self.data_images().items())])
            if not dry_run and volumes:
                self.remove_data()
            if not dry_run:
                self.kind("delete", "cluster", "--name", self.cluster, "--kubeconfig",
                          str(self.kubeconfig), timeout=300)
            removed.append(f"cluster {self.cluster}")
        if volumes and (data or self.data_dir.exists()):
            if not dry_run:
                self.remove_data()
                forget(self.state, "kind")
            removed.append(f"{len(data)} data volumes ({self.data_dir.relative_to(self.root)}/)")
        network = self._remove_network_we_created(dry_run)
        if network:
            removed.append(network)
        if self.kind_dir.exists():
            if not dry_run:
                shutil.rmtree(self.kind_dir)
            removed.append(str(self.kind_dir.relative_to(self.root)))
        kept = ""
        if data and not volumes:
            rel = self.data_dir.relative_to(self.root)
            kept = (f"kept {len(data)} data volume{'s' if len(data) != 1 else ''}: "
                    + ", ".join(f"{rel}/{d}" for d in data)
                    + "; `inv reset --mode kind` or `inv down --mode kind --volumes` removes them")
        if dry_run:
            text = ("would remove (nothing removed yet): " + ", ".join(removed)) if removed \
                else "would remove nothing (no cluster)"
            return text + (f"\nwould keep {kept.removeprefix('kept ')}" if kept else "")
        text = "removed " + (", ".join(removed) if removed else "nothing (no cluster)")
        return text + (f"\n{kept}" if kept else "")

    def _rendered(self) -> dict[str, str]:
        from ..render import RenderContext, render

        return render(self.stack, RenderContext.for_output(self.root, self.out))
