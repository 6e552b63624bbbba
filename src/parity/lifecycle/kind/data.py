"""Data that outlives a kind cluster (decision 0016): .parity/data/kind/, the
PersistentVolumes pre-bound to each StatefulSet's claims, and the check that an
image does not start on data another image wrote.

:class:`KindData` is one part of :class:`~parity.lifecycle.kind.lane.KindLane`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ... import docker, fsio, running
from ...datacompat import Written, check, recalled
from ...render.names import KIND_DATA_HOST_DIR, KIND_DATA_NODE_DIR, LABEL_MANAGED, LABEL_STACK


class KindData:
    """The data directory, its volumes and who wrote them."""

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

    def check_data(self) -> None:
        """Refuse an image on data another image wrote (parity.datacompat): a kept
        cluster's StatefulSets are the record; a new cluster finds the data ``down``
        kept in .parity/data/kind/ and what ``down`` remembered of its writers."""
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
