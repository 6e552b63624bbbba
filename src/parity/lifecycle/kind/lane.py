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

Every API call goes through :class:`parity.lifecycle.kind.kube.Kube`, which refuses
any kubeconfig context but the parity cluster's.

:class:`KindLane` is assembled from one class per responsibility: preflight
(:mod:`.preflight`), the cluster and its record (:mod:`.cluster`), images on the
node (:mod:`.load`), kept data (:mod:`.data`), the edge (:mod:`.edge`), apply and
prune (:mod:`.apply`), status and live checks (:mod:`.status`); the plan is
:mod:`.plan`. This module holds the order of the steps and ``down``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ... import checkout, fsio, images, lock
from ...datacompat import Written, forget, remember
from ...errors import InputError, PrerequisiteMissing
from ...render import RenderContext, default_out, render, write
from ...yamlio import load_docs
from .. import UI, Step, run_steps
from . import kindcli
from .apply import KindApply
from .cluster import STATE_CONFIGMAP, KindCluster
from .data import KindData
from .edge import KindEdge
from .kube import Kube
from .load import KindImages
from .plan import Action, Observed, plan
from .preflight import KindPreflight
from .status import KindStatus


class KindLane(KindPreflight, KindCluster, KindImages, KindData, KindEdge, KindApply,
               KindStatus):
    """The kind lane of one stack. The attributes set here are what the parts read."""

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

    def docs(self, name: str = "manifests.yaml") -> list[dict]:
        """The rendered file's objects (after the render step)."""
        return load_docs(self.files[name])

    # ------------------------------------------------------------------ up

    def up(self) -> dict:
        steps = [
            Step("preflight", "preflight: Docker, kind, privileged nodes, ports, memory",
                 self.prerequisites),
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

    def render(self) -> str:
        self.files = render(self.stack, RenderContext.for_output(self.root, self.out))
        with lock.render_dir(self.root, self.out):
            changed = write(self.files, self.out)
        return f"{self.out.relative_to(self.root)}/ ({'changed' if changed else 'unchanged'})"

    def build(self) -> str:
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

    def make_plan(self) -> str:
        self.actions = plan(self.observed, self.files["kind-config.yaml"],
                            self.built_images(), self.recreate, self.cluster,
                            self.wanted_node_image(), self.edge_digest())
        self.check_data()
        for a in self.actions:
            self.ui.line(f"    {a.step:<8} {a.action:<9} {a.detail}")
        changes = [a for a in self.actions if a.action not in ("keep", "skip")]
        return f"{len(changes)} actions"

    def _action(self, step: str) -> str:
        """What the plan does at ``step`` (``keep`` when it names no such step)."""
        return next((a.action for a in self.actions if a.step == step), "keep")

    # ------------------------------------------------------------------ down

    def down(self, dry_run: bool = False, volumes: bool = False) -> str:
        """Delete parity's cluster and the local artifacts made for it, nothing else,
        and keep the data in .parity/data/kind/ for the next up (decision 0016);
        ``volumes`` (reset, ``inv down --volumes``) deletes it too. ``dry_run``: name
        what would go, delete nothing."""
        removed = []
        data = self.kept_data()
        if self.cluster_exists():
            if not self.kubeconfig.exists() and dry_run:
                # a dry run writes nothing: kind prints the kubeconfig, held in memory
                # (and a dry run builds no kind either)
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
        return render(self.stack, RenderContext.for_output(self.root, self.out))
