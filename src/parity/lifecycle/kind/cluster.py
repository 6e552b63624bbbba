"""The kind cluster itself: the kind CLI, its node, create/recreate, the record
parity keeps in ConfigMap kube-system/parity-cluster, and who owns the cluster.

:class:`KindCluster` is one part of :class:`~parity.lifecycle.kind.lane.KindLane`
(it reads the lane's ``root``, ``stack``, ``cluster``, ``kubeconfig``, ``files``,
``observed`` and ``actions``).
"""

from __future__ import annotations

import json

from ... import checkout, docker, fsio
from ...render.names import LABEL_MANAGED, LABEL_STACK
from . import kindcli
from .kube import Kube
from .kubeconfig import subprocess_env

STATE_CONFIGMAP = "parity-cluster"
#: The Docker network kind puts every kind cluster's nodes on.
KIND_NETWORK = "kind"
KIND_CLUSTER_LABEL = "io.x-k8s.kind.cluster"


class KindCluster:
    """kind, the node, the cluster and its record."""

    @property
    def kube(self):
        if self._kube is None:
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

    def running_node_image(self) -> str | None:
        proc = docker.run(["docker", "container", "inspect", "--format", "{{.Image}}",
                           self.node()], check=False, timeout=30)
        if proc.returncode != 0:
            return None
        return proc.stdout.strip() or None

    def record(self) -> None:
        """What the cluster was made from, for the next up's plan."""
        self.kube.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": STATE_CONFIGMAP, "namespace": "kube-system",
            "labels": {LABEL_MANAGED: "true", LABEL_STACK: self.stack.name}},
            "data": {"kind-config.yaml": self.files["kind-config.yaml"],
                     "node-image-id": self.running_node_image() or "",
                     "edge.sha256": self.observed.edge_digest or "",
                     **self.owner_record()}})

    def owner_record(self) -> dict[str, str]:
        """This checkout's identity, as the cluster's record keeps it (decision 0015)."""
        me = checkout.identity(self.root)
        return {"checkout-id": me.id, "checkout-path": me.path}

    def check_owner(self, record: dict, command: str) -> None:
        """Refuse a cluster another checkout created (a record without an owner was
        made by an older parity: it is taken as this checkout's)."""
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
