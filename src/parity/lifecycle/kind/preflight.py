"""The kind lane's preflight: Docker, a kind CLI, privileged nodes, memory, ports.

No Kubernetes API is contacted here. :meth:`KindPreflight.preflight` returns the
named checks ``inv doctor`` shows; :meth:`KindPreflight.prerequisites` is up's first
step. :class:`KindPreflight` is one part of
:class:`~parity.lifecycle.kind.lane.KindLane`.
"""

from __future__ import annotations

import json
import os
import re
import shutil

from ... import docker
from ...errors import CheckFailed, PrerequisiteMissing
from ..compose.ports import port_free, who_listens
from ...findings import Finding, attempt
from . import checks, kindcli
from .cluster import KIND_CLUSTER_LABEL
from .kubeconfig import subprocess_env

MIN_DOCKER_MEMORY = 6 * 1024**3


class KindPreflight:
    """Checks before anything is built or created."""

    def preflight(self) -> list[Finding]:
        """This lane's named checks besides the engine, the compose plugin and disk
        (``inv doctor`` shows them all; :meth:`prerequisites` stops at the first)."""
        stack = self.stack
        out = [attempt("kind", self.check_kind, lambda detail: detail), checks.privileged()]
        out += checks.runtime_images(stack, self.root)
        out.append(attempt("docker memory", self.check_memory,
                           lambda m: f"{m / 1024**3:.1f} GiB"))
        out.append(attempt("host ports", self.check_ports,
                           lambda _: f"{stack.edge_bind}:{stack.http_port} and "
                                     f":{stack.https_port} free (or the cluster's)"))
        out.append(checks.image_store())
        out.append(checks.kubectl(self))
        out.append(checks.kube_context(self.root, self.cluster))
        return out

    def prerequisites(self) -> str:
        """up's first step: every prerequisite, stopping at the first missing one."""
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
        for port, var in ((self.stack.http_port, "PARITY_HTTP_PORT"),
                          (self.stack.https_port, "PARITY_HTTPS_PORT")):
            if port_free(self.stack.edge_bind, port):
                continue
            ours = docker.json_lines(docker.run(
                ["docker", "ps", "--format", "{{json .}}", "--filter",
                 f"label={KIND_CLUSTER_LABEL}={self.cluster}", "--filter", f"publish={port}"],
                timeout=30).stdout)
            if ours:
                continue
            raise PrerequisiteMissing(
                f"{self.stack.edge_bind}:{port} is in use by another process"
                f"{who_listens(port)}",
                hint=f"stop it (the compose lane? inv down), or move the port: {var}="
                     f"{port + 8000} inv up --mode kind (a kind port change recreates the "
                     "cluster)")


def _version(text: str) -> tuple[int, int, int] | None:
    m = re.search(r"v?(\d+)\.(\d+)\.(\d+)", text or "")
    return tuple(int(x) for x in m.groups()) if m else None  # type: ignore[return-value]
